import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { InputError } from '../errors.js'

/** Who may read the mount cannot be set up as asked; nothing has been mounted. */
export class AccessError extends InputError {
  readonly code = 'E_ACCESS'
}

/** Where FUSE's own settings live; `user_allow_other` there lets non-root users use allow_other. */
export const FUSE_CONF = '/etc/fuse.conf'
/** The device every FUSE daemon talks to the kernel through. */
export const FUSE_DEVICE = '/dev/fuse'

const run = promisify(execFile)

/**
 * A user or group id for `idOrName`: numbers are taken as they are, names are looked up with
 * getent, so users from LDAP or sssd resolve as they do for `ls -l`.
 */
export async function resolveId(idOrName: number | string, database: 'passwd' | 'group'): Promise<number> {
  if (typeof idOrName === 'number') return idOrName
  const kind = database === 'passwd' ? 'user' : 'group'
  let line: string
  try {
    // `--`: a name is never an option of getent's, whatever validation let through.
    line = (await run('getent', ['--', database, idOrName])).stdout
  } catch (cause) {
    throw new AccessError(`no ${kind} named ${idOrName}`, `check the name (getent ${database} ${idOrName}) or give the number`, { cause })
  }
  // passwd: name:password:uid:...; group: name:password:gid:members
  return Number(line.split(':')[2])
}

/**
 * libfuse refuses `allow_other` for a daemon that is not root unless /etc/fuse.conf has a line
 * `user_allow_other`, and fuse-native reports that only as a failed mount. So it is checked here,
 * before mounting, with the fix in the message.
 */
export async function checkAllowOther(allowOther: boolean, daemonUid: number, fuseConf = FUSE_CONF): Promise<void> {
  if (!allowOther || daemonUid === 0) return
  const text = await readFile(fuseConf, 'utf8').catch(() => '')
  if (text.split('\n').some((line) => line.trim() === 'user_allow_other')) return
  throw new AccessError(
    `allow_other needs user_allow_other in ${fuseConf} when snapmount does not run as root (uid ${daemonUid})`,
    `add a line user_allow_other to ${fuseConf}, run snapmount as root, or drop allow_other (--no-allow-other)`,
  )
}

/**
 * libfuse opens the FUSE device itself before it mounts (a user's mount goes through the setuid
 * fusermount only after that), and fuse-native reports a refusal only as "fuse failed". So the
 * device is checked here, before mounting, with the fix in the message.
 */
export async function checkFuseDevice(daemonUid: number, device = FUSE_DEVICE): Promise<void> {
  try {
    await access(device, constants.R_OK | constants.W_OK)
  } catch (cause) {
    throw fuseDeviceError(device, (cause as NodeJS.ErrnoException).code, daemonUid, cause)
  }
}

/** What a failed check of the FUSE device means, and its fix. */
export function fuseDeviceError(device: string, code: string | undefined, daemonUid: number, cause?: unknown): AccessError {
  if (code === 'ENOENT') {
    return new AccessError(`${device} does not exist`, 'load the fuse kernel module (modprobe fuse), or give the container the device (docker run --device /dev/fuse)', { cause })
  }
  return new AccessError(
    `snapmount (uid ${daemonUid}) cannot open ${device} for reading and writing (${code})`,
    `run snapmount as root, or give its user read-write access to ${device} (most hosts make it 0666; containers often leave it 0600)`,
    { cause },
  )
}

/**
 * The umask when the config gives none: owner-only (files 0400, the root 0500). A VM disk holds
 * its guest's secrets, so a snapshot is its owner's alone unless the config names who else may
 * read it. A `gid` given without a `umask` means that group is to read: 0o027 (files 0440).
 */
export const OWNER_ONLY_UMASK = 0o077
export const GROUP_READS_UMASK = 0o027
/** The modes a umask is taken from: read-only files and a read-only, searchable root. */
const FILE_BITS = 0o444
const ROOT_BITS = 0o555

/** Who the files are shown as owned by, and the umask taken from their modes. */
export interface Ownership {
  uid: number
  gid: number
  umask: number
}

/** The umask in force: the configured one, else owner-only, or group-readable when a `gid` is configured. */
export function umaskFor(options: OwnershipOptions): number {
  return options.umask ?? (options.gid === undefined ? OWNER_ONLY_UMASK : GROUP_READS_UMASK)
}

/**
 * Whether FUSE's `allow_other` is needed: without it the kernel lets only the daemon's own user
 * into the mount, whatever the modes say. So it is on when the files' owner is another user or
 * their modes let a group or everyone in, and off otherwise (the default: owner-only, the
 * daemon's user), so that no mount is opened to other users that the config did not open.
 */
export function needsAllowOther({ uid, umask }: Ownership, daemonUid: number): boolean {
  return uid !== daemonUid || (FILE_BITS & ~umask & 0o077) !== 0
}

/**
 * Who may read the snapshots, in words for `check` and the logs: e.g. "readable by uid 0 only
 * (files 0400, root dir 0500, allow_other off)", "readable by uid 0 and group kvm (gid 107)
 * (files 0440, root dir 0550)". `names` are the configured names of the ids, where names were
 * given. Root is not named: with allow_other on it reads anyway, as on any file system.
 */
export function describeAccess(ownership: Ownership, allowOther: boolean, daemonUid: number, names: { user?: string | undefined; group?: string | undefined } = {}): string {
  const { uid, gid, umask } = ownership
  const mode = FILE_BITS & ~umask
  const modes = `files 0${mode.toString(8).padStart(3, '0')}, root dir 0${(ROOT_BITS & ~umask).toString(8).padStart(3, '0')}`
  const user = names.user === undefined ? `uid ${uid}` : `user ${names.user} (uid ${uid})`
  const group = names.group === undefined ? `gid ${gid}` : `group ${names.group} (gid ${gid})`
  if (!allowOther) {
    // The kernel lets the daemon's user alone in; the modes then decide whether even it may read.
    const daemonReads = uid === daemonUid ? (mode & 0o400) !== 0 : (mode & 0o004) !== 0
    return daemonReads ? `readable by uid ${daemonUid} only (${modes}, allow_other off)` : `readable by no one (${modes}, allow_other off, owner uid ${uid})`
  }
  if (mode & 0o004) return `readable by everyone (${modes})`
  const readers = [...((mode & 0o400) !== 0 ? [user] : []), ...((mode & 0o040) !== 0 ? [group] : [])]
  if (readers.length === 0) return `readable by no one (${modes})`
  return `readable by ${readers.join(' and ')}${readers.length === 1 ? ' only' : ''} (${modes})`
}

/** What the config says of ownership: `uid`, `gid` (numbers or names) and `umask`, any of them absent. */
export interface OwnershipOptions {
  uid?: number | string | undefined
  gid?: number | string | undefined
  umask?: number | undefined
}

/** The owner and umask the files show, names looked up now (at start, at a reload, in `check`). */
export async function resolveOwnership(options: OwnershipOptions, daemon: { uid: number; gid: number }): Promise<Ownership> {
  const [uid, gid] = await Promise.all([resolveId(options.uid ?? daemon.uid, 'passwd'), resolveId(options.gid ?? daemon.gid, 'group')])
  return { uid, gid, umask: umaskFor(options) }
}

/** Who may read, in words (describeAccess), with the names the config gave and allow_other as it will be. */
export function accessInWords(options: OwnershipOptions & { allowOther?: boolean | undefined }, ownership: Ownership, daemonUid: number): string {
  const allowOther = options.allowOther ?? needsAllowOther(ownership, daemonUid)
  const names = { user: typeof options.uid === 'string' ? options.uid : undefined, group: typeof options.gid === 'string' ? options.gid : undefined }
  return describeAccess(ownership, allowOther, daemonUid, names)
}

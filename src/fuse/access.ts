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

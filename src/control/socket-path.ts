import type { Stats } from 'node:fs'
import { lstat, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { InputError } from '../errors.js'
import { nodeCrypto } from '../lazy-builtins.js'

/** The control folder is not one only its user can have made: another user could swap the socket in it. */
export class UnsafeControlDirError extends InputError {
  readonly code = 'E_CONTROL_DIR'
}

/** Where root's daemons put their control sockets. */
export const SYSTEM_RUNTIME_DIR = '/run/snapmount'
/** sun_path holds 108 bytes with its NUL; longer paths cannot be bound at all. */
const SOCKET_PATH_MAX = 107

/**
 * The folder control sockets live in: /run/snapmount for root; for anyone else their own runtime
 * folder ($XDG_RUNTIME_DIR/snapmount), since /run is root's, or /tmp/snapmount-UID without one.
 */
export function runtimeDir(uid: number, env: Record<string, string | undefined>): string {
  if (uid === 0) return SYSTEM_RUNTIME_DIR
  const xdg = env.XDG_RUNTIME_DIR
  return xdg ? join(xdg, 'snapmount') : `/tmp/snapmount-${uid}`
}

/**
 * The control socket of the daemon serving `mountpoint`: the mountpoint escaped as systemd escapes
 * paths (`/mnt/snap` -> `mnt-snap.sock`), so one folder holds one socket per mount and a person can
 * tell which is which. A path too long for a socket falls back to a digest of the mountpoint.
 */
export function socketPathFor(mountpoint: string, dir: string): string {
  const path = join(dir, `${escapePath(mountpoint)}.sock`)
  if (Buffer.byteLength(path) <= SOCKET_PATH_MAX) return path
  return join(dir, `mount-${nodeCrypto().createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.sock`)
}

/** systemd-escape --path: slashes trimmed and turned into '-', bytes other than [A-Za-z0-9:_.] as \xNN. */
export function escapePath(path: string): string {
  const trimmed = path.split('/').filter((part) => part !== '').join('/')
  if (trimmed === '') return '-'
  let escaped = ''
  for (const [index, byte] of [...Buffer.from(trimmed)].entries()) {
    const char = String.fromCharCode(byte)
    if (char === '/') escaped += '-'
    else if (/[A-Za-z0-9:_]/.test(char) || (char === '.' && index > 0)) escaped += char
    else escaped += `\\x${byte.toString(16).padStart(2, '0')}`
  }
  return escaped
}

/**
 * Makes the runtime folder `dir` for the daemon of `uid`, or takes the one there if it is safe
 * (checkControlDir). mkdir is atomic: it creates the folder 0700 or fails with EEXIST, and never
 * follows a symlink in the last component, so a folder someone else made in /tmp first, or a
 * symlink put there, is found by the check, never used.
 */
export async function ownControlDir(dir: string, uid: number): Promise<void> {
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
  })
  refuseUnsafe(dir, uid, await lstat(dir))
}

/**
 * Throws UnsafeControlDirError unless `dir` is a directory (not a symlink to one) owned by `uid`
 * that no one else may enter (no group or other bits): in a shared folder such as /tmp, anyone can
 * make /tmp/snapmount-UID first, and whoever owns it can swap the socket in it for their own, to
 * answer `status` or read `verify`'s requests. 'missing' when there is none (no daemon yet).
 */
export async function checkControlDir(dir: string, uid: number): Promise<'ok' | 'missing'> {
  const stats = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined
    throw err
  })
  if (stats === undefined) return 'missing'
  refuseUnsafe(dir, uid, stats)
  return 'ok'
}

function refuseUnsafe(dir: string, uid: number, stats: Stats): void {
  const fix = `remove it (rm -r ${dir}) if it is not yours, or set XDG_RUNTIME_DIR, or give control_socket (--control-socket, --socket) in a folder of yours`
  if (stats.isSymbolicLink()) throw new UnsafeControlDirError(`control folder ${dir} is a symlink, which snapmount does not follow`, fix)
  if (!stats.isDirectory()) throw new UnsafeControlDirError(`control folder ${dir} is not a directory`, fix)
  if (stats.uid !== uid) throw new UnsafeControlDirError(`control folder ${dir} belongs to uid ${stats.uid}, not to uid ${uid}`, fix)
  if ((stats.mode & 0o077) !== 0) {
    throw new UnsafeControlDirError(`control folder ${dir} has mode 0${(stats.mode & 0o7777).toString(8)}: other users may enter it`, `chmod 700 ${dir}, or ${fix}`)
  }
}

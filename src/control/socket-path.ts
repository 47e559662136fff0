import { createRequire } from 'node:module'
import { join } from 'node:path'

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
  // node:crypto only for the rare long path: loading it is ~20 ms of a daemon's start.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')
  return join(dir, `mount-${createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.sock`)
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

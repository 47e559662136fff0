import { readFile, readdir, realpath, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Stats } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { InputError } from '../errors.js'
import type { Logger } from '../log.js'

/** The mountpoint cannot be used as given; nothing has been mounted. */
export class MountpointError extends InputError {
  readonly code = 'E_MOUNTPOINT'
}

/**
 * The mountpoint as the kernel will name it: symlinks resolved (/var/run is a link to /run on most
 * systems). Resolved once, where the config is read, and used everywhere: /proc/self/mountinfo
 * lists the resolved path, so the mount watch, the already-mounted check, the kernel readahead
 * setting and the control socket's name all need it. A path that does not resolve (missing, or a
 * stale mount whose stat fails) keeps its folder resolved and is left to `prepareMountpoint` to
 * report or clear.
 */
export async function resolveMountpoint(path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch {
    const folder = await realpath(dirname(path)).catch(() => dirname(path))
    return join(folder, basename(path))
  }
}

/**
 * Checks that `path` is an empty directory nothing is mounted on, first clearing a stale FUSE
 * mount left by a daemon that was killed (every access to one fails with ENOTCONN, "Transport
 * endpoint is not connected", until it is unmounted).
 */
export async function prepareMountpoint(path: string, logger: Logger): Promise<void> {
  let stats = await statMountpoint(path)
  if (stats === 'stale') {
    await lazyUnmount(path)
    logger.warn(`cleared a stale mount at ${path} left by a daemon that exited without unmounting`)
    stats = await statMountpoint(path)
    // Only a second dead mount stacked under the first gets here, and libfuse will not mount on a
    // dead mountpoint, so no test can build one.
    /* c8 ignore next 3 */
    if (stats === 'stale') {
      throw new MountpointError(`mountpoint ${path} is a stale mount that would not unmount`, `run: fusermount -uz ${path}`)
    }
  }
  if (!stats.isDirectory()) {
    throw new MountpointError(`mountpoint ${path} is not a directory`, 'give an empty directory')
  }
  const mounted = await mountedType(path)
  if (mounted) {
    throw new MountpointError(
      `mountpoint ${path} already has a ${mounted} file system mounted on it`,
      `unmount it first (fusermount -u ${path}) or choose another directory`,
    )
  }
  const entries = await readdir(path)
  if (entries.length > 0) {
    throw new MountpointError(
      `mountpoint ${path} is not empty (${entries.length} entries)`,
      'give an empty directory; mounting over files would hide them',
    )
  }
}

async function statMountpoint(path: string): Promise<Stats | 'stale'> {
  try {
    return await stat(path)
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN') return 'stale'
    if (code === 'ENOENT') {
      throw new MountpointError(`mountpoint ${path} does not exist`, `create it: mkdir -p ${path}`, { cause })
    }
    throw new MountpointError(`mountpoint ${path} cannot be checked (${code})`, 'give a directory snapmount can read', { cause })
  }
}

/** The file system type mounted exactly at `path` (e.g. `fuse.snapmount`), if any. */
export async function mountedType(path: string): Promise<string | undefined> {
  return (await mountEntry(path))?.type
}

/**
 * What /proc/self/mountinfo says of the mount exactly at `path`: its type and its device
 * (`major:minor`, which names its backing-device entry in /sys/class/bdi). Read from the kernel's
 * table, never by a stat of the mountpoint, which our own FUSE daemon would have to answer.
 */
export async function mountEntry(path: string): Promise<{ type: string; device: string } | undefined> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  for (const line of mountinfo.split('\n')) {
    // Fields: id parent major:minor root mountpoint options [optional...] - fstype source super
    const fields = line.split(' ')
    if (fields[4] === undefined || unescapeMountPath(fields[4]) !== path) continue
    return { type: fields[fields.indexOf('-') + 1]!, device: fields[2]! }
  }
  return undefined
}

/** mountinfo writes space, tab, newline and backslash as 3-digit octal escapes. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}

const run = promisify(execFile)

/** Detaches a FUSE mount lazily (fuse3 installs fusermount, as fuse-native itself expects). */
export async function lazyUnmount(path: string): Promise<void> {
  await run('fusermount', ['-u', '-z', path])
}

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import Fuse from 'fuse-native'
import { errorFields, type Logger, type LogFields } from '../log.js'
import type { SnapshotFs } from './snapshot-fs.js'
import { errnoFor, isRoutine } from './errno.js'

export interface FuseMountOptions {
  /** Let other users (a hypervisor running as its own user) read the files. */
  allowOther: boolean
}

/** A live mount; `unmount()` takes it away and says how. */
export interface FuseMount {
  /**
   * Unmounts, or, when the kernel refuses because files on the mount are still open (or a
   * process has its working directory there), detaches it lazily: the mount leaves the tree at
   * once and the open files fail once the daemon has exited. Resolves with the refusal's text
   * when it had to detach, undefined for a clean unmount.
   */
  unmount(): Promise<string | undefined>
}

/**
 * A snapshot's bytes never change, but a reload can put another snapshot under the same name, or
 * make a lazy one readable, so the kernel may keep a name's attributes only briefly: after a
 * reload, `stat` shows the new size within this long. Getattr is answered from memory and reads
 * on an open file do not ask for attributes (only a read reaching past the cached size does), so
 * the short timeout costs next to nothing. Names (entries) may be cached long: an open always
 * reaches the daemon, which answers by the current list.
 */
const ATTR_CACHE_SECONDS = 1
const ENTRY_CACHE_SECONDS = 3600

/** Callback-style operations as fuse-native calls them. */
export type FuseOperations = ReturnType<typeof fuseOperations>

/**
 * The thin glue between fuse-native and SnapshotFs: it turns callbacks into calls, errors into
 * negative errno values, and writes the one log line a failed operation gets. Kept apart from the
 * mount so it can be tested without one (the kernel never sends some of these failures).
 */
export function fuseOperations(fs: SnapshotFs, logger: Logger) {
  // The fields repeat the message for machines (JSON logs): snapshot, offset, length, code, cause, attempts.
  const fail = (operation: string, cb: (result: number) => void, fields: LogFields = {}) => (err: unknown) => {
    const errno = errnoFor(err)
    if (!isRoutine(err)) logger.error(`${operation} failed (errno ${errno}): ${(err as Error).message}`, { ...fields, errno, ...errorFields(err) })
    cb(-errno)
  }
  return {
    readdir(path: string, cb: (result: number, names?: string[]) => void) {
      try {
        cb(0, fs.readdir(path))
      } catch (err) {
        fail(`readdir ${path}`, cb)(err)
      }
    },
    getattr(path: string, cb: (result: number, attributes?: object) => void) {
      try {
        cb(0, fs.getattr(path))
      } catch (err) {
        fail(`getattr ${path}`, cb)(err)
      }
    },
    open(path: string, flags: number, cb: (result: number, handle?: number) => void) {
      try {
        cb(0, fs.open(path, flags))
      } catch (err) {
        fail(`open ${path} flags=0o${flags.toString(8)}`, cb)(err)
      }
    },
    read(path: string, handle: number, target: Buffer, length: number, position: number, cb: (result: number) => void) {
      const result = fs.read(handle, target, length, position)
      // A cache hit is answered at once, without a turn of the promise queue.
      if (typeof result === 'number') cb(result)
      else result.then(cb, fail(`read ${path} offset=${position} length=${length}`, cb, { snapshot: path.slice(1), offset: position, length }))
    },
    release(path: string, handle: number, cb: (result: number) => void) {
      fs.release(handle).then(() => cb(0), fail(`release ${path}`, cb))
    },
    statfs(_path: string, cb: (result: number, stats?: object) => void) {
      cb(0, fs.statfs())
    },
  }
}

const run = promisify(execFile)

/** Mounts `fs` at `mountpoint`, read-only, and resolves once the kernel has it. */
export async function mountFuse(mountpoint: string, fs: SnapshotFs, options: FuseMountOptions, logger: Logger): Promise<FuseMount> {
  const ops = fuseOperations(fs, logger)
  const fuse = new Fuse(mountpoint, ops, {
    readOnly: true,
    fsname: 'snapmount',
    subtype: 'snapmount',
    allowOther: options.allowOther,
    defaultPermissions: true, // the kernel enforces the 0444 modes, so access() needs no daemon
    // The kernel keeps a file's pages across opens (kernel_cache would too) unless, at an open,
    // libfuse sees its size or mtime changed since it last looked: a snapshot replaced by a reload
    // then starts with an empty page cache instead of serving the old snapshot's pages.
    autoCache: true,
    attrTimeout: ATTR_CACHE_SECONDS,
    entryTimeout: ENTRY_CACHE_SECONDS,
    // SnapshotFs enforces its own read deadline; fuse-native's would answer the kernel while our
    // read still holds the request's buffer, and the late copy would land in freed memory.
    timeout: { read: false },
  })
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())))

  return {
    async unmount() {
      try {
        await run('fusermount', ['-u', mountpoint])
        return undefined
      } catch (err) {
        // fuse-native's unmount is a lazy one (fusermount -uz) and then stops its thread.
        // run-mount calls this only while the mount is there, and a lazy unmount of a live mount
        // does not fail: the error side cannot be reached by a test.
        /* c8 ignore next */
        await new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())))
        // A promisified execFile's error always carries the child's stderr (Node's docs).
        return (err as { stderr: string }).stderr.trim()
      }
    },
  }
}

import { watch, type BigIntStats, type FSWatcher } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { SnapmountError } from '../errors.js'

/**
 * How often a pinned source's descriptor is stat'ed besides the inotify watch: inotify sees
 * every change made through this machine's kernel, but not one made by another client of a
 * network file system, which this catches within a second. An fstat costs microseconds.
 */
export const PIN_CHECK_MS = 1000

/** A local source's bytes are no longer those it had when opened: never served as if they were. */
export class SourceChangedError extends SnapmountError {
  readonly code = 'E_SOURCE_CHANGED'
  constructor(readonly path: string, readonly detail: string) {
    super(`source ${path} changed since it was opened (${detail}); a reload (SIGHUP) opens it again`)
  }
}

/** What a pin reports to: once, when it sees the source changed. */
export type OnSourceChanged = (error: SourceChangedError) => void

/**
 * Holds a local source to the file it was when opened, as remote sources are held to their
 * validator: its size and mtime (in nanoseconds) from the descriptor's stat. The descriptor keeps
 * the same inode whatever happens to the path, so a file renamed over the path (an atomic
 * replace) is no change: the old file is still read, whole and consistent. A change made to the
 * file itself (rewritten in place, truncated, regrown) is: from then on every read fails.
 *
 * The descriptor is stat'ed again when inotify reports the file written or its attributes changed,
 * every PIN_CHECK_MS, and when a reader opens the snapshot (`check()`); reads wait for a check
 * under way before and after they read (`settle()`), so bytes read after a change the daemon has
 * been told of are never served. A read racing the write itself can still see new bytes: the
 * daemon learns of a change made on this machine at once, of one made elsewhere within PIN_CHECK_MS.
 *
 * ctime is not compared: a rename over the path, an unlink, a chmod all change it and leave the
 * bytes alone. The cost is a writer that rewrites in place and then sets the old mtime back by
 * hand (`touch -d`), with the size unchanged: that goes unseen.
 */
export class SourcePin {
  private changed: SourceChangedError | undefined
  private checking: Promise<void> | undefined
  /** A change was reported while a check was under way: check once more after it. */
  private again = false
  private readonly watcher: FSWatcher | undefined
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly pinned: BigIntStats,
    private readonly onChanged: OnSourceChanged = () => undefined,
    intervalMs = PIN_CHECK_MS,
  ) {
    this.watcher = watchQuietly(path, () => void this.check())
    this.timer = setInterval(() => void this.check(), intervalMs).unref()
  }

  /** Why reads fail, once the source changed; undefined while it has not. */
  get change(): SourceChangedError | undefined {
    return this.changed
  }

  /** Resolves once no check is under way; rejects with `SourceChangedError` if the source changed. */
  async settle(): Promise<void> {
    while (this.checking) await this.checking
    if (this.changed) throw this.changed
  }

  /** Stats the descriptor now (or once more after the check under way) and compares. */
  check(): Promise<void> {
    if (this.changed) return Promise.resolve()
    if (this.checking) {
      this.again = true
      // Runs after the handler below has started the next check: waits for that one too.
      return this.checking.then(() => this.checking)
    }
    this.checking = this.handle.stat({ bigint: true }).then(
      (now) => this.compare(now),
      // The descriptor was closed under us (close() ends the checks), or the file system failed
      // the stat: reads report that failure themselves.
      () => undefined,
    )
    void this.checking.finally(() => {
      this.checking = undefined
      if (this.again) {
        this.again = false
        void this.check()
      }
    })
    return this.checking
  }

  /** Stops watching; the descriptor is the caller's to close. */
  stop(): void {
    clearInterval(this.timer)
    this.watcher?.close()
  }

  private compare(now: BigIntStats): void {
    const differences: string[] = []
    if (now.size !== this.pinned.size) differences.push(`size ${this.pinned.size} -> ${now.size} bytes`)
    if (now.mtimeNs !== this.pinned.mtimeNs) differences.push(`mtime ${isoNs(this.pinned.mtimeNs)} -> ${isoNs(now.mtimeNs)}`)
    if (differences.length === 0) return
    this.changed = new SourceChangedError(this.path, differences.join(', '))
    this.stop()
    this.onChanged(this.changed)
  }
}

/**
 * An inotify watch of `path`, or none where the system refuses one (out of watches, a path gone
 * since it was opened): the periodic check then works alone. An error later ends the watch the
 * same way.
 */
function watchQuietly(path: string, listener: () => void): FSWatcher | undefined {
  try {
    const watcher = watch(path, { persistent: false }, listener)
    // libuv reports an error on a started inotify watch only when reading its events fails, which
    // no test can provoke.
    /* c8 ignore next */
    watcher.on('error', () => watcher.close())
    return watcher
  } catch {
    return undefined
  }
}

/** A nanosecond timestamp as ISO 8601 with all nine digits, so changes within a second show. */
function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n
  const iso = new Date(Number(ms)).toISOString()
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`
}

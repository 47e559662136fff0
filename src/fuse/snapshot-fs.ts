import { constants } from 'node:fs'
import { readPieces, type StorageBackend } from '../backend/storage-backend.js'
import type { SnapshotSpec } from '../config/config.js'
import {
  BadHandleError,
  IsADirectoryError,
  NotADirectoryError,
  NotFoundError,
  ReadAbortedError,
  ReadOnlyError,
  ReadTimeoutError,
  ShuttingDownError,
  UnavailableError,
} from './fs-errors.js'

/** A snapshot as the file system shows it: a name in the root directory and its bytes. */
export interface Snapshot {
  readonly name: string
  readonly backend: StorageBackend
  /** What the snapshot was opened from, when it came from a config (tests may leave it out). */
  readonly spec?: SnapshotSpec | undefined
}

/**
 * A lazy snapshot whose source could not be opened yet: listed by name, unreadable (EIO) until
 * `ready` resolves with its backend. `cancel()` stops whatever is retrying the open; it is called
 * when the snapshot is removed by a reload or the file system closes.
 */
export interface PendingSnapshot {
  readonly name: string
  readonly spec?: SnapshotSpec | undefined
  readonly ready: Promise<StorageBackend>
  cancel(): void
}

/** In `update()`: keep the snapshot served under this name as it is, open handles and all. */
export interface KeptSnapshot {
  readonly keep: string
}

/** A snapshot that has been handed out as open handles: how many, and under which name. */
export interface HeldSnapshot {
  readonly name: string
  readonly handles: number
  /** Removed or replaced by a reload; only these handles still read it. */
  readonly retired: boolean
}

export interface Attributes {
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  blocks: number
  blksize: number
  atime: Date
  mtime: Date
  ctime: Date
}

export interface FsStats {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

export interface SnapshotFsOptions {
  /**
   * Owner shown on every file and the root directory: by default the daemon's own uid and gid;
   * with `allow_other`, set them (and `umask`) so a hypervisor's user or group may read.
   */
  uid: number
  gid: number
  /**
   * Permission bits taken away from the read-only modes (0444 files, 0555 root), as a umask does:
   * 0o027 leaves the owner r, the group r and others nothing. Default 0.
   */
  umask?: number | undefined
  /**
   * How long one read may wait for its backend before the kernel is answered EIO. It must be
   * shorter than anything above us gives up after (fuse-native's 15 s, a guest's I/O timeout),
   * so that a stuck source turns into an error the guest sees instead of a hang.
   */
  readTimeoutMs: number
  /** When the mount appeared: the root directory's times. */
  mountedAt: Date
}

const ROOT = '/'
const DIRECTORY_MODE = constants.S_IFDIR | 0o555
const FILE_MODE = constants.S_IFREG | 0o444
/** st_blocks counts 512-byte units whatever the block size (POSIX). */
const STAT_BLOCK_BYTES = 512
/**
 * Advertised as the preferred I/O size: the largest read the kernel passes to FUSE in one
 * request (libfuse 3 lets it send 1 MiB), so tools that size their buffers from st_blksize
 * (cp, cat) ask for that much.
 */
const PREFERRED_IO_BYTES = 1024 * 1024
const STATFS_BLOCK_BYTES = 4096
const NAME_MAX = 255
/** Linux's mask for the access mode in open flags; Node's fs.constants leaves it out. */
const O_ACCMODE = 0o3
/** statfs fields cross fuse-native as 32-bit integers. */
const UINT32_MAX = 2 ** 32 - 1

/** What the file system keeps per name: the snapshot, or its pending open, and who holds it. */
interface Served {
  readonly name: string
  readonly spec: SnapshotSpec | undefined
  backend: StorageBackend | undefined
  pending: PendingSnapshot | undefined
  handles: number
  retired: boolean
}

/** FUSE file handles cross fuse-native as unsigned 32-bit integers; 0 is never given out. */
const MAX_HANDLE = 2 ** 32 - 1

/**
 * The file-system semantics of a snapmount mount, free of any FUSE binding so they can be tested
 * without a kernel: a flat root directory with one read-only file per snapshot.
 *
 * This layer owns POSIX read semantics: it clamps a read at EOF and answers 0 past it, so
 * backends only ever see ranges inside the snapshot.
 *
 * Each open gets a file handle bound to the snapshot served at that moment, and reads go by the
 * handle, not the name. So `update()` (a reload) can remove or replace a snapshot while readers
 * of the old one keep reading it; a retired snapshot's backend is closed when its last handle is
 * released.
 */
export class SnapshotFs {
  private byName = new Map<string, Served>()
  private readonly handles = new Map<number, Served>()
  private readonly retired = new Set<Served>()
  /** The reads waiting for their backend, each with what aborts it. */
  private readonly reads = new Map<Promise<unknown>, AbortController>()
  private lastHandle = 0
  private opening = true
  private aborting = false
  private options: SnapshotFsOptions

  constructor(snapshots: readonly (Snapshot | PendingSnapshot)[], options: SnapshotFsOptions) {
    this.options = { ...options }
    this.update(snapshots)
  }

  /**
   * The snapshots served right now whose backends are open, in listing order: what `status` and
   * metrics report on. Lazy snapshots still waiting for their source are left out (see
   * `waiting()`). The list is live: a reload replaces it, so call this each time.
   */
  snapshots(): readonly Snapshot[] {
    const ready: Snapshot[] = []
    for (const { name, backend, spec } of this.byName.values()) if (backend) ready.push({ name, backend, spec })
    return ready
  }

  /** Names of the lazy snapshots listed but not readable yet: their sources have not answered. */
  waiting(): string[] {
    return [...this.byName.values()].filter(({ backend }) => !backend).map(({ name }) => name)
  }

  /**
   * Replaces what is served, in the order given: a `{ keep: name }` entry keeps that snapshot as
   * it is; a snapshot (or pending one) is served under its name from now on, for new opens. Every
   * snapshot served before and not kept is retired: gone from the listing, its handles still
   * reading it, its backend closed once the last is released (at once if none is open).
   */
  update(next: readonly (Snapshot | PendingSnapshot | KeptSnapshot)[]): void {
    const byName = new Map<string, Served>()
    for (const entry of next) {
      if ('keep' in entry) {
        const kept = this.byName.get(entry.keep)
        if (!kept) throw new Error(`update() keeps ${entry.keep}, which is not served`)
        byName.set(kept.name, kept)
      } else {
        byName.set(entry.name, this.serve(entry))
      }
    }
    for (const served of this.byName.values()) {
      if (byName.get(served.name) !== served) this.retire(served)
    }
    this.byName = byName
  }

  /** Changes the owner, umask and read deadline shown and used from now on (a reload). */
  setOptions(options: Partial<Pick<SnapshotFsOptions, 'uid' | 'gid' | 'umask' | 'readTimeoutMs'>>): void {
    this.options = { ...this.options, ...options }
  }

  readdir(path: string): string[] {
    if (path === ROOT) return [...this.byName.keys()]
    this.servedAt(path)
    throw new NotADirectoryError(path)
  }

  getattr(path: string): Attributes {
    const { uid, gid, mountedAt, umask = 0 } = this.options
    if (path === ROOT) {
      const times = { atime: mountedAt, mtime: mountedAt, ctime: mountedAt }
      return { mode: DIRECTORY_MODE & ~umask, nlink: 2, uid, gid, size: 0, blocks: 0, blksize: PREFERRED_IO_BYTES, ...times }
    }
    const { length: size, mtime } = this.backendAt(path)
    const blocks = Math.ceil(size / STAT_BLOCK_BYTES)
    const times = { atime: mtime, mtime, ctime: mtime }
    return { mode: FILE_MODE & ~umask, nlink: 1, uid, gid, size, blocks, blksize: PREFERRED_IO_BYTES, ...times }
  }

  /**
   * Opens for reading and returns the file handle later reads and the release name. Read-only
   * opens succeed (O_DIRECT included); anything that could write fails, and so does every open
   * once `stopOpening()` has been called.
   */
  open(path: string, flags: number): number {
    if (path === ROOT) throw new IsADirectoryError(path)
    const served = this.servedAt(path)
    const writes = (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & constants.O_TRUNC) !== 0
    if (writes) throw new ReadOnlyError(path)
    if (!this.opening) throw new ShuttingDownError(path)
    if (!served.backend) throw new UnavailableError(path)
    served.backend.revalidate?.()
    const handle = this.nextHandle()
    this.handles.set(handle, served)
    served.handles++
    return handle
  }

  /**
   * Reads up to `length` bytes at `position` of the snapshot `handle` was opened on into `target`
   * and resolves to the count: short only at EOF, 0 past it. The backend reads into its own buffer
   * and the bytes are copied into `target` only while the request is still unanswered: `target`
   * is the kernel request's memory, which is gone once a timeout has answered it.
   */
  read(handle: number, target: Buffer, length: number, position: number): number | Promise<number> {
    let now: number | undefined
    try {
      now = this.readNow(handle, target, length, position)
    } catch {
      // Never an exception into the FUSE glue: the usual read makes it again and reports its error.
    }
    if (now !== undefined) return now
    const abort = new AbortController()
    if (this.aborting) abort.abort(new ReadAbortedError())
    const reading = this.readHandle(handle, target, length, position, abort)
    this.reads.set(reading, abort)
    const forget = () => this.reads.delete(reading)
    reading.then(forget, forget)
    return reading
  }

  /** Ends a handle; the last one of a retired snapshot closes its backend. */
  async release(handle: number): Promise<void> {
    const served = this.handles.get(handle)
    if (!served) throw new BadHandleError(handle)
    this.handles.delete(handle)
    served.handles--
    if (served.retired && served.handles === 0) await this.closeRetired(served)
  }

  /** Refuses every open from now on (EBUSY), for shutdown; handles already open keep reading. */
  stopOpening(): void {
    this.opening = false
  }

  /** Resolves once every read in flight now has settled; each is bounded by the read deadline. */
  async settleReads(): Promise<void> {
    await Promise.allSettled([...this.reads.keys()])
  }

  /**
   * For a shutdown told to hurry: fails every read in flight at once (EIO), without waiting for
   * its backend, whose request is aborted too; and every later read that would wait for one (the
   * kernel reads a page again on its own after its readahead failed). Cache hits are still served.
   */
  abortReads(): void {
    this.aborting = true
    for (const abort of this.reads.values()) abort.abort(new ReadAbortedError())
  }

  /** The snapshots with open handles, current ones first, for the shutdown log. */
  heldOpen(): HeldSnapshot[] {
    return [...this.byName.values(), ...this.retired]
      .filter(({ handles }) => handles > 0)
      .map(({ name, handles, retired }) => ({ name, handles, retired }))
  }

  statfs(): FsStats {
    let totalBytes = 0
    for (const { backend } of this.snapshots()) totalBytes += backend.length
    const blocks = Math.min(UINT32_MAX, Math.ceil(totalBytes / STATFS_BLOCK_BYTES))
    const files = this.byName.size + 1
    const [bsize, frsize] = [STATFS_BLOCK_BYTES, STATFS_BLOCK_BYTES]
    return { bsize, frsize, blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: NAME_MAX }
  }

  /** Closes every backend, retired ones included, and stops pending opens; reads after this fail. */
  async close(): Promise<void> {
    this.opening = false
    const all = [...this.byName.values(), ...this.retired]
    for (const served of all) served.retired = true
    this.retired.clear()
    await Promise.allSettled(all.map((served) => this.closeRetired(served)))
  }

  private serve(entry: Snapshot | PendingSnapshot): Served {
    const served: Served = { name: entry.name, spec: entry.spec, backend: undefined, pending: undefined, handles: 0, retired: false }
    if ('backend' in entry) {
      served.backend = entry.backend
      return served
    }
    served.pending = entry
    entry.ready.then(
      (backend) => {
        served.pending = undefined
        served.backend = backend
        // Retired while it was being opened: nobody can have opened it, so it closes at once.
        if (served.retired) void backend.close()
      },
      // Rejects only when cancelled, which is when it was retired: nothing left to do.
      () => undefined,
    )
    return served
  }

  private retire(served: Served): void {
    served.retired = true
    if (served.handles > 0) this.retired.add(served)
    else void this.closeRetired(served)
  }

  private async closeRetired(served: Served): Promise<void> {
    this.retired.delete(served)
    served.pending?.cancel()
    await served.backend?.close()
  }

  /**
   * The read answered at once, with no deadline to keep, when the backend has every byte at hand
   * (a cache hit); undefined when it must be waited for, or fails, which readHandle then reports.
   */
  private readNow(handle: number, target: Buffer, length: number, position: number): number | undefined {
    const backend = this.handles.get(handle)?.backend
    if (!backend?.readNow) return undefined
    if (position >= backend.length) return 0
    const pieces = backend.readNow(position, Math.min(length, backend.length - position), handle)
    return pieces && copyPieces(pieces, target)
  }

  private async readHandle(handle: number, target: Buffer, length: number, position: number, abort: AbortController): Promise<number> {
    const served = this.handles.get(handle)
    if (!served) throw new BadHandleError(handle)
    // open() gave the handle out only once the backend was there, and it stays until closed.
    const backend = served.backend!
    if (position >= backend.length) return 0
    const count = Math.min(length, backend.length - position)
    const { readTimeoutMs } = this.options
    // The deadline aborts the backend read, so requests made only for it stop too; so does
    // abortReads(). The handle names the stream, so layers that detect sequential reads tell
    // readers apart.
    const reading = readPieces(backend, position, count, { signal: abort.signal, stream: handle })
    const pieces = await settleBy(reading, readTimeoutMs, abort, () => new ReadTimeoutError(position, count, readTimeoutMs))
    return copyPieces(pieces, target)
  }

  private nextHandle(): number {
    // Wrapping takes four billion opens in one daemon's life, and only then can a number still be
    // in use: no test gets there.
    /* c8 ignore next 3 */
    do {
      this.lastHandle = this.lastHandle === MAX_HANDLE ? 1 : this.lastHandle + 1
    } while (this.handles.has(this.lastHandle))
    return this.lastHandle
  }

  private servedAt(path: string): Served {
    const served = this.byName.get(path.slice(1))
    if (!path.startsWith(ROOT) || !served) throw new NotFoundError(path)
    return served
  }

  private backendAt(path: string): StorageBackend {
    const { backend } = this.servedAt(path)
    if (!backend) throw new UnavailableError(path)
    return backend
  }
}

/** Copies consecutive pieces into `target`: the one copy of each byte the FUSE read path makes. */
function copyPieces(pieces: readonly Buffer[], target: Buffer): number {
  let copied = 0
  for (const piece of pieces) copied += piece.copy(target, copied)
  return copied
}

/**
 * Settles like `work`, or rejects with the reason `abort` is aborted with, whether by the caller
 * or at `ms`, with `timeoutError()`: a backend that does not heed the abort is not waited for.
 */
function settleBy<T>(work: Promise<T>, ms: number, abort: AbortController, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const aborted = new Promise<never>((_, reject) => {
    if (abort.signal.aborted) return reject(abort.signal.reason)
    abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true })
    timer = setTimeout(() => abort.abort(timeoutError()), ms)
  })
  return Promise.race([work, aborted]).finally(() => clearTimeout(timer))
}

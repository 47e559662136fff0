import { constants } from 'node:fs'
import type { StorageBackend } from '../backend/storage-backend.js'
import type { SnapshotSpec } from '../config/config.js'
import { IsADirectoryError, NotADirectoryError, NotFoundError, ReadOnlyError, ReadTimeoutError } from './fs-errors.js'

/** A snapshot as the file system shows it: a name in the root directory and its bytes. */
export interface Snapshot {
  readonly name: string
  readonly backend: StorageBackend
  /** What the snapshot was opened from, when it came from a config (tests may leave it out). */
  readonly spec?: SnapshotSpec | undefined
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
  /** Owner shown on every file; the daemon's own uid and gid are the honest answer. */
  uid: number
  gid: number
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
 * request, so tools that size their buffers from st_blksize (cp, dd with no bs) ask for that much.
 */
const PREFERRED_IO_BYTES = 128 * 1024
const STATFS_BLOCK_BYTES = 4096
const NAME_MAX = 255
/** Linux's mask for the access mode in open flags; Node's fs.constants leaves it out. */
const O_ACCMODE = 0o3
/** statfs fields cross fuse-native as 32-bit integers. */
const UINT32_MAX = 2 ** 32 - 1

/**
 * The file-system semantics of a snapmount mount, free of any FUSE binding so they can be tested
 * without a kernel: a flat root directory with one read-only file per snapshot.
 *
 * This layer owns POSIX read semantics: it clamps a read at EOF and answers 0 past it, so
 * backends only ever see ranges inside the snapshot.
 */
export class SnapshotFs {
  private readonly byName: ReadonlyMap<string, Snapshot>

  constructor(snapshots: readonly Snapshot[], private readonly options: SnapshotFsOptions) {
    this.byName = new Map(snapshots.map((snapshot) => [snapshot.name, snapshot]))
  }

  /**
   * The snapshots served right now, in listing order: what `status` and metrics report on. The
   * list is live: a reload (SIGHUP) replaces it, so call this each time rather than keeping it.
   */
  snapshots(): readonly Snapshot[] {
    return [...this.byName.values()]
  }

  readdir(path: string): string[] {
    if (path === ROOT) return [...this.byName.keys()]
    this.snapshotAt(path)
    throw new NotADirectoryError(path)
  }

  getattr(path: string): Attributes {
    const { uid, gid, mountedAt } = this.options
    if (path === ROOT) {
      const times = { atime: mountedAt, mtime: mountedAt, ctime: mountedAt }
      return { mode: DIRECTORY_MODE, nlink: 2, uid, gid, size: 0, blocks: 0, blksize: PREFERRED_IO_BYTES, ...times }
    }
    const { length: size, mtime } = this.snapshotAt(path).backend
    const blocks = Math.ceil(size / STAT_BLOCK_BYTES)
    const times = { atime: mtime, mtime, ctime: mtime }
    return { mode: FILE_MODE, nlink: 1, uid, gid, size, blocks, blksize: PREFERRED_IO_BYTES, ...times }
  }

  /** Checks an open; read-only opens succeed (O_DIRECT included), anything that could write fails. */
  open(path: string, flags: number): void {
    if (path === ROOT) throw new IsADirectoryError(path)
    this.snapshotAt(path)
    const writes = (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & constants.O_TRUNC) !== 0
    if (writes) throw new ReadOnlyError(path)
  }

  /**
   * Reads up to `length` bytes at `position` into `target` and resolves to the count: short only
   * at EOF, 0 past it. The backend reads into its own buffer and the bytes are copied into
   * `target` only while the request is still unanswered: `target` is the kernel request's memory,
   * which is gone once a timeout has answered it.
   */
  async read(path: string, target: Buffer, length: number, position: number): Promise<number> {
    const { backend } = this.snapshotAt(path)
    if (position >= backend.length) return 0
    const count = Math.min(length, backend.length - position)
    const { readTimeoutMs } = this.options
    // The deadline also aborts the backend read, so requests made only for it stop too.
    const abort = new AbortController()
    const bytes = await withDeadline(backend.readExact(position, count, { signal: abort.signal }), readTimeoutMs, () => {
      const timeout = new ReadTimeoutError(position, count, readTimeoutMs)
      abort.abort(timeout)
      return timeout
    })
    return bytes.copy(target, 0, 0, count)
  }

  statfs(): FsStats {
    let totalBytes = 0
    for (const { backend } of this.byName.values()) totalBytes += backend.length
    const blocks = Math.min(UINT32_MAX, Math.ceil(totalBytes / STATFS_BLOCK_BYTES))
    const files = this.byName.size + 1
    const [bsize, frsize] = [STATFS_BLOCK_BYTES, STATFS_BLOCK_BYTES]
    return { bsize, frsize, blocks, bfree: 0, bavail: 0, files, ffree: 0, favail: 0, namemax: NAME_MAX }
  }

  /** Closes every backend; reads after this fail. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.byName.values()].map(({ backend }) => backend.close()))
  }

  private snapshotAt(path: string): Snapshot {
    const snapshot = this.byName.get(path.slice(1))
    if (!path.startsWith(ROOT) || !snapshot) throw new NotFoundError(path)
    return snapshot
  }
}

/** Settles like `work`, or rejects with `timeoutError()` if `work` has not settled by `ms`. */
function withDeadline<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import type { Logger } from '../log.js'
import type { SourceIdentity } from '../backend/storage-backend.js'
import { describe } from '../backend/errors.js'
import { CRC32C_DIGEST, type BlockDigest } from './block-digest.js'
import { BlockFiles } from './block-files.js'
import { CacheIndex, type BlockKey, type BlockRow } from './cache-index.js'
import { S3Fifo } from './s3-fifo.js'

export interface DiskCacheOptions {
  /** The cache directory (`cache_dir`): made if absent; one daemon at a time (locked). */
  dir: string
  /** Hard bound on the bytes of block files, over every snapshot (`disk_cache_size_gib`). */
  capacityBytes: number
  /** The block size (the memory cache's): part of each identity's key, as rows are per block. */
  blockBytes: number
  logger: Logger
  /** How blocks are checked when read back; CRC32C by default (block-digest.ts). */
  digest?: BlockDigest
  /** Milliseconds between index commits of written blocks; injected by tests. */
  commitDelayMs?: number
}

/** What the disk cache has done since the daemon started (metrics, `status`). Counters only grow. */
export interface DiskCacheStats {
  /** Blocks read from disk that passed their check. */
  hits: number
  /** Blocks a read needed that were not on disk (fetched from the source). */
  misses: number
  /** Blocks read from disk that failed their check (short, wrong digest, unreadable): dropped and fetched again. */
  verifyFailures: number
  /** Blocks removed to stay under the bound. */
  evictions: number
  /** Bytes of block files now (a block counts whole 4 KiB pages), and the bound on them. */
  bytesInUse: number
  capacityBytes: number
  /** Blocks written, and their bytes. */
  writes: number
  bytesWritten: number
  /** Writes or index commits that failed (ENOSPC, EACCES, EIO): those blocks stay uncached. */
  writeErrors: number
  /** Blocks not written: no room (the rest is being written), or writes paused after an error. */
  writesSkipped: number
}

/** One snapshot identity's place in the cache, from `attach`. */
export interface DiskSnapshot {
  readonly id: number
  readonly key: string
  /** For log lines: the identity's source. */
  readonly source: string
}

interface Stored {
  length: number
  digest: Buffer
  algo: string
}

/** Space a block file takes: whole filesystem pages. */
const PAGE_BYTES = 4096
/**
 * Blocks copied and waiting for the disk: beyond this, reads wait before handing theirs over (a
 * slow disk must not grow the daemon's memory, and a block read once but not kept would be
 * fetched again after every restart). 64 MiB is 16 of the largest requests the memory cache
 * makes: bursts pass without waiting; only a disk slower than the source for long slows readers.
 */
const MAX_PENDING_BYTES = 64 * 1024 * 1024
/** Block files written at once: libuv has four threads, and reads of cached blocks need them too. */
const WRITE_CONCURRENCY = 2
/**
 * Index commits are batched: one transaction for the writes that finished in one turn of the event
 * loop (0: setImmediate). No longer, as a kill loses the blocks written and not yet committed
 * (their files become orphans, fetched again); and a commit is cheap: in WAL mode with
 * synchronous=NORMAL it appends to the log without an fsync (measured: ~50 µs).
 */
const COMMIT_DELAY_MS = 0
/** After a failed write (a full disk), writing pauses this long; reads go on from the source. */
const WRITE_PAUSE_MS = 5000

/**
 * A bounded, persistent cache of remote snapshots' blocks in a directory, shared by every remote
 * snapshot of a daemon (disk-cached-backend.ts puts it below the memory cache).
 *
 * A block is kept under its snapshot's identity key (a hash of source, size, strong validator and
 * block size): another version of the object has another key and never sees the old blocks.
 * Writes go behind the reads that fetched the blocks: a block is copied, its digest taken, its file
 * written and fdatasync'd, and only then is its index row committed (batched, one transaction per
 * turn of the event loop). At start the index is trusted as it is, with no scan of the data: a block is checked
 * when read, against the digest in its row, and one that fails (torn, truncated, zeroed, edited)
 * is logged, counted, dropped and fetched again, so no wrong byte is ever served. A kill -9 at
 * any point leaves at worst files with no row (orphans, removed when their snapshot is attached)
 * and rows whose file is gone (a miss when read).
 *
 * The bound counts the block files on disk plus those being written, so the directory never holds
 * more than it; eviction (s3-fifo.ts) unlinks a file before its row is deleted.
 */
export class DiskCache {
  readonly blockBytes: number
  readonly capacityBytes: number
  private readonly digest: BlockDigest
  private readonly logger: Logger
  private readonly files: BlockFiles
  private readonly stored = new Map<number, Map<number, Stored>>()
  private readonly bytesBySnapshot = new Map<number, number>()
  private readonly keys = new Map<number, string>()
  private readonly fifo: S3Fifo<string>
  /** Bytes being written: counted against the bound from the start of the write. */
  private reservedBytes = 0
  private pendingBytes = 0
  /** Blocks being written or waiting for their row's commit, by `id/block`. */
  private readonly writing = new Set<string>()
  private readonly queue: Array<() => Promise<void>> = []
  private running = 0
  private readonly idle: Array<() => void> = []
  /** Reads waiting for the blocks pending to go under MAX_PENDING_BYTES. */
  private readonly roomWaiters: Array<() => void> = []
  private puts: BlockRow[] = []
  private removes: BlockKey[] = []
  /** Cancels the commit scheduled, if any. */
  private cancelCommit: (() => void) | undefined
  private readonly commitDelayMs: number
  private seq = 0
  private pausedUntil = 0
  private readonly loggedErrors = new Set<string>()
  private readonly counters = { hits: 0, misses: 0, verifyFailures: 0, evictions: 0, writes: 0, bytesWritten: 0, writeErrors: 0, writesSkipped: 0 }
  private closed = false

  private constructor(private readonly index: CacheIndex, options: DiskCacheOptions) {
    this.blockBytes = options.blockBytes
    this.capacityBytes = options.capacityBytes
    this.digest = options.digest ?? CRC32C_DIGEST
    this.logger = options.logger
    this.commitDelayMs = options.commitDelayMs ?? COMMIT_DELAY_MS
    this.files = new BlockFiles(options.dir)
    this.fifo = new S3Fifo(options.capacityBytes, Math.ceil(options.capacityBytes / options.blockBytes))
  }

  /**
   * Opens the cache in `options.dir`, making it if need be, and takes its lock: a
   * DiskCacheLockedError when another process holds it; a system or SQLite error when the
   * directory cannot be used. Reads the index (rows only) to rebuild the eviction queues.
   */
  static open(options: DiskCacheOptions): DiskCache {
    if (!Number.isSafeInteger(options.capacityBytes) || options.capacityBytes < options.blockBytes) {
      throw new RangeError(`capacityBytes must be at least one block (${options.blockBytes}), not ${options.capacityBytes}`)
    }
    mkdirSync(options.dir, { recursive: true })
    const cache = new DiskCache(CacheIndex.open(options.dir), options)
    cache.load()
    return cache
  }

  private load(): void {
    for (const { id, key } of this.index.snapshots()) this.keys.set(id, key)
    for (const row of this.index.blocks()) {
      this.remember(row.snapshot, row.block, { length: row.length, digest: row.digest, algo: row.algo }, true)
      this.seq = Math.max(this.seq, row.seq)
    }
    // A smaller bound than last time: down to it now.
    this.makeRoom(0)
    void this.sweepUnknown()
  }

  /** Removes the folders of identities the index does not know (an index emptied by a new format). */
  private async sweepUnknown(): Promise<void> {
    try {
      for (const key of await this.files.keys()) {
        // Checked now, not before the listing: a snapshot attached meanwhile is known.
        if (![...this.keys.values()].includes(key)) await this.files.removeAll(key)
      }
    } catch (err) {
      this.logOnce('sweep', `disk cache: could not clear unknown data in ${this.files.dir}: ${describe(err)}`)
    }
  }

  /** The place of snapshot identity `identity`; its orphan files (a crash's) are removed in the background. */
  attach(identity: SourceIdentity): DiskSnapshot {
    const key = identityKey(identity, this.blockBytes)
    const id = this.index.snapshotId(key, identity.source)
    this.keys.set(id, key)
    if (!this.stored.has(id)) this.stored.set(id, new Map())
    const snapshot = { id, key, source: identity.source }
    void this.files
      .prepare(key)
      .then(() => this.files.sweep(key, (block) => this.stored.get(id)?.has(block) === true || this.writing.has(`${id}/${block}`)))
      .catch((err: unknown) => this.writeFailed(err))
    return snapshot
  }

  /** Whether block `block` of `snapshot` is on disk (indexed). */
  has(snapshot: DiskSnapshot, block: number): boolean {
    return this.stored.get(snapshot.id)?.has(block) === true
  }

  /** Bytes of `snapshot`'s block files. */
  bytesOf(snapshot: DiskSnapshot): number {
    return this.bytesBySnapshot.get(snapshot.id) ?? 0
  }

  /** Counts blocks a read needed that were not on disk. */
  missed(blocks: number): void {
    this.counters.misses += blocks
  }

  /**
   * Reads block `block` into `into` (exactly its length) and checks it: true when `into` now holds
   * the right bytes; false when the block is not on disk, or failed its check (then it is logged,
   * counted and dropped): the caller fetches it from the source.
   */
  async read(snapshot: DiskSnapshot, block: number, into: Buffer): Promise<boolean> {
    const stored = this.stored.get(snapshot.id)?.get(block)
    if (!stored) return false
    let why: string
    try {
      const got = await this.files.read(snapshot.key, block, into)
      if (got < into.length || stored.length !== into.length) why = `${got} of ${into.length} bytes on disk`
      else if (stored.algo !== this.digest.name) why = `stored with ${stored.algo}, checked with ${this.digest.name}`
      else if (!this.digest.matches(into, block, stored.digest)) why = `${this.digest.name} mismatch`
      else {
        this.counters.hits++
        this.fifo.hit(`${snapshot.id}/${block}`)
        return true
      }
    } catch (err) {
      why = describe(err)
    }
    // Unless it was evicted meanwhile (its file then may be gone): not a failure of the block.
    if (this.stored.get(snapshot.id)?.get(block) !== stored) return false
    this.counters.verifyFailures++
    this.logger.warn(`disk cache: block ${block} of ${snapshot.source} failed its check (${why}): dropped, fetched again from the source`)
    this.forget(snapshot.id, block)
    return false
  }

  /**
   * Resolves once `bytes` more can wait for the disk (at once, mostly): a read calls it before
   * handing over what it fetched, so writes keep up with reads. At once when writes are paused
   * (a full disk) or the cache is closed: those blocks are then not kept.
   */
  async writable(bytes: number): Promise<void> {
    while (!this.closed && Date.now() >= this.pausedUntil && this.pendingBytes > 0 && this.pendingBytes + bytes > MAX_PENDING_BYTES) {
      await new Promise<void>((wake) => this.roomWaiters.push(wake))
    }
  }

  /**
   * Keeps a copy of `data`, block `block` of `snapshot` as the source gave it, to be written
   * behind the read; not kept when it is already, or when the disk cannot take it now.
   */
  store(snapshot: DiskSnapshot, block: number, data: Buffer): void {
    const name = `${snapshot.id}/${block}`
    if (this.closed || this.writing.has(name) || this.has(snapshot, block)) return
    const bytes = pages(data.length)
    // Not bounded by MAX_PENDING_BYTES here: `writable` holds reads back before they store, and the
    // reads it wakes together overshoot it by at most one request each (4 MiB).
    if (Date.now() < this.pausedUntil || !this.makeRoom(bytes)) {
      this.counters.writesSkipped++
      return
    }
    const copy = Buffer.from(data)
    const row: BlockRow = { snapshot: snapshot.id, block, length: copy.length, digest: this.digest.digest(copy, block), algo: this.digest.name, seq: ++this.seq }
    this.reservedBytes += bytes
    this.pendingBytes += copy.length
    this.writing.add(name)
    this.queue.push(async () => {
      try {
        await this.files.write(snapshot.key, block, copy)
        this.counters.writes++
        this.counters.bytesWritten += copy.length
        this.puts.push(row)
        this.scheduleCommit()
      } catch (err) {
        this.reservedBytes -= bytes
        this.writing.delete(name)
        this.writeFailed(err)
      } finally {
        this.pendingBytes -= copy.length
        this.roomWaiters.splice(0).forEach((wake) => wake())
      }
    })
    this.drain()
  }

  private drain(): void {
    while (this.running < WRITE_CONCURRENCY && this.queue.length > 0) {
      const job = this.queue.shift()!
      this.running++
      void job().finally(() => {
        this.running--
        this.drain()
        if (this.running === 0 && this.queue.length === 0) this.idle.splice(0).forEach((wake) => wake())
      })
    }
  }

  private scheduleCommit(): void {
    if (this.cancelCommit) return
    if (this.commitDelayMs === 0) {
      const immediate = setImmediate(() => this.commit())
      this.cancelCommit = () => clearImmediate(immediate)
    } else {
      const timer = setTimeout(() => this.commit(), this.commitDelayMs)
      this.cancelCommit = () => clearTimeout(timer)
    }
  }

  /** Commits the rows of written blocks and the deletions of dropped ones, in one transaction. */
  private commit(): void {
    this.cancelCommit?.()
    this.cancelCommit = undefined
    const puts = this.puts
    const removes = this.removes
    this.puts = []
    this.removes = []
    if (puts.length === 0 && removes.length === 0) return
    try {
      this.index.commit(puts, removes)
    } catch (err) {
      for (const row of puts) {
        this.reservedBytes -= pages(row.length)
        this.writing.delete(`${row.snapshot}/${row.block}`)
        void this.files.remove(this.keys.get(row.snapshot)!, row.block).catch(() => {})
      }
      this.writeFailed(err)
      return
    }
    for (const row of puts) {
      this.reservedBytes -= pages(row.length)
      this.writing.delete(`${row.snapshot}/${row.block}`)
      this.remember(row.snapshot, row.block, { length: row.length, digest: row.digest, algo: row.algo }, false)
    }
  }

  private remember(snapshot: number, block: number, stored: Stored, restart: boolean): void {
    let blocks = this.stored.get(snapshot)
    if (!blocks) this.stored.set(snapshot, (blocks = new Map()))
    blocks.set(block, stored)
    this.bytesBySnapshot.set(snapshot, (this.bytesBySnapshot.get(snapshot) ?? 0) + pages(stored.length))
    this.fifo.add(`${snapshot}/${block}`, pages(stored.length), restart)
  }

  /** Drops a block: out of the maps and the queues now, its file unlinked, its row deleted at the next commit. */
  private forget(snapshot: number, block: number): void {
    const stored = this.stored.get(snapshot)?.get(block)
    if (!stored) return
    this.stored.get(snapshot)!.delete(block)
    this.bytesBySnapshot.set(snapshot, this.bytesBySnapshot.get(snapshot)! - pages(stored.length))
    this.fifo.delete(`${snapshot}/${block}`)
    this.removes.push({ snapshot, block })
    this.scheduleCommit()
    void this.files.remove(this.keys.get(snapshot)!, block).catch((err: unknown) => this.writeFailed(err))
  }

  /** Evicts until `bytes` more fit under the bound; false when they cannot (the rest is being written). */
  private makeRoom(bytes: number): boolean {
    while (this.fifo.bytes + this.reservedBytes + bytes > this.capacityBytes) {
      const victim = this.fifo.victim()
      if (victim === undefined) return false
      const [snapshot, block] = victim.split('/').map(Number) as [number, number]
      // victim() took it out of the queues already; forget() does the rest.
      this.forget(snapshot, block)
      this.counters.evictions++
    }
    return true
  }

  /** A write, unlink or commit failed: logged once per kind, counted, and writing paused for a while. */
  private writeFailed(err: unknown): void {
    this.counters.writeErrors++
    this.pausedUntil = Date.now() + WRITE_PAUSE_MS
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    this.logOnce(code, `disk cache: cannot write to ${this.files.dir} (${describe(err)}): blocks are read from the source meanwhile`)
  }

  private logOnce(kind: string, message: string): void {
    if (this.loggedErrors.has(kind)) return
    this.loggedErrors.add(kind)
    this.logger.warn(message)
  }

  stats(): DiskCacheStats {
    return { ...this.counters, bytesInUse: this.fifo.bytes + this.reservedBytes, capacityBytes: this.capacityBytes }
  }

  /** Waits for the writes under way and commits their rows. */
  async flush(): Promise<void> {
    if (this.running > 0 || this.queue.length > 0) await new Promise<void>((wake) => this.idle.push(wake))
    this.commit()
  }

  /** Finishes the writes under way, commits, and releases the directory's lock. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.roomWaiters.splice(0).forEach((wake) => wake())
    await this.flush()
    this.index.close()
  }
}

/** The key of an identity: what its blocks are filed under, so only the same identity finds them. */
export function identityKey(identity: SourceIdentity, blockBytes: number): string {
  const { source, size, validator } = identity
  return createHash('sha256').update(JSON.stringify([source, size, validator, blockBytes])).digest('hex').slice(0, 32)
}

function pages(bytes: number): number {
  return Math.ceil(bytes / PAGE_BYTES) * PAGE_BYTES
}

import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import type { Logger } from '../log.js'
import type { SourceIdentity } from '../backend/storage-backend.js'
import { describe } from '../backend/errors.js'
import { XXH3_DIGEST, type BlockDigest } from './block-digest.js'
import { CacheIndex, type BlockKey, type BlockRow } from './cache-index.js'
import { SlotFile, SYNC_READ_MAX_BYTES } from './slot-file.js'
import { S3Fifo } from './s3-fifo.js'
import { AlignedChunks } from './aligned-chunks.js'

export interface DiskCacheOptions {
  /** The cache directory (`cache_dir`): made if absent; one daemon at a time (locked). */
  dir: string
  /** Hard bound on the data file's bytes, over every snapshot (`disk_cache_size_gib`). */
  capacityBytes: number
  /** The block size (the memory cache's): the data file's slot size. */
  blockBytes: number
  logger: Logger
  /** How blocks are checked when read back; XXH3 by default (block-digest.ts). */
  digest?: BlockDigest
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
  /** Bytes of the slots holding blocks or being written now, and the bound on them. */
  bytesInUse: number
  capacityBytes: number
  /** Blocks written, and their bytes. */
  writes: number
  bytesWritten: number
  /** Writes, syncs or index commits that failed (ENOSPC, EACCES, EIO): those blocks stay uncached. */
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
  slot: number
  length: number
  digest: Buffer
  algo: string
}

/** A block written and waiting for its fdatasync and its row's commit. */
interface Written {
  row: BlockRow
  name: string
}

/** A block kept and waiting for its slot and its write. */
interface Kept {
  row: BlockRow
  name: string
  /**
   * Its bytes, in page-aligned memory with room to round its length up to DIRECT_ALIGN: the
   * caller's own, held with its run (ReadOptions.holdInto), or a copy in `chunk`.
   */
  data: Buffer
  /** The chunk of aligned-chunks.ts holding the copy, given back once the block is written (or not). */
  chunk?: Buffer
}

/**
 * Blocks kept and waiting for the disk: beyond this, reads wait before handing theirs over (a
 * slow disk must not grow the daemon's memory: held buffers and copies alike). It is also what a
 * kill -9 can lose beyond the rows not yet committed: blocks fetched and acknowledged to the
 * reader but not yet on disk. 16 MiB is 4 of the largest requests the memory cache makes, ~50 ms of a 300 MB/s source: bursts
 * pass without waiting, while direct writes (slot-file.ts) keep up at ~700 MB/s here; only a disk
 * slower than the source for long slows readers.
 */
const MAX_PENDING_BYTES = 16 * 1024 * 1024
/**
 * The aligned memory copies live in (blocks whose memory cannot be held: no memory cache above,
 * or its buffer was not page-aligned): twice the bound, as a read with nothing waiting before it
 * passes the bound by its own size. A read larger still waits for chunks between its blocks.
 * Mapped on the first copy only.
 */
const COPY_MEMORY_BYTES = 2 * MAX_PENDING_BYTES
/** Runs written at once: libuv has four threads, and reads of cached blocks need them too. */
const WRITE_CONCURRENCY = 2
/**
 * Rows are committed in batches: one fdatasync and one transaction per 20 ms of writes, or per 64
 * blocks (8 MiB of 128 KiB blocks), whichever comes first. An fdatasync per block or two (a commit
 * per turn of the event loop) cost more CPU than the writes; a kill loses at most the blocks of
 * one batch beyond those still waiting to be written.
 */
const COMMIT_DELAY_MS = 20
const COMMIT_BLOCKS = 64
/** After a failed write (a full disk), writing pauses this long; reads go on from the source. */
const WRITE_PAUSE_MS = 5000

/**
 * A bounded, persistent cache of remote snapshots' blocks in a directory, shared by every remote
 * snapshot of a daemon (disk-cached-backend.ts puts it below the memory cache).
 *
 * A block is kept under its snapshot's identity key (a hash of source, size, strong validator and
 * block size): another version of the object has another key and never sees the old blocks.
 * Writes go behind the reads that fetched the blocks: a block is held where the memory cache
 * fetched it (page-aligned, ReadOptions.holdInto) or else copied, its digest taken, and it is
 * written from there into a free slot of the data file (slot-file.ts). The writes that finished within
 * 20 ms (or 64 of them) are then made durable by one fdatasync, and only then are their rows
 * committed to the index, in one transaction. At start the index is trusted as it is, with no scan
 * of the data: a block is checked when read, against the digest in its row, and one that fails
 * (torn, truncated, zeroed, edited) is logged, counted, dropped and fetched again, so no wrong
 * byte is ever served. A kill -9 at any point loses at worst the blocks whose rows were not yet
 * committed: their slots are free space.
 *
 * The bound is in slots: the data file never has more than `capacityBytes / blockBytes`. Eviction
 * (s3-fifo.ts) drops a block's row; its slot is written over only once that deletion is
 * committed (and no read of it is in flight), so a row never names a slot holding another block.
 */
export class DiskCache {
  readonly blockBytes: number
  readonly capacityBytes: number
  /** The cache directory (`cache_dir`): boot profiles snapmount records by itself go in it too (src/profile/cache-path.ts). */
  readonly dir: string
  private readonly maxSlots: number
  private readonly digest: BlockDigest
  private readonly logger: Logger
  private readonly stored = new Map<number, Map<number, Stored>>()
  private readonly blocksBySnapshot = new Map<number, number>()
  private readonly keys = new Map<number, string>()
  private readonly fifo: S3Fifo<string>
  private readonly chunks: AlignedChunks
  /** Where `readNow` reads: one read at a time, copied out by its caller before the next. */
  private scratch: Buffer | undefined
  /** Slots never used below `nextSlot`, or free again. */
  private readonly holes: number[] = []
  private nextSlot = 0
  /** Slots of dropped blocks whose deletion is not yet committed. */
  private uncommittedFree: number[] = []
  /** Reads in flight per slot: a freed slot is not reused under them. */
  private readonly reading = new Map<number, number>()
  private readonly freedWhileRead = new Set<number>()
  /** Blocks being written or waiting for their commit, by `id/block`; counted against the bound. */
  private readonly writing = new Set<string>()
  private pendingBytes = 0
  private readonly queue: Array<() => Promise<void>> = []
  private running = 0
  private readonly idle: Array<() => void> = []
  /** Reads waiting for the blocks pending to go under MAX_PENDING_BYTES. */
  private readonly roomWaiters: Array<() => void> = []
  /** Writes waiting for a slot: one frees when a commit makes an eviction durable. */
  private readonly slotWaiters: Array<() => void> = []
  private written: Written[] = []
  private removes: BlockKey[] = []
  private commitScheduled = false
  private committing: Promise<void> | undefined
  private seq = 0
  private pausedUntil = 0
  private readonly loggedErrors = new Set<string>()
  private readonly counters = { hits: 0, misses: 0, verifyFailures: 0, evictions: 0, writes: 0, bytesWritten: 0, writeErrors: 0, writesSkipped: 0 }
  private closed = false

  private constructor(
    private readonly index: CacheIndex,
    private readonly file: SlotFile,
    options: DiskCacheOptions,
  ) {
    this.blockBytes = options.blockBytes
    this.capacityBytes = options.capacityBytes
    this.dir = options.dir
    this.maxSlots = Math.floor(options.capacityBytes / options.blockBytes)
    this.digest = options.digest ?? XXH3_DIGEST
    this.logger = options.logger
    this.fifo = new S3Fifo(this.maxSlots * options.blockBytes, this.maxSlots)
    this.chunks = new AlignedChunks(options.blockBytes, Math.max(4, Math.ceil(COPY_MEMORY_BYTES / options.blockBytes)))
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
    const index = CacheIndex.open(options.dir)
    let file: SlotFile
    try {
      index.useSlotBytes(options.blockBytes)
      file = new SlotFile(options.dir, options.blockBytes)
    } catch (err) {
      index.close()
      throw err
    }
    const cache = new DiskCache(index, file, options)
    cache.load()
    return cache
  }

  private load(): void {
    for (const { id, key } of this.index.snapshots()) this.keys.set(id, key)
    const beyond: BlockKey[] = []
    const used = new Set<number>()
    let highest = -1
    for (const row of this.index.blocks()) {
      this.seq = Math.max(this.seq, row.seq)
      // A lower bound than last time: the blocks past it go.
      if (row.slot >= this.maxSlots) beyond.push(row)
      else {
        this.remember(row.snapshot, row.block, { slot: row.slot, length: row.length, digest: row.digest, algo: row.algo }, true)
        used.add(row.slot)
        highest = Math.max(highest, row.slot)
      }
    }
    if (beyond.length > 0) this.index.commit([], beyond)
    // Not Math.max(...used): millions of rows (4 KiB blocks) would overflow the call's arguments.
    this.nextSlot = highest + 1
    for (let slot = this.nextSlot - 1; slot >= 0; slot--) if (!used.has(slot)) this.holes.push(slot)
    try {
      // Past the last slot in use is free space: given back (a lower bound, a crash's last writes).
      this.file.truncate(this.nextSlot)
    } catch (err) {
      this.logOnce('truncate', `disk cache: cannot trim ${this.file.path} (${describe(err)})`)
    }
  }

  /** The place of snapshot identity `identity`. */
  attach(identity: SourceIdentity): DiskSnapshot {
    const key = identityKey(identity, this.blockBytes)
    const id = this.index.snapshotId(key, identity.source)
    this.keys.set(id, key)
    return { id, key, source: identity.source }
  }

  /** Where block `block` of the identity filed under `key` is: the data file and the byte range (tests damage it). */
  placeOf(key: string, block: number): { path: string; offset: number; length: number } | undefined {
    const id = [...this.keys].find(([, k]) => k === key)?.[0]
    const stored = id === undefined ? undefined : this.stored.get(id)?.get(block)
    return stored && { path: this.file.path, offset: stored.slot * this.blockBytes, length: stored.length }
  }

  /** Whether block `block` of `snapshot` is on disk (indexed). */
  has(snapshot: DiskSnapshot, block: number): boolean {
    return this.stored.get(snapshot.id)?.has(block) === true
  }

  /** Bytes of `snapshot`'s blocks on disk (whole slots). */
  bytesOf(snapshot: DiskSnapshot): number {
    return (this.blocksBySnapshot.get(snapshot.id) ?? 0) * this.blockBytes
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
    return (await this.readRun(snapshot, block, [into]))[0]!
  }

  /**
   * `read` for consecutive blocks from `firstBlock`, `intos[i]` the place of block firstBlock + i
   * (consecutive places of one buffer, each the block's length). Blocks in consecutive slots are
   * read with one pread (a sequential fill leaves them so), then each is checked on its own.
   * `pageAligned`: the places are views of memory whose ArrayBuffer starts on a page (the memory
   * cache's arena, ReadOptions.holdInto), which SlotFile.read may then read into in place.
   */
  async readRun(snapshot: DiskSnapshot, firstBlock: number, intos: readonly Buffer[], pageAligned = false): Promise<boolean[]> {
    const found = intos.map((_, index) => this.stored.get(snapshot.id)?.get(firstBlock + index))
    const results: boolean[] = intos.map(() => false)
    const reads: Array<Promise<void>> = []
    for (let index = 0; index < intos.length; index++) {
      if (!found[index]) continue
      let end = index + 1
      while (end < intos.length && found[end] && found[end]!.slot === found[end - 1]!.slot + 1) end++
      reads.push(this.readSlots(snapshot, firstBlock, index, end, found, intos, results, pageAligned))
      index = end - 1
    }
    await Promise.all(reads)
    return results
  }

  /** Reads blocks `[from, end)` of a run, in consecutive slots, with one pread, and checks each. */
  private async readSlots(snapshot: DiskSnapshot, firstBlock: number, from: number, end: number, found: ReadonlyArray<Stored | undefined>, intos: readonly Buffer[], results: boolean[], pageAligned: boolean): Promise<void> {
    const first = intos[from]!
    const bytes = intos.slice(from, end).reduce((sum, into) => sum + into.length, 0)
    const view = Buffer.from(first.buffer, first.byteOffset, bytes)
    const slots = found.slice(from, end).map((stored) => stored!.slot)
    for (const slot of slots) this.reading.set(slot, (this.reading.get(slot) ?? 0) + 1)
    let got = 0
    let failure: unknown
    try {
      got = await this.file.read(slots[0]!, view, 0, pageAligned)
      // An I/O error reading the data file (EIO from a failing disk): no test can make one.
      /* c8 ignore next 3 */
    } catch (err) {
      failure = err
    } finally {
      slots.forEach((slot) => this.doneReading(slot))
    }
    for (let index = from, at = 0; index < end; at += intos[index]!.length, index++) {
      const into = intos[index]!
      const block = firstBlock + index
      const stored = found[index]!
      let why: string
      // The same identity and block size give the same block length: `into` is stored.length long.
      /* c8 ignore next: see the catch above */
      if (failure !== undefined) why = describe(failure)
      else if (got < at + into.length) why = `${Math.max(0, got - at)} of ${into.length} bytes on disk`
      else if (stored.algo !== this.digest.name) why = `stored with ${stored.algo}, checked with ${this.digest.name}`
      else {
        try {
          if (this.digest.matches(into, block, stored.digest)) {
            this.counters.hits++
            this.fifo.hit(`${snapshot.id}/${block}`)
            results[index] = true
            continue
          }
          why = `${this.digest.name} mismatch`
        } catch (err) {
          why = describe(err)
        }
      }
      this.failed(snapshot, block, stored, why)
    }
  }

  /**
   * Bytes `[from, to)` of block `block`, read and checked at once, when the digest checks pieces
   * (BlockDigest.pieceBytes) and the pieces under the range are in the page cache: only those
   * pieces are read (a pread on the JS thread) and checked, not the whole block. Undefined when
   * it cannot, or the pieces fail their check (the block is then dropped, as by `read`): the
   * caller reads as usual. The bytes are a view of a buffer the next call reuses: copy them first.
   */
  readNow(snapshot: DiskSnapshot, block: number, from: number, to: number): Buffer | undefined {
    const span = this.pieceSpan(snapshot, block, from, to)
    if (!span || span.end - span.start > SYNC_READ_MAX_BYTES) return undefined
    this.scratch ??= Buffer.allocUnsafeSlow(SYNC_READ_MAX_BYTES)
    const into = this.scratch.subarray(0, span.end - span.start)
    let got: number | undefined
    try {
      got = this.file.readNow(span.stored.slot, span.start, into)
      if (got === undefined) return undefined
      // An I/O error reading the data file (EIO from a failing disk): no test can make one.
      /* c8 ignore next 3 */
    } catch (err) {
      return this.checkPieces(snapshot, block, span, from, to, into, err)
    }
    return this.checkPieces(snapshot, block, span, from, to, into, got)
  }

  /**
   * `readNow` for pieces that are not in the page cache: only the pieces under `[from, to)` are
   * read, past the page cache (slot-file.ts), and checked, where the memory cache would fetch the
   * whole block for a small random read. Undefined when the digest has no pieces or the block is
   * not on disk or fails its check (dropped): the caller reads as usual. The bytes are the caller's.
   */
  async readPieces(snapshot: DiskSnapshot, block: number, from: number, to: number): Promise<Buffer | undefined> {
    const span = this.pieceSpan(snapshot, block, from, to)
    if (!span) return undefined
    const slot = span.stored.slot
    const into = Buffer.allocUnsafe(span.end - span.start)
    this.reading.set(slot, (this.reading.get(slot) ?? 0) + 1)
    let got: number | Error
    try {
      got = await this.file.read(slot, into, span.start)
      // An I/O error reading the data file (EIO from a failing disk): no test can make one.
      /* c8 ignore next 3 */
    } catch (err) {
      got = err as Error
    } finally {
      this.doneReading(slot)
    }
    // Closed meanwhile: the descriptor too, so an error is no sign of a damaged block.
    if (this.closed) return undefined
    return this.checkPieces(snapshot, block, span, from, to, into, got)
  }

  /** The whole pieces of block `block` under `[from, to)`, and where it is stored; undefined when it is not on disk, or cannot be checked by pieces. */
  private pieceSpan(snapshot: DiskSnapshot, block: number, from: number, to: number): { stored: Stored; first: number; start: number; end: number } | undefined {
    const stored = this.stored.get(snapshot.id)?.get(block)
    const pieceBytes = this.digest.pieceBytes
    if (this.closed || !stored || !pieceBytes || stored.algo !== this.digest.name) return undefined
    const first = Math.floor(from / pieceBytes)
    return { stored, first, start: first * pieceBytes, end: Math.min(Math.ceil(to / pieceBytes) * pieceBytes, stored.length) }
  }

  /** Checks pieces read into `into` (`got`: the bytes read, or the read's error): the bytes `[from, to)` of the block when right, else undefined, the block dropped. */
  private checkPieces(snapshot: DiskSnapshot, block: number, span: { stored: Stored; first: number; start: number }, from: number, to: number, into: Buffer, got: number | unknown): Buffer | undefined {
    let why: string
    try {
      // A read's error: see readNow's and readPieces' catch.
      /* c8 ignore next */
      if (typeof got !== 'number') why = describe(got)
      else if (got < into.length) why = `${got} of ${into.length} bytes on disk`
      else if (this.digest.matchesPieces!(into, block, span.stored.digest, span.first)) {
        this.counters.hits++
        this.fifo.hit(`${snapshot.id}/${block}`)
        return into.subarray(from - span.start, to - span.start)
      } else why = `${this.digest.name} mismatch`
    } catch (err) {
      why = describe(err)
    }
    this.failed(snapshot, block, span.stored, why)
    return undefined
  }

  /** Block `block`, as `stored`, failed its check: logged, counted and dropped (fetched again by the caller). */
  private failed(snapshot: DiskSnapshot, block: number, stored: Stored, why: string): void {
    // Another reader of the same block found it bad first, and dropped it: counted once.
    if (this.stored.get(snapshot.id)?.get(block) !== stored) return
    this.counters.verifyFailures++
    this.logger.warn(`disk cache: block ${block} of ${snapshot.source} failed its check (${why}): dropped, fetched again from the source`)
    this.forget(snapshot.id, block)
  }

  private doneReading(slot: number): void {
    const left = this.reading.get(slot)! - 1
    if (left > 0) {
      this.reading.set(slot, left)
      return
    }
    this.reading.delete(slot)
    /* c8 ignore next: see free() */
    if (this.freedWhileRead.delete(slot)) this.free(slot)
  }

  /**
   * Keeps `data`, blocks `firstBlock`, `firstBlock + 1`... of `snapshot` as the source gave them
   * (every block whole but perhaps the image's last), to be written behind the read, consecutive
   * blocks as runs written together. With `holdData` (ReadOptions.holdInto: `data` is page-aligned
   * memory its owner keeps unchanged while held), the blocks are written from `data` itself, held
   * until written; otherwise from copies. Waits first when more than MAX_PENDING_BYTES already
   * wait for the disk, and, copying, between blocks when every chunk of copy memory is taken, so
   * writes keep up with reads; at once when writes are paused or the cache is closed (those blocks
   * are then not kept). Blocks already on disk or on their way are skipped. Resolves once the
   * blocks are held or copied; the writes go on behind.
   */
  async keep(snapshot: DiskSnapshot, firstBlock: number, data: Buffer, holdData?: () => () => void): Promise<void> {
    // Each check is followed by its copies in the same turn, so readers woken together do not
    // all pass the bound at once.
    while (this.writesOpen() && this.pendingBytes > 0 && this.pendingBytes + data.length > MAX_PENDING_BYTES) await this.room()
    let run: Kept[] = []
    // One hold per run, not per block: each would hold the same `data` until the same moment.
    const queue = () => {
      if (run.length > 0) this.queueRun(run, holdData?.())
      run = []
    }
    for (let at = 0, block = firstBlock; at < data.length; at += this.blockBytes, block++) {
      // A read larger than the copy memory: what is copied goes to the disk, the rest waits for it.
      while (!holdData && this.writesOpen() && this.chunks.available === 0) {
        queue()
        await this.room()
      }
      const kept = this.take(snapshot, block, data.subarray(at, at + this.blockBytes), holdData !== undefined)
      if (kept) run.push(kept)
      else queue()
    }
    queue()
  }

  private writesOpen(): boolean {
    return !this.closed && Date.now() >= this.pausedUntil
  }

  /** Resolves when a write finishes (its copy memory is free again) or the cache closes. */
  private room(): Promise<void> {
    return new Promise<void>((wake) => this.roomWaiters.push(wake))
  }

  /**
   * Block `block`, written from `data` itself when `held` (its run holds it) or else copied into a
   * chunk, with its row; undefined when it is not to be written.
   */
  private take(snapshot: DiskSnapshot, block: number, data: Buffer, held: boolean): Kept | undefined {
    const name = `${snapshot.id}/${block}`
    if (this.closed || this.writing.has(name) || this.has(snapshot, block)) return undefined
    // Not bounded by MAX_PENDING_BYTES here: `keep` holds reads back before they copy, and a read
    // with nothing waiting before it may pass the bound by its own size.
    if (!this.writesOpen() || !this.makeRoom()) {
      this.counters.writesSkipped++
      return undefined
    }
    const chunk = held ? undefined : this.chunks.take()!
    if (chunk) data.copy(chunk)
    const kept = chunk ? chunk.subarray(0, data.length) : data
    const row: BlockRow = { snapshot: snapshot.id, block, slot: -1, length: data.length, digest: this.digest.digest(kept, block), algo: this.digest.name, seq: ++this.seq }
    this.pendingBytes += data.length
    this.writing.add(name)
    return chunk ? { row, name, data: kept, chunk } : { row, name, data: kept }
  }

  /**
   * Queues the write of consecutive blocks: consecutive free slots are written with one pwritev.
   * `release` lets go of the run's held memory once it is written (or not).
   */
  private queueRun(run: readonly Kept[], release: (() => void) | undefined): void {
    this.queue.push(async () => {
      const slots: number[] = []
      try {
        while (slots.length < run.length) slots.push(await this.takeSlot())
        for (let from = 0; from < run.length; ) {
          let end = from + 1
          while (end < run.length && slots[end] === slots[end - 1]! + 1) end++
          await this.file.writeRun(slots[from]!, run.slice(from, end).map(({ data }) => data))
          from = end
        }
      } catch (err) {
        // The whole run stays uncached, the pieces written before the failure too: their slots are free space.
        slots.forEach((slot) => this.free(slot))
        run.forEach(({ name }) => this.writing.delete(name))
        this.writeFailed(err)
        return
      } finally {
        for (const { row, chunk } of run) {
          this.pendingBytes -= row.length
          if (chunk) this.chunks.give(chunk)
        }
        release?.()
        this.roomWaiters.splice(0).forEach((wake) => wake())
      }
      run.forEach(({ row, name }, index) => {
        row.slot = slots[index]!
        this.counters.writes++
        this.counters.bytesWritten += row.length
        this.written.push({ row, name })
      })
      this.scheduleCommit()
    })
    this.drain()
  }

  /** A slot to write into: a hole, a new one at the end, or the next one a commit frees. */
  private async takeSlot(): Promise<number> {
    for (;;) {
      const hole = this.holes.pop()
      if (hole !== undefined) return hole
      if (this.nextSlot < this.maxSlots) return this.nextSlot++
      await new Promise<void>((wake) => this.slotWaiters.push(wake))
    }
  }

  /** `slot` may be written over now. */
  private free(slot: number): void {
    // A read of it still in flight (its block evicted or dropped meanwhile) keeps it until done:
    // a timing of the disk's threads no test controls.
    /* c8 ignore next 4 */
    if (this.reading.has(slot)) {
      this.freedWhileRead.add(slot)
      return
    }
    this.holes.push(slot)
    this.slotWaiters.shift()?.()
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

  /**
   * Commits soon: within COMMIT_DELAY_MS of the first block written since the last commit, or at
   * once when COMMIT_BLOCKS are waiting (or only deletions are: they free slots writes wait for).
   */
  private scheduleCommit(): void {
    const now = this.written.length === 0 || this.written.length >= COMMIT_BLOCKS
    if (this.commitScheduled && !now) return
    this.commitScheduled = true
    if (now) setImmediate(() => void this.commit())
    else setTimeout(() => void this.commit(), COMMIT_DELAY_MS)
  }

  /**
   * Makes the blocks written so far durable (one fdatasync), then commits their rows and the
   * deletions of dropped blocks in one transaction; the slots those deletions free are reused only
   * after it. One commit at a time: a call during one waits for it and then commits what is left.
   */
  private async commit(): Promise<void> {
    this.commitScheduled = false
    while (this.committing) await this.committing
    const written = this.written
    const removes = this.removes
    const freed = this.uncommittedFree
    if (written.length === 0 && removes.length === 0) return
    this.written = []
    this.removes = []
    this.uncommittedFree = []
    this.committing = (async () => {
      try {
        if (written.length > 0) await this.file.sync()
        this.index.commit(written.map(({ row }) => row), removes)
      } catch (err) {
        for (const { row, name } of written) {
          this.free(row.slot)
          this.writing.delete(name)
        }
        // The deletions are not durable: their slots stay unused until a later commit succeeds.
        this.removes.push(...removes)
        this.uncommittedFree.push(...freed)
        this.writeFailed(err)
        return
      }
      for (const { row, name } of written) {
        this.writing.delete(name)
        this.remember(row.snapshot, row.block, { slot: row.slot, length: row.length, digest: row.digest, algo: row.algo }, false)
      }
      for (const slot of freed) this.free(slot)
    })()
    try {
      await this.committing
    } finally {
      this.committing = undefined
    }
  }

  private remember(snapshot: number, block: number, stored: Stored, restart: boolean): void {
    let blocks = this.stored.get(snapshot)
    if (!blocks) this.stored.set(snapshot, (blocks = new Map()))
    blocks.set(block, stored)
    this.blocksBySnapshot.set(snapshot, (this.blocksBySnapshot.get(snapshot) ?? 0) + 1)
    this.fifo.add(`${snapshot}/${block}`, this.blockBytes, restart)
  }

  /** Drops a block: out of the maps and the queues now, its row deleted at the next commit, its slot free after it. */
  private forget(snapshot: number, block: number): void {
    const stored = this.stored.get(snapshot)!.get(block)!
    this.stored.get(snapshot)!.delete(block)
    this.blocksBySnapshot.set(snapshot, this.blocksBySnapshot.get(snapshot)! - 1)
    this.fifo.delete(`${snapshot}/${block}`)
    this.removes.push({ snapshot, block })
    this.uncommittedFree.push(stored.slot)
    this.scheduleCommit()
  }

  /** Evicts until one more block fits under the bound; false when it cannot (the rest is being written). */
  private makeRoom(): boolean {
    while (this.fifo.bytes / this.blockBytes + this.writing.size + 1 > this.maxSlots) {
      const victim = this.fifo.victim()
      if (victim === undefined) return false
      const [snapshot, block] = victim.split('/').map(Number) as [number, number]
      // victim() took it out of the queues already; forget() does the rest.
      this.forget(snapshot, block)
      this.counters.evictions++
    }
    return true
  }

  /** A write, sync or commit failed: logged once per kind, counted, and writing paused for a while. */
  private writeFailed(err: unknown): void {
    this.counters.writeErrors++
    this.pausedUntil = Date.now() + WRITE_PAUSE_MS
    this.logOnce(String((err as NodeJS.ErrnoException).code), `disk cache: cannot write to ${this.file.path} (${describe(err)}): blocks are read from the source meanwhile`)
  }

  private logOnce(kind: string, message: string): void {
    if (this.loggedErrors.has(kind)) return
    this.loggedErrors.add(kind)
    this.logger.warn(message)
  }

  stats(): DiskCacheStats {
    return { ...this.counters, bytesInUse: this.fifo.bytes + this.writing.size * this.blockBytes, capacityBytes: this.capacityBytes }
  }

  /** Waits for the writes under way and commits their rows. */
  async flush(): Promise<void> {
    if (this.running > 0 || this.queue.length > 0) await new Promise<void>((wake) => this.idle.push(wake))
    await this.commit()
  }

  /** Finishes the writes under way, commits, and releases the directory's lock. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.roomWaiters.splice(0).forEach((wake) => wake())
    await this.flush()
    this.file.close()
    this.index.close()
  }
}

/** The key of an identity: what its blocks are filed under, so only the same identity finds them. */
export function identityKey(identity: SourceIdentity, blockBytes: number): string {
  const { source, size, validator } = identity
  return createHash('sha256').update(JSON.stringify([source, size, validator, blockBytes])).digest('hex').slice(0, 32)
}

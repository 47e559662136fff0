import type { CacheStats } from './cache-stats.js'
import { BufferArena } from '../buffers/buffer-arena.js'

export interface BlockCacheOptions {
  /**
   * Hard bound on the bytes of cached data, over all snapshots together. A hypervisor host wants
   * one budget it can plan for, not one per image.
   */
  capacityBytes: number
  /** Size of a block, the unit reads are rounded out to (a power of two). */
  blockBytes: number
}

/**
 * The bytes of consecutive blocks of one snapshot, fetched by one request. An extent is the unit
 * of eviction: its blocks are views of the one buffer the request filled, so dropping an extent
 * frees exactly its bytes and nothing is copied to cache it.
 *
 * Its buffer goes back to the arena for another fetch once the extent is out of the cache and
 * unpinned. Every reader that hands out views of an extent pins it first and unpins it only after
 * its caller has copied (the next turn of the event loop): the reader's own readahead may evict
 * the extent at once, and a source may fill a recycled buffer before its readExact returns.
 */
export interface Extent {
  readonly owner: number
  readonly firstBlock: number
  readonly data: Buffer
  /** Re-references since insertion, capped (S3-FIFO's 2-bit counter). */
  frequency: number
  /** The access stream that last read it: reads by the same stream are not re-references. */
  lastStream: number
  /** Its queue, or 'none' once out of the cache (or never in it). */
  queue: 'small' | 'main' | 'none'
  /** Readers holding views of it across an await. */
  pins: number
  /** Whether its buffer came from the arena (and goes back to it). */
  readonly pooled: boolean
  /** Fetched ahead of its reader: until its last block has been read, it gets one extra pass of the small queue. */
  readonly readahead: boolean
  /** The highest block of it read so far (-1: none). */
  highestRead: number
  /**
   * Readahead only: which of its blocks were read (1) and how many are not yet. A stream's reads
   * arrive out of order (the kernel's readahead, FUSE's threads), so its last block read does
   * not mean the others were.
   */
  readonly blocksRead: Uint8Array | undefined
  unreadBlocks: number
  /** Whether it had its extra pass. */
  spared: boolean
}

/** S3-FIFO's small queue share: new data must prove itself in 10 % of the cache. */
const SMALL_QUEUE_SHARE = 0.1
/** S3-FIFO's frequency cap: an extent can survive at most this many passes of the main queue. */
const MAX_FREQUENCY = 3
/**
 * The buffer arena's room beyond the bound: the bound covers cached extents and fetches in flight
 * (every fetch waits for room first), but an evicted extent a reader still holds has a buffer too.
 * One of the largest requests (8 MiB, a long stream's readahead: readahead.ts) covers the usual
 * case, and 20 MiB more the disk cache's write-behind, which holds the buffers it writes
 * (`holdInto`) until they are on disk: at most 16 MiB waiting plus the read that passes it
 * (disk-cache.ts, MAX_PENDING_BYTES). Past it, buffers are allocated apart. Pages of it cost
 * memory only once used.
 */
const ARENA_HEADROOM_BYTES = 28 * 1024 * 1024

/**
 * The bounded, shared block cache of remote snapshots. Data goes in only after its request
 * returned every byte and the backend validated it (exact range, pinned version), so a block
 * found here is always right.
 *
 * Eviction is S3-FIFO (Yang et al., SOSP 2023), chosen because one long sequential scan (a
 * backup, a `dd` of the whole image) must not flush a guest's working set, which a plain LRU
 * does. New extents enter a small FIFO queue (10 % of the bytes). When it overflows, its oldest
 * extent moves to the main FIFO queue if it was re-referenced while in the small one, and is
 * dropped otherwise, its key kept in a ghost list. An extent fetched again while its key is in the
 * ghost list goes straight to the main queue. The main queue evicts its oldest extent, but gives
 * each one a further pass per re-reference (up to 3). A scan's data is read once per stream, so it
 * only flows through the small queue; the working set, read again by new streams (another boot,
 * another reader), sits in the main queue.
 *
 * A re-reference is a read by a different access stream than the one that last read the extent:
 * a sequential reader going through a 4 MiB extent in four 1 MiB reads is one reference, not four.
 * Readahead whose reader has not got through it when it reaches the small queue's end goes round
 * once more, so a window larger than the small queue is not dropped just before it is read.
 */
export class BlockCache {
  readonly blockBytes: number
  readonly capacityBytes: number
  private readonly byOwner = new Map<number, Map<number, Extent>>()
  /** Insertion-ordered Maps are the FIFO queues: the first key is the oldest. */
  private readonly small = new Map<Extent, true>()
  private readonly main = new Map<Extent, true>()
  /** Keys of extents dropped from the small queue; as many as the main queue could hold. */
  private readonly ghosts = new Map<string, true>()
  private readonly ghostLimit: number
  /** Small-queue extents a stream fetched ahead and then read through, oldest first (recycleScans). */
  private readonly scanned = new Map<Extent, true>()
  private smallBytes = 0
  private bytesInUse = 0
  /** Room promised to fetches in flight: the bound covers their buffers too. */
  private reservedBytes = 0
  /** Fetches waiting for room (`waitForRoom`), oldest first. */
  private readonly waiting = new Set<{ bytes: number; grant: () => void }>()
  /** Set while `grantWaiting` runs: a grant may start a fetch that lands (and grants) at once. */
  private granting = false
  private nextOwner = 1
  private readonly arena: BufferArena
  private readonly counters = { hits: 0, misses: 0, evictions: 0, fetches: 0, fetchedBytes: 0, readaheadBytes: 0 }

  constructor(options: BlockCacheOptions) {
    const { capacityBytes, blockBytes } = options
    if (!Number.isSafeInteger(blockBytes) || blockBytes <= 0 || (blockBytes & (blockBytes - 1)) !== 0) {
      throw new RangeError(`blockBytes must be a power of two, not ${blockBytes}`)
    }
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < blockBytes) {
      throw new RangeError(`capacityBytes must be a whole number of at least one block (${blockBytes}), not ${capacityBytes}`)
    }
    this.blockBytes = blockBytes
    this.capacityBytes = capacityBytes
    this.ghostLimit = Math.ceil(capacityBytes / blockBytes)
    this.arena = new BufferArena({ arenaBytes: capacityBytes + ARENA_HEADROOM_BYTES, unitBytes: blockBytes })
  }

  /** A new owner id: each snapshot's blocks are kept apart, and dropped together. */
  register(): number {
    const owner = this.nextOwner++
    this.byOwner.set(owner, new Map())
    return owner
  }

  /**
   * The extent that holds block `block`, or undefined; `blockOf` gives the block's bytes. `stream`
   * is the access stream asking (see the class comment for what counts as a re-reference).
   */
  lookup(owner: number, block: number, stream: number): Extent | undefined {
    const extent = this.byOwner.get(owner)?.get(block)
    if (!extent) {
      this.counters.misses++
      return undefined
    }
    this.counters.hits++
    this.noteRead(extent, block, stream)
    return extent
  }

  /**
   * Records that `stream` read block `block` of `extent`, as `lookup` does for a hit: for a read
   * that waited on the fetch bringing the extent instead (no hit or miss counted). A sequential
   * reader on a slow link waits for its own readahead every time, and its read-through extents
   * must be recycled as a faster reader's are (see recycleScans).
   */
  noteRead(extent: Extent, block: number, stream: number): void {
    extent.highestRead = Math.max(extent.highestRead, block)
    if (extent.lastStream !== stream) {
      extent.lastStream = stream
      extent.frequency = Math.min(MAX_FREQUENCY, extent.frequency + 1)
    }
    const read = extent.blocksRead
    if (read && read[block - extent.firstBlock] === 0) {
      read[block - extent.firstBlock] = 1
      extent.unreadBlocks--
      if (extent.unreadBlocks === 0 && extent.frequency === 0 && extent.queue === 'small') this.scanned.set(extent, true)
    }
  }

  /** The bytes of block `block` of `extent`, a view the caller must not write to. */
  blockOf(extent: Extent, block: number): Buffer {
    const start = (block - extent.firstBlock) * this.blockBytes
    return extent.data.subarray(start, start + this.blockBytes)
  }

  /** Keeps an extent's buffer from being reused while a reader holds views of it. */
  pin(extent: Extent): void {
    extent.pins++
  }

  unpin(extent: Extent): void {
    extent.pins--
    if (extent.pins === 0 && extent.queue === 'none') this.recycle(extent)
  }

  /** A buffer for a fetch of `length` bytes, from the arena. */
  take(length: number): Buffer {
    return this.arena.take(length)
  }

  /**
   * For a fetch into `buffer` (from `take`): ReadOptions.holdInto, when `buffer` is page-aligned
   * memory of the arena (so a layer below may write it to disk as it is, behind the read), else
   * undefined. A hold keeps the buffer from being reused after its extent is evicted or it is
   * given back, until released.
   */
  holdInto(buffer: Buffer): (() => () => void) | undefined {
    return this.arena.pageAligned(buffer) ? () => this.arena.hold(buffer) : undefined
  }

  /** Takes back a buffer from `take` that no fetch filled. */
  giveBack(buffer: Buffer): void {
    this.arena.give(buffer)
  }

  /** Whether block `block` is cached, without counting a hit or a reference. */
  has(owner: number, block: number): boolean {
    return this.byOwner.get(owner)?.has(block) ?? false
  }

  /**
   * Makes room for a fetch of `bytes` before it starts, evicting as needed, so that cached and
   * in-flight data together stay under the bound. False if even evicting everything would not
   * do (the rest of the cache is promised to other fetches in flight), or if fetches are waiting
   * for room already: room that frees goes to them first.
   */
  reserve(bytes: number): boolean {
    return this.waiting.size === 0 && this.makeRoom(bytes)
  }

  /**
   * For a fetch that must be made (a reader waits for it) when `reserve` said no: calls `grant`
   * once room for `bytes` is reserved for it, in the order fetches asked. Room frees as fetches
   * in flight land (their bytes become evictable) or give up, and those never wait for room
   * themselves, so a wait always ends: nothing that holds room waits for this. The function
   * returned withdraws the request (its reader gave up). `bytes` must fit in the bound.
   *
   * This is what keeps the bound under many readers at once: a demand fetch made without room
   * (as before) held a buffer outside it, ~1 MiB per O_DIRECT reader waiting (issue 14).
   */
  waitForRoom(bytes: number, grant: () => void): () => void {
    if (bytes > this.capacityBytes) throw new RangeError(`a fetch of ${bytes} bytes can never fit a cache of ${this.capacityBytes}`)
    const waiter = { bytes, grant }
    this.waiting.add(waiter)
    return () => this.waiting.delete(waiter)
  }

  /** Gives back room reserved for a fetch that brought nothing. */
  release(bytes: number): void {
    this.reservedBytes -= bytes
    this.grantWaiting()
  }

  private makeRoom(bytes: number): boolean {
    while (this.bytesInUse + this.reservedBytes + bytes > this.capacityBytes) {
      if (this.bytesInUse === 0) return false
      this.evictOne()
    }
    this.reservedBytes += bytes
    return true
  }

  /** Reserves room for the fetches waiting, oldest first, as long as there is room. */
  private grantWaiting(): void {
    if (this.granting) return
    this.granting = true
    try {
      for (const waiter of this.waiting) {
        if (!this.makeRoom(waiter.bytes)) return
        this.waiting.delete(waiter)
        waiter.grant()
      }
    } finally {
      this.granting = false
    }
  }

  /**
   * Turns `data`, the validated bytes of consecutive blocks from `firstBlock` (the last block of
   * a snapshot may be short), into an extent, and caches it in the room reserved for it if
   * `reserved`. Without room, for an owner dropped meanwhile, or where blocks are cached already,
   * the extent stays out of the cache and its buffer is recycled once unpinned. `pooled` says
   * `data` came from `take`. The extent comes back pinned: unpin it once its readers have it.
   */
  insert(owner: number, firstBlock: number, data: Buffer, stream: number, options: { readahead: boolean; reserved: boolean; pooled: boolean }): Extent {
    const extent = this.place(owner, firstBlock, data, stream, options)
    // Room given back, or bytes that are evictable now: room for a fetch waiting.
    if (options.reserved) this.grantWaiting()
    return extent
  }

  private place(owner: number, firstBlock: number, data: Buffer, stream: number, options: { readahead: boolean; reserved: boolean; pooled: boolean }): Extent {
    const { readahead, reserved, pooled } = options
    if (reserved) this.reservedBytes -= data.length
    this.counters.fetches++
    this.counters.fetchedBytes += data.length
    if (readahead) this.counters.readaheadBytes += data.length
    const count = Math.ceil(data.length / this.blockBytes)
    const blocksRead = readahead ? new Uint8Array(count) : undefined
    const extent: Extent = { owner, firstBlock, data, frequency: 0, lastStream: stream, queue: 'none', pins: 1, pooled, readahead, highestRead: -1, spared: false, blocksRead, unreadBlocks: count }
    const blocks = this.byOwner.get(owner)
    if (!reserved || !blocks) return extent
    for (let block = firstBlock; block < firstBlock + count; block++) if (blocks.has(block)) return extent
    const key = `${owner}:${firstBlock}`
    const queue = this.ghosts.delete(key) ? 'main' : 'small'
    extent.queue = queue
    for (let block = firstBlock; block < firstBlock + count; block++) blocks.set(block, extent)
    this[queue].set(extent, true)
    if (queue === 'small') this.smallBytes += data.length
    // The room was reserved before the fetch: the bound holds without evicting here.
    this.bytesInUse += data.length
    // Here, not in reserve: a read answered at once (readNow) holds unpinned views of what it
    // has just read through while it starts its readahead, and the buffers must outlive them.
    this.recycleScans()
    return extent
  }

  /** Forgets every block of `owner` (its snapshot was closed or replaced). */
  drop(owner: number): void {
    const blocks = this.byOwner.get(owner)
    if (!blocks) return
    this.byOwner.delete(owner)
    for (const extent of new Set(blocks.values())) this.forget(extent)
    this.grantWaiting()
  }

  stats(): CacheStats {
    return { ...this.counters, bytesInUse: this.bytesInUse, bytesReserved: this.reservedBytes, capacityBytes: this.capacityBytes, bytesApart: this.arena.bytesApart }
  }

  /** Bytes held for one owner: for `snapmount status`. */
  bytesOf(owner: number): number {
    let bytes = 0
    for (const extent of new Set(this.byOwner.get(owner)?.values())) bytes += extent.data.length
    return bytes
  }

  /**
   * Evicts read-through scan data (readahead its own stream has read every block of, nobody else
   * has read) while the small queue is over its share, even when the cache has room: a sequential
   * stream then goes round a few warm buffers instead of writing once into every fresh page of
   * the cache. The first write to a fresh page costs the kernel a fault and a zeroed page: a
   * third of the daemon's CPU on a cold 1 GiB read through the default cache, against 64 MiB.
   * S3-FIFO would keep it until the cache was full, then drop it from the small queue unread
   * again; its key goes to the ghost list as it would then, so a second reading keeps it.
   */
  private recycleScans(): void {
    for (const [extent] of this.scanned) {
      if (this.smallBytes <= this.capacityBytes * SMALL_QUEUE_SHARE) return
      this.scanned.delete(extent)
      // Read by another stream since: not read-once data.
      if (extent.frequency > 0) continue
      this.small.delete(extent)
      this.smallBytes -= extent.data.length
      this.evictToGhost(extent)
    }
  }

  private evictOne(): void {
    if (this.main.size === 0 || this.smallBytes > this.capacityBytes * SMALL_QUEUE_SHARE) this.evictFromSmall()
    else this.evictFromMain()
  }

  private evictFromSmall(): void {
    const oldest = this.small.keys().next().value!
    this.small.delete(oldest)
    if (oldest.readahead && !oldest.spared && oldest.highestRead < this.lastBlockOf(oldest)) {
      // Readahead its reader has not got through yet: dropping it now would only fetch it again.
      oldest.spared = true
      this.small.set(oldest, true)
      return
    }
    this.smallBytes -= oldest.data.length
    if (oldest.frequency > 0) {
      oldest.frequency = 0
      oldest.queue = 'main'
      this.scanned.delete(oldest)
      this.main.set(oldest, true)
      return
    }
    this.evictToGhost(oldest)
  }

  /** Evicts an extent taken out of the small queue, keeping its key among the ghosts. */
  private evictToGhost(extent: Extent): void {
    this.evict(extent)
    this.ghosts.set(`${extent.owner}:${extent.firstBlock}`, true)
    if (this.ghosts.size > this.ghostLimit) this.ghosts.delete(this.ghosts.keys().next().value!)
  }

  private evictFromMain(): void {
    // Each pass lowers a frequency (at most 3 per extent), so this ends.
    for (;;) {
      const oldest = this.main.keys().next().value!
      this.main.delete(oldest)
      if (oldest.frequency === 0) {
        this.evict(oldest)
        return
      }
      oldest.frequency--
      this.main.set(oldest, true)
    }
  }

  private lastBlockOf(extent: Extent): number {
    return extent.firstBlock + Math.ceil(extent.data.length / this.blockBytes) - 1
  }

  /** Takes an extent (already out of its queue) out of the cache. */
  private evict(extent: Extent): void {
    this.counters.evictions++
    const blocks = this.byOwner.get(extent.owner)!
    const count = Math.ceil(extent.data.length / this.blockBytes)
    for (let block = extent.firstBlock; block < extent.firstBlock + count; block++) blocks.delete(block)
    this.bytesInUse -= extent.data.length
    this.leave(extent)
  }

  /** Removes a cached extent from its queue and the byte count (its owner's map is already gone). */
  private forget(extent: Extent): void {
    // Extents in an owner's map are always in a queue: eviction takes them out of both.
    const queue = extent.queue as 'small' | 'main'
    this[queue].delete(extent)
    if (queue === 'small') this.smallBytes -= extent.data.length
    this.bytesInUse -= extent.data.length
    this.leave(extent)
  }

  /** An extent out of the cache: its buffer is recycled now, or when its last reader unpins it. */
  private leave(extent: Extent): void {
    extent.queue = 'none'
    this.scanned.delete(extent)
    if (extent.pins === 0) this.recycle(extent)
  }

  private recycle(extent: Extent): void {
    if (extent.pooled) this.arena.give(extent.data)
  }
}

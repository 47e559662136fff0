import { LayerBackend } from '../backend/layer-backend.js'
import { BackendClosedError, describe } from '../backend/errors.js'
import type { PrefetchReport, ReadOptions, SnapshotInspection, SourceIdentity, StorageBackend } from '../backend/storage-backend.js'
import type { PrefetchResult } from '../cache/caching-backend.js'
import { REAL_CLOCK, type Clock } from '../clock.js'
import type { Logger } from '../log.js'
import type { BootProfile } from './format.js'
import type { LoadedProfile } from './load.js'

/** What the prefetcher needs of the layer below it: the block cache's prefetch (CachingBackend). */
export interface PrefetchTarget extends StorageBackend {
  /** The cache's block: the unit the prefetcher plans and counts in. */
  readonly blockBytes: number
  readPieces(offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]>
  /** See CachingBackend.prefetch: fetches the missing blocks of a range at readahead priority. */
  prefetch(offset: number, length: number, maxRequestBytes: number): Promise<PrefetchResult>
  /** Whether a block is in the cache now. */
  isCached(block: number): boolean
}

export interface PrefetcherOptions {
  /** The snapshot's name, for log lines. */
  name: string
  /** The profile's path or URL, shown by `status` while it loads and if it is not used. */
  label: string
  /** The profile, being loaded (src/profile/load.ts); undefined when there is none fit to use. */
  profile: Promise<LoadedProfile | undefined>
  /**
   * Most bytes fetched ahead of the readers: prefetched blocks the profile lists after the last
   * one a reader has read. Half the memory cache (open-snapshot.ts), so that what is fetched
   * ahead is not evicted before it is read, and the readers' own blocks have the other half.
   */
  aheadBytes: number
  /** Prefetches in flight at once: at most the cache's readahead slots, so it queues nothing behind itself. */
  concurrency: number
  logger: Logger
  /** Monotonic time and timers (the wait for room); injected by tests. */
  clock?: Clock
  /** The time of day in ms, for the profile's age; injected by tests. */
  wallNow?: () => number
}

/**
 * The largest request a prefetch makes. A reader that needs a block being prefetched waits for
 * the whole request: 1 MiB takes ~10 ms at 100 MB/s, one round trip at 10 ms, so that wait is at
 * most about one more round trip, and a run of the profile still goes in few requests.
 */
export const PREFETCH_REQUEST_BYTES = 1024 * 1024
/** How long to wait before asking again when the cache had no room (fetches in flight held it). */
const ROOM_WAIT_MS = 50
/** Failures after which the prefetch stops: the source is failing, and its readers need it more. */
const MAX_FAILURES = 8

/** Where each listed block is: not yet prefetched, prefetched and unread, or read. */
const UNTOUCHED = 0
const PREFETCHED = 1
const READ = 2

/** Consecutive blocks of the profile, in its order: one prefetch call. */
interface Chunk {
  firstBlock: number
  endBlock: number
  /** The position of its first block in the profile's order. */
  position: number
}

/**
 * A snapshot's boot profile replayed into the block cache: the layer between the block cache and
 * metering (open-snapshot.ts), the same contract as the one it wraps, so it sees every read the
 * mount's readers make.
 *
 * The profile's runs become the cache's blocks in recorded order (each block once, however often
 * listed), cut into requests of consecutive blocks of at most PREFETCH_REQUEST_BYTES. At most
 * `concurrency` of them are in flight, at readahead priority: behind every demand fetch and never
 * in the slots the cache keeps for demand, so a reader never waits for prefetch (a reader that
 * needs a block being prefetched waits on that fetch, which it moves to the front). The readers'
 * progress paces it: a read of a listed block marks its position in the profile, and the
 * prefetch runs at most `aheadBytes` of listed blocks beyond the furthest position read. It so
 * stays ahead of a boot that follows the profile, and fetches no more than `aheadBytes` for one
 * that does not (a profile of another boot). A failed prefetch is logged once, skipped, and never
 * seen by a reader; after MAX_FAILURES it stops.
 */
export class PrefetchingBackend extends LayerBackend<PrefetchTarget> implements StorageBackend {
  readonly identity?: () => SourceIdentity | undefined
  readonly revalidate?: () => void
  private readonly clock: Clock
  private readonly wallNow: () => number
  private state: PrefetchReport['state'] = 'loading'
  private label: string
  private recordedAt: Date | undefined
  private chunks: Chunk[] = []
  /** Each listed block's position in the profile's order. */
  private readonly position = new Map<number, number>()
  /** Per position: UNTOUCHED, PREFETCHED or READ. */
  private marks = new Uint8Array(0)
  /** Per position: its block. */
  private order: number[] = []
  private next = 0
  /** Chunks the cache had no room for, asked again first. */
  private readonly again: Chunk[] = []
  private inFlight = 0
  /** The furthest position a reader has read (-1: none yet). */
  private frontier = -1
  private readonly aheadBlocks: number
  private cancelWait: (() => void) | undefined
  private closed = false
  private readonly counts = { profileBytes: 0, prefetchedBytes: 0, hitBlocks: 0, hitBytes: 0, failures: 0, lostBytes: 0 }

  constructor(
    inner: PrefetchTarget,
    private readonly options: PrefetcherOptions,
  ) {
    super(inner)
    if (!(options.concurrency >= 1)) throw new RangeError(`concurrency must be at least 1, not ${options.concurrency}`)
    this.clock = options.clock ?? REAL_CLOCK
    this.wallNow = options.wallNow ?? Date.now
    this.label = options.label
    this.aheadBlocks = Math.max(1, Math.floor(options.aheadBytes / inner.blockBytes))
    if (inner.identity) this.identity = () => inner.identity!()
    if (inner.revalidate) this.revalidate = () => inner.revalidate!()
    void options.profile.then((loaded) => this.start(loaded))
  }

  // Each read is made before it is observed: the layer below has then taken its blocks (a fetch
  // of its own, or one in flight), so the prefetch it may start skips them.

  readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    const read = this.inner.readExact(offset, length, options)
    if (!options?.maintenance) this.observe(offset, length)
    return read
  }

  readPieces(offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]> {
    const read = this.inner.readPieces(offset, length, options)
    if (!options?.maintenance) this.observe(offset, length)
    return read
  }

  readNow(offset: number, length: number, stream?: number): readonly Buffer[] | undefined {
    const pieces = this.inner.readNow?.(offset, length, stream)
    if (pieces) this.observe(offset, length)
    return pieces
  }

  inspect(): SnapshotInspection {
    return { ...this.inner.inspect?.(), prefetch: this.report() }
  }

  async close(): Promise<void> {
    this.closed = true
    this.cancelWait?.()
    await this.inner.close()
  }

  /** What `status` and the metrics show. */
  report(): PrefetchReport {
    let unread = 0
    let evicted = 0
    for (let position = 0; position < this.marks.length; position++) {
      if (this.marks[position] !== PREFETCHED) continue
      const block = this.order[position]!
      unread += this.bytesOf(block)
      if (!this.inner.isCached(block)) evicted += this.bytesOf(block)
    }
    const { profileBytes, prefetchedBytes, hitBlocks, hitBytes, failures, lostBytes } = this.counts
    const ageSeconds = this.recordedAt ? Math.max(0, (this.wallNow() - this.recordedAt.getTime()) / 1000) : null
    return { state: this.state, profile: this.label, profileBytes, prefetchedBytes, hitBlocks, hitBytes, wastedBytes: unread + lostBytes, evictedBytes: evicted + lostBytes, ageSeconds, failures }
  }

  private start(loaded: LoadedProfile | undefined): void {
    if (!loaded || this.closed) {
      this.state = 'unused'
      return
    }
    this.label = loaded.label
    this.recordedAt = loaded.profile.recordedAt
    this.plan(loaded.profile)
    this.state = 'prefetching'
    this.options.logger.info(`${this.options.name}: prefetching ${this.order.length} blocks (${this.counts.profileBytes} bytes) from boot profile ${this.label}`)
    this.pump()
  }

  /** The profile's blocks as the cache's, in first-listed order, cut into chunks. */
  private plan(profile: BootProfile): void {
    const blockBytes = this.inner.blockBytes
    for (const run of profile.runs) {
      const start = run.firstBlock * profile.blockBytes
      const end = Math.min((run.firstBlock + run.blockCount) * profile.blockBytes, this.length)
      for (let block = Math.floor(start / blockBytes); block * blockBytes < end; block++) {
        if (this.position.has(block)) continue
        this.position.set(block, this.order.length)
        this.order.push(block)
        this.counts.profileBytes += this.bytesOf(block)
      }
    }
    this.marks = new Uint8Array(this.order.length)
    const perChunk = Math.max(1, Math.floor(PREFETCH_REQUEST_BYTES / blockBytes))
    for (let position = 0; position < this.order.length; ) {
      const firstBlock = this.order[position]!
      let count = 1
      while (count < perChunk && this.order[position + count] === firstBlock + count) count++
      this.chunks.push({ firstBlock, endBlock: firstBlock + count, position })
      position += count
    }
  }

  /** Starts chunks while there are slots, room ahead of the readers, and no wait for cache room. */
  private pump(): void {
    while (!this.closed && this.state === 'prefetching' && !this.cancelWait && this.inFlight < this.options.concurrency) {
      const chunk = this.again[0] ?? this.chunks[this.next]
      if (!chunk) break
      // Blocks listed beyond the furthest read, counting this chunk's, must stay within the bound.
      if (chunk.position + (chunk.endBlock - chunk.firstBlock) - 1 - this.frontier > this.aheadBlocks) {
        this.state = 'waiting'
        return
      }
      if (chunk === this.again[0]) this.again.shift()
      else this.next++
      this.inFlight++
      const offset = chunk.firstBlock * this.inner.blockBytes
      void this.inner.prefetch(offset, Math.min(this.length, chunk.endBlock * this.inner.blockBytes) - offset, PREFETCH_REQUEST_BYTES).then(
        (result) => this.landed(chunk, result),
        (err: unknown) => this.failed(chunk, err),
      )
    }
    if (!this.closed && this.state === 'prefetching' && this.inFlight === 0 && this.again.length === 0 && this.next === this.chunks.length) this.finish()
  }

  private landed(chunk: Chunk, result: PrefetchResult): void {
    this.inFlight--
    this.counts.prefetchedBytes += result.bytes
    for (const [first, end] of result.blocks) {
      for (let block = first; block < end; block++) {
        const position = chunk.position + block - chunk.firstBlock
        // Read while it was on its way: the reader waited on the prefetch, not on a fetch of its own.
        if (this.marks[position] === READ) this.hit(block)
        else this.marks[position] = PREFETCHED
      }
    }
    if (!result.complete) {
      // The rest of the chunk once the cache has room: the blocks it brought are skipped then.
      this.again.push(chunk)
      this.cancelWait ??= this.clock.after(ROOM_WAIT_MS, () => {
        this.cancelWait = undefined
        this.pump()
      })
    }
    this.pump()
  }

  private failed(chunk: Chunk, err: unknown): void {
    this.inFlight--
    if (this.closed || err instanceof BackendClosedError) return
    this.counts.failures++
    const { name, logger } = this.options
    if (this.counts.failures === 1) {
      logger.warn(`${name}: prefetch of blocks ${chunk.firstBlock}-${chunk.endBlock - 1} from boot profile ${this.label} failed (${describe(err)}); skipped, and reads are not affected`)
    }
    if (this.counts.failures >= MAX_FAILURES) {
      this.state = 'stopped'
      logger.warn(`${name}: prefetch from boot profile ${this.label} stopped after ${MAX_FAILURES} failures; the last: ${describe(err)}`)
      return
    }
    this.pump()
  }

  private finish(): void {
    this.state = 'done'
    const { prefetchedBytes, profileBytes } = this.counts
    this.options.logger.info(`${this.options.name}: boot profile ${this.label} prefetched: ${prefetchedBytes} of its ${profileBytes} bytes fetched (the rest were cached or read already)`)
  }

  /** A reader read `[offset, offset + length)`: marks the listed blocks read, counts hits, moves the frontier. */
  private observe(offset: number, length: number): void {
    // A read out of range fails below; its blocks are no reader's.
    if (this.order.length === 0 || !(offset >= 0 && length > 0 && offset + length <= this.length)) return
    const blockBytes = this.inner.blockBytes
    const last = Math.floor((offset + length - 1) / blockBytes)
    let moved = false
    for (let block = Math.floor(offset / blockBytes); block <= last; block++) {
      const position = this.position.get(block)
      if (position === undefined || this.marks[position] === READ) continue
      if (this.marks[position] === PREFETCHED) {
        if (this.inner.isCached(block)) this.hit(block)
        // Evicted before it was read: fetched again for this read, and the prefetch was for nothing.
        else this.counts.lostBytes += this.bytesOf(block)
      }
      this.marks[position] = READ
      if (position > this.frontier) {
        this.frontier = position
        moved = true
      }
    }
    if (moved && this.state === 'waiting') this.state = 'prefetching'
    if (moved) this.pump()
  }

  private hit(block: number): void {
    this.counts.hitBlocks++
    this.counts.hitBytes += this.bytesOf(block)
  }

  /** A block's bytes: the image's last one is short. */
  private bytesOf(block: number): number {
    const blockBytes = this.inner.blockBytes
    return Math.min(blockBytes, this.length - block * blockBytes)
  }
}

import { LayerBackend } from '../backend/layer-backend.js'
import type { ReadOptions, SnapshotInspection, SourceIdentity, StorageBackend } from '../backend/storage-backend.js'
import { BackendClosedError, failedRangeOf } from '../backend/errors.js'
import { assertInRange } from '../backend/range.js'
import type { BlockCache, Extent } from './block-cache.js'
import { FetchScheduler, type Job } from './fetch-scheduler.js'
import { MAX_REQUEST_BYTES, ReadaheadTracker, type Access } from './readahead.js'

export interface CachingBackendOptions {
  /** Requests to the source at once: its connection pool's size. */
  connections: number
  /**
   * Whether the source keeps what it fetches (the disk cache): readahead dropped from this cache
   * before its reader got to it is then read back from local disk, not fetched again, so a
   * stream's window may take a larger share of the cache (WINDOW_SHARE_KEPT_BELOW).
   */
  keptBelow?: boolean
  /** Milliseconds, monotonic, for readahead's idle streams; injected by tests. */
  now?: () => number
}

/**
 * Readahead windows are capped at this, and at a sixteenth of the cache, less than the cache's
 * small queue (a tenth), where fetched-ahead data waits for its reader (a quarter over a disk
 * cache: WINDOW_SHARE_KEPT_BELOW). 64 MiB in flight at a 10 ms round trip allows 6 GB/s.
 */
const MAX_WINDOW_BYTES = 64 * 1024 * 1024
const WINDOW_SHARE_OF_CACHE = 1 / 16
/**
 * The cap's share with a disk cache below (`keptBelow`): more than the small queue holds, since
 * readahead dropped from it unread is read back from the disk, not fetched again. At a sixteenth,
 * the memory cache a disk cache comes with (256 MiB) capped windows at 16 MiB, so 4 MiB requests:
 * a first pass at 10 ms through the bench's proxy read 406-480 MB/s for 1.49-1.67 CPU-s/GiB,
 * against 506-574 MB/s for 1.42-1.58 at a quarter (8 MiB requests; peak RSS 124 -> 184 MiB), two
 * runs each, alternating.
 */
const WINDOW_SHARE_KEPT_BELOW = 1 / 4
/** Share of the request slots readahead may never take, so demand reads find one free. */
const DEMAND_RESERVE_SHARE = 1 / 4
/**
 * The access stream a prefetch (`prefetch`) files its blocks under: the readahead tracker numbers
 * readers' streams from 1, so a reader's first read of a prefetched block is a re-reference.
 */
const PREFETCH_STREAM = 0

/**
 * Times a read asks again for its own blocks when fetches it waited on failed only for bytes
 * outside them (a bad block of a longer run, see `readPieces`): the first ask and two more, as
 * each retry's own fetches could again be joined with runs that reach a bad block.
 */
const CONFINED_RETRIES = 3

/** Why a fetch is made: a reader needs it, a stream's readahead, or a prefetch (`prefetch`). */
type FetchKind = 'demand' | 'readahead' | 'prefetch'

/** What one `prefetch` call brought into the cache. */
export interface PrefetchResult {
  /** Bytes it fetched: blocks cached or on their way already are skipped, and not counted. */
  bytes: number
  /** The blocks it fetched, as `[first, end)` ranges. */
  blocks: Array<[number, number]>
  /** False when it stopped short: the cache had no room (fetches in flight hold it); ask again later. */
  complete: boolean
}

/** One ranged request for consecutive blocks, shared by every read that needs one of them. */
interface Fetch {
  readonly firstBlock: number
  readonly endBlock: number
  readonly data: Promise<Extent>
  readonly job: Job
  readonly controller: AbortController
  /** Started for readahead or a prefetch: not aborted when the reads waiting on it give up. */
  readonly readahead: boolean
  /** The source's answer: undefined once its bytes are cached, else its error (what a prefetch reports). */
  readonly outcome: Promise<unknown>
  /** Demand reads waiting on it now. */
  waiters: number
}

/**
 * A snapshot read through the shared block cache, with request coalescing and readahead; the
 * same contract as the backend it wraps.
 *
 * A read is rounded out to blocks. Cached blocks are used as they are; blocks another read is
 * already fetching are waited for (one fetch however many readers); the rest are fetched in runs
 * of adjacent blocks, one ranged request per run (at most 4 MiB, or the cache's size), each made
 * once there is room for it under the cache's bound (block-cache.ts). The read's stream (see
 * readahead.ts) may also ask for blocks ahead; those fetches queue behind demand fetches. Data
 * enters the cache only from a fetch that succeeded, and a failed fetch leaves nothing behind: the
 * next read asks again. A read that is aborted (its deadline passed) stops waiting, and fetches
 * only it was waiting on are cancelled.
 *
 * `readPieces` answers with views of cached buffers, so the FUSE layer copies each byte once,
 * into the kernel's buffer.
 */
export class CachingBackend extends LayerBackend implements StorageBackend {
  /** The source's, passed on: a boot profile is checked against it (src/profile/identity.ts). */
  readonly identity?: () => SourceIdentity | undefined
  private closed = false
  private readonly owner: number
  /** The cache's block: what `prefetch` rounds out to and `isCached` counts in. */
  readonly blockBytes: number
  /** Requests readahead and prefetch may have in flight at once (the rest are kept for demand). */
  readonly readaheadSlots: number
  /** Most blocks one demand fetch asks for. */
  private readonly maxDemandBlocks: number
  private readonly inFlight = new Map<number, Fetch>()
  /**
   * Blocks whose last random miss the source answered with pieces (`readSmall`), oldest first, as
   * many as the cache holds blocks: a second miss on one reads it whole, into the cache.
   */
  private readonly answeredSmall = new Map<number, true>()
  private readonly answeredSmallLimit: number
  private readonly tracker: ReadaheadTracker
  private readonly scheduler: FetchScheduler

  constructor(
    source: StorageBackend,
    private readonly cache: BlockCache,
    options: CachingBackendOptions,
  ) {
    super(source)
    this.owner = cache.register()
    this.blockBytes = cache.blockBytes
    // A demand fetch waits for room in the cache, so it must fit in it.
    this.maxDemandBlocks = Math.floor(Math.min(MAX_REQUEST_BYTES, cache.capacityBytes) / this.blockBytes)
    this.answeredSmallLimit = Math.ceil(cache.capacityBytes / this.blockBytes)
    const windowShare = options.keptBelow ? WINDOW_SHARE_KEPT_BELOW : WINDOW_SHARE_OF_CACHE
    const maxWindowBytes = Math.max(this.blockBytes, Math.min(MAX_WINDOW_BYTES, cache.capacityBytes * windowShare))
    this.tracker = new ReadaheadTracker({ length: source.length, blockBytes: this.blockBytes, maxWindowBytes, ...(options.now && { now: options.now }) })
    const reserved = Math.max(1, Math.floor(options.connections * DEMAND_RESERVE_SHARE))
    this.scheduler = new FetchScheduler(options.connections, reserved)
    this.readaheadSlots = Math.max(1, options.connections - reserved)
    if (source.identity) this.identity = () => source.identity!()
  }

  /** Bytes of this snapshot in the cache now. */
  cachedBytes(): number {
    return this.cache.bytesOf(this.owner)
  }

  /** The source's facts, and this snapshot's bytes in the cache. */
  inspect(): SnapshotInspection {
    return { ...this.inner.inspect?.(), cachedBytes: this.cachedBytes() }
  }

  /** A copy: the caller may keep it, while cached buffers are recycled once evicted. */
  async readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    return Buffer.concat(await this.readPieces(offset, length, options), length)
  }

  /**
   * The bytes of `[offset, offset + length)` as consecutive views of cached buffers. They stay
   * valid until the caller next yields to the event loop: copy them at once (the FUSE layer copies
   * them into the kernel's buffer), and never write to them.
   */
  async readPieces(offset: number, length: number, options: ReadOptions = {}): Promise<Buffer[]> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    if (length === 0) return []
    options.signal?.throwIfAborted()
    const access = this.tracker.observe(offset, length, options.stream)
    const firstBlock = Math.floor(offset / this.blockBytes)
    const lastBlock = Math.floor((offset + length - 1) / this.blockBytes)
    // A random miss (no readahead) in one block: the source may answer it without the whole block
    // (the disk cache's pieces), which is then not kept here, as for readNow's. The second such
    // miss on a block reads it whole and keeps it: a block read at random again and again (an
    // O_DIRECT reader's, which no page cache keeps) is then served from memory, not from the disk
    // each time, while blocks read once cost only their pieces.
    if (this.inner.readSmall && access.ahead.length === 0 && firstBlock === lastBlock && !this.cache.has(this.owner, firstBlock) && !this.inFlight.has(firstBlock) && !this.answeredSmall.delete(firstBlock)) {
      const pieces = await this.inner.readSmall(offset, length)
      if (pieces) {
        this.answeredSmall.set(firstBlock, true)
        if (this.answeredSmall.size > this.answeredSmallLimit) this.answeredSmall.delete(this.answeredSmall.keys().next().value!)
        return [...pieces]
      }
    }
    // A fetch this read waited on may fail for bytes outside its blocks (a block of a longer run,
    // readahead's or another reader's, that never matched its manifest digest): the read then asks
    // again for its own blocks, so only the reads that need the bad bytes fail.
    const [blocksStart, blocksEnd] = [firstBlock * this.blockBytes, (lastBlock + 1) * this.blockBytes]
    let failure: unknown
    let attempt = 0
    do {
      attempt++
      try {
        return await this.readBlocks(offset, length, firstBlock, lastBlock, access, attempt === 1, options)
      } catch (err) {
        failure = err
      }
      const failed = failedRangeOf(failure)
      if (!failed || failed.offset < blocksEnd && blocksStart < failed.offset + failed.length) break
    } while (attempt < CONFINED_RETRIES)
    throw failure
  }

  /**
   * The demand path of `readPieces`: blocks `[firstBlock, lastBlock]` from the cache, from fetches
   * on their way, or from new ones; and the stream's readahead, the first time.
   */
  private async readBlocks(offset: number, length: number, firstBlock: number, lastBlock: number, access: Access, readAhead: boolean, options: ReadOptions): Promise<Buffer[]> {
    // Extents this read holds views of while it waits: their buffers must not be recycled meanwhile.
    const pinned: Extent[] = []
    try {
      const sources = this.demand(firstBlock, lastBlock, access.stream, pinned)
      if (readAhead) this.readAhead(access)
      const fetches = [...new Set(sources.filter(isFetch))]
      const fetched = fetches.length === 0 ? undefined : await this.waitFor(fetches, options.signal, pinned)
      return sources.map((source, index) => {
        if (!isFetch(source)) return this.view(source, firstBlock + index, offset, offset + length)
        const extent = fetched!.get(source)!
        // Read as a hit is, though counted as a miss: the stream's read-through data is then recycled.
        this.cache.noteRead(extent, firstBlock + index, access.stream)
        return this.view(extent, firstBlock + index, offset, offset + length)
      })
    } finally {
      // After the caller's copy, which happens before it yields to the event loop. No pin is
      // added after this point: waitFor stops pinning arrivals once it has returned.
      if (pinned.length > 0) setImmediate(() => pinned.forEach((extent) => this.cache.unpin(extent)))
    }
  }

  /**
   * A read whose blocks are all cached, answered at once with the same effects as `readPieces`
   * (a reference to each block, the stream's readahead); undefined, with no effect, otherwise.
   */
  readNow(offset: number, length: number, stream?: number): Buffer[] | undefined {
    if (this.closed || length <= 0 || offset < 0 || offset + length > this.length) return undefined
    const firstBlock = Math.floor(offset / this.blockBytes)
    const lastBlock = Math.floor((offset + length - 1) / this.blockBytes)
    for (let block = firstBlock; block <= lastBlock; block++) if (!this.cache.has(this.owner, block)) return this.readBelow(offset, length, firstBlock, lastBlock, stream)
    const access = this.tracker.observe(offset, length, stream)
    const extents: Extent[] = []
    const timerSet = this.unpinSoon.length > 0
    for (let block = firstBlock; block <= lastBlock; block++) {
      const extent = this.cache.lookup(this.owner, block, access.stream)!
      // Pinned until the caller has copied: the readahead started next may evict the extent and
      // hand its buffer to a fetch, and a source may fill that buffer before readExact returns.
      this.cache.pin(extent)
      this.unpinSoon.push(extent)
      extents.push(extent)
    }
    if (!timerSet) setImmediate(this.unpinAll)
    this.readAhead(access)
    return extents.map((extent, index) => this.view(extent, firstBlock + index, offset, offset + length))
  }

  /**
   * Brings the blocks of `[offset, offset + length)` into the cache ahead of any reader, for a
   * prefetcher (src/profile/prefetcher.ts): blocks cached or on their way already are skipped, the
   * rest fetched in runs of at most `maxRequestBytes` at readahead priority, behind every demand
   * fetch and never in the slots kept for them. A reader that needs a block being prefetched waits
   * on that fetch, which it moves to the front. Resolves once the fetches land, with what they
   * brought; rejects with the first one's error, which no reader sees (see `fetch`).
   */
  async prefetch(offset: number, length: number, maxRequestBytes: number): Promise<PrefetchResult> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    const first = Math.floor(offset / this.blockBytes)
    const end = Math.ceil((offset + length) / this.blockBytes)
    const perRequest = Math.max(1, Math.min(this.maxDemandBlocks, Math.floor(maxRequestBytes / this.blockBytes)))
    const fetches: Fetch[] = []
    let complete = true
    for (const [block, runEnd] of this.missingRuns(first, end, perRequest)) {
      const fetch = this.fetch(block, runEnd, PREFETCH_STREAM, 'prefetch')
      if (!fetch) {
        complete = false
        break
      }
      fetches.push(fetch)
    }
    const outcomes = await Promise.all(fetches.map((fetch) => fetch.outcome))
    const failure = outcomes.find((outcome) => outcome !== undefined)
    if (failure !== undefined) throw failure
    const bytes = fetches.reduce((sum, fetch) => sum + Math.min(this.length, fetch.endBlock * this.blockBytes) - fetch.firstBlock * this.blockBytes, 0)
    return { bytes, blocks: fetches.map((fetch) => [fetch.firstBlock, fetch.endBlock]), complete }
  }

  /** Whether block `block` is in the cache now (a prefetcher asks, to count what it lost). */
  isCached(block: number): boolean {
    return this.cache.has(this.owner, block)
  }

  /**
   * A read that missed, answered at once by the layer below when it can (the disk cache, from
   * the page cache, checking only the pieces it reads) and no fetch is bringing its blocks here:
   * nothing is fetched or kept for it. A random reader's blocks, fetched whole, would mostly be
   * evicted unread when its working set is larger than this cache, which is what the disk cache
   * allows: a 4 KiB read so costs a 16 KiB pread instead of a 128 KiB one, a cache insertion
   * and a chain of promises. The read is observed as any other, so a sequential reader's
   * readahead still brings whole blocks here.
   */
  private readBelow(offset: number, length: number, firstBlock: number, lastBlock: number, stream: number | undefined): Buffer[] | undefined {
    if (!this.inner.readNow) return undefined
    for (let block = firstBlock; block <= lastBlock; block++) if (this.inFlight.has(block)) return undefined
    const pieces = this.inner.readNow(offset, length, stream)
    if (!pieces) return undefined
    this.readAhead(this.tracker.observe(offset, length, stream))
    return [...pieces]
  }

  /** Extents readNow answered from, unpinned together once the event loop turns (one timer, not one per read). */
  private readonly unpinSoon: Extent[] = []
  private readonly unpinAll = (): void => {
    for (const extent of this.unpinSoon.splice(0)) this.cache.unpin(extent)
  }

  /** The part of block `block` (held by `extent`) inside `[offset, end)`. */
  private view(extent: Extent, block: number, offset: number, end: number): Buffer {
    const bytes = this.cache.blockOf(extent, block)
    const blockStart = block * this.blockBytes
    return bytes.subarray(Math.max(offset, blockStart) - blockStart, Math.min(end, blockStart + bytes.length) - blockStart)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const fetch of new Set(this.inFlight.values())) fetch.controller.abort(new BackendClosedError())
    this.cache.drop(this.owner)
    await this.inner.close()
  }

  /** For each block of the read: the cached extent holding it (pinned), or the fetch that brings it (started here if need be). */
  private demand(firstBlock: number, lastBlock: number, stream: number, pinned: Extent[]): Array<Extent | Fetch> {
    const sources: Array<Extent | Fetch> = []
    for (let block = firstBlock; block <= lastBlock; block++) {
      const cached = this.cache.lookup(this.owner, block, stream)
      if (cached) {
        this.cache.pin(cached)
        pinned.push(cached)
        sources.push(cached)
        continue
      }
      const pending = this.inFlight.get(block)
      if (pending) {
        sources.push(pending)
        continue
      }
      let runEnd = block + 1
      while (runEnd <= lastBlock && runEnd - block < this.maxDemandBlocks && this.isMissing(runEnd)) runEnd++
      const fetch = this.fetch(block, runEnd, stream, 'demand')
      for (; block < runEnd; block++) sources.push(fetch)
      block--
    }
    return sources
  }

  /** Starts readahead fetches for the stream's window, skipping blocks cached or on their way. */
  private readAhead({ ahead, stream }: Access): void {
    if (ahead.length === 0) return
    const first = Math.floor(ahead.offset / this.blockBytes)
    const end = Math.min(Math.ceil((ahead.offset + ahead.length) / this.blockBytes), this.blockCount())
    const perRequest = Math.max(1, Math.floor(ahead.requestBytes / this.blockBytes))
    for (const [block, runEnd] of this.missingRuns(first, end, perRequest)) {
      // No room left under the bound (other fetches hold it): read ahead no further for now.
      if (!this.fetch(block, runEnd, stream, 'readahead')) return
    }
  }

  /**
   * The runs of blocks in `[first, end)` neither cached nor on their way, each at most
   * `perRequest` long, as `[first, end)` pairs: looked at lazily, so each run sees the fetches of
   * the runs before it.
   */
  private *missingRuns(first: number, end: number, perRequest: number): Generator<[number, number]> {
    for (let block = first; block < end; ) {
      if (!this.isMissing(block)) {
        block++
        continue
      }
      let runEnd = block + 1
      while (runEnd < end && runEnd - block < perRequest && this.isMissing(runEnd)) runEnd++
      yield [block, runEnd]
      block = runEnd
    }
  }

  private isMissing(block: number): boolean {
    return !this.inFlight.has(block) && !this.cache.has(this.owner, block)
  }

  private blockCount(): number {
    return Math.ceil(this.length / this.blockBytes)
  }

  /**
   * Schedules one ranged request for blocks `[firstBlock, endBlock)` and caches what it brings.
   * Room is reserved in the cache first, so in-flight buffers count against the bound too. A
   * demand fetch waits for room if there is none (its reader needs the bytes); a readahead or
   * prefetch fetch is not made at all. The backend fills a recycled buffer where it can. A
   * prefetch that fails while readers wait on it hands them a demand fetch of the same blocks:
   * its failure is the prefetcher's to report, and never fails a read.
   */
  private fetch(firstBlock: number, endBlock: number, stream: number, kind: 'readahead' | 'prefetch'): Fetch | undefined
  private fetch(firstBlock: number, endBlock: number, stream: number, kind: 'demand'): Fetch
  private fetch(firstBlock: number, endBlock: number, stream: number, kind: FetchKind): Fetch | undefined {
    const readahead = kind !== 'demand'
    const offset = firstBlock * this.blockBytes
    const length = Math.min(this.length, endBlock * this.blockBytes) - offset
    let reserved = this.cache.reserve(length)
    if (!reserved && readahead) return undefined
    // Taken once room is reserved: a buffer outside the bound is what the wait avoids.
    let into: Buffer | undefined
    // Set while the fetch waits for room: withdraws it.
    let withdraw: (() => void) | undefined
    const controller = new AbortController()
    let settle!: { resolve: (extent: Extent) => void; reject: (err: unknown) => void }
    const data = new Promise<Extent>((resolve, reject) => (settle = { resolve, reject }))
    // A readahead fetch nobody waits for may fail; its error is not anyone's to report.
    data.catch(() => {})
    let answered!: (outcome: unknown) => void
    const outcome = new Promise<unknown>((resolve) => (answered = resolve))
    const gaveUp = (err: unknown) => {
      this.forget(fetch)
      if (into) this.cache.giveBack(into)
      if (reserved) this.cache.release(length)
      answered(err)
      if (kind === 'prefetch' && fetch.waiters > 0 && !controller.signal.aborted && !this.closed) {
        const again = this.fetch(firstBlock, endBlock, stream, 'demand')
        again.data.then(settle.resolve, settle.reject)
      } else settle.reject(err)
    }
    const job: Job = {
      priority: readahead ? 'readahead' : 'demand',
      run: async () => {
        try {
          controller.signal.throwIfAborted()
          const holdInto = this.cache.holdInto(into!)
          const bytes = await this.inner.readExact(offset, length, { signal: controller.signal, into: into!, ...(holdInto && { holdInto }) })
          // Arena buffers are pieces of a slab: only `into` itself is ours to give back.
          const pooled = bytes === into
          if (!pooled) this.cache.giveBack(into!)
          into = undefined
          this.forget(fetch)
          reserved = false
          const extent = this.cache.insert(this.owner, firstBlock, bytes, stream, { readahead, reserved: true, pooled })
          answered(undefined)
          settle.resolve(extent)
          // insert() pinned it for the readers now waking up; they pin it themselves if they wait on.
          setImmediate(() => this.cache.unpin(extent))
        } catch (err) {
          gaveUp(err)
        }
      },
    }
    const fetch: Fetch = { firstBlock, endBlock, data, job, controller, readahead, outcome, waiters: 0 }
    for (let block = firstBlock; block < endBlock; block++) this.inFlight.set(block, fetch)
    controller.signal.addEventListener('abort', () => {
      if (withdraw) {
        withdraw()
        withdraw = undefined
        gaveUp(controller.signal.reason)
      } else if (this.scheduler.cancel(job)) gaveUp(controller.signal.reason)
      // Started: it settles when the source gives up. A read arriving meanwhile must not wait on
      // it, to fail with another reader's abort: it asks again.
      else this.forget(fetch)
    }, { once: true })
    const start = () => {
      into = this.cache.take(length)
      this.scheduler.submit(job)
    }
    if (reserved) start()
    else {
      withdraw = this.cache.waitForRoom(length, () => {
        withdraw = undefined
        reserved = true
        start()
      })
    }
    return fetch
  }

  /** Waits for `fetches` and returns the extent each brought, pinned; gives up when `signal` fires. */
  private async waitFor(fetches: Fetch[], signal: AbortSignal | undefined, pinned: Extent[]): Promise<Map<Fetch, Extent>> {
    for (const fetch of fetches) {
      fetch.waiters++
      this.scheduler.promote(fetch.job)
    }
    let done = false
    // Set by the executor, which runs at once.
    let onAbort!: () => void
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal!.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    const arrivals = fetches.map(async (fetch) => {
      const extent = await fetch.data
      // Pinned as it arrives: the read may still wait for another fetch.
      if (!done) {
        this.cache.pin(extent)
        pinned.push(extent)
      }
      return [fetch, extent] as const
    })
    try {
      return new Map(await Promise.race([Promise.all(arrivals), aborted]))
    } finally {
      done = true
      signal?.removeEventListener('abort', onAbort)
      for (const fetch of fetches) {
        fetch.waiters--
        // Nobody else wants what this read alone asked for: stop fetching it.
        if (fetch.waiters === 0 && !fetch.readahead && signal?.aborted) fetch.controller.abort(signal.reason)
      }
    }
  }

  /** Takes a settled or cancelled fetch out of the in-flight table. */
  private forget(fetch: Fetch): void {
    for (let block = fetch.firstBlock; block < fetch.endBlock; block++) {
      if (this.inFlight.get(block) === fetch) this.inFlight.delete(block)
    }
  }
}

function isFetch(source: Extent | Fetch): source is Fetch {
  return 'job' in source
}

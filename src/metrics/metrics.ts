import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { RemoteObserver } from '../backend/remote/observer.js'
import type { CacheStats } from '../cache/cache-stats.js'
import type { DiskCacheStats } from '../disk-cache/disk-cache.js'
import type { MirrorReport, PrefetchReport, StorageBackend } from '../backend/storage-backend.js'
import type { IntegrityStats } from '../backend/integrity.js'
import type { ReadObserver } from './metered-backend.js'
import { LABELS, METRICS, READ_SECONDS_BUCKETS, REQUEST_SECONDS_BUCKETS } from './names.js'

/** A snapshot as the daemon serves it now; the list changes when the config is reloaded. */
export interface LiveSnapshot {
  readonly name: string
  readonly backend: Pick<StorageBackend, 'length' | 'inspect'>
}

/** What the series read when scraped: the live snapshot list and, once there is one, the block cache. */
export interface MetricsSources {
  snapshots(): readonly LiveSnapshot[]
  cache?: { stats(): CacheStats } | undefined
  diskCache?: { stats(): DiskCacheStats } | undefined
}

const { snapshot, type, result, source } = LABELS

/**
 * Series that copy a number out of counters kept elsewhere (the block cache's, the disk cache's)
 * when scraped: `pick` chooses the number; no cache yet, no sample.
 */
function copiedAtScrape<Stats>(stats: () => Stats | undefined) {
  return (pick: (stats: Stats) => number) =>
    function collect(this: Counter | Gauge) {
      this.reset()
      const current = stats()
      if (current) this instanceof Counter ? this.inc(pick(current)) : this.set(pick(current))
    }
}

/**
 * snapmount's Prometheus series, in a registry of their own (never prom-client's global one), with
 * Node's process series beside them. Reads and remote requests are pushed in as they happen through
 * the observers; the snapshot list and the cache are read when scraped.
 */
export class SnapmountMetrics {
  readonly registry = new Registry()
  private sources: MetricsSources = { snapshots: () => [] }
  private cacheRegistered = false
  private diskCacheRegistered = false
  private readonly reads: Counter
  private readonly readBytes: Counter
  private readonly readErrors: Counter
  private readonly readDuration: Histogram
  private readonly readsInFlight: Gauge
  private readonly backendRequests: Counter
  private readonly backendBytes: Counter
  private readonly backendDuration: Histogram
  private readonly backendRetries: Counter

  constructor() {
    const registers = [this.registry]
    const perSnapshot = { labelNames: [snapshot], registers }
    const self = this
    collectDefaultMetrics({ register: this.registry })

    new Gauge({
      ...METRICS.snapshotInfo,
      labelNames: [snapshot, type],
      registers,
      collect() {
        this.reset()
        for (const { name, backend } of self.sources.snapshots()) {
          this.set({ [snapshot]: name, [type]: backend.inspect?.().type ?? 'unknown' }, 1)
        }
      },
    })
    new Gauge({
      ...METRICS.snapshotSize,
      ...perSnapshot,
      collect() {
        this.reset()
        for (const { name, backend } of self.sources.snapshots()) this.set({ [snapshot]: name }, backend.length)
      },
    })
    this.reads = new Counter({ ...METRICS.reads, ...perSnapshot })
    this.readBytes = new Counter({ ...METRICS.readBytes, ...perSnapshot })
    this.readErrors = new Counter({ ...METRICS.readErrors, ...perSnapshot })
    this.readDuration = new Histogram({ ...METRICS.readDuration, ...perSnapshot, buckets: READ_SECONDS_BUCKETS })
    this.readsInFlight = new Gauge({ ...METRICS.readsInFlight, ...perSnapshot })
    this.backendRequests = new Counter({ ...METRICS.backendRequests, labelNames: [snapshot, result], registers })
    this.backendBytes = new Counter({ ...METRICS.backendBytes, ...perSnapshot })
    this.backendDuration = new Histogram({ ...METRICS.backendDuration, ...perSnapshot, buckets: REQUEST_SECONDS_BUCKETS })
    this.backendRetries = new Counter({ ...METRICS.backendRetries, ...perSnapshot })
    // A snapshot's verifying layer counts its blocks (inspect().integrity); copied when scraped.
    const fromIntegrity = (pick: (stats: IntegrityStats) => number) =>
      function collect(this: Counter) {
        this.reset()
        for (const { name, backend } of self.sources.snapshots()) {
          const stats = backend.inspect?.().integrity
          if (stats) this.inc({ [snapshot]: name }, pick(stats))
        }
      }
    new Counter({ ...METRICS.blocksVerified, ...perSnapshot, collect: fromIntegrity((s) => s.verifiedBlocks) })
    new Counter({ ...METRICS.blockMismatches, ...perSnapshot, collect: fromIntegrity((s) => s.mismatches) })
    new Counter({ ...METRICS.blockFailures, ...perSnapshot, collect: fromIntegrity((s) => s.failedBlocks) })
    this.registerMirrorSeries()
    this.registerPrefetchSeries()

  }

  /**
   * Where scrapes find the live snapshots and the cache; set once the file system exists. The
   * cache series are registered with the first cache: without one there is nothing to report
   * (prom-client would show zeros, which read as an empty cache).
   */
  attach(sources: MetricsSources): void {
    this.sources = sources
    if (sources.cache && !this.cacheRegistered) {
      this.cacheRegistered = true
      this.registerCacheSeries()
    }
    if (sources.diskCache && !this.diskCacheRegistered) {
      this.diskCacheRegistered = true
      this.registerDiskCacheSeries()
    }
  }

  /** The disk cache's counters, copied at scrape time like the block cache's. */
  private registerDiskCacheSeries(): void {
    const registers = [this.registry]
    const fromDisk = copiedAtScrape<DiskCacheStats>(() => this.sources.diskCache?.stats())
    new Counter({ ...METRICS.diskHits, registers, collect: fromDisk((s) => s.hits) })
    new Counter({ ...METRICS.diskMisses, registers, collect: fromDisk((s) => s.misses) })
    new Counter({ ...METRICS.diskVerifyFailures, registers, collect: fromDisk((s) => s.verifyFailures) })
    new Counter({ ...METRICS.diskEvictions, registers, collect: fromDisk((s) => s.evictions) })
    new Counter({ ...METRICS.diskWrittenBytes, registers, collect: fromDisk((s) => s.bytesWritten) })
    new Counter({ ...METRICS.diskWriteErrors, registers, collect: fromDisk((s) => s.writeErrors) })
    new Gauge({ ...METRICS.diskBytes, registers, collect: fromDisk((s) => s.bytesInUse) })
    new Gauge({ ...METRICS.diskCapacity, registers, collect: fromDisk((s) => s.capacityBytes) })
  }

  /** Each snapshot's boot profile prefetch (inspect().prefetch), copied when scraped. */
  private registerPrefetchSeries(): void {
    const registers = [this.registry]
    const self = this
    const fromPrefetch = (pick: (report: PrefetchReport) => number | null) =>
      function collect(this: Counter | Gauge) {
        this.reset()
        for (const { name, backend } of self.sources.snapshots()) {
          const report = backend.inspect?.().prefetch
          const value = report && pick(report)
          if (value === undefined || value === null) continue
          this instanceof Counter ? this.inc({ [snapshot]: name }, value) : this.set({ [snapshot]: name }, value)
        }
      }
    const labelNames = [snapshot]
    new Counter({ ...METRICS.prefetchedBytes, labelNames, registers, collect: fromPrefetch((r) => r.prefetchedBytes) })
    new Counter({ ...METRICS.prefetchHits, labelNames, registers, collect: fromPrefetch((r) => r.hitBlocks) })
    new Counter({ ...METRICS.prefetchHitBytes, labelNames, registers, collect: fromPrefetch((r) => r.hitBytes) })
    new Gauge({ ...METRICS.prefetchWastedBytes, labelNames, registers, collect: fromPrefetch((r) => r.wastedBytes) })
    new Gauge({ ...METRICS.prefetchEvictedBytes, labelNames, registers, collect: fromPrefetch((r) => r.evictedBytes) })
    new Counter({ ...METRICS.prefetchFailures, labelNames, registers, collect: fromPrefetch((r) => r.failures) })
    new Gauge({ ...METRICS.prefetchProfileAge, labelNames, registers, collect: fromPrefetch((r) => r.ageSeconds) })
  }

  /** Each source of every mirrored snapshot, from its inspect() at scrape time. */
  private registerMirrorSeries(): void {
    const registers = [this.registry]
    const self = this
    const eachMirror = <M extends Counter | Gauge>(set: (metric: M, labels: Record<string, string>, mirror: MirrorReport) => void) =>
      function collect(this: M) {
        this.reset()
        for (const { name, backend } of self.sources.snapshots()) {
          for (const mirror of backend.inspect?.().mirrors ?? []) set(this, { [snapshot]: name, [source]: mirror.source }, mirror)
        }
      }
    const labelNames = [snapshot, source]
    new Gauge({ ...METRICS.mirrorUp, labelNames, registers, collect: eachMirror<Gauge>((gauge, labels, m) => gauge.set(labels, m.state === 'healthy' ? 1 : 0)) })
    new Gauge({
      ...METRICS.mirrorLatency,
      labelNames,
      registers,
      collect: eachMirror<Gauge>((gauge, labels, m) => m.latencyMs !== null && gauge.set(labels, m.latencyMs / 1000)),
    })
    new Counter({ ...METRICS.mirrorHedgesLost, labelNames, registers, collect: eachMirror<Counter>((counter, labels, m) => counter.inc(labels, m.hedgesLost)) })
    new Counter({ ...METRICS.mirrorBadBlocks, labelNames, registers, collect: eachMirror<Counter>((counter, labels, m) => counter.inc(labels, m.badBlocks)) })
    new Counter({
      ...METRICS.mirrorRequests,
      labelNames: [...labelNames, result],
      registers,
      collect: eachMirror<Counter>((counter, labels, m) => {
        counter.inc({ ...labels, [result]: 'ok' }, m.requests)
        counter.inc({ ...labels, [result]: 'error' }, m.errors)
      }),
    })
  }

  /** The cache keeps its own counters; these copy them at scrape time. */
  private registerCacheSeries(): void {
    const registers = [this.registry]
    const fromCache = copiedAtScrape<CacheStats>(() => this.sources.cache?.stats())
    new Counter({ ...METRICS.cacheHits, registers, collect: fromCache((s) => s.hits) })
    new Counter({ ...METRICS.cacheMisses, registers, collect: fromCache((s) => s.misses) })
    new Counter({ ...METRICS.cacheEvictions, registers, collect: fromCache((s) => s.evictions) })
    new Counter({ ...METRICS.cacheFetchedBytes, registers, collect: fromCache((s) => s.fetchedBytes) })
    new Counter({ ...METRICS.cacheReadaheadBytes, registers, collect: fromCache((s) => s.readaheadBytes) })
    new Gauge({ ...METRICS.cacheBytes, registers, collect: fromCache((s) => s.bytesInUse) })
    new Gauge({ ...METRICS.cacheCapacity, registers, collect: fromCache((s) => s.capacityBytes) })
  }

  /** The observer a MeteredBackend reports `name`'s reads to. */
  readObserver(name: string): ReadObserver {
    const labels = { [snapshot]: name }
    return {
      started: () => this.readsInFlight.inc(labels),
      finished: ({ durationMs, bytes, failed }) => {
        this.readsInFlight.dec(labels)
        this.reads.inc(labels)
        if (failed) this.readErrors.inc(labels)
        else this.readBytes.inc(labels, bytes)
        this.readDuration.observe(labels, durationMs / 1000)
      },
    }
  }

  /** The observer a remote backend reports `name`'s request attempts and retries to (OpenContext.observe). */
  remoteObserver(name: string): RemoteObserver {
    const labels = { [snapshot]: name }
    return {
      request: ({ durationMs, bytes, failed }) => {
        this.backendRequests.inc({ ...labels, [result]: failed ? 'error' : 'ok' })
        this.backendBytes.inc(labels, bytes)
        this.backendDuration.observe(labels, durationMs / 1000)
      },
      retry: () => this.backendRetries.inc(labels),
    }
  }

  /** The exposition text and its content type, as a scrape gets them. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

import { LayerBackend } from '../backend/layer-backend.js'
import { readPieces, type ReadOptions, type ReadStats, type SnapshotInspection, type StorageBackend } from '../backend/storage-backend.js'

/** Told of every read a MeteredBackend passes on: the Prometheus series hang off this. */
export interface ReadObserver {
  started(): void
  finished(event: { durationMs: number; bytes: number; failed: boolean }): void
}

/** "Recent" means the last minute, the span an operator looking at `status` cares about. */
const RECENT_WINDOW_MS = 60_000
/** The newest samples kept: enough for a stable p99, small enough to sort on every status call. */
const RECENT_SAMPLES = 1024

/**
 * A metering layer around a snapshot's backend (style rule 6: layers are decorators with the same
 * contract). It sits outermost, above any cache, so it sees reads as the mount's readers do: a
 * cache hit is a fast read. It counts reads, bytes, failures and reads in flight, keeps the latest
 * latencies for `status` (`inspect`), and tells an optional observer (the Prometheus series).
 * Reads marked `maintenance` (warm, verify) are not the mount's and pass through uncounted.
 */
export class MeteredBackend extends LayerBackend implements StorageBackend {
  private reads = 0
  private bytes = 0
  private errors = 0
  private inFlight = 0
  /** A ring of [finishedAt, durationMs] pairs; `next` is the slot written next. */
  private readonly samples: Array<[number, number]> = []
  private next = 0

  constructor(
    inner: StorageBackend,
    /** The backend type from the config (file, mmap, http, s3), for status and the info series. */
    private readonly type: string,
    private readonly observer?: ReadObserver | undefined,
    /** A monotonic clock in milliseconds; injected by tests. */
    private readonly now: () => number = () => performance.now(),
  ) {
    super(inner)
  }

  readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    const read = () => this.inner.readExact(offset, length, options)
    return options?.maintenance ? read() : this.meter(length, read)
  }

  /** Passed through, so that the FUSE layer still copies each byte of a cached read once. */
  readPieces(offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]> {
    const read = () => readPieces(this.inner, offset, length, options)
    return options?.maintenance ? read() : this.meter(length, read)
  }

  /** Passed through; a read answered at once is counted like any other. */
  readNow(offset: number, length: number, stream?: number): readonly Buffer[] | undefined {
    // Local backends have no readNow: they are not charged a clock read per read for nothing.
    if (!this.inner.readNow) return undefined
    const started = this.now()
    const pieces = this.inner.readNow(offset, length, stream)
    // Undefined is not a read: the caller makes it the usual way, which counts it then.
    if (pieces) {
      this.begin()
      this.end(started, length, false)
    }
    return pieces
  }

  private async meter<T>(length: number, read: () => Promise<T>): Promise<T> {
    const started = this.now()
    this.begin()
    let failed = true
    try {
      const result = await read()
      failed = false
      return result
    } finally {
      this.end(started, length, failed)
    }
  }

  private begin(): void {
    this.inFlight++
    this.observer?.started()
  }

  private end(started: number, length: number, failed: boolean): void {
    const durationMs = this.now() - started
    this.inFlight--
    this.reads++
    if (failed) this.errors++
    else this.bytes += length
    this.record(durationMs)
    this.observer?.finished({ durationMs, bytes: failed ? 0 : length, failed })
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  revalidate(): void {
    this.inner.revalidate?.()
  }

  /** The layers below, with the type this layer was given and its read counts. */
  inspect(): SnapshotInspection {
    return { ...this.inner.inspect?.(), type: this.type, reads: this.stats() }
  }

  stats(): ReadStats {
    const since = this.now() - RECENT_WINDOW_MS
    const recent = this.samples.filter(([at]) => at >= since).map(([, ms]) => ms).sort((a, b) => a - b)
    const at = (q: number) => (recent.length === 0 ? null : recent[Math.min(recent.length - 1, Math.floor(q * recent.length))]!)
    return {
      reads: this.reads,
      bytes: this.bytes,
      errors: this.errors,
      inFlight: this.inFlight,
      recent: { windowSeconds: RECENT_WINDOW_MS / 1000, count: recent.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: recent.length === 0 ? null : recent[recent.length - 1]! },
    }
  }

  private record(durationMs: number): void {
    const sample: [number, number] = [this.now(), durationMs]
    if (this.samples.length < RECENT_SAMPLES) this.samples.push(sample)
    else this.samples[this.next] = sample
    this.next = (this.next + 1) % RECENT_SAMPLES
  }
}

import type { Logger } from '../../log.js'
import type { MirrorReport, ReadOptions, SnapshotInspection, SourceSet, StorageBackend } from '../storage-backend.js'
import { BackendClosedError, describe } from '../errors.js'
import { assertInRange } from '../range.js'
import { RetriesExhaustedError } from '../remote/remote-errors.js'
import { backoffDelay, type RetryPolicy } from '../remote/retry-policy.js'
import { SourceSelector } from './source-selector.js'

/**
 * Ranges marked bad (`markBad`) kept at most: 4096 blocks of 128 KiB is half a GiB of an image
 * damaged on one mirror, far past the point where the mirror is ranked last anyway; beyond it the
 * oldest marks are dropped (their blocks are then asked from the best source again, checked again).
 */
const MAX_BAD_RANGES = 4096

/** A range a source (or several) answered damaged. */
interface BadRange {
  offset: number
  length: number
  sources: Set<number>
}

export interface MirrorBackendOptions {
  /** The snapshot's name, for messages. */
  name: string
  /** The opened sources, the same image each, in the config's order; closed with this backend. */
  sources: readonly StorageBackend[]
  /** Their names in status and logs (a redacted URL, s3://bucket/key). */
  labels: readonly string[]
  /**
   * One read's budget over every source: its deadline, and `maxAttempts` per source. When every
   * source has failed a read, the next round waits the policy's backoff first.
   */
  retry: RetryPolicy
  logger: Logger
  /** What each source's open took, the first guess at its latency (SourceSelector). */
  initialLatencyMs?: ReadonlyArray<number | undefined>
  /** A monotonic clock in milliseconds; injected by tests (timers are real). */
  now?: (() => number) | undefined
  random?: (() => number) | undefined
}

/** One request of a read to one source. */
interface Attempt {
  source: number
  started: number
  abort: AbortController
  hedge: NodeJS.Timeout | undefined
  /** It was given the caller's `into`: a winner that was not must stop it before resolving. */
  ownsInto: boolean
}

/**
 * A snapshot served by several sources holding the same image (mirrors, regions, buckets), as one
 * StorageBackend: the layers above (block cache, metering) see one source.
 *
 * Each read goes to the best source (source-selector.ts). A source that fails it hands the read to
 * the next at once; one slower than its recent p95 gets a hedge to the next, and the first answer
 * wins while the others are aborted. The read fails only when every source has failed it
 * `maxAttempts` times, or its deadline has passed: then with RetriesExhaustedError, whose cause is
 * the last failure. Each source is opened for single attempts: retries are this loop's, across
 * sources, so a dead mirror costs one refused connection, not a backoff.
 *
 * Bytes are not checked here: a source cannot tell its answer is damaged. The layer above that can
 * (the manifest's VerifyingBackend) reads through `sourceSet`, which says which source answered;
 * it marks a source bad for a block that failed its digest (`markBad`) and asks that block from
 * the others. A marked source goes after every other one for any read that overlaps the block.
 */
export class MirrorBackend implements StorageBackend, SourceSet {
  readonly sourceSet: SourceSet = this
  private closed = false
  /** By offset; oldest first (a Map keeps insertion order), at most MAX_BAD_RANGES. */
  private readonly badRanges = new Map<number, BadRange>()
  private readonly selector: SourceSelector
  private readonly now: () => number
  private readonly random: () => number
  /**
   * Sources that went failing, with when the request that found them failing was sent, until
   * another source answers a read (over `readFrom`, once the caller has `verified` the answer):
   * that answer ends the failover, and its one log line says how
   * long a read waited for it (from that request, not from the failure: a source that died while
   * idle is found by the next read, and that read's wait is the failover's cost).
   */
  private readonly failingSince = new Map<number, number>()
  /** When the request being failed (selector.failed, whose onChange reads it) was sent. */
  private failedRequestSent = 0

  constructor(private readonly options: MirrorBackendOptions) {
    this.now = options.now ?? (() => performance.now())
    this.random = options.random ?? Math.random
    const { labels, logger, name } = options
    this.selector = new SourceSelector({
      labels,
      initialLatencyMs: options.initialLatencyMs,
      now: this.now,
      onChange: (source, state, why) => {
        if (state === 'failing') {
          this.failingSince.set(source, this.failedRequestSent)
          logger.warn(`snapshot ${name}: mirror ${labels[source]} is failing (${why}); reads go to the others, and it is probed again after a cool-down`)
        } else {
          this.failingSince.delete(source)
          logger.info(`snapshot ${name}: mirror ${labels[source]} recovered (${why}); reads go to it again by its latency`)
        }
      },
    })
  }

  get length(): number {
    return this.options.sources[0]!.length
  }

  get mtime(): Date {
    return this.options.sources[0]!.mtime
  }

  /** For `check` and `status`: every source with its state. */
  describe(): string {
    const sources = this.selector
      .report()
      .map((s) => `${s.source} (${s.state}, ${s.latencyMs === null ? 'unmeasured' : `${s.latencyMs.toFixed(1)} ms`}, ${s.errors} errors${s.badBlocks > 0 ? `, ${s.badBlocks} bad blocks` : ''})`)
    return `${sources.length} mirrors: ${sources.join(' | ')}`
  }

  inspect(): SnapshotInspection & { mirrors: MirrorReport[] } {
    return { mirrors: this.selector.report() }
  }

  get labels(): readonly string[] {
    return this.options.labels
  }

  async readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    return (await this.read(offset, length, options, true)).bytes
  }

  /** `readExact` for a caller that checks the bytes: an answer ends a failover only once it says `verified`. */
  readFrom(offset: number, length: number, options?: ReadOptions & { avoid?: ReadonlySet<number> | undefined }): Promise<{ bytes: Buffer; source: number }> {
    return this.read(offset, length, options, false)
  }

  verified(source: number): void {
    if (this.failingSince.size > 0) this.failedOver(source)
  }

  /** `checked`: the answer is final as it comes (no caller checks it), so it may end a failover at once. */
  private read(offset: number, length: number, options: (ReadOptions & { avoid?: ReadonlySet<number> | undefined }) | undefined, checked: boolean): Promise<{ bytes: Buffer; source: number }> {
    if (this.closed) return Promise.reject(new BackendClosedError())
    const avoid = options?.avoid ?? new Set<number>()
    try {
      assertInRange(offset, length, this.length)
      if (this.options.sources.every((_, index) => avoid.has(index))) throw new RangeError(`a read of ${this.options.name} that avoids every one of its ${this.options.sources.length} sources`)
    } catch (err) {
      return Promise.reject(err)
    }
    // No source's bytes: the one not avoided, say, for whoever asks.
    if (length === 0) return Promise.resolve({ bytes: Buffer.alloc(0), source: this.options.sources.findIndex((_, index) => !avoid.has(index)) })
    return this.race(offset, length, avoid, options, checked)
  }

  markBad(source: number, offset: number, length: number): void {
    this.selector.corrupt(source)
    const range = this.badRanges.get(offset) ?? { offset, length, sources: new Set<number>() }
    range.sources.add(source)
    this.badRanges.delete(offset)
    this.badRanges.set(offset, range)
    if (this.badRanges.size > MAX_BAD_RANGES) this.badRanges.delete(this.badRanges.keys().next().value!)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all(this.options.sources.map((source) => source.close()))
  }

  /** The sources that answered some of `[offset, offset + length)` damaged before. */
  private badFor(offset: number, length: number): Set<number> {
    const bad = new Set<number>()
    for (const range of this.badRanges.values()) {
      if (range.offset < offset + length && offset < range.offset + range.length) for (const source of range.sources) bad.add(source)
    }
    return bad
  }

  /** Runs one read over the sources but `avoid`: see the class comment. */
  private race(offset: number, length: number, avoid: ReadonlySet<number>, options: ReadOptions | undefined, checked: boolean): Promise<{ bytes: Buffer; source: number }> {
    const { sources, retry } = this.options
    const what = `read of bytes ${offset}-${offset + length - 1} of ${this.options.name} from ${sources.length} mirrors`
    const started = this.now()
    const live: Attempt[] = []
    /** Sources failed in this round, or in flight: not asked again until the round ends. */
    const busy = new Set<number>(avoid)
    const demote = this.badRanges.size === 0 ? undefined : this.badFor(offset, length)
    let attempts = 0
    let rounds = 1
    let lastError: unknown
    let intoTaken = false
    let done = false
    let wait: NodeJS.Timeout | undefined
    let deadline: NodeJS.Timeout | undefined

    return new Promise<{ bytes: Buffer; source: number }>((resolve, reject) => {
      const finish = (err: unknown, answer?: { bytes: Buffer; source: number }) => {
        done = true
        clearTimeout(wait)
        clearTimeout(deadline)
        options?.signal?.removeEventListener('abort', onCancel)
        for (const attempt of live.splice(0)) {
          clearTimeout(attempt.hedge)
          attempt.abort.abort(err ?? new Error(`${what}: answered by another mirror`))
          if (err) this.selector.abandoned(attempt.source)
          else {
            // A loser that had stalled once too often goes failing (selector.lost): this answer is its failover.
            this.failedRequestSent = attempt.started
            this.selector.lost(attempt.source, this.now() - attempt.started)
          }
        }
        if (err) return reject(err)
        // Over `readFrom` the caller checks the bytes first, and says so (`verified`).
        if (checked && this.failingSince.size > 0) this.failedOver(answer!.source)
        resolve(answer!)
      }
      const exhausted = () => new RetriesExhaustedError(what, attempts, Math.round(this.now() - started), lastError)
      const onCancel = () => finish(options!.signal!.reason)

      const launch = (): boolean => {
        const source = this.selector.order(busy, demote)[0]
        if (source === undefined) return false
        busy.add(source)
        attempts++
        const ownsInto = !intoTaken && options?.into !== undefined
        if (ownsInto) intoTaken = true
        const attempt: Attempt = { source, started: this.now(), abort: new AbortController(), hedge: undefined, ownsInto }
        live.push(attempt)
        const into = ownsInto ? options!.into : undefined
        sources[source]!.readExact(offset, length, { signal: attempt.abort.signal, ...(into && { into }), ...(options?.stream !== undefined && { stream: options.stream }) }).then(
          (bytes) => settled(attempt, bytes, undefined),
          (err: unknown) => settled(attempt, undefined, err),
        )
        // A hedge: the next source too, should this one be slower than it usually is.
        attempt.hedge = setTimeout(() => done || launch(), this.selector.hedgeDelayMs(source))
        return true
      }

      const settled = (attempt: Attempt, bytes: Buffer | undefined, err: unknown) => {
        if (done) return
        clearTimeout(attempt.hedge)
        live.splice(live.indexOf(attempt), 1)
        if (attempt.ownsInto) intoTaken = false
        if (bytes) {
          this.selector.succeeded(attempt.source, this.now() - attempt.started)
          return finish(undefined, { bytes, source: attempt.source })
        }
        lastError = err
        this.failedRequestSent = attempt.started
        this.selector.failed(attempt.source, describe(err))
        // Fail over at once, unless a hedge already has: it is the failover, and has its own hedge.
        if (live.length > 0 || launch()) return
        if (rounds >= retry.maxAttempts) return finish(exhausted())
        const pause = backoffDelay(retry, rounds, this.random)
        if (this.now() + pause >= started + retry.deadlineMs) return finish(exhausted())
        // Every source failed this read: a new round after the backoff.
        rounds++
        wait = setTimeout(() => {
          busy.clear()
          for (const source of avoid) busy.add(source)
          launch()
        }, pause)
      }

      if (options?.signal?.aborted) return reject(options.signal.reason)
      options?.signal?.addEventListener('abort', onCancel, { once: true })
      deadline = setTimeout(() => {
        lastError = new Error(`no mirror answered within the deadline of ${retry.deadlineMs} ms`)
        for (const attempt of live) {
          this.failedRequestSent = attempt.started
          this.selector.failed(attempt.source, `no answer within the deadline of ${retry.deadlineMs} ms`)
        }
        finish(exhausted())
      }, retry.deadlineMs)
      launch()
    })
  }

  /** `to` answered a read: the failover from each source still failing without one is over. */
  private failedOver(to: number): void {
    const { labels, logger, name } = this.options
    for (const [from, since] of this.failingSince) {
      // `to` itself went failing since its answer (another read's request to it failed) before
      // the caller verified it: no failover to itself, and its own ends at its next good answer.
      if (from === to) continue
      this.failingSince.delete(from)
      const failoverMs = Math.round((this.now() - since) * 10) / 10
      logger.info(`snapshot ${name}: reads failed over from ${labels[from]} to ${labels[to]}, answered ${failoverMs} ms after the request that found it failing was sent`, { source: labels[to], failoverMs })
    }
  }
}

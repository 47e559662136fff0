/**
 * Which mirror a read goes to, measured as the daemon runs: no I/O here, and a clock injected,
 * so every decision is testable without sleeps.
 *
 * Each source keeps an EWMA of its request latency (LATENCY_ALPHA per sample), an error rate (an
 * EWMA of failures over outcomes, which also decays with time, ERROR_HALF_LIFE_MS, so a source
 * that failed once is not marked down for ever while it gets no traffic), and the latencies of its
 * last successful requests, whose 95th percentile is its hedging threshold.
 *
 * - Order: healthy sources by latency; a source listed earlier in the config keeps its place
 *   unless a later one is clearly faster (TIE_RATIO and TIE_SLACK_MS), so equal mirrors do not
 *   flap and the user's first choice is the one used. A healthy source whose recent error rate is
 *   FLAKY or more (it keeps failing and recovering) goes after the others; failing sources come
 *   last, as a last resort. The error rate is not otherwise a penalty: a failure already takes a
 *   source out for its cool-down, and a source that has recovered is failed back to at once.
 * - Failover: any failure marks a source failing, for a cool-down (COOL_DOWN_MS, doubling with
 *   each failed probe up to MAX_COOL_DOWN_MS). The read itself moves on to the next source at once
 *   (the mirror backend does that).
 * - Fail-back: once its cool-down is over, a failing source is put first for one read (a probe: a
 *   real read, with a hedge to a healthy source behind it); a success makes it healthy again and
 *   it takes its place by score, a failure starts a longer cool-down.
 * - Hedging: a request still unanswered after its source's recent p95 (HEDGE_FLOOR_MS at least;
 *   HEDGE_UNMEASURED_MS before MIN_SAMPLES are in) is sent to the next source too; the first
 *   answer wins and the loser is told to `lost`. A loser that was still within its own hedge
 *   delay (a hedge that started late) counts its elapsed time as a (censored) latency sample, so
 *   a source that keeps losing drops in the order. A loser already past it had stalled: that is
 *   the slow few percent hedging is for, once; STALLS_TO_FAIL in a row with no answer between is
 *   a source that accepts requests and never answers them (a hung server, a body that stopped),
 *   and it is marked failing like one that errs, instead of waiting for a read's deadline.
 *
 * - Damaged answers: a source whose answer had a block that failed its manifest digest (the
 *   verifying layer says so through the mirror backend) is charged a failure in its error rate
 *   (`corrupt`), without a cool-down, so one that keeps sending damaged bytes soon counts as
 *   flaky; `order` puts the sources known bad for a read's bytes (`demote`) after all others.
 *
 * Latency is per request, whatever its size: the cache asks for blocks and for readahead runs of
 * up to a few MiB, so the p95 is mostly that of the larger requests, and a small one is hedged only
 * when it is slower than a large one usually is. Good enough to catch a stalled source; not a model.
 */

import type { MirrorReport } from '../storage-backend.js'

/** Weight of one new latency sample: the average follows a change within about five requests. */
const LATENCY_ALPHA = 0.2
/** A source failing this share of its recent requests flaps: the others go first while they can. */
const FLAKY = 0.5
/** Weight of one outcome in the error rate. */
const ERROR_ALPHA = 0.2
/** The error rate halves every 10 s without new outcomes. */
const ERROR_HALF_LIFE_MS = 10_000
/**
 * A later source goes first only if its latency is below the earlier one's / TIE_RATIO -
 * TIE_SLACK_MS: more than twice as fast. Mirrors of one site differ by noise (a busy host's
 * latencies vary by half between samples), and flapping between them buys nothing but cold
 * caches in front of each; another region is many times slower or faster.
 */
const TIE_RATIO = 2
/** On loopback or in one rack every source is within a few milliseconds: the config's order decides. */
const TIE_SLACK_MS = 2
/** A failing source's first cool-down; long enough not to hammer a server that is restarting. */
const COOL_DOWN_MS = 1000
/** Cool-downs double with each failed probe up to this: a dead mirror costs a request every 30 s. */
const MAX_COOL_DOWN_MS = 30_000
/** Latencies kept per source for its p95: a few seconds of a busy mount, a stable percentile. */
const SAMPLES = 100
/** Fewer samples than this give no p95 worth the name: HEDGE_UNMEASURED_MS is used instead. */
const MIN_SAMPLES = 10
/** Below this a request's time is the daemon's own scheduling more than the source's. */
const HEDGE_FLOOR_MS = 5
/** Before a source is measured: a request this slow is slow on any link that can serve a disk. */
const HEDGE_UNMEASURED_MS = 250
/**
 * Stalls in a row (requests that lose a hedge race after their own hedge delay), with no answer
 * between, that mark a healthy source failing. A healthy source has one such request in twenty at
 * most (its p95) and answers the next; three in a row costs three reads one hedge delay each, where
 * waiting for the error path would cost a read its whole deadline. Requests that were in flight
 * together count once (a stall is counted only for a request sent after the last one counted):
 * a busy moment of the daemon's own (GC, a burst of reads) holds up every request in flight at
 * once, and the 5 ms floor is reached by that alone on loopback. A stall is not a latency sample:
 * a hung source would drop behind after one and never be asked again, healthy in status for ever.
 */
const STALLS_TO_FAIL = 3

export type SourceState = MirrorReport['state']

interface Source {
  label: string
  state: SourceState
  ewmaMs: number | undefined
  errorRate: number
  /** When `errorRate` was last brought up to date. */
  errorAt: number
  samples: number[]
  next: number
  requests: number
  errors: number
  hedgesLost: number
  badBlocks: number
  /** Failed probes in a row (0 while healthy): the cool-down's exponent. */
  failedProbes: number
  /** Hedge races lost past the hedge delay since its last answer (STALLS_TO_FAIL). */
  stalls: number
  /** When the last stall was counted: requests sent before it were in flight with it. */
  stallCountedAt: number
  /** When a failing source may be probed. */
  retryAt: number
  /** A probe read is in flight: no second one until it settles. */
  probing: boolean
}

export interface SourceSelectorOptions {
  /** The sources' names for status and logs, in the config's order. */
  labels: readonly string[]
  /**
   * What each source's latency is believed to be before it answers a read (how long it took to
   * open), so a distant mirror starts behind a near one. Default: unknown.
   */
  initialLatencyMs?: ReadonlyArray<number | undefined> | undefined
  /** A monotonic clock in milliseconds. */
  now: () => number
  /** Told when a source changes state, with why (for one log line per change). */
  onChange: (source: number, state: SourceState, why: string) => void
}

export class SourceSelector {
  private readonly sources: Source[]
  private readonly now: () => number
  private readonly onChange: SourceSelectorOptions['onChange']

  constructor({ labels, initialLatencyMs = [], now, onChange }: SourceSelectorOptions) {
    this.now = now
    this.onChange = onChange
    this.sources = labels.map((label, index) => ({
      label,
      state: 'healthy',
      ewmaMs: initialLatencyMs[index],
      errorRate: 0,
      errorAt: now(),
      samples: [],
      next: 0,
      requests: 0,
      errors: 0,
      hedgesLost: 0,
      badBlocks: 0,
      failedProbes: 0,
      stalls: 0,
      stallCountedAt: -Infinity,
      retryAt: 0,
      probing: false,
    }))
  }

  /**
   * The sources to try for one read, best first, leaving out `exclude` (those already tried or in
   * flight for it). A failing source whose cool-down is over comes first, as a probe, once. The
   * sources in `demote` (those that answered some of the read's bytes damaged before) come after
   * all the others, in the same order among themselves, and are never probed.
   */
  order(exclude: ReadonlySet<number> = new Set(), demote: ReadonlySet<number> = new Set()): number[] {
    const candidates = this.sources.map((_, index) => index).filter((index) => !exclude.has(index))
    return [...this.ranked(candidates.filter((index) => !demote.has(index)), true), ...this.ranked(candidates.filter((index) => demote.has(index)), false)]
  }

  /** How long a request to `source` may go unanswered before it is hedged to the next source. */
  hedgeDelayMs(source: number): number {
    const { samples } = this.sources[source]!
    if (samples.length < MIN_SAMPLES) return HEDGE_UNMEASURED_MS
    const sorted = [...samples].sort((a, b) => a - b)
    return Math.max(HEDGE_FLOOR_MS, sorted[Math.ceil(0.95 * sorted.length) - 1]!)
  }

  /** `source` answered a request in `latencyMs`. */
  succeeded(index: number, latencyMs: number): void {
    const source = this.sources[index]!
    source.requests++
    this.outcome(source, 0)
    source.probing = false
    source.stalls = 0
    // A probe's time is not the source's usual one: its connections were closed by the failure,
    // so it pays a handshake. Its latency before the failure is the better guess until the next
    // reads measure it, and the fail-back does not hinge on one slow first request.
    if (source.state === 'healthy') {
      this.latency(source, latencyMs)
      source.samples[source.next] = latencyMs
      source.next = (source.next + 1) % SAMPLES
    } else {
      source.state = 'healthy'
      source.failedProbes = 0
      this.onChange(index, 'healthy', `answered a read in ${latencyMs.toFixed(1)} ms`)
    }
  }

  /** A request to `source` failed, `why` being the error's message. */
  failed(index: number, why: string): void {
    const source = this.sources[index]!
    source.errors++
    this.outcome(source, 1)
    const now = this.now()
    if (source.state === 'healthy') {
      source.state = 'failing'
      source.stalls = 0
      source.retryAt = now + COOL_DOWN_MS
      this.onChange(index, 'failing', why)
    } else if (source.probing) {
      source.failedProbes++
      source.retryAt = now + Math.min(MAX_COOL_DOWN_MS, COOL_DOWN_MS * 2 ** source.failedProbes)
    }
    source.probing = false
  }

  /**
   * A request to `source` was given up after `elapsedMs` because another source answered first.
   * Past the source's hedge delay that is a stall (STALLS_TO_FAIL), else a censored latency.
   */
  lost(index: number, elapsedMs: number): void {
    const source = this.sources[index]!
    source.hedgesLost++
    const hedgeDelayMs = this.hedgeDelayMs(index)
    if (source.state === 'healthy' && elapsedMs >= hedgeDelayMs) {
      const now = this.now()
      if (now - elapsedMs < source.stallCountedAt) return
      source.stallCountedAt = now
      if (++source.stalls >= STALLS_TO_FAIL) this.failed(index, `${source.stalls} requests in a row unanswered past its hedge delay of ${hedgeDelayMs.toFixed(1)} ms while other mirrors answered (stalled)`)
      return
    }
    this.latency(source, elapsedMs)
    if (source.probing) {
      // Not proof either way: probed again after another cool-down.
      source.probing = false
      source.retryAt = this.now() + COOL_DOWN_MS
    }
  }

  /**
   * `source` answered a request (counted a success when it came) with a block that failed its
   * digest: that outcome is a failure after all, so its error rate gets back the ERROR_ALPHA the
   * success took off (once per bad block, up to 1), and a source serving damaged bytes soon
   * counts as flaky and goes after the others. It is not marked failing: it answers, and its
   * other blocks may be good; the mirror backend keeps it off the bad block itself.
   */
  corrupt(index: number): void {
    const source = this.sources[index]!
    const now = this.now()
    source.badBlocks++
    source.errorRate = Math.min(1, this.errorRate(source, now) + ERROR_ALPHA)
    source.errorAt = now
  }

  /** A request to `source` was abandoned by its reader: nothing learnt, but a probe may go again. */
  abandoned(index: number): void {
    this.sources[index]!.probing = false
  }

  /** Every source's state, in the config's order. */
  report(): MirrorReport[] {
    const now = this.now()
    return this.sources.map((source) => ({
      source: source.label,
      state: source.state,
      latencyMs: source.ewmaMs ?? null,
      errorRate: this.errorRate(source, now),
      requests: source.requests,
      errors: source.errors,
      hedgesLost: source.hedgesLost,
      badBlocks: source.badBlocks,
    }))
  }

  /** `candidates` best first (see `order`), the first a probe if `probe` allows and one is due. */
  private ranked(candidates: number[], probe: boolean): number[] {
    const now = this.now()
    const due = probe
      ? candidates.find((index) => {
          const source = this.sources[index]!
          return source.state === 'failing' && !source.probing && now >= source.retryAt
        })
      : undefined
    if (due !== undefined) this.sources[due]!.probing = true
    const healthy = candidates.filter((index) => this.sources[index]!.state === 'healthy')
    const flaky = (index: number) => this.errorRate(this.sources[index]!, now) >= FLAKY
    const ranked = [...this.rank(healthy.filter((index) => !flaky(index))), ...this.rank(healthy.filter(flaky))]
    const failing = candidates
      .filter((index) => index !== due && this.sources[index]!.state === 'failing')
      .sort((a, b) => this.sources[a]!.retryAt - this.sources[b]!.retryAt)
    return [...(due === undefined ? [] : [due]), ...ranked, ...failing]
  }

  /** Sources best first: the config's order unless a later source is clearly faster. */
  private rank(indices: number[]): number[] {
    const measured = indices.map((index) => this.sources[index]!.ewmaMs).filter((ms) => ms !== undefined)
    // Unmeasured: as good as the best, so the config's order places it and a read measures it.
    const unmeasured = measured.length === 0 ? 0 : Math.min(...measured)
    const remaining = indices.map((index) => ({ index, score: this.sources[index]!.ewmaMs ?? unmeasured }))
    const ranked: number[] = []
    while (remaining.length > 0) {
      let best = 0
      for (let i = 1; i < remaining.length; i++) {
        if (remaining[i]!.score < remaining[best]!.score / TIE_RATIO - TIE_SLACK_MS) best = i
      }
      ranked.push(remaining.splice(best, 1)[0]!.index)
    }
    return ranked
  }

  private latency(source: Source, ms: number): void {
    source.ewmaMs = source.ewmaMs === undefined ? ms : source.ewmaMs + LATENCY_ALPHA * (ms - source.ewmaMs)
  }

  private outcome(source: Source, failed: 0 | 1): void {
    const now = this.now()
    source.errorRate = this.errorRate(source, now) + ERROR_ALPHA * (failed - this.errorRate(source, now))
    source.errorAt = now
  }

  private errorRate(source: Source, now: number): number {
    return source.errorRate * 2 ** (-(now - source.errorAt) / ERROR_HALF_LIFE_MS)
  }
}

/**
 * When to try a remote read again, and how long to wait first.
 *
 * Backoff is exponential with full jitter (wait a uniformly random time in [0, min(cap, base·2^n)]):
 * many readers retrying after one server hiccup spread out instead of arriving together again.
 * A `Retry-After` from the server is a floor on the wait. Every read also has a deadline: no wait
 * or attempt runs past it, and a wait that would end after it is not started at all, so a read
 * fails while the reader is still there to be told.
 */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number
  /** Milliseconds from the start of a read after which it fails, whatever attempt it is on. */
  deadlineMs: number
  /** First backoff ceiling; doubles per retry. */
  baseDelayMs: number
  /** The backoff ceiling never grows past this. */
  maxDelayMs: number
}

/** Backoff bounds for remote reads: the first retry waits up to 100 ms, none more than 2 s. */
const BASE_DELAY_MS = 100
const MAX_DELAY_MS = 2000

/** The retry policy of a remote snapshot (HTTP or S3) from its configured budget. */
export function remoteRetryPolicy(spec: { maxAttempts: number; readDeadlineMs: number }): RetryPolicy {
  return { maxAttempts: spec.maxAttempts, deadlineMs: spec.readDeadlineMs, baseDelayMs: BASE_DELAY_MS, maxDelayMs: MAX_DELAY_MS }
}

/** The wait before retry number `retry` (1 for the first retry), with full jitter. */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1))
  return Math.floor(random() * ceiling)
}

/**
 * Milliseconds a `Retry-After` header asks us to wait: delta-seconds or an HTTP date
 * (RFC 9110 §10.2.3). Unparseable or absent: 0.
 */
export function retryAfterMs(header: string | undefined, now: number): number {
  if (header === undefined) return 0
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? 0 : Math.max(0, date - now)
}

/**
 * Time as the daemon's logic sees it: a monotonic "now" and timers. Injected wherever time decides
 * something (the retry loop's deadlines and backoff, readahead's idle streams), so tests drive it
 * by hand (test/fixtures/manual-clock.ts) instead of sleeping and asserting wall-clock limits.
 * The cache and readahead take only `now`; a Clock's `now` is that same function.
 */
export interface Clock {
  /** Milliseconds, monotonic (not the time of day). */
  now(): number
  /** Calls `fn` once `ms` have passed; the function returned cancels it. */
  after(ms: number, fn: () => void): () => void
}

/** performance.now and setTimeout. */
export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms)
    return () => clearTimeout(timer)
  },
}

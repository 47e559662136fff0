import { REAL_CLOCK, type Clock } from '../../clock.js'
import type { Logger } from '../../log.js'
import { describe } from '../errors.js'
import { HttpStatusError, RetriesExhaustedError, isRetryable } from './remote-errors.js'
import { backoffDelay, type RetryPolicy } from './retry-policy.js'
import type { RemoteObserver } from './observer.js'

/** What a remote backend tells the retry loop about its own errors. */
export interface RetryHooks {
  isRetryable(err: unknown): boolean
  /** How long the server asked us to wait (Retry-After), or 0. */
  retryAfterMs(err: unknown): number
  logger: Logger
  random: () => number
  /** Told of every attempt and retry, for metrics. */
  observer?: RemoteObserver | undefined
  /** Deadlines and backoff waits; REAL_CLOCK unless a test drives time. */
  clock: Clock
}

/** The byte the next attempt starts from when it resumes a cut body (see resumed-range.ts), else undefined. */
export type ResumePoint = () => number | undefined

/**
 * Runs `attempt` until it succeeds, fails for good, runs out of attempts or reaches the policy's
 * deadline. Each attempt gets a signal that fires at the deadline, so none outlives it; a backoff
 * wait that would end past it is not started (see retry-policy.ts for the policy itself). `cancel`
 * stops everything at once: the attempt in flight is aborted and no retry follows.
 */
export async function withRetries<T>(
  what: string,
  policy: RetryPolicy,
  hooks: RetryHooks,
  attempt: (signal: AbortSignal) => Promise<T>,
  cancel?: AbortSignal,
  resumesFrom?: ResumePoint,
): Promise<T> {
  const { clock } = hooks
  const started = clock.now()
  const deadline = started + policy.deadlineMs
  for (let attempts = 1; ; attempts++) {
    cancel?.throwIfAborted()
    // A timer cancelled when the attempt settles: AbortSignal.timeout's would live on until the
    // deadline after every successful read, thousands of them at a high read rate.
    const abort = new AbortController()
    const stopTimer = clock.after(Math.max(1, deadline - clock.now()), () => abort.abort(new Error(`${what}: deadline of ${policy.deadlineMs} ms reached`)))
    const onCancel = () => abort.abort(cancel!.reason)
    cancel?.addEventListener('abort', onCancel, { once: true })
    const attemptStarted = clock.now()
    try {
      const result = await attempt(abort.signal)
      const bytes = Buffer.isBuffer(result) ? result.length : 0
      hooks.observer?.request({ durationMs: clock.now() - attemptStarted, bytes, failed: false })
      return result
    } catch (err) {
      hooks.observer?.request({ durationMs: clock.now() - attemptStarted, bytes: 0, failed: true })
      // Cancelled by the caller: nobody wants the answer any more, so no retry either.
      cancel?.throwIfAborted()
      const now = clock.now()
      const elapsed = Math.round(now - started)
      if (!hooks.isRetryable(err)) {
        // The retries before were logged; say how the sequence ended, since the error itself
        // (kept as it is: its code decides the errno) does not carry the count.
        if (attempts > 1) hooks.logger.warn(`${what}: ${describe(err)} on attempt ${attempts}; not retried`, { attempts })
        throw err
      }
      if (attempts >= policy.maxAttempts || now >= deadline) throw new RetriesExhaustedError(what, attempts, elapsed, err)
      const askedFor = hooks.retryAfterMs(err)
      const wait = Math.max(askedFor, backoffDelay(policy, attempts, hooks.random))
      if (now + wait >= deadline) {
        const cause = askedFor > 0 ? new Error(`${describe(err)}; Retry-After ${askedFor} ms is past the deadline`) : err
        throw new RetriesExhaustedError(what, attempts, elapsed, cause)
      }
      hooks.observer?.retry()
      const from = resumesFrom?.()
      const resumes = from === undefined ? '' : `, from byte ${from}`
      hooks.logger.warn(`${what}: ${describe(err)}; retry ${attempts}/${policy.maxAttempts - 1} in ${wait} ms${resumes}`)
      // This attempt is over: its deadline timer and cancel listener go before the wait.
      stopTimer()
      cancel?.removeEventListener('abort', onCancel)
      await sleep(clock, wait, cancel)
    } finally {
      stopTimer()
      cancel?.removeEventListener('abort', onCancel)
    }
  }
  /* c8 ignore next -- the loop is left only by return or throw, but V8 counts its exit as code */
}

/** Waits `ms` on `clock`; rejects with the caller's own reason as soon as `cancel` fires. */
function sleep(clock: Clock, ms: number, cancel: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onCancel = () => {
      stop()
      reject(cancel!.reason)
    }
    const stop = clock.after(ms, () => {
      cancel?.removeEventListener('abort', onCancel)
      resolve()
    })
    cancel?.addEventListener('abort', onCancel, { once: true })
  })
}

/** What a remote backend (HTTP, S3) is given for its retries; part of both backends' options. */
export interface RemoteRetryOptions {
  retry: RetryPolicy
  logger: Logger
  /** Told of every request attempt and retry, for metrics. */
  observer?: RemoteObserver | undefined
  /** Injected for tests; Math.random otherwise. */
  random?: () => number
  /** Injected for tests; REAL_CLOCK otherwise. */
  clock?: Clock
}

/** Runs one request with retries: `withRetries` less the policy and hooks a remote backend fixes once. */
export type Retrying = <T>(what: string, attempt: (signal: AbortSignal) => Promise<T>, cancel?: AbortSignal, resumesFrom?: ResumePoint) => Promise<T>

/**
 * The retry loop as HTTP and S3 snapshots run it: remote errors decide whether another attempt
 * could succeed (`isRetryable`), and a status error's Retry-After is the least wait.
 */
export function remoteRetrying({ retry, logger, observer, random = Math.random, clock = REAL_CLOCK }: RemoteRetryOptions): Retrying {
  const hooks: RetryHooks = {
    isRetryable,
    retryAfterMs: (err) => (err instanceof HttpStatusError ? err.retryAfterMs : 0),
    logger,
    random,
    observer,
    clock,
  }
  return (what, attempt, cancel, resumesFrom) => withRetries(what, retry, hooks, attempt, cancel, resumesFrom)
}

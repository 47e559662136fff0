import { setTimeout as sleep } from 'node:timers/promises'
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
}

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
): Promise<T> {
  const started = Date.now()
  const deadline = started + policy.deadlineMs
  for (let attempts = 1; ; attempts++) {
    cancel?.throwIfAborted()
    // A timer cleared when the attempt settles: AbortSignal.timeout's would live on until the
    // deadline after every successful read, thousands of them at a high read rate.
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(new Error(`${what}: deadline of ${policy.deadlineMs} ms reached`)), Math.max(1, deadline - Date.now()))
    const onCancel = () => abort.abort(cancel!.reason)
    cancel?.addEventListener('abort', onCancel, { once: true })
    const attemptStarted = performance.now()
    try {
      const result = await attempt(abort.signal)
      const bytes = Buffer.isBuffer(result) ? result.length : 0
      hooks.observer?.request({ durationMs: performance.now() - attemptStarted, bytes, failed: false })
      return result
    } catch (err) {
      hooks.observer?.request({ durationMs: performance.now() - attemptStarted, bytes: 0, failed: true })
      // Cancelled by the caller: nobody wants the answer any more, so no retry either.
      cancel?.throwIfAborted()
      const now = Date.now()
      const elapsed = now - started
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
      hooks.logger.warn(`${what}: ${describe(err)}; retry ${attempts}/${policy.maxAttempts - 1} in ${wait} ms`)
      cancel?.removeEventListener('abort', onCancel)
      // sleep rejects only when cancelled; the caller wants its own reason back.
      await sleep(wait, undefined, cancel && { signal: cancel }).catch(() => cancel!.throwIfAborted())
    } finally {
      clearTimeout(timer)
      cancel?.removeEventListener('abort', onCancel)
    }
  }
  /* c8 ignore next -- the loop is left only by return or throw, but V8 counts its exit as code */
}

/** What a remote backend (HTTP, S3) is given for its retries; part of both backends' options. */
export interface RemoteRetryOptions {
  retry: RetryPolicy
  logger: Logger
  /** Told of every request attempt and retry, for metrics. */
  observer?: RemoteObserver | undefined
  /** Injected for tests; Math.random otherwise. */
  random?: () => number
}

/** Runs one request with retries: `withRetries` less the policy and hooks a remote backend fixes once. */
export type Retrying = <T>(what: string, attempt: (signal: AbortSignal) => Promise<T>, cancel?: AbortSignal) => Promise<T>

/**
 * The retry loop as HTTP and S3 snapshots run it: remote errors decide whether another attempt
 * could succeed (`isRetryable`), and a status error's Retry-After is the least wait.
 */
export function remoteRetrying({ retry, logger, observer, random = Math.random }: RemoteRetryOptions): Retrying {
  const hooks: RetryHooks = {
    isRetryable,
    retryAfterMs: (err) => (err instanceof HttpStatusError ? err.retryAfterMs : 0),
    logger,
    random,
    observer,
  }
  return (what, attempt, cancel) => withRetries(what, retry, hooks, attempt, cancel)
}

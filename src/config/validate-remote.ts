import type { RetryBudget } from './config.js'
import { wholeNumber, type Fail } from './fields.js'

/** The fields of the retry budget, in every remote type's list of known fields. */
export const RETRY_BUDGET_FIELDS = ['max_attempts', 'read_deadline_ms'] as const

/**
 * A read's default deadline, as a share of `read_timeout_ms`: the last fifth is the margin in which
 * the backend's own failure reaches the FUSE layer before that layer's timeout.
 */
const DEFAULT_DEADLINE_SHARE = 0.8

/**
 * The retry budget of a remote snapshot (http, s3): attempts per read, and one read's deadline,
 * retries included. The deadline must end before `read_timeout_ms`, when the FUSE layer gives up
 * on the read: a backend still retrying then is cut off by a bare timeout, and the log line says
 * only that, where a backend that gave up first says what failed and after how many attempts.
 */
export function validateRetryBudget(entry: Record<string, unknown>, field: string, readTimeoutMs: number, fail: Fail): RetryBudget {
  return {
    maxAttempts: wholeNumber(entry.max_attempts, { min: 1, max: 20, fallback: 5 }, `${field}.max_attempts`, fail),
    readDeadlineMs: wholeNumber(
      entry.read_deadline_ms,
      { min: 10, max: readTimeoutMs - 1, fallback: Math.floor(readTimeoutMs * DEFAULT_DEADLINE_SHARE) },
      `${field}.read_deadline_ms`,
      fail,
    ),
  }
}

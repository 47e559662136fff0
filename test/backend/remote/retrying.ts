import t from 'tap'
import { withRetries, type RetryHooks } from '../../../src/backend/remote/retrying.js'
import type { RetryPolicy } from '../../../src/backend/remote/retry-policy.js'
import { ManualClock } from '../../fixtures/manual-clock.js'

/**
 * The retry loop on a hand-driven clock: deadlines and backoff waits are asserted to the
 * millisecond, and no test sleeps.
 */
const POLICY: RetryPolicy = { maxAttempts: 5, deadlineMs: 5000, baseDelayMs: 1000, maxDelayMs: 1000 }

function hooks(events: string[], clock = new ManualClock()): RetryHooks & { clock: ManualClock; warned: () => Promise<void> } {
  let wake: (() => void) | undefined
  return {
    isRetryable: () => true,
    retryAfterMs: () => 0,
    logger: {
      info() {},
      warn: (message) => {
        events.push(`warn ${message}`)
        wake?.()
      },
      error() {},
    },
    random: () => 1,
    observer: { request: ({ failed }) => events.push(failed ? 'failed attempt' : 'attempt'), retry: () => events.push('retry') },
    clock,
    /** Resolves at the next warning: a retry's, logged as its backoff wait starts. */
    warned: () => new Promise<void>((resolve) => (wake = resolve)),
  }
}

/** An attempt that never settles on its own: only its signal ends it. */
function hanging(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
}

t.test('cancelled during an attempt: the attempt is aborted, no retry follows, the caller gets its reason', async (t) => {
  const events: string[] = []
  const cancel = new AbortController()
  let attempts = 0
  const read = withRetries('GET x', POLICY, hooks(events), (signal) => {
    attempts++
    return hanging(signal)
  }, cancel.signal)
  cancel.abort(new Error('read deadline'))
  await t.rejects(read, /read deadline/)
  t.equal(attempts, 1)
  t.same(events, ['failed attempt'])
})

t.test('cancelled while waiting to retry: the wait ends at once with the caller\'s reason', async (t) => {
  const events: string[] = []
  const cancel = new AbortController()
  const h = hooks(events)
  const waiting = h.warned()
  const read = withRetries('GET x', POLICY, h, async () => {
    throw new Error('reset')
  }, cancel.signal)
  await waiting
  t.same(h.clock.pending, [1000], 'a backoff of 1 s is waited for (the attempt\'s deadline timer is gone)')
  cancel.abort(new Error('gave up'))
  await t.rejects(read, /gave up/)
  t.equal(h.clock.now(), 0, 'with no time passed')
  t.same(h.clock.pending, [], 'and no timer left behind')
  t.same(events, ['failed attempt', 'retry', 'warn GET x: reset; retry 1/4 in 1000 ms'])
})

t.test('cancelled before it starts: no attempt at all', async (t) => {
  let attempts = 0
  await t.rejects(withRetries('GET x', POLICY, hooks([]), async () => attempts++, AbortSignal.abort(new Error('too late'))), /too late/)
  t.equal(attempts, 0)
})

t.test('the backoff is waited to the millisecond, then the next attempt goes', async (t) => {
  const events: string[] = []
  const h = hooks(events)
  let attempts = 0
  const read = withRetries('GET x', POLICY, h, async () => {
    if (++attempts < 3) throw new Error('503')
    return Buffer.alloc(7)
  }, new AbortController().signal)
  await h.clock.advance(999)
  t.equal(attempts, 1, 'not before the 1 s backoff (full jitter, random() = 1)')
  await h.clock.advance(1)
  t.equal(attempts, 2, 'at it')
  await h.clock.advance(1000)
  t.equal((await read).length, 7)
  t.equal(attempts, 3)
  t.same(events.filter((event) => !event.startsWith('warn')), ['failed attempt', 'retry', 'failed attempt', 'retry', 'attempt'], 'each attempt observed')
})

t.test('the deadline aborts the attempt in flight at exactly deadlineMs', async (t) => {
  const h = hooks([])
  let aborted = -1
  const read = withRetries('GET x', POLICY, h, (signal) => {
    signal.addEventListener('abort', () => (aborted = h.clock.now()))
    return hanging(signal)
  })
  const failed = t.rejects(read, { code: 'E_RETRIES_EXHAUSTED', attempts: 1, message: /deadline of 5000 ms reached/ })
  await h.clock.advance(4999)
  t.equal(aborted, -1, 'not a millisecond early')
  await h.clock.advance(1)
  await failed
  t.equal(aborted, 5000)
})

t.test('a backoff that would end past the deadline is not started', async (t) => {
  const events: string[] = []
  const h = hooks(events)
  let attempts = 0
  const read = withRetries('GET x', { ...POLICY, deadlineMs: 2500 }, h, async () => {
    attempts++
    throw new Error('503')
  })
  const failed = t.rejects(read, { code: 'E_RETRIES_EXHAUSTED', attempts: 3 })
  await h.clock.advance(2000)
  await failed
  t.equal(attempts, 3, 'attempts at 0, 1000 and 2000 ms; the wait to 3000 ms would pass 2500')
  t.equal(events.filter((event) => event === 'retry').length, 2)
})

t.test('an error that may not be retried, after retries: thrown as it is, the count logged', async (t) => {
  const events: string[] = []
  const fast = { ...POLICY, baseDelayMs: 1, maxDelayMs: 1 }
  const changed = Object.assign(new Error('412: the object changed'), { final: true })
  let attempts = 0
  const h = hooks(events)
  const read = withRetries('GET x', fast, { ...h, isRetryable: (err) => !(err as { final?: boolean }).final }, async () => {
    throw ++attempts < 2 ? new Error('503') : changed
  })
  const failed = t.rejects(read, changed, 'the same error, not a wrapper')
  await h.clock.advance(1)
  await failed
  t.same(events, ['failed attempt', 'retry', 'warn GET x: 503; retry 1/4 in 1 ms', 'failed attempt', 'warn GET x: 412: the object changed on attempt 2; not retried'])
  events.length = 0
  await t.rejects(withRetries('GET x', fast, { ...hooks(events), isRetryable: () => false }, async () => { throw changed }), changed)
  t.same(events, ['failed attempt'], 'a first attempt that may not be retried logs nothing here')
})

import t from 'tap'
import { withRetries, type RetryHooks } from '../../../src/backend/remote/retrying.js'
import type { RetryPolicy } from '../../../src/backend/remote/retry-policy.js'

const POLICY: RetryPolicy = { maxAttempts: 5, deadlineMs: 5000, baseDelayMs: 1000, maxDelayMs: 1000 }

function hooks(events: string[]): RetryHooks {
  return {
    isRetryable: () => true,
    retryAfterMs: () => 0,
    logger: { info() {}, warn: (message) => events.push(`warn ${message}`), error() {} },
    random: () => 1,
    observer: { request: ({ failed }) => events.push(failed ? 'failed attempt' : 'attempt'), retry: () => events.push('retry') },
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
  setTimeout(() => cancel.abort(new Error('read deadline')), 20)
  await t.rejects(read, /read deadline/)
  t.equal(attempts, 1)
  t.same(events, ['failed attempt'])
})

t.test('cancelled while waiting to retry: the wait ends at once with the caller\'s reason', async (t) => {
  const events: string[] = []
  const cancel = new AbortController()
  const started = Date.now()
  const read = withRetries('GET x', POLICY, hooks(events), async () => {
    setTimeout(() => cancel.abort(new Error('gave up')), 20)
    throw new Error('reset')
  }, cancel.signal)
  await t.rejects(read, /gave up/)
  t.ok(Date.now() - started < 900, 'the 1 s backoff was cut short')
  t.same(events, ['failed attempt', 'retry', 'warn GET x: reset; retry 1/4 in 1000 ms'])
})

t.test('cancelled before it starts: no attempt at all', async (t) => {
  let attempts = 0
  await t.rejects(withRetries('GET x', POLICY, hooks([]), async () => attempts++, AbortSignal.abort(new Error('too late'))), /too late/)
  t.equal(attempts, 0)
})

t.test('without a cancel signal: retries until it works, each attempt observed', async (t) => {
  const events: string[] = []
  let attempts = 0
  const fast = { ...POLICY, baseDelayMs: 1, maxDelayMs: 1 }
  const result = await withRetries('GET x', fast, hooks(events), async () => {
    if (++attempts < 3) throw new Error('503')
    return Buffer.alloc(7)
  })
  t.equal(result.length, 7)
  t.same(events.filter((event) => !event.startsWith('warn')), ['failed attempt', 'retry', 'failed attempt', 'retry', 'attempt'])
})

t.test('an error that may not be retried, after retries: thrown as it is, the count logged', async (t) => {
  const events: string[] = []
  const fast = { ...POLICY, baseDelayMs: 1, maxDelayMs: 1 }
  const changed = Object.assign(new Error('412: the object changed'), { final: true })
  let attempts = 0
  const read = withRetries('GET x', fast, { ...hooks(events), isRetryable: (err) => !(err as { final?: boolean }).final }, async () => {
    throw ++attempts < 2 ? new Error('503') : changed
  })
  await t.rejects(read, changed, 'the same error, not a wrapper')
  t.same(events, ['failed attempt', 'retry', 'warn GET x: 503; retry 1/4 in 1 ms', 'failed attempt', 'warn GET x: 412: the object changed on attempt 2; not retried'])
  events.length = 0
  await t.rejects(withRetries('GET x', fast, { ...hooks(events), isRetryable: () => false }, async () => { throw changed }), changed)
  t.same(events, ['failed attempt'], 'a first attempt that may not be retried logs nothing here')
})

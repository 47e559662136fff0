import t from 'tap'
import { backoffDelay, retryAfterMs } from '../../../src/backend/remote/retry-policy.js'

const policy = { maxAttempts: 5, deadlineMs: 8000, baseDelayMs: 100, maxDelayMs: 2000 }

t.test('full jitter: a random wait up to a doubling ceiling, capped', async (t) => {
  t.equal(backoffDelay(policy, 1, () => 0), 0, 'the floor is 0')
  t.equal(backoffDelay(policy, 1, () => 0.999), 99, 'first retry: below 100 ms')
  t.equal(backoffDelay(policy, 2, () => 0.5), 100, 'second: half of 200 ms')
  t.equal(backoffDelay(policy, 4, () => 0.5), 400, 'fourth: half of 800 ms')
  t.equal(backoffDelay(policy, 10, () => 0.999), 1998, 'never past the cap')
})

t.test('Retry-After: seconds or an HTTP date', async (t) => {
  const now = Date.parse('2026-11-25T12:00:00Z')
  t.equal(retryAfterMs(undefined, now), 0)
  t.equal(retryAfterMs('3', now), 3000)
  t.equal(retryAfterMs(' 0 ', now), 0)
  t.equal(retryAfterMs('Wed, 25 Nov 2026 12:00:05 GMT', now), 5000)
  t.equal(retryAfterMs('Wed, 25 Nov 2026 11:00:00 GMT', now), 0, 'a date in the past: no wait')
  t.equal(retryAfterMs('soon', now), 0, 'unparseable: no wait')
  t.equal(retryAfterMs('-1', now), 0, 'negative: no wait')
})

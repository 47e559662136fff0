import t from 'tap'
import { SourceSelector } from '../../../src/backend/mirrors/source-selector.js'

// The mirror selector with a hand-driven clock: every decision is deterministic.

function selector(count = 3, initialLatencyMs?: Array<number | undefined>) {
  let clock = 1000
  const changes: string[] = []
  const s = new SourceSelector({
    labels: Array.from({ length: count }, (_, i) => `m${i}`),
    initialLatencyMs,
    now: () => clock,
    onChange: (source, state, why) => changes.push(`m${source} ${state}: ${why}`),
  })
  return { s, changes, advance: (ms: number) => (clock += ms) }
}

t.test('equal sources keep the config order; a clearly faster one goes first (EWMA)', async (t) => {
  const { s } = selector()
  t.same(s.order(), [0, 1, 2], 'unmeasured: the config order')
  for (let i = 0; i < 5; i++) {
    s.succeeded(0, 10)
    s.succeeded(1, 10.5)
    s.succeeded(2, 9.5)
  }
  t.same(s.order(), [0, 1, 2], 'within the tie margin the config order holds (no flapping)')
  for (let i = 0; i < 20; i++) s.succeeded(2, 2)
  t.same(s.order(), [2, 0, 1], 'm2 became clearly faster: first')
  t.ok(s.report()[2]!.latencyMs! < 3, 'its EWMA followed it down')
  const before = s.report()[2]!.latencyMs!
  s.succeeded(2, before + 50)
  t.equal(s.report()[2]!.latencyMs!.toFixed(6), (before + 10).toFixed(6), 'the EWMA moves by a fifth of the difference per sample')
  t.same(s.order(new Set([2])), [0, 1], 'excluded sources are left out')
})

t.test('the latency an open took is the first guess: a distant mirror starts behind', async (t) => {
  const { s } = selector(3, [40, 2, undefined])
  t.same(s.order(), [1, 2, 0], 'm1 (2 ms) before m0 (40 ms); unmeasured m2 counts as the best until it is measured')
  t.same(s.report().map((r) => r.latencyMs), [40, 2, null])
})

t.test('a failure fails over: the source goes last until its cool-down ends, then is probed once', async (t) => {
  const { s, changes, advance } = selector()
  for (let i = 0; i < 10; i++) [0, 1, 2].forEach((m) => s.succeeded(m, 1))
  s.failed(0, 'ECONNREFUSED')
  t.same(changes, ['m0 failing: ECONNREFUSED'], 'one line per change of state')
  t.same(s.order(), [1, 2, 0], 'failing: last, a last resort')
  s.failed(0, 'ECONNREFUSED again')
  t.equal(changes.length, 1, 'more failures while failing: no new line')
  advance(999)
  t.same(s.order(), [1, 2, 0], 'still cooling down')
  advance(1)
  t.same(s.order(), [0, 1, 2], 'cool-down over: first, as a probe')
  t.same(s.order(), [1, 2, 0], 'one probe at a time')
  s.failed(0, 'still refused')
  advance(1000)
  t.same(s.order(), [1, 2, 0], 'a failed probe doubles the cool-down (2 s)')
  advance(1000)
  t.same(s.order(), [0, 1, 2], 'probed again after 2 s')
  s.failed(0, 'refused')
  advance(3999)
  t.same(s.order()[0], 1, 'then 4 s')
  advance(1)
  t.same(s.order()[0], 0)
  t.match(s.report()[0], { state: 'failing', errors: 4, requests: 10 })
})

t.test('fail-back: a probe that succeeds makes the source healthy and first again', async (t) => {
  const { s, changes, advance } = selector()
  for (let i = 0; i < 10; i++) [0, 1, 2].forEach((m) => s.succeeded(m, 1))
  s.failed(0, 'HTTP 500')
  advance(1000)
  t.same(s.order()[0], 0, 'probe')
  s.succeeded(0, 40)
  t.same(changes, ['m0 failing: HTTP 500', 'm0 healthy: answered a read in 40.0 ms'])
  t.equal(s.report()[0]!.latencyMs, 1, "the probe's time (a new connection's) is not taken for its latency")
  t.same(s.order(), [0, 1, 2], 'back in first place at once: its latency is within the tie margin, and one failure is no flapping')
  t.match(s.report()[0], { state: 'healthy', errors: 1, requests: 11 })
  t.ok(s.report()[0]!.errorRate > 0 && s.report()[0]!.errorRate < 0.2, 'the error rate remembers the failure')
  advance(10_000)
  const halved = s.report()[0]!.errorRate
  advance(10_000)
  t.equal(s.report()[0]!.errorRate.toFixed(6), (halved / 2).toFixed(6), 'and forgets it with a 10 s half-life')
})

t.test('a slow source that recovers to a worse latency fails back only when it is clearly better', async (t) => {
  const { s, advance } = selector(2)
  for (let i = 0; i < 10; i++) {
    s.succeeded(0, 20)
    s.succeeded(1, 2)
  }
  t.same(s.order(), [1, 0], 'm1 is clearly faster')
  s.failed(1, 'reset')
  t.same(s.order(), [0, 1])
  advance(1000)
  t.same(s.order()[0], 1, 'probe')
  s.succeeded(1, 2)
  t.same(s.order(), [1, 0], 'failed back: still clearly faster, error rate and all')
})

t.test('a source that keeps failing and recovering (flaky) goes after the others while it does', async (t) => {
  const { s, advance } = selector(2)
  for (let i = 0; i < 10; i++) [0, 1].forEach((m) => s.succeeded(m, 1))
  for (let i = 0; i < 3; i++) {
    // The requests in flight when it fails fail together.
    for (let j = 0; j < 3; j++) s.failed(0, 'HTTP 503')
    advance(1000)
    t.same(s.order()[0], 0, 'probe')
    s.succeeded(0, 1)
  }
  t.ok(s.report()[0]!.errorRate >= 0.5, `error rate ${s.report()[0]!.errorRate.toFixed(2)}`)
  t.same(s.order(), [1, 0], 'healthy, but flaky: second')
  advance(20_000)
  t.same(s.order(), [0, 1], 'its error rate decays: first again')
})

t.test('a probe abandoned by its reader: the next read probes again', async (t) => {
  const { s, advance } = selector(2)
  s.failed(0, 'timeout')
  advance(1000)
  t.same(s.order()[0], 0, 'probe')
  t.same(s.order()[0], 1, 'one at a time')
  s.abandoned(0)
  t.same(s.order()[0], 0, 'probed again at once')
  s.abandoned(1)
  t.match(s.report()[1], { state: 'healthy', errors: 0, hedgesLost: 0 }, 'abandoning a healthy source says nothing of it')
})

t.test('a probe that loses a hedge is probed again after another cool-down', async (t) => {
  const { s, advance } = selector(2)
  s.failed(0, 'timeout')
  advance(1000)
  t.same(s.order()[0], 0)
  s.lost(0, 300)
  t.same(s.order(), [1, 0], 'not proof either way: wait')
  t.match(s.report()[0], { state: 'failing', hedgesLost: 1, latencyMs: 300 })
  advance(1000)
  t.same(s.order()[0], 0, 'probed again')
})

t.test('hedging threshold: the p95 of the recent successes, with a floor; a default before ten', async (t) => {
  const { s } = selector(2)
  t.equal(s.hedgeDelayMs(0), 250, 'unmeasured: 250 ms')
  for (let i = 0; i < 9; i++) s.succeeded(0, 40)
  t.equal(s.hedgeDelayMs(0), 250, 'nine samples are not enough')
  s.succeeded(0, 40)
  t.equal(s.hedgeDelayMs(0), 40, 'ten are')
  for (let i = 1; i <= 100; i++) s.succeeded(0, i)
  t.equal(s.hedgeDelayMs(0), 95, 'the p95 of the last 100')
  for (let i = 0; i < 100; i++) s.succeeded(1, 0.5)
  t.equal(s.hedgeDelayMs(1), 5, 'never below 5 ms')
  s.lost(0, 90)
  t.equal(s.hedgeDelayMs(0), 95, 'a lost (censored) time is not a p95 sample')
  t.ok(s.report()[0]!.latencyMs! > 90, 'but it counts in the EWMA, so a source that keeps losing drops')
})

t.test('a hedge that loses within its own hedge delay (it started late): a censored latency sample, never a stall', async (t) => {
  const { s, changes } = selector(2)
  for (let i = 0; i < 10; i++) {
    s.succeeded(0, 5)
    s.succeeded(1, 40)
  }
  for (let i = 0; i < 10; i++) s.lost(1, 39)
  t.match(s.report()[1], { state: 'healthy', hedgesLost: 10, errors: 0 })
  t.ok(s.report()[1]!.latencyMs! < 40, 'the EWMA follows the censored times')
  t.same(changes, [], 'never a stall')
  t.same(s.order(), [0, 1])
})

t.test('a source that stalls (loses hedges past its own hedge delay) three times in a row is marked failing', async (t) => {
  const { s, changes, advance } = selector(2)
  for (let i = 0; i < 10; i++) {
    s.succeeded(0, 5)
    s.succeeded(1, 5)
  }
  /** One request to m0, sent now, lost after 30 ms: a stall. */
  const stall = () => {
    advance(30)
    s.lost(0, 30)
  }
  stall()
  stall()
  t.same(s.order(), [0, 1], 'two stalls: still first (a stall is not a latency sample), each read hedged')
  t.match(s.report()[0], { state: 'healthy', latencyMs: 5, hedgesLost: 2, errors: 0 })
  s.succeeded(0, 5)
  stall()
  stall()
  t.same(changes, [], 'an answer between starts the count again')
  stall()
  t.same(changes, ['m0 failing: 3 requests in a row unanswered past its hedge delay of 5.0 ms while other mirrors answered (stalled)'])
  t.same(s.order(), [1, 0], 'failing: last')
  t.match(s.report()[0], { state: 'failing', errors: 1, hedgesLost: 5 })
  advance(1000)
  t.same(s.order()[0], 0, 'probed after the cool-down like any failing source')
  s.lost(0, 30)
  t.same(s.order(), [1, 0], 'a probe that loses: probed again after another cool-down')
  advance(1000)
  t.same(s.order()[0], 0)
  s.succeeded(0, 6)
  t.same(changes.at(-1), 'm0 healthy: answered a read in 6.0 ms')
  t.same(s.order(), [0, 1], 'and first again, its latency that of before the stall')
})

t.test('requests that stalled together (in flight at once) count as one stall', async (t) => {
  const { s, changes, advance } = selector(2)
  for (let i = 0; i < 10; i++) s.succeeded(0, 5)
  // A busy moment: five requests sent within 10 ms, all lost at 40 ms.
  advance(40)
  for (const elapsed of [40, 38, 35, 32, 30]) s.lost(0, elapsed)
  t.same(changes, [], 'one stall, not five')
  advance(1)
  s.lost(0, 35)
  t.same(changes, [], 'one sent before the first was counted (35 ms ago) is of the same moment')
  advance(20)
  s.lost(0, 20)
  advance(20)
  s.lost(0, 20)
  t.match(changes, [/^m0 failing: 3 requests in a row/], 'two more, each sent after the last counted: three')
})

t.test('a damaged answer (corrupt): counted against the source, which stays healthy but goes after the others', async (t) => {
  const { s, changes } = selector()
  s.succeeded(0, 10)
  s.corrupt(0)
  t.match(s.report()[0], { state: 'healthy', requests: 1, errors: 0, badBlocks: 1 })
  t.equal(s.report()[0]!.errorRate.toFixed(6), '0.200000', 'the success it was counted as became a failure')
  for (let i = 0; i < 3; i++) {
    s.succeeded(0, 10)
    s.corrupt(0)
  }
  t.ok(s.report()[0]!.errorRate >= 0.5, `flaky after four damaged answers (${s.report()[0]!.errorRate.toFixed(2)})`)
  t.same(s.order(), [1, 2, 0], 'so it goes after the others')
  for (let i = 0; i < 10; i++) s.corrupt(0)
  t.equal(s.report()[0]!.errorRate, 1, 'the rate is at most 1')
  t.same(changes, [], 'no state change: it answers')
})

t.test('demoted sources (bad for a read\'s bytes) come after all others and are never probed', async (t) => {
  const { s, advance } = selector()
  s.failed(1, 'reset')
  advance(1000)
  t.same(s.order(new Set(), new Set([1])), [0, 2, 1], 'm1 is due a probe, but demoted: last, not probed')
  t.same(s.order(new Set(), new Set([0, 2])), [1, 0, 2], 'now it is probed; the demoted keep their order after it')
  t.same(s.order(new Set([0]), new Set([2])), [1, 2], 'excluded still left out; even a failing source goes before a demoted one')
})

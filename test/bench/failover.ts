// The failover part's pure pieces: a run's row from the reader's reads and the daemon's log, the
// table, and issue 21's failover targets at their edges.
import t from 'tap'
import { FAILOVER_LIMIT_MS, FAILOVER_P99_LIMIT, bootReport, bootRow, failoverAfter, failoverLine, pooledLatency, failoverReport, failoverRow, failoverSection, failoverTargets, type CheckedRead, type FailoverResults } from '../../bench/lib/failover-report.mjs'

const T0 = Date.parse('2026-12-02T11:00:00.000Z')

/** Sequential reads of `ms` each from T0, one every 10 ms, and random reads of `randomMs`. */
function reads(count: number, ms: number, randomMs: number): CheckedRead[] {
  return Array.from({ length: count }, (_, i): CheckedRead[] => [['s', T0 + 10 * i, ms, 0, null], ['r', T0 + 10 * i, randomMs, 0, null]]).flat()
}

const logLine = (at: number, msg: string, fields: object = {}) => JSON.stringify({ time: new Date(at).toISOString(), level: 'info', msg, ...fields })

t.test("a run's row: counts, the full read's time, percentiles per kind", async (t) => {
  const row = failoverRow('undisturbed', [...reads(100, 2, 20), ['r', T0 + 5, 300, 0, 'Error: EIO'], ['s', T0 + 6, 4, 7, null]])
  t.match(row, { run: 'undisturbed', reads: 202, errors: 1, firstError: 'Error: EIO', wrongBytes: 7, randomP50Ms: 20, randomP99Ms: 20, seqP50Ms: 2, seqP99Ms: 2, maxMs: 300 })
  t.equal(row.seqSeconds, 0.992, 'from the first sequential read to the end of the last')
  t.notOk('failoverMs' in row, 'no stop, no failover numbers')
  t.equal(failoverRow('empty', []).seqSeconds, 0)
})

t.test("a run with a stop: the failover from the daemon's first 'failed over' line after it", async (t) => {
  const stoppedAt = T0 + 500
  const log = [
    'snapmount: not json',
    logLine(T0 + 100, 'snapshot img: reads failed over from http://a to http://b, answered 3 ms after it failed', { failoverMs: 3 }),
    logLine(T0 + 520, 'snapshot img: mirror http://a is failing (reset)'),
    logLine(T0 + 580, 'snapshot img: reads failed over from http://a to http://b, answered 60 ms after it failed', { failoverMs: 60 }),
    logLine(T0 + 900, 'snapshot img: reads failed over from http://c to http://b, answered 1 ms after it failed', { failoverMs: 1 }),
  ].join('\n')
  t.same(failoverLine(log, stoppedAt), { at: T0 + 580, failoverMs: 60 }, 'a failover before the stop is not this one')
  t.equal(failoverLine(log, T0 + 1000), undefined)
  t.same(failoverLine(log, stoppedAt, 'http://c'), { at: T0 + 900, failoverMs: 1 }, "from: only that mirror's failover")
  t.equal(failoverLine(log, stoppedAt, 'http://b'), undefined)
  t.match(failoverRow('mirror 0 stopped', reads(10, 2, 20), { stoppedAt, log, from: 'http://c' }), { failoverMs: 1 })
  const slow: CheckedRead = ['r', T0 + 490, 150, 0, null]
  const row = failoverRow('mirror 0 stopped', [...reads(100, 2, 20), slow], { stoppedAt, log })
  t.match(row, { failoverMs: 60, stopToAnswerMs: 80, requestToAnswerMs: 60, stoppedAfterSeconds: 0.5, longestAfterStopMs: 150 })
  t.same(failoverAfter(log, T0 + 550), { failoverMs: 30, stopToAnswerMs: 30, requestToAnswerMs: 60 }, 'the smaller: a read in flight at the stop was sent before it')
  t.same(failoverAfter(logLine(T0 + 600, 'snapshot img: reads failed over from http://a to http://b'), T0 + 500), { failoverMs: 100, stopToAnswerMs: 100, requestToAnswerMs: undefined })
  t.equal(failoverRow('x', reads(10, 2, 20), { stoppedAt }).failoverMs, undefined, 'no line: not measured')
})

const pooled = (calmP99: number, stoppedP99: number): FailoverResults['pooled'] => ({
  undisturbed: { reads: 3000, randomP99Ms: calmP99, seqP99Ms: calmP99 / 2 },
  stopped: { reads: 3000, randomP99Ms: stoppedP99, seqP99Ms: stoppedP99 / 2 },
})
const results = (rows: FailoverResults['rows'], p99s = pooled(20, 30)): FailoverResults => ({ rttMs: 10, imageBytes: 2 ** 30, mirrors: 3, randomReaders: 2, rows, pooled: p99s })
const calm = (p99: number) => ({ ...failoverRow('undisturbed', reads(100, p99 / 2, p99)), randomP99Ms: p99, seqP99Ms: p99 / 2 })
const stopped = (p99: number, failoverMs: number | undefined, extra = {}) => ({
  ...failoverRow('mirror 0 stopped', reads(100, p99 / 2, p99), { stoppedAt: T0 + 300 }),
  randomP99Ms: p99,
  seqP99Ms: p99 / 2,
  failoverMs,
  stopToAnswerMs: failoverMs,
  requestToAnswerMs: failoverMs === undefined ? undefined : failoverMs / 2,
  ...extra,
})

t.test('pooled latency: the p99 of every read of a kind, whatever the run', async (t) => {
  const many = [...reads(50, 1, 10), ...reads(50, 3, 30)]
  t.same(pooledLatency(many), { reads: 200, randomP99Ms: 30, seqP99Ms: 3 })
  t.same(pooledLatency([]), { reads: 0, randomP99Ms: undefined, seqP99Ms: undefined })
})

t.test('failover targets: per stopped run, and the pooled p99s against the undisturbed runs pooled, at their edges', async (t) => {
  const atEdges = failoverTargets(results([calm(10), stopped(40, FAILOVER_LIMIT_MS - 0.1), stopped(40, 5)], pooled(20, FAILOVER_P99_LIMIT * 20)))
  t.same(atEdges.map((target) => [target.target, target.pass]), [
    ['mirror 0 stopped: 0 read errors', true],
    ['mirror 0 stopped: 0 wrong bytes', true],
    ['mirror 0 stopped: failover < 1000 ms', true],
    ['mirror 0 stopped: 0 read errors', true],
    ['mirror 0 stopped: 0 wrong bytes', true],
    ['mirror 0 stopped: failover < 1000 ms', true],
    ['mirror 0 stopped: random 128 KiB p99 <= 2x undisturbed (runs pooled)', true],
    ['mirror 0 stopped: sequential 1 MiB p99 <= 2x undisturbed (runs pooled)', true],
  ], 'each stopped run judged on its own, the p99s once; exactly twice passes')
  t.equal(atEdges[2]!.detail, '999.9 ms from the stop, 499.9 ms from the request that found it failing')
  t.equal(atEdges[6]!.detail, '40.0 vs 2 x 20.0 ms')
  const over = failoverTargets(results([calm(20), stopped(20, FAILOVER_LIMIT_MS, { errors: 1, firstError: 'Error: EIO', wrongBytes: 5 })], pooled(20, FAILOVER_P99_LIMIT * 20 + 0.1)))
  t.same(over.map((target) => target.pass), [false, false, false, false, false], 'an error, a byte, the limit itself, a twentieth of a ms over fail')
  t.equal(over[0]!.detail, 'Error: EIO')
  const unmeasured = failoverTargets(results([calm(20), stopped(20, undefined)]))
  t.match(unmeasured[2], { pass: false, detail: 'the daemon logged no failover after the stop' })
  t.same(failoverTargets(undefined).map((target) => [target.pass, target.detail]), [[undefined, 'part failover not run']])
})

t.test('the failover table: a row per run, the stop columns only where there was one', async (t) => {
  const r = results([calm(20), stopped(30, 120)])
  const lines = failoverReport(r).split('\n')
  t.equal(lines.length, 4, 'header, rule, two rows')
  t.match(lines[2], /^\| undisturbed +\| 200 +\| 0 +\| 0 +\| 1\.00 +\| 20\.0 \/ 20\.0 +\| 10\.0 \/ 10\.0 +\| 20\.0 +\| - +\| - +\|$/)
  t.match(lines[3], /^\| mirror 0 stopped +\| 200 .*\| 120\.0 +\| 30\.0 +\|$/)
  t.match(failoverSection(r), /three nginx mirrors of the 1 GiB image, kernel TCP at 10 ms RTT/)
  t.match(failoverSection(r), /p99 of every run's reads pooled, undisturbed \/ mirror 0 stopped: random 128 KiB 20\.0 \/ 30\.0 ms, sequential 1 MiB 10\.0 \/ 15\.0 ms/)
})

t.test("a boot's row: its time, units, the daemon's error lines, the failover after the stop", async (t) => {
  const boot = { readyMs: 40_000, startedAt: T0, failedUnitCount: 0, guestRead: { bytes: 52 * 2 ** 20 } }
  const log = [
    logLine(T0 + 9_000, 'mounted'),
    JSON.stringify({ time: new Date(T0 + 13_000).toISOString(), level: 'error', msg: 'read failed' }),
    logLine(T0 + 12_100, 'snapshot img: reads failed over from http://a to http://b, answered 70 ms after it failed', { failoverMs: 70 }),
  ].join('\n')
  t.same(bootRow('boot, undisturbed', boot), { run: 'boot, undisturbed', readySeconds: 40, failedUnits: 0, guestBytes: 52 * 2 ** 20, errors: 0 })
  const stopped = bootRow('boot, mirror 0 stopped', boot, { stoppedAt: T0 + 12_000, log })
  t.match(stopped, { errors: 1, stoppedAfterSeconds: 12, failoverMs: 70, stopToAnswerMs: 100, requestToAnswerMs: 70 })
  const lines = bootReport({ rows: [bootRow('boot, undisturbed', { ...boot, guestRead: undefined }), stopped, bootRow('boot, mirror 0 stopped', boot, { stoppedAt: T0 + 20_000 })] }).split('\n')
  t.match(lines[2], /^\| boot, undisturbed +\| 40\.0 +\| n\/a +\| 0 +\| 0 +\| - +\| - +\|$/)
  t.match(lines[3], /^\| boot, mirror 0 stopped +\| 40\.0 +\| 52\.0 +\| 0 +\| 1 +\| 12\.0 +\| 70\.0 +\|$/)
  t.match(lines[4], /\| 20\.0 +\| no failover +\|$/)
})

t.test('boot targets: booted without errors or failed units; the failover judged only if a read needed it', async (t) => {
  const boot = { readyMs: 40_000, startedAt: T0, failedUnitCount: 0, guestRead: undefined }
  const withBoots = (rows: ReturnType<typeof bootRow>[]) => failoverTargets({ ...results([calm(20)]), boots: { accel: 'tcg', rows } }).filter((target) => target.target.startsWith('boot')).map((target) => [target.target, target.pass, target.detail])
  const failedOver = logLine(T0 + 12_050, 'snapshot img: reads failed over from http://a to http://b, answered 40 ms after it failed', { failoverMs: 40 })
  t.same(withBoots([bootRow('boot, undisturbed', boot), bootRow('boot, mirror 0 stopped', boot, { stoppedAt: T0 + 12_000, log: failedOver })]), [
    ['boot, mirror 0 stopped: booted, 0 read errors', true, '0 read errors, 0 failed units, ready in 40.0 s'],
    ['boot, mirror 0 stopped: failover < 1000 ms', true, '50.0 ms from the stop, 40.0 ms from the request that found it failing'],
  ])
  t.same(withBoots([bootRow('boot, mirror 0 stopped', { ...boot, failedUnitCount: 1 }, { stoppedAt: T0 + 12_000 })]), [
    ['boot, mirror 0 stopped: booted, 0 read errors', false, '0 read errors, 1 failed units, ready in 40.0 s'],
    ['boot, mirror 0 stopped: failover < 1000 ms', undefined, 'no read reached the mirrors after the stop'],
  ])
  t.same(withBoots([bootRow('boot, undisturbed', boot)]), [], 'no boot with a stop, no boot targets')
  t.match(failoverSection({ ...results([calm(20)]), boots: { note: 'not booted: no QEMU', rows: [] } }), /Guest boots through the mirrors: not booted: no QEMU/)
  t.match(failoverSection({ ...results([calm(20)]), boots: { accel: 'tcg', rows: [bootRow('boot, undisturbed', boot)] } }), /The Linux guest booted \(tcg, cache=none\)[^]*\| boot, undisturbed/)
})

// The fleet part's pure pieces: the boot's read list, fio's replay log, the percentile, the storm
// table and issue 21's storm targets at their edges.
import t from 'tap'
import { STORM_ORIGIN_LIMIT, STORM_P99_LIMIT, fleetReport, fleetSection, fleetTargets, type FleetResults, type FleetRow } from '../../bench/lib/fleet-report.mjs'
import { percentile } from '../../bench/lib/stats.mjs'
import { WORKING_SET_SPAN_BYTES, bootWorkingSet, fioIolog, workingSetBytes } from '../../bench/lib/working-set.mjs'

const MiB = 2 ** 20

t.test("the boot's reads: the same every run, shaped like the Linux guest's boot, inside the span", async (t) => {
  const reads = bootWorkingSet(WORKING_SET_SPAN_BYTES)
  t.same(bootWorkingSet(WORKING_SET_SPAN_BYTES), reads, 'seeded: the same list again')
  t.not(JSON.stringify(bootWorkingSet(WORKING_SET_SPAN_BYTES, 17)), JSON.stringify(reads), 'another seed, another list')
  t.ok(reads.length > 1200 && reads.length < 1800, `${reads.length} reads (the guest: ~1,460)`)
  const { read, unique } = workingSetBytes(reads)
  t.ok(read > 40 * MiB && read < 80 * MiB, `${(read / MiB).toFixed(1)} MiB read (the guest: 52)`)
  t.ok(unique <= read && unique > 0.8 * read, `${(unique / MiB).toFixed(1)} MiB of the image touched`)
  t.ok(reads.every(({ offset, length }) => offset % 4096 === 0 && length % 4096 === 0 && offset + length <= WORKING_SET_SPAN_BYTES), '4 KiB-aligned, inside the span')
  t.ok(reads.filter(({ length }) => length === 128 * 1024).length > 100, 'runs of 128 KiB reads (files read whole)')
  t.ok(reads.filter(({ length }) => length <= 16 * 1024).length === 1000, 'and 1,000 small scattered ones')
})

t.test('bytes read and touched: overlapping reads count once as touched', async (t) => {
  t.same(workingSetBytes([{ offset: 0, length: 8192 }, { offset: 4096, length: 8192 }]), { read: 16384, unique: 12288 })
})

t.test("fio's replay log names the file in every line, reads in order", async (t) => {
  t.equal(fioIolog('/m/img', [{ offset: 4096, length: 8192 }, { offset: 0, length: 4096 }]), ['fio version 2 iolog', '/m/img add', '/m/img open', '/m/img read 4096 8192', '/m/img read 0 4096', '/m/img close', ''].join('\n'))
})

t.test('percentile: nearest rank, undefined ignored', async (t) => {
  t.equal(percentile([3, 1, 2, undefined], 50), 2)
  t.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99), 99)
  t.equal(percentile([5], 99), 5)
  t.equal(percentile([], 50), undefined)
})

const row = (tier: boolean, daemons: number, originBytes: number, p99Seconds: number): FleetRow => ({
  tier,
  daemons,
  bytesOk: true,
  originBytes,
  originRequests: 10 * daemons,
  p50Seconds: p99Seconds / 2,
  p99Seconds,
  maxSeconds: p99Seconds,
})
const fleet = (rows: FleetRow[]): FleetResults => ({ rttMs: 10, reads: 1400, read: 60 * MiB, unique: 55 * MiB, rows })

t.test('storm targets: against one daemon alone through the tier, at their edges', async (t) => {
  const alone = row(true, 1, 100 * MiB, 2)
  const atEdges = fleetTargets(fleet([row(false, 1, 60 * MiB, 1), row(false, 8, 480 * MiB, 3), alone, row(true, 8, STORM_ORIGIN_LIMIT * 100 * MiB, STORM_P99_LIMIT * 2)]))
  t.same(atEdges.map((target) => [target.target, target.pass]), [
    ['N=8 origin bytes <= 1.1x one daemon\'s', true],
    ['N=8 p99 per daemon <= 1.5x one alone', true],
  ], 'only the tier rows with N > 1 are judged; exactly at the limit passes')
  const over = fleetTargets(fleet([alone, row(true, 32, STORM_ORIGIN_LIMIT * 100 * MiB + 1, STORM_P99_LIMIT * 2 + 0.01)]))
  t.same(over.map((target) => target.pass), [false, false], 'a byte or a hundredth of a second over fails')
  t.equal(over[0]!.detail, '115 vs 1.1 x 105 MB')
  t.same(fleetTargets(undefined).map((target) => [target.pass, target.detail]), [[undefined, 'part fleet not run']])
})

t.test('the storm table: a row per path and N, the origin against the working set', async (t) => {
  const results = fleet([row(false, 8, 110 * MiB, 3), { ...row(true, 8, 55 * MiB, 2), bytesOk: false }])
  const lines = fleetReport(results).split('\n')
  t.equal(lines.length, 4, 'header, rule, two rows')
  t.match(lines[2], /\| origin only +\| 8 +\| 115 +\| 80 +\| 2\.00 +\| 1\.50 +\| 3\.00 +\| 3\.00 +\| OK +\|/)
  t.match(lines[3], /\| caching tier +\| 8 +\| 57\.7 +\| 80 +\| 1\.00 .*\| MISMATCH \|/)
  t.match(fleetSection(results), /1400 reads, 62\.9 MB read, 57\.7 MB of the image\), kernel TCP at 10 ms RTT/)
})

t.test('slice sizes compared (--fleet-slices): each tier row judged against one daemon through the same slice', async (t) => {
  const sliced = (slice: string, daemons: number, originBytes: number, p99Seconds: number): FleetRow => ({ ...row(true, daemons, originBytes, p99Seconds), slice })
  const results = fleet([sliced('256k', 1, 60 * MiB, 2), sliced('1m', 1, 100 * MiB, 2), sliced('256k', 8, 65 * MiB, 2), sliced('1m', 8, 100 * MiB, 2), sliced('128k', 8, 50 * MiB, 2)])
  t.same(fleetTargets(results).map((target) => [target.target, target.pass]), [
    ["N=8 (slice 256k) origin bytes <= 1.1x one daemon's", true],
    ['N=8 (slice 256k) p99 per daemon <= 1.5x one alone', true],
    ["N=8 (slice 1m) origin bytes <= 1.1x one daemon's", true],
    ['N=8 (slice 1m) p99 per daemon <= 1.5x one alone', true],
  ], "256k's N = 8 (68 MB) against 256k alone (63), not 1m alone; a slice with no N = 1 row is not judged")
  t.match(fleetReport(results).split('\n')[2], /\| caching tier, slice 256k +\| 1 +\|/)
})

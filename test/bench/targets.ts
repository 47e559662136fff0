// The bench's targets (bench/lib/targets.mjs), evaluated on the results of a real run
// (results-sample.json) and on copies changed at each target's edge.
import t from 'tap'
import { readFileSync } from 'node:fs'
import type { BenchResults, RemoteCondition, RemoteMount, Target } from '../../bench/lib/results.mjs'
import { kernelCondition } from '../fixtures/bench-kernel-condition.js'
import { evaluateTargets } from '../../bench/lib/targets.mjs'

const SAMPLE: BenchResults = JSON.parse(readFileSync(new URL('results-sample.json', import.meta.url), 'utf8'))

/** A copy of the sample to change. */
const sample = (): BenchResults => structuredClone(SAMPLE)

/** The condition `key` of `results`, which the sample has (every part ran). */
const condition = (results: BenchResults, key: string): RemoteCondition => results.remote![key]!

const snapmount = (results: BenchResults, key: string): RemoteMount => condition(results, key).mounts.snapmount!

/** The one target of `scope` whose name starts with `name`. */
function find(targets: Target[], scope: string, name: string): Target {
  const found = targets.filter((target) => target.scope === scope && target.target.startsWith(name))
  if (found.length !== 1) throw new Error(`${found.length} targets ${scope} / ${name}`)
  return found[0]!
}

t.test('the sample run gives back the targets it wrote, in the same order', async (t) => {
  // Through JSON, as the run wrote them: undefined values (n/a) drop out the same way.
  t.same(JSON.parse(JSON.stringify(evaluateTargets(sample()))), SAMPLE.targets)
  t.ok(SAMPLE.targets?.some((target) => target.pass === true), 'the sample has passing targets')
  t.ok(SAMPLE.targets?.some((target) => target.pass === false), 'and failing ones: both branches are exercised')
})

t.test('seq 1 reader against the best peer: 1.5x passes, a hair less fails', async (t) => {
  const results = sample()
  const peers = Object.entries(condition(results, 'http-10ms').mounts).filter(([key]) => key !== 'snapmount')
  t.ok(peers.length >= 2, 'the sample has peers to choose from')
  peers.forEach(([, m], i) => (m.seq1.mbps = 100 + 10 * i))
  const best = peers.at(-1)!
  snapmount(results, 'http-10ms').seq1.mbps = 1.5 * best[1].seq1.mbps
  let target = find(evaluateTargets(results), 'HTTP 10 ms', 'seq 1 reader >= 1.5x best peer')
  t.equal(target.pass, true)
  t.equal(target.limit, 1.5 * best[1].seq1.mbps)
  t.match(target.detail, `(${best[0]})`, 'names the best peer')
  snapmount(results, 'http-10ms').seq1.mbps = 1.5 * best[1].seq1.mbps - 0.01
  target = find(evaluateTargets(results), 'HTTP 10 ms', 'seq 1 reader >= 1.5x best peer')
  t.equal(target.pass, false)
})

t.test('with no peer measured the best-peer target is n/a, not a pass', async (t) => {
  const results = sample()
  const c = condition(results, 's3-10ms')
  c.mounts = { snapmount: snapmount(results, 's3-10ms') }
  const target = find(evaluateTargets(results), 'S3 10 ms', 'seq 1 reader >= 1.5x best peer')
  t.equal(target.pass, undefined)
  t.equal(target.detail, 'no peer measured')
})

t.test('the raw-stream, latency, IOPS, fetch and 2nd-pass targets at their limits', async (t) => {
  const results = sample()
  const c = condition(results, 'http-10ms')
  const s = snapmount(results, 'http-10ms')
  c.raw.seq1 = 300
  s.seq1.mbps = 450
  s.rand1.p50Ms = 14 // 1.3 x 10 ms + 1 ms
  s.rand1.askedKibPerRead = 128
  s.rand8.iops = 640 // 80 % of 8 / 10 ms
  s.seq1.fetchPerByte = 1.1
  results.sourceSeq = 4000
  s.warm.mbps = 2000
  // Issue 5's, after the first (against the best peer, tested above); not issue 17's CPU target.
  const issue5 = () => evaluateTargets(results).filter((target) => target.scope === 'HTTP 10 ms' && !target.target.startsWith('daemon CPU')).slice(1)
  const passing = issue5()
  t.same(
    passing.map((target) => [target.target, target.pass]),
    [
      ['seq 1 reader >= 1.5x one raw stream', true],
      ['rand 1 reader p50 <= 1.3 x RTT + 1 ms', true],
      ['rand 1 reader <= 128 KiB fetched per 4 KiB read', true],
      ['rand 8 readers >= 80% of 8/RTT reads/s', true],
      ['seq fetch <= 1.1 bytes per byte read', true],
      ['2nd pass >= 0.5x source from page cache', true],
    ],
  )
  t.match(find(passing, 'HTTP 10 ms', 'seq 1 reader >= 1.5x one raw stream').detail, "450 vs 1.5 x 300 MB/s; one stream through the proxy's 3 MiB window")
  s.seq1.mbps = 449.9
  s.rand1.p50Ms = 14.01
  s.rand1.askedKibPerRead = 128.1
  s.rand8.iops = 639.9
  s.seq1.fetchPerByte = 1.11
  s.warm.mbps = 1999
  const failing = issue5()
  t.same(failing.map((target) => target.pass), [false, false, false, false, false, false])
})

t.test('a remote part not run is one n/a line for its protocol', async (t) => {
  const results = sample()
  delete results.remote!['s3-10ms']
  const targets = evaluateTargets(results)
  const s3 = targets.filter((target) => target.scope === 'S3 10 ms')
  t.same(s3, [{ scope: 'S3 10 ms', target: 'remote targets', value: undefined, limit: undefined, pass: undefined, detail: 'part s3-10ms not run' }])
  t.ok(targets.some((target) => target.scope === 'HTTP 10 ms' && target.pass !== undefined), 'HTTP is still judged')
})

t.test('the RSS bound holds only with all 4 GiB read', async (t) => {
  const results = sample()
  const rss = results.rss!
  rss.peakRssMiB = 356
  rss.bytesRead = 4 * 2 ** 30
  t.equal(find(evaluateTargets(results), '4 GiB seq', 'peak RSS').pass, true)
  rss.bytesRead = 4 * 2 ** 30 - 2 ** 20
  t.equal(find(evaluateTargets(results), '4 GiB seq', 'peak RSS').pass, false, 'a read cut short proves nothing')
  rss.bytesRead = 4 * 2 ** 30
  rss.peakRssMiB = 356.1
  t.equal(find(evaluateTargets(results), '4 GiB seq', 'peak RSS').pass, false)
  delete results.rss
  const notRun = find(evaluateTargets(results), '4 GiB seq', 'peak RSS')
  t.equal(notRun.pass, undefined)
  t.equal(notRun.detail, 'part rss not run')
})

t.test('local: file and mmap each against the QEMU export; n/a without it, or without the part', async (t) => {
  const results = sample()
  const mounts = results.local!.mounts
  mounts.qemu!.seqCold = 500
  mounts.file!.seqCold = 500
  mounts.mmap!.seqCold = 499
  const targets = evaluateTargets(results).filter((target) => target.scope === 'local')
  t.same(
    targets.map((target) => [target.target, target.pass, target.detail]),
    [
      ['snapmount file seq >= QEMU FUSE export', true, '500 vs 500 MB/s'],
      ['snapmount mmap seq >= QEMU FUSE export', false, '499 vs 500 MB/s'],
    ],
  )
  delete mounts.qemu
  t.same(
    evaluateTargets(results).filter((target) => target.scope === 'local').map((target) => [target.pass, target.detail]),
    [[undefined, 'QEMU FUSE export not measured']],
  )
  delete results.local
  t.same(
    evaluateTargets(results).filter((target) => target.scope === 'local').map((target) => [target.pass, target.detail]),
    [[undefined, 'part local not run']],
  )
})

t.test("issue 17's loopback target: at HTTP 0 ms too, 1.5x the best peer", async (t) => {
  const results = sample()
  const loopback = () => find(evaluateTargets(results), 'HTTP 0 ms', 'seq 1 reader >= 1.5x best peer')
  const peers = Object.entries(condition(results, 'http-0ms').mounts).filter(([key]) => key !== 'snapmount' && key !== 'snapmount-manifest')
  const best = peers.reduce((b, p) => (p[1].seq1.mbps > b[1].seq1.mbps ? p : b))
  snapmount(results, 'http-0ms').seq1.mbps = 1.5 * best[1].seq1.mbps
  t.equal(loopback().pass, true, 'at 1.5x')
  t.match(loopback().detail, `(${best[0]})`)
  snapmount(results, 'http-0ms').seq1.mbps = 1.49 * best[1].seq1.mbps
  t.equal(loopback().pass, false)
  delete results.remote!['http-0ms']
  t.same([loopback().pass, loopback().detail], [undefined, 'part http-0ms not run'])
})

t.test("issue 17's CPU target: snapmount's 1-reader read in every remote condition run, per protocol", async (t) => {
  const results = sample()
  const cpuTargets = () => evaluateTargets(results).filter((target) => target.target.startsWith('daemon CPU'))
  t.same(
    cpuTargets().map((target) => [target.scope, target.target, target.limit]),
    [
      ['HTTP 0 ms', 'daemon CPU <= 0.8 s per GiB, seq 1 reader', 0.8],
      ['HTTP 10 ms', 'daemon CPU <= 0.8 s per GiB, seq 1 reader', 0.8],
      ['S3 0 ms', 'daemon CPU <= 1.0 s per GiB, seq 1 reader', 1],
      ['S3 10 ms', 'daemon CPU <= 1.0 s per GiB, seq 1 reader', 1],
    ],
  )
  const s = snapmount(results, 'http-0ms')
  s.seq1.mbps = 555
  s.seq1.cpu = { daemonSecondsPerGiB: 0.8, idleShare: 0.125 }
  s.seq4.cpu = { daemonSecondsPerGiB: 1.234 }
  let target = cpuTargets()[0]!
  t.equal(target.pass, true, 'at the limit')
  t.equal(target.value, 0.8)
  t.equal(target.detail, '0.80 vs 0.8 s/GiB at 555 MB/s, machine idle 13 %; 1.23 with 4 readers (not judged); null backend 0.76')
  results.local!.mounts.null!.seqColdCpu = { daemonSecondsPerGiB: 0.5, idleShare: 0.5 }
  t.match(cpuTargets()[3]!.detail, /; null backend 0\.50$/, "each row names this run's floor: the FUSE path alone")
  delete results.local
  t.notMatch(cpuTargets()[0]!.detail, /null backend/, 'not without the local part')
  s.seq1.cpu.daemonSecondsPerGiB = 0.81
  t.equal(cpuTargets()[0]!.pass, false)
  snapmount(results, 's3-0ms').seq1.cpu = { daemonSecondsPerGiB: 0.95 }
  t.equal(cpuTargets()[2]!.pass, true, 'S3 is allowed 1.0')
  s.seq1.cpu = {}
  target = cpuTargets()[0]!
  t.equal(target.pass, undefined, 'a daemon gone before its last reading is n/a, not a pass')
  t.equal(target.detail, 'not measured (the daemon was gone)')
})

t.test('without a part of a protocol its CPU target is one n/a line', async (t) => {
  const results = sample()
  delete results.remote!['s3-0ms']
  delete results.remote!['s3-10ms']
  const s3 = evaluateTargets(results).filter((target) => target.target.startsWith('daemon CPU') && target.scope.startsWith('S3'))
  t.same(s3, [{ scope: 'S3', target: 'daemon CPU <= 1.0 s per GiB, seq 1 reader', value: undefined, limit: undefined, pass: undefined, detail: 'no s3 part run' }])
})

t.test("issue 17's start target: snapmount on the local file and over HTTP at 0 ms, median within 250 ms", async (t) => {
  const results = sample()
  const startTargets = () => evaluateTargets(results).filter((target) => target.scope === 'start')
  const local = results.local!.starts!.mounts
  const http = results.remote!['http-0ms']!.starts!.mounts
  local.file!.medianMs = 250
  local.qemu!.medianMs = 60
  local.null!.medianMs = 5 // not a peer: never the one shown
  http.snapmount!.medianMs = 251
  for (const [key, m] of Object.entries(http)) if (key !== 'snapmount') m.medianMs = key === 'httpfs2' ? 15.7 : 90
  const [file, overHttp] = startTargets()
  t.same([file!.target, file!.pass, file!.value, file!.limit], ['snapmount local file: start to mounted <= 0.25 s', true, 250, 250])
  t.equal(file!.detail, `250 vs 250 ms, median of ${local.file!.ms.length}; fastest peer QEMU FUSE export 60.0 ms`)
  t.same([overHttp!.target, overHttp!.pass], ['snapmount HTTP, 0 ms: start to mounted <= 0.25 s', false])
  t.match(overHttp!.detail, /^251 vs 250 ms, median of \d+; fastest peer httpfs2 15\.7 ms$/)
  delete local.qemu
  t.equal(startTargets()[0]!.detail, `250 vs 250 ms, median of ${local.file!.ms.length}`, 'no peer, no peer named')
  delete results.local
  delete results.remote!['http-0ms']
  t.same(
    startTargets().map((target) => [target.pass, target.detail]),
    [
      [undefined, 'part local not run'],
      [undefined, 'part http-0ms not run'],
    ],
  )
})

const kernelScope = 'HTTP 10 ms kernel TCP'

t.test('over kernel TCP: 1.5x rclone and 1.5x one curl stream pass at the limit, and the CPU target', async (t) => {
  const results = sample()
  results.kernelTcp = { http: kernelCondition() }
  const judged = () => evaluateTargets(results).filter((target) => target.scope === kernelScope)
  t.same(
    judged().map((target) => [target.target, target.pass]),
    [
      ['seq 1 reader >= 1.5x rclone', true],
      ['seq 1 reader >= 1.5x one raw stream', true],
      ['daemon CPU <= 0.8 s per GiB, seq 1 reader', true],
    ],
  )
  const s = results.kernelTcp.http.mounts.snapmount!
  s.seq1.mbps = 449.99
  s.seq1.cpu!.daemonSecondsPerGiB = 0.81
  t.same(
    judged().map((target) => target.pass),
    [false, false, false],
  )
  s.seq1.cpu = {}
  t.match(find(evaluateTargets(results), kernelScope, 'daemon CPU'), { pass: undefined, detail: /not measured/ })
  delete results.kernelTcp.http.mounts.rclone
  t.match(find(evaluateTargets(results), kernelScope, 'seq 1 reader >= 1.5x rclone'), { pass: undefined, detail: 'rclone not measured' })
})

t.test('over kernel TCP: a part not run, or one the machine could not run, is n/a with the reason', async (t) => {
  const results = sample()
  t.match(find(evaluateTargets(results), kernelScope, 'kernel-TCP targets'), { pass: undefined, detail: 'part http-kernel not run' })
  results.kernelTcp = { http: { ...kernelCondition(), mounts: {}, notes: ['not run: needs root'] } }
  t.match(find(evaluateTargets(results), kernelScope, 'kernel-TCP targets'), { pass: undefined, detail: 'not run: needs root' })
  results.kernelTcp.http.notes = []
  t.match(find(evaluateTargets(results), kernelScope, 'kernel-TCP targets'), { detail: 'snapmount not measured' })
})

t.test('issue 20: with a manifest mount, its overhead and the bit-flipping row are judged', async (t) => {
  const results = sample()
  t.notOk(evaluateTargets(results).some((target) => target.target.startsWith('manifest:')), 'runs without one have no such line')
  for (const key of ['http-0ms', 'http-10ms']) {
    const c = condition(results, key)
    const s = snapmount(results, key)
    c.mounts['snapmount-manifest'] = { ...structuredClone(s), seq1: { ...s.seq1, mbps: 0.9 * s.seq1.mbps }, rand1: { ...s.rand1, p50Ms: s.rand1.p50Ms! + 1 } }
  }
  const row = { bytesRead: 2 ** 30, wrongBytes: 0, failedReads: 0, responses: 270, flips: 3, flippedBlocks: 3, loggedBlocks: 3, exit: 0 }
  condition(results, 'http-0ms').corruption = { flipShare: 0.01, without: { ...row, wrongBytes: 3, loggedBlocks: 0 }, with: row }
  let targets = evaluateTargets(results)
  t.equal(find(targets, 'HTTP 10 ms', 'manifest: seq 1 reader').pass, true, '0.9x passes')
  t.equal(find(targets, 'HTTP 0 ms', 'manifest: rand 1 reader p50').pass, true, '+1 ms passes')
  const flips = find(targets, 'HTTP 0 ms', 'manifest: bit-flipping proxy')
  t.equal(flips.pass, true)
  t.match(flips.detail, /0 wrong bytes, 0 failed reads, 3 of 3 flipped blocks logged .*without a manifest 3 wrong bytes/)
  t.notMatch(find(targets, 'HTTP 10 ms', 'seq 1 reader >= 1.5x best peer').detail, /snapmount-manifest/, 'not a peer')

  snapmount(results, 'http-10ms').seq1.mbps *= 1.01
  snapmount(results, 'http-0ms').rand1.p50Ms! -= 0.01
  condition(results, 'http-0ms').corruption!.with.loggedBlocks = 2
  targets = evaluateTargets(results)
  t.equal(find(targets, 'HTTP 10 ms', 'manifest: seq 1 reader').pass, false, 'a hair under 0.9x fails')
  t.equal(find(targets, 'HTTP 0 ms', 'manifest: rand 1 reader p50').pass, false, 'a hair over +1 ms fails')
  t.equal(find(targets, 'HTTP 0 ms', 'manifest: bit-flipping proxy').pass, false, 'a flipped block not logged fails')
  condition(results, 'http-0ms').corruption!.with = { ...row, flips: 0, flippedBlocks: 0, loggedBlocks: 0 }
  t.equal(find(evaluateTargets(results), 'HTTP 0 ms', 'manifest: bit-flipping proxy').pass, false, 'a run that flipped nothing caught nothing: it fails')
})

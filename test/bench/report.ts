// The bench's printed report (bench/lib/report.mjs): from the results of a real run
// (results-sample.json) it prints exactly what that run printed (results-sample.txt), so the JSON
// holds every number shown; and each table's rules on copies changed at their edges.
import t from 'tap'
import { readFileSync } from 'node:fs'
import {
  footer,
  kernelReport,
  kernelSection,
  integritySection,
  localReport,
  localSection,
  peersSection,
  remoteReport,
  remoteSection,
  rssSection,
  startReport,
  startSection,
  targetsReport,
  targetsSection,
} from '../../bench/lib/report.mjs'
import type { BenchResults, RemoteCondition } from '../../bench/lib/results.mjs'
import { kernelCondition } from '../fixtures/bench-kernel-condition.js'

const SAMPLE: BenchResults = JSON.parse(readFileSync(new URL('results-sample.json', import.meta.url), 'utf8'))
/** The sample run's stdout after npm's lines, with the results file's path made relative. */
const PRINTED = readFileSync(new URL('results-sample.txt', import.meta.url), 'utf8')
const RESULTS_FILE = `bench/results/${SAMPLE.startedAt.replace(/[:.]/g, '-')}.json`

/** A copy of the sample to change. */
const sample = (): BenchResults => structuredClone(SAMPLE)

/** The condition `key` of `results`, which the sample has (every part ran). */
const condition = (results: BenchResults, key: string): RemoteCondition => results.remote![key]!

/** The header and the rows of a printed table (not the rule under the header), each as its trimmed cells. */
function cells(table: string): string[][] {
  return table
    .split('\n')
    .filter((_, i) => i !== 1)
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))
}

/** The cells after the label of the row labelled `label` (the first such row). */
function row(table: string, label: string): string[] {
  const found = cells(table).find((r) => r[0] === label.trim())
  if (!found) throw new Error(`no row ${label}`)
  return found.slice(1)
}

t.test('the sample run prints again exactly as it did, from its JSON alone', async (t) => {
  const results = sample()
  let text = localSection(results.local!, results.settings)
  for (const c of Object.values(results.remote!)) text += remoteSection(c, results.sourceSeq, results.settings)
  text += peersSection(results) + rssSection(results.rss!) + startSection(results) + targetsSection(results.targets!) + footer(results, RESULTS_FILE)
  t.equal(text, PRINTED)
})

t.test('every row of a table has one cell per column, and the columns line up', async (t) => {
  const results = sample()
  for (const table of [localReport(results.local!), ...Object.values(results.remote!).map((c) => remoteReport(c, results.sourceSeq, results.settings)), startReport(results)!, targetsReport(results.targets!)]) {
    const lines = table.split('\n')
    const widths = new Set(lines.map((line) => line.length))
    t.equal(widths.size, 1, 'every line as long as the header')
    const columns = cells(table)[0]!.length
    t.ok(cells(table).every((r) => r.length === columns), `${columns} cells in every row`)
    t.match(lines[1], /^\| -+ (\| -+ )*\|$/, 'the header rule')
  }
})

t.test('a remote table: a column per mount in the order measured, then the raw client of its protocol', async (t) => {
  const results = sample()
  const http = condition(results, 'http-0ms')
  const header = cells(remoteReport(http, results.sourceSeq, results.settings))[0]!
  const titles: Record<string, string> = { snapmount: 'snapmount', httpfs2: 'httpfs2', rclone: 'rclone mount', qemu: 'QEMU curl+FUSE', s3fs: 's3fs' }
  t.same(header, ['measurement', ...Object.keys(http.mounts).map((key) => titles[key]), 'raw client (curl; undici for 4K)'])
  const s3 = condition(results, 's3-0ms')
  t.equal(cells(remoteReport(s3, results.sourceSeq, results.settings))[0]!.at(-1), 'raw client (AWS SDK)')
})

t.test('a sequential read cut short by the time cap says how much it read, and in how long', async (t) => {
  const results = sample()
  const c = condition(results, 'http-10ms')
  const s = c.mounts.snapmount!
  s.seq1.mbps = 278.4
  s.seq1.bytesRead = 2 ** 30
  const label = 'seq MB/s, 1 reader, cold (raw: 1 stream)'
  t.equal(row(remoteReport(c, results.sourceSeq, { seqSeconds: 6 }), label)[0], '278', 'the whole GiB: no bracket')
  s.seq1.bytesRead = 2 ** 30 - 2 ** 20
  t.equal(row(remoteReport(c, results.sourceSeq, { seqSeconds: 6 }), label)[0], '278 [1,023 MiB in 6 s]')
  t.equal(row(remoteReport(c, results.sourceSeq, { seqSeconds: 3 }), label)[0], '278 [1,023 MiB in 3 s]', 'the cap of the run')
})

t.test('ratios to the source, fetch counts and exit statuses as the rows print them', async (t) => {
  const results = sample()
  const c = condition(results, 'http-0ms')
  const s = c.mounts.snapmount!
  s.warm.mbps = 2500
  s.seq1.fetchPerByte = 1.0004
  s.seq1.gets = 8192
  s.seq1.connections = 6
  s.exits = [0, 0, 143, 0]
  const table = remoteReport(c, 5000, results.settings)
  t.equal(row(table, '2nd pass over the 1-reader bytes, MB/s (x source from page cache)')[0], '2,500 (0.50x)')
  t.equal(row(table, '2nd pass over the 1-reader bytes, MB/s (x source from page cache)').at(-1), 'source 5,000')
  t.equal(row(table, '  server bytes per byte read, 1 reader (GETs; connections)')[0], '1.000 (8,192; 6)')
  t.equal(row(table, 'daemon exit status after SIGTERM')[0], '0, 143', 'each status once')
})

t.test('the local table: only the mounts measured, and n/a for a source without O_DIRECT', async (t) => {
  const results = sample()
  const local = results.local!
  delete local.mounts.qemu
  delete local.source.rand1Direct
  const table = localReport(local)
  t.same(cells(table)[0], ['measurement', 'snapmount file', 'snapmount mmap', 'null backend', 'source file directly'])
  t.same(row(table, 'source 4K randread IOPS O_DIRECT, 1 / 8 readers'), ['-', '-', '-', 'n/a'])
  local.source.seq = 4000
  local.mounts.file!.seqCold = 1000
  t.same(row(localReport(local), 'seq MB/s, 1st read after mount (median of cold daemons)').slice(0, 1), ['1,000 (0.25x)'])
  t.equal(row(localReport(local), 'seq MB/s, 1st read after mount (median of cold daemons)').at(-1), '4,000 (page cache)')
})

t.test('the targets table: PASS, FAIL and n/a', async (t) => {
  const table = targetsReport([
    { scope: 'HTTP 10 ms', target: 'a', value: 2, limit: 1, pass: true, detail: '2 vs 1' },
    { scope: 'S3 10 ms', target: 'b', value: 0, limit: 1, pass: false, detail: '0 vs 1' },
    { scope: '4 GiB seq', target: 'c', value: undefined, limit: undefined, pass: undefined, detail: 'part rss not run' },
  ])
  t.same(cells(table).slice(1), [
    ['HTTP 10 ms', 'a', 'PASS', '2 vs 1'],
    ['S3 10 ms', 'b', 'FAIL', '0 vs 1'],
    ['4 GiB seq', 'c', 'n/a', 'part rss not run'],
  ])
})

t.test('rclone settings are printed only when rclone ran; peers only when noted', async (t) => {
  const results = sample()
  t.match(peersSection(results), /^\nrclone mount: --read-only/)
  for (const c of Object.values(results.remote!)) delete c.mounts.rclone
  results.peers = {}
  t.equal(peersSection(results), '')
})

t.test("CPU rows: the daemon's seconds per GiB with the machine's idle share, the proxy's beside the raw stream's", async (t) => {
  const results = sample()
  const c = condition(results, 'http-0ms')
  const s = c.mounts.snapmount!
  s.seq1.cpu = { daemonSecondsPerGiB: 1.875, idleShare: 0.125, proxySecondsPerGiB: 1.1 }
  s.seq4.cpu = { daemonSecondsPerGiB: 2, idleShare: 0, proxySecondsPerGiB: 0.95 }
  s.warm.cpu = { daemonSecondsPerGiB: 0.001, idleShare: 0.5 }
  c.raw.seq1ProxyCpuPerGiB = 1.004
  const table = remoteReport(c, results.sourceSeq, results.settings)
  t.equal(row(table, '  daemon CPU s per GiB read, 1 reader (machine idle during it)')[0], '1.88 (13 %)')
  t.equal(row(table, '  daemon CPU s per GiB read, 4 readers (machine idle during it)')[0], '2.00 (0 %)')
  t.same(row(table, '  proxy CPU s per GiB read, 1 / 4 readers (raw: 1 stream)').filter((_, i, all) => i === 0 || i === all.length - 1), ['1.10 / 0.95', '1.00'])
  t.equal(row(table, '  daemon CPU s per GiB during the 2nd pass (machine idle during it)')[0], '0.00 (50 %)')
  s.seq1.cpu = {}
  t.equal(row(remoteReport(c, results.sourceSeq, results.settings), '  daemon CPU s per GiB read, 1 reader (machine idle during it)')[0], 'n/a (n/a)', 'a daemon gone: n/a, not 0')
  const local = results.local!
  local.mounts.file!.seqColdCpu = { daemonSecondsPerGiB: 0.5, idleShare: 0.2 }
  t.same(row(localReport(local), '  daemon CPU s per GiB, 1st read (machine idle during it)').slice(0, 1), ['0.50 (20 %)'])
})

t.test('the start table: every part that measured starts, snapmount judged on the local file and over HTTP', async (t) => {
  const results = sample()
  const local = results.local!.starts!.mounts
  local.file!.ms = [300, 240, 250]
  local.file!.medianMs = 250
  const table = startReport(results)!
  const rows = cells(table)
  t.same(rows[0], ['source', 'daemon', 'median ms', 'min - max ms', 'starts', 'target (issue 17)'])
  t.same(rows[1], ['local file', 'snapmount file', '250', '240 - 300', '3', '<= 250 ms: PASS'])
  const expected = [
    ...Object.values(local).map((s) => ['local file', s.title]),
    ...Object.values(results.remote!)
      .filter((c) => c.starts)
      .flatMap((c) => Object.values(c.starts!.mounts).map((s) => [c.title, s.title])),
  ]
  t.same(rows.slice(1).map((r) => r.slice(0, 2)), expected, 'a row per mount of the local part and of each 0 ms condition')
  const judged = rows.slice(1).filter((r) => r[5] !== '-')
  t.same(judged.map((r) => r.slice(0, 2)), [['local file', 'snapmount file'], ['HTTP, 0 ms', 'snapmount']], 'only snapmount local and HTTP are judged')
  delete results.local
  for (const c of Object.values(results.remote!)) delete c.starts
  t.equal(startReport(results), undefined, 'no table when no part measured starts')
  t.equal(startSection(results), '')
})

t.test('the kernel-TCP section: its title, the TCP settings inside, a column per mount and curl', async (t) => {
  const c = kernelCondition()
  c.mounts.snapmount!.seq1.bytesRead = 600 * 2 ** 20
  const text = kernelSection(c)
  t.match(text, /^\nHTTP, 10 ms RTT over kernel TCP: nginx 1\.22\.1 and every daemon in a network namespace delaying each packet 5 ms in the kernel/)
  t.match(text, /part 60 s, load 1\.00 -> 2\.00\nTCP inside: tcp_slow_start_after_idle 1\n\n/)
  const report = kernelReport(c)
  t.same(cells(report)[0], ['measurement', 'snapmount', 'rclone mount', 'raw client (curl)'])
  t.same(row(report, 'seq MB/s, 1 reader, cold (raw: 1 stream)'), ['450 [600 MiB]', '300', '300'])
  t.same(row(report, '  daemon CPU s per GiB read (machine idle during it)'), ['0.80 (20 %)', '3.00 (20 %)', '-'])
  t.same(row(report, 'bytes check: sha256 of O_DIRECT slices'), ['OK', 'OK', '-'])
})

t.test('the kernel-TCP section of a part that could not run: its title and why', async (t) => {
  const c = { ...kernelCondition(), mounts: {}, notes: ['not run: needs root'] }
  t.match(kernelSection(c), /over kernel TCP: .*\nnot run: needs root\n$/)
})

t.test('rclone settings are printed when rclone ran in the kernel-TCP part alone', async (t) => {
  const results = sample()
  delete results.remote
  t.notMatch(peersSection(results), /rclone mount: --read-only/)
  results.kernelTcp = { http: kernelCondition() }
  t.match(peersSection(results), /rclone mount: --read-only/)
})

t.test("issue 20's table: snapmount without and with the manifest per condition, then the bit-flipping rows", async (t) => {
  const results = sample()
  t.equal(integritySection(results), '', 'nothing for a run without a manifest mount')
  const c = condition(results, 'http-0ms')
  const s = c.mounts.snapmount!
  c.mounts['snapmount-manifest'] = { ...structuredClone(s), seq1: { ...s.seq1, mbps: 450 }, rand1: { ...s.rand1, p50Ms: s.rand1.p50Ms! + 0.25 } }
  const row = { bytesRead: 2 ** 30, wrongBytes: 0, failedReads: 0, responses: 270, flips: 3, flippedBlocks: 3, loggedBlocks: 3, exit: 0 }
  c.corruption = { flipShare: 0.01, without: { ...row, wrongBytes: 3, loggedBlocks: 0 }, with: row }
  const text = integritySection(results)
  t.match(text, /^\nIntegrity manifest \(issue 20\)/)
  const rows = cells(text.split('\n\n')[1]!.split('\nbit-flipping')[0]!.trim())
  t.same(rows[0], ['measurement (without / with the manifest)', 'HTTP, 0 ms'], 'a column per condition with a manifest mount')
  t.match(rows[1]![1], new RegExp(`/ 450 \\(${(450 / s.seq1.mbps).toFixed(2)}x\\)$`))
  t.match(rows[5]![1], /\(\+0\.25\)$/)
  c.mounts['snapmount-manifest']!.rand1.p50Ms = s.rand1.p50Ms! - 0.14
  t.match(cells(integritySection(results).split('\n\n')[1]!.split('\nbit-flipping')[0]!.trim())[5]![1], /\(-0\.14\)$/, 'a faster median shows as such')
  t.match(text, /without a manifest: 1,024 MiB read, 3 wrong bytes, 0 failed reads, 3 of 270 responses flipped, 0 of 3 flipped blocks logged/)
  t.match(text, /with the manifest: {2}1,024 MiB read, 0 wrong bytes/)
  t.match(remoteReport(c, results.sourceSeq!, results.settings), /\| snapmount \+ manifest +\|/, 'the column in the condition\'s table')
})

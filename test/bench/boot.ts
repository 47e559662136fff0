import t from 'tap'
import { bootReport, bootSection } from '../../bench/lib/report.mjs'
import type { BenchResults, BootResults, BootRow } from '../../bench/lib/results.mjs'
import { BOOT_LIMITS, evaluateTargets } from '../../bench/lib/targets.mjs'
import { bytesSentFromLog } from '../../tools/radosgw.mjs'

const MIB = 2 ** 20

function row(title: string, group: BootRow['group'], proto: BootRow['proto'], rttMs: number, seconds: number[], serverMiB?: number): BootRow {
  const runs = seconds.map((s) => ({ readyMs: s * 1000, guestBytes: 52 * MIB, guestReads: 1426, serverBytes: serverMiB === undefined ? undefined : serverMiB * MIB, failedUnits: 0, load: 4 }))
  return { title, group, proto, rttMs, runs, medianMs: [...seconds].sort((a, b) => a - b)[1]! * 1000, guestBytes: 52 * MIB, ...(serverMiB !== undefined && { serverBytes: serverMiB * MIB }) }
}

function withoutServerBytes({ serverBytes: _, ...rest }: BootRow): BootRow {
  return rest
}

function boot(rows: Record<string, BootRow>): BootResults {
  return { accel: 'tcg', accelReason: 'no KVM', image: '/var/tmp/snapmount-guest/debian.raw', cache: 'none', overlay: 'snapshot', runs: 3, rows, notes: [], load: { before: 2, after: 3 } }
}

const rows = {
  local: row('local file (QEMU on the image)', 'floor', 'local', 0, [30, 31, 29]),
  'snapmount-http-10ms': row('snapmount HTTP', 'snapmount', 'http', 10, [40, 41, 42], 90),
  'snapmount-s3-10ms': row('snapmount S3', 'snapmount', 's3', 10, [50, 49, 51], 120),
  'qemu-curl': row("QEMU's curl driver (file.driver=http)", 'peer', 'http', 10, [90, 95, 100], 60),
  httpfs2: { title: 'httpfs2', group: 'peer', proto: 'http', rttMs: 10, runs: [], note: 'failed: no SNAPMOUNT-GUEST-READY within 240000 ms (tcg); QEMU killed' } satisfies BootRow,
  s3fs: { title: 's3fs', group: 'peer', proto: 's3', rttMs: 10, runs: [], note: 's3fs not measured: not installed' } satisfies BootRow,
}

t.test('the boot targets: x local, x best peer, server bytes x guest bytes', async (t) => {
  const targets = evaluateTargets({ boot: boot(rows) } as unknown as BenchResults).filter((target) => target.scope.startsWith('boot'))
  const http = targets.filter((target) => target.scope === 'boot HTTP 10 ms')
  t.same(http.map((target) => target.pass), [true, true, true])
  t.equal(http[0]!.detail, '41.0 s vs 1.5 x 30.0 s')
  t.equal(http[1]!.detail, "41.0 s vs 0.5 x 95.0 s (qemu-curl); not booted: httpfs2")
  t.equal(http[2]!.detail, '90.0 vs 2 x 52.0 MiB (1.731x)')
  const s3 = targets.filter((target) => target.scope === 'boot S3 10 ms')
  t.same(s3.map((target) => target.pass), [false, undefined, false], 'S3: slower than 1.5x local, no peer, too many bytes')
  t.equal(s3[1]!.detail, 'no peer booted; not booted: s3fs')
  t.equal(BOOT_LIMITS.overLocal, 1.5)
})

t.test('the rows with a boot profile get the same three targets, on lines of their own, when they ran', async (t) => {
  const profiled = {
    ...rows,
    'snapmount-http-10ms-profile': row('snapmount HTTP, with profile', 'snapmount', 'http', 10, [33, 31, 32], 66),
  }
  const targets = evaluateTargets({ boot: boot(profiled) } as unknown as BenchResults).filter((target) => target.scope.startsWith('boot'))
  t.same([...new Set(targets.map((target) => target.scope))], ['boot HTTP 10 ms', 'boot HTTP 10 ms, with profile', 'boot S3 10 ms'], 'no S3 profile row, no S3 profile lines')
  const http = targets.filter((target) => target.scope === 'boot HTTP 10 ms, with profile')
  t.same(http.map((target) => target.pass), [true, true, true])
  t.same(http.map((target) => target.detail), ['32.0 s vs 1.5 x 30.0 s', "32.0 s vs 0.5 x 95.0 s (qemu-curl); not booted: httpfs2", '66.0 vs 2 x 52.0 MiB (1.269x)'])
  const slow = evaluateTargets({ boot: boot({ ...profiled, 'snapmount-http-10ms-profile': row('snapmount HTTP, with profile', 'snapmount', 'http', 10, [50, 50, 50], 66) }) } as unknown as BenchResults)
  t.same(slow.filter((target) => target.scope === 'boot HTTP 10 ms, with profile').map((target) => target.pass), [false, false, true], 'a slow profiled boot fails its own lines')
})

t.test('boot targets say what was not measured', async (t) => {
  const noLocal = evaluateTargets({ boot: boot({ 'snapmount-http-10ms': rows['snapmount-http-10ms'], 'snapmount-s3-10ms': withoutServerBytes(rows['snapmount-s3-10ms']) }) } as unknown as BenchResults)
  const details = noLocal.filter((target) => target.scope.startsWith('boot')).map((target) => target.detail)
  t.ok(details.includes('local file not measured'))
  t.ok(details.includes('bytes not known'))
  const none = evaluateTargets({ boot: boot({ local: rows.local }) } as unknown as BenchResults).filter((target) => target.scope.startsWith('boot'))
  t.same(none.map((target) => target.detail), ['snapmount HTTP at 10 ms not measured', 'snapmount S3 at 10 ms not measured'])
  t.notOk(evaluateTargets({} as unknown as BenchResults).some((target) => target.scope.startsWith('boot')), 'no boot part, no boot targets')
})

t.test('the boot table: a row per source, the runs, x local, bytes; notes where not measured', async (t) => {
  const text = bootReport(boot(rows))
  const lines = text.split('\n')
  const cells = (line: string) => line.split('|').slice(1, -1).map((cell) => cell.trim())
  t.same(cells(lines[0]!), ['mount', 'RTT', 'boot s (median)', 'runs s [load]', 'x local', 'guest read MiB (reads)', 'server sent MiB (x guest)'])
  t.same(cells(lines[2]!), ['local file (QEMU on the image)', '0 ms', '30.0', '30.0 [4.0], 31.0 [4.0], 29.0 [4.0]', '1.00', '52.0 (1,426)', '-'])
  t.same(cells(lines[3]!), ['snapmount HTTP', '10 ms', '41.0', '40.0 [4.0], 41.0 [4.0], 42.0 [4.0]', '1.37', '52.0 (1,426)', '90.0 (1.731x)'])
  t.same(cells(lines[6]!), ['httpfs2', '10 ms', 'failed (below)', '', '', '', ''])
  t.same(cells(lines[7]!), ['s3fs', '10 ms', 'not measured (below)', '', '', '', ''])
  const partly = bootReport(boot({ x: { ...rows['qemu-curl'], note: 'failed: hung' } }))
  t.match(partly, /QEMU's curl driver \(file\.driver=http\) \(a run failed, below\)/)
  const section = bootSection({ ...boot(rows), notes: ['snapmount HTTP, 10 ms: booted again, the guest\'s kernel panicked: Kernel panic'], trace: { reads: 2, bytes: 8192, distinctBytes: 4096, sequential: 0, lastMs: 1500, sizes: [{ upTo: 4096, reads: 2, bytes: 8192 }], spread: [8192, 0], imageBytes: 2 * MIB } })
  t.match(section, /^\nBoot: a Debian guest \(debian\.raw\) from QEMU's start to its ready marker, tcg \(no KVM\); cache=none, snapshot=on/)
  t.match(section, /median of 3; 10 ms: servers and their clients in a network namespace delaying every packet; load 2\.00 -> 3\.00\n\n\| mount/)
  t.match(section, /\nhttpfs2, 10 ms: failed: no SNAPMOUNT-GUEST-READY within 240000 ms \(tcg\); QEMU killed\ns3fs, 10 ms: s3fs not measured: not installed\nsnapmount HTTP, 10 ms: booted again, the guest's kernel panicked: Kernel panic\n/)
  t.match(section, /What the guest read \(QEMU's trace of the local file's first boot, until the marker\):\n2 reads, 0\.0 MiB/)
  t.notMatch(bootSection(boot({ local: rows.local })), /What the guest read/, 'no trace, no summary')
  t.match(bootReport(boot({ x: rows['qemu-curl'] })), /\| n\/a +\|/, 'no floor: n/a')
})

t.test("radosgw's log gives the bytes it sent", async (t) => {
  const log = [
    '2026-12-02T08:00:00.000+0000 7f 1 beast: 0x7f: 127.0.0.1 - snap [02/Dec/2026:08:00:00.000 +0000] "GET /snapmount-bench/guest.raw HTTP/1.1" 206 131072 - "aws-sdk-js" bytes=0-131071 latency=0.001s',
    '2026-12-02T08:00:00.000+0000 7f 1 beast: 0x7f: 127.0.0.1 - snap [02/Dec/2026:08:00:00.000 +0000] "HEAD /snapmount-bench/guest.raw HTTP/1.1" 200 0 - "aws-sdk-js" - latency=0.001s',
    '2026-12-02T08:00:00.000+0000 7f 1 beast: 0x7f: 127.0.0.1 - snap [02/Dec/2026:08:00:00.000 +0000] "PUT /snapmount-bench/x HTTP/1.1" 200 0 - "aws-sdk-js" - latency=0.001s',
    '2026-12-02T08:00:00.000+0000 7f 1 ====== req done req=0x7f op status=0 http_status=206 latency=0.001s ======',
  ].join('\n')
  t.equal(bytesSentFromLog(log), 131072)
})

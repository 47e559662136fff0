import t from 'tap'
import { formatDuration, progress } from '../../src/cli/progress.js'
import { formatStatus } from '../../src/cli/status.js'
import type { StatusReport } from '../../src/control/protocol.js'

function stream(isTTY: boolean, columns?: number) {
  const writes: string[] = []
  return { isTTY, columns, writes, write: (text: string) => writes.push(text) }
}

t.test('off a terminal: a plain line every 2 s and one at the end', async (t) => {
  let now = 0
  const out = stream(false)
  const bar = progress(out, 'verify disk', () => now)
  bar.finish() // nothing yet: nothing written
  now = 1000
  bar.update(1024 * 1024, 4 * 1024 * 1024)
  now = 1500
  bar.update(2 * 1024 * 1024, 4 * 1024 * 1024) // within 2 s of the last line
  now = 2000
  bar.update(4 * 1024 * 1024, 4 * 1024 * 1024)
  bar.finish()
  t.same(out.writes, ['verify disk: 25.0% (1.0 MiB / 4.0 MiB) at 1.0 MiB/s, ETA 0:03\n', 'verify disk: 100.0% (4.0 MiB / 4.0 MiB) at 2.0 MiB/s, ETA 0:00\n'])
  const once = stream(false)
  const done = progress(once, 'warm x', () => 0)
  done.update(0, 0)
  done.finish()
  t.same(once.writes, ['warm x: 100.0% (0 bytes / 0 bytes) at 0 bytes/s, ETA ?\n'], 'the final state is not written twice')
})

t.test('on a terminal: a bar redrawn in place, cut to the width, ended with a newline', async (t) => {
  let now = 0
  const out = stream(true, 60)
  const bar = progress(out, 'warm disk', () => now)
  now = 1000
  bar.update(512, 1024)
  now = 1050
  bar.update(600, 1024) // too soon to redraw
  bar.finish()
  t.equal(out.writes.length, 2)
  t.match(out.writes[0], /^\rwarm disk \[#{15}-{15}\] 50\.0% {2}512 bytes/)
  t.ok(out.writes[0]!.length <= 60 + 4, 'fits the terminal')
  t.match(out.writes[1], /\n$/)
  const wide = stream(true)
  progress(wide, 'w', () => 1).update(1, 2)
  t.match(wide.writes[0], /ETA 0:01/)
})

t.test('durations', async (t) => {
  t.equal(formatDuration(Infinity), '?')
  t.equal(formatDuration(75), '1:15')
  t.equal(formatDuration(3725), '1:02:05')
})

t.test('status for people', async (t) => {
  const recent = { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null }
  const report: StatusReport = {
    pid: 7,
    mountpoint: '/mnt/snap',
    startedAt: '',
    uptimeSeconds: 59,
    metricsUrl: 'http://127.0.0.1:9464/metrics',
    cache: { hits: 3, misses: 1, evictions: 2, bytesInUse: 2048, bytesReserved: 0, capacityBytes: 1 << 30, fetches: 1, fetchedBytes: 1, readaheadBytes: 0 } as never,
    diskCache: null,
    snapshots: [
      { name: 'a.img', type: 'http', size: 1 << 30, source: 'https://h/a.img', reads: 4, bytes: 4096, errors: 1, inFlight: 0, recent: { ...recent, count: 4, p50Ms: 1.5, p99Ms: 25, maxMs: 25 }, cachedBytes: 3 << 20, diskBytes: 5 << 20 },
      { name: 'b', type: 'file', size: 10, source: null, reads: 0, bytes: 0, errors: 0, inFlight: 0, recent, cachedBytes: null, diskBytes: null },
    ],
  }
  const text = formatStatus(report)
  t.match(text, /^\/mnt\/snap: pid 7, up 59s, 2 snapshot\(s\)\nmetrics: http:\/\/127\.0\.0\.1:9464\/metrics\ncache: 2\.0 KiB of 1\.0 GiB in use, 75\.0 % hits, 2 evictions\n\nNAME /)
  t.match(text, /^a\.img +http +1\.0 GiB +3\.0 MiB +4 +4\.0 KiB +1 +0 +1\.50 ms \/ 25 ms \(4 reads\) +https:\/\/h\/a\.img$/m)
  t.match(text, /^b +file +10 bytes +- +0 +0 bytes +0 +0 +no reads$/m)
  const quiet = formatStatus({ ...report, metricsUrl: null, cache: { ...report.cache!, hits: 0, misses: 0 }, uptimeSeconds: 3 * 86400 + 7200 })
  t.match(quiet, /up 3d 2h/)
  t.match(quiet, /no lookups yet/)
  t.notMatch(quiet, /metrics:/)
  t.match(formatStatus({ ...report, cache: null, uptimeSeconds: 3700 }), /up 1h 1m[^]*cache: none/)
  t.match(formatStatus({ ...report, cache: null, uptimeSeconds: 61 }), /up 1m 1s/)
  t.notMatch(text, /disk cache|ON DISK/, 'no disk cache: no line, no column')
  t.notMatch(text, /prefetch/, 'no boot profile: no prefetch line')
})

t.test('status for people, with a boot profile: a line per snapshot that has one', async (t) => {
  const recent = { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null }
  const row = { type: 'http', size: 1 << 30, source: 'https://h/a.img', reads: 0, bytes: 0, errors: 0, inFlight: 0, recent, cachedBytes: 0, diskBytes: null }
  const done = { state: 'done' as const, profile: '/p/a.json', profileBytes: 60 << 20, prefetchedBytes: 40 << 20, hitBlocks: 300, hitBytes: 30 << 20, wastedBytes: 10 << 20, evictedBytes: 1 << 20, ageSeconds: 7260.4, failures: 0 }
  const daemon = { pid: 7, mountpoint: '/mnt/snap', startedAt: '', uptimeSeconds: 59, metricsUrl: null, cache: null, diskCache: null }
  const report: StatusReport = {
    ...daemon,
    snapshots: [
      { name: 'a.img', ...row, prefetch: done },
      { name: 'b.img', ...row, prefetch: { ...done, state: 'stopped', prefetchedBytes: 0, hitBlocks: 0, hitBytes: 0, wastedBytes: 0, evictedBytes: 0, failures: 8 } },
      { name: 'c.img', ...row, prefetch: { ...done, state: 'loading', ageSeconds: null } },
      { name: 'd.img', ...row, prefetch: { ...done, state: 'unused', ageSeconds: null } },
      { name: 'e.img', ...row },
    ],
  }
  const text = formatStatus(report)
  t.match(text, /\n\na\.img: prefetch done: 40\.0 MiB of the profile's 60\.0 MiB prefetched \(75\.0 % read since\), 300 blocks hit, 10\.0 MiB wasted \(1\.0 MiB evicted unread\); profile \/p\/a\.json, recorded 2h 1m ago\n/)
  t.match(text, /\nb\.img: prefetch stopped: 0 bytes of the profile's 60\.0 MiB prefetched, 0 blocks hit, 0 bytes wasted \(0 bytes evicted unread\), 8 failed; profile \/p\/a\.json, recorded 2h 1m ago\n/)
  t.match(text, /\nc\.img: prefetch loading, profile \/p\/a\.json\n/)
  t.match(text, /\nd\.img: prefetch unused \(no profile yet, or not fit to use: see the log\), profile \/p\/a\.json\n/)
  t.notMatch(text, /e\.img: /)
})

t.test('status for people, with a disk cache: its line, and the bytes on disk per snapshot', async (t) => {
  const recent = { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null }
  const diskCache = { hits: 9, misses: 1, verifyFailures: 2, evictions: 4, bytesInUse: 5 << 20, capacityBytes: 10 * 2 ** 30, writes: 3, bytesWritten: 3, writeErrors: 1, writesSkipped: 0 }
  const report: StatusReport = {
    pid: 7,
    mountpoint: '/mnt/snap',
    startedAt: '',
    uptimeSeconds: 59,
    metricsUrl: null,
    cache: null,
    diskCache,
    snapshots: [
      { name: 'a.img', type: 'http', size: 1 << 30, source: 'https://h/a.img', reads: 0, bytes: 0, errors: 0, inFlight: 0, recent, cachedBytes: 3 << 20, diskBytes: 5 << 20 },
      { name: 'b', type: 'file', size: 10, source: null, reads: 0, bytes: 0, errors: 0, inFlight: 0, recent, cachedBytes: null, diskBytes: null },
    ],
  }
  const text = formatStatus(report)
  t.match(text, /\ndisk cache: 5\.0 MiB of 10\.0 GiB on disk, 90\.0 % hits, 4 evictions, 2 blocks failed their check, 1 write errors\n/)
  t.match(text, /^NAME +TYPE +SIZE +CACHED +ON DISK +READS /m)
  t.match(text, /^a\.img +http +1\.0 GiB +3\.0 MiB +5\.0 MiB +0 /m)
  t.match(text, /^b +file +10 bytes +- +- +0 /m)
  t.match(formatStatus({ ...report, diskCache: { ...diskCache, hits: 0, misses: 0 } }), /disk cache: .* no lookups yet/)
})

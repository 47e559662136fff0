import t from 'tap'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { ddRange, readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes, sha256 } from '../fixtures/test-data.js'
import { METRICS } from '../../src/metrics/names.js'
import type { StatusReport } from '../../src/control/protocol.js'

/**
 * The operator's view of a running daemon, as a user gets it: JSON logs, the metrics endpoint,
 * `snapmount status`, `warm` and `verify`, against one daemon serving an HTTP snapshot (with a
 * token in a header and a signature in the URL's query) and a local file. Neither secret may
 * show in the log, the metrics or the status.
 */

const KiB = 1024
const SIZE = 3 * 1024 * KiB + 12_345
const REMOTE = seededBytes(6_000_606, SIZE)
const LOCAL = seededBytes(6_000_607, 1024 * KiB)
const TOKEN = 'Bearer tok-9d41c6e0a7'
const SIGNATURE = 'sig-QUERY-5b2e77'
const MAX_ATTEMPTS = 3

t.test('logs, metrics, status, warm and verify of a running daemon', async (t) => {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, REMOTE)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const local = join(dir, 'local.img')
  await writeFile(local, LOCAL)
  const socket = join(dir, 'run', 'control.sock')
  const config = join(dir, 'snapmount.json')
  await writeFile(
    config,
    JSON.stringify({
      mountpoint,
      options: { read_timeout_ms: 4000, metrics: { listen: '127.0.0.1:0' }, control_socket: socket },
      snapshots: [
        {
          type: 'http',
          name: 'remote.img',
          url: `${server.url()}?X-Signature=${SIGNATURE}`,
          headers: { Authorization: { env: 'SNAP_OBS_TOKEN' } },
          max_attempts: MAX_ATTEMPTS,
          read_deadline_ms: 3000,
          headers_timeout_ms: 500,
        },
        { type: 'file', name: 'local.img', path: local },
      ],
    }),
  )
  const daemon = await startDaemon(t, mountpoint, ['--config', config], { SNAPMOUNT_LOG_FORMAT: 'json', SNAP_OBS_TOKEN: TOKEN })

  t.test('the control socket is its owner\'s alone', async (t) => {
    t.equal((await stat(socket)).mode & 0o777, 0o600)
    t.equal((await stat(dirname(socket))).mode & 0o777, 0o700)
  })

  // A read that fails: every attempt answered 503, so the retry loop gives up and the reader gets EIO.
  server.plan(...Array.from({ length: 20 }, () => ({ kind: 'status' as const, status: 503 })))
  await t.rejects(ddRange(join(mountpoint, 'remote.img'), 256 * KiB, 4 * KiB, { direct: true }), 'the failed read fails')
  server.unplan() // the faults the failed read's retries did not take
  t.ok((await readRange(join(mountpoint, 'remote.img'), 0, SIZE)).equals(REMOTE), 'the remote snapshot reads back')
  t.ok((await readRange(join(mountpoint, 'local.img'), 0, LOCAL.length)).equals(LOCAL), 'the local snapshot reads back')

  const status = await runCli(['status', '--socket', socket, '--json'])
  t.equal(status.code, 0, status.stderr)
  const report = JSON.parse(status.stdout) as StatusReport
  t.equal(report.mountpoint, mountpoint)
  t.same(
    report.snapshots.map(({ name, type, size }) => ({ name, type, size })),
    [
      { name: 'remote.img', type: 'http', size: SIZE },
      { name: 'local.img', type: 'file', size: LOCAL.length },
    ],
    'status --json lists what is mounted',
  )
  const remote = report.snapshots[0]!
  t.ok(remote.errors >= 1, 'the failed read is counted')
  t.ok(remote.reads > remote.errors && remote.recent.count > 0 && remote.recent.p50Ms !== null, 'with recent latency')
  t.not(report.metricsUrl, null, 'status names the metrics endpoint')
  t.ok(remote.cachedBytes! > 0, `the remote snapshot has ${remote.cachedBytes} bytes in the block cache`)
  t.equal(report.snapshots[1]!.cachedBytes, null, 'a local snapshot has no cache of ours')
  t.ok(report.cache && report.cache.bytesInUse >= remote.cachedBytes!, 'the cache totals include it')

  const byConfig = await runCli(['status', '--config', config, '--json'])
  t.equal(byConfig.code, 0, byConfig.stderr)
  t.equal((JSON.parse(byConfig.stdout) as StatusReport).mountpoint, mountpoint, "--config finds the daemon by the config's control_socket")

  const text = await runCli(['status', '--socket', socket])
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, /^remote\.img\s+http\s+3\.0 MiB/m, 'status for people: one row per snapshot')

  const metrics = await (await fetch(report.metricsUrl!)).text()
  // Not the caches' (shared, below), nor the series only snapshots with a manifest, mirrors or a
  // boot profile have (test/integration/manifest-serving.ts, mirrors.ts, test/metrics/metrics.ts).
  for (const { name } of Object.values(METRICS).filter(({ name }) => !/^snapmount_((disk_)?cache|manifest|mirror|prefetch)_/.test(name))) {
    t.match(metrics, new RegExp(`^${name}(_bucket)?\\{[^}]*snapshot="remote\\.img"`, 'm'), `${name} for remote.img`)
  }
  // The cache's series are there when the daemon has a block cache (status says so), and only then.
  for (const { name } of Object.values(METRICS).filter(({ name }) => name.startsWith('snapmount_cache_'))) {
    if (report.cache) t.match(metrics, new RegExp(`^${name} \\d+`, 'm'), `${name}`)
    else t.notMatch(metrics, new RegExp(`^${name} `, 'm'), `no ${name} without a cache`)
  }
  // The disk cache's series only with a disk cache (test/integration/disk-cache.ts has them).
  t.notMatch(metrics, /^snapmount_disk_cache_/m, 'no disk cache series without cache_dir')
  t.match(metrics, /^snapmount_backend_retries_total\{snapshot="remote\.img"\} [1-9]/m, 'retries were counted')
  t.match(metrics, /^snapmount_read_errors_total\{snapshot="remote\.img"\} [1-9]/m, 'the failed read was counted')

  t.test('verify succeeds on the right digest and fails on a wrong one', async (t) => {
    const right = await runCli(['verify', 'remote.img', '--socket', socket, '--sha256', sha256(REMOTE)])
    t.equal(right.code, 0, right.stderr)
    t.equal(right.stdout, `${sha256(REMOTE)}  remote.img\n`)
    t.match(right.stderr, /verify remote\.img: 100\.0% \(3\.0 MiB \/ 3\.0 MiB\)/, 'plain progress lines off a terminal')
    const wrong = await runCli(['verify', 'local.img', '--socket', socket, '--sha256', sha256(REMOTE)])
    t.equal(wrong.code, 1)
    t.match(wrong.stderr, /local\.img: SHA-256 mismatch: got [0-9a-f]{64}, expected/)
    const unknown = await runCli(['verify', 'nope.img', '--socket', socket, '--sha256', sha256(REMOTE)])
    t.equal(unknown.code, 2)
    t.match(unknown.stderr, /no snapshot named "nope\.img" is mounted; use one of: remote\.img, local\.img/)
  })

  t.test('warm reads a range through the daemon', async (t) => {
    const warm = await runCli(['warm', 'remote.img', '--socket', socket, '--offset', '4096', '--length', String(2 * 1024 * KiB)])
    t.equal(warm.code, 0, warm.stderr)
    t.match(warm.stdout, /^warmed remote\.img: 2\.0 MiB from offset 4096/)
  })

  t.test('no secret in the log, the metrics or the status; every log line is JSON', async (t) => {
    await daemon.stop()
    const log = daemon.stderr()
    for (const [where, output] of [['log', log], ['metrics', metrics], ['status', status.stdout + text.stdout]] as const) {
      t.notMatch(output, 'tok-9d41c6e0a7', `no token in the ${where}`)
      t.notMatch(output, SIGNATURE, `no signature in the ${where}`)
    }
    const lines = log.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    t.ok(lines.every((line) => typeof line.time === 'string' && typeof line.level === 'string' && typeof line.msg === 'string'))
    const failed = lines.find((line) => line.level === 'error' && String(line.msg).startsWith('read /remote.img'))
    t.match(failed, { snapshot: 'remote.img', offset: 256 * KiB, length: 4 * KiB, errno: 5, cause: /503/, attempts: MAX_ATTEMPTS }, 'the failed read, in fields')
  })
})

t.test('status and warm without a daemon to ask: one line, exit 1; a config that does not load: exit 2', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'none.sock')
  const status = await runCli(['status', '--socket', socket])
  t.equal(status.code, 1, status.stderr)
  t.equal(status.stdout, '')
  t.match(status.stderr, new RegExp(`^snapmount error: no snapmount daemon answers on ${socket} \\(ENOENT\\); is it running, and for this mountpoint\\? code=E_CONTROL_UNAVAILABLE\n$`), 'one line, with its code')
  const warm = await runCli(['warm', 'base.img', '--socket', socket])
  t.equal(warm.code, 1, warm.stderr)
  t.equal(warm.stdout, '')
  t.match(warm.stderr, /snapmount error: no snapmount daemon answers on .*\(ENOENT\)/)
  const missing = await runCli(['status', '--config', join(dir, 'missing.yaml')])
  t.equal(missing.code, 2, missing.stderr)
  t.match(missing.stderr, /^snapmount error: .*missing\.yaml/)
})

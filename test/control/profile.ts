import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serveControl } from '../../src/control/server.js'
import { controlRequest } from '../../src/control/client.js'
import { controlHandler } from '../../src/control/handlers.js'
import type { ProfileWritten, StatusReport } from '../../src/control/protocol.js'
import type { StorageBackend } from '../../src/backend/storage-backend.js'
import { MeteredBackend } from '../../src/metrics/metered-backend.js'
import { ProfileRecordingBackend } from '../../src/profile/recording-backend.js'
import { parseProfile } from '../../src/profile/format.js'
import { formatStatus } from '../../src/cli/status.js'
import { describeWritten } from '../../src/cli/profile.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { tempDir } from '../fixtures/temp-dir.js'

const quiet = { info: () => {}, warn: () => {}, error: () => {} }
const BLOCK = 4096
const image = Buffer.alloc(16 * BLOCK, 1)

async function setUp(t: Test, snapshots: Array<{ name: string; backend: StorageBackend }>, waiting: string[] = []) {
  const dir = await tempDir(t)
  const path = join(dir, 'ctl.sock')
  const state = { snapshots: () => snapshots, waiting: () => waiting, mountpoint: '/mnt/x', startedAt: new Date(), metricsUrl: null }
  const server = await serveControl(path, controlHandler(state), quiet)
  t.teardown(() => server.close())
  return { path, dir }
}

t.test('profile record and stop over the socket; status shows the recording', async (t) => {
  const recording = new ProfileRecordingBackend(new MeteredBackend(new MemoryBackend(image), 'http'), { name: 'disk', identity: { bytes: image.length, validator: '"e1"' }, blockBytes: BLOCK, logger: quiet })
  t.teardown(() => recording.close())
  const { path, dir } = await setUp(t, [{ name: 'disk', backend: recording }, { name: 'local', backend: new MeteredBackend(new MemoryBackend(image), 'file') }, { name: 'bare', backend: new MemoryBackend(image) }], ['later'])
  const output = join(dir, 'disk.profile.json')

  t.same(await controlRequest(path, { op: 'profile-record', name: 'disk', output }), { name: 'disk', path: output })
  await recording.readExact(3 * BLOCK, 2 * BLOCK)
  const report = (await controlRequest(path, { op: 'status' })) as StatusReport
  t.match(report.snapshots[0], { name: 'disk', reads: 1, profileRecording: { path: output, automatic: false, blocks: 2, runs: 1, bytes: 2 * BLOCK, full: false } })
  t.notOk('profileRecording' in report.snapshots[1]!, 'none where nothing is recorded')
  t.match(formatStatus(report), new RegExp(`\\ndisk: recording a boot profile \\(by request\\) to ${output}: 2 blocks, 8\\.0 KiB so far\\n`))
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'disk', output }), { code: 'E_PROFILE_RECORDING', fix: 'stop that first: snapmount profile stop disk' })

  const written = (await controlRequest(path, { op: 'profile-stop', name: 'disk' })) as ProfileWritten
  t.match(written, { name: 'disk', path: output, runs: 1, blocks: 2, bytes: 2 * BLOCK, full: false })
  t.same(parseProfile(await readFile(output, 'utf8'), output).runs, [{ firstBlock: 3, blockCount: 2, atMs: 0 }])
  t.equal(describeWritten(written), `wrote disk's boot profile to ${output}: 1 runs, 2 blocks, 8.0 KiB, read over 0.0 s\n`)
  t.match(describeWritten({ ...written, full: true }), /\(it reached its bound: the reads after it are not in it\)/)
  await t.rejects(controlRequest(path, { op: 'profile-stop', name: 'disk' }), { code: 'E_PROFILE_NOT_RECORDING' })

  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'local' }), { code: 'E_PROFILE_NOT_REMOTE', message: /local is a file snapshot, not an http or s3 one: boot profiles are for remote snapshots/ })
  await t.rejects(controlRequest(path, { op: 'profile-stop', name: 'bare' }), { code: 'E_PROFILE_NOT_REMOTE', message: /bare is a local snapshot, not an http or s3 one/ })
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'nope' }), { code: 'E_UNKNOWN_SNAPSHOT' })
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'later' }), { code: 'E_SNAPSHOT_WAITING', message: 'later is listed but not open yet: its source has not answered (lazy: true)' }, 'a lazy snapshot still waiting says so, not "no snapshot named"')
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'disk', output: 'relative.json' }), { code: 'E_BAD_REQUEST', message: '"relative.json" is not an absolute path' })
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'disk', output: 5 as never }), { code: 'E_BAD_REQUEST' })
  await t.rejects(controlRequest(path, { op: 'profile-record', name: 'disk' }), { code: 'E_PROFILE_NO_OUTPUT' })
})

t.test('status for people: an automatic recording, at its bound', async (t) => {
  const recent = { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null }
  const snapshot = { name: 'a', type: 'http', size: 10, source: null, reads: 0, bytes: 0, errors: 0, inFlight: 0, recent, cachedBytes: 0, diskBytes: null }
  const profileRecording = { path: '/p.json', automatic: true, blocks: 3, runs: 1, bytes: 3 << 20, spanMs: 5, full: true }
  const text = formatStatus({ pid: 1, mountpoint: '/m', startedAt: '', uptimeSeconds: 1, metricsUrl: null, cache: null, diskCache: null, snapshots: [{ ...snapshot, profileRecording }] })
  t.match(text, /\na: recording a boot profile \(automatically\) to \/p\.json: 3 blocks, 3\.0 MiB so far, at its bound\n$/)
})

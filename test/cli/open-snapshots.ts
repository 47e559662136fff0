import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SnapshotSpec } from '../../src/config/config.js'
import { validateConfig } from '../../src/config/validate-config.js'
import { closeSnapshots, openForServing } from '../../src/cli/open-snapshots.js'
import type { PendingSnapshot, Snapshot } from '../../src/fuse/snapshot-fs.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

/**
 * What a reload abandoned by a stop leaves to close: opened backends, and lazy snapshots still
 * retrying their sources, one of them caught in the middle of an attempt that succeeds.
 */
const BYTES = seededBytes(16, 100_000)

function specs(baseDir: string, snapshots: unknown[]): SnapshotSpec[] {
  return validateConfig({ mountpoint: '/mnt', snapshots }, { origin: 'test', baseDir, defaults: mountOptions() }).snapshots
}

function collectingLogger() {
  const lines: string[] = []
  return { lines, logger: { info: (m: string) => lines.push(`info: ${m}`), warn: (m: string) => lines.push(`warn: ${m}`), error: (m: string) => lines.push(`error: ${m}`) } }
}

const pendingIn = (opened: Array<Snapshot | PendingSnapshot>, name: string) => opened.find((snapshot) => snapshot.name === name) as PendingSnapshot

t.test('closeSnapshots closes the backends and stops the retries of lazy snapshots', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'disk.raw'), BYTES)
  const { logger } = collectingLogger()
  const opened = await openForServing(specs(dir, [{ name: 'disk', type: 'file', path: 'disk.raw' }, { name: 'late', type: 'file', path: 'missing.raw', lazy: true }]), { env: {}, logger })
  const disk = (opened[0] as Snapshot).backend
  t.ok((await disk.readExact(0, 10)).equals(BYTES.subarray(0, 10)), 'open and readable')
  await closeSnapshots(opened)
  await t.rejects(disk.readExact(0, 10), { code: 'E_CLOSED' }, 'the backend is closed')
  await t.rejects(pendingIn(opened, 'late').ready, { name: 'AbortError' }, 'the lazy one retries no more')
})

t.test('a lazy snapshot cancelled while an attempt is under way hands out nothing, even if the attempt succeeds', async (t) => {
  const server = await startFaultServer(t, BYTES)
  // The first attempt is refused; the second (after 1 s) is answered, slowly.
  server.plan({ kind: 'status', status: 404, method: 'HEAD' }, { kind: 'slow-headers', ms: 300, method: 'HEAD' })
  const { lines, logger } = collectingLogger()
  const opened = await openForServing(specs('/', [{ name: 'web', type: 'http', url: server.url(), lazy: true }]), { env: {}, logger })
  const web = pendingIn(opened, 'web')
  while (server.requests.filter(({ method }) => method === 'HEAD').length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
  const closing = closeSnapshots(opened)
  await t.rejects(web.ready, { name: 'AbortError' }, 'ready rejects: the backend the attempt opened is closed, not handed out')
  await closing
  t.ok(server.requests.some(({ method, headers }) => method === 'GET' && headers.range === 'bytes=0-0'), 'the attempt did open the source')
  t.notMatch(lines.join('\n'), /now readable/, 'and it is not said to be readable')
})

import t from 'tap'
import type { Test } from 'tap'
import { createServer } from 'node:net'
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serveControl } from '../../src/control/server.js'
import { controlRequest } from '../../src/control/client.js'
import { CHUNK_BYTES, controlHandler } from '../../src/control/handlers.js'
import { escapePath, runtimeDir, socketPathFor } from '../../src/control/socket-path.js'
import { MeteredBackend } from '../../src/metrics/metered-backend.js'
import type { StatusReport, VerifyResult, WarmResult } from '../../src/control/protocol.js'
import type { StorageBackend } from '../../src/backend/storage-backend.js'
import { MemoryBackend, HeldBackend } from '../fixtures/memory-backend.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes, sha256 } from '../fixtures/test-data.js'
import { createConnection } from 'node:net'
import { execFile } from 'node:child_process'
import { SNAPMOUNT } from '../fixtures/daemon.js'

const quiet = { info: () => {}, warn: () => {}, error: () => {} }
const BYTES = seededBytes(77, 2.5 * 1024 * 1024 + 3)

async function setUp(t: Test, snapshots: Array<{ name: string; backend: StorageBackend }>) {
  const dir = await tempDir(t)
  const path = join(dir, 'sub', 'ctl.sock')
  let clock = 1_000_000
  const state = { snapshots: () => snapshots, mountpoint: '/mnt/x', startedAt: new Date(clock - 90_000), metricsUrl: null }
  const server = await serveControl(path, controlHandler(state, () => (clock += 50)), quiet)
  t.teardown(() => server.close())
  return { path, server, dir }
}

/** Sends raw text and collects every line the daemon answers until it closes. */
function raw(path: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection(path)
    let answer = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
    socket.on('close', () => resolve(answer))
    socket.on('connect', () => socket.write(text))
  })
}

t.test('socket paths: systemd-escaped mountpoints in the runtime folder', async (t) => {
  t.equal(escapePath('/mnt/snap'), 'mnt-snap')
  t.equal(escapePath('/'), '-')
  t.equal(escapePath('//srv/.vm/a b-c/'), 'srv-.vm-a\\x20b\\x2dc')
  t.equal(escapePath('/.hidden'), '\\x2ehidden')
  t.equal(socketPathFor('/mnt/snap', '/run/snapmount'), '/run/snapmount/mnt-snap.sock')
  t.match(socketPathFor(`/${'x'.repeat(200)}`, '/run/snapmount'), /^\/run\/snapmount\/mount-[0-9a-f]{16}\.sock$/)
  t.equal(runtimeDir(0, {}), '/run/snapmount')
  t.equal(runtimeDir(1000, { XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/snapmount')
  t.equal(runtimeDir(1000, {}), '/tmp/snapmount-1000')
})

t.test('status, warm and verify over the socket', async (t) => {
  const metered = new MeteredBackend(new MemoryBackend(BYTES), 'file')
  await metered.readExact(0, 10)
  const plain = new MemoryBackend(Buffer.alloc(5))
  const mirror = { source: 'http://a/d.img', state: 'failing' as const, latencyMs: null, errorRate: 1, requests: 0, errors: 2, hedgesLost: 0, badBlocks: 0 }
  const prefetch = { state: 'done' as const, profile: '/p.json', profileBytes: 4, prefetchedBytes: 4, hitBlocks: 1, hitBytes: 2, wastedBytes: 2, evictedBytes: 0, ageSeconds: 5, failures: 0 }
  const mirrored = Object.assign(new MemoryBackend(Buffer.alloc(3)), { inspect: () => ({ mirrors: [mirror], prefetch }) })
  const { path, dir } = await setUp(t, [
    { name: 'disk', backend: metered },
    { name: 'plain', backend: plain },
    { name: 'mirrored', backend: mirrored },
  ])
  t.equal((await stat(path)).mode & 0o777, 0o600, 'socket 0600')
  t.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700, 'a folder it creates is 0700')

  const report = (await controlRequest(path, { op: 'status' })) as StatusReport
  t.match(report, { mountpoint: '/mnt/x', uptimeSeconds: 90, cache: null, metricsUrl: null, pid: process.pid })
  t.match(report.snapshots, [
    { name: 'disk', type: 'file', size: BYTES.length, source: null, reads: 1, bytes: 10, errors: 0 },
    { name: 'plain', type: 'unknown', size: 5, reads: 0, recent: { count: 0 } },
    { name: 'mirrored', mirrors: [mirror], prefetch },
  ])
  t.notOk('mirrors' in report.snapshots[0]!, 'no mirrors field for a snapshot with one source')
  t.notOk('prefetch' in report.snapshots[0]!, 'no prefetch field for a snapshot with no boot profile')

  const progress: Array<[number, number]> = []
  const verified = (await controlRequest(path, { op: 'verify', name: 'disk', sha256: sha256(BYTES).toUpperCase() }, (done, total) => progress.push([done, total]))) as VerifyResult
  t.match(verified, { name: 'disk', bytes: BYTES.length, sha256: sha256(BYTES), match: true })
  t.same(progress.at(-1), [BYTES.length, BYTES.length], 'progress ends at the total')
  t.ok(progress.length >= 2 && progress.length <= 4, 'and is throttled')
  t.equal(metered.stats().reads, 1, 'verify reads below the metering layer')
  const wrong = (await controlRequest(path, { op: 'verify', name: 'plain', sha256: sha256(BYTES) })) as VerifyResult
  t.equal(wrong.match, false)

  const warmed = (await controlRequest(path, { op: 'warm', name: 'disk', offset: 100, length: 1000 })) as WarmResult
  t.match(warmed, { name: 'disk', offset: 100, length: 1000 })
  t.match(await controlRequest(path, { op: 'warm', name: 'disk' }), { offset: 0, length: BYTES.length }, 'the whole snapshot by default')
  t.match(await controlRequest(path, { op: 'warm', name: 'disk', offset: BYTES.length }), { length: 0 }, 'an empty range at the end')
})

t.test('refusals come back as errors with a code and a fix', async (t) => {
  const { path } = await setUp(t, [{ name: 'disk', backend: new MemoryBackend(BYTES) }])
  await t.rejects(controlRequest(path, { op: 'warm', name: 'nope' }), { code: 'E_UNKNOWN_SNAPSHOT', fix: 'use one of: disk' })
  await t.rejects(controlRequest(path, { op: 'warm', name: 'disk', offset: BYTES.length, length: 1 }), { code: 'E_BAD_REQUEST', message: /is not inside disk/ })
  await t.rejects(controlRequest(path, { op: 'warm', name: 'disk', offset: -1 }), { code: 'E_BAD_REQUEST' })
  await t.rejects(controlRequest(path, { op: 'verify', name: 'disk', sha256: 'abc' }), { code: 'E_BAD_REQUEST', fix: /64 hexadecimal digits/ })
  await t.rejects(controlRequest(path, { op: 'verify', name: 'disk', sha256: 42 as never }), { code: 'E_BAD_REQUEST' })
  const { path: empty } = await setUp(t, [])
  await t.rejects(controlRequest(empty, { op: 'verify', name: 'disk', sha256: sha256(BYTES) }), { code: 'E_UNKNOWN_SNAPSHOT', fix: 'use one of: (none)' }, 'a daemon serving nothing says so')
  t.match(JSON.parse(await raw(path, 'not json\n')), { type: 'error', code: 'E_BAD_REQUEST' })
  t.match(JSON.parse(await raw(path, '{"op":"reboot"}\n')), { type: 'error', code: 'E_BAD_REQUEST' })
  t.match(JSON.parse(await raw(path, 'null\n')), { type: 'error', code: 'E_BAD_REQUEST' })
  t.match(JSON.parse(await raw(path, 'x'.repeat(70 * 1024))), { type: 'error', code: 'E_BAD_REQUEST', message: /longer than/ })
})

t.test('a snapshot of many chunks: read in order, a bounded number at a time, each byte once', async (t) => {
  const bytes = seededBytes(78, 11 * CHUNK_BYTES + 5)
  const memory = new MemoryBackend(bytes)
  const reads: number[] = []
  let inFlight = 0
  let mostInFlight = 0
  const counting: StorageBackend = {
    length: bytes.length,
    mtime: memory.mtime,
    async readExact(offset, length) {
      reads.push(offset)
      mostInFlight = Math.max(mostInFlight, ++inFlight)
      await new Promise((resolve) => setImmediate(resolve))
      inFlight--
      return memory.readExact(offset, length)
    },
    close: async () => {},
  }
  const { path } = await setUp(t, [{ name: 'big', backend: counting }])
  const verified = (await controlRequest(path, { op: 'verify', name: 'big', sha256: sha256(bytes) })) as VerifyResult
  t.match(verified, { bytes: bytes.length, match: true }, 'the digest of every chunk, in order')
  t.same(reads, Array.from({ length: 12 }, (_, index) => index * CHUNK_BYTES), 'each chunk read once, in order')
  t.equal(mostInFlight, 8, 'at most 8 reads outstanding, and the pipeline is kept full')
  reads.length = 0
  t.match(await controlRequest(path, { op: 'warm', name: 'big', offset: 5, length: 10 * CHUNK_BYTES }), { length: 10 * CHUNK_BYTES })
  t.same(reads, Array.from({ length: 10 }, (_, index) => 5 + index * CHUNK_BYTES), 'a range: chunks from its offset')
})

t.test('a failed read fails the request; a client that leaves cancels it', async (t) => {
  const failing: StorageBackend = { length: 10, mtime: new Date(0), readExact: async () => Promise.reject(new Error('disk on fire')), close: async () => {} }
  const held = new HeldBackend(4 * 1024 * 1024)
  const { path, server } = await setUp(t, [
    { name: 'bad', backend: failing },
    { name: 'held', backend: held },
  ])
  await t.rejects(controlRequest(path, { op: 'warm', name: 'bad' }), { code: 'E_FAILED', message: 'disk on fire' })
  const socket = createConnection(path)
  socket.write('{"op":"verify","name":"held","sha256":"' + '0'.repeat(64) + '"}\n')
  await held.arrived()
  socket.destroy()
  await held.aborted() // the server saw the client leave and cancelled its reads
  held.release(1) // the reads answer; the request, cancelled, sends nothing more
  const stopping = controlRequest(path, { op: 'warm', name: 'held' })
  await held.arrived()
  await server.close()
  await t.rejects(stopping, { code: 'E_CONTROL_UNAVAILABLE', message: /closed the connection without an answer/ })
  held.release(1)
})

t.test('the socket path: stale sockets replaced, live ones and other files refused', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'ctl.sock')
  const squatter = createServer()
  await new Promise<void>((resolve) => squatter.listen(path, resolve))
  const handler = controlHandler({ snapshots: () => [], mountpoint: '/m', startedAt: new Date(), metricsUrl: null })
  await t.rejects(serveControl(path, handler, quiet), { code: 'E_CONTROL_SOCKET_IN_USE', message: /another snapmount daemon answers/ })
  // A socket whose daemon died: the file stays, nothing listens.
  await new Promise<void>((resolve) => squatter.close(() => resolve()))
  const stale = createServer()
  await new Promise<void>((resolve) => stale.listen(join(dir, 'stale.sock'), resolve))
  ;(stale as unknown as { _handle: { close(): void } | null })._handle?.close() // leaves the file behind
  const replaced = await serveControl(join(dir, 'stale.sock'), handler, quiet)
  t.match(await controlRequest(replaced.path, { op: 'status' }), { mountpoint: '/m' }, 'a stale socket is replaced')
  await replaced.close()
  await writeFile(join(dir, 'file.sock'), '')
  await t.rejects(serveControl(join(dir, 'file.sock'), handler, quiet), { code: 'E_CONTROL_SOCKET_IN_USE', message: /is not a socket/ })
})

t.test('the client says why it cannot reach a daemon', async (t) => {
  const dir = await tempDir(t)
  await t.rejects(controlRequest(join(dir, 'none.sock'), { op: 'status' }), { code: 'E_CONTROL_UNAVAILABLE', message: /no snapmount daemon answers on .* \(ENOENT\)/ })
  await mkdir(join(dir, 'locked'))
  const locked = createServer()
  await new Promise<void>((resolve) => locked.listen(join(dir, 'locked', 'ctl.sock'), resolve))
  t.teardown(() => locked.close())
  await chmod(join(dir, 'locked', 'ctl.sock'), 0o000)
  const asRoot = process.getuid?.() === 0
  const denied = controlRequest(join(dir, 'locked', 'ctl.sock'), { op: 'status' })
  if (asRoot) {
    locked.once('connection', (socket) => socket.destroy())
    await t.rejects(denied, { code: 'E_CONTROL_UNAVAILABLE' }, 'root is never denied; a dropped connection is reported')
    // Root without CAP_DAC_OVERRIDE is held to the socket's 0000 mode like its owner: the client
    // runs in a child whose capability bounding set lacks it (setpriv, before exec).
    const setpriv = ['--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search']
    const child = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile('setpriv', [...setpriv, SNAPMOUNT, 'status', '--socket', join(dir, 'locked', 'ctl.sock')], { timeout: 20_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
      ),
    )
    t.equal(child.code, 1, 'status without the capability: exit 1')
    t.match(child.stderr, /no permission to use .*locked\/ctl\.sock; run as the daemon's user/, child.stderr)
  } else {
    await t.rejects(denied, { message: /no permission/ })
  }
  await writeFile(join(dir, 'plain'), '')
  await t.rejects(controlRequest(join(dir, 'plain', 'ctl.sock'), { op: 'status' }), { code: 'E_CONTROL_UNAVAILABLE', message: /cannot talk to the daemon.*ENOTDIR/ }, 'any other failure, as it is')
})

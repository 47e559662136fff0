import t, { type Test } from 'tap'
import { mkdir, readFile, stat, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { ProfileRecordingBackend, PROFILE_IDLE_MS, type RecordingOptions } from '../../src/profile/recording-backend.js'
import { parseProfile } from '../../src/profile/format.js'
import type { SnapshotInspection, StorageBackend } from '../../src/backend/storage-backend.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { ManualClock } from '../fixtures/manual-clock.js'
import { tempDir } from '../fixtures/temp-dir.js'

const BLOCK = 4096
const BYTES = 64 * BLOCK
const identity = { bytes: BYTES, validator: 'sha256:ab' }
const image = Buffer.alloc(BYTES, 7)

interface Lines {
  info: string[]
  warn: string[]
  error: string[]
}

/** The layer over a memory backend with a `readNow` that answers blocks 0-7 (a cache holding them) and an inspect. */
function subject(t: Test, options: Partial<RecordingOptions> = {}) {
  const lines: Lines = { info: [], warn: [], error: [] }
  const logger = { info: (m: string) => lines.info.push(m), warn: (m: string) => lines.warn.push(m), error: (m: string) => lines.error.push(m) }
  const memory = new MemoryBackend(image)
  const inner: StorageBackend = Object.assign(memory, {
    readNow: (offset: number, length: number) => (offset + length <= 8 * BLOCK ? [image.subarray(offset, offset + length)] : undefined),
    inspect: (): SnapshotInspection => ({ cachedBytes: 5 }),
    describe: () => 'memory',
    revalidate: () => void revalidated++,
  })
  let revalidated = 0
  const clock = new ManualClock()
  const backend = new ProfileRecordingBackend(inner, { name: 'disk', identity, blockBytes: BLOCK, logger, clock, wallClock: () => new Date('2026-12-02T11:00:00Z'), ...options })
  t.teardown(() => backend.close())
  return { backend, lines, clock, revalidated: () => revalidated }
}

t.test('passes the contract through: bytes, length, mtime, describe, inspect, revalidate', async (t) => {
  const { backend, revalidated } = subject(t)
  t.equal(backend.length, BYTES)
  t.same(backend.mtime, new Date('2026-01-02T03:04:05Z'))
  t.equal(backend.integrity, undefined)
  t.equal(backend.describe?.(), 'memory')
  t.same(backend.inspect(), { cachedBytes: 5 }, 'nothing of its own while not recording')
  backend.revalidate()
  t.equal(revalidated(), 1)
  t.same(await backend.readExact(0, 3), Buffer.from([7, 7, 7]))
  t.same(await backend.readPieces(0, 3), [Buffer.from([7, 7, 7])])
  t.same(backend.readNow(0, 2), [Buffer.from([7, 7])])
  t.equal(backend.readNow(60 * BLOCK, 2), undefined)
  const bare = new ProfileRecordingBackend(new MemoryBackend(image), { name: 'bare', identity, blockBytes: BLOCK, logger: { info() {}, warn() {}, error() {} } })
  t.equal(bare.readNow(0, 1), undefined, 'no readNow below: none here')
  t.same(bare.inspect(), {})
  t.equal(bare.describe, undefined)
  bare.revalidate()
  const dir = await tempDir(t)
  bare.startRecording(join(dir, 'bare.json'))
  await bare.readExact(0, 1)
  const before = Date.now()
  await bare.stopRecording()
  const { recordedAt } = parseProfile(await readFile(join(dir, 'bare.json'), 'utf8'), 'bare')
  t.ok(Math.abs(recordedAt.getTime() - before) < 5000, 'stamped with the time of day by default')
  await bare.close()
})

t.test('record and stop: the blocks read, in order, cache hits included, maintenance reads not', async (t) => {
  const dir = await tempDir(t)
  const { backend, lines, clock } = subject(t)
  const path = join(dir, 'sub', 'disk.profile.json')
  await backend.readExact(40 * BLOCK, BLOCK) // before the recording: not in it
  t.same(backend.startRecording(path), { name: 'disk', path })
  t.match(lines.info, [/disk: recording a boot profile from its next read to .*disk\.profile\.json/])
  t.throws(() => backend.startRecording(path), { code: 'E_PROFILE_RECORDING', message: /disk is already being recorded, to .*disk\.profile\.json/ })
  await backend.readExact(10 * BLOCK, 2 * BLOCK)
  await clock.advance(5)
  t.ok(backend.readNow(2 * BLOCK, BLOCK), 'a cache hit')
  await clock.advance(5)
  await backend.readPieces(30 * BLOCK, BLOCK)
  await backend.readExact(50 * BLOCK, BLOCK, { maintenance: true })
  await backend.readPieces(51 * BLOCK, BLOCK, { maintenance: true })
  t.same(backend.inspect().profileRecording, { path, automatic: false, blocks: 4, runs: 3, bytes: 4 * BLOCK, spanMs: 10, full: false })
  const written = await backend.stopRecording()
  t.same(written, { name: 'disk', path, runs: 3, blocks: 4, bytes: 4 * BLOCK, spanMs: 10, full: false })
  const profile = parseProfile(await readFile(path, 'utf8'), path)
  t.same(profile.runs, [
    { firstBlock: 10, blockCount: 2, atMs: 0 },
    { firstBlock: 2, blockCount: 1, atMs: 5 },
    { firstBlock: 30, blockCount: 1, atMs: 10 },
  ])
  t.same(profile.identity, identity)
  t.equal(profile.blockBytes, BLOCK)
  t.same(profile.recordedAt, new Date('2026-12-02T11:00:00Z'))
  t.equal((await stat(path)).mode & 0o777, 0o600, 'owner-only, like the rest of snapmount\'s state')
  t.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700, 'a folder it made: owner-only')
  t.same(await readdir(join(dir, 'sub')), ['disk.profile.json'], 'no temporary file left')
  t.match(lines.info.at(-1), /disk: boot profile written to .*disk\.profile\.json: 3 runs, 4 blocks, 0\.0 MiB, over 0\.0 s \(stopped\)/)
  t.same(backend.inspect(), { cachedBytes: 5 }, 'not recording any more')
  await t.rejects(backend.stopRecording(), { code: 'E_PROFILE_NOT_RECORDING', message: 'disk is not being recorded' })
  await backend.readExact(60 * BLOCK, BLOCK)
  t.equal(clock.pending.length, 0, 'no timer left behind')
})

t.test('refusals: no identity, no place to write', async (t) => {
  const { backend: anonymous } = subject(t, { identity: undefined, autoPath: '/nowhere' })
  t.throws(() => anonymous.startRecording('/tmp/x'), { code: 'E_PROFILE_NO_IDENTITY', message: /disk has no identity a profile could name/ })
  t.same(anonymous.inspect(), { cachedBytes: 5 }, 'no automatic recording without an identity')
  const { backend } = subject(t)
  t.throws(() => backend.startRecording(), { code: 'E_PROFILE_NO_OUTPUT', fix: 'give one: snapmount profile record disk --output FILE' })
})

t.test('the default path; a write that fails: stop rejects, the error is logged', async (t) => {
  const dir = await tempDir(t)
  const taken = join(dir, 'taken')
  await mkdir(taken)
  const { backend, lines } = subject(t, { defaultPath: taken })
  t.same(backend.startRecording(), { name: 'disk', path: taken })
  await backend.readExact(0, 1)
  await t.rejects(backend.stopRecording(), { code: 'E_PROFILE_WRITE', message: /disk: boot profile not written to .*taken: /, cause: { code: 'EISDIR' } })
  t.match(lines.error, [/disk: boot profile not written to/])
  t.same(await readdir(dir), ['taken'], 'the temporary file removed')
})

t.test('idle: written once no new block has been read for PROFILE_IDLE_MS, counted from the first read', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'p.json')
  const { backend, clock, lines } = subject(t)
  backend.startRecording(path)
  await clock.advance(5 * PROFILE_IDLE_MS)
  t.equal(clock.pending.length, 0, 'no read yet: no idle timer, however long the guest takes to start')
  await backend.readExact(0, 1)
  t.same(clock.pending, [PROFILE_IDLE_MS])
  await clock.advance(PROFILE_IDLE_MS - 1000)
  await backend.readExact(5 * BLOCK, 1)
  await clock.advance(1000)
  t.same(clock.pending, [PROFILE_IDLE_MS - 1000], 'a new block meanwhile: waits the rest')
  await backend.readExact(0, 1) // an old block: does not count
  await clock.advance(PROFILE_IDLE_MS - 1000)
  await until(() => lines.info.some((line) => line.includes('written')))
  t.match(lines.info.at(-1), /disk: boot profile written to .*p\.json: 2 runs, 2 blocks, .* \(no new block read for 60 s\)/)
  t.same(parseProfile(await readFile(path, 'utf8'), path).runs, [
    { firstBlock: 0, blockCount: 1, atMs: 0 },
    { firstBlock: 5, blockCount: 1, atMs: PROFILE_IDLE_MS - 1000 },
  ])
  t.equal(backend.inspect().profileRecording, undefined)
})

t.test('the bound: said once, and the profile written with what fit', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'p.json')
  const { backend, lines } = subject(t, { maxBlocks: 2 })
  backend.startRecording(path)
  await backend.readExact(0, 2 * BLOCK)
  await backend.readExact(2 * BLOCK, BLOCK)
  await backend.readExact(3 * BLOCK, BLOCK)
  t.match(lines.warn, [/disk: the boot profile reached its bound of 2 blocks; it stops here/])
  await until(() => lines.info.some((line) => line.includes('written')))
  t.match(lines.info.at(-1), /2 runs|1 runs, 2 blocks.*\(bound reached\)/)
  t.same(parseProfile(await readFile(path, 'utf8'), path).runs, [{ firstBlock: 0, blockCount: 2, atMs: 0 }])
})

t.test('automatic: from the open, written at close; nothing read or a file there meanwhile: nothing written', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'auto.json')
  const { backend, lines } = subject(t, { autoPath: path })
  t.match(lines.info, [/disk: no boot profile at .*auto\.json: recording one from the first read, written once no new block is read for 60 s/])
  t.throws(() => backend.startRecording(join(dir, 'other')), { code: 'E_PROFILE_RECORDING' })
  await backend.readExact(3 * BLOCK, 1)
  t.equal(backend.inspect().profileRecording?.automatic, true)
  await backend.close()
  t.same(parseProfile(await readFile(path, 'utf8'), path).runs, [{ firstBlock: 3, blockCount: 1, atMs: 0 }])
  t.match(lines.info.at(-1), /\(the snapshot closed\)/)

  const idle = subject(t, { autoPath: join(dir, 'never.json') })
  await idle.backend.close()
  t.same(await readdir(dir), ['auto.json'], 'read nothing: wrote nothing')

  const raced = subject(t, { autoPath: join(dir, 'raced.json') })
  await raced.backend.readExact(0, 1)
  await writeFile(join(dir, 'raced.json'), 'theirs')
  await raced.backend.close()
  t.equal(await readFile(join(dir, 'raced.json'), 'utf8'), 'theirs', 'a profile that appeared is kept')
  t.match(raced.lines.info.at(-1), /a boot profile appeared at .*raced\.json while one was recorded; kept it/)

  const failing = subject(t, { autoPath: join(dir, 'auto.json', 'x') })
  await failing.backend.readExact(0, 1)
  await failing.backend.close()
  t.match(failing.lines.error, [/boot profile not written to/], 'a failed write at close is logged, the close goes on')

  const stopped = subject(t, { autoPath: join(dir, 'stopped.json') })
  t.match(await stopped.backend.stopRecording(), { blocks: 0 }, 'stop writes even an empty one: it was asked for')
  t.same(parseProfile(await readFile(join(dir, 'stopped.json'), 'utf8'), 'x').runs, [])
})

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}

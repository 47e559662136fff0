import t from 'tap'
import { constants } from 'node:fs'
import { SnapshotFs } from '../../src/fuse/snapshot-fs.js'
import { HeldBackend, MemoryBackend } from '../fixtures/memory-backend.js'
import { ramp } from '../fixtures/test-data.js'

const mountedAt = new Date('2026-11-25T00:00:00Z')
const options = { uid: 1234, gid: 5678, readTimeoutMs: 50, mountedAt }
const SIZE = 10_000
const disk = new MemoryBackend(ramp(0, SIZE))
const fs = new SnapshotFs([{ name: 'disk.raw', backend: disk }, { name: 'empty', backend: new MemoryBackend(Buffer.alloc(0)) }], options)

t.test('the root lists one file per snapshot', async (t) => {
  t.same(fs.readdir('/'), ['disk.raw', 'empty'])
  t.throws(() => fs.readdir('/disk.raw'), { code: 'E_NOT_A_DIRECTORY' })
  t.throws(() => fs.readdir('/nope'), { code: 'E_NOT_FOUND' })
})

t.test('getattr: a read-only directory and read-only files with size, blocks and the source mtime', async (t) => {
  const root = fs.getattr('/')
  t.equal(root.mode, constants.S_IFDIR | 0o555)
  t.equal(root.nlink, 2)
  t.same(root.mtime, mountedAt)
  const file = fs.getattr('/disk.raw')
  t.equal(file.mode, constants.S_IFREG | 0o444)
  t.equal(file.size, SIZE)
  t.equal(file.blocks, Math.ceil(SIZE / 512), 'st_blocks in 512-byte units, rounded up')
  t.same(file.mtime, disk.mtime)
  t.equal(file.uid, 1234)
  t.equal(file.gid, 5678)
  t.equal(fs.getattr('/empty').blocks, 0)
  for (const path of ['/nope', '/disk.raw/x', 'disk.raw', '//disk.raw']) {
    t.throws(() => fs.getattr(path), { code: 'E_NOT_FOUND' }, `${path} does not exist`)
  }
})

t.test('open: reading is allowed, anything that could write is EROFS', async (t) => {
  const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND, O_DIRECT, O_NOATIME } = constants
  for (const flags of [O_RDONLY, O_RDONLY | O_DIRECT, O_RDONLY | O_NOATIME]) {
    t.doesNotThrow(() => fs.open('/disk.raw', flags), `flags 0o${flags.toString(8)} open`)
  }
  for (const flags of [O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND, O_RDWR | O_DIRECT]) {
    t.throws(() => fs.open('/disk.raw', flags), { code: 'E_READ_ONLY' }, `flags 0o${flags.toString(8)} refused`)
  }
  t.throws(() => fs.open('/nope', O_RDONLY), { code: 'E_NOT_FOUND' })
  t.throws(() => fs.open('/', O_RDONLY), { code: 'E_IS_A_DIRECTORY' })
})

t.test('read: exact bytes, short only at EOF, 0 past it', async (t) => {
  const target = Buffer.alloc(4096, 0xee)
  t.equal(await fs.read('/disk.raw', target, 4096, 0), 4096)
  t.ok(target.equals(ramp(0, 4096)))

  target.fill(0xee)
  t.equal(await fs.read('/disk.raw', target, 4096, SIZE - 100), 100, 'short at EOF')
  t.ok(target.subarray(0, 100).equals(ramp(SIZE - 100, 100)), 'the last 100 bytes')
  t.ok(target.subarray(100).equals(Buffer.alloc(3996, 0xee)), 'nothing written past them')

  t.equal(await fs.read('/disk.raw', target, 4096, SIZE), 0, 'at EOF')
  t.equal(await fs.read('/disk.raw', target, 4096, SIZE + 5000), 0, 'past EOF')
  t.equal(await fs.read('/empty', target, 4096, 0), 0, 'empty file')
  await t.rejects(fs.read('/nope', target, 1, 0), { code: 'E_NOT_FOUND' })
})

t.test('a read that outlives its deadline fails E_READ_TIMEOUT and never writes late', async (t) => {
  const held = new HeldBackend(1000)
  const slow = new SnapshotFs([{ name: 'slow', backend: held }], options)
  const target = Buffer.alloc(100, 0xee)
  await t.rejects(slow.read('/slow', target, 100, 0), { code: 'E_READ_TIMEOUT', offset: 0, length: 100, timeoutMs: 50 })
  t.equal(held.pending, 1, 'the backend read is still out')
  held.release(0x11)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(target.equals(Buffer.alloc(100, 0xee)), 'the late answer did not land in the answered request buffer')
})

t.test('backend errors come through as they are', async (t) => {
  const held = new HeldBackend(1000)
  const failing = new SnapshotFs([{ name: 'f', backend: held }], { ...options, readTimeoutMs: 10_000 })
  const reading = failing.read('/f', Buffer.alloc(10), 10, 0)
  held.release(Object.assign(new Error('disk on fire'), { code: 'E_SOURCE_READ' }))
  await t.rejects(reading, { code: 'E_SOURCE_READ' })
})

t.test('statfs: the snapshots total size, nothing free, names up to 255 bytes', async (t) => {
  const stats = fs.statfs()
  t.equal(stats.bsize, 4096)
  t.equal(stats.blocks, Math.ceil(SIZE / 4096))
  t.equal(stats.bfree, 0)
  t.equal(stats.bavail, 0)
  t.equal(stats.files, 3)
  t.equal(stats.namemax, 255)
})

t.test('close closes every backend', async (t) => {
  const a = new MemoryBackend(Buffer.alloc(10))
  const closing = new SnapshotFs([{ name: 'a', backend: a }], options)
  await closing.close()
  await t.rejects(a.readExact(0, 1), { code: 'E_CLOSED' })
})

t.test('snapshots() lists what is served, in order', async (t) => {
  t.same(fs.snapshots().map(({ name }) => name), ['disk.raw', 'empty'])
  t.equal(fs.snapshots()[0]!.backend, disk)
})

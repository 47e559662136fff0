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
  const handle = fs.open('/disk.raw', constants.O_RDONLY)
  const empty = fs.open('/empty', constants.O_RDONLY)
  t.equal(await fs.read(handle, target, 4096, 0), 4096)
  t.ok(target.equals(ramp(0, 4096)))

  target.fill(0xee)
  t.equal(await fs.read(handle, target, 4096, SIZE - 100), 100, 'short at EOF')
  t.ok(target.subarray(0, 100).equals(ramp(SIZE - 100, 100)), 'the last 100 bytes')
  t.ok(target.subarray(100).equals(Buffer.alloc(3996, 0xee)), 'nothing written past them')

  t.equal(await fs.read(handle, target, 4096, SIZE), 0, 'at EOF')
  t.equal(await fs.read(handle, target, 4096, SIZE + 5000), 0, 'past EOF')
  t.equal(await fs.read(empty, target, 4096, 0), 0, 'empty file')
  await t.rejects(async () => fs.read(999_999, target, 1, 0), { code: 'E_BAD_HANDLE', handle: 999_999 })
  await fs.release(handle)
  await fs.release(empty)
  await t.rejects(async () => fs.read(handle, target, 1, 0), { code: 'E_BAD_HANDLE' }, 'a released handle reads no more')
  await t.rejects(fs.release(handle), { code: 'E_BAD_HANDLE' }, 'nor is released twice')
})

t.test('a read that outlives its deadline fails E_READ_TIMEOUT and never writes late', async (t) => {
  const held = new HeldBackend(1000)
  const slow = new SnapshotFs([{ name: 'slow', backend: held }], options)
  const target = Buffer.alloc(100, 0xee)
  await t.rejects(async () => slow.read(slow.open('/slow', 0), target, 100, 0), { code: 'E_READ_TIMEOUT', offset: 0, length: 100, timeoutMs: 50 })
  t.equal(held.pending, 1, 'the backend read is still out')
  held.release(0x11)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(target.equals(Buffer.alloc(100, 0xee)), 'the late answer did not land in the answered request buffer')
})

t.test('a read the backend has at hand is answered at once; one it has not, as usual', async (t) => {
  const bytes = ramp(0, 1000)
  let atHand = true
  const backend = Object.assign(new MemoryBackend(bytes), {
    readNow: (offset: number, length: number) => (atHand ? [bytes.subarray(offset, offset + 3), bytes.subarray(offset + 3, offset + length)] : undefined),
  })
  const hits = new SnapshotFs([{ name: 'h', backend }], options)
  const handle = hits.open('/h', 0)
  const target = Buffer.alloc(100)
  t.equal(hits.read(handle, target, 100, 950), 50, 'a number, not a promise: clamped at EOF, the pieces copied in order')
  t.ok(target.subarray(0, 50).equals(ramp(950, 50)))
  t.equal(hits.read(handle, target, 100, 1000), 0, 'at EOF: 0 at once')
  atHand = false
  const waited = hits.read(handle, target, 10, 20)
  t.type(waited, Promise, 'not at hand: the usual read')
  t.equal(await waited, 10)
  t.ok(target.subarray(0, 10).equals(ramp(20, 10)))
  await t.rejects(async () => hits.read(999_999, target, 1, 0), { code: 'E_BAD_HANDLE' }, 'a bad handle fails as usual')

  const throwing = new SnapshotFs([{ name: 't', backend: Object.assign(new MemoryBackend(bytes), { readNow: () => { throw new Error('bug') } }) }], options)
  const reading = throwing.read(throwing.open('/t', 0), target, 10, 30)
  t.type(reading, Promise, 'a readNow that throws: the usual read, no exception')
  t.equal(await reading, 10)
  t.ok(target.subarray(0, 10).equals(ramp(30, 10)))
})

t.test('backend errors come through as they are', async (t) => {
  const held = new HeldBackend(1000)
  const failing = new SnapshotFs([{ name: 'f', backend: held }], { ...options, readTimeoutMs: 10_000 })
  const reading = Promise.resolve(failing.read(failing.open('/f', 0), Buffer.alloc(10), 10, 0))
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

const noWrites = constants.O_RDONLY
const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('umask, uid and gid are what getattr shows, and setOptions changes them', async (t) => {
  const masked = new SnapshotFs([{ name: 'a', backend: new MemoryBackend(Buffer.alloc(10)) }], { ...options, umask: 0o027 })
  t.equal(masked.getattr('/a').mode, constants.S_IFREG | 0o440)
  t.equal(masked.getattr('/').mode, constants.S_IFDIR | 0o550)
  masked.setOptions({ uid: 64055, gid: 64056, umask: 0o022 })
  t.match(masked.getattr('/a'), { mode: constants.S_IFREG | 0o444, uid: 64055, gid: 64056 })
})

t.test('update: adds, removes and replaces; open handles keep reading what they opened', async (t) => {
  const kept = new MemoryBackend(ramp(0, 100))
  const removed = new MemoryBackend(ramp(1, 100))
  const old = new MemoryBackend(ramp(2, 100))
  const replacement = new MemoryBackend(ramp(3, 200))
  const added = new MemoryBackend(ramp(4, 100))
  const live = new SnapshotFs([{ name: 'kept', backend: kept }, { name: 'removed', backend: removed }, { name: 'changed', backend: old }], options)
  const oldHandle = live.open('/changed', noWrites)
  const removedHandle = live.open('/removed', noWrites)

  live.update([{ keep: 'kept' }, { name: 'changed', backend: replacement }, { name: 'added', backend: added }])
  t.same(live.readdir('/'), ['kept', 'changed', 'added'], 'the new listing, in the order given')
  t.throws(() => live.getattr('/removed'), { code: 'E_NOT_FOUND' }, 'removed from the listing')
  t.throws(() => live.open('/removed', noWrites), { code: 'E_NOT_FOUND' }, 'and from new opens')
  t.equal(live.getattr('/changed').size, 200, 'a replaced name shows the new snapshot')
  const target = Buffer.alloc(10)
  await live.read(oldHandle, target, 10, 0)
  t.ok(target.equals(ramp(2, 10)), 'a handle opened before the reload reads the old snapshot')
  await live.read(removedHandle, target, 10, 0)
  t.ok(target.equals(ramp(1, 10)), 'and a removed one still reads')
  const newHandle = live.open('/changed', noWrites)
  await live.read(newHandle, target, 10, 0)
  t.ok(target.equals(ramp(3, 10)), 'a new open reads the replacement')
  t.same(live.heldOpen(), [{ name: 'changed', handles: 1, retired: false }, { name: 'removed', handles: 1, retired: true }, { name: 'changed', handles: 1, retired: true }])

  await live.release(oldHandle)
  await t.rejects(old.readExact(0, 1), { code: 'E_CLOSED' }, "the old backend closes with its last handle")
  await kept.readExact(0, 1)
  await live.release(removedHandle)
  await t.rejects(removed.readExact(0, 1), { code: 'E_CLOSED' })
  await live.release(newHandle)
  await replacement.readExact(0, 1)
  t.same(live.heldOpen(), [])
  t.same(live.snapshots().map(({ name }) => name), ['kept', 'changed', 'added'])

  const unopened = new MemoryBackend(Buffer.alloc(1))
  live.update([{ name: 'x', backend: unopened }])
  live.update([{ keep: 'x' }])
  await settle()
  await t.rejects(kept.readExact(0, 1), { code: 'E_CLOSED' }, 'a snapshot with no handles closes when it is removed')
  t.throws(() => live.update([{ keep: 'gone' }]), /keeps gone, which is not served/)
})

/** A pending open the test settles by hand; cancel() only records that it was called. */
function pending(name: string) {
  let resolve!: (backend: MemoryBackend) => void
  let reject!: (err: Error) => void
  const ready = new Promise<MemoryBackend>((res, rej) => ((resolve = res), (reject = rej)))
  const entry = { name, ready, cancelled: false, cancel: () => void (entry.cancelled = true) }
  return { entry, resolve, reject }
}

t.test('a pending (lazy) snapshot is listed, fails getattr and open until its backend is ready', async (t) => {
  const { entry, resolve } = pending('lazy')
  const lazy = new SnapshotFs([entry], options)
  t.same(lazy.readdir('/'), ['lazy'])
  t.same(lazy.waiting(), ['lazy'])
  t.same(lazy.snapshots(), [])
  t.throws(() => lazy.getattr('/lazy'), { code: 'E_UNAVAILABLE' })
  t.throws(() => lazy.open('/lazy', noWrites), { code: 'E_UNAVAILABLE' })
  t.equal(lazy.statfs().blocks, 0)
  resolve(new MemoryBackend(ramp(0, 5000)))
  await settle()
  t.equal(lazy.getattr('/lazy').size, 5000)
  const target = Buffer.alloc(5)
  t.equal(await lazy.read(lazy.open('/lazy', noWrites), target, 5, 10), 5)
  t.same(lazy.waiting(), [])

  const second = pending('late')
  lazy.update([second.entry])
  t.ok(second.entry.cancelled === false)
  lazy.update([])
  t.ok(second.entry.cancelled, 'removing a pending snapshot cancels its retries')
  const lateBackend = new MemoryBackend(Buffer.alloc(1))
  second.resolve(lateBackend)
  await settle()
  await t.rejects(lateBackend.readExact(0, 1), { code: 'E_CLOSED' }, 'a backend that opens after its removal is closed at once')

  const third = pending('cancelled')
  lazy.update([third.entry])
  lazy.update([])
  third.reject(new Error('cancelled'))
  await settle()
  t.same(lazy.readdir('/'), [], 'a cancelled open that rejects leaves nothing behind')
})

t.test('shutdown: opens are refused EBUSY, reads in flight are waited for or, in a hurry, aborted; close reaches retired backends', async (t) => {
  const held = new HeldBackend(100)
  const stopping = new SnapshotFs([{ name: 'h', backend: held }], { ...options, readTimeoutMs: 10_000 })
  const handle = stopping.open('/h', noWrites)
  const target = Buffer.alloc(10)
  const reading = stopping.read(handle, target, 10, 0)
  stopping.stopOpening()
  t.throws(() => stopping.open('/h', noWrites), { code: 'E_SHUTTING_DOWN' })
  let settled = false
  const settling = stopping.settleReads().then(() => (settled = true))
  await settle()
  t.notOk(settled, 'waits for the read in flight')
  held.release(0x22)
  await settling
  t.equal(await reading, 10)
  t.ok(target.equals(Buffer.alloc(10, 0x22)), 'which finished with its bytes')
  t.same(stopping.heldOpen(), [{ name: 'h', handles: 1, retired: false }])

  const late = stopping.read(handle, target, 10, 0) as Promise<number>
  const ignoringItsSignal = held.pending
  stopping.abortReads()
  await t.rejects(late, { code: 'E_READ_ABORTED', message: 'read abandoned: snapmount is stopping in a hurry' }, 'a hurried stop fails a read in flight at once')
  t.equal(held.pending, ignoringItsSignal, 'without waiting for a backend that ignores the abort')
  await stopping.settleReads()
  await t.rejects(stopping.read(handle, target, 10, 0) as Promise<number>, { code: 'E_READ_ABORTED' }, 'and so does a read that comes later')
  held.release(0x33)
  await settle()
  t.ok(target.equals(Buffer.alloc(10, 0x22)), 'and the bytes that come later are never copied into the kernel\'s buffer')

  const retiredBackend = new MemoryBackend(Buffer.alloc(4))
  const withRetired = new SnapshotFs([{ name: 'r', backend: retiredBackend }], options)
  withRetired.open('/r', noWrites)
  const { entry } = pending('p')
  withRetired.update([entry])
  await withRetired.close()
  await t.rejects(retiredBackend.readExact(0, 1), { code: 'E_CLOSED' }, 'a retired backend still held open is closed too')
  t.ok(entry.cancelled, 'and pending opens are cancelled')
  t.throws(() => withRetired.open('/p', noWrites), { code: 'E_SHUTTING_DOWN' })
})

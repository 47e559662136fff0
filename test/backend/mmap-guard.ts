import t from 'tap'
import mmap from 'mmap-io'
import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'
import { copyGuarded } from '../../src/backend/mmap-backend.js'

// vendor/mmap-io's copyGuarded (SNAPMOUNT.md): a copy out of a map whose file was truncated
// returns false where a plain copy would kill this process with SIGBUS.

t.test('copyGuarded copies like Buffer.copy, and fails instead of dying once the file shrank under the map', async (t) => {
  const path = join(await tempDir(t), 'image.raw')
  const bytes = seededBytes(3, 4 * mmap.PAGESIZE)
  await writeFile(path, bytes)
  const handle = await open(path, 'r+')
  t.teardown(() => handle.close())
  const map = mmap.map(bytes.length, mmap.PROT_READ, mmap.MAP_SHARED, handle.fd, 0)
  const target = Buffer.alloc(bytes.length)
  t.equal(mmap.copyGuarded(map, 100, target, 7, 5000), true)
  t.ok(target.subarray(7, 5007).equals(bytes.subarray(100, 5100)), 'the bytes')

  await handle.truncate(mmap.PAGESIZE)
  t.equal(mmap.copyGuarded(map, 0, target, 0, 100), true, 'pages still in the file copy')
  t.equal(mmap.copyGuarded(map, 0, target, 0, 2 * mmap.PAGESIZE), false, 'a copy reaching past the new end fails')
  t.equal(mmap.copyGuarded(map, 3 * mmap.PAGESIZE, target, 0, 10), false, 'again: the guard stays armed')
})

t.test('copyGuarded refuses ranges outside either buffer and arguments that are not buffers', async (t) => {
  const source = Buffer.alloc(10)
  const target = Buffer.alloc(10)
  t.throws(() => mmap.copyGuarded(source, 5, target, 0, 6), { name: 'RangeError' })
  t.throws(() => mmap.copyGuarded(source, 0, target, 5, 6), { name: 'RangeError' })
  t.throws(() => mmap.copyGuarded(source, -1, target, 0, 1), { name: 'RangeError' })
  t.throws(() => mmap.copyGuarded('x' as unknown as Buffer, 0, target, 0, 1), { name: 'TypeError' })
})

// The backend's own loop over pieces: in a read, only a truncation racing between mincore and the
// copy reaches its failure, so it is tested here, where the truncation comes first.
t.test("the backend's copyGuarded copies piece after piece, and stops at the first that fails", async (t) => {
  const path = join(await tempDir(t), 'image.raw')
  const bytes = seededBytes(4, 4 * mmap.PAGESIZE)
  await writeFile(path, bytes)
  const handle = await open(path, 'r+')
  t.teardown(() => handle.close())
  const window = mmap.map(bytes.length, mmap.PROT_READ, mmap.MAP_SHARED, handle.fd, 0)
  const target = Buffer.alloc(300)
  const pieces = [{ window, start: 10, length: 100 }, { window, start: 3 * mmap.PAGESIZE, length: 200 }]
  t.equal(copyGuarded(pieces, target), true)
  t.ok(target.equals(Buffer.concat([bytes.subarray(10, 110), bytes.subarray(3 * mmap.PAGESIZE, 3 * mmap.PAGESIZE + 200)])), 'the bytes, in order')

  await handle.truncate(mmap.PAGESIZE)
  t.equal(copyGuarded(pieces, Buffer.alloc(300)), false, 'the second piece lies past the new end')
})

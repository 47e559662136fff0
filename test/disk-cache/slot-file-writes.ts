import t, { type Test } from 'tap'
import { readFile, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { DATA_FILE, SlotFile, SYNC_READ_MAX_BYTES } from '../../src/disk-cache/slot-file.js'
import { AlignedChunks } from '../../src/disk-cache/aligned-chunks.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

const SLOT = 16 * 1024

t.test('a run of slots is written with one write, the short last block rounded up to the alignment', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  // The test directory is on a disk (ext4 here): O_DIRECT is taken.
  t.equal(file.direct, true, 'direct writes')
  const chunks = new AlignedChunks(SLOT, 3)
  const bytes = seededBytes(1, 2 * SLOT + 1000)
  const blocks = [0, 1, 2].map((index) => {
    const chunk = chunks.take()!
    const piece = bytes.subarray(index * SLOT, (index + 1) * SLOT)
    piece.copy(chunk)
    return chunk.subarray(0, piece.length)
  })
  await file.writeRun(2, blocks)
  await file.sync()
  const data = await readFile(join(dir, DATA_FILE))
  t.ok(data.subarray(2 * SLOT, 4 * SLOT + 1000).equals(bytes), 'the blocks in slots 2, 3 and 4')
  t.equal(data.length, 4 * SLOT + 4096, 'the last block written up to 4 KiB')
  const back = Buffer.alloc(1000)
  t.equal(await file.read(4, back), 1000)
  t.ok(back.equals(bytes.subarray(2 * SLOT)), 'read back through the buffered descriptor')
})

t.test('a block in memory O_DIRECT refuses (not aligned: EINVAL) is written through the page cache from then on', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  const bytes = seededBytes(2, SLOT)
  // One byte into a buffer: not aligned, whatever the buffer's own alignment.
  const unaligned = Buffer.alloc(SLOT + 1).subarray(1)
  bytes.copy(unaligned)
  await file.writeRun(1, [unaligned])
  t.equal(file.direct, false, 'buffered now')
  const back = Buffer.alloc(SLOT)
  t.equal(await file.read(1, back), SLOT)
  t.ok(back.equals(bytes), 'written')
})

t.test('write: one block through the page cache, with direct writes on', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  const bytes = seededBytes(3, SLOT)
  await file.write(2, bytes)
  t.equal(file.direct, true, 'direct writes stay on')
  const back = Buffer.alloc(SLOT)
  t.equal(await file.read(2, back), SLOT)
  t.ok(back.equals(bytes))
})

t.test('a block size O_DIRECT cannot align to is written through the page cache', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, 1000)
  t.teardown(() => file.close())
  t.equal(file.direct, false)
  await file.writeRun(0, [Buffer.alloc(1000, 7)])
  const back = Buffer.alloc(1000)
  t.equal(await file.read(0, back), 1000)
  t.ok(back.equals(Buffer.alloc(1000, 7)))
})

t.test('aligned chunks: a fixed number, taken and given back', async (t) => {
  const chunks = new AlignedChunks(SLOT, 2)
  t.equal(chunks.available, 2, 'all free before the memory is mapped')
  const first = chunks.take()!
  const second = chunks.take()!
  t.equal(first.length, SLOT)
  t.equal(second.byteOffset - first.byteOffset, SLOT, 'cut from one memory, in address order')
  t.equal(chunks.take(), undefined, 'none left')
  t.equal(chunks.available, 0)
  chunks.give(first)
  t.equal(chunks.take(), first, 'recycled')
})

/** A slot file in a fresh directory holding `slots` slots of seeded bytes; closed at teardown. */
async function filled(t: Test, slots: number, windowBytes?: number) {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT, windowBytes)
  t.teardown(() => file.close())
  const bytes = seededBytes(slots, slots * SLOT)
  for (let slot = 0; slot < slots; slot++) await file.writeRun(slot, [bytes.subarray(slot * SLOT, (slot + 1) * SLOT)])
  return { file, bytes }
}

t.test('small reads of cached pages, larger reads and reads past the end all give the bytes on disk', async (t) => {
  const { file, bytes } = await filled(t, 24)
  const one = Buffer.alloc(SLOT)
  t.equal(await file.read(3, one), SLOT)
  t.ok(one.equals(bytes.subarray(3 * SLOT, 4 * SLOT)), 'one slot (in the page cache: read on the JS thread)')
  t.ok(SYNC_READ_MAX_BYTES < 20 * SLOT)
  const many = Buffer.alloc(20 * SLOT)
  t.equal(await file.read(2, many), 20 * SLOT)
  t.ok(many.equals(bytes.subarray(2 * SLOT, 22 * SLOT)), 'twenty slots (on the thread pool)')
  await truncate(file.path, 22 * SLOT + 100)
  t.equal(await file.read(22, one), 100, 'a slot the file ends in: what is there')
  t.ok(one.subarray(0, 100).equals(bytes.subarray(22 * SLOT, 22 * SLOT + 100)))
  t.equal(await file.read(23, one), 0, 'a slot past the end: nothing (its pages are in no cache)')
})

t.test('a read across two of the maps mincore looks at, or in one that cannot be made, goes to the thread pool', async (t) => {
  const across = await filled(t, 4, 2 * SLOT)
  const two = Buffer.alloc(2 * SLOT)
  t.equal(await across.file.read(1, two), 2 * SLOT)
  t.ok(two.equals(across.bytes.subarray(SLOT, 3 * SLOT)), 'slots 1 and 2, in two maps')
  // mmap refuses an offset that is not a multiple of the page size: the second map cannot be made.
  // Slot 3 lies wholly in the second map, which would start at 2.5 slots.
  const unmappable = await filled(t, 4, 2 * SLOT + 512)
  const one = Buffer.alloc(SLOT)
  for (let round = 0; round < 2; round++) {
    t.equal(await unmappable.file.read(3, one), SLOT)
    t.ok(one.equals(unmappable.bytes.subarray(3 * SLOT, 4 * SLOT)), 'slot 3, not mapped (tried once)')
  }
})

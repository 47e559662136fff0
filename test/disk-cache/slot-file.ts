import t, { type Test } from 'tap'
import { truncate } from 'node:fs/promises'
import { SlotFile, SYNC_READ_MAX_BYTES } from '../../src/disk-cache/slot-file.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

const SLOT = 16 * 1024

/** A slot file in a fresh directory holding `slots` slots of seeded bytes; closed at teardown. */
async function filled(t: Test, slots: number, windowBytes?: number) {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT, windowBytes)
  t.teardown(() => file.close())
  const bytes = seededBytes(slots, slots * SLOT)
  for (let slot = 0; slot < slots; slot++) await file.write(slot, bytes.subarray(slot * SLOT, (slot + 1) * SLOT))
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

import t from 'tap'
import { truncate } from 'node:fs/promises'
import { DIRECT_READ_BYTES, SlotFile } from '../../src/disk-cache/slot-file.js'
import { AlignedChunks } from '../../src/disk-cache/aligned-chunks.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { ramfsDir } from '../fixtures/ramfs-dir.js'

// Reads of slots not in the page cache go past it (O_DIRECT), through aligned chunks; where the
// file system refuses O_DIRECT, through the page cache.

const SLOT = 128 * 1024

/** Writes `slots` slots of seeded bytes into `file` with direct writes (nothing left in the page cache). */
async function fill(file: SlotFile, slots: number, seed: number): Promise<Buffer> {
  const bytes = seededBytes(seed, slots * SLOT)
  const chunks = new AlignedChunks(SLOT, slots)
  const blocks = Array.from({ length: slots }, (_, slot) => {
    const chunk = chunks.take()!
    bytes.copy(chunk, 0, slot * SLOT, (slot + 1) * SLOT)
    return chunk
  })
  await file.writeRun(0, blocks)
  await file.sync()
  return bytes
}

t.test('slots not in the page cache are read past it, in chunks, many reads at once, and leave it empty', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  t.equal(file.directReads, true, 'direct reads on a disk (ext4 here)')
  const slots = 40
  const bytes = await fill(file, slots, 1)
  t.equal(file.readNow(3, 0, Buffer.alloc(SLOT)), undefined, 'written past the page cache')

  const one = Buffer.alloc(SLOT)
  t.equal(await file.read(3, one), SLOT)
  t.ok(one.equals(bytes.subarray(3 * SLOT, 4 * SLOT)), 'one slot')
  t.equal(file.readNow(3, 0, Buffer.alloc(SLOT)), undefined, 'read past the page cache: still not in it')
  const inside = Buffer.alloc(16 * 1024)
  t.equal(await file.read(5, inside, 32 * 1024), inside.length)
  t.ok(inside.equals(bytes.subarray(5 * SLOT + 32 * 1024, 5 * SLOT + 48 * 1024)), 'from inside a slot, aligned: past the page cache')
  t.equal(await file.read(5, inside, 100), inside.length)
  t.ok(inside.equals(bytes.subarray(5 * SLOT + 100, 5 * SLOT + 100 + 16 * 1024)), 'not aligned: through it')

  // Longer than a chunk, and more reads at once than there are chunks: each waits its turn.
  const run = 2 * DIRECT_READ_BYTES / SLOT + 3
  const reads = Array.from({ length: 8 }, (_, index) => {
    const into = Buffer.alloc(run * SLOT)
    return file.read(index, into).then((got) => ({ index, got, into }))
  })
  for (const { index, got, into } of await Promise.all(reads)) {
    t.equal(got, run * SLOT)
    if (!into.equals(bytes.subarray(index * SLOT, (index + run) * SLOT))) t.fail(`wrong bytes from slot ${index}`)
  }

  // The file cut inside a slot, not at the alignment: what is there, then nothing.
  await truncate(file.path, 39 * SLOT + 1000)
  t.equal(await file.read(38, Buffer.alloc(2 * SLOT)), SLOT + 1000, 'a run the file ends in')
  const cut = Buffer.alloc(SLOT)
  t.equal(await file.read(39, cut), 1000, 'a slot the file ends in')
  t.ok(cut.subarray(0, 1000).equals(bytes.subarray(39 * SLOT, 39 * SLOT + 1000)))
  t.equal(await file.read(40, cut), 0, 'a slot past the end')
})

t.test('into page-aligned memory, slots are read past the page cache in place; a length off the alignment goes through a chunk', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  const bytes = await fill(file, 12, 5)
  // Page-aligned memory, as the memory cache's arena hands out: a chunk of its own.
  const memory = new AlignedChunks(12 * SLOT, 1).take()!
  const run = memory.subarray(0, 10 * SLOT)
  t.equal(await file.read(1, run, 0, true), 10 * SLOT)
  t.ok(run.equals(bytes.subarray(SLOT, 11 * SLOT)), 'a run of slots, in place')
  t.equal(file.readNow(1, 0, Buffer.alloc(SLOT)), undefined, 'past the page cache')
  const inside = memory.subarray(8192, 8192 + 16 * 1024)
  t.equal(await file.read(4, inside, 32 * 1024, true), inside.length)
  t.ok(inside.equals(bytes.subarray(4 * SLOT + 32 * 1024, 4 * SLOT + 48 * 1024)), 'pieces from inside a slot, in place')
  const odd = memory.subarray(0, SLOT - 100)
  t.equal(await file.read(6, odd, 0, true), odd.length)
  t.ok(odd.equals(bytes.subarray(6 * SLOT, 7 * SLOT - 100)), 'a length off the alignment: through a chunk')

  // The file cut inside a slot: what is there, then nothing.
  await truncate(file.path, 10 * SLOT + 1000)
  const end = memory.subarray(0, 3 * SLOT)
  t.equal(await file.read(9, end, 0, true), SLOT + 1000, 'a run the file ends in')
  t.ok(end.subarray(0, SLOT + 1000).equals(bytes.subarray(9 * SLOT, 10 * SLOT + 1000)))
  await truncate(file.path, 10 * SLOT)
  t.equal(await file.read(9, end, 0, true), SLOT, 'a run the file ends in at a slot\'s end')
  t.equal(await file.read(10, end, 0, true), 0, 'a run past the end')
})

t.test('a slot written through the page cache reads back right past it', async (t) => {
  const dir = await tempDir(t)
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  await fill(file, 4, 2)
  const bytes = seededBytes(3, SLOT)
  // Dirty in the page cache: the kernel writes it back before a direct read of its range.
  await file.write(2, bytes)
  const back = Buffer.alloc(2 * SLOT)
  t.equal(await file.read(1, back), 2 * SLOT, 'past the JS thread\'s limit: not read from the page cache')
  t.ok(back.subarray(SLOT).equals(bytes))
})

t.test('where O_DIRECT is refused (ramfs: EINVAL), reads and writes go through the page cache', async (t) => {
  const dir = await ramfsDir(t)
  if (!dir) return t.comment('ramfs cannot be mounted here (not root): skipped')
  const file = new SlotFile(dir, SLOT)
  t.teardown(() => file.close())
  t.equal(file.directReads, false, 'buffered reads')
  t.equal(file.direct, false, 'buffered writes')
  const bytes = await fill(file, 12, 4)
  const many = Buffer.alloc(10 * SLOT)
  t.equal(await file.read(1, many), 10 * SLOT)
  t.ok(many.equals(bytes.subarray(SLOT, 11 * SLOT)))
})

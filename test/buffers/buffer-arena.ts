import t from 'tap'
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { BufferArena, PAGE_BYTES } from '../../src/buffers/buffer-arena.js'
import { tempDir } from '../fixtures/temp-dir.js'

const UNIT = 16

/** Where a buffer sits: its slab (ArrayBuffer) and byte range in it. */
const place = (buffer: Buffer) => ({ slab: buffer.buffer, start: buffer.byteOffset, end: buffer.byteOffset + buffer.length })

t.test('buffers are runs of whole units of one slab, allocated when first needed', async (t) => {
  const arena = new BufferArena({ arenaBytes: 10 * UNIT, unitBytes: UNIT })
  t.equal(arena.bytesInSlabs, 0, 'nothing before the first take')
  const a = arena.take(20)
  const b = arena.take(16)
  t.equal(a.length, 20)
  t.equal(b.length, 16)
  t.equal(arena.bytesInSlabs, 10 * UNIT, 'the whole arena in one slab')
  t.equal(a.buffer, b.buffer, 'the same slab')
  t.type(a.buffer, SharedArrayBuffer, 'shared memory: hash threads read it without a copy')
  t.equal(b.byteOffset - a.byteOffset, 2 * UNIT, '20 bytes took two units')
  t.equal(arena.bytesApart, 0)
})

t.test('a take uses the shortest free run that is long enough', async (t) => {
  const arena = new BufferArena({ arenaBytes: 10 * UNIT, unitBytes: UNIT })
  const [a, gap2, b, gap4, c] = [arena.take(UNIT), arena.take(2 * UNIT), arena.take(UNIT), arena.take(4 * UNIT), arena.take(UNIT)]
  arena.give(gap4)
  arena.give(gap2)
  // Free now: 2 units after a, 4 after b, 1 at the end.
  t.equal(arena.take(UNIT).byteOffset, c.byteOffset + UNIT, 'one unit: the one-unit run at the end')
  t.equal(arena.take(2 * UNIT).byteOffset, a.byteOffset + UNIT, 'two units: the two-unit run, not the four')
  t.equal(arena.take(3 * UNIT).byteOffset, b.byteOffset + UNIT, 'three: the four-unit run')
  t.equal(arena.take(UNIT).byteOffset, b.byteOffset + 4 * UNIT, 'and its rest')
  t.equal(arena.bytesApart, 0)
})

t.test('a freed run merges with free neighbours on both sides', async (t) => {
  const arena = new BufferArena({ arenaBytes: 6 * UNIT, unitBytes: UNIT })
  const [a, b, c] = [arena.take(2 * UNIT), arena.take(2 * UNIT), arena.take(2 * UNIT)]
  arena.give(a)
  arena.give(c)
  arena.give(b)
  const whole = arena.take(6 * UNIT)
  t.same(place(whole), place(Buffer.from(a.buffer, a.byteOffset, 6 * UNIT)), 'the whole slab is one run again')
  t.equal(arena.bytesApart, 0)
})

t.test('slabs grow up to the arena; runs of two slabs never merge', async (t) => {
  const arena = new BufferArena({ arenaBytes: 7 * UNIT, unitBytes: UNIT, maxSlabBytes: 4 * UNIT + 5 })
  const first = arena.take(4 * UNIT)
  t.equal(arena.bytesInSlabs, 4 * UNIT, 'a slab is whole units, at most maxSlabBytes')
  const second = arena.take(3 * UNIT)
  t.not(second.buffer, first.buffer, 'a second slab')
  t.equal(arena.bytesInSlabs, 7 * UNIT, 'the rest of the arena')
  arena.give(first)
  arena.give(second)
  const big = arena.take(5 * UNIT)
  t.equal(arena.bytesApart, 5 * UNIT, 'no run of five: the slabs did not merge, so apart')
  t.not(big.buffer, first.buffer)
  t.not(big.buffer, second.buffer)
  t.equal(arena.take(4 * UNIT).buffer, first.buffer, 'each slab is still whole')
  t.equal(arena.take(3 * UNIT).buffer, second.buffer)
  arena.give(big)
  t.equal(arena.bytesApart, 0, 'a buffer given back is no longer counted')
})

t.test('when the arena is used up, buffers are allocated apart', async (t) => {
  const arena = new BufferArena({ arenaBytes: 2 * UNIT, unitBytes: UNIT })
  const inArena = arena.take(2 * UNIT)
  const apart = arena.take(UNIT)
  t.not(apart.buffer, inArena.buffer)
  t.equal(arena.bytesApart, UNIT)
  arena.give(apart)
  arena.give(apart)
  t.equal(arena.bytesApart, 0, 'given back twice: counted once')
  arena.give(Buffer.alloc(UNIT))
  t.equal(arena.bytesApart, 0, 'a buffer not from the arena is ignored')
  t.not(arena.take(UNIT).buffer, inArena.buffer, 'still full: apart again')
  t.equal(arena.bytesApart, UNIT)
})

t.test('a slab the system will not allocate: buffers are allocated apart, and no slab is tried again', async (t) => {
  // Larger than Node's largest Buffer (4 GiB), so allocating it throws, as a refused one would.
  const arena = new BufferArena({ arenaBytes: 8 * 2 ** 30, unitBytes: UNIT, maxSlabBytes: 8 * 2 ** 30 })
  const first = arena.take(UNIT)
  t.equal(first.length, UNIT)
  t.equal(arena.bytesInSlabs, 0, 'no slab')
  t.equal(arena.bytesApart, UNIT, 'the buffer was allocated apart')
  arena.take(2 * UNIT)
  t.equal(arena.bytesApart, 3 * UNIT)
  arena.give(first)
  t.equal(arena.bytesApart, 2 * UNIT)
})

t.test('bad sizes are refused with the value named', async (t) => {
  t.throws(() => new BufferArena({ arenaBytes: 64, unitBytes: 0 }), /unitBytes must be a whole number above 0, not 0/)
  t.throws(() => new BufferArena({ arenaBytes: 64, unitBytes: 16, maxSlabBytes: 8 }), /maxSlabBytes must be a whole number of at least one unit, not 8/)
  t.throws(() => new BufferArena({ arenaBytes: -1, unitBytes: 16 }), /arenaBytes must be a whole number, not -1/)
  const arena = new BufferArena({ arenaBytes: 64, unitBytes: 16 })
  t.throws(() => arena.take(0), /length must be a whole number above 0, not 0/)
  t.throws(() => arena.take(1.5), /not 1.5/)
})

t.test('random takes and gives: live buffers never overlap, and all given back, every slab is whole again', async (t) => {
  let seed = 7
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const arena = new BufferArena({ arenaBytes: 64 * UNIT, unitBytes: UNIT, maxSlabBytes: 24 * UNIT })
  const live: Buffer[] = []
  let overlaps = 0
  for (let step = 0; step < 3000; step++) {
    if (live.length > 0 && random(2) === 0) {
      arena.give(live.splice(random(live.length), 1)[0]!)
      continue
    }
    const buffer = arena.take(1 + random(8 * UNIT))
    const p = place(buffer)
    for (const other of live) {
      const o = place(other)
      if (o.slab === p.slab && o.start < p.end && p.start < o.end) overlaps++
    }
    live.push(buffer)
  }
  t.equal(overlaps, 0, 'no two live buffers share a byte')
  t.ok(arena.bytesInSlabs <= 64 * UNIT, 'slabs stay within the arena')
  for (const buffer of live) arena.give(buffer)
  t.equal(arena.bytesApart, 0)
  const slabs = [arena.take(24 * UNIT), arena.take(24 * UNIT), arena.take(16 * UNIT)]
  t.equal(new Set(slabs.map((buffer) => buffer.buffer)).size, 3, 'three whole slabs')
  t.equal(arena.bytesApart, 0, 'none of them apart')
})

t.test('with a unit of whole pages, slab buffers start on a page: an O_DIRECT write takes them as they are', async (t) => {
  const arena = new BufferArena({ arenaBytes: 8 * PAGE_BYTES, unitBytes: PAGE_BYTES, maxSlabBytes: 4 * PAGE_BYTES })
  const buffers = [arena.take(PAGE_BYTES), arena.take(2 * PAGE_BYTES), arena.take(3 * PAGE_BYTES)]
  t.ok(buffers.every((buffer) => arena.pageAligned(buffer)), 'in the first slab and the second')
  t.not(buffers[2]!.buffer, buffers[0]!.buffer, 'two slabs')
  t.notOk(arena.pageAligned(Buffer.alloc(PAGE_BYTES)), 'not one of the arena\'s')
  const apart = arena.take(4 * PAGE_BYTES)
  t.equal(arena.bytesApart, 4 * PAGE_BYTES)
  t.notOk(arena.pageAligned(apart), 'allocated apart: no promise')
  t.notOk(new BufferArena({ arenaBytes: 64, unitBytes: 16 }).pageAligned(Buffer.alloc(16)), 'units of 16 bytes: no promise')
  const small = new BufferArena({ arenaBytes: 64, unitBytes: 16 })
  t.notOk(small.pageAligned(small.take(16)), 'a slab buffer, but units smaller than a page')

  // What the promise is for: the kernel refuses an O_DIRECT write from memory off a page (EINVAL).
  const path = join(await tempDir(t), 'direct')
  let fd: number
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600)
  } catch {
    t.comment('no O_DIRECT on the temp dir\'s file system: the write is not tried')
    return
  }
  try {
    for (const buffer of buffers) t.equal(writeSync(fd, buffer, 0, buffer.length, 0), buffer.length, 'written direct')
  } finally {
    closeSync(fd)
  }
})

t.test('a held buffer given back is reused only once every hold is released', async (t) => {
  const arena = new BufferArena({ arenaBytes: 2 * UNIT, unitBytes: UNIT })
  const a = arena.take(UNIT)
  const first = arena.hold(a)
  const second = arena.hold(a)
  arena.give(a)
  const b = arena.take(UNIT)
  t.not(b.byteOffset, a.byteOffset, 'the other unit')
  first()
  first()
  t.equal(arena.take(UNIT).buffer === a.buffer ? 'slab' : 'apart', 'apart', 'one hold left (a release twice counts once): still not reused')
  second()
  arena.give(b)
  const again = [arena.take(UNIT), arena.take(UNIT)]
  t.ok(again.some((buffer) => buffer.byteOffset === a.byteOffset && buffer.buffer === a.buffer), 'reused once released')

  const c = new BufferArena({ arenaBytes: UNIT, unitBytes: UNIT })
  const held = c.take(UNIT)
  c.hold(held)()
  t.equal(c.take(UNIT).buffer === held.buffer ? 'slab' : 'apart', 'apart', 'released before it was given back: still taken')
  c.give(held)
  t.equal(c.take(UNIT).buffer, held.buffer, 'given back after the release: reused at once')

  t.throws(() => arena.hold(Buffer.alloc(UNIT)), /only a slab buffer taken and not given back can be held/)
  const given = new BufferArena({ arenaBytes: UNIT, unitBytes: UNIT })
  const gone = given.take(UNIT)
  given.give(gone)
  t.throws(() => given.hold(gone), /only a slab buffer/, 'not once given back')
})

import t from 'tap'
import { BufferPool } from '../../src/buffers/buffer-pool.js'

t.test('a given-back buffer serves the next take of its exact size', async (t) => {
  const pool = new BufferPool(1024)
  const first = pool.take(100)
  t.equal(first.length, 100)
  pool.give(first)
  t.equal(pool.idleSize, 100)
  t.not(pool.take(200), first, 'another size gets a new buffer')
  t.equal(pool.take(100), first, 'the same size gets it back')
  t.equal(pool.idleSize, 0)
  t.not(pool.take(100), first, 'and only once')
})

t.test('idle buffers are capped; past the cap the oldest are left to the GC, whatever their size', async (t) => {
  const pool = new BufferPool(250)
  const [a, b, c] = [pool.take(100), pool.take(100), pool.take(100)]
  pool.give(a)
  pool.give(b)
  pool.give(c)
  t.equal(pool.idleSize, 200, 'the third would pass 250: the oldest went')
  t.equal(pool.take(100), c)
  t.equal(pool.take(100), b)
  t.not(pool.take(100), a)

  const odd = [pool.take(30), pool.take(70), pool.take(80)]
  for (const buffer of odd) pool.give(buffer)
  t.equal(pool.idleSize, 180)
  const current = pool.take(100)
  pool.give(current)
  t.equal(pool.idleSize, 250, 'odd sizes given back earlier make way for the size in use')
  t.equal(pool.take(100), current)
  t.equal(pool.take(80), odd[2], 'the newer odd ones stayed')
  t.equal(pool.take(70), odd[1])
  t.not(pool.take(30), odd[0], 'the oldest did not')
  t.equal(pool.idleSize, 0)
})

t.test('a buffer larger than the cap is never kept', async (t) => {
  const pool = new BufferPool(250)
  const small = pool.take(100)
  pool.give(small)
  pool.give(pool.take(300))
  t.equal(pool.idleSize, 100, 'and does not push out what is there')
  t.equal(pool.take(100), small)
})

t.test('a size with no idle buffer is cut from the largest idle one, whose rest stays idle', async (t) => {
  const pool = new BufferPool(1000)
  const [small, big, bigger] = [pool.take(100), pool.take(400), pool.take(500)]
  for (const buffer of [small, big, bigger]) pool.give(buffer)
  const piece = pool.take(150)
  t.equal(piece.length, 150)
  t.equal(piece.buffer, bigger.buffer, 'cut from the largest')
  t.equal(piece.byteOffset, bigger.byteOffset)
  t.equal(pool.idleSize, 850, 'its other 350 bytes are still idle')
  const rest = pool.take(350)
  t.equal(rest.buffer, bigger.buffer, 'and serve a take of their size')
  t.equal(rest.byteOffset, bigger.byteOffset + 150, 'without overlapping the piece')
  t.equal(pool.take(100), small, 'an exact size still comes first')
  t.equal(pool.take(400), big)
  t.equal(pool.idleSize, 0)
  const fresh = pool.take(50)
  t.not(fresh.buffer, bigger.buffer, 'with nothing idle, a new buffer')
})

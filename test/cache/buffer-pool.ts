import t from 'tap'
import { BufferPool } from '../../src/cache/buffer-pool.js'

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

t.test('idle buffers are capped; past the cap they are left to the GC', async (t) => {
  const pool = new BufferPool(250)
  const [a, b, c] = [pool.take(100), pool.take(100), pool.take(100)]
  pool.give(a)
  pool.give(b)
  pool.give(c)
  t.equal(pool.idleSize, 200, 'the third would pass 250')
  t.equal(pool.take(100), b)
  t.equal(pool.take(100), a)
  t.not(pool.take(100), c)
})

import t from 'tap'
import { S3Fifo } from '../../src/disk-cache/s3-fifo.js'

t.test('new keys pass through small; one read again moves to main; ghosts come back to main', async (t) => {
  const fifo = new S3Fifo<string>(50, 10)
  for (const key of ['a', 'b', 'c']) fifo.add(key, 10)
  t.equal(fifo.bytes, 30)
  fifo.hit('b')
  t.equal(fifo.victim(), 'a', 'small over its 10 %: its oldest, not read again, goes')
  t.equal(fifo.victim(), 'c', 'b was read again: moved to main, c goes')
  fifo.add('a', 10)
  t.equal(fifo.victim(), 'b', 'a ghost comes back to main, behind b')
  t.equal(fifo.victim(), 'a')
  t.equal(fifo.victim(), undefined, 'empty')
  fifo.hit('nothing')
  fifo.delete('nothing')
})

t.test('small under its share but main empty: small gives the victim', async (t) => {
  const fifo = new S3Fifo<string>(1000, 10)
  fifo.add('x', 5)
  t.equal(fifo.victim(), 'x')
})

t.test('main gives each read-again key one more pass per read, up to three', async (t) => {
  const fifo = new S3Fifo<string>(1000, 10)
  fifo.add('old', 10, true)
  fifo.add('new', 10, true)
  for (let i = 0; i < 5; i++) fifo.hit('old')
  t.equal(fifo.victim(), 'new', 'old had passes left')
  t.equal(fifo.victim(), 'old', 'then old')
})

t.test('ghosts are bounded', async (t) => {
  const fifo = new S3Fifo<string>(10, 1)
  fifo.add('a', 10)
  fifo.add('b', 10)
  t.equal(fifo.victim(), 'a')
  t.equal(fifo.victim(), 'b')
  fifo.add('a', 10)
  fifo.add('c', 10)
  t.equal(fifo.victim(), 'a', 'a\'s ghost was pushed out by b\'s: back in small, evicted first')
})

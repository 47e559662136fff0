import t from 'tap'
import { MeteredBackend, type ReadObserver } from '../../src/metrics/metered-backend.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { ramp } from '../fixtures/test-data.js'
import type { StorageBackend } from '../../src/backend/storage-backend.js'

/** A clock the test moves by hand; each read takes `step` ms. */
function clock() {
  let now = 1_000_000
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

t.test('counts reads, bytes, errors and reads in flight, and tells the observer', async (t) => {
  const events: string[] = []
  const observer: ReadObserver = {
    started: () => events.push('started'),
    finished: ({ bytes, failed }) => events.push(`finished ${bytes} ${failed}`),
  }
  const inner = new MemoryBackend(ramp(0, 1000))
  const metered = new MeteredBackend(inner, 'file', observer)
  t.equal(metered.length, 1000)
  t.equal(metered.mtime, inner.mtime)
  t.equal(metered.describe, undefined, 'no describe where the backend has none')
  t.ok((await metered.readExact(10, 20)).equals(ramp(10, 20)))
  await t.rejects(metered.readExact(990, 20), { code: 'E_OUT_OF_RANGE' })
  t.match(metered.stats(), { reads: 2, bytes: 20, errors: 1, inFlight: 0, recent: { count: 2, windowSeconds: 60 } })
  t.same(events, ['started', 'finished 20 false', 'started', 'finished 0 true'])
  await metered.close()
  await t.rejects(metered.readExact(0, 1), { code: 'E_CLOSED' }, 'close reaches the backend')
})

t.test('readNow: passed through; a read answered at once is counted, an undefined one is not', async (t) => {
  const events: string[] = []
  const observer: ReadObserver = {
    started: () => events.push('started'),
    finished: ({ bytes, failed }) => events.push(`finished ${bytes} ${failed}`),
  }
  const bytes = ramp(0, 100)
  const plain = new MeteredBackend(new MemoryBackend(bytes), 'file', observer)
  t.equal(plain.readNow(0, 10), undefined, 'a backend without readNow: undefined')
  let atHand = true
  const inner: StorageBackend = Object.assign(new MemoryBackend(bytes), {
    readNow: (offset: number, length: number) => (atHand ? [bytes.subarray(offset, offset + length)] : undefined),
  })
  const metered = new MeteredBackend(inner, 'http', observer)
  t.ok(Buffer.concat(metered.readNow(10, 5)!).equals(ramp(10, 5)))
  atHand = false
  t.equal(metered.readNow(10, 5), undefined)
  t.match(metered.stats(), { reads: 1, bytes: 5, errors: 0, inFlight: 0 })
  t.same(events, ['started', 'finished 5 false'])
})

t.test('recent latency: percentiles of the last minute, from a bounded ring', async (t) => {
  const time = clock()
  const slow: StorageBackend = {
    length: 10,
    mtime: new Date(0),
    describe: () => 'http://example/disk',
    readExact: async (_offset, length) => {
      time.advance(length) // a read of n bytes "takes" n ms
      return Buffer.alloc(length)
    },
    close: async () => {},
  }
  const metered = new MeteredBackend(slow, 'http', undefined, time.now)
  t.equal(metered.describe!(), 'http://example/disk', 'describe goes through')
  t.same(metered.stats().recent, { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null })
  for (let i = 1; i <= 10; i++) await metered.readExact(0, i)
  t.match(metered.stats().recent, { count: 10, p50Ms: 6, p99Ms: 10, maxMs: 10 })
  time.advance(61_000)
  t.match(metered.stats(), { reads: 10, recent: { count: 0 } }, 'a minute later none is recent')
  for (let i = 0; i < 1100; i++) await metered.readExact(0, 1)
  t.match(metered.stats(), { reads: 1110, recent: { count: 1024, p50Ms: 1, maxMs: 1 } }, 'the ring keeps the newest 1024')
})

t.test('a read in flight is counted until it settles', async (t) => {
  let finish!: (bytes: Buffer) => void
  const held: StorageBackend = { length: 4, mtime: new Date(0), readExact: () => new Promise((resolve) => (finish = resolve)), close: async () => {} }
  const metered = new MeteredBackend(held, 'mmap')
  const read = metered.readExact(0, 4)
  t.equal(metered.stats().inFlight, 1)
  finish(Buffer.alloc(4))
  await read
  t.equal(metered.stats().inFlight, 0)
})

t.test('inspect: the type and read counts, over what the layers below report', async (t) => {
  const inner: StorageBackend = Object.assign(new MemoryBackend(ramp(0, 100)), { inspect: () => ({ cachedBytes: 42, type: 'below' }) })
  const metered = new MeteredBackend(inner, 'http')
  await metered.readExact(0, 10)
  t.match(metered.inspect(), { type: 'http', cachedBytes: 42, reads: { reads: 1, bytes: 10, errors: 0, inFlight: 0 } }, "its own facts win over the inner's")
  t.same(Object.keys(new MeteredBackend(new MemoryBackend(ramp(0, 1)), 'file').inspect()).sort(), ['reads', 'type'], 'a backend with nothing to report adds nothing')
})

t.test('maintenance reads (warm, verify) pass through uncounted', async (t) => {
  const events: string[] = []
  const observer: ReadObserver = { started: () => events.push('started'), finished: () => events.push('finished') }
  const metered = new MeteredBackend(new MemoryBackend(ramp(0, 100)), 'file', observer)
  t.ok((await metered.readExact(10, 5, { maintenance: true })).equals(ramp(10, 5)))
  t.ok(Buffer.concat(await metered.readPieces(20, 5, { maintenance: true })).equals(ramp(20, 5)))
  t.match(metered.stats(), { reads: 0, bytes: 0 })
  t.same(events, [], 'nor told to the observer')
  await metered.readPieces(20, 5)
  t.match(metered.stats(), { reads: 1, bytes: 5 }, 'a reader\'s readPieces is counted')
})

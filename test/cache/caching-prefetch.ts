import t from 'tap'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import { BackendClosedError } from '../../src/backend/errors.js'
import { RecordingBackend, settle } from '../fixtures/recording-backend.js'
import { seededBytes } from '../fixtures/test-data.js'

const KIB = 1024
const BLOCK = 16 * KIB

function setup(size: number, { capacity = 64 * BLOCK, connections = 4 } = {}) {
  const bytes = seededBytes(size, size)
  const source = new RecordingBackend(bytes)
  const cache = new BlockCache({ capacityBytes: capacity, blockBytes: BLOCK })
  const backend = new CachingBackend(source, cache, { connections, now: () => 0 })
  return { bytes, source, cache, backend }
}

const ranges = (source: RecordingBackend) => source.reads.map((read) => [read.offset / BLOCK, read.length / BLOCK])

t.test('prefetch fetches the missing blocks in requests of the size asked, skipping cached ones; reads then hit', async (t) => {
  const { bytes, source, backend } = setup(40 * BLOCK + 100)
  await backend.readExact(3 * BLOCK, 10)
  const result = await backend.prefetch(BLOCK, 8 * BLOCK, 3 * BLOCK)
  t.same(ranges(source), [[3, 1], [1, 2], [4, 3], [7, 2]], 'block 3 was cached: runs around it, at most 3 blocks each')
  t.equal(result.bytes, 7 * BLOCK)
  t.same(result.blocks, [[1, 3], [4, 7], [7, 9]])
  t.equal(result.complete, true)
  t.ok(backend.isCached(8) && !backend.isCached(9))
  const before = source.reads.length
  t.ok((await backend.readExact(BLOCK, 8 * BLOCK, { stream: 5 })).equals(bytes.subarray(BLOCK, 9 * BLOCK)))
  t.equal(source.reads.length, before, 'every prefetched block was a hit')
  const tail = await backend.prefetch(40 * BLOCK, 100, 4 * BLOCK)
  t.equal(tail.bytes, 100, 'the image\'s short last block counts its own bytes')
  t.same(await backend.prefetch(BLOCK, 2 * BLOCK, 4 * BLOCK), { bytes: 0, blocks: [], complete: true }, 'nothing to do where all is cached')
  await backend.close()
})

t.test('prefetch waits behind demand reads and never takes the slot kept for them', async (t) => {
  const { source, backend } = setup(64 * BLOCK, { connections: 2 })
  source.hold = true
  const prefetching = backend.prefetch(0, 8 * BLOCK, BLOCK)
  await settle()
  const waiting = () => source.reads.filter((read) => read.outcome === undefined).map((read) => read.offset / BLOCK)
  t.same(waiting(), [0], 'one of two slots for prefetch: the other is kept for demand')
  const demand = backend.readExact(40 * BLOCK, 10, { stream: 1 })
  await settle()
  t.same(waiting(), [0, 40], 'a demand read starts at once')
  source.release(0)
  await settle()
  t.same(waiting(), [40], 'while the demand read holds a slot, prefetch gets none')
  source.release(40 * BLOCK)
  await settle()
  t.same(waiting(), [1], 'the next prefetch once it is done')
  source.hold = false
  source.release()
  await demand
  t.equal((await prefetching).bytes, 8 * BLOCK)
  await backend.close()
})

t.test('a reader of a block being prefetched waits on that fetch, moved ahead of the queue', async (t) => {
  const { bytes, source, backend } = setup(64 * BLOCK, { connections: 2 })
  source.hold = true
  const prefetching = backend.prefetch(0, 4 * BLOCK, BLOCK)
  await settle()
  const read = backend.readExact(3 * BLOCK + 7, 10, { stream: 1 })
  await settle()
  t.same(source.reads.map((r) => r.offset / BLOCK), [0, 3], 'block 3\'s prefetch, promoted, took the demand slot; no second request')
  source.hold = false
  source.release()
  t.ok((await read).equals(bytes.subarray(3 * BLOCK + 7, 3 * BLOCK + 17)))
  await prefetching
  t.equal(source.reads.length, 4, 'each block fetched once')
  await backend.close()
})

t.test('a failed prefetch rejects the prefetch, and a reader waiting on it gets a fetch of its own', async (t) => {
  const { bytes, source, backend } = setup(64 * BLOCK)
  source.hold = true
  source.failWhen = (read) => (read === source.reads[0] || read.offset === 5 * BLOCK ? new Error('server said 503') : undefined)
  const prefetching = backend.prefetch(2 * BLOCK, BLOCK, BLOCK)
  await settle()
  const read = backend.readExact(2 * BLOCK, 100, { stream: 1 })
  await settle()
  source.hold = false
  source.release()
  await t.rejects(prefetching, /503/, 'the prefetcher hears of it')
  t.ok((await read).equals(bytes.subarray(2 * BLOCK, 2 * BLOCK + 100)), 'the read does not')
  t.same(ranges(source), [[2, 1], [2, 1]], 'asked again, as a demand read')
  await t.rejects(backend.prefetch(5 * BLOCK, BLOCK, BLOCK), /503/, 'nobody waiting: just the prefetch fails')
  t.notOk(backend.isCached(5))
  await backend.close()
})

t.test('a read whose demand retry fails too gets that error', async (t) => {
  const { source, backend } = setup(64 * BLOCK)
  source.hold = true
  source.failWhen = () => new Error('server said 500')
  const prefetching = backend.prefetch(0, BLOCK, BLOCK)
  await settle()
  const read = backend.readExact(0, 100, { stream: 1 })
  await settle()
  source.hold = false
  source.release()
  await t.rejects(prefetching, /500/)
  await t.rejects(read, /500/)
  await backend.close()
})

t.test('prefetch stops short where the cache has no room, and says so', async (t) => {
  const { source, backend } = setup(64 * BLOCK, { capacity: 4 * BLOCK, connections: 8 })
  source.hold = true
  const demand = backend.readExact(0, 3 * BLOCK, { stream: 1 })
  await settle()
  const prefetching = backend.prefetch(10 * BLOCK, 4 * BLOCK, BLOCK)
  await settle()
  source.hold = false
  source.release()
  await demand
  const result = await prefetching
  t.equal(result.complete, false, 'one block of room: the rest is left for later')
  t.same(result.blocks, [[10, 11]])
  await backend.close()
})

t.test('prefetch after close fails; one in flight at close ends', async (t) => {
  const { source, backend } = setup(64 * BLOCK)
  source.hold = true
  const prefetching = backend.prefetch(0, 2 * BLOCK, BLOCK)
  await settle()
  const read = backend.readExact(0, 10, { stream: 1 })
  await settle()
  await backend.close()
  await t.rejects(prefetching, BackendClosedError, 'a closed backend\'s prefetch reports the close')
  await t.rejects(read, BackendClosedError, 'and its reader is not given a fetch of its own')
  await t.rejects(backend.prefetch(0, BLOCK, BLOCK), BackendClosedError)
})

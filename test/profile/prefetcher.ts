import t from 'tap'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import type { BootProfile, ProfileRun } from '../../src/profile/format.js'
import type { LoadedProfile } from '../../src/profile/load.js'
import { PrefetchingBackend, type PrefetcherOptions } from '../../src/profile/prefetcher.js'
import { RecordingBackend, settle } from '../fixtures/recording-backend.js'
import { ManualClock } from '../fixtures/manual-clock.js'
import { seededBytes } from '../fixtures/test-data.js'

const KIB = 1024
const BLOCK = 16 * KIB
const RECORDED = new Date('2026-12-01T10:00:00Z')

function profileOf(runs: Array<[number, number]>, { blockBytes = BLOCK, bytes = 64 * BLOCK } = {}): LoadedProfile {
  const profile: BootProfile = {
    identity: { bytes, validator: '"v"' },
    blockBytes,
    recordedAt: RECORDED,
    runs: runs.map(([firstBlock, blockCount], i): ProfileRun => ({ firstBlock, blockCount, atMs: i })),
  }
  return { profile, label: '/profiles/boot.json' }
}

function setup(runs: Array<[number, number]> | undefined, options: Partial<PrefetcherOptions> & { capacity?: number; connections?: number; size?: number; profileBlock?: number } = {}) {
  const { capacity = 64 * BLOCK, connections = 8, size = 64 * BLOCK, profileBlock = BLOCK, ...rest } = options
  const bytes = seededBytes(size, size)
  const source = new RecordingBackend(bytes)
  const cache = new BlockCache({ capacityBytes: capacity, blockBytes: BLOCK })
  const caching = new CachingBackend(source, cache, { connections, now: () => 0 })
  const logs: { info: string[]; warn: string[] } = { info: [], warn: [] }
  const logger = { info: (m: string) => logs.info.push(m), warn: (m: string) => logs.warn.push(m), error: () => {} }
  const clock = new ManualClock()
  const profile = runs && profileOf(runs, { blockBytes: profileBlock, bytes: size })
  const backend = new PrefetchingBackend(caching, {
    name: 'disk',
    label: '/profiles/boot.json',
    profile: Promise.resolve(profile),
    aheadBytes: 1024 * BLOCK,
    concurrency: 1,
    logger,
    clock,
    wallNow: () => RECORDED.getTime() + 90_000,
    ...rest,
  })
  return { bytes, source, cache, caching, backend, logs, clock }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await settle()
  if (!condition()) throw new Error('condition never held')
}

const fetched = (source: RecordingBackend) => source.reads.map((read) => [read.offset / BLOCK, read.length / BLOCK])

t.test("the profile's blocks are prefetched in recorded order, each once; reads of them are hits", async (t) => {
  const { bytes, source, backend, logs } = setup([[10, 3], [3, 1], [11, 1], [40, 2], [42, 1]])
  t.equal(backend.inspect().prefetch?.state, 'loading')
  await until(() => backend.report().state === 'done')
  t.same(fetched(source), [[10, 3], [3, 1], [40, 3]], 'recorded order; block 11 listed twice, fetched once; adjacent runs in one request')
  t.ok((await backend.readExact(10 * BLOCK + 5, 2 * BLOCK, { stream: 1 })).equals(bytes.subarray(10 * BLOCK + 5, 12 * BLOCK + 5)))
  t.ok((await backend.readPieces(3 * BLOCK, 10, { stream: 2 })).length === 1)
  t.ok(backend.readNow(40 * BLOCK, 100, 3), 'cached: answered at once')
  t.equal(backend.readNow(50 * BLOCK, 100, 3), undefined, 'not listed, not cached')
  await backend.readExact(40 * BLOCK, 100, { maintenance: true })
  t.equal(source.reads.length, 3, 'no read went to the source')
  t.same(backend.inspect().prefetch, {
    state: 'done',
    profile: '/profiles/boot.json',
    profileBytes: 7 * BLOCK,
    prefetchedBytes: 7 * BLOCK,
    hitBlocks: 5,
    hitBytes: 5 * BLOCK,
    wastedBytes: 2 * BLOCK,
    evictedBytes: 0,
    ageSeconds: 90,
    failures: 0,
  })
  t.match(logs.info, [/disk: prefetching 7 blocks \(114688 bytes\) from boot profile \/profiles\/boot.json/, /prefetched: 114688 of its 114688 bytes fetched/])
  t.equal(backend.length, 64 * BLOCK)
  t.equal(backend.integrity, undefined)
  await backend.close()
})

t.test('at most `concurrency` prefetches in flight', async (t) => {
  const { source, backend } = setup([[1, 1], [5, 1], [9, 1], [13, 1], [17, 1]], { concurrency: 2 })
  source.hold = true
  await until(() => source.reads.length === 2)
  await settle()
  t.same(fetched(source), [[1, 1], [5, 1]], 'two of five')
  source.release(BLOCK)
  await until(() => source.reads.length === 3)
  t.same(fetched(source)[2], [9, 1], 'the next as one lands')
  source.hold = false
  source.release()
  await until(() => backend.report().state === 'done')
  t.equal(source.reads.length, 5)
  await backend.close()
})

t.test('it runs at most aheadBytes of listed blocks beyond the furthest one read, and the readers move it on', async (t) => {
  const { source, backend } = setup([[1, 1], [3, 1], [5, 1], [7, 1], [9, 1], [11, 1]], { aheadBytes: 2 * BLOCK, concurrency: 4 })
  await until(() => backend.report().state === 'waiting')
  t.same(fetched(source), [[1, 1], [3, 1]], 'two blocks ahead, then it waits')
  await backend.readExact(BLOCK, 10, { stream: 1 })
  await until(() => source.reads.length === 3)
  t.same(fetched(source)[2], [5, 1], 'one read: one more block')
  await backend.readExact(7 * BLOCK, 10, { stream: 1 })
  await until(() => source.reads.length === 6)
  t.same(fetched(source).slice(3), [[7, 1], [9, 1], [11, 1]], 'a reader that skips ahead takes the window with it')
  await until(() => backend.report().state === 'done')
  t.equal(backend.report().hitBlocks, 1, 'block 7 was read before the prefetch reached it: a demand fetch, no hit')
  await backend.readExact(60 * BLOCK, 10, { stream: 1 })
  t.equal(backend.report().state, 'done', 'an unlisted read changes nothing')
  await backend.close()
})

t.test('a reader never waits for prefetch: its read takes the slot kept for demand', async (t) => {
  const { bytes, source, backend } = setup([[1, 1], [3, 1], [5, 1]], { connections: 2, concurrency: 2 })
  source.hold = true
  await until(() => source.reads.length === 1)
  await settle()
  t.equal(source.reads.length, 1, 'prefetch holds one of two slots, however many it may have in flight')
  const read = backend.readExact(30 * BLOCK, 10, { stream: 1 })
  await until(() => source.reads.length === 2)
  source.release(30 * BLOCK)
  t.ok((await read).equals(bytes.subarray(30 * BLOCK, 30 * BLOCK + 10)), 'answered while the prefetch is still held')
  source.hold = false
  source.release()
  await until(() => backend.report().state === 'done')
  await backend.close()
})

t.test('a reader of a block being prefetched waits on that fetch, and it counts as a hit', async (t) => {
  const { source, backend } = setup([[1, 1]])
  source.hold = true
  await until(() => source.reads.length === 1)
  const read = backend.readExact(BLOCK, 10, { stream: 1 })
  await settle()
  source.hold = false
  source.release()
  await read
  await until(() => backend.report().state === 'done')
  t.equal(source.reads.length, 1)
  t.equal(backend.report().hitBlocks, 1)
  await backend.close()
})

t.test('failed prefetches are logged once, skipped, never seen by a reader; many stop it', async (t) => {
  const { bytes, source, backend, logs } = setup([[1, 1], [3, 1], [5, 1]])
  source.failWhen = (read) => (read.offset === 3 * BLOCK && source.reads.filter((r) => r.offset === 3 * BLOCK).length === 1 ? new Error('server said 503') : undefined)
  await until(() => backend.report().state === 'done')
  t.same(fetched(source), [[1, 1], [3, 1], [5, 1]], 'skipped, and on to the next')
  t.equal(backend.report().failures, 1)
  t.match(logs.warn, [/disk: prefetch of blocks 3-3 from boot profile \/profiles\/boot.json failed \(server said 503\); skipped/])
  t.ok((await backend.readExact(3 * BLOCK, 10, { stream: 1 })).equals(bytes.subarray(3 * BLOCK, 3 * BLOCK + 10)), 'the reader fetches it itself')
  await backend.close()

  const failing = setup(Array.from({ length: 12 }, (_, i): [number, number] => [2 * i, 1]))
  failing.source.failWhen = () => new Error('server said 500')
  await until(() => failing.backend.report().state === 'stopped')
  t.equal(failing.source.reads.length, 8, 'stopped after 8 failures')
  t.equal(failing.logs.warn.length, 2, 'the first failure, and the stop')
  t.match(failing.logs.warn[1], /stopped after 8 failures; the last: server said 500/)
  await failing.backend.close()
})

t.test('where the cache has no room, it asks again a little later', async (t) => {
  const { source, backend, clock } = setup([[10, 2]], { capacity: 4 * BLOCK, connections: 8 })
  source.hold = true
  const demand = backend.readExact(0, 3 * BLOCK, { stream: 1 })
  await until(() => clock.pending.length === 1)
  t.same(fetched(source), [[0, 3]], 'no room for the two blocks: nothing prefetched yet')
  t.equal(backend.report().state, 'prefetching')
  source.hold = false
  source.release()
  await demand
  await clock.advance(50)
  await until(() => backend.report().state === 'done')
  t.same(fetched(source).slice(1), [[10, 2]], 'asked again once the wait is over')
  t.equal(backend.report().prefetchedBytes, 2 * BLOCK)
  await backend.close()

  const closing = setup([[10, 2]], { capacity: 4 * BLOCK, connections: 8 })
  closing.source.hold = true
  const read = closing.backend.readExact(0, 3 * BLOCK, { stream: 1 })
  await until(() => closing.clock.pending.length === 1)
  await closing.backend.close()
  t.same(closing.clock.pending, [], 'closed while it waits for room: the wait is cancelled')
  closing.source.release()
  await t.rejects(read)
})

t.test('prefetched blocks evicted before they are read are counted as wasted', async (t) => {
  const { backend, caching } = setup([[1, 1], [3, 1]], { capacity: 4 * BLOCK })
  await until(() => backend.report().state === 'done')
  for (let block = 20; block < 28; block++) await backend.readExact(block * BLOCK, 10, { stream: block })
  t.ok(!caching.isCached(1) && caching.isCached(3), 'block 1 evicted; block 3, readahead not yet read, spared a round')
  t.match(backend.report(), { prefetchedBytes: 2 * BLOCK, wastedBytes: 2 * BLOCK, evictedBytes: BLOCK }, 'both unread, one of them evicted')
  await backend.readExact(BLOCK, 10, { stream: 99 })
  await backend.readExact(3 * BLOCK, 10, { stream: 99 })
  t.match(backend.report(), { hitBlocks: 1, wastedBytes: BLOCK, evictedBytes: BLOCK }, 'block 1 read after its eviction: still wasted, not a hit; block 3 a hit')
  await backend.close()
})

t.test("a profile's blocks of another size are read as the cache's blocks; the image's last is short", async (t) => {
  const size = 10 * BLOCK + 100
  const { source, backend } = setup([[1, 1], [2, 1]], { profileBlock: 4 * BLOCK, size })
  await until(() => backend.report().state === 'done')
  t.same(source.reads.map((read) => [read.offset, read.length]), [[4 * BLOCK, 6 * BLOCK + 100]])
  t.equal(backend.report().profileBytes, 6 * BLOCK + 100)
  await backend.close()
})

t.test('no profile: nothing is prefetched, reads go on as before', async (t) => {
  const { bytes, source, backend } = setup(undefined)
  await settle()
  t.match(backend.inspect().prefetch, { state: 'unused', profile: '/profiles/boot.json', profileBytes: 0, ageSeconds: null })
  t.ok((await backend.readExact(5, 10, { stream: 1 })).equals(bytes.subarray(5, 15)))
  t.equal(source.reads.length, 1)
  await backend.close()
})

t.test('closed before its profile loads, or while prefetching: it stops quietly', async (t) => {
  let resolve!: (loaded: LoadedProfile | undefined) => void
  const early = setup(undefined, { profile: new Promise((r) => (resolve = r)) })
  await early.backend.close()
  resolve(profileOf([[1, 1]]))
  await settle()
  t.equal(early.backend.report().state, 'unused')
  t.equal(early.source.reads.length, 0)

  const late = setup([[1, 1], [3, 1], [5, 1]], { capacity: 4 * BLOCK })
  late.source.hold = true
  await until(() => late.source.reads.length === 1)
  await late.backend.close()
  await settle()
  t.same(late.logs.warn, [], 'the close is no failure')
  t.equal(late.source.reads.length, 1)
})

t.test('a bad concurrency is refused', async (t) => {
  t.throws(() => setup([], { concurrency: 0 }), RangeError)
})

t.test('describe, identity and revalidate are those of the layer below', async (t) => {
  const source = Object.assign(new RecordingBackend(4 * BLOCK), { identity: () => ({ source: 'http://h/d', size: 4 * BLOCK, validator: '"v"' }) })
  let revalidated = 0
  const caching = new CachingBackend(source, new BlockCache({ capacityBytes: 4 * BLOCK, blockBytes: BLOCK }), { connections: 2 })
  const logger = { info: () => {}, warn: () => {}, error: () => {} }
  const backend = new PrefetchingBackend(caching, { name: 'd', label: 'p', profile: Promise.resolve(undefined), aheadBytes: BLOCK, concurrency: 1, logger })
  t.equal(backend.describe?.(), 'recording')
  t.same(backend.identity?.(), { source: 'http://h/d', size: 4 * BLOCK, validator: '"v"' })
  t.equal(backend.mtime.getTime(), source.mtime.getTime())
  t.equal(backend.revalidate, undefined, 'the cache does not pass revalidate on: remote sources need none')
  await backend.close()
  const revalidating = new PrefetchingBackend(Object.assign(caching, { revalidate: () => revalidated++ }), { name: 'd', label: 'p', profile: Promise.resolve(undefined), aheadBytes: BLOCK, concurrency: 1, logger })
  revalidating.revalidate?.()
  t.equal(revalidated, 1, 'a layer below that has it gets it')
})

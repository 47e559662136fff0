import t from 'tap'
import { BlockCache, type Extent } from '../../src/cache/block-cache.js'

const BLOCK = 4096

function block(fill: number, blocks = 1): Buffer {
  return Buffer.alloc(blocks * BLOCK, fill)
}

/** What CachingBackend does with a fetch's bytes: reserve room, insert, and let go of the pin. */
function put(cache: BlockCache, owner: number, firstBlock: number, data: Buffer, stream: number, readahead = false): Extent {
  const reserved = cache.reserve(data.length)
  const extent = cache.insert(owner, firstBlock, data, stream, { readahead, reserved, pooled: false })
  cache.unpin(extent)
  return extent
}

/** The bytes of a cached block, or undefined. */
function read(cache: BlockCache, owner: number, blockIndex: number, stream: number): Buffer | undefined {
  const extent = cache.lookup(owner, blockIndex, stream)
  return extent && cache.blockOf(extent, blockIndex)
}

t.test('options are checked where they enter', async (t) => {
  t.throws(() => new BlockCache({ capacityBytes: 1 << 20, blockBytes: 3000 }), /power of two/)
  t.throws(() => new BlockCache({ capacityBytes: 1 << 20, blockBytes: 0 }), /power of two/)
  t.throws(() => new BlockCache({ capacityBytes: 100, blockBytes: BLOCK }), /at least one block/)
  t.throws(() => new BlockCache({ capacityBytes: BLOCK + 0.5, blockBytes: BLOCK }), /whole number/)
})

t.test('a lookup finds the bytes of each block of an extent, and counts hits and misses', async (t) => {
  const cache = new BlockCache({ capacityBytes: 16 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  const data = Buffer.concat([block(1), block(2), Buffer.alloc(100, 3)])
  put(cache, owner, 10, data, 1, false)
  t.same(read(cache, owner, 10, 1), block(1))
  t.same(read(cache, owner, 11, 1), block(2))
  t.same(read(cache, owner, 12, 1), Buffer.alloc(100, 3), 'a short last block stays short')
  t.equal(read(cache, owner, 13, 1), undefined)
  t.equal(cache.lookup(cache.register(), 10, 1), undefined, 'owners are kept apart')
  t.ok(cache.has(owner, 11))
  t.notOk(cache.has(owner, 9))
  t.match(cache.stats(), { hits: 3, misses: 2, fetches: 1, fetchedBytes: data.length, readaheadBytes: 0, bytesInUse: data.length })
  t.equal(cache.bytesOf(owner), data.length)
})

t.test('readahead bytes are counted apart; an extent larger than the cache is not kept', async (t) => {
  const cache = new BlockCache({ capacityBytes: 2 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(1, 3), 1, true)
  t.match(cache.stats(), { fetchedBytes: 3 * BLOCK, readaheadBytes: 3 * BLOCK, bytesInUse: 0 })
  t.notOk(cache.has(owner, 0))
})

t.test('blocks already cached are not replaced; a dropped owner caches nothing more', async (t) => {
  const cache = new BlockCache({ capacityBytes: 16 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 1, block(1), 1, false)
  put(cache, owner, 0, block(9, 2), 1, false)
  t.same(read(cache, owner, 1, 1), block(1))
  t.notOk(cache.has(owner, 0), 'an overlapping extent is not inserted')
  cache.drop(owner)
  t.equal(cache.stats().bytesInUse, 0)
  put(cache, owner, 5, block(5), 1, false)
  t.notOk(cache.has(owner, 5))
  cache.drop(owner)
  t.equal(cache.bytesOf(owner), 0)
})

t.test('the bound holds whatever is inserted', async (t) => {
  const capacity = 10 * BLOCK
  const cache = new BlockCache({ capacityBytes: capacity, blockBytes: BLOCK })
  const owners = [cache.register(), cache.register()]
  let next = 1
  for (let i = 0; i < 2000; i++) {
    const owner = owners[i % 2]!
    const first = (i * 7919) % 97
    const blocks = 1 + (i % 4)
    put(cache, owner, first, block(i % 256, blocks), next++ % 5, i % 3 === 0)
    if (i % 5 === 0) read(cache, owner, (i * 31) % 97, i % 7)
    t.ok(cache.stats().bytesInUse <= capacity, `bound after insert ${i}`) || t.bailout()
  }
  const { bytesInUse, evictions } = cache.stats()
  t.equal(bytesInUse, cache.bytesOf(owners[0]!) + cache.bytesOf(owners[1]!), 'the level matches what the owners hold')
  t.ok(evictions > 0)
  cache.drop(owners[0]!)
  cache.drop(owners[1]!)
  t.equal(cache.stats().bytesInUse, 0)
})

t.test('a long scan does not flush a working set that other streams read again', async (t) => {
  const capacity = 100 * BLOCK
  const cache = new BlockCache({ capacityBytes: capacity, blockBytes: BLOCK })
  const owner = cache.register()
  const workingSet = Array.from({ length: 40 }, (_, i) => i)
  // A boot reads its blocks (stream 1), and a second reader reads them again (stream 2).
  for (const b of workingSet) put(cache, owner, b, block(b), 1, false)
  for (const b of workingSet) t.ok(read(cache, owner, b, 2))
  // A scan of ten times the cache, each block read by its own stream's sequential pass.
  for (let b = 1000; b < 2000; b++) {
    put(cache, owner, b, block(b % 256), 3, true)
    read(cache, owner, b, 3)
  }
  const kept = workingSet.filter((b) => cache.has(owner, b)).length
  t.equal(kept, workingSet.length, 'the whole working set is still cached')
  t.ok(cache.stats().bytesInUse <= capacity)
})

t.test('reads by the stream that fetched an extent are not re-references', async (t) => {
  const cache = new BlockCache({ capacityBytes: 20 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(1), 7, false)
  for (let i = 0; i < 10; i++) read(cache, owner, 0, 7)
  // Enough new data to push the small queue over: the extent was never re-referenced, so it goes.
  for (let b = 1; b <= 40; b++) put(cache, owner, b, block(b), 8, false)
  t.notOk(cache.has(owner, 0), 'one stream reading a block many times does not protect it')
})

t.test('an extent fetched again soon after eviction goes to the main queue (ghost hit)', async (t) => {
  const cache = new BlockCache({ capacityBytes: 20 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(1), 1, false)
  for (let b = 1; b <= 21; b++) put(cache, owner, b, block(b), 1, false)
  t.notOk(cache.has(owner, 0), 'evicted from the small queue')
  put(cache, owner, 0, block(1), 2, false)
  // Another scan through the small queue leaves the ghost-hit extent alone.
  for (let b = 100; b < 140; b++) put(cache, owner, b, block(b), 3, false)
  t.ok(cache.has(owner, 0), 'kept in the main queue')
})

t.test('the ghost list is bounded', async (t) => {
  const cache = new BlockCache({ capacityBytes: 4 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  for (let b = 0; b < 100; b++) put(cache, owner, b, block(b), 1, false)
  // Block 0's ghost was pushed out by 95 later ones: it comes back through the small queue.
  put(cache, owner, 0, block(0), 1, false)
  for (let b = 200; b < 204; b++) put(cache, owner, b, block(b), 1, false)
  t.notOk(cache.has(owner, 0))
})

t.test('main-queue extents get one more pass per re-reference', async (t) => {
  const cache = new BlockCache({ capacityBytes: 10 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  // Promote blocks 0..8 to the main queue: each is re-referenced while in the small queue.
  for (let b = 0; b < 9; b++) {
    put(cache, owner, b, block(b), 1, false)
    read(cache, owner, b, 2)
  }
  for (let b = 100; b < 110; b++) put(cache, owner, b, block(b), 1, false)
  // Re-reference block 0 in the main queue: it survives the next eviction from the main queue.
  read(cache, owner, 0, 3)
  read(cache, owner, 0, 4)
  for (let b = 200; b < 230; b++) {
    put(cache, owner, b, block(b), 5, false)
    read(cache, owner, b, 6)
  }
  t.ok(cache.stats().evictions > 0)
  t.ok(cache.stats().bytesInUse <= 10 * BLOCK)
})

t.test('reserved room counts against the bound until the fetch lands or gives up', async (t) => {
  const cache = new BlockCache({ capacityBytes: 4 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(0, 2), 1, false)
  t.ok(cache.reserve(2 * BLOCK))
  t.ok(cache.reserve(2 * BLOCK), 'room is made by evicting')
  t.notOk(cache.has(owner, 0))
  t.notOk(cache.reserve(BLOCK), 'all of it is promised')
  t.match(cache.stats(), { bytesInUse: 0, bytesReserved: 4 * BLOCK })
  cache.unpin(cache.insert(owner, 10, block(1, 2), 1, { readahead: true, reserved: true, pooled: false }))
  cache.release(2 * BLOCK)
  t.match(cache.stats(), { bytesInUse: 2 * BLOCK, bytesReserved: 0 })
  cache.drop(owner)
  t.ok(cache.reserve(BLOCK))
  cache.unpin(cache.insert(owner, 0, block(1), 1, { readahead: false, reserved: true, pooled: false }))
  t.match(cache.stats(), { bytesInUse: 0, bytesReserved: 0 }, 'a dropped owner\'s fetch gives its room back')
})

t.test('readahead its reader has not got through goes round the small queue once more', async (t) => {
  const cache = new BlockCache({ capacityBytes: 40 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  // Two readahead extents of 4 blocks: one read to its end, one only half way.
  put(cache, owner, 0, block(1, 4), 1, true)
  put(cache, owner, 4, block(2, 4), 1, true)
  for (const b of [0, 1, 2, 3, 4, 5]) read(cache, owner, b, 1)
  // Enough new data to push both out of the small queue once.
  for (let b = 100; b < 134; b++) put(cache, owner, b, block(b), 2)
  t.notOk(cache.has(owner, 0), 'the extent read through is gone')
  t.ok(cache.has(owner, 6), 'the half-read one got another pass')
  for (let b = 200; b < 240; b++) put(cache, owner, b, block(b), 3)
  t.notOk(cache.has(owner, 6), 'but only one')
})

t.test('a stream recycles what it fetched ahead and read through, though the cache has room', async (t) => {
  const cache = new BlockCache({ capacityBytes: 100 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  // A sequential reader: each block fetched ahead by stream 1, then read through by it.
  for (let b = 0; b < 60; b++) {
    put(cache, owner, b, block(b), 1, true)
    read(cache, owner, b, 1)
  }
  // The small queue's share (10 blocks), not 60 blocks of a 100-block cache.
  t.equal(cache.stats().bytesInUse, 10 * BLOCK)
  t.notOk(cache.has(owner, 0))
  t.ok(cache.has(owner, 59))
  // Read again by a new stream: fetched again, it goes to the main queue (a ghost hit) and stays.
  put(cache, owner, 0, block(0), 2, true)
  read(cache, owner, 0, 2)
  for (let b = 100; b < 160; b++) {
    put(cache, owner, b, block(b), 3, true)
    read(cache, owner, b, 3)
  }
  t.ok(cache.has(owner, 0))
})

t.test('read-through readahead that another stream reads too, or not read through, or fetched on demand, stays', async (t) => {
  const cache = new BlockCache({ capacityBytes: 100 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(0), 1, true)
  read(cache, owner, 0, 1)
  read(cache, owner, 0, 2)
  put(cache, owner, 1, block(1, 2), 1, true)
  read(cache, owner, 1, 1)
  put(cache, owner, 3, block(3), 1, false)
  read(cache, owner, 3, 1)
  for (let b = 10; b < 60; b++) {
    put(cache, owner, b, block(b), 1, true)
    read(cache, owner, b, 1)
  }
  t.ok(cache.has(owner, 0), 'read by two streams')
  t.ok(cache.has(owner, 1), 'only half read')
  t.ok(cache.has(owner, 3), 'a demand fetch')
  t.notOk(cache.has(owner, 10))
})

t.test('readahead whose last block was read before the others is not recycled until every block is read', async (t) => {
  const cache = new BlockCache({ capacityBytes: 100 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  // Out of order, as the kernel's readahead and FUSE's threads hand reads over: 3 and 0, not 1, 2.
  put(cache, owner, 0, block(1, 4), 1, true)
  read(cache, owner, 3, 1)
  read(cache, owner, 0, 1)
  read(cache, owner, 0, 1)
  for (let b = 10; b < 60; b++) {
    put(cache, owner, b, block(b), 1, true)
    read(cache, owner, b, 1)
  }
  t.ok(cache.has(owner, 1), 'blocks 1 and 2 not read yet: kept')
  read(cache, owner, 1, 1)
  read(cache, owner, 2, 1)
  for (let b = 60; b < 80; b++) {
    put(cache, owner, b, block(b), 1, true)
    read(cache, owner, b, 1)
  }
  t.notOk(cache.has(owner, 1), 'read through: recycled in its turn')
})

t.test('a read-through extent moved to the main queue is not recycled as scan data', async (t) => {
  const cache = new BlockCache({ capacityBytes: 10 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  put(cache, owner, 0, block(0), 1, true)
  read(cache, owner, 0, 1)
  read(cache, owner, 0, 2)
  // Fill the cache with demand data: block 0, re-referenced, moves to the main queue.
  for (let b = 100; b < 120; b++) put(cache, owner, b, block(b), 3, false)
  t.ok(cache.has(owner, 0))
  for (let b = 200; b < 204; b++) {
    put(cache, owner, b, block(b), 4, true)
    read(cache, owner, b, 4)
  }
  t.ok(cache.has(owner, 0), 'still in the main queue')
})

t.test('fetches waiting for room get it in the order they asked, as fetches land or give up', async (t) => {
  const cache = new BlockCache({ capacityBytes: 4 * BLOCK, blockBytes: BLOCK })
  const owner = cache.register()
  t.throws(() => cache.waitForRoom(5 * BLOCK, () => {}), /can never fit/, 'a fetch larger than the cache would wait forever')
  t.ok(cache.reserve(2 * BLOCK))
  t.ok(cache.reserve(2 * BLOCK))
  const granted: string[] = []
  cache.waitForRoom(3 * BLOCK, () => {
    granted.push('a')
    // A source that answers at once lands inside the grant: the next waiter is served after.
    cache.unpin(cache.insert(owner, 0, block(1, 3), 1, { readahead: false, reserved: true, pooled: false }))
  })
  const withdrawn = cache.waitForRoom(BLOCK, () => granted.push('withdrawn'))
  cache.waitForRoom(BLOCK, () => granted.push('c'))
  t.notOk(cache.reserve(BLOCK), 'a readahead reservation does not jump the queue')
  withdrawn()
  cache.release(2 * BLOCK)
  t.same(granted, [], 'two blocks free: not enough for the first in line, and nobody passes it')
  cache.unpin(cache.insert(owner, 10, block(2, 2), 1, { readahead: false, reserved: true, pooled: false }))
  t.same(granted, ['a', 'c'], 'a fetch landed: its bytes are evictable, the first gets its room, then the next')
  t.match(cache.stats(), { bytesReserved: BLOCK })
  cache.release(BLOCK)
  cache.waitForRoom(4 * BLOCK, () => granted.push('d'))
  t.same(granted, ['a', 'c'])
  cache.drop(owner)
  t.same(granted, ['a', 'c', 'd'], 'dropping a snapshot frees its room too')
})

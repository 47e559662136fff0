import t, { type Test } from 'tap'
import { truncate } from 'node:fs/promises'
import type { DiskCacheOptions } from '../../src/disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../../src/disk-cache/disk-cached-backend.js'
import { CRC32C_DIGEST, DIGEST_PIECE_BYTES } from '../../src/disk-cache/block-digest.js'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { seededBytes, seededRandom } from '../fixtures/test-data.js'
import { filledDiskCache, flipBits, IDENTITY } from '../fixtures/filled-disk-cache.js'

// Small reads of blocks on disk but not in the page cache (after a restart: the cache writes and
// reads past it): only the 16 KiB pieces under a read are read and checked (DiskCache.readPieces,
// DiskCachedBackend.readSmall), and the memory cache asks for them on a random miss.

const KIB = 1024
/** Eight pieces per block. */
const BLOCK = 8 * DIGEST_PIECE_BYTES

/** A disk cache over `bytes` filled with every block, and its log lines. */
function filled(t: Test, bytes: Buffer, options: Partial<DiskCacheOptions> = {}) {
  return filledDiskCache(t, bytes, options.blockBytes ?? BLOCK, 128, { ...options })
}

t.test('a small read of a block on disk reads and checks only its pieces: the right bytes, a hit, nothing from the source', async (t) => {
  const bytes = seededBytes(60, 6 * BLOCK + 5000)
  const { cache, source, backend, lines } = await filled(t, bytes)
  t.equal(backend.readNow(0, 10), undefined, 'not in the page cache: readNow cannot')
  const before = source.reads.length
  const hits = cache.stats().hits
  const random = seededRandom(61)
  for (let round = 0; round < 100; round++) {
    const offset = Math.floor(random() * bytes.length)
    const block = Math.floor(offset / BLOCK)
    const length = Math.min(1 + Math.floor(random() * 40 * KIB), (block + 1) * BLOCK - offset, bytes.length - offset)
    const pieces = await backend.readSmall(offset, length)
    t.ok(pieces, `${offset}+${length} answered`)
    if (!Buffer.concat(pieces!).equals(bytes.subarray(offset, offset + length))) t.fail(`wrong bytes at ${offset}+${length}`)
  }
  t.equal(source.reads.length, before, 'nothing from the source')
  t.equal(cache.stats().hits - hits, 100, 'one hit each')
  t.same(lines, [])
  t.equal(await backend.readSmall(BLOCK - 10, 20), undefined, 'across two blocks')
  t.equal(await backend.readSmall(0, 0), undefined, 'nothing to read')
  t.equal(await backend.readSmall(bytes.length - 1, 2), undefined, 'out of range')
  const other = new DiskCachedBackend(new RecordingBackend(bytes), cache, { ...IDENTITY, validator: '"etag-2"', size: bytes.length })
  t.equal(await other.readSmall(0, 10), undefined, 'another identity: not on disk')
  const crc = await filled(t, seededBytes(62, 2 * BLOCK), { digest: CRC32C_DIGEST })
  t.equal(await crc.backend.readSmall(0, 10), undefined, 'a digest of the whole block: read as usual')
  await backend.close()
  t.equal(await backend.readSmall(0, 10), undefined, 'closed')
})

t.test('damaged pieces are never served: logged, counted, dropped, fetched again by the usual read', async (t) => {
  const bytes = seededBytes(63, 8 * BLOCK)
  const { cache, source, backend, place, lines } = await filled(t, bytes)
  await flipBits(place(2).path, place(2).offset + 3 * DIGEST_PIECE_BYTES + 5, 1)
  const last = [0, 1, 2, 3, 4, 5, 6, 7].map((block) => ({ block, ...place(block) })).sort((a, b) => b.offset - a.offset)[0]!
  await truncate(last.path, last.offset + BLOCK - 100)

  t.ok(await backend.readSmall(2 * BLOCK, 4 * KIB), 'block 2\'s first piece is intact: served')
  t.equal(await backend.readSmall(2 * BLOCK + 3 * DIGEST_PIECE_BYTES, 4 * KIB), undefined, 'its fourth is not')
  t.equal(await backend.readSmall(last.block * BLOCK + BLOCK - 200, 150), undefined, 'the cut block\'s last piece')
  t.equal(cache.stats().verifyFailures, 2)
  t.match(lines, [/block 2 .*xxh3\/16k mismatch/, new RegExp(`block ${last.block} .*${DIGEST_PIECE_BYTES - 100} of ${DIGEST_PIECE_BYTES} bytes on disk`)])
  const before = source.reads.length
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), '0 wrong bytes read as usual')
  t.same(source.reads.slice(before).map((read) => read.offset / BLOCK).sort(), [2, last.block].sort(), 'each damaged block fetched again')
})

t.test('a small read the cache is closed under is no failure', async (t) => {
  const { cache, backend, lines } = await filled(t, seededBytes(64, 2 * BLOCK))
  const reading = backend.readSmall(10, 10)
  await cache.close()
  t.equal(await reading, undefined)
  t.equal(cache.stats().verifyFailures, 0)
  t.same(lines, [])
})

t.test('the memory cache answers a random miss with the disk cache\'s pieces, keeps nothing for it, and reads a stream ahead as usual', async (t) => {
  const bytes = seededBytes(65, 64 * BLOCK)
  const { cache, source, backend: disk } = await filled(t, bytes)
  const memory = new BlockCache({ capacityBytes: 16 * BLOCK, blockBytes: BLOCK })
  const cached = new CachingBackend(disk, memory, { connections: 4, now: () => 0 })
  t.teardown(() => cached.close())
  const before = source.reads.length
  const random = seededRandom(66)
  // Far apart (backwards, 3 blocks between): no read continues another's stream.
  for (let round = 0; round < 20; round++) {
    const offset = (60 - 3 * round) * BLOCK + 4 * KIB * Math.floor(random() * 31)
    const read = Buffer.concat(await cached.readPieces(offset, 4 * KIB, { stream: 100 }))
    if (!read.equals(bytes.subarray(offset, offset + 4 * KIB))) t.fail(`wrong bytes at ${offset}`)
  }
  t.equal(cached.cachedBytes(), 0, 'nothing kept in memory for them')
  // A stream of 4 KiB reads: once it reads ahead, its blocks come into memory.
  for (let offset = 20 * BLOCK; offset < 21 * BLOCK; offset += 4 * KIB) {
    const read = Buffer.concat(await cached.readPieces(offset, 4 * KIB, { stream: 1 }))
    if (!read.equals(bytes.subarray(offset, offset + 4 * KIB))) t.fail(`wrong bytes at ${offset}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(cached.cachedBytes() > 0, 'the stream\'s readahead filled the memory cache')
  t.equal(source.reads.length, before, 'nothing from the source')
  // Past what the disk cache holds: fetched and kept as usual.
  const beyond = new CachingBackend(new DiskCachedBackend(new RecordingBackend(bytes), cache, { ...IDENTITY, validator: '"etag-3"', size: bytes.length }), memory, { connections: 4, now: () => 0 })
  t.teardown(() => beyond.close())
  t.ok(Buffer.concat(await beyond.readPieces(5 * BLOCK, 4 * KIB, { stream: 7 })).equals(bytes.subarray(5 * BLOCK, 5 * BLOCK + 4 * KIB)))
  t.equal(beyond.cachedBytes(), BLOCK, 'a block not on disk: fetched whole and kept')
})

t.test('a block missed at random a second time is read whole into the memory cache, and served from memory after', async (t) => {
  const bytes = seededBytes(67, 64 * BLOCK)
  const { cache, backend: disk } = await filled(t, bytes)
  // Room for 4 blocks: the blocks remembered as answered with pieces are 4 too, oldest dropped first.
  const cached = new CachingBackend(disk, new BlockCache({ capacityBytes: 4 * BLOCK, blockBytes: BLOCK }), { connections: 4, now: () => 0 })
  t.teardown(() => cached.close())
  const read = async (block: number, at = 4 * KIB) => {
    const offset = block * BLOCK + at
    const got = Buffer.concat(await cached.readPieces(offset, 4 * KIB, { stream: 100 }))
    if (!got.equals(bytes.subarray(offset, offset + 4 * KIB))) t.fail(`wrong bytes at ${offset}`)
  }
  const hits = () => cache.stats().hits
  // Offsets apart, going back: no read continues another's stream (which would read ahead).
  await read(40, 100 * KIB)
  t.equal(cached.cachedBytes(), 0, 'first miss: pieces, nothing kept')
  await read(40, 50 * KIB)
  t.equal(cached.cachedBytes(), BLOCK, 'second miss on the block: read whole and kept')
  const before = hits()
  await read(40, 8 * KIB)
  t.equal(hits(), before, 'third read: from memory, no disk read')
  // Five other blocks once each (backwards, apart: no stream), then block 50 of the first again.
  await read(50, 100 * KIB)
  for (const block of [30, 26, 22, 18, 14]) await read(block, 100 * KIB)
  const [piecesBefore, keptBefore] = [hits(), cached.cachedBytes()]
  await read(50, 8 * KIB)
  t.equal(hits(), piecesBefore + 1, 'read from disk')
  t.equal(cached.cachedBytes(), keptBefore, 'block 50 was forgotten (4 remembered): pieces again, nothing more kept')
})

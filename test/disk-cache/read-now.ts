import t, { type Test } from 'tap'
import { open, truncate } from 'node:fs/promises'
import { dirname } from 'node:path'
import { DiskCache, type DiskCacheOptions } from '../../src/disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../../src/disk-cache/disk-cached-backend.js'
import { CRC32C_DIGEST, DIGEST_PIECE_BYTES, XXH3_DIGEST } from '../../src/disk-cache/block-digest.js'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { seededBytes, seededRandom } from '../fixtures/test-data.js'
import { filledDiskCache, flipBits, IDENTITY } from '../fixtures/filled-disk-cache.js'

// Reads answered at once from the disk cache (DiskCache.readNow, DiskCachedBackend.readNow and
// the memory cache's fall-through to them): only the 16 KiB pieces under a read are read and
// checked, and a damaged piece is never served.

const KIB = 1024
/** Four pieces per block. */
const BLOCK = 4 * DIGEST_PIECE_BYTES

/** A disk cache over `bytes` filled with every block, and its log lines. */
function filled(t: Test, bytes: Buffer, options: Partial<DiskCacheOptions> = {}) {
  return filledDiskCache(t, bytes, options.blockBytes ?? BLOCK, 64, { pageCached: true, ...options })
}

/** Bytes read from the source since its `from`th read. */
const fetched = (source: RecordingBackend, from: number) => source.reads.slice(from).reduce((sum, read) => sum + read.length, 0)

t.test('a read inside a block on disk is answered at once: the right bytes, only its pieces read, a hit', async (t) => {
  const bytes = seededBytes(40, 6 * BLOCK + 5000)
  const { cache, source, backend } = await filled(t, bytes)
  const before = source.reads.length
  const hits = cache.stats().hits
  const random = seededRandom(41)
  for (let round = 0; round < 200; round++) {
    const offset = Math.floor(random() * bytes.length)
    const block = Math.floor(offset / BLOCK)
    const length = Math.min(1 + Math.floor(random() * 8 * KIB), (block + 1) * BLOCK - offset, bytes.length - offset)
    const pieces = backend.readNow(offset, length)
    t.ok(pieces, `${offset}+${length} answered at once`)
    if (!Buffer.concat(pieces!).equals(bytes.subarray(offset, offset + length))) t.fail(`wrong bytes at ${offset}+${length}`)
  }
  t.equal(fetched(source, before), 0, 'nothing from the source')
  t.equal(cache.stats().hits - hits, 200, 'one hit each')
  t.equal(backend.readNow(BLOCK - 10, 20), undefined, 'across two blocks: undefined (read as usual)')
  t.equal(backend.readNow(0, 0), undefined, 'nothing to read')
  t.equal(backend.readNow(-1, 2), undefined, 'out of range: the usual read reports it')
  t.equal(backend.readNow(bytes.length - 1, 2), undefined)
  await backend.close()
  t.equal(backend.readNow(0, 10), undefined, 'closed')
})

t.test('what readNow leaves to the usual read: a block not on disk, not in the page cache, too large, or with a digest of another kind', async (t) => {
  const bytes = seededBytes(42, 4 * BLOCK)
  const { cache, backend, place, lines } = await filled(t, bytes.subarray(0, 3 * BLOCK))
  const other = new DiskCachedBackend(new RecordingBackend(bytes), cache, { ...IDENTITY, size: bytes.length })
  t.equal(other.readNow(0, 10), undefined, 'another identity: not on disk')
  // Past the end of the data file, its pages are in no cache.
  const last = [0, 1, 2].sort((a, b) => place(b).offset - place(a).offset)[0]!
  await truncate(place(last).path, place(last).offset)
  t.equal(backend.readNow(last * BLOCK, 10), undefined, 'not in the page cache')
  t.equal(cache.stats().verifyFailures, 0, 'which is no failure')
  t.same(lines, [])

  const large = await filled(t, seededBytes(43, 2 * 512 * KIB), { blockBytes: 512 * KIB, capacityBytes: 8 * 512 * KIB })
  t.ok(large.backend.readNow(DIGEST_PIECE_BYTES, 64 * KIB), 'a small read in a large block')
  t.equal(large.backend.readNow(0, 512 * KIB), undefined, 'a whole 512 KiB block: on the thread pool, as usual')

  const crc = await filled(t, seededBytes(44, 2 * BLOCK), { digest: CRC32C_DIGEST })
  t.equal(crc.backend.readNow(0, 10), undefined, 'a digest of the whole block: the whole block is read, as usual')

  const renamed = await filled(t, seededBytes(45, 2 * BLOCK))
  await renamed.cache.close()
  const reopened = DiskCache.open({ dir: dirname(renamed.place(0).path), capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger: { info() {}, warn() {}, error() {} }, digest: { ...XXH3_DIGEST, name: 'xxh3/16k-other' } })
  t.teardown(() => reopened.close())
  const under = new DiskCachedBackend(new RecordingBackend(seededBytes(45, 2 * BLOCK)), reopened, { ...IDENTITY, size: 2 * BLOCK })
  t.equal(under.readNow(0, 10), undefined, 'stored under another digest\'s name: read as usual (and dropped there)')
})

t.test('damaged pieces are never served: caught by the piece read, logged, counted, dropped and fetched again once', async (t) => {
  const bytes = seededBytes(46, 8 * BLOCK)
  const { cache, source, backend, place, lines } = await filled(t, bytes)
  const file = await open(place(0).path, 'r+')
  // Block 1: a bit flipped in its third piece. Block 3: its second piece zeroed. Block 5: the last
  // 100 bytes of the file cut off (a torn write at the end).
  await flipBits(place(1).path, place(1).offset + 2 * DIGEST_PIECE_BYTES + 77, 4)
  await file.write(Buffer.alloc(DIGEST_PIECE_BYTES), 0, DIGEST_PIECE_BYTES, place(3).offset + DIGEST_PIECE_BYTES)
  await file.close()
  const last = [0, 1, 2, 3, 4, 5, 6, 7].map(place).sort((a, b) => b.offset - a.offset)[0]!
  const lastBlock = [0, 1, 2, 3, 4, 5, 6, 7].find((block) => place(block).offset === last.offset)!
  await truncate(last.path, last.offset + BLOCK - 100)

  t.ok(backend.readNow(BLOCK, 4 * KIB), 'block 1\'s first piece is intact: served')
  t.equal(backend.readNow(BLOCK + 2 * DIGEST_PIECE_BYTES + 10, 4 * KIB), undefined, 'its third is not')
  t.equal(backend.readNow(3 * BLOCK + DIGEST_PIECE_BYTES + 10, 100), undefined, 'block 3\'s zeroed piece')
  t.equal(backend.readNow(lastBlock * BLOCK + BLOCK - 200, 150), undefined, 'the cut block\'s last piece')
  t.equal(cache.stats().verifyFailures, 3, 'each counted once')
  t.equal(lines.filter((line) => /failed its check/.test(line)).length, 3, 'one log line each')
  t.match(lines, [/block 1 .*xxh3\/16k mismatch/, /block 3 .*xxh3\/16k mismatch/, new RegExp(`block ${lastBlock} .*${DIGEST_PIECE_BYTES - 100} of ${DIGEST_PIECE_BYTES} bytes on disk`)])
  t.equal(backend.readNow(BLOCK, 4 * KIB), undefined, 'a dropped block is no longer on disk')
  const before = source.reads.length
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), '0 wrong bytes read as usual')
  const refetched = source.reads.slice(before).flatMap((read) => Array.from({ length: read.length / BLOCK }, (_, i) => read.offset / BLOCK + i))
  t.same(refetched.sort(), [1, 3, lastBlock].sort(), 'each damaged block fetched again, once')
})

t.test('a piece check that throws drops the block, as a mismatch does', async (t) => {
  let broken = false
  const digest = { ...XXH3_DIGEST, matchesPieces(data: Buffer, block: number, stored: Buffer, first: number) {
    if (broken) throw new Error('manifest unavailable')
    return XXH3_DIGEST.matchesPieces!(data, block, stored, first)
  } }
  const { cache, backend, lines } = await filled(t, seededBytes(47, 2 * BLOCK), { digest })
  t.ok(backend.readNow(10, 10))
  broken = true
  t.equal(backend.readNow(10, 10), undefined)
  t.equal(cache.stats().verifyFailures, 1)
  t.match(lines, [/failed its check \(manifest unavailable\)/])
})

t.test('the memory cache falls through to the disk cache on a miss, keeps nothing for it, and still reads ahead for a stream', async (t) => {
  const bytes = seededBytes(48, 64 * BLOCK)
  const { source, backend: disk } = await filled(t, bytes)
  const memory = new BlockCache({ capacityBytes: 16 * BLOCK, blockBytes: BLOCK })
  const cached = new CachingBackend(disk, memory, { connections: 4, now: () => 0 })
  const before = source.reads.length
  const pieces = cached.readNow(5 * BLOCK + 100, 4 * KIB, 1)
  t.ok(pieces && Buffer.concat(pieces).equals(bytes.subarray(5 * BLOCK + 100, 5 * BLOCK + 100 + 4 * KIB)), 'a random miss answered at once')
  t.equal(cached.cachedBytes(), 0, 'nothing kept in memory for it')
  t.equal(cached.readNow(5 * BLOCK - 10, 20, 1), undefined, 'across two blocks: read as usual')
  // A stream of 4 KiB reads: readahead brings its blocks into memory while the disk answers.
  for (let offset = 20 * BLOCK; offset < 21 * BLOCK; offset += 4 * KIB) {
    const read = cached.readNow(offset, 4 * KIB, 2) ?? (await cached.readPieces(offset, 4 * KIB, { stream: 2 }))
    if (!Buffer.concat(read).equals(bytes.subarray(offset, offset + 4 * KIB))) t.fail(`wrong bytes at ${offset}`)
  }
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(cached.cachedBytes() > 0, 'the stream\'s readahead filled the memory cache')
  t.equal(fetched(source, before), 0, 'nothing from the source')
  // A block being fetched into memory (a read across two blocks fetches both): the read waits for that fetch instead.
  const fetching = cached.readPieces(40 * BLOCK, BLOCK + 10)
  t.equal(cached.readNow(40 * BLOCK + 20, 10, 3), undefined, 'a block on its way: read as usual')
  await fetching
  await cached.close()
})

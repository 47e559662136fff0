import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdir, open, rmdir, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskCache, identityKey, type DiskCacheOptions } from '../../src/disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../../src/disk-cache/disk-cached-backend.js'
import { DiskCacheLockedError } from '../../src/disk-cache/errors.js'
import { INDEX_FILE } from '../../src/disk-cache/cache-index.js'
import { DATA_FILE } from '../../src/disk-cache/slot-file.js'
import Database from 'better-sqlite3'
import { CRC32C_DIGEST, XXH3_DIGEST } from '../../src/disk-cache/block-digest.js'
import type { SourceIdentity } from '../../src/backend/storage-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, SMALL_SIZE } from '../fixtures/conformance-sources.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { seededBytes, seededRandom } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

const KIB = 1024
const BLOCK = 16 * KIB
const IDENTITY: SourceIdentity = { source: 'http://127.0.0.1/image.raw', size: 0, validator: '"etag-1"' }

/** A logger that keeps its lines, for tests that look for a warning. */
function collect() {
  const lines: string[] = []
  const logger = { info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m) }
  return { lines, logger }
}

function openCache(t: Test, dir: string, options: Partial<DiskCacheOptions> = {}) {
  const { lines, logger } = collect()
  const cache = DiskCache.open({ dir, capacityBytes: 256 * BLOCK, blockBytes: BLOCK, logger, ...options })
  t.teardown(() => cache.close())
  return { cache, lines }
}

function layer(cache: DiskCache, bytes: Buffer, identity: Partial<SourceIdentity> = {}) {
  const source = new RecordingBackend(bytes)
  const backend = new DiskCachedBackend(source, cache, { ...IDENTITY, size: bytes.length, ...identity })
  return { source, backend }
}

/** Bytes the source served since `from` (an index into its reads). */
function served(source: RecordingBackend, from = 0): number {
  return source.reads.slice(from).reduce((sum, read) => sum + read.length, 0)
}

void runConformance(t, 'disk cache layer', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(3, SMALL_SIZE)
  const { cache } = openCache(t, dir, { capacityBytes: 2 * SMALL_SIZE })
  return { small: bufferSource(bytes, async () => layer(cache, bytes).backend), large: { missing: 'its test source holds its bytes in memory' }, abortsInFlight: false }
})

// A source that answers with its own buffers, not the one offered: copied into place.
void runConformance(t, 'disk cache layer over a source that answers with its own buffers', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(4, SMALL_SIZE)
  const { cache } = openCache(t, dir, { capacityBytes: 2 * SMALL_SIZE })
  const open = async () => new DiskCachedBackend(new MemoryBackend(bytes), cache, { ...IDENTITY, size: bytes.length })
  return { small: bufferSource(bytes, open), large: { missing: 'its test source holds its bytes in memory' }, abortsInFlight: false }
})

t.test('a second read comes from disk: the same bytes, none from the source', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(1, 40 * BLOCK + 123)
  const { cache } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'first read right')
  await cache.flush()
  const before = source.reads.length
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'second read right')
  t.ok((await backend.readExact(BLOCK + 5, 3 * BLOCK)).equals(bytes.subarray(BLOCK + 5, 4 * BLOCK + 5)), 'a read off the block boundaries right')
  t.equal(source.reads.length, before, 'no read of the source')
  const stats = cache.stats()
  t.equal(stats.writes, 41, 'every block written once')
  t.equal(stats.hits, 41 + 4, 'hits counted per block')
  t.equal(stats.misses, 41, 'misses counted per block')
  t.equal(backend.inspect().diskBytes, 41 * BLOCK, 'bytes on disk in whole slots, for status')
})

t.test('a reopened cache (a restart) serves what was written before, with no scan of the data', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(2, 20 * BLOCK)
  const first = openCache(t, dir)
  await layer(first.cache, bytes).backend.readExact(0, bytes.length)
  await first.cache.close()
  const second = openCache(t, dir)
  const { source, backend } = layer(second.cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes')
  t.equal(source.reads.length, 0, '0 bytes from the source')
  t.equal(second.cache.stats().bytesInUse, 20 * BLOCK, 'the bound counts the blocks found')
})

t.test('another identity (a replaced object, another size, another block size) never sees old blocks', async (t) => {
  const dir = await tempDir(t)
  const old = seededBytes(4, 8 * BLOCK)
  const replaced = seededBytes(5, 8 * BLOCK)
  const { cache } = openCache(t, dir)
  await layer(cache, old).backend.readExact(0, old.length)
  await cache.flush()
  const { source, backend } = layer(cache, replaced, { validator: '"etag-2"' })
  t.ok((await backend.readExact(0, replaced.length)).equals(replaced), 'the new object\'s bytes')
  t.equal(served(source), replaced.length, 'all of it from the source')
  t.not(identityKey({ ...IDENTITY, size: 1 }, BLOCK), identityKey({ ...IDENTITY, size: 2 }, BLOCK), 'size is part of the key')
  t.not(identityKey(IDENTITY, BLOCK), identityKey(IDENTITY, 2 * BLOCK), 'block size is part of the key')
  t.not(identityKey(IDENTITY, BLOCK), identityKey({ ...IDENTITY, source: 'http://127.0.0.1/other.raw' }, BLOCK), 'source is part of the key')
})

/** Damages a block in the data file the way disks and people do. */
async function damage(place: { path: string; offset: number; length: number }, how: number, random: () => number): Promise<string> {
  const file = await open(place.path, 'r+')
  try {
    const data = Buffer.alloc(place.length)
    await file.read(data, 0, data.length, place.offset)
    switch (how % 3) {
      case 0: {
        const at = Math.floor(random() * data.length)
        data[at] = data[at]! ^ (1 << Math.floor(random() * 8))
        break
      }
      case 1:
        data.fill(0)
        break
      default:
        data.fill(0xff, data.length / 2)
    }
    await file.write(data, 0, data.length, place.offset)
    return ['bit flipped', 'zeroed', 'torn'][how % 3]!
  } finally {
    await file.close()
  }
}

t.test('corruption: flipped, zeroed and torn blocks are caught, logged, counted, refetched once: 0 wrong bytes', async (t) => {
  const dir = await tempDir(t)
  const blocks = 120
  const bytes = seededBytes(6, blocks * BLOCK)
  const { cache, lines } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  await backend.readExact(0, bytes.length)
  await cache.flush()
  const key = identityKey({ ...IDENTITY, size: bytes.length }, BLOCK)
  const random = seededRandom(9)
  const damaged = new Set<number>()
  while (damaged.size < 100) damaged.add(Math.floor(random() * blocks))
  for (const block of damaged) await damage(cache.placeOf(key, block)!, block, random)
  const before = source.reads.length
  let wrong = 0
  for (let round = 0; round < 2; round++) {
    const got = await backend.readExact(0, bytes.length)
    for (let i = 0; i < got.length; i++) if (got[i] !== bytes[i]) wrong++
    await cache.flush()
  }
  t.equal(wrong, 0, '0 wrong bytes')
  const refetched = source.reads.slice(before).flatMap((read) => Array.from({ length: read.length / BLOCK }, (_, i) => read.offset / BLOCK + i))
  t.same(refetched.sort((a, b) => a - b), [...damaged].sort((a, b) => a - b), 'each damaged block fetched again exactly once')
  t.equal(cache.stats().verifyFailures, 100, 'counted')
  t.equal(lines.filter((line) => /failed its check/.test(line)).length, 100, 'one log line each')
  t.ok(lines.some((line) => /xxh3\/16k mismatch/.test(line)), 'saying why')
})

t.test('a truncated data file: the blocks past its end are short, caught and fetched again, never zeros', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(7, 4 * BLOCK)
  const { cache, lines } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  await backend.readExact(0, bytes.length)
  await cache.flush()
  const key = identityKey({ ...IDENTITY, size: bytes.length }, BLOCK)
  const last = [0, 1, 2, 3].map((block) => cache.placeOf(key, block)!).sort((a, b) => b.offset - a.offset)[0]!
  await truncate(last.path, last.offset + 100)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes')
  t.equal(source.reads.length, 2, 'that block fetched again')
  t.match(lines, [/failed its check \(100 of 16384 bytes on disk\)/])
})

t.test('bounded: never more than the bound on disk; a scan does not flush blocks read again', async (t) => {
  const dir = await tempDir(t)
  const capacity = 40 * BLOCK
  const bytes = seededBytes(8, 400 * BLOCK)
  const { cache } = openCache(t, dir, { capacityBytes: capacity })
  const { source, backend } = layer(cache, bytes)
  const hot = () => backend.readExact(0, 8 * BLOCK)
  await hot()
  await cache.flush()
  await hot()
  let most = 0
  for (let block = 8; block < 400; block += 4) {
    await backend.readExact(block * BLOCK, 4 * BLOCK)
    await cache.flush()
    most = Math.max(most, cache.stats().bytesInUse, (await stat(join(dir, 'blocks.dat'))).size)
  }
  t.ok(most <= capacity, `at most the bound (${most} of ${capacity})`)
  t.ok(cache.stats().evictions > 300, 'evicted')
  const before = source.reads.length
  await hot()
  t.equal(source.reads.length, before, 'the blocks read twice survived the scan')
})

t.test('a smaller bound at a restart evicts down to it', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(10, 30 * BLOCK)
  const first = openCache(t, dir)
  await layer(first.cache, bytes).backend.readExact(0, bytes.length)
  await first.cache.close()
  const second = openCache(t, dir, { capacityBytes: 10 * BLOCK })
  t.equal(second.cache.stats().bytesInUse, 10 * BLOCK, 'down to the bound')
  t.equal((await stat(join(dir, 'blocks.dat'))).size, 10 * BLOCK, 'the data file trimmed to it: the space given back')
  await second.cache.flush()
  const { backend } = layer(second.cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes')
})

t.test('another block size at a restart: the old rows are dropped, nothing is misread', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(11, 8 * BLOCK)
  const first = openCache(t, dir)
  await layer(first.cache, bytes).backend.readExact(0, bytes.length)
  await first.cache.close()
  const second = openCache(t, dir, { blockBytes: 2 * BLOCK })
  t.equal(second.cache.stats().bytesInUse, 0, 'nothing kept')
  const { source, backend } = layer(second.cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes')
  t.equal(served(source), bytes.length, 'from the source')
})

t.test('one process per cache directory: a second gets DiskCacheLockedError', async (t) => {
  const dir = await tempDir(t)
  openCache(t, dir)
  const script = `import { DiskCache } from ${JSON.stringify(new URL('../../dist/disk-cache/disk-cache.js', import.meta.url).href)}
try { DiskCache.open({ dir: ${JSON.stringify(dir)}, capacityBytes: 1 << 20, blockBytes: 1 << 16, logger: console }); console.log('opened') }
catch (err) { console.log(err.code, err.message) }`
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  t.match(result.stdout, /^E_DISK_CACHE_LOCKED the disk cache .* is in use by another snapmount daemon/, result.stderr)
  t.type(new DiskCacheLockedError(dir), Error)
})

t.test('a full disk: reads go on from the source, logged once, counted', async (t) => {
  const dir = await tempDir(t)
  // Every write to /dev/full fails with ENOSPC: the data file is that device.
  await symlink('/dev/full', join(dir, 'blocks.dat'))
  const bytes = seededBytes(12, 8 * BLOCK)
  const { cache, lines } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  for (let i = 0; i < 3; i++) {
    t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes from the source')
    await cache.flush()
  }
  t.equal(served(source), 3 * bytes.length, 'all from the source')
  t.match(lines.filter((line) => /cannot write/.test(line)), [/cannot write to .*blocks\.dat \(ENOSPC/], 'logged once')
  t.ok(cache.stats().writeErrors >= 1 && cache.stats().writesSkipped >= 1, 'counted; writing paused')
  t.equal(cache.stats().bytesInUse, 0, 'nothing held against the bound')
})

t.test('options and directories that cannot be used are refused at open, leaving nothing locked', async (t) => {
  const dir = await tempDir(t)
  const logger = collect().logger
  t.throws(() => DiskCache.open({ dir, capacityBytes: BLOCK - 1, blockBytes: BLOCK, logger }), RangeError, 'a bound under one block')
  await mkdir(join(dir, 'blocks.dat'))
  t.throws(() => DiskCache.open({ dir, capacityBytes: 4 * BLOCK, blockBytes: BLOCK, logger }), { code: 'EISDIR' }, 'a data file that is a folder')
  await rmdir(join(dir, 'blocks.dat'))
  openCache(t, dir)
  t.pass('the index was closed: opened again')
  const other = await tempDir(t)
  await mkdir(join(other, 'index.sqlite'))
  t.throws(() => DiskCache.open({ dir: other, capacityBytes: 4 * BLOCK, blockBytes: BLOCK, logger }), { code: 'SQLITE_CANTOPEN' }, 'an index that is a folder')
})

t.test('concurrent readers of one block each read it from disk; identity passes through', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(13, 2 * BLOCK)
  const { cache } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  await backend.readExact(0, bytes.length)
  await cache.flush()
  const reads = await Promise.all(Array.from({ length: 8 }, () => backend.readExact(BLOCK, BLOCK)))
  t.ok(reads.every((read) => read.equals(bytes.subarray(BLOCK))), 'right bytes')
  t.equal(source.reads.length, 1, 'none from the source')
  t.same(backend.identity(), undefined, 'the source\'s identity (this one has none)')
})

t.test('a digest check that throws (a manifest not at hand) drops the block, as a mismatch would', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(14, 2 * BLOCK)
  let broken = false
  const digest = { ...CRC32C_DIGEST, matches(data: Buffer, block: number, stored: Buffer) {
    if (broken) throw new Error('manifest unavailable')
    return CRC32C_DIGEST.matches(data, block, stored)
  } }
  const { cache, lines } = openCache(t, dir, { digest })
  const { source, backend } = layer(cache, bytes)
  await backend.readExact(0, bytes.length)
  await cache.flush()
  broken = true
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes), 'right bytes')
  t.equal(served(source), 2 * bytes.length, 'fetched again')
  t.match(lines, [/failed its check \(manifest unavailable\)/, /failed its check/])
})

t.test('a disk slower than the source holds readers back instead of dropping their blocks', async (t) => {
  const dir = await tempDir(t)
  const MIB = 1024 * KIB
  const bytes = seededBytes(15, 96 * MIB)
  const { cache } = openCache(t, dir, { blockBytes: MIB, capacityBytes: 128 * MIB })
  const { backend } = layer(cache, bytes)
  // 72 blocks handed over at once; the next read finds them still waiting for the disk.
  const first = await backend.readExact(0, 72 * MIB)
  const second = await backend.readExact(72 * MIB, 24 * MIB)
  t.ok(Buffer.concat([first, second]).equals(bytes), 'right bytes')
  await cache.flush()
  t.equal(cache.stats().writes, 96, 'every block written')
  t.equal(cache.stats().writesSkipped, 0, 'none skipped')
})

t.test('a sync that fails (the data file on /dev/null): nothing indexed, logged once, reads go on', async (t) => {
  const dir = await tempDir(t)
  await symlink('/dev/null', join(dir, 'blocks.dat'))
  const bytes = seededBytes(16, 4 * BLOCK)
  const { cache, lines } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes))
  await cache.flush()
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes))
  t.equal(served(source), 2 * bytes.length, 'nothing served from a disk that did not sync')
  t.match(lines, [/cannot trim .*blocks\.dat/, /cannot write to .*blocks\.dat \(EINVAL/])
  t.equal(cache.stats().bytesInUse, 0)
})

t.test('an index that is not a database is refused at open', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'index.sqlite'), Buffer.alloc(4096, 7))
  t.throws(() => DiskCache.open({ dir, capacityBytes: 4 * BLOCK, blockBytes: BLOCK, logger: collect().logger }), { code: 'SQLITE_NOTADB' })
})

t.test('what the layer passes on and reports; lookups of what is not there', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(17, 2 * BLOCK)
  const { cache } = openCache(t, dir)
  const identity = { ...IDENTITY, size: bytes.length }
  const source = Object.assign(new RecordingBackend(bytes), { identity: () => identity, inspect: () => ({ type: 'http' }) })
  const backend = new DiskCachedBackend(source, cache, identity)
  t.same(backend.inspect(), { type: 'http', diskBytes: 0 }, 'nothing on disk yet; the source\'s facts kept')
  t.equal(backend.identity(), identity, 'the source\'s identity')
  t.equal(cache.placeOf('no such key', 0), undefined)
  t.equal(await cache.read(cache.attach(identity), 1, Buffer.alloc(BLOCK)), false, 'a block not on disk')
})

t.test('a layer closed while its fetch is out stores nothing', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(18, 2 * BLOCK)
  const { cache } = openCache(t, dir)
  const { source, backend } = layer(cache, bytes)
  source.hold = true
  const read = backend.readExact(0, BLOCK)
  await new Promise((resolve) => setImmediate(resolve))
  await backend.close()
  source.release()
  t.ok((await read).equals(bytes.subarray(0, BLOCK)), 'the read still answered')
  await cache.flush()
  t.equal(cache.stats().writes, 0, 'nothing stored')
})

t.test('blocks checked with another digest than they were stored with are dropped', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(19, 2 * BLOCK)
  const first = openCache(t, dir)
  await layer(first.cache, bytes).backend.readExact(0, bytes.length)
  await first.cache.close()
  const manifest = { name: 'manifest-sha256', digest: () => Buffer.alloc(32), matches: () => true }
  const second = openCache(t, dir, { digest: manifest })
  const { source, backend } = layer(second.cache, bytes)
  t.ok((await backend.readExact(0, bytes.length)).equals(bytes))
  t.equal(source.reads.length, 1, 'fetched again')
  t.match(second.lines, [/stored with xxh3\/16k, checked with manifest-sha256/, /stored with xxh3\/16k/])
})

t.test('the default digest (XXH3) matches its own block and no other, nor a digest of another length; so does CRC32C', async (t) => {
  const data = seededBytes(30, BLOCK)
  const stored = XXH3_DIGEST.digest(data, 0)
  t.equal(stored.length, 8)
  t.ok(XXH3_DIGEST.matches(data, 0, stored))
  const flipped = Buffer.from(data)
  flipped[BLOCK - 1]! ^= 1
  t.notOk(XXH3_DIGEST.matches(flipped, 0, stored), 'one bit flipped')
  t.notOk(XXH3_DIGEST.matches(Buffer.alloc(BLOCK), 0, stored), 'zeroed')
  t.notOk(XXH3_DIGEST.matches(data, 0, stored.subarray(0, 4)), 'a 4-byte digest')
  t.notOk(XXH3_DIGEST.matchesPieces!(data, 0, stored, 1), 'pieces past the stored digests')
  t.ok(CRC32C_DIGEST.matches(data, 0, CRC32C_DIGEST.digest(data, 0)), 'CRC32C (an older index\'s, or a test\'s) likewise')
  t.notOk(CRC32C_DIGEST.matches(flipped, 0, CRC32C_DIGEST.digest(data, 0)))
})

t.test('an index of an older version (CRC32C, then XXH64 digests) is emptied at open: its blocks are fetched again, none is a failure', async (t) => {
  // Only the digest's name is stored with each block; what the old rows hold is never looked at.
  for (const [version, digest] of [[2, CRC32C_DIGEST], [3, { ...CRC32C_DIGEST, name: 'xxh64/16k' }]] as const) {
    const dir = await tempDir(t)
    const bytes = seededBytes(31, 2 * BLOCK)
    const first = openCache(t, dir, { digest })
    await layer(first.cache, bytes).backend.readExact(0, bytes.length)
    await first.cache.close()
    const db = new Database(join(dir, INDEX_FILE))
    db.pragma(`user_version = ${version}`)
    db.close()
    const second = openCache(t, dir)
    t.equal((await stat(join(dir, DATA_FILE))).size, 0, `version ${version}: the old data is free space`)
    const { source, backend } = layer(second.cache, bytes)
    t.ok((await backend.readExact(0, bytes.length)).equals(bytes))
    t.equal(served(source), bytes.length, 'fetched again')
    t.equal(second.cache.stats().verifyFailures, 0, 'no block failed its check')
    t.same(second.lines, [], 'nothing logged')
    await second.cache.close()
  }
})

t.test('concurrent readers of one damaged block: one failure counted, one log line', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(20, 2 * BLOCK)
  const { cache, lines } = openCache(t, dir)
  const { backend } = layer(cache, bytes)
  await backend.readExact(0, bytes.length)
  await cache.flush()
  await damage(cache.placeOf(identityKey({ ...IDENTITY, size: bytes.length }, BLOCK), 1)!, 1, seededRandom(1))
  const reads = await Promise.all(Array.from({ length: 4 }, () => backend.readExact(BLOCK, BLOCK)))
  t.ok(reads.every((read) => read.equals(bytes.subarray(BLOCK))), 'right bytes')
  t.equal(cache.stats().verifyFailures, 1)
  t.equal(lines.length, 1)
})

t.test('a slot freed before a restart is a hole the next block fills: the file does not grow', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(21, 8 * BLOCK)
  const first = openCache(t, dir)
  const { backend } = layer(first.cache, bytes)
  await backend.readExact(0, 4 * BLOCK)
  await first.cache.flush()
  await damage(first.cache.placeOf(identityKey({ ...IDENTITY, size: bytes.length }, BLOCK), 1)!, 1, seededRandom(2))
  await backend.readExact(BLOCK, BLOCK)
  await first.cache.close()
  const size = (await stat(join(dir, 'blocks.dat'))).size
  const second = openCache(t, dir)
  const again = layer(second.cache, bytes)
  t.ok((await again.backend.readExact(0, 5 * BLOCK)).equals(bytes.subarray(0, 5 * BLOCK)))
  await second.cache.flush()
  t.equal(again.source.reads.length, 1, 'only the new block fetched')
  t.equal((await stat(join(dir, 'blocks.dat'))).size, size, 'written into the hole')
})

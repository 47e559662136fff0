import t from 'tap'
import type { ReadOptions, StorageBackend } from '../../src/backend/storage-backend.js'
import { BackendClosedError, OutOfRangeError } from '../../src/backend/errors.js'
import { blockCountOf, blockDigest, type Manifest } from '../../src/manifest/format.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { HashPool } from '../../src/manifest/hash-pool.js'
import { BLOCK_ATTEMPTS, BlockDigestError, VerifyingBackend } from '../../src/manifest/verifying-backend.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { MirrorBackend } from '../../src/backend/mirrors/mirror-backend.js'
import { randomRanges, seededBytes } from '../fixtures/test-data.js'

const BLOCK = 16 * 1024
// Not a multiple of the block: the last block is short.
const SIZE = 40 * BLOCK + 1234
const IMAGE = seededBytes(20, SIZE)

function manifestOf(bytes: Buffer, algorithm: Manifest['algorithm'] = 'sha256', blockBytes = BLOCK): Manifest {
  return { algorithm, blockBytes, imageBytes: bytes.length, blockCount: blockCountOf(bytes.length, blockBytes), digests: blockDigestsOf(algorithm, bytes, blockBytes) }
}

/** Serves IMAGE, flipping a bit in any read covering `badByte` while `damage` says so; records reads. */
class DamagingBackend implements StorageBackend {
  readonly length = SIZE
  readonly mtime = new Date(0)
  readonly reads: Array<{ offset: number; length: number; into: boolean }> = []
  constructor(private readonly damage: (call: number) => boolean, private readonly badByte = 5 * BLOCK + 7) {}
  async readExact(offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    this.reads.push({ offset, length, into: options.into !== undefined })
    const bytes = options.into ?? Buffer.alloc(length)
    IMAGE.copy(bytes, 0, offset, offset + length)
    if (this.badByte >= offset && this.badByte < offset + length && this.damage(this.reads.length)) bytes[this.badByte - offset]! ^= 0x40
    return bytes
  }
  describe(): string {
    return 'damaging'
  }
  inspect() {
    return { type: 'test' }
  }
  async close(): Promise<void> {}
}

function logger() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = []
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => lines.push({ level, message, fields })
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } }
}

t.test('every read returns exactly its bytes, whatever its offset and length, for both algorithms', async (t) => {
  for (const algorithm of ['sha256', 'blake3'] as const) {
    const backend = new VerifyingBackend(new MemoryBackend(IMAGE), manifestOf(IMAGE, algorithm), { name: 'disk', ...logger() })
    for (const { offset, length } of randomRanges(21, SIZE, 200, 3 * BLOCK)) t.ok((await backend.readExact(offset, length)).equals(IMAGE.subarray(offset, offset + length)))
    t.ok((await backend.readExact(0, SIZE)).equals(IMAGE), 'the whole image, hashed on the worker pool')
    t.equal((await backend.readExact(SIZE, 0)).length, 0)
    t.same(backend.inspect().integrity, { verifiedBlocks: backend.inspect().integrity!.verifiedBlocks, mismatches: 0, failedBlocks: 0 })
  }
})

t.test('an aligned read is passed down as it is, `into` included; an unaligned one is widened to whole blocks', async (t) => {
  const source = new DamagingBackend(() => false)
  const backend = new VerifyingBackend(source, manifestOf(IMAGE), { name: 'disk', ...logger() })
  const into = Buffer.alloc(2 * BLOCK)
  t.equal(await backend.readExact(BLOCK, 2 * BLOCK, { into }), into, 'the caller\'s buffer, filled')
  t.ok(into.equals(IMAGE.subarray(BLOCK, 3 * BLOCK)))
  await backend.readExact(BLOCK + 100, 4096, { into: Buffer.alloc(4096) })
  const last = await backend.readExact(SIZE - 10, 10)
  t.ok(last.equals(IMAGE.subarray(SIZE - 10)))
  t.same(source.reads, [
    { offset: BLOCK, length: 2 * BLOCK, into: true },
    { offset: BLOCK, length: BLOCK, into: false },
    { offset: 40 * BLOCK, length: 1234, into: false },
  ])
  t.equal(backend.describe?.(), 'damaging')
  t.same(backend.inspect(), { type: 'test', integrity: { verifiedBlocks: 4, mismatches: 0, failedBlocks: 0 } })
})

t.test('a block damaged once is logged with both digests, fetched again alone, and served right', async (t) => {
  const source = new DamagingBackend((call) => call === 1)
  const log = logger()
  const manifest = manifestOf(IMAGE)
  const backend = new VerifyingBackend(source, manifest, { name: 'disk', ...log })
  const bytes = await backend.readExact(4 * BLOCK, 4 * BLOCK, { signal: new AbortController().signal })
  t.ok(bytes.equals(IMAGE.subarray(4 * BLOCK, 8 * BLOCK)), '0 wrong bytes')
  t.same(source.reads.slice(1), [{ offset: 5 * BLOCK, length: BLOCK, into: false }], 'only the bad block again')
  t.equal(log.lines.length, 1)
  const [line] = log.lines
  t.equal(line?.level, 'warn')
  t.match(line?.message, new RegExp(`^disk: block 5 \\(bytes ${5 * BLOCK}-${6 * BLOCK - 1}\\) does not match the manifest: expected ${blockDigest(manifest, 5).toString('hex')}, got [0-9a-f]{64}; fetching it again \\(attempt 2 of 3\\)$`))
  t.match(line?.fields, { code: 'E_BLOCK_DIGEST', snapshot: 'disk', block: 5, offset: 5 * BLOCK, attempt: 1 })
  t.same(backend.inspect().integrity, { verifiedBlocks: 4, mismatches: 1, failedBlocks: 0 })
})

t.test('a block damaged every time fails the read with the block and both digests, after 3 fetches', async (t) => {
  const source = new DamagingBackend(() => true)
  const log = logger()
  const manifest = manifestOf(IMAGE)
  const backend = new VerifyingBackend(source, manifest, { name: 'disk', ...log })
  const err = await backend.readExact(5 * BLOCK + 100, 10).catch((e: unknown) => e)
  t.type(err, BlockDigestError)
  const failure = err as BlockDigestError
  t.equal(failure.code, 'E_BLOCK_DIGEST')
  t.match(failure, { snapshot: 'disk', block: 5, offset: 5 * BLOCK, length: BLOCK, expected: blockDigest(manifest, 5).toString('hex'), attempts: BLOCK_ATTEMPTS })
  t.not(failure.got, failure.expected)
  t.match(failure.message, /^disk: block 5 \(bytes 81920-98303\) does not match the manifest after 3 fetches: expected [0-9a-f]{64}, got [0-9a-f]{64}$/)
  t.equal(source.reads.length, BLOCK_ATTEMPTS)
  t.same(log.lines.map(({ level }) => level), ['warn', 'warn'], 'a line per fetch retried; the failure itself is the reader\'s one error line')
  t.same(backend.inspect().integrity, { verifiedBlocks: 0, mismatches: 3, failedBlocks: 1 })
  t.ok((await backend.readExact(0, BLOCK)).equals(IMAGE.subarray(0, BLOCK)), 'other blocks still read')
})

t.test('attempts: 1 never retries', async (t) => {
  const once = new VerifyingBackend(new DamagingBackend(() => true), manifestOf(IMAGE), { name: 'disk', ...logger(), attempts: 1 })
  await t.rejects(once.readExact(5 * BLOCK, BLOCK), { code: 'E_BLOCK_DIGEST', attempts: 1 })
})

/** A mirrored snapshot over `sources`, named http://m0, http://m1, ... */
function mirrored(sources: StorageBackend[], log = logger()): MirrorBackend {
  return new MirrorBackend({
    name: 'disk',
    sources,
    labels: sources.map((_, i) => `http://m${i}`),
    retry: { maxAttempts: 2, deadlineMs: 5000, baseDelayMs: 1, maxDelayMs: 1 },
    logger: log.logger,
    // Latencies all 0: the config's order decides, however loaded the machine.
    now: () => 0,
  })
}

t.test('over mirrors: a block one mirror damaged is asked from another, and that mirror is marked bad for it', async (t) => {
  const sources = [new DamagingBackend(() => true), new DamagingBackend(() => false), new DamagingBackend(() => false)]
  const mirror = mirrored(sources)
  const log = logger()
  const manifest = manifestOf(IMAGE)
  const backend = new VerifyingBackend(mirror, manifest, { name: 'disk', ...log })
  t.ok((await backend.readExact(4 * BLOCK, 4 * BLOCK)).equals(IMAGE.subarray(4 * BLOCK, 8 * BLOCK)), '0 wrong bytes')
  t.same(sources.map((s) => s.reads.map(({ offset, length }) => [offset / BLOCK, length / BLOCK])), [[[4, 4]], [[5, 1]], []], 'the bad block again from m1, not m0')
  t.equal(log.lines.length, 1)
  t.match(log.lines[0]?.message, new RegExp(`^disk: block 5 \\(bytes ${5 * BLOCK}-${6 * BLOCK - 1}\\) does not match the manifest from http://m0: expected ${blockDigest(manifest, 5).toString('hex')}, got [0-9a-f]{64}; fetching it again from another mirror \\(attempt 2 of 3\\)$`))
  t.match(log.lines[0]?.fields, { code: 'E_BLOCK_DIGEST', block: 5, source: 'http://m0' })
  t.match(mirror.inspect().mirrors, [{ source: 'http://m0', badBlocks: 1, state: 'healthy' }, { badBlocks: 0 }, { badBlocks: 0 }])
  t.same(backend.inspect().integrity, { verifiedBlocks: 4, mismatches: 1, failedBlocks: 0 })
  t.ok((await backend.readExact(5 * BLOCK, BLOCK)).equals(IMAGE.subarray(5 * BLOCK, 6 * BLOCK)))
  t.equal(sources[0]!.reads.length, 1, 'the block read again later goes to another mirror first')
  t.same(sources[1]!.reads.at(-1), { offset: 5 * BLOCK, length: BLOCK, into: false })
})

t.test('over mirrors: a failover is logged only for an answer that passed its digests', async (t) => {
  // m0 refuses; m1 answers with block 5 damaged; m2's copy of it is good.
  const refusing: StorageBackend = { length: SIZE, mtime: new Date(0), readExact: async () => Promise.reject(new Error('connect ECONNREFUSED')), close: async () => {} }
  const sources = [refusing, new DamagingBackend(() => true), new DamagingBackend(() => false)]
  const mirrorLog = logger()
  const backend = new VerifyingBackend(mirrored(sources, mirrorLog), manifestOf(IMAGE), { name: 'disk', ...logger() })
  t.ok((await backend.readExact(4 * BLOCK, 4 * BLOCK)).equals(IMAGE.subarray(4 * BLOCK, 8 * BLOCK)), '0 wrong bytes')
  const failovers = mirrorLog.lines.filter(({ message }) => message.includes('failed over'))
  t.equal(failovers.length, 1, "one line: m1's damaged answer is not a failover")
  t.match(failovers[0], { message: /reads failed over from http:\/\/m0 to http:\/\/m2, answered [\d.]+ ms after/, fields: { source: 'http://m2' } })
  t.ok((await backend.readExact(0, BLOCK)).equals(IMAGE.subarray(0, BLOCK)), 'a good answer later')
  t.equal(mirrorLog.lines.filter(({ message }) => message.includes('failed over')).length, 1, 'the failover was already over')
})

t.test('over mirrors: every mirror damaging a block fails the read (EIO), naming each mirror and its digest', async (t) => {
  const sources = [new DamagingBackend(() => true), new DamagingBackend(() => true), new DamagingBackend(() => true)]
  const mirror = mirrored(sources)
  const log = logger()
  const manifest = manifestOf(IMAGE)
  const backend = new VerifyingBackend(mirror, manifest, { name: 'disk', ...log })
  const err = (await backend.readExact(5 * BLOCK, BLOCK).catch((e: unknown) => e)) as BlockDigestError
  t.type(err, BlockDigestError)
  const expected = blockDigest(manifest, 5).toString('hex')
  t.match(err.message, new RegExp(`^disk: block 5 \\(bytes ${5 * BLOCK}-${6 * BLOCK - 1}\\) does not match the manifest after 3 fetches: expected ${expected}, got [0-9a-f]{64} from http://m0, [0-9a-f]{64} from http://m1, [0-9a-f]{64} from http://m2$`))
  t.same(err.copies.map(({ source }) => source), ['http://m0', 'http://m1', 'http://m2'])
  t.equal(err.got, err.copies[2]!.got)
  t.same(sources.map((s) => s.reads.length), [1, 1, 1], 'each mirror asked once')
  t.match(mirror.inspect().mirrors, [{ badBlocks: 1 }, { badBlocks: 1 }, { badBlocks: 1 }])
  t.same(backend.inspect().integrity, { verifiedBlocks: 0, mismatches: 3, failedBlocks: 1 })
})

t.test('over mirrors: at least one fetch per mirror, and the mirrors asked again once each gave a bad copy', async (t) => {
  const four = [0, 1, 2, 3].map(() => new DamagingBackend(() => true))
  const once = new VerifyingBackend(mirrored(four), manifestOf(IMAGE), { name: 'disk', ...logger(), attempts: 1 })
  await t.rejects(once.readExact(5 * BLOCK, BLOCK), { code: 'E_BLOCK_DIGEST', attempts: 4 })
  t.same(four.map((s) => s.reads.length), [1, 1, 1, 1], 'attempts: 1 still asks every mirror')
  const two = [new DamagingBackend(() => true), new DamagingBackend((call) => call === 1)]
  const backend = new VerifyingBackend(mirrored(two), manifestOf(IMAGE), { name: 'disk', ...logger(), attempts: 4 })
  t.ok((await backend.readExact(5 * BLOCK, BLOCK)).equals(IMAGE.subarray(5 * BLOCK, 6 * BLOCK)))
  t.same(two.map((s) => s.reads.length), [2, 2], 'm0, m1 (damaged once), then both again: m0 first by the config order, then m1 right')
})

t.test('the integrity seam: a layer above checks blocks it kept elsewhere against the manifest', async (t) => {
  const manifest = manifestOf(IMAGE, 'sha256')
  const backend = new VerifyingBackend(new MemoryBackend(IMAGE), manifest, { name: 'disk', ...logger() })
  const { integrity } = backend
  t.match(integrity, { algorithm: 'sha256', blockBytes: BLOCK, blockCount: 41 })
  t.ok(integrity.blockDigest(3).equals(blockDigest(manifest, 3)))
  const kept = Buffer.from(IMAGE.subarray(2 * BLOCK, 6 * BLOCK))
  t.same(await integrity.check(2, kept), [])
  kept[BLOCK + 1]! ^= 1
  kept[3 * BLOCK]! ^= 1
  t.same(await integrity.check(2, kept), [3, 5])
  t.same(backend.inspect().integrity, { verifiedBlocks: 0, mismatches: 0, failedBlocks: 0 }, 'checks by others are not counted')
})

t.test('options are checked where they enter; reads past the end or after close are refused', async (t) => {
  const log = logger()
  t.throws(() => new VerifyingBackend(new MemoryBackend(IMAGE.subarray(1)), manifestOf(IMAGE), { name: 'disk', ...log }), RangeError)
  t.throws(() => new VerifyingBackend(new MemoryBackend(IMAGE), manifestOf(IMAGE), { name: 'disk', ...log, attempts: 0 }), /at least 1/)
  const pool = new HashPool(1)
  t.teardown(() => pool.close())
  const backend = new VerifyingBackend(new MemoryBackend(IMAGE), manifestOf(IMAGE), { name: 'disk', ...log, pool })
  t.equal(backend.length, SIZE)
  t.same(backend.mtime, new Date('2026-01-02T03:04:05Z'))
  t.equal(backend.describe, undefined)
  t.same(backend.inspect(), { integrity: { verifiedBlocks: 0, mismatches: 0, failedBlocks: 0 } })
  await t.rejects(backend.readExact(SIZE - 1, 2), OutOfRangeError)
  await backend.close()
  await t.rejects(backend.readExact(0, 1), BackendClosedError)
})

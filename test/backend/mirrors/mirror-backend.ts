import t from 'tap'
import type { ReadOptions, StorageBackend } from '../../../src/backend/storage-backend.js'
import { MirrorBackend, type MirrorBackendOptions } from '../../../src/backend/mirrors/mirror-backend.js'
import { runConformance } from '../../fixtures/backend-conformance.js'
import { bufferSource, SMALL_SIZE } from '../../fixtures/conformance-sources.js'
import { MemoryBackend } from '../../fixtures/memory-backend.js'
import { ramp, seededBytes } from '../../fixtures/test-data.js'

// The mirror backend over backends of our own that fail, stall or answer on demand.

const SIZE = 1024 * 1024 + 333
const IMAGE = ramp(0, SIZE)

/**
 * A source that answers from IMAGE after `delayMs`, or fails with the next planned error; it
 * counts its reads and the aborted ones, and records the buffers it was asked to fill.
 */
class ScriptedSource implements StorageBackend {
  readonly length = SIZE
  readonly mtime = new Date('2026-01-02T03:04:05Z')
  reads = 0
  aborted = 0
  closed = false
  failures: Error[] = []
  delayMs = 0
  /** Never answer (until aborted). */
  stalled = false
  intos: Array<Buffer | undefined> = []
  constructor(private readonly bytes = IMAGE) {}

  readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    this.reads++
    this.intos.push(options?.into)
    return new Promise((resolve, reject) => {
      const failure = this.failures.shift()
      const answer = () => {
        if (failure) return reject(failure)
        const bytes = this.bytes.subarray(offset, offset + length)
        if (options?.into) {
          bytes.copy(options.into)
          return resolve(options.into)
        }
        resolve(Buffer.from(bytes))
      }
      const timer = this.stalled ? undefined : setTimeout(answer, this.delayMs)
      options?.signal?.addEventListener('abort', () => {
        clearTimeout(timer)
        this.aborted++
        reject(options.signal!.reason)
      })
    })
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

const silent = { info() {}, warn() {}, error() {} }

function mirrors(sources: StorageBackend[], options: Partial<MirrorBackendOptions> = {}) {
  const logs: string[] = []
  const backend = new MirrorBackend({
    name: 'disk',
    sources,
    labels: sources.map((_, i) => `http://m${i}/disk.img`),
    retry: { maxAttempts: 2, deadlineMs: 2000, baseDelayMs: 10, maxDelayMs: 20 },
    logger: { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`), error: silent.error },
    random: () => 0.5,
    ...options,
  })
  return { backend, logs }
}

void runConformance(t, 'mirror backend over three mirrors', async () => {
  const bytes = seededBytes(5, SMALL_SIZE)
  const open = async () => mirrors([new MemoryBackend(bytes), new MemoryBackend(bytes), new MemoryBackend(bytes)], { random: undefined }).backend
  return { small: bufferSource(bytes, open), large: { missing: 'its test sources hold their bytes in memory' }, abortsInFlight: false }
})

t.test('reads go to the first source; a failure fails over at once, and the source is reported failing', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend, logs } = mirrors(sources)
  t.ok((await backend.readExact(0, 4096)).equals(IMAGE.subarray(0, 4096)))
  t.same(sources.map((s) => s.reads), [1, 0, 0], 'the first source only')
  sources[0]!.failures.push(new Error('connect ECONNREFUSED'))
  const started = performance.now()
  t.ok((await backend.readExact(8192, 4096)).equals(IMAGE.subarray(8192, 12288)), 'the right bytes from the next source')
  t.ok(performance.now() - started < 100, 'at once: no backoff before the next source')
  t.same(sources.map((s) => s.reads), [2, 1, 0])
  await backend.readExact(0, 10)
  t.same(sources.map((s) => s.reads), [2, 2, 0], 'while it cools down, the failed source is not asked')
  t.match(logs, [
    /warn snapshot disk: mirror http:\/\/m0\/disk.img is failing \(connect ECONNREFUSED\)/,
    /^info snapshot disk: reads failed over from http:\/\/m0\/disk.img to http:\/\/m1\/disk.img, answered [\d.]+ ms after the request that found it failing was sent$/,
  ])
  t.equal(logs.length, 2, 'the failover is logged once, not for each read after it')
  t.match(backend.inspect().mirrors, [{ source: 'http://m0/disk.img', state: 'failing', errors: 1 }, { state: 'healthy', requests: 2 }, { state: 'healthy', requests: 0 }])
  t.match(backend.describe(), /^3 mirrors: http:\/\/m0\/disk.img \(failing, [\d.]+ ms, 1 errors\) \| http:\/\/m1\/disk.img \(healthy, [\d.]+ ms, 0 errors\) \| http:\/\/m2\/disk.img \(healthy, unmeasured, 0 errors\)$/)
})

t.test("the failover's time is the wait of the read that found the source failing, from its request", async (t) => {
  let clock = 1000
  const logs: Array<[string, unknown]> = []
  // A source that died while idle: the next read's request is refused 50 ms after it is sent.
  const dead: StorageBackend = { length: SIZE, mtime: new Date(0), readExact: async () => Promise.reject(new Error('connect ECONNREFUSED')).finally(() => (clock += 50)), close: async () => {} }
  const next: StorageBackend = { length: SIZE, mtime: new Date(0), readExact: async (offset, length) => ((clock += 30), IMAGE.subarray(offset, offset + length)), close: async () => {} }
  const backend = new MirrorBackend({
    name: 'disk',
    sources: [dead, next],
    labels: ['http://m0/disk.img', 'http://m1/disk.img'],
    retry: { maxAttempts: 1, deadlineMs: 2000, baseDelayMs: 10, maxDelayMs: 20 },
    logger: { info: (m: string, fields?: unknown) => logs.push([m, fields]), warn: () => {}, error: () => {} },
    now: () => clock,
  })
  t.ok((await backend.readExact(0, 10)).equals(IMAGE.subarray(0, 10)))
  t.match(logs, [[/failed over from http:\/\/m0\/disk.img to http:\/\/m1\/disk.img, answered 80 ms after/, { source: 'http://m1/disk.img', failoverMs: 80 }]], '50 ms to find it refused, 30 ms for the next to answer')
})

t.test('fail-back: after the cool-down a real read probes the source, and it is used again', async (t) => {
  let clock = 0
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend, logs } = mirrors(sources, { now: () => clock })
  sources[0]!.failures.push(new Error('HTTP 500'))
  await backend.readExact(0, 10)
  clock += 1000
  await backend.readExact(0, 10)
  t.same(sources.map((s) => s.reads), [2, 1], 'the probe went to the recovered source')
  await backend.readExact(0, 10)
  t.same(sources.map((s) => s.reads), [3, 1], 'and so do the reads after it')
  t.match(logs, [/failing/, /failed over/, /info snapshot disk: mirror http:\/\/m0\/disk.img recovered/])
})

t.test('every source failing: rounds with backoff up to max_attempts, then RetriesExhaustedError', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources)
  for (const source of sources) source.failures.push(new Error('reset'), new Error('reset again'))
  await t.rejects(backend.readExact(0, 10), { code: 'E_RETRIES_EXHAUSTED', message: /read of bytes 0-9 of disk from 2 mirrors failed after 4 attempt\(s\) .*reset again/ })
  t.same(sources.map((s) => s.reads), [2, 2], 'each source tried max_attempts times')
  sources[1]!.failures.push(new Error('reset'))
  t.ok((await backend.readExact(0, 10)).equals(IMAGE.subarray(0, 10)), 'a second round can succeed')
})

t.test('a round that would end past the deadline is not started', async (t) => {
  const sources = [new ScriptedSource()]
  const { backend } = mirrors(sources, { retry: { maxAttempts: 5, deadlineMs: 50, baseDelayMs: 100, maxDelayMs: 100 }, random: () => 0.9 })
  sources[0]!.failures.push(new Error('refused'))
  await t.rejects(backend.readExact(0, 10), { code: 'E_RETRIES_EXHAUSTED', message: /after 1 attempt/ })
})

t.test('the deadline: sources that have not answered fail the read and are marked failing', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  sources.forEach((s) => (s.stalled = true))
  const { backend } = mirrors(sources, { retry: { maxAttempts: 2, deadlineMs: 300, baseDelayMs: 10, maxDelayMs: 10 } })
  await t.rejects(backend.readExact(0, 10), { code: 'E_RETRIES_EXHAUSTED', message: /no mirror answered within the deadline of 300 ms/ })
  t.same(sources.map((s) => s.aborted), [1, 1], 'both asked (a hedge after 250 ms), both aborted')
  t.match(backend.inspect().mirrors, [{ state: 'failing' }, { state: 'failing' }])
})

t.test('hedging: a request slower than the p95 goes to the next source too; the first answer wins', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources)
  for (let i = 0; i < 20; i++) await backend.readExact(0, 10)
  t.same(sources.map((s) => s.reads), [20, 0])
  sources[0]!.delayMs = 400
  const into = Buffer.alloc(4096)
  const started = performance.now()
  const bytes = await backend.readExact(4096, 4096, { into })
  const elapsed = performance.now() - started
  t.ok(bytes.equals(IMAGE.subarray(4096, 8192)), 'the right bytes')
  t.ok(elapsed < 200, `answered by the hedge in ${elapsed.toFixed(0)} ms, not the 400 ms of the slow source`)
  t.same(sources.map((s) => s.reads), [21, 1])
  t.equal(sources[0]!.aborted, 1, 'the slow request was aborted')
  t.equal(sources[0]!.intos.at(-1), into, "the first request was given the caller's buffer")
  t.equal(sources[1]!.intos.at(-1), undefined, 'the hedge its own, so two writers never share one')
  t.not(bytes, into, 'the hedge won: its buffer is the answer (the contract allows it)')
  t.match(backend.inspect().mirrors, [{ hedgesLost: 1, state: 'healthy' }, { requests: 1 }])
})

t.test('a failure while a hedge is in flight: the hedge answers', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources)
  sources[0]!.delayMs = 300
  sources[0]!.failures.push(new Error('late reset'))
  sources[1]!.delayMs = 100
  const into = Buffer.alloc(10)
  const bytes = await backend.readExact(0, 10, { into })
  t.ok(bytes.equals(IMAGE.subarray(0, 10)))
  t.same(sources.map((s) => s.reads), [1, 1, 0], 'hedged to m1 at 250 ms; m0 failed meanwhile, m1 answered: m2 never asked')
})

t.test("the owner of the caller's buffer fails: the next attempt may fill it", async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources)
  sources[0]!.failures.push(new Error('refused'))
  const into = Buffer.alloc(10)
  t.equal(await backend.readExact(0, 10, { into }), into)
  t.equal(sources[1]!.intos[0], into)
})

t.test('sourceSet (the manifest seam): says which source answered, avoids sources, and demotes one marked bad', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources, { now: () => 0 }) // latencies all 0: the config's order
  t.equal(backend.sourceSet, backend)
  t.same(backend.labels, ['http://m0/disk.img', 'http://m1/disk.img', 'http://m2/disk.img'])
  const first = await backend.readFrom(0, 4096)
  t.equal(first.source, 0)
  t.ok(first.bytes.equals(IMAGE.subarray(0, 4096)))
  const other = await backend.readFrom(4096, 4096, { avoid: new Set([0]) })
  t.equal(other.source, 1, 'the next source when the first is avoided')
  t.same(sources.map((s) => s.reads), [1, 1, 0])
  await t.rejects(backend.readFrom(0, 10, { avoid: new Set([0, 1, 2]) }), RangeError, 'avoiding every source is refused')
  t.same(await backend.readFrom(10, 0, { avoid: new Set([0]) }), { bytes: Buffer.alloc(0), source: 1 }, 'an empty read asks no one')

  backend.markBad(0, 65536, 16384)
  t.match(backend.inspect().mirrors, [{ state: 'healthy', badBlocks: 1, errors: 0 }, { badBlocks: 0 }, { badBlocks: 0 }])
  t.match(backend.describe(), /^3 mirrors: http:\/\/m0\/disk.img \(healthy, [\d.]+ ms, 0 errors, 1 bad blocks\) \| http:\/\/m1\/disk.img \(healthy, [\d.]+ ms, 0 errors\)/)
  t.equal((await backend.readFrom(65536 + 100, 10)).source, 1, 'a read overlapping the bad range goes to another source')
  t.equal((await backend.readFrom(0, 65536)).source, 0, 'one that does not, to the first')
  backend.markBad(1, 65536, 16384)
  t.equal((await backend.readFrom(60000, 10000)).source, 2, 'both marked: the third')
  backend.markBad(2, 65536, 16384)
  t.equal((await backend.readFrom(65536, 16384)).source, 0, 'all marked: the config order again')
})

t.test('readFrom: an answer ends a failover only once the caller says it is verified, and never to a source failing since', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend, logs } = mirrors(sources, { now: () => 0 }) // latencies all 0: the config's order
  sources[0]!.failures.push(new Error('HTTP 500'))
  t.equal((await backend.readFrom(0, 10)).source, 1)
  t.same(logs.filter((line) => line.includes('failed over')), [], 'not yet: the caller checks the bytes first')
  sources[1]!.failures.push(new Error('reset'))
  t.equal((await backend.readFrom(10, 10)).source, 2, 'm1 fails the next read before the first is verified')
  backend.verified(1)
  t.match(logs.filter((line) => line.includes('failed over')), [/from http:\/\/m0\/disk.img to http:\/\/m1\/disk.img/], "m0's failover ended by m1's verified answer; m1's own is not")
  backend.verified(2)
  t.match(logs.filter((line) => line.includes('failed over')).at(-1), /from http:\/\/m1\/disk.img to http:\/\/m2\/disk.img/)
  backend.verified(2)
  t.equal(logs.filter((line) => line.includes('failed over')).length, 2, 'nothing failing: no line')
})

t.test('a source that hangs: every read answered by the hedge; the third stall marks it failing, and that read is its failover', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend, logs } = mirrors(sources)
  // Measured: m0's hedge delay is its p95, at least 5 ms.
  for (let i = 0; i < 20; i++) await backend.readExact(0, 10)
  sources[0]!.stalled = true
  for (let i = 0; i < 3; i++) {
    const started = performance.now()
    t.ok((await backend.readExact(i * 10, 10)).equals(IMAGE.subarray(i * 10, i * 10 + 10)))
    const elapsed = performance.now() - started
    t.ok(elapsed < 200, `read ${i + 1} answered by the hedge in ${elapsed.toFixed(0)} ms`)
  }
  t.same(sources.map((s) => s.reads), [23, 3], 'm0 asked first each time until the third stall')
  t.same(sources[0]!.aborted, 3, 'each of its requests aborted')
  t.match(backend.inspect().mirrors, [{ state: 'failing', errors: 1, hedgesLost: 3 }, { state: 'healthy' }])
  t.match(logs, [/warn snapshot disk: mirror http:\/\/m0\/disk.img is failing \(3 requests in a row unanswered past its hedge delay of [\d.]+ ms while other mirrors answered \(stalled\)\)/, /info snapshot disk: reads failed over from http:\/\/m0\/disk.img to http:\/\/m1\/disk.img, answered [\d.]+ ms after/])
  await backend.readExact(0, 10)
  t.same(sources.map((s) => s.reads), [23, 4], 'the next read goes straight to m1')
})

t.test('marks are bounded: the oldest are dropped past 4096', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources, { now: () => 0 }) // latencies all 0: the config's order
  backend.markBad(1, 0, 16)
  t.equal((await backend.readFrom(0, 16)).source, 0)
  // m0 is so damaged that it goes last (flaky); m1 is not.
  for (let block = 1; block <= 4096; block++) backend.markBad(0, block * 16, 16)
  t.equal((await backend.readFrom(0, 16)).source, 1, "m1's mark, the oldest, was dropped")
  backend.markBad(0, 16, 16)
  t.equal((await backend.readFrom(16, 16)).source, 1)
  t.match(backend.inspect().mirrors, [{ badBlocks: 4097 }, { badBlocks: 1 }])
})

t.test('avoided sources stay avoided in a new round after every other source failed', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources, { now: () => 0 }) // latencies all 0: the config's order
  sources[1]!.failures.push(new Error('reset'))
  sources[2]!.failures.push(new Error('reset'))
  const answer = await backend.readFrom(0, 10, { avoid: new Set([0]) })
  t.equal(answer.source, 1, 'the second round, after the backoff, asked m1 again')
  t.same(sources.map((s) => s.reads), [0, 2, 1], 'm0 never')
})

t.test("the caller's signal aborts every request of the read", async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  sources.forEach((s) => (s.stalled = true))
  const { backend } = mirrors(sources)
  const controller = new AbortController()
  const read = backend.readExact(0, 10, { signal: controller.signal, stream: 7 })
  setTimeout(() => controller.abort(new Error('reader gone')), 300)
  await t.rejects(read, { message: 'reader gone' })
  t.same(sources.map((s) => s.aborted), [1, 1])
  t.match(backend.inspect().mirrors, [{ state: 'healthy', errors: 0 }, { state: 'healthy', errors: 0 }], 'a cancelled read says nothing of the sources')
  await t.rejects(backend.readExact(0, 10, { signal: AbortSignal.abort(new Error('already')) }), { message: 'already' })
})

t.test('range checks, empty reads, close', async (t) => {
  const sources = [new ScriptedSource(), new ScriptedSource()]
  const { backend } = mirrors(sources)
  await t.rejects(backend.readExact(SIZE, 1), { code: 'E_OUT_OF_RANGE' })
  t.equal((await backend.readExact(SIZE, 0)).length, 0)
  t.same(sources.map((s) => s.reads), [0, 0])
  t.equal(backend.mtime.toISOString(), '2026-01-02T03:04:05.000Z')
  await backend.close()
  await backend.close()
  t.same(sources.map((s) => s.closed), [true, true], 'closes every source')
  await t.rejects(backend.readExact(0, 1), { code: 'E_CLOSED' })
})

import t from 'tap'
import type { HttpSnapshotSpec, RemoteSourceSpec, SnapshotSpec } from '../../../src/config/config.js'
import type { StorageBackend } from '../../../src/backend/storage-backend.js'
import { SourceOpenError } from '../../../src/backend/errors.js'
import { RetriesExhaustedError } from '../../../src/backend/remote/remote-errors.js'
import { openMirrors, sourceLabel } from '../../../src/backend/mirrors/open-mirrors.js'
import { MemoryBackend } from '../../fixtures/memory-backend.js'
import { ramp } from '../../fixtures/test-data.js'

// Opening mirrors: every source opened for single attempts, the same image checked, the open
// refused with both sources named when they differ.

const IMAGE = ramp(0, 300_000)
const silent = { info() {}, warn() {}, error() {} }

function http(url: string): RemoteSourceSpec {
  return { type: 'http', url, headers: {}, caFile: undefined, clientCertFile: undefined, clientKeyFile: undefined, insecureSkipVerify: false, connections: 8, connectTimeoutMs: 3000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, maxAttempts: 3, readDeadlineMs: 8000 }
}
function s3(url: string): RemoteSourceSpec {
  const [bucket, ...key] = url.slice('s3://'.length).split('/')
  return { type: 's3', bucket: bucket!, key: key.join('/'), versionId: undefined, region: undefined, endpoint: undefined, forcePathStyle: false, profile: undefined, anonymous: false, connections: 64, connectTimeoutMs: 3000, requestTimeoutMs: 5000, maxAttempts: 3, readDeadlineMs: 8000 }
}
function snapshot(sources: RemoteSourceSpec[]): HttpSnapshotSpec & { sources: RemoteSourceSpec[] } {
  return { ...(http('http://a/disk.img') as HttpSnapshotSpec), name: 'disk', sources }
}

/** A memory source that says which ETag it is pinned to, and counts its reads. */
class Source extends MemoryBackend {
  reads = 0
  closedNow = false
  constructor(bytes: Buffer, private readonly etag?: string) {
    super(bytes)
  }
  strongEtag(): string | undefined {
    return this.etag
  }
  override readExact(offset: number, length: number): Promise<Buffer> {
    this.reads++
    return super.readExact(offset, length)
  }
  override async close(): Promise<void> {
    this.closedNow = true
  }
}

/** An openSource that gives the backends (or errors) of `table`, by label; it records the specs asked for. */
function opener(table: Record<string, Array<StorageBackend | Error>>) {
  const asked: SnapshotSpec[] = []
  return {
    asked,
    openSource: async (spec: SnapshotSpec) => {
      asked.push(spec)
      const next = table[sourceLabel(spec as RemoteSourceSpec)]!.shift()!
      if (next instanceof Error) throw next
      return next
    },
  }
}

t.test('labels: a redacted URL, or s3://bucket/key', async (t) => {
  t.equal(sourceLabel(http('https://cdn.example/d.img?sig=secret')), 'https://cdn.example/d.img?sig=REDACTED')
  t.equal(sourceLabel(s3('s3://bucket/dir/d.img')), 's3://bucket/dir/d.img')
})

t.test('same size and ETag: opened without reading a byte; each source for single attempts', async (t) => {
  const a = new Source(IMAGE, '"e1"')
  const b = new Source(IMAGE, '"e1"')
  const { asked, openSource } = opener({ 'http://a/disk.img': [a], 'http://b/disk.img': [b] })
  const backend = await openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), { logger: silent, openSource })
  t.equal(backend.length, IMAGE.length)
  t.same([a.reads, b.reads], [0, 0], 'the ETags settle it')
  t.match(asked, [{ name: 'disk', type: 'http', url: 'http://a/disk.img', maxAttempts: 1 }, { name: 'disk', url: 'http://b/disk.img', maxAttempts: 1 }])
  t.ok(asked.every((spec) => !('sources' in spec)), 'each source opened as a plain snapshot')
  t.match(backend.inspect().mirrors, [{ latencyMs: Number }, { latencyMs: Number }], 'the open time is the first latency guess')
})

t.test('another size or another ETag of the same kind: refused, both sources named', async (t) => {
  const { openSource } = opener({ 'http://a/disk.img': [new Source(IMAGE, '"e1"')], 'http://b/disk.img': [new Source(IMAGE.subarray(1), '"e1"')] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), { logger: silent, openSource }), {
    code: 'E_SOURCE_OPEN',
    message: 'snapshot disk: http://a/disk.img and http://b/disk.img are not the same image: http://a/disk.img is 300000 bytes, http://b/disk.img is 299999 bytes',
    fix: /serve one image/,
  })
  const closed = [new Source(IMAGE, '"e1"'), new Source(IMAGE, '"e1"'), new Source(IMAGE, '"e2"')]
  const second = opener({ 'http://a/disk.img': [closed[0]!], 'http://b/disk.img': [closed[1]!], 'http://c/disk.img': [closed[2]!] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img'), http('http://c/disk.img')]), { logger: silent, openSource: second.openSource }), {
    message: 'snapshot disk: http://a/disk.img and http://c/disk.img are not the same image: ETag "e1" and "e2"',
    fix: /rsync -t/,
  })
  t.same(closed.map((s) => s.closedNow), [true, true, true], 'every opened source closed again')
})

t.test('ETags of different kinds (HTTP, S3) or none: sampled bytes compared instead', async (t) => {
  const a = new Source(IMAGE, '"nginx-etag"')
  const b = new Source(IMAGE, '"d41d8cd98f00b204e9800998ecf8427e"')
  const c = new Source(IMAGE)
  const { openSource } = opener({ 'http://a/disk.img': [a], 's3://bucket/disk.img': [b], 'http://c/disk.img': [c] })
  const backend = await openMirrors(snapshot([http('http://a/disk.img'), s3('s3://bucket/disk.img'), http('http://c/disk.img')]), { logger: silent, openSource, random: () => 0.5 })
  t.same([a.reads, b.reads, c.reads], [3, 3, 3], 'the first block, the last and two at random (one the same here): three each')
  t.ok((await backend.readExact(299_000, 1000)).equals(IMAGE.subarray(299_000)))

  const other = Buffer.from(IMAGE)
  other[IMAGE.length - 1]! ^= 1
  const refused = opener({ 'http://a/disk.img': [new Source(IMAGE, '"x"')], 's3://bucket/disk.img': [new Source(other, '"y"')] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), s3('s3://bucket/disk.img')]), { logger: silent, openSource: refused.openSource, random: () => 0 }), {
    message: `snapshot disk: http://a/disk.img and s3://bucket/disk.img are not the same image: bytes ${IMAGE.length - 65536}-${IMAGE.length - 1} differ`,
  })

  const empty = opener({ 'http://a/disk.img': [new Source(Buffer.alloc(0))], 'http://c/disk.img': [new Source(Buffer.alloc(0))] })
  t.equal((await openMirrors(snapshot([http('http://a/disk.img'), http('http://c/disk.img')]), { logger: silent, openSource: empty.openSource })).length, 0, 'empty images: nothing to sample')
})

t.test('with a manifest, another ETag is not a refusal: such a copy is checked by its sampled bytes', async (t) => {
  const manifest = { source: { name: 'manifest', type: 'file' as const, path: '/images/disk.img.manifest' }, sha256: 'a'.repeat(64) }
  const a = new Source(IMAGE, '"mtime-1"')
  const b = new Source(IMAGE, '"mtime-2"')
  const c = new Source(IMAGE, '"mtime-1"')
  const { openSource } = opener({ 'http://a/disk.img': [a], 'http://b/disk.img': [b], 'http://c/disk.img': [c] })
  const backend = await openMirrors({ ...snapshot([http('http://a/disk.img'), http('http://b/disk.img'), http('http://c/disk.img')]), manifest }, { logger: silent, openSource, random: () => 0.5 })
  t.equal(backend.length, IMAGE.length, 'another ETag: not refused')
  t.same([a.reads, b.reads, c.reads], [3, 3, 0], "b's sampled bytes compared with a's; c has a's ETag: not sampled")
  const other = Buffer.from(IMAGE)
  other[0]! ^= 1
  const refused = opener({ 'http://a/disk.img': [new Source(IMAGE, '"e1"')], 'http://b/disk.img': [new Source(other, '"e2"')] })
  await t.rejects(openMirrors({ ...snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), manifest }, { logger: silent, openSource: refused.openSource }), {
    message: 'snapshot disk: http://a/disk.img and http://b/disk.img are not the same image: bytes 0-65535 differ',
  }, 'another image under another ETag is still refused')
})

t.test('a sample that cannot be read refuses the start, naming the source', async (t) => {
  const failing = new Source(IMAGE)
  failing.readExact = async () => {
    throw new Error('connection reset')
  }
  const { openSource } = opener({ 'http://a/disk.img': [new Source(IMAGE)], 'http://c/disk.img': [failing] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), http('http://c/disk.img')]), { logger: silent, openSource }), {
    code: 'E_SOURCE_OPEN',
    message: /^snapshot disk: cannot read bytes 0-65535 of http:\/\/c\/disk.img to compare the mirrors: connection reset$/,
  })
})

t.test('a source that cannot be opened: retried while a retry could help, else the start is refused', async (t) => {
  const transient = () => new SourceOpenError('cannot open http://b/disk.img: ECONNRESET', 'check', { cause: new RetriesExhaustedError('HEAD', 1, 1, new Error('ECONNRESET')) })
  const good = new Source(IMAGE, '"e"')
  const { asked, openSource } = opener({ 'http://a/disk.img': [good], 'http://b/disk.img': [transient(), transient(), new Source(IMAGE, '"e"')] })
  await openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), { logger: silent, openSource, random: () => 0 })
  t.equal(asked.length, 4, 'b opened on its third try (max_attempts 3)')

  const a = new Source(IMAGE, '"e"')
  const final = opener({ 'http://a/disk.img': [a], 'http://b/disk.img': [new SourceOpenError('cannot open http://b/disk.img: the server answered 404', 'check the URL')] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), { logger: silent, openSource: final.openSource }), { message: /answered 404/ })
  t.equal(final.asked.length, 2, 'a 404 is not retried')
  t.ok(a.closedNow, 'the source that did open is closed')

  const exhausted = opener({ 'http://a/disk.img': [new Source(IMAGE, '"e"')], 'http://b/disk.img': [transient(), transient(), transient()] })
  await t.rejects(openMirrors(snapshot([http('http://a/disk.img'), http('http://b/disk.img')]), { logger: silent, openSource: exhausted.openSource, random: () => 0 }), { message: /ECONNRESET/ })
})

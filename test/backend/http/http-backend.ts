import t, { type Test } from 'tap'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type OutgoingHttpHeaders, type RequestListener, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { HttpBackend, type HttpBackendOptions } from '../../../src/backend/http/http-backend.js'
import type { HeaderValues } from '../../../src/backend/http/header-values.js'
import { makeCertificates } from '../../fixtures/certificates.js'
import { startConnectProxy } from '../../fixtures/connect-proxy.js'
import { startFaultServer, type FaultServer } from '../../fixtures/fault-server.js'
import { startNginx } from '../../fixtures/nginx.js'
import { tempDir } from '../../fixtures/temp-dir.js'
import { ManualClock } from '../../fixtures/manual-clock.js'
import { seededBytes } from '../../fixtures/test-data.js'

/**
 * HttpBackend in-process, against real servers on loopback: nginx for the contract, our fault
 * server for misbehaviour it can be told to do, and small scripted servers for answers no sane
 * server gives (a 206 that is compressed, too long or without its validator).
 */

const SIZE = 64 * 1024 + 17
const OBJECT = seededBytes(31, SIZE)

/** Small budgets, no random waits: a failing case fails in milliseconds and always the same way. */
const RETRY = { maxAttempts: 3, deadlineMs: 2000, baseDelayMs: 10, maxDelayMs: 50 }

interface Opened {
  backend: HttpBackend
  /** Every log line, `level: message`. */
  lines: string[]
}

/** Header values that never change (header-values.ts follows files; these tests need none). */
function fixedHeaders(values: Record<string, string>): HeaderValues {
  return { current: () => values, reread: async () => {}, close() {} }
}

function options(url: string, overrides: Partial<HttpBackendOptions> = {}): HttpBackendOptions & { lines: string[] } {
  const lines: string[] = []
  return {
    url,
    headers: fixedHeaders({}),
    tls: { insecureSkipVerify: false },
    connections: 4,
    connectTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    bodyTimeoutMs: 1000,
    retry: RETRY,
    proxy: { httpProxy: '', httpsProxy: '', noProxy: '' },
    logger: {
      info: (message) => lines.push(`info: ${message}`),
      warn: (message) => lines.push(`warn: ${message}`),
      error: (message) => lines.push(`error: ${message}`),
    },
    random: () => 0,
    ...overrides,
    lines,
  }
}

/** Opens a backend (closed at teardown) and keeps its log. */
async function open(t: Test, url: string, overrides: Partial<HttpBackendOptions> = {}): Promise<Opened> {
  const opts = options(url, overrides)
  const backend = await HttpBackend.open(opts)
  t.teardown(() => backend.close())
  return { backend, lines: opts.lines }
}

/** Opening must fail; resolves with the error and the log written on the way. */
async function openFails(url: string, overrides: Partial<HttpBackendOptions> = {}): Promise<{ error: any; lines: string[] }> {
  const opts = options(url, overrides)
  const error = await HttpBackend.open(opts).then(
    async (backend) => {
      await backend.close()
      return undefined
    },
    (err: unknown) => err,
  )
  return { error, lines: opts.lines }
}

function summary(server: FaultServer, from = 0): string[] {
  return server.requests.slice(from).map(({ method, headers }) => `${method} ${headers.range ?? ''}`.trim())
}

/** Starts `server` on 127.0.0.1 and resolves with its origin; teardown closes it. */
async function listen(t: Test, server: Server): Promise<string> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      }),
  )
  const { port } = server.address() as { port: number }
  return `${server instanceof HttpsServer ? 'https' : 'http'}://127.0.0.1:${port}`
}

/** A node:http server answering with `handler`, for answers the fault server cannot be told to give. */
function scripted(t: Test, handler: RequestListener): Promise<string> {
  return listen(t, createHttpServer(handler))
}

/**
 * A correct answer for `bytes` (HEAD, or a GET of one `bytes=a-b` range), with `extra` headers on
 * top: what the scripted servers start from before they break something.
 */
function serve(req: IncomingMessage, res: ServerResponse, bytes: Buffer, extra: OutgoingHttpHeaders = {}, body?: Buffer): void {
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes', ...extra })
    res.end()
    return
  }
  const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') ?? []
  const start = Number(first)
  const end = Math.min(Number(last), bytes.length - 1)
  const payload = body ?? bytes.subarray(start, end + 1)
  res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': payload.length, ...extra })
  res.end(payload)
}

t.test('over nginx', async (t) => {
  const root = await tempDir(t)
  const path = join(root, 'image.raw')
  const source = seededBytes(11, 3 * 1024 * 1024 + 4321)
  await writeFile(path, source)
  const nginx = await startNginx(t, root)

  t.test('learns the size, strong ETag and Last-Modified, and describes them', async (t) => {
    const { backend, lines } = await open(t, nginx.url('/image.raw'))
    t.equal(backend.length, source.length)
    t.equal(backend.mtime.getTime(), Math.floor((await stat(path)).mtimeMs / 1000) * 1000, 'mtime is the Last-Modified')
    t.match(backend.describe(), /^http:\/\/127\.0\.0\.1:\d+\/image\.raw; etag "[0-9a-f]+-[0-9a-f]+"; ranges ok; \d+ ms round trip$/)
    t.match(backend.identity(), { source: /^http:\/\/127\.0\.0\.1:\d+\/image\.raw$/, size: backend.length, validator: /^"[0-9a-f]+-[0-9a-f]+"$/ }, 'its identity, for the disk cache')
    t.match(backend.strongEtag(), /^"[0-9a-f]+-[0-9a-f]+"$/, 'the ETag mirrors compare')
    t.same(lines, [], 'nothing to warn about')
  })

  t.test('a missing object is refused at open: 404, check the URL', async (t) => {
    const { error } = await openFails(nginx.url('/missing.raw'))
    t.match(error, { code: 'E_SOURCE_OPEN', message: `cannot open ${nginx.url('/missing.raw')}: the server answered 404`, fix: 'check the URL' })
  })
})

t.test('open failures say what is wrong and what to do', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const url = server.url()

  t.test('401: check the credentials, no retry', async (t) => {
    const mark = server.requests.length
    server.plan({ kind: 'status', status: 401, method: 'HEAD' })
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: `cannot open ${url}: the server answered 401`, fix: 'check the credentials in headers:' })
    t.same(summary(server, mark), ['HEAD'])
  })

  t.test('403 to HEAD and to the probe: HEAD may be refused, the GET may not', async (t) => {
    const mark = server.requests.length
    server.plan({ kind: 'status', status: 403, method: 'HEAD' }, { kind: 'status', status: 403 })
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: /answered 403$/, fix: 'check the credentials in headers:' })
    t.same(summary(server, mark), ['HEAD', 'GET bytes=0-0'])
  })

  t.test('500 until the attempts run out: the last status, each retry logged', async (t) => {
    const mark = server.requests.length
    server.plan(...Array.from({ length: RETRY.maxAttempts }, () => ({ kind: 'status', status: 500, method: 'HEAD' }) as const))
    const { error, lines } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: /answered 500$/, fix: 'check the URL and the server' })
    t.match(error.cause, { code: 'E_RETRIES_EXHAUSTED', attempts: RETRY.maxAttempts })
    t.same(summary(server, mark), ['HEAD', 'HEAD', 'HEAD'])
    t.match(lines, [/^warn: HEAD \S+: E_HTTP_STATUS: \S+ answered 500; retry 1\/2 in 0 ms$/, /retry 2\/2 in 0 ms$/])
  })

  t.test('a 416 to the probe of an object that is not empty is a plain status error', async (t) => {
    server.plan({ kind: 'status', status: 416, headers: { 'content-range': `bytes */${SIZE}` } })
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: /answered 416$/, fix: 'check the URL and the server' })
  })

  t.test('a probe answered with another range: retried, then refused', async (t) => {
    const mark = server.requests.length
    server.plan({ kind: 'wrong-range' }, { kind: 'wrong-range' })
    const { error } = await openFails(url, { retry: { ...RETRY, maxAttempts: 2 } })
    t.match(error, {
      code: 'E_SOURCE_OPEN',
      message: `cannot open ${url}: E_BAD_RESPONSE: ${url} sent a response that is not the requested bytes: Content-Range "bytes 1-1/${SIZE}" for bytes 0-0`,
      cause: { code: 'E_RETRIES_EXHAUSTED', attempts: 2 },
    })
    t.same(summary(server, mark), ['HEAD', 'GET bytes=0-0', 'GET bytes=0-0'])
  })

  t.test('ranges ignored: use a server that supports them', async (t) => {
    server.setMode({ ignoreRanges: true })
    const { error } = await openFails(url)
    server.setMode({ ignoreRanges: false })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /the server does not support ranges/, fix: /supports Range requests/ })
  })

  t.test('a HEAD size that disagrees with the probe: the object is changing, refused', async (t) => {
    server.plan({ kind: 'status', status: 200, method: 'HEAD', headers: { 'content-length': String(SIZE + 1) } })
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: `HEAD said ${SIZE + 1} bytes, a ranged GET ${SIZE}`, fix: /purge the image there/ })
    t.match(error.cause, { code: 'E_REMOTE_CHANGED' })
  })

  t.test("a HEAD ETag that disagrees with the probe's: a cache in between holds another version, refused", async (t) => {
    server.plan({ kind: 'status', status: 200, method: 'HEAD', headers: { 'content-length': String(SIZE), etag: '"a-newer-version"' } })
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: /HEAD said ETag "a-newer-version", a ranged GET "/, fix: /cache or CDN/ })
    t.match(error.cause, { code: 'E_REMOTE_CHANGED' })
  })

  t.test('too many redirects at open', async (t) => {
    const mark = server.requests.length
    server.plan(...Array.from({ length: 6 }, () => ({ kind: 'redirect', location: '/again.img', method: 'HEAD' }) as const))
    const { error } = await openFails(url)
    t.match(error, { code: 'E_SOURCE_OPEN', message: /E_REDIRECT: .*: more than 5 redirects$/ })
    t.equal(summary(server, mark).length, 6, 'six redirects followed, none retried')
  })

  t.test('connection refused: is the server up?', async (t) => {
    // A port that was free a moment ago: bind port 0, note the port, close.
    const probe = createHttpServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as { port: number }
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const { error, lines } = await openFails(`http://127.0.0.1:${port}/disk.img`, { retry: { ...RETRY, maxAttempts: 2 } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /^cannot open http:\/\/127\.0\.0\.1:\d+\/disk\.img: .*ECONNREFUSED/, fix: 'check the URL, and that the server is up and reachable' })
    t.match(lines, [/^warn: HEAD \S+: .*ECONNREFUSED.*; retry 1\/1 in 0 ms$/], 'one retry, logged')
  })
})

t.test('what open learns from the headers', async (t) => {
  t.test('no validator at all: a warning, no conditions on reads, and a 416 once it shrinks', async (t) => {
    const server = await startFaultServer(t, OBJECT)
    server.setMode({ etag: 'none', lastModified: false })
    const before = Date.now()
    const { backend, lines } = await open(t, server.url())
    t.match(lines, [/^warn: http:\/\/127\.0\.0\.1:\d+\/disk\.img has no strong ETag and no Last-Modified: a change on the server cannot be detected$/])
    t.match(backend.describe(), /; no validator; ranges ok; /)
    t.ok(backend.mtime.getTime() >= before, 'without Last-Modified, mtime is the time of open')
    const mark = server.requests.length
    t.ok((await backend.readExact(100, 1000)).equals(OBJECT.subarray(100, 1100)))
    const [read] = server.requests.slice(mark)
    t.notOk(read && ('if-match' in read.headers || 'if-unmodified-since' in read.headers), 'the read is not conditional')

    // Nothing would tie a resumed request's bytes to the cut body's version: the whole range again.
    const cutMark = server.requests.length
    server.plan({ kind: 'short-body', bytes: 300 })
    t.ok((await backend.readExact(100, 1000)).equals(OBJECT.subarray(100, 1100)))
    t.same(server.requests.slice(cutMark).map(({ headers }) => headers.range), ['bytes=100-1099', 'bytes=100-1099'], 'a cut body is not resumed')
    t.match(lines.at(-1), /E_TRUNCATED_BODY: .*; retry 1\/2 in 0 ms$/, 'logged as a plain retry')

    server.setObject(OBJECT.subarray(0, 1000))
    await t.rejects(backend.readExact(SIZE - 10, 10), { code: 'E_REMOTE_CHANGED', message: /the range is past the end now \(416\)/ })
  })

  t.test('a weak ETag: pinned by Last-Modified instead', async (t) => {
    const server = await startFaultServer(t, OBJECT)
    server.setMode({ etag: 'weak' })
    const { backend, lines } = await open(t, server.url())
    const head = server.requests.find((request) => request.method === 'HEAD')
    t.ok(head)
    t.match(backend.describe(), /; last-modified \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT; ranges ok; /)
    t.equal(backend.identity(), undefined, 'no identity for the disk cache: Last-Modified cannot tell versions apart')
    t.equal(backend.strongEtag(), undefined, 'no strong ETag for mirrors to compare')
    t.same(lines, [])
    const mark = server.requests.length
    t.ok((await backend.readExact(0, 10)).equals(OBJECT.subarray(0, 10)))
    t.equal(server.requests[mark]?.headers['if-unmodified-since'], backend.mtime.toUTCString())
    server.setObject(seededBytes(32, SIZE))
    await t.rejects(backend.readExact(0, 10), { code: 'E_REMOTE_CHANGED', message: /pinned version is gone \(412\)/ })
  })

  t.test('HEAD refused (405): size and validator from the probe', async (t) => {
    const server = await startFaultServer(t, OBJECT)
    server.setMode({ refuseHead: true })
    const { backend, lines } = await open(t, server.url())
    t.same(summary(server), ['HEAD', 'GET bytes=0-0'])
    t.equal(backend.length, SIZE)
    t.match(backend.describe(), /; etag "[0-9a-f]+"; ranges ok; /)
    t.same(lines, [])
    t.ok((await backend.readExact(SIZE - 1, 1)).equals(OBJECT.subarray(SIZE - 1)))
  })

  t.test('an empty object: a 416 to the probe says its size is 0', async (t) => {
    const server = await startFaultServer(t, Buffer.alloc(0))
    const { backend } = await open(t, server.url())
    t.equal(backend.length, 0)
    t.equal((await backend.readExact(0, 0)).length, 0)
    await t.rejects(backend.readExact(0, 1), { code: 'E_OUT_OF_RANGE' })
  })

  t.test('a HEAD without Content-Length: the size comes from the probe', async (t) => {
    const url = await scripted(t, (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { etag: '"v1"' })
        res.end()
      } else serve(req, res, OBJECT, { etag: '"v1"' })
    })
    const { backend } = await open(t, `${url}/disk.img`)
    t.equal(backend.length, SIZE)
    t.ok((await backend.readExact(SIZE - 5, 5)).equals(OBJECT.subarray(SIZE - 5)))
  })
})

t.test('reads take only the exact bytes of the version opened', async (t) => {
  /** What the scripted server does to the next GETs; a correct answer when undefined. */
  let misbehave: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  let etag = '"v1"'
  let lastModified: string | undefined
  const url = await scripted(t, (req, res) => {
    const validators = { etag, ...(lastModified && { 'last-modified': lastModified }) }
    if (req.method === 'GET' && misbehave) misbehave(req, res)
    else serve(req, res, OBJECT, validators)
  })
  const { backend, lines } = await open(t, `${url}/disk.img`, { retry: { ...RETRY, maxAttempts: 2 } })

  const fails = async (t: Test, answer: (req: IncomingMessage, res: ServerResponse) => void, expected: { code: string; [field: string]: unknown }, what: string) => {
    misbehave = answer
    const mark = lines.length
    await t.rejects(backend.readExact(1000, 10), expected, what)
    misbehave = undefined
    t.ok((await backend.readExact(1000, 10)).equals(OBJECT.subarray(1000, 1010)), `${what}: the next read is right`)
    return lines.slice(mark)
  }

  t.test('a compressed 206 is not the bytes: retried, then refused', async (t) => {
    const log = await fails(
      t,
      (req, res) => serve(req, res, OBJECT, { etag, 'content-encoding': 'gzip' }),
      { code: 'E_RETRIES_EXHAUSTED', attempts: 2, cause: { code: 'E_BAD_RESPONSE', message: /Content-Encoding gzip$/ } },
      'Content-Encoding gzip',
    )
    t.match(log, [/^warn: GET \S+ bytes 1000-1009: E_BAD_RESPONSE: .*Content-Encoding gzip; retry 1\/1 in 0 ms$/])
  })

  t.test('Content-Encoding: identity is the bytes as they are', async (t) => {
    misbehave = (req, res) => serve(req, res, OBJECT, { etag, 'content-encoding': 'identity' })
    t.ok((await backend.readExact(2000, 10)).equals(OBJECT.subarray(2000, 2010)))
    misbehave = undefined
  })

  t.test('two Content-Encoding headers are read together, not just the first', async (t) => {
    await fails(
      t,
      (req, res) => {
        res.setHeader('content-encoding', ['identity', 'gzip'])
        serve(req, res, OBJECT, { etag })
      },
      { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: /Content-Encoding identity, gzip$/ } },
      'identity and gzip',
    )
  })

  t.test('a body longer than the range: refused on its Content-Length, before any byte is stored', async (t) => {
    await fails(
      t,
      (req, res) => serve(req, res, OBJECT, { etag }, OBJECT.subarray(1000, 1011)),
      { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: /Content-Length 11 for 10 bytes$/ } },
      'eleven bytes for ten',
    )
  })

  t.test('a shorter body: refused on its Content-Length', async (t) => {
    await fails(
      t,
      (req, res) => serve(req, res, OBJECT, { etag }, OBJECT.subarray(1000, 1004)),
      { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: /Content-Length 4 for 10 bytes$/ } },
      'four bytes for ten',
    )
  })

  t.test('a Content-Range with another total size', async (t) => {
    await fails(
      t,
      (req, res) => serve(req, res, OBJECT, { etag, 'content-range': `bytes 1000-1009/${SIZE + 1}` }),
      { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: `Content-Range "bytes 1000-1009/${SIZE + 1}" for bytes 1000-1009/${SIZE}` } },
      'total + 1',
    )
  })

  t.test('a Content-Range with an unknown total is fine', async (t) => {
    misbehave = (req, res) => serve(req, res, OBJECT, { etag, 'content-range': 'bytes 3000-3009/*' })
    t.ok((await backend.readExact(3000, 10)).equals(OBJECT.subarray(3000, 3010)))
    misbehave = undefined
  })

  t.test('a 206 without the ETag is taken on If-Match alone', async (t) => {
    misbehave = (req, res) => serve(req, res, OBJECT)
    t.ok((await backend.readExact(4000, 10)).equals(OBJECT.subarray(4000, 4010)))
    misbehave = undefined
  })

  t.test('a server that ignores If-Match but shows another ETag: changed, never mixed', async (t) => {
    await fails(
      t,
      (req, res) => serve(req, res, OBJECT, { etag: '"v2"' }),
      { code: 'E_REMOTE_CHANGED', message: /\(etag was "v1", now "v2"\)/ },
      'ETag v2',
    )
  })

  t.test('a redirect without a Location', async (t) => {
    await fails(
      t,
      (_req, res) => {
        res.writeHead(302, { 'content-length': 0 })
        res.end()
      },
      { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: /302 without a Location$/ } },
      '302 without Location',
    )
  })

  t.test('pinned by Last-Modified where the ETag is weak: a new Last-Modified is a change', async (t) => {
    etag = 'W/"v1"'
    lastModified = 'Tue, 24 Nov 2026 10:00:00 GMT'
    t.teardown(() => {
      misbehave = undefined
      etag = '"v1"'
      lastModified = undefined
    })
    const { backend } = await open(t, `${url}/disk.img`)
    t.match(backend.describe(), /; last-modified Tue, 24 Nov 2026 10:00:00 GMT;/)
    misbehave = (req, res) => serve(req, res, OBJECT, { etag, 'last-modified': 'Wed, 25 Nov 2026 10:00:00 GMT' })
    await t.rejects(backend.readExact(0, 10), {
      code: 'E_REMOTE_CHANGED',
      message: /\(last-modified was Tue, 24 Nov 2026 10:00:00 GMT, now Wed, 25 Nov 2026 10:00:00 GMT\)/,
    })
  })
})

t.test('a 401 or 403 to credentials rotated since the request: read again and retried with the new ones', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  /** Values a rotation replaces on disk: reread() finds `onDisk`. */
  let sent = { authorization: 'Bearer one' }
  let onDisk = sent
  const rotating: HeaderValues = { current: () => sent, reread: async () => void (sent = onDisk), close() {} }
  const { backend, lines } = await open(t, server.url(), { headers: rotating })

  server.setMode({ authorization: 'Bearer two' })
  t.teardown(() => server.setMode({ authorization: undefined }))
  let mark = server.requests.length
  await t.rejects(backend.readExact(0, 100), { code: 'E_HTTP_STATUS', status: 401 }, 'the file still holds the refused token: final')
  t.equal(server.requests.length - mark, 1, 'asked once')

  onDisk = { authorization: 'Bearer two' }
  mark = server.requests.length
  t.ok((await backend.readExact(100, 100)).equals(OBJECT.subarray(100, 200)), 'rotated on disk: the read gets its bytes')
  t.same(server.requests.slice(mark).map(({ headers }) => headers.authorization), ['Bearer one', 'Bearer two'], 'the refused token, then the new one')
  t.match(lines.at(-1), /^warn: GET .* bytes 100-199: .* answered 401; the credentials have been renewed since; retry 1\/2 in \d+ ms$/)

  onDisk = { authorization: 'Bearer three' }
  server.setMode({ authorization: undefined })
  server.plan({ kind: 'status', status: 403 })
  t.ok((await backend.readExact(200, 100)).equals(OBJECT.subarray(200, 300)), 'a 403 too')
  t.equal(sent.authorization, 'Bearer three')
})

t.test('reads from the fault server', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const other = await startFaultServer(t, OBJECT)
  const { backend } = await open(t, server.url(), { headers: fixedHeaders({ 'x-api-key': 'k1' }) })

  t.test('ranges ignored after open: refused at once, not retried', async (t) => {
    const mark = server.requests.length
    server.setMode({ ignoreRanges: true })
    t.teardown(() => server.setMode({ ignoreRanges: false }))
    await t.rejects(backend.readExact(0, 100), { code: 'E_RANGE_IGNORED' })
    t.equal(server.requests.length - mark, 1)
  })

  t.test('a redirect to another origin: followed without our headers', async (t) => {
    const mark = server.requests.length
    server.plan({ kind: 'redirect', location: other.url('/mirror.img') })
    t.ok((await backend.readExact(100, 100)).equals(OBJECT.subarray(100, 200)))
    t.equal(server.requests[mark]?.headers['x-api-key'], 'k1', 'the origin got the header')
    t.same(
      other.requests.map(({ path, headers }) => ({ path, range: headers.range, key: headers['x-api-key'] })),
      [{ path: '/mirror.img', range: 'bytes=100-199', key: undefined }],
      'the other origin got the range, not the header',
    )
  })
})

t.test('a retry asks only for the bytes a cut body did not deliver', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const OFFSET = 1000
  const LENGTH = 40_000
  const K = 12_345
  /** The GETs since `mark`: range, If-Match, and body bytes the server wrote. */
  const gets = (from: FaultServer, mark: number) =>
    from.requests.slice(mark).map(({ headers, bodyBytes }) => ({ range: headers.range, ifMatch: headers['if-match'], bodyBytes }))

  for (const [name, fault] of [
    ['a clean close', { kind: 'short-body', bytes: K }],
    ['a reset', { kind: 'reset-mid-body', bytes: K }],
  ] as const) {
    t.test(`${name} after ${K} bytes: the retry asks from offset + ${K}, the server sends each byte once`, async (t) => {
      const { backend, lines } = await open(t, server.url())
      const mark = server.requests.length
      server.plan(fault)
      t.ok((await backend.readExact(OFFSET, LENGTH)).equals(OBJECT.subarray(OFFSET, OFFSET + LENGTH)), 'the exact bytes')
      const [first, retry] = gets(server, mark)
      t.match(first, { range: `bytes=${OFFSET}-${OFFSET + LENGTH - 1}`, bodyBytes: K })
      t.match(retry, { range: `bytes=${OFFSET + K}-${OFFSET + LENGTH - 1}`, bodyBytes: LENGTH - K }, 'K + (length - K) bytes in all, not K + length')
      t.equal(retry?.ifMatch, first?.ifMatch, 'the retry carries the same pin')
      t.match(first?.ifMatch, /^"[0-9a-f]+"$/)
      t.match(lines, [new RegExp(`^warn: GET \\S+ bytes ${OFFSET}-${OFFSET + LENGTH - 1}: .*; retry 1/2 in 0 ms, from byte ${OFFSET + K}$`)])
    })
  }

  t.test('a body timeout: the retry resumes after the bytes that came', async (t) => {
    const { backend, lines } = await open(t, server.url(), { bodyTimeoutMs: 200 })
    const mark = server.requests.length
    server.plan({ kind: 'stall-body', ms: 1000 })
    t.ok((await backend.readExact(0, LENGTH)).equals(OBJECT.subarray(0, LENGTH)))
    t.same(gets(server, mark).map(({ range }) => range), [`bytes=0-${LENGTH - 1}`, `bytes=${LENGTH / 2}-${LENGTH - 1}`])
    t.match(lines, [new RegExp(`E_BODY_TIMEOUT: .*; retry 1/2 in 0 ms, from byte ${LENGTH / 2}$`)])
  })

  t.test('cut twice: each retry resumes where the last one stopped, into the caller\'s buffer', async (t) => {
    const { backend, lines } = await open(t, server.url())
    const mark = server.requests.length
    server.plan({ kind: 'short-body', bytes: 100 }, { kind: 'short-body', bytes: 200 })
    const into = Buffer.alloc(LENGTH)
    const bytes = await backend.readExact(OFFSET, LENGTH, { into })
    t.equal(bytes, into, 'the caller\'s buffer, whole')
    t.ok(into.equals(OBJECT.subarray(OFFSET, OFFSET + LENGTH)))
    t.same(gets(server, mark).map(({ range }) => range), [`bytes=${OFFSET}-${OFFSET + LENGTH - 1}`, `bytes=${OFFSET + 100}-${OFFSET + LENGTH - 1}`, `bytes=${OFFSET + 300}-${OFFSET + LENGTH - 1}`])
    t.match(lines, [/from byte 1100$/, /from byte 1300$/])
  })

  t.test('the object changed between attempts: the resumed request fails on its pin, E_REMOTE_CHANGED, not retried', async (t) => {
    const changing = await startFaultServer(t, OBJECT)
    const { backend } = await open(t, changing.url())
    const mark = changing.requests.length
    changing.plan({ kind: 'short-body', bytes: K })
    // Replaced once the first GET is answered, before the retry's backoff ends.
    void changing.received(mark + 1).then(() => changing.setObject(seededBytes(33, SIZE)))
    await t.rejects(backend.readExact(OFFSET, LENGTH), { code: 'E_REMOTE_CHANGED', message: /412/ })
    const [first, retry, ...more] = gets(changing, mark)
    t.match(retry, { range: `bytes=${OFFSET + K}-${OFFSET + LENGTH - 1}`, ifMatch: first?.ifMatch }, 'the resumed request carried the pin (the server answered 412)')
    t.same(more, [], 'no other attempt')
  })

  t.test('a changed object a server shows only by its ETag: the resumed head is checked like the first', async (t) => {
    const careless = await startFaultServer(t, OBJECT)
    const { backend } = await open(t, careless.url())
    careless.setMode({ ignoreConditions: true })
    const mark = careless.requests.length
    careless.plan({ kind: 'short-body', bytes: K })
    void careless.received(mark + 1).then(() => careless.setObject(seededBytes(34, SIZE)))
    await t.rejects(backend.readExact(OFFSET, LENGTH), { code: 'E_REMOTE_CHANGED', message: /etag was "[0-9a-f]+", now "[0-9a-f]+"/ })
    t.equal(careless.requests.length - mark, 2)
  })

  t.test('a resumed answer for another range: refused on its Content-Range like any answer, then resumed again', async (t) => {
    const { backend, lines } = await open(t, server.url())
    const mark = server.requests.length
    server.plan({ kind: 'short-body', bytes: K }, { kind: 'wrong-range' })
    t.ok((await backend.readExact(OFFSET, LENGTH)).equals(OBJECT.subarray(OFFSET, OFFSET + LENGTH)))
    t.same(gets(server, mark).map(({ range }) => range), [`bytes=${OFFSET}-${OFFSET + LENGTH - 1}`, ...Array(2).fill(`bytes=${OFFSET + K}-${OFFSET + LENGTH - 1}`)])
    t.match(lines, [/from byte 13345$/, new RegExp(`E_BAD_RESPONSE: .*Content-Range "bytes ${OFFSET + K + 1}-${OFFSET + LENGTH}/${SIZE}" for bytes ${OFFSET + K}-${OFFSET + LENGTH - 1}/${SIZE}; retry 2/2 in 0 ms, from byte ${OFFSET + K}$`)])
  })

  t.test('through undici (after a redirect): a cut body is resumed the same way', async (t) => {
    const mirror = await startFaultServer(t, OBJECT)
    const { backend, lines } = await open(t, server.url())
    const mark = server.requests.length
    server.plan({ kind: 'redirect', location: mirror.url('/mirror.img') })
    mirror.plan({ kind: 'short-body', bytes: K })
    t.ok((await backend.readExact(OFFSET, LENGTH)).equals(OBJECT.subarray(OFFSET, OFFSET + LENGTH)))
    t.same(gets(mirror, 0).map(({ range, bodyBytes }) => [range, bodyBytes]), [[`bytes=${OFFSET}-${OFFSET + LENGTH - 1}`, K]])
    // Once redirected, requests go through undici; the origin redirects no more, so it serves the rest.
    t.same(gets(server, mark).map(({ range, bodyBytes }) => [range, bodyBytes]), [[`bytes=${OFFSET}-${OFFSET + LENGTH - 1}`, 0], [`bytes=${OFFSET + K}-${OFFSET + LENGTH - 1}`, LENGTH - K]])
    t.match(lines.filter((line) => line.startsWith('warn:')), [new RegExp(`; retry 1/2 in 0 ms, from byte ${OFFSET + K}$`)])
  })
})

t.test('retries stop at the deadline (on a hand-driven clock)', async (t) => {
  const server = await startFaultServer(t, OBJECT)

  t.test('a Retry-After past the deadline fails at once and says so', async (t) => {
    const clock = new ManualClock()
    const { backend } = await open(t, server.url(), { retry: { ...RETRY, deadlineMs: 1000 }, clock })
    const mark = server.requests.length
    server.plan({ kind: 'status', status: 503, headers: { 'retry-after': '5' } })
    await t.rejects(backend.readExact(0, 100), {
      code: 'E_RETRIES_EXHAUSTED',
      attempts: 1,
      message: /answered 503; Retry-After 5000 ms is past the deadline$/,
    })
    t.equal(clock.now(), 0, 'without waiting: the clock never had to move')
    t.equal(summary(server, mark).length, 1)
  })

  t.test('a backoff past the deadline fails at once with the last error', async (t) => {
    const clock = new ManualClock()
    const slow = { ...RETRY, deadlineMs: 1000, baseDelayMs: 5000, maxDelayMs: 5000 }
    const { backend } = await open(t, server.url(), { retry: slow, random: () => 0.5, clock })
    server.plan({ kind: 'status', status: 503 })
    await t.rejects(backend.readExact(0, 100), { code: 'E_RETRIES_EXHAUSTED', attempts: 1, cause: { code: 'E_HTTP_STATUS', status: 503 } })
    t.equal(clock.now(), 0, 'without waiting: the clock never had to move')
  })

  t.test('a server slower than the deadline: the attempt is cut off at it', async (t) => {
    const clock = new ManualClock()
    const { backend } = await open(t, server.url(), { retry: { ...RETRY, deadlineMs: 300 }, headersTimeoutMs: 5000, clock })
    server.plan({ kind: 'slow-headers', ms: 5000 })
    const mark = server.requests.length
    let settled = false
    const read = backend.readExact(0, 100).finally(() => (settled = true))
    const failed = t.rejects(read, { code: 'E_RETRIES_EXHAUSTED', attempts: 1, message: /deadline of 300 ms reached/ })
    await server.received(mark + 1)
    await clock.advance(299)
    t.notOk(settled, 'still waiting a millisecond before the deadline')
    await clock.advance(1)
    await failed
  })
})

t.test('redirects', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const { backend } = await open(t, server.url())

  t.test('five redirects are followed', async (t) => {
    const mark = server.requests.length
    server.plan(...Array.from({ length: 5 }, (_, i) => ({ kind: 'redirect', location: `/hop${i}.img` }) as const))
    t.ok((await backend.readExact(500, 500)).equals(OBJECT.subarray(500, 1000)))
    t.same(
      server.requests.slice(mark).map(({ path }) => path),
      ['/disk.img', '/hop0.img', '/hop1.img', '/hop2.img', '/hop3.img', '/hop4.img'],
    )
  })

  t.test('a sixth is refused, not retried', async (t) => {
    const mark = server.requests.length
    server.plan(...Array.from({ length: 6 }, () => ({ kind: 'redirect', location: '/again.img' }) as const))
    await t.rejects(backend.readExact(500, 500), { code: 'E_REDIRECT', message: /more than 5 redirects$/ })
    t.equal(server.requests.length - mark, 6)
  })
})

t.test('https', async (t) => {
  const dir = await tempDir(t)
  const certificates = await makeCertificates(dir)
  const ca = await readFile(certificates.caFile, 'utf8')
  const plain = await startFaultServer(t, OBJECT)
  const tls = { cert: await readFile(certificates.serverCertFile), key: await readFile(certificates.serverKeyFile) }
  const origin = await listen(
    t,
    createHttpsServer(tls, (req, res) => {
      if (req.url === '/disk.img') return serve(req, res, OBJECT, { etag: '"tls"' })
      if (req.url === '/moved.img') res.writeHead(301, { location: '/disk.img', 'content-length': 0 })
      else res.writeHead(302, { location: plain.url(), 'content-length': 0 })
      res.end()
    }),
  )
  t.match(origin, /^https:/)

  t.test('a certificate from an unknown CA: not trusted, add ca_file', async (t) => {
    const { error } = await openFails(`${origin}/disk.img`, { retry: { ...RETRY, maxAttempts: 1 } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /: TLS certificate not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)$/, fix: 'add the CA as ca_file, or fix the server certificate' })
  })

  t.test('with the CA: a redirect within https is followed', async (t) => {
    const { backend } = await open(t, `${origin}/moved.img`, { tls: { ca, insecureSkipVerify: false } })
    t.equal(backend.length, SIZE)
    t.ok((await backend.readExact(SIZE - 100, 100)).equals(OBJECT.subarray(SIZE - 100)))
  })

  t.test('a redirect from https to http is refused at open', async (t) => {
    const { error } = await openFails(`${origin}/downgrade.img`, { tls: { ca, insecureSkipVerify: false } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: `refusing a redirect from https to ${plain.url()}` })
    t.same(plain.requests, [], 'nothing was sent over http')
  })

  t.test('a server that wants a client certificate gets ours', async (t) => {
    const mutual = await listen(t, createHttpsServer({ ...tls, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => serve(req, res, OBJECT, { etag: '"tls"' })))
    const [cert, key] = await Promise.all([readFile(certificates.clientCertFile, 'utf8'), readFile(certificates.clientKeyFile, 'utf8')])
    const { backend } = await open(t, `${mutual}/disk.img`, { tls: { ca, cert, key, insecureSkipVerify: false } })
    t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)))
    const { error } = await openFails(`${mutual}/disk.img`, { tls: { ca, insecureSkipVerify: false }, retry: { ...RETRY, maxAttempts: 1 } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /^cannot open / }, 'without one: refused')
  })

  t.test("NODE_EXTRA_CA_CERTS's CAs (extraCa) are trusted alone, and beside a ca_file from another CA", async (t) => {
    const other = await readFile((await makeCertificates(await tempDir(t))).caFile, 'utf8')
    const { error } = await openFails(`${origin}/disk.img`, { tls: { ca: other, insecureSkipVerify: false }, retry: { ...RETRY, maxAttempts: 1 } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /: TLS certificate not trusted / }, 'the other CA alone does not vouch for the server')
    for (const trust of [{ extraCa: ca }, { extraCa: ca, ca: other }]) {
      const { backend } = await open(t, `${origin}/disk.img`, { tls: { ...trust, insecureSkipVerify: false } })
      t.ok((await backend.readExact(SIZE - 100, 100)).equals(OBJECT.subarray(SIZE - 100)), Object.keys(trust).join(' and '))
    }
  })

  t.test('through a proxy the server gets the same TLS: its CAs and our client certificate', async (t) => {
    const proxy = await startConnectProxy(t)
    const mutual = await listen(t, createHttpsServer({ ...tls, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => serve(req, res, OBJECT, { etag: '"tls"' })))
    const [cert, key] = await Promise.all([readFile(certificates.clientCertFile, 'utf8'), readFile(certificates.clientKeyFile, 'utf8')])
    const proxied = { httpProxy: '', httpsProxy: proxy.url, noProxy: '' }
    for (const trust of [{ ca }, { extraCa: ca }]) {
      const { backend } = await open(t, `${mutual}/disk.img`, { tls: { ...trust, cert, key, insecureSkipVerify: false }, proxy: proxied })
      t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)), Object.keys(trust).join(' and '))
    }
    t.same(new Set(proxy.tunnels), new Set([new URL(mutual).host]), 'every connection went through the proxy')
    const { error } = await openFails(`${mutual}/disk.img`, { proxy: proxied, retry: { ...RETRY, maxAttempts: 1 } })
    t.match(error, { code: 'E_SOURCE_OPEN', message: /: TLS certificate not trusted / }, 'without the CA: refused')
  })

  t.test("an https proxy is trusted by NODE_EXTRA_CA_CERTS's CAs, not by the snapshot's ca_file", async (t) => {
    const proxy = await startConnectProxy(t, tls)
    const proxied = { httpProxy: '', httpsProxy: proxy.url, noProxy: '' }
    const { backend } = await open(t, `${origin}/disk.img`, { tls: { extraCa: ca, insecureSkipVerify: false }, proxy: proxied })
    t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)))
    t.ok(proxy.tunnels.length > 0, 'through the proxy')
    const { error } = await openFails(`${origin}/disk.img`, { tls: { ca, insecureSkipVerify: false }, proxy: proxied, retry: { ...RETRY, maxAttempts: 1 } })
    t.match(error, { code: 'E_SOURCE_OPEN' }, 'the ca_file vouches for the server only: the proxy is refused')
  })

  t.test('insecure_skip_verify: opens, and warns', async (t) => {
    const { backend, lines } = await open(t, `${origin}/disk.img`, { tls: { insecureSkipVerify: true } })
    t.equal(backend.length, SIZE)
    t.match(lines, [/^warn: TLS certificate checks are OFF for https:\/\/127\.0\.0\.1:\d+\/disk\.img \(insecure_skip_verify\)/])
  })
})

t.test('the direct path hands over to undici for good on a 206 without Content-Length', async (t) => {
  const url = await scripted(t, (req, res) => {
    if (req.method === 'HEAD' || req.headers.range === 'bytes=0-0') return serve(req, res, OBJECT, { etag: '"v1"' })
    const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range!)!
    // No Content-Length: node:http sends the body chunked.
    res.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${first}-${last}/${SIZE}`, 'x-cache': ['miss', 'hit'] })
    res.end(OBJECT.subarray(Number(first), Number(last) + 1))
  })
  const { backend, lines } = await open(t, `${url}/disk.img`)
  const [a, b] = await Promise.all([backend.readExact(0, 100), backend.readExact(5000, 100)])
  t.ok(a.equals(OBJECT.subarray(0, 100)) && b.equals(OBJECT.subarray(5000, 5100)), 'both reads at once are right')
  t.ok((await backend.readExact(SIZE - 10, 10)).equals(OBJECT.subarray(SIZE - 10)), 'and a later one')
  t.match(lines.filter((line) => line.startsWith('info:')), [/answered with a 206 without Content-Length: its requests go through the general HTTP client from now on$/])
})

t.test('a host no_proxy exempts is read directly even with a proxy set', async (t) => {
  const url = await scripted(t, (req, res) => serve(req, res, OBJECT, { etag: '"np"' }))
  // The proxy would refuse every connection: reads that work did not go through it.
  const { backend } = await open(t, `${url}/disk.img`, { proxy: { httpProxy: 'http://127.0.0.1:9', httpsProxy: '', noProxy: 'localhost,127.0.0.1' } })
  t.ok((await backend.readExact(1000, 100)).equals(OBJECT.subarray(1000, 1100)))
})

t.test('behind a proxy, https ranges go through undici (http_proxy serves https too when https_proxy is unset)', async (t) => {
  const { error } = await openFails('https://127.0.0.1:9/disk.img', { proxy: { httpProxy: 'http://127.0.0.1:9', httpsProxy: '', noProxy: '' }, retry: { ...RETRY, maxAttempts: 1 } })
  t.match(error, { code: 'E_SOURCE_OPEN', message: /ECONNREFUSED/ })
})

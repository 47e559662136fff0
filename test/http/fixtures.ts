import t, { type Test } from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import { makeCertificates } from '../fixtures/certificates.js'
import { startDelayProxy } from '../fixtures/delay-proxy.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { startNginx } from '../fixtures/nginx.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

// Not a multiple of any block size, so range arithmetic errors at the end show.
const SIZE = 1024 * 1024 + 17
const BYTES = seededBytes(5, SIZE)

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** false when the connection ended before the whole body arrived. */
  complete: boolean
  reusedSocket: boolean
  socket: Socket
  /** The message of the error that cut the body, if one did. */
  error: string | undefined
  /** Milliseconds from sending to the response head, and to the end of the body. */
  headMs: number
  totalMs: number
}

/** One request with node:http(s); rejects only when no response head arrived. */
function request(url: string, options: { method?: string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Reply> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http
    const req = client.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: options.agent }, (res) => {
      const headMs = Date.now() - started
      const socket = res.socket // res.socket is null once the response has closed
      const chunks: Buffer[] = []
      let error: string | undefined
      // Once the head is in, a cut connection is reported in the Reply (error, complete: false).
      const cut = (err: Error) => (error ??= err.message)
      req.off('error', reject).on('error', cut)
      res.on('error', cut)
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('close', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete: res.complete,
          reusedSocket: req.reusedSocket,
          socket,
          error,
          headMs,
          totalMs: Date.now() - started,
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

function keepAliveAgent(t: Test, options: https.AgentOptions = {}): https.Agent {
  const agent = new https.Agent({ keepAlive: true, ...options })
  t.teardown(() => agent.destroy())
  return agent
}

/** What any correct static server does: full GETs, single ranges, 416, ETag and If-Match, keep-alive. */
async function checkRangeServer(t: Test, url: string, agent: http.Agent): Promise<void> {
  const full = await request(url, { agent })
  t.equal(full.status, 200, 'a GET without Range is 200')
  t.ok(full.body.equals(BYTES), 'with the whole object')
  t.equal(full.headers['accept-ranges'], 'bytes')
  const etag = full.headers.etag
  t.match(etag, /^"[^"]+"$/, 'a strong ETag')

  for (const [range, start, end] of [
    ['bytes=0-0', 0, 0],
    ['bytes=1000-1999', 1000, 1999],
    [`bytes=${SIZE - 1}-${SIZE - 1}`, SIZE - 1, SIZE - 1],
    [`bytes=${SIZE - 100}-${SIZE + 100}`, SIZE - 100, SIZE - 1],
    [`bytes=${SIZE - 5}-`, SIZE - 5, SIZE - 1],
    ['bytes=-10', SIZE - 10, SIZE - 1],
  ] as const) {
    const reply = await request(url, { agent, headers: { range } })
    t.equal(reply.status, 206, `${range}: 206`)
    t.equal(reply.headers['content-range'], `bytes ${start}-${end}/${SIZE}`, `${range}: Content-Range`)
    t.equal(reply.headers['content-length'], String(end - start + 1), `${range}: Content-Length`)
    t.ok(reply.body.equals(BYTES.subarray(start, end + 1)), `${range}: the bytes`)
    t.ok(reply.reusedSocket, `${range}: over a kept-alive connection`)
  }

  const beyond = await request(url, { agent, headers: { range: `bytes=${SIZE}-` } })
  t.equal(beyond.status, 416, 'a range past the end is 416')
  t.equal(beyond.headers['content-range'], `bytes */${SIZE}`)

  const current = await request(url, { agent, headers: { range: 'bytes=0-9', 'if-match': etag! } })
  t.equal(current.status, 206, 'If-Match with the current ETag is served')
  // Last: nginx closes the connection after a 412 (see the test of that below).
  const stale = await request(url, { agent, headers: { range: 'bytes=0-9', 'if-match': '"not-the-etag"' } })
  t.equal(stale.status, 412, 'If-Match with another ETag is 412')
}

/** Resolves true if the server closes `socket` within `ms`. */
async function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return true
  let timer: NodeJS.Timeout | undefined
  const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)))
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  return Promise.race([closed, late]).finally(() => clearTimeout(timer))
}

t.test('nginx', async (t) => {
  const root = await tempDir(t)
  await writeFile(join(root, 'disk.img'), BYTES)

  t.test('over HTTP', async (t) => {
    const nginx = await startNginx(t, root)
    t.match(nginx.origin, /^http:\/\/127\.0\.0\.1:\d+$/)
    t.equal(nginx.url('disk.img'), `${nginx.origin}/disk.img`)
    await checkRangeServer(t, nginx.url('/disk.img'), new http.Agent({ keepAlive: true }))
    t.equal((await request(nginx.url('/missing.img'))).status, 404)
    t.match(await nginx.accessLog(), /^\d+ "GET \/disk\.img HTTP\/1\.1" range="bytes=1000-1999" if_match="-" 206 1000$/m, 'the access log shows ranges')
  })

  t.test('closes the connection after a 412, though its answer says keep-alive', async (t) => {
    // A quirk of nginx (seen in 1.22): the not-modified filter answers a failed If-Match through
    // its error path, which drops the connection. A client that reuses it at once gets a reset.
    const nginx = await startNginx(t, root)
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => agent.destroy())
    const stale = await request(nginx.url('/disk.img'), { agent, headers: { range: 'bytes=0-9', 'if-match': '"other"' } })
    t.equal(stale.status, 412)
    t.equal(stale.headers.connection, 'keep-alive', 'the answer says keep-alive')
    t.ok(await closedWithin(stale.socket, 2000), 'but nginx closes the connection')
    const unsatisfiable = await request(nginx.url('/disk.img'), { agent, headers: { range: `bytes=${SIZE}-` } })
    t.equal(unsatisfiable.status, 416)
    t.notOk(await closedWithin(unsatisfiable.socket, 200), 'a 416 keeps it open')
  })

  t.test('over TLS', async (t) => {
    const certs = await makeCertificates(await tempDir(t))
    const ca = await readFile(certs.caFile)

    t.test('verified with the generated CA', async (t) => {
      const nginx = await startNginx(t, root, { tls: { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } })
      t.match(nginx.origin, /^https:\/\/127\.0\.0\.1:\d+$/)
      await checkRangeServer(t, nginx.url('/disk.img'), keepAliveAgent(t, { ca }))
      await t.rejects(request(nginx.url('/disk.img'), { agent: keepAliveAgent(t) }), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'not trusted without the CA')

      const { port } = new URL(nginx.origin)
      const certificate = await new Promise<PeerCertificate>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost' }, () => {
          resolve(socket.getPeerCertificate())
          socket.end()
        }).on('error', reject)
      })
      t.equal(certificate.subjectaltname, 'IP Address:127.0.0.1, DNS:localhost', 'the server certificate names 127.0.0.1 and localhost')
    })

    t.test('requiring a client certificate', async (t) => {
      const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, clientCaFile: certs.caFile }
      const nginx = await startNginx(t, root, { tls })
      const url = nginx.url('/disk.img')
      // nginx completes the handshake without one and refuses at the HTTP level.
      const refused = await request(url, { agent: keepAliveAgent(t, { ca }), headers: { range: 'bytes=0-9' } })
      t.equal(refused.status, 400, 'no client certificate: 400')
      t.match(refused.body.toString(), /No required SSL certificate was sent/)
      const [cert, key] = await Promise.all([readFile(certs.clientCertFile), readFile(certs.clientKeyFile)])
      const served = await request(url, { agent: keepAliveAgent(t, { ca, cert, key }), headers: { range: 'bytes=0-9' } })
      t.equal(served.status, 206, 'with the client certificate: served')
      t.ok(served.body.equals(BYTES.subarray(0, 10)))
    })
  })
})

t.test('fault server', async (t) => {
  t.test('behaves correctly when no fault is planned', async (t) => {
    const server = await startFaultServer(t, BYTES)
    t.match(server.url(), /^http:\/\/127\.0\.0\.1:\d+\/disk\.img$/)
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => agent.destroy())
    await checkRangeServer(t, server.url(), agent)

    const head = await request(server.url('/any/path?x=1'), { method: 'HEAD', agent })
    t.equal(head.status, 200, 'HEAD: 200')
    t.equal(head.headers['content-length'], String(SIZE), 'HEAD: the object length')
    t.equal(head.body.length, 0, 'HEAD: no body')
    const lastModified = Date.parse(head.headers['last-modified']!)
    t.ok(lastModified > 0, 'HEAD: Last-Modified')
    const headRange = await request(server.url(), { method: 'HEAD', agent, headers: { range: 'bytes=10-19' } })
    t.equal(headRange.status, 206, 'HEAD with Range: 206')
    t.equal(headRange.headers['content-range'], `bytes 10-19/${SIZE}`)

    t.equal((await request(server.url(), { agent, headers: { range: 'bytes=0-9', 'if-match': '*' } })).status, 206, 'If-Match: * is served')
    const since = (ms: number) => ({ range: 'bytes=0-9', 'if-unmodified-since': new Date(ms).toUTCString() })
    t.equal((await request(server.url(), { agent, headers: since(lastModified) })).status, 206, 'If-Unmodified-Since its date: served')
    t.equal((await request(server.url(), { agent, headers: since(lastModified - 1000) })).status, 412, 'If-Unmodified-Since an earlier date: 412')
    t.equal((await request(server.url(), { agent, headers: { range: 'bytes=0-1,5-6' } })).status, 200, 'several ranges: ignored, 200')

    await request(server.url('/q?a=b'), { agent, headers: { 'X-Trace': 'yes' } })
    const last = server.requests.at(-1)!
    t.same({ method: last.method, path: last.path, trace: last.headers['x-trace'] }, { method: 'GET', path: '/q?a=b', trace: 'yes' }, 'requests are recorded')
    t.equal(server.requests.filter((r) => r.method === 'HEAD').length, 2)
  })

  t.test('setObject and setMode', async (t) => {
    const server = await startFaultServer(t, BYTES)
    const before = await request(server.url(), { method: 'HEAD' })
    const replacement = seededBytes(6, 1000)
    server.setObject(replacement)
    const after = await request(server.url())
    t.ok(after.body.equals(replacement), 'the new bytes')
    t.match(after.headers.etag, /^"[^"]+"$/)
    t.not(after.headers.etag, before.headers.etag, 'a new ETag')
    t.ok(Date.parse(after.headers['last-modified']!) >= Date.parse(before.headers['last-modified']!) + 1000, 'Last-Modified at least 1 s later')
    const old = await request(server.url(), { headers: { range: 'bytes=0-9', 'if-match': before.headers.etag! } })
    t.equal(old.status, 412, 'If-Match with the old ETag: 412')
    server.setObject(BYTES)

    server.setMode({ etag: 'weak' })
    const weak = await request(server.url(), { method: 'HEAD' })
    t.match(weak.headers.etag, /^W\/"[^"]+"$/, 'weak ETag')
    t.equal((await request(server.url(), { headers: { 'if-match': weak.headers.etag! } })).status, 412, 'a weak ETag never satisfies If-Match')
    server.setMode({ etag: 'none', lastModified: false })
    const bare = await request(server.url(), { method: 'HEAD' })
    t.notOk('etag' in bare.headers || 'last-modified' in bare.headers, 'no validators')
    server.setMode({ etag: 'strong', lastModified: true })

    server.setMode({ ignoreRanges: true })
    const ignored = await request(server.url(), { headers: { range: 'bytes=10-19' } })
    t.equal(ignored.status, 200, 'ignoreRanges: 200 to a ranged GET')
    t.ok(ignored.body.equals(BYTES), 'with the whole body')
    server.setMode({ ignoreRanges: false, refuseHead: true })
    t.equal((await request(server.url(), { method: 'HEAD' })).status, 405, 'refuseHead: 405 to HEAD')
    t.equal((await request(server.url(), { headers: { range: 'bytes=10-19' } })).status, 206, 'refuseHead: GET still served')
  })

  t.test('faults', async (t) => {
    const server = await startFaultServer(t, BYTES)
    const range = { range: 'bytes=1000-1999' }
    const expected = BYTES.subarray(1000, 2000)

    server.plan({ kind: 'status', status: 503 }, { kind: 'status', status: 429, headers: { 'retry-after': '1' } })
    t.equal((await request(server.url(), { headers: range })).status, 503, 'planned 503')
    const throttled = await request(server.url(), { headers: range })
    t.equal(throttled.status, 429, 'then the planned 429')
    t.equal(throttled.headers['retry-after'], '1', 'with Retry-After')
    const healed = await request(server.url(), { headers: range })
    t.ok(healed.status === 206 && healed.body.equals(expected), 'the queue empty: correct again')

    server.plan({ kind: 'status', status: 500, method: 'HEAD' })
    t.equal((await request(server.url(), { headers: range })).status, 206, 'a HEAD fault lets GETs by')
    t.equal((await request(server.url(), { method: 'HEAD' })).status, 500, 'and answers the next HEAD')

    server.plan({ kind: 'reset' }, { kind: 'reset', method: 'HEAD' })
    await t.rejects(request(server.url(), { headers: range }), { code: 'ECONNRESET' }, 'reset: GET fails')
    await t.rejects(request(server.url(), { method: 'HEAD' }), { code: 'ECONNRESET' }, 'reset: HEAD fails')

    const cuts: Reply[] = []
    for (const kind of ['reset-mid-body', 'short-body'] as const) {
      server.plan({ kind })
      const cut = await request(server.url(), { headers: range })
      cuts.push(cut)
      t.equal(cut.status, 206, `${kind}: 206`)
      t.equal(cut.headers['content-length'], '1000', `${kind}: the full Content-Length`)
      t.notOk(cut.complete, `${kind}: the body ends early`)
      t.ok(cut.body.length < 1000 && cut.body.equals(expected.subarray(0, cut.body.length)), `${kind}: a prefix of the range arrives`)
    }
    t.match(cuts[0]!.error, /ECONNRESET/, 'reset-mid-body: the connection is reset')
    t.equal(cuts[1]!.body.length, 500, 'short-body: exactly half arrives')
    t.equal(cuts[1]!.error, 'aborted', 'short-body: then the connection ends')

    server.plan({ kind: 'slow-headers', ms: 300 })
    const slow = await request(server.url(), { headers: range })
    t.ok(slow.headMs >= 300, `slow-headers: the head after ${slow.headMs} ms`)
    t.ok(slow.status === 206 && slow.body.equals(expected), 'slow-headers: then the right answer')

    server.plan({ kind: 'stall-body', ms: 300 })
    const stalled = await request(server.url(), { headers: range })
    t.ok(stalled.totalMs - stalled.headMs >= 300, `stall-body: the body took ${stalled.totalMs - stalled.headMs} ms after the head`)
    t.ok(stalled.complete && stalled.body.equals(expected), 'stall-body: then all of it')

    server.plan({ kind: 'wrong-range' }, { kind: 'wrong-range' })
    const shifted = await request(server.url(), { headers: range })
    t.equal(shifted.headers['content-range'], `bytes 1001-2000/${SIZE}`, 'wrong-range: a range one byte later')
    t.ok(shifted.body.equals(BYTES.subarray(1001, 2001)), 'wrong-range: with its bytes')
    const atEnd = await request(server.url(), { headers: { range: 'bytes=-10' } })
    t.equal(atEnd.headers['content-range'], `bytes ${SIZE - 11}-${SIZE - 2}/${SIZE}`, 'wrong-range at the end: one byte earlier')

    server.plan({ kind: 'redirect', location: '/elsewhere.img', status: 307 }, { kind: 'redirect', location: 'http://127.0.0.1:1/x' })
    const moved = await request(server.url(), { headers: range })
    t.equal(moved.status, 307)
    t.equal(moved.headers.location, '/elsewhere.img', 'redirect: Location')
    const found = await request(server.url())
    t.equal(found.status, 302, 'redirect: 302 by default')

    t.same(server.requests.map((r) => r.method), [
      'GET', 'GET', 'GET', 'GET', 'HEAD', 'GET', 'HEAD', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'GET',
    ], 'every request recorded, faulted ones included')
  })

  t.test('close() ends kept-alive and stalled connections', async (t) => {
    const server = await startFaultServer(t, BYTES)
    const agent = new http.Agent({ keepAlive: true })
    t.teardown(() => agent.destroy())
    await request(server.url(), { agent })
    server.plan({ kind: 'stall-body', ms: 60_000 })
    const stalled = request(server.url(), { headers: { range: 'bytes=0-99' } })
    while (server.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 5))
    await server.close()
    t.notOk((await stalled).complete, 'the stalled body is cut')
  })
})

t.test('delay proxy', async (t) => {
  const DELAY = 50
  const server = await startFaultServer(t, BYTES)
  const proxy = await startDelayProxy({ host: '127.0.0.1', port: Number(new URL(server.origin).port) }, DELAY)
  t.teardown(() => proxy.close())
  const url = `http://127.0.0.1:${proxy.port}/disk.img`
  const agent = new http.Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())

  const first = await request(url, { agent, headers: { range: 'bytes=0-9' } })
  t.ok(first.body.equals(BYTES.subarray(0, 10)))
  t.ok(first.totalMs >= 4 * DELAY, `a new connection's first request took ${first.totalMs} ms (>= ${4 * DELAY}: handshake and request)`)
  const second = await request(url, { agent, headers: { range: 'bytes=10-19' } })
  t.ok(second.reusedSocket, 'the connection is kept alive through the proxy')
  t.ok(second.totalMs >= 2 * DELAY, `a request on it took ${second.totalMs} ms (>= ${2 * DELAY})`)

  const whole = await request(url, { agent })
  t.ok(whole.body.equals(BYTES), 'a megabyte passes in order')

  server.plan({ kind: 'reset' })
  await t.rejects(request(url, { agent }), { code: 'ECONNRESET', message: 'read ECONNRESET' }, 'a reset upstream reaches the client as a reset')

  await request(url, { agent })
  await proxy.close()
  t.pass('close() returns with a connection still open')
})

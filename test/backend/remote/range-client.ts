import t, { type Test } from 'tap'
import { createServer, type Socket } from 'node:net'
import { RangeClient, type RangeClientOptions } from '../../../src/backend/remote/range-client.js'
import { RangeConnection } from '../../../src/backend/remote/range-connection.js'
import type { ResponseHead } from '../../../src/backend/remote/response-head.js'
import { startFaultServer } from '../../fixtures/fault-server.js'
import { seededBytes } from '../../fixtures/test-data.js'

/**
 * RangeClient and RangeConnection against real sockets on loopback: the fault server for the
 * faults a server can have, and a byte-level scripted server for answers node:http would never
 * write (a head split over many packets, bytes after the body, an interim 103).
 */

const OBJECT = seededBytes(47, 300_000)
const TIMEOUTS = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000 }

function client(t: Test, origin: string, overrides: Partial<RangeClientOptions> = {}): RangeClient {
  const made = new RangeClient({ origin: new URL(origin), tls: {}, headers: () => ({}), connections: 2, url: origin, ...TIMEOUTS, ...overrides })
  t.teardown(() => made.close())
  return made
}

/** Accepts a 206 whose length is the target's, as HttpBackend does after its own checks. */
const take206 = (head: ResponseHead) => head.status === 206

async function range(c: RangeClient, offset: number, length: number, signal = new AbortController().signal, path = '/disk.img'): Promise<Buffer> {
  const target = Buffer.alloc(length)
  const head = await c.request('GET', path, { range: `bytes=${offset}-${offset + length - 1}` }, target, take206, signal)
  if (head.status !== 206) throw new Error(`status ${head.status}`)
  return target
}

/**
 * A TCP server that answers each request head (up to its blank line) with `answer(socket, index)`;
 * it counts connections.
 */
async function scripted(t: Test, answer: (socket: Socket, index: number, request: string) => void): Promise<{ origin: string; connections: () => number }> {
  let connections = 0
  let index = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1')
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const request = pending.slice(0, end)
        pending = pending.slice(end + 4)
        answer(socket, index++, request)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as { port: number }
  return { origin: `http://127.0.0.1:${port}`, connections: () => connections }
}

const head206 = (length: number, extra = '') => `HTTP/1.1 206 Partial Content\r\ncontent-length: ${length}\r\ncontent-range: bytes 0-${length - 1}/1000\r\n${extra}\r\n`

t.test('reads ranges of a real server exactly, on kept-alive connections', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin)
  for (const [offset, length] of [[0, 1], [0, 300_000], [299_999, 1], [12_345, 65_536 * 3 + 7]] as const) {
    t.ok((await range(c, offset, length)).equals(OBJECT.subarray(offset, offset + length)), `${length} bytes at ${offset}`)
  }
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => range(c, i * 10_000, 20_000)))
  t.ok(many.every((bytes, i) => bytes.equals(OBJECT.subarray(i * 10_000, i * 10_000 + 20_000))), '20 at once over 2 connections')
  t.equal(server.requests.length, 24)
})

t.test('sends the fixed and the per-request header fields, and refuses ones that could forge others', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin, { headers: () => ({ 'x-api-key': 'k1' }) })
  await range(c, 10, 10, undefined, '/disk.img?sig=abc')
  t.match(server.requests[0], { path: '/disk.img?sig=abc', headers: { 'x-api-key': 'k1', range: 'bytes=10-19', host: new URL(server.origin).host } })
  t.throws(() => client(t, server.origin, { headers: () => ({ 'x-api-key': 'k1\r\nx-evil: 1' }) }), /header "x-api-key" has a line break or NUL/)
  await t.rejects(c.request('GET', '/disk.img', { '': 'v' }, Buffer.alloc(1), take206, new AbortController().signal), TypeError)
})

t.test('the fixed header fields are asked for at each request: a rotated token goes out from the next one', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  let values: Record<string, string> = { authorization: 'Bearer one' }
  const c = client(t, server.origin, { headers: () => values })
  await range(c, 0, 10)
  await range(c, 10, 10)
  values = { authorization: 'Bearer two' }
  await range(c, 20, 10)
  t.same(server.requests.map(({ headers }) => headers.authorization), ['Bearer one', 'Bearer one', 'Bearer two'])
  values = { authorization: 'Bearer three\r\nx-evil: 1' }
  await t.rejects(range(c, 30, 10), TypeError, 'a value that could forge fields is refused at the request too')
})

t.test('faults become typed errors, and the connection is not used again', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin, { headersTimeoutMs: 200, bodyTimeoutMs: 200 })
  server.plan({ kind: 'reset' })
  await t.rejects(range(c, 0, 1000), { code: 'ECONNRESET' }, 'a reset before any answer')
  server.plan({ kind: 'reset-mid-body' })
  await t.rejects(range(c, 0, 100_000), { code: 'ECONNRESET' }, 'a reset mid-body')
  server.plan({ kind: 'short-body' })
  await t.rejects(range(c, 0, 100_000), { code: 'E_TRUNCATED_BODY', expected: 100_000, received: 50_000 }, 'a clean close mid-body')
  server.plan({ kind: 'slow-headers', ms: 1000 })
  await t.rejects(range(c, 0, 1000), { code: 'E_HEADERS_TIMEOUT', message: /no response head within 200 ms$/ })
  server.plan({ kind: 'stall-body', ms: 1000 })
  await t.rejects(range(c, 0, 100_000), { code: 'E_BODY_TIMEOUT', message: /no body bytes for 200 ms$/ })
  t.ok((await range(c, 5, 5)).equals(OBJECT.subarray(5, 10)), 'then a read is right')
})

t.test('a body cut after its head was accepted tells progress how far it came; a failure before, nothing', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin, { headersTimeoutMs: 200, bodyTimeoutMs: 200 })
  const cut = async (offset: number, length: number) => {
    const progress = { stored: -1 }
    const error = await c.request('GET', '/disk.img', { range: `bytes=${offset}-${offset + length - 1}` }, Buffer.alloc(length), take206, new AbortController().signal, progress).catch((err: unknown) => err)
    return { code: (error as NodeJS.ErrnoException).code, stored: progress.stored }
  }
  server.plan({ kind: 'short-body', bytes: 12_345 })
  t.same(await cut(1000, 100_000), { code: 'E_TRUNCATED_BODY', stored: 12_345 }, 'a clean close')
  server.plan({ kind: 'reset-mid-body', bytes: 23_456 })
  t.same(await cut(1000, 100_000), { code: 'ECONNRESET', stored: 23_456 }, 'a reset')
  server.plan({ kind: 'stall-body', ms: 1000 })
  t.same(await cut(0, 100_000), { code: 'E_BODY_TIMEOUT', stored: 50_000 }, 'a body timeout')
  server.plan({ kind: 'slow-headers', ms: 1000 })
  t.same(await cut(0, 1000), { code: 'E_HEADERS_TIMEOUT', stored: -1 }, 'no head: progress is not told')
  server.plan({ kind: 'reset' })
  t.same(await cut(0, 1000), { code: 'ECONNRESET', stored: -1 }, 'a reset before the head: not told either')
})

t.test('a connection the server closed while idle is replaced without an error', async (t) => {
  const server = await scripted(t, (socket) => {
    socket.write(head206(4))
    socket.end('abcd') // answers, then closes: the client learns it only when it next writes
  })
  const c = client(t, server.origin, { connections: 1 })
  const target = Buffer.alloc(4)
  for (let i = 0; i < 3; i++) {
    await c.request('GET', '/x', {}, target, take206, new AbortController().signal)
    t.equal(target.toString(), 'abcd')
  }
  t.equal(server.connections(), 3)
})

t.test('a request on a connection the server closes unanswered is sent again on a new one; other idle ones go too', async (t) => {
  const served = new Set<Socket>()
  const server = await scripted(t, (socket) => {
    // A server whose keep-alive timeout ran out as the request came in: closes without answering.
    if (served.has(socket)) return socket.destroy()
    served.add(socket)
    socket.write(head206(4) + 'abcd')
  })
  const resent: Error[] = []
  const c = client(t, server.origin, { connections: 2, onResend: (cause) => resent.push(cause) })
  const target = Buffer.alloc(4)
  const signal = new AbortController().signal
  await Promise.all([c.request('GET', '/x', {}, target, take206, signal), c.request('GET', '/x', {}, Buffer.alloc(4), take206, signal)])
  t.equal(server.connections(), 2)
  target.fill(0)
  await c.request('GET', '/x', {}, target, take206, signal)
  t.equal(target.toString(), 'abcd')
  t.match(resent, [{ code: 'E_CONNECTION_CLOSED' }], 'the resend is reported with its cause')
  t.equal(server.connections(), 3, 'one new connection: the other idle one was dropped, not tried')
})

t.test('answers no sane server gives', async (t) => {
  let dropped!: () => void
  const droppedConnection = new Promise<void>((resolve) => (dropped = resolve))
  const big = 'x-pad: ' + 'p'.repeat(17_000) + '\r\n'
  const answers: Array<(socket: Socket) => void> = [
    (socket) => socket.write(`HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n` + head206(4) + 'wxyz'),
    (socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\n\r\n')
      setTimeout(() => socket.write(head206(4).slice(0, 20)), 10)
      setTimeout(() => socket.write(head206(4).slice(20) + 'wx'), 20)
      setTimeout(() => socket.write('yz'), 30)
    },
    (socket) => socket.write(head206(4, big) + 'wxyz'),
    (socket) => socket.write(head206(4) + 'wxyz!'),
    (socket) => {
      socket.write(head206(4) + 'wxyz')
      // Later, in a packet of its own: the body was right, what follows it is not.
      setTimeout(() => socket.write('unasked'), 20)
      socket.once('close', dropped)
    },
    (socket) => socket.write('HTTP/1.0 206 Partial Content\r\ncontent-length: 4\r\n\r\nwxyz'),
    (socket) => socket.write('HTTP/1.1 206 Partial Content\r\ncontent-length: 4\r\nconnection: close\r\n\r\nwxyz'),
    (socket) => socket.write('SPDY/3 200 OK\r\n\r\n'),
  ]
  const server = await scripted(t, (socket, index) => answers[index]!(socket))
  const c = client(t, server.origin, { connections: 1 })
  const get = async () => {
    const target = Buffer.alloc(4)
    await c.request('GET', '/x', {}, target, take206, new AbortController().signal)
    return target.toString()
  }
  t.equal(await get(), 'wxyz', 'an interim 103 in the same packet is skipped')
  t.equal(await get(), 'wxyz', 'a 103, then a head in two packets, then the body in two')
  t.equal(server.connections(), 1, 'kept alive')
  await t.rejects(get(), { code: 'E_BAD_RESPONSE', message: /response head over 16384 bytes$/ })
  await t.rejects(get(), { code: 'E_BAD_RESPONSE', message: /more bytes than its Content-Length$/ })
  t.equal(await get(), 'wxyz', 'a body followed later by bytes nobody asked for is right, and its connection is dropped (counted below)')
  await droppedConnection
  t.equal(await get(), 'wxyz', 'HTTP/1.0: not kept alive')
  t.equal(await get(), 'wxyz', 'connection: close: not kept alive')
  await t.rejects(get(), { code: 'E_BAD_RESPONSE', message: /status line "SPDY\/3 200 OK"$/ })
  t.equal(server.connections(), 6)
})

t.test('the inspector decides before any body byte is stored', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin)
  const target = Buffer.alloc(10, 7)
  const signal = new AbortController().signal
  const head = await c.request('GET', '/disk.img', { range: 'bytes=0-9' }, target, () => false, signal)
  t.equal(head.status, 206, 'declined: the head comes back')
  t.same(target, Buffer.alloc(10, 7), 'and the target is untouched')
  await t.rejects(c.request('GET', '/disk.img', { range: 'bytes=0-9' }, target, () => { throw new Error('no thanks') }, signal), /no thanks/)
  await t.rejects(c.request('GET', '/disk.img', { range: 'bytes=0-19' }, target, () => true, signal), /inspector accepted a body of 20 bytes for a 10-byte target/)
  t.same(target, Buffer.alloc(10, 7))
})

t.test('aborts: before sending, in flight, and while waiting for a connection', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin, { connections: 1 })
  await t.rejects(range(c, 0, 10, AbortSignal.abort(new Error('gone already'))), /gone already/)
  server.plan({ kind: 'slow-headers', ms: 500 })
  const inFlight = new AbortController()
  const waiting = new AbortController()
  const first = range(c, 0, 10, inFlight.signal)
  const second = range(c, 0, 10, waiting.signal)
  const third = range(c, 20, 10)
  await server.received(1)
  waiting.abort(new Error('tired of waiting'))
  await t.rejects(second, /tired of waiting/)
  inFlight.abort(new Error('read cancelled'))
  await t.rejects(first, /read cancelled/)
  t.ok((await third).equals(OBJECT.subarray(20, 30)), 'the queued read goes on the freed slot')
})

t.test('a connection that a TLS server never completes times out', async (t) => {
  const silent = await scripted(t, () => {})
  const c = client(t, silent.origin.replace('http:', 'https:'), { connectTimeoutMs: 100 })
  await t.rejects(range(c, 0, 10), { code: 'E_CONNECT_TIMEOUT', message: /no connection within 100 ms$/ })
})

t.test('close: waiting and running requests fail, later ones too', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const c = client(t, server.origin, { connections: 1 })
  server.plan({ kind: 'slow-headers', ms: 1000 })
  const running = range(c, 0, 10)
  const waiting = range(c, 0, 10)
  await server.received(1)
  const failures = Promise.all([t.rejects(running, { code: 'E_CONNECTION_CLOSED' }), t.rejects(waiting, { code: 'E_CLOSED' })])
  c.close()
  await failures
  await t.rejects(range(c, 0, 10), { code: 'E_CLOSED' })
})

t.test('RangeConnection refuses a second request while one is running', async (t) => {
  const server = await startFaultServer(t, OBJECT)
  const { port } = new URL(server.origin)
  const connection = new RangeConnection({ host: '127.0.0.1', port: Number(port), tls: undefined, url: server.origin, ...TIMEOUTS })
  t.teardown(() => connection.destroy())
  const request = 'GET /disk.img HTTP/1.1\r\nhost: x\r\nrange: bytes=0-9\r\n\r\n'
  const first = connection.send(request, Buffer.alloc(10), take206, new AbortController().signal)
  t.throws(() => connection.send(request, Buffer.alloc(10), take206, new AbortController().signal), /busy or closed/)
  await first
  await t.rejects(connection.send(request, Buffer.alloc(10), take206, AbortSignal.abort(new Error('aborted before'))), /aborted before/)
  t.equal(connection.usable, false, 'an aborted request ends its connection')
})

t.test('default ports and SNI: nothing listens on 80 or 443 here, so the attempts are refused', async (t) => {
  for (const origin of ['http://127.0.0.1', 'https://localhost']) {
    await t.rejects(range(client(t, origin), 0, 1), { code: 'ECONNREFUSED' }, origin)
  }
})

t.test('HEAD: the answer has no body whatever its Content-Length; a server that sends one anyway loses the connection', async (t) => {
  const answers = [
    (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n'),
    (socket: Socket) => socket.write(head206(4) + 'wxyz'),
    (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\njunk'),
    (socket: Socket) => socket.write(head206(4) + 'wxyz'),
  ]
  const server = await scripted(t, (socket, index) => answers[index]!(socket))
  const c = client(t, server.origin, { connections: 1 })
  const signal = new AbortController().signal
  const never = () => t.fail('a HEAD answer is not inspected') as never
  t.equal((await c.request('HEAD', '/x', {}, Buffer.alloc(0), never, signal)).headers['content-length'], '1000')
  const target = Buffer.alloc(4)
  await c.request('GET', '/x', {}, target, take206, signal)
  t.equal(target.toString(), 'wxyz', 'the next request on the same connection reads its own answer')
  t.equal(server.connections(), 1)
  t.equal((await c.request('HEAD', '/x', {}, Buffer.alloc(0), never, signal)).status, 200)
  await c.request('GET', '/x', {}, target.fill(0), take206, signal)
  t.equal(target.toString(), 'wxyz')
  t.equal(server.connections(), 2, 'the HEAD answered with a body cost its connection')
})

// A transparent TCP proxy on 127.0.0.1 that counts what passes, for the benchmark's S3 part
// (bench/run.mjs): placed between a mount's daemon and the S3 server, it tells how many bytes the
// server sent the daemon, on how many connections, in how many requests. Plain JavaScript so the
// bench runs it as is; the types are in count-proxy.d.mts.
//
// Bytes are forwarded as they arrive (stream.pipe, with its back-pressure), never held: the proxy
// adds one hop through this process and no delay of its own. Requests are counted by reading the
// client's side as a sequence of header blocks (a request line, headers, an empty line), which
// holds for the bodiless GETs and HEADs of a read-only client; a request with a body (a PUT)
// would be miscounted, so uploads should not go through it.

import { connect, createServer } from 'node:net'

/** A header block longer than this is not a request we understand; counting stops there. */
const MAX_HEADER_BYTES = 64 * 1024

/** Starts the proxy to `target`; resolves to { port, counters(), close() } once it listens. */
export async function startCountProxy(target) {
  const totals = { connections: 0, bytesFromTarget: 0, bytesToTarget: 0, requests: 0, gets: 0, rangeBytesAsked: 0 }
  /** Requests per connection, by connection number (1, 2, ...): which connections an interval used. */
  const requestsByConnection = {}
  const sockets = new Set()
  const server = createServer((client) => {
    const id = ++totals.connections
    requestsByConnection[id] = 0
    const upstream = connect({ host: target.host, port: target.port })
    // Nagle would hold a small request behind unacked data: the proxy must not add latency.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      // A reset on either side closes the other; the event itself is expected.
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    const requests = requestCounter(totals, () => requestsByConnection[id]++)
    client.on('data', (chunk) => {
      totals.bytesToTarget += chunk.length
      requests(chunk)
    })
    upstream.on('data', (chunk) => (totals.bytesFromTarget += chunk.length))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  let closed
  return {
    port: server.address().port,
    counters: () => ({ ...totals, requestsByConnection: { ...requestsByConnection } }),
    close: () =>
      (closed ??= new Promise((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })),
  }
}

/** Splits one connection's client bytes into header blocks and counts them as requests. */
function requestCounter(totals, onRequest) {
  let pending = ''
  let lost = false
  return (chunk) => {
    if (lost) return
    pending += chunk.toString('latin1')
    for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
      const head = pending.slice(0, end)
      pending = pending.slice(end + 4)
      totals.requests++
      onRequest()
      if (!head.startsWith('GET ')) continue
      totals.gets++
      const range = /\r\nrange:\s*bytes=(\d+)-(\d+)/i.exec(head)
      if (range) totals.rangeBytesAsked += Number(range[2]) - Number(range[1]) + 1
    }
    if (pending.length > MAX_HEADER_BYTES) lost = true
  }
}

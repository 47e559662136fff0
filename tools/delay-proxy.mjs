// A TCP proxy on 127.0.0.1 that makes loopback behave like a distant link, for the tests
// (test/http/fixtures.ts) and the benchmark's "10 ms RTT" condition (bench/run.mjs): this kernel
// has no netem. It also counts what passes (bytes each way, connections, GETs and the ranges they
// ask for), so the benchmark's one hop between a daemon and its server both delays and counts;
// with a delay of 0 it is tools/count-proxy.mjs. Plain JavaScript so the bench runs it as is; the
// types are in delay-proxy.d.mts.
//
// Each direction is a FIFO of chunks stamped with the time they may leave (arrival + delay),
// released in order, in batches, by one timer per direction armed for the oldest: bytes never
// overtake each other, and an end or a reset leaves after the bytes before it. A batch is written
// corked, so the chunks due in one timer tick leave in one writev. A chunk already due (always, with
// no delay) is written at once, with no timer. A new connection's first bytes are held one extra
// round trip, the TCP handshake the loopback connect skipped; without it, opening a connection
// would look free and connection reuse worthless. Bandwidth is not limited: only latency is added.
//
// Throughput: the server's side is read with `onread` into one 1 MiB buffer per connection, so a
// read takes whatever the socket holds (often far more than the 64 KiB of Node's default reads)
// and each chunk is copied out once at its exact size. On the 2-vCPU VM here that cut the proxy's
// CPU time per GiB passed from ~1.35 s to ~0.95 s (most of the rest is the kernel copying each byte
// in and out), and one curl stream through it went from ~0.55-0.75 to ~0.65-1.0 GB/s (nginx
// direct: ~1.1-1.8 GB/s; all on a loaded machine). Not a tap fixture: the caller closes it.

import { connect, createServer } from 'node:net'

/** One read from the server's side: up to this much per syscall (loopback often has more queued). */
const READ_BUFFER_BYTES = 2 ** 20
/** A header block longer than this is not a request we understand; counting stops there. */
const MAX_HEADER_BYTES = 64 * 1024

/**
 * Starts the proxy to `target`; resolves to { port, counters(), close() } once it listens. See
 * delay-proxy.d.mts for the options.
 */
export async function startDelayProxy(target, oneWayDelayMs, options = {}) {
  if (!Number.isFinite(oneWayDelayMs) || oneWayDelayMs < 0) throw new RangeError(`oneWayDelayMs must be >= 0, got ${oneWayDelayMs}`)
  const { timerSlackMs = 0 } = options
  if (!Number.isFinite(timerSlackMs) || timerSlackMs < 0 || timerSlackMs >= 1) {
    throw new RangeError(`timerSlackMs must be >= 0 and < 1 (a fraction of a timer tick), got ${timerSlackMs}`)
  }
  const totals = { connections: 0, bytesFromTarget: 0, bytesToTarget: 0, requests: 0, gets: 0, rangeBytesAsked: 0 }
  /** Requests per connection, by connection number (1, 2, ...): which connections an interval used. */
  const requestsByConnection = {}
  const connections = new Set()
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const id = ++totals.connections
    requestsByConnection[id] = 0
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES)
    let fromUpstream
    const upstream = connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      onread: {
        buffer: readBuffer,
        callback(bytes, buffer) {
          totals.bytesFromTarget += bytes
          const chunk = Buffer.allocUnsafe(bytes)
          buffer.copy(chunk, 0, 0, bytes)
          fromUpstream.push({ chunk })
        },
      },
    })
    // Nagle would hold small writes (a request line, a short response) behind unacked data.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const handshakeDone = performance.now() + 2 * oneWayDelayMs
    const toUpstream = delayedWriter(client, upstream, oneWayDelayMs, handshakeDone, timerSlackMs)
    fromUpstream = delayedWriter(upstream, client, oneWayDelayMs, 0, timerSlackMs)
    const countRequests = requestCounter(totals, () => requestsByConnection[id]++)
    client.on('data', (chunk) => {
      totals.bytesToTarget += chunk.length
      countRequests(chunk)
      toUpstream.push({ chunk })
    })
    watchEnds(client, toUpstream)
    watchEnds(upstream, fromUpstream)
    const destroy = () => {
      toUpstream.cancel()
      fromUpstream.cancel()
      client.destroy()
      upstream.destroy()
    }
    connections.add(destroy)
    let open = 2
    const onClose = () => --open === 0 && connections.delete(destroy)
    client.once('close', onClose)
    upstream.once('close', onClose)
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
        for (const destroy of connections) destroy()
        connections.clear()
      })),
  }
}

/** An end or an error of `from` travels on as an end or a reset, in its place in the stream. */
function watchEnds(from, writer) {
  from.on('end', () => writer.push({ end: true }))
  // The error event itself is expected: the reset is passed on at close.
  from.on('error', () => {})
  from.on('close', (hadError) => hadError && writer.push({ reset: true }))
}

/**
 * Writes what is pushed to `to`, each item `delayMs` after it was pushed and none before
 * `notBefore + delayMs`. Reading from `from` pauses while `to` is not draining, so a slow reader
 * bounds the queue.
 */
function delayedWriter(from, to, delayMs, notBefore, slackMs) {
  const queue = []
  /** The queue's first live index: shifting a long array per chunk would cost O(n) each. */
  let head = 0
  let timer
  let finished = false
  let paused = false
  to.on('error', () => {})

  const write = (item) => {
    if (item.chunk) {
      if (!to.destroyed && !to.write(item.chunk) && !paused) {
        paused = true
        from.pause()
        to.once('drain', () => {
          paused = false
          from.resume()
        })
      }
    } else if (item.end) to.end()
    else if (!to.destroyed) to.resetAndDestroy()
  }
  const release = () => {
    timer = undefined
    const now = performance.now()
    to.cork()
    while (head < queue.length && queue[head].due <= now + slackMs) {
      write(queue[head])
      queue[head++] = undefined
    }
    if (!to.destroyed) to.uncork()
    if (head === queue.length) {
      queue.length = 0
      head = 0
    } else if (head > 1024) {
      queue.splice(0, head)
      head = 0
    }
    arm()
  }
  const arm = () => {
    if (timer === undefined && head < queue.length) timer = setTimeout(release, Math.max(0, Math.round(queue[head].due - performance.now())))
  }
  return {
    push(item) {
      if (finished) return
      if (!item.chunk) finished = true
      const now = performance.now()
      const due = Math.max(now, notBefore) + delayMs
      // Nothing waiting and already due (no delay): straight through, no timer.
      if (head === queue.length && due <= now + slackMs) write(item)
      else {
        queue.push({ ...item, due })
        arm()
      }
    },
    cancel() {
      clearTimeout(timer)
      queue.length = 0
      head = 0
      finished = true
    },
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

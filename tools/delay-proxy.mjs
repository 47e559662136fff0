// A TCP proxy on 127.0.0.1 that makes loopback behave like a distant link, for the tests
// (test/http/fixtures.ts) and the benchmark's "10 ms RTT" condition (bench/run.mjs): this kernel
// has no netem. It also counts what passes (bytes each way, connections, GETs and the ranges they
// ask for), so the benchmark's one hop between a daemon and its server both delays and counts;
// with a delay of 0 it only counts. Plain JavaScript so the bench runs it as is; the types are in
// delay-proxy.d.mts.
//
// Each direction is a FIFO of chunks stamped with the time they may leave (arrival + delay),
// released in order, in batches, by one timer per direction armed for the oldest: bytes never
// overtake each other, and an end or a reset leaves after the bytes before it. A batch is written
// corked, so the chunks due in one timer tick leave in one writev. A chunk already due (always, with
// no delay) is written at once, with no timer. A new connection's first bytes are held one extra
// round trip, the TCP handshake the loopback connect skipped; without it, opening a connection
// would look free and connection reuse worthless.
//
// A real distant link also bounds what one TCP connection carries: the sender may have at most
// its window of bytes unacknowledged, and an ACK comes back a round trip after the byte left, so
// one connection moves at most window / RTT. Without that bound a single stream through a delaying
// proxy runs as fast as loopback, and "parallel ranges beat one stream" cannot be measured. With
// `windowBytes` set, each direction of each connection is such a sender: a chunk leaves when the
// byte `windowBytes` before its end has been acknowledged (left + 2 × delay), in pieces of at most
// one loopback MSS, so the window's edge is exact to 64 KiB. The sender's side is read only while
// less than one window is waiting to leave (its socket buffer, in effect). Bandwidth is not
// limited otherwise, and slow start is not modelled: a connection has its full window at once.
//
// Throughput: the server's side is read with `onread` into 1 MiB slabs, so a read takes whatever
// the socket holds (often far more than the 64 KiB of Node's default reads), and each chunk is
// passed on as a view of its slab. On the 2-vCPU VM here that cut the proxy's
// CPU time per GiB passed from ~1.35 s to ~0.95 s (most of the rest is the kernel copying each byte
// in and out), and one curl stream through it went from ~0.55-0.75 to ~0.65-1.0 GB/s (nginx
// direct: ~1.1-1.8 GB/s; all on a loaded machine). Not a tap fixture: the caller closes it.

import { connect, createServer } from 'node:net'

/** One read from the server's side: up to this much per syscall (loopback often has more queued). */
const READ_BUFFER_BYTES = 2 ** 20
/** A read slab with less room than this is replaced: a read should take a loopback segment or more. */
const MIN_READ_BYTES = 64 * 1024
/**
 * A windowed chunk leaves in pieces of at most this (loopback's MSS, ~64 KiB): a piece leaves when
 * its last byte fits in the window.
 */
const SEGMENT_BYTES = 64 * 1024
/** A header block longer than this is not a request we understand; counting stops there. */
const MAX_HEADER_BYTES = 64 * 1024

/**
 * Starts the proxy to `target`; resolves to { port, counters(), close() } once it listens. See
 * delay-proxy.d.mts for the options.
 */
export async function startDelayProxy(target, oneWayDelayMs, options = {}) {
  if (!Number.isFinite(oneWayDelayMs) || oneWayDelayMs < 0) throw new RangeError(`oneWayDelayMs must be >= 0, got ${oneWayDelayMs}`)
  const { timerSlackMs = 0, windowBytes = Infinity } = options
  if (!(windowBytes >= SEGMENT_BYTES)) throw new RangeError(`windowBytes must be >= ${SEGMENT_BYTES}, got ${windowBytes}`)
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
    const reads = readSpace()
    let fromUpstream
    const upstream = connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      onread: {
        buffer: reads.next,
        callback(bytes, buffer) {
          totals.bytesFromTarget += bytes
          fromUpstream.push(reads.took(buffer, bytes))
        },
      },
    })
    // Nagle would hold small writes (a request line, a short response) behind unacked data.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const handshakeDone = performance.now() + 2 * oneWayDelayMs
    const link = { delayMs: oneWayDelayMs, slackMs: timerSlackMs, windowBytes }
    const toUpstream = delayedWriter(client, upstream, link, handshakeDone)
    fromUpstream = delayedWriter(upstream, client, link, 0)
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

/**
 * Where the server's side is read into: each read goes into the unused rest of a 1 MiB slab and
 * is passed on as a view of it, with no copy. A slab with less than MIN_READ_BYTES left is
 * replaced, and used again once every chunk read into it has been written (`took` gives each chunk
 * its `written` callback): a proxy allocating a new buffer per read had V8 collecting garbage for
 * a quarter of its CPU time (the bench's process holds the AWS SDK, a large heap to mark).
 */
function readSpace() {
  const idle = []
  const fresh = () => idle.pop() ?? { data: Buffer.allocUnsafe(READ_BUFFER_BYTES), used: 0, unwritten: 0, current: true }
  let slab = fresh()
  const recycle = (done) => {
    done.used = 0
    done.current = true
    idle.push(done)
  }
  return {
    next: () => {
      if (slab.data.length - slab.used < MIN_READ_BYTES) {
        slab.current = false
        if (slab.unwritten === 0) recycle(slab)
        slab = fresh()
      }
      return slab.data.subarray(slab.used)
    },
    took(buffer, bytes) {
      const from = slab
      from.used += bytes
      from.unwritten++
      const written = () => {
        if (--from.unwritten === 0 && !from.current) recycle(from)
      }
      return { chunk: buffer.subarray(0, bytes), written }
    },
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
 * Writes what is pushed to `to`, each item `link.delayMs` after it left and none before
 * `notBefore + delayMs`; a chunk leaves once it fits in `link.windowBytes` (see the file's
 * comment). Reading from `from` pauses while `to` is not draining or a window's worth is still
 * waiting to leave, so a slow reader or a full window bounds the queue.
 */
function delayedWriter(from, to, link, notBefore) {
  const { delayMs, slackMs, windowBytes } = link
  const queue = []
  /** The queue's first live index: shifting a long array per chunk would cost O(n) each. */
  let head = 0
  let timer
  let finished = false
  const flow = pauser(from)
  // With no delay an ACK is immediate and the window never binds: skip the per-segment work.
  const window = Number.isFinite(windowBytes) && delayMs > 0 ? sendWindow(windowBytes, 2 * delayMs) : undefined
  /** Bytes pushed that have not left yet (queued for the window, not for the delay). */
  let waitingBytes = 0
  to.on('error', () => {})

  const write = (item) => {
    if (item.chunk) {
      if (item.waiting) waitingBytes -= item.chunk.length
      if (!to.destroyed && !to.write(item.chunk, item.written) && !flow.holds('drain')) {
        flow.hold('drain')
        to.once('drain', () => flow.release('drain'))
      }
      if (window && waitingBytes < windowBytes) flow.release('window')
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
  const enqueue = (item, leaves) => {
    const now = performance.now()
    const due = Math.max(now, notBefore, leaves) + delayMs
    // Nothing waiting and already due (no delay): straight through, no timer.
    if (head === queue.length && due <= now + slackMs) write(item)
    else {
      queue.push({ ...item, due })
      arm()
    }
  }
  return {
    push(item) {
      if (finished) return
      if (!item.chunk) finished = true
      if (!window || !item.chunk) return enqueue(item, 0)
      const now = performance.now()
      // The chunk's memory is written once its last piece is.
      let pieces = Math.ceil(item.chunk.length / SEGMENT_BYTES)
      const written = item.written && (() => --pieces === 0 && item.written())
      for (let start = 0; start < item.chunk.length; start += SEGMENT_BYTES) {
        const piece = item.chunk.subarray(start, start + SEGMENT_BYTES)
        const leaves = window.send(piece.length, Math.max(now, notBefore))
        const waiting = leaves > now
        if (waiting) waitingBytes += piece.length
        enqueue({ chunk: piece, waiting, written }, leaves)
      }
      if (waitingBytes >= windowBytes) flow.hold('window')
    },
    cancel() {
      clearTimeout(timer)
      queue.length = 0
      head = 0
      finished = true
    },
  }
}

/**
 * One direction's send window: `send(bytes, now)` says when those next bytes may leave (ms): once
 * the byte `windowBytes` before their end has been acknowledged, `ackAfterMs` after it left.
 */
function sendWindow(windowBytes, ackAfterMs) {
  /** What has left and when its ACK comes back: { end (bytes sent so far), acked (ms) }, oldest first. */
  const sent = []
  let head = 0
  let sentBytes = 0
  return {
    send(bytes, now) {
      sentBytes += bytes
      const mustBeAcked = sentBytes - windowBytes
      // Ends only grow, so entries wholly below today's mark are never needed again.
      while (head < sent.length - 1 && sent[head].end < mustBeAcked) head++
      if (head > 1024) {
        sent.splice(0, head)
        head = 0
      }
      const oldest = sent[head]
      const leaves = mustBeAcked > 0 && oldest && oldest.end >= mustBeAcked ? Math.max(now, oldest.acked) : now
      sent.push({ end: sentBytes, acked: leaves + ackAfterMs })
      return leaves
    },
  }
}

/** Pauses `stream` while any reason holds it, resumes it when none does. */
function pauser(stream) {
  const reasons = new Set()
  return {
    holds: (reason) => reasons.has(reason),
    hold(reason) {
      if (reasons.size === 0) stream.pause()
      reasons.add(reason)
    },
    release(reason) {
      if (reasons.delete(reason) && reasons.size === 0) stream.resume()
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

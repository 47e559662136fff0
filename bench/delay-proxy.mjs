// A TCP proxy on 127.0.0.1 that adds a fixed delay each way, for the benchmark's "distant server"
// column: this kernel has no netem. The bench's small equivalent of test/fixtures/delay-proxy.ts.
//
// Each direction is a FIFO of chunks stamped with the time they may leave (arrival + delay),
// released in order by one timer armed for the oldest: bytes never overtake each other, and an
// end or a reset leaves after the bytes before it. A new connection's first bytes are held one
// extra round trip, the TCP handshake the loopback connect skipped, so new connections cost what
// they would on a real link. Bandwidth is not limited: only latency is added.

import { connect, createServer } from 'node:net'

/**
 * Node's timers tick in whole milliseconds of the event loop's clock, so one set for a fractional
 * wait fires up to ~1 ms early or late. Timers are armed for the rounded wait and a chunk within
 * this much of its due time leaves: a chunk found a hair early would otherwise wait a whole extra
 * tick. Measured here: 5 ms asked, 5.1-5.5 ms given (p10-p90).
 */
const TIMER_SLACK_MS = 0.5

/** Starts the proxy to 127.0.0.1:targetPort; resolves to { port, close() }. */
export async function startDelayProxy(targetPort, oneWayDelayMs) {
  const connections = new Set()
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true })
    // Nagle would hold small writes (a request line, a short response) behind unacked data.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const handshakeDone = performance.now() + 2 * oneWayDelayMs
    const pipes = [pipeDelayed(client, upstream, oneWayDelayMs, handshakeDone), pipeDelayed(upstream, client, oneWayDelayMs, 0)]
    const destroy = () => {
      for (const pipe of pipes) pipe.cancel()
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
    close: () =>
      (closed ??= new Promise((resolve) => {
        server.close(() => resolve())
        for (const destroy of connections) destroy()
        connections.clear()
      })),
  }
}

/** Forwards `from` to `to`, each chunk `delayMs` late and none before `notBefore + delayMs`. */
function pipeDelayed(from, to, delayMs, notBefore) {
  const queue = []
  let timer
  let finished = false
  let paused = false

  const release = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].due <= now + TIMER_SLACK_MS) {
      const item = queue.shift()
      if (item.chunk) {
        // A slow reader pauses the source, so the queue stays bounded by what is in flight.
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
    arm()
  }
  const arm = () => {
    if (timer === undefined && queue.length > 0) timer = setTimeout(release, Math.max(0, Math.round(queue[0].due - performance.now())))
  }
  const push = (item) => {
    if (finished) return
    if (!item.chunk) finished = true
    queue.push({ ...item, due: Math.max(performance.now(), notBefore) + delayMs })
    arm()
  }

  from.on('data', (chunk) => push({ chunk }))
  from.on('end', () => push({ end: true }))
  // An error travels on as a reset, in its place in the stream; the event itself is expected.
  from.on('error', () => {})
  from.on('close', (hadError) => hadError && push({ reset: true }))
  to.on('error', () => {})
  return {
    cancel() {
      clearTimeout(timer)
      queue.length = 0
      finished = true
    },
  }
}

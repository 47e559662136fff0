// A TCP proxy on 127.0.0.1 that makes loopback behave like a distant link, for the tests
// (test/http/fixtures.ts) and the benchmark's "10 ms RTT" condition (bench/run.mjs): this kernel
// has no netem. Plain JavaScript so the bench runs it as is; the types are in delay-proxy.d.mts.
//
// Each direction is a FIFO of chunks stamped with the time they may leave (arrival + delay),
// released in order by one timer armed for the oldest: bytes never overtake each other, and an
// end or a reset leaves after the bytes before it. A new connection's first bytes are held one
// extra round trip, the TCP handshake the loopback connect skipped; without it, opening a
// connection would look free and connection reuse worthless. Bandwidth is not limited: only
// latency is added. Not a tap fixture: the caller closes it.

import { connect, createServer } from 'node:net'

/**
 * Starts the proxy to `target`; resolves to { port, close() } once it listens. See
 * delay-proxy.d.mts for the options.
 */
export async function startDelayProxy(target, oneWayDelayMs, options = {}) {
  if (!Number.isFinite(oneWayDelayMs) || oneWayDelayMs < 0) throw new RangeError(`oneWayDelayMs must be >= 0, got ${oneWayDelayMs}`)
  const { timerSlackMs = 0 } = options
  if (!Number.isFinite(timerSlackMs) || timerSlackMs < 0 || timerSlackMs >= 1) {
    throw new RangeError(`timerSlackMs must be >= 0 and < 1 (a fraction of a timer tick), got ${timerSlackMs}`)
  }
  const connections = new Set()
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true })
    // Nagle would hold small writes (a request line, a short response) behind unacked data.
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const handshakeDone = performance.now() + 2 * oneWayDelayMs
    const pipes = [
      pipeDelayed(client, upstream, oneWayDelayMs, handshakeDone, timerSlackMs),
      pipeDelayed(upstream, client, oneWayDelayMs, 0, timerSlackMs),
    ]
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

/**
 * Forwards `from` to `to`, each chunk `delayMs` late and none before `notBefore + delayMs`.
 * Reading from `from` pauses while `to` is not draining, so a slow reader bounds the queue.
 */
function pipeDelayed(from, to, delayMs, notBefore, slackMs) {
  const queue = []
  let timer
  let finished = false
  let paused = false

  const release = () => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0].due <= now + slackMs) {
      const item = queue.shift()
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

// An HTTP proxy of our own on 127.0.0.1, in front of one origin, that flips one bit in the body of
// chosen responses and keeps everything else: status, headers (Content-Length, Content-Range, ETag,
// Last-Modified), keep-alive. It stands for a caching tier, a mirror or a gateway that serves damaged
// bytes under the right validator, which no ETag or If-Match can catch (issue 20). Shared by the
// tests and the benchmark.
import { Agent, createServer, request } from 'node:http'

/**
 * Starts the proxy. `corrupt({ method, path, start, end })` decides per response (`start`/`end`:
 * the first and last byte of its `Range: bytes=A-B`, undefined without one) whether its body gets a
 * flipped bit: false for none, true for one in the body's middle byte, a number for one in the byte
 * at that absolute offset. Every flip is recorded with its absolute offset. `delayMs` (same
 * argument, optional) holds a request that many milliseconds before it is forwarded: a slow
 * answer, so that readers catch up with the request in flight.
 */
export async function startCorruptingProxy({ origin, corrupt, delayMs = () => 0 }) {
  const target = new URL(origin)
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const flips = []
  let decide = corrupt
  let responses = 0
  const sockets = new Set()
  const server = createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    const start = range ? Number(range[1]) : undefined
    const end = range ? Number(range[2]) : undefined
    const delay = delayMs({ method: req.method, path: req.url, start, end })
    if (delay > 0) setTimeout(() => forward(req, res, start, end), delay)
    else forward(req, res, start, end)
  })
  function forward(req, res, start, end) {
    const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent }, (answer) => {
      responses++
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders)
      const length = Number(answer.headers['content-length'] ?? 0)
      const decision = req.method === 'GET' && length > 0 ? decide({ method: req.method, path: req.url, start, end }) : false
      // true: the body's middle byte; a number: that absolute offset (inside the range).
      const flipAt = decision === true ? Math.floor(length / 2) : typeof decision === 'number' ? decision - (start ?? 0) : -1
      let seen = 0
      answer.on('data', (chunk) => {
        if (flipAt >= seen && flipAt < seen + chunk.length) {
          chunk = Buffer.from(chunk)
          chunk[flipAt - seen] ^= 0x10
          flips.push({ path: req.url, offset: (start ?? 0) + flipAt })
        }
        seen += chunk.length
        res.write(chunk)
      })
      answer.on('end', () => res.end())
      answer.on('error', () => res.destroy())
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  }
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    origin: `http://127.0.0.1:${port}`,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    flips,
    responses: () => responses,
    setCorrupt(next) {
      decide = next
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      agent.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

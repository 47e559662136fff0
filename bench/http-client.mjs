// The raw server rate for the benchmark's HTTP part: what a plain Node + undici client gets from
// the same URL over the same path (proxy or not), with no FUSE and no daemon in between. Run as a
// child process by run.mjs, so it never shares an event loop with the delay proxy. Prints JSON.
//
//   node bench/http-client.mjs seq URL BYTES
//       one GET of bytes 0..BYTES-1 on one connection, each chunk dropped as it arrives
//   node bench/http-client.mjs rate URL CONCURRENCY SECONDS
//       CONCURRENCY loops over a keep-alive Pool of as many connections, each sending ranged GETs
//       of 4 KiB at random 4 KiB-aligned offsets, one after the other, for SECONDS
//
// Like the daemon, every ranged GET carries If-Match with the ETag and must come back as a 206
// with exactly the bytes asked for.

import { Pool } from 'undici'
import { measureRate } from './rate.mjs'

/** The same size fio asks for in the IOPS rows. */
const BLOCK = 4096

const [mode, url, ...rest] = process.argv.slice(2)
const { origin, pathname } = new URL(url)

if (mode === 'seq') {
  const bytes = Number(rest[0])
  const pool = new Pool(origin, { connections: 1 })
  const started = performance.now()
  // dispatch() hands over each chunk as it is parsed: no stream in between, which would cost
  // more than half the rate on loopback (~250 MB/s iterating a body, ~700 MB/s here, same machine).
  const received = await new Promise((resolve, reject) => {
    let total = 0
    pool.dispatch(
      { path: pathname, method: 'GET', headers: { range: `bytes=0-${bytes - 1}`, 'accept-encoding': 'identity' } },
      {
        onConnect() {},
        onHeaders(statusCode) {
          if (statusCode !== 206) reject(new Error(`GET ${url} bytes 0-${bytes - 1}: status ${statusCode}`))
          return true
        },
        onData(chunk) {
          total += chunk.length
          return true
        },
        onComplete: () => resolve(total),
        onError: reject,
      },
    )
  })
  const seconds = (performance.now() - started) / 1000
  if (received !== bytes) throw new Error(`GET ${url}: ${received} bytes, expected ${bytes}`)
  await pool.close()
  process.stdout.write(`${JSON.stringify({ bytes, seconds, mbps: bytes / seconds / 1e6 })}\n`)
} else if (mode === 'rate') {
  const [concurrency, seconds] = rest.map(Number)
  const pool = new Pool(origin, { connections: concurrency })
  const head = await pool.request({ path: pathname, method: 'HEAD' })
  await head.body.dump()
  const size = Number(head.headers['content-length'])
  const etag = head.headers.etag
  const result = await measureRate({
    concurrency,
    seconds,
    blocks: Math.floor(size / BLOCK),
    blockSize: BLOCK,
    async readBlock(offset) {
      const { statusCode, body } = await pool.request({
        path: pathname,
        method: 'GET',
        headers: { range: `bytes=${offset}-${offset + BLOCK - 1}`, 'accept-encoding': 'identity', 'if-match': etag },
      })
      const data = Buffer.from(await body.arrayBuffer())
      if (statusCode !== 206 || data.length !== BLOCK) throw new Error(`GET bytes ${offset}+${BLOCK}: status ${statusCode}, ${data.length} bytes`)
    },
  })
  await pool.close()
  process.stdout.write(`${JSON.stringify(result)}\n`)
} else {
  process.stderr.write('usage: http-client.mjs seq URL BYTES | rate URL CONCURRENCY SECONDS\n')
  process.exitCode = 2
}

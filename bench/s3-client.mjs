// The raw server rate for the benchmark's S3 part: what a plain Node client with the AWS SDK (the
// one the daemon uses, set up as the daemon sets it up) gets from the same object, with no FUSE
// and no daemon in between. Run as a child process by run.mjs, so it never shares an event loop
// with the bench's own proxy. Credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY). Prints JSON.
//
//   node bench/s3-client.mjs seq ENDPOINT REGION BUCKET KEY [BYTES]
//       one GetObject of the whole object (or of its first BYTES) on one connection, its body
//       stream read to the end
//   node bench/s3-client.mjs seqn ENDPOINT REGION BUCKET KEY STREAMS
//       STREAMS GetObjects at once, each of its own slice of the object (a quarter for 4), on as
//       many connections; the aggregate rate
//   node bench/s3-client.mjs rate ENDPOINT REGION BUCKET KEY CONCURRENCY SECONDS
//       CONCURRENCY loops over as many keep-alive connections, each sending ranged GetObjects of
//       4 KiB at random 4 KiB-aligned offsets, one after the other, for SECONDS
//
// Like the daemon, every ranged GetObject carries IfMatch with the ETag seen by a HeadObject and
// must come back as a 206 with exactly the bytes asked for.

import { Agent } from 'node:http'
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { measureRate } from './rate.mjs'

/** The same size fio asks for in the IOPS rows. */
const BLOCK = 4096

const [mode, endpoint, region, bucket, key, ...rest] = process.argv.slice(2)

/** As src/backend/s3/s3-backend.ts builds its client: keep-alive sockets, one attempt, no extra checksums. */
function client(connections) {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: connections }) },
  })
}

if (mode === 'seq') {
  const s3 = client(1)
  const range = rest[0] === undefined ? {} : { Range: `bytes=0-${Number(rest[0]) - 1}` }
  const started = performance.now()
  const reply = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...range }))
  let bytes = 0
  for await (const chunk of reply.Body) bytes += chunk.length
  const seconds = (performance.now() - started) / 1000
  if (bytes !== reply.ContentLength) throw new Error(`GetObject ${key}: ${bytes} bytes, expected ${reply.ContentLength}`)
  s3.destroy()
  process.stdout.write(`${JSON.stringify({ bytes, seconds, mbps: bytes / seconds / 1e6 })}\n`)
} else if (mode === 'seqn') {
  const streams = Number(rest[0])
  const s3 = client(streams)
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  const each = Math.floor(head.ContentLength / streams)
  const started = performance.now()
  const counts = await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const reply = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${i * each}-${(i + 1) * each - 1}`, IfMatch: head.ETag }))
      let bytes = 0
      for await (const chunk of reply.Body) bytes += chunk.length
      if (bytes !== each) throw new Error(`GetObject ${key} slice ${i}: ${bytes} bytes, expected ${each}`)
      return bytes
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const bytes = counts.reduce((a, b) => a + b, 0)
  s3.destroy()
  process.stdout.write(`${JSON.stringify({ bytes, seconds, mbps: bytes / seconds / 1e6 })}\n`)
} else if (mode === 'rate') {
  const [concurrency, seconds] = rest.map(Number)
  const s3 = client(concurrency)
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  const result = await measureRate({
    concurrency,
    seconds,
    blocks: Math.floor(head.ContentLength / BLOCK),
    blockSize: BLOCK,
    async readBlock(offset) {
      const reply = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-${offset + BLOCK - 1}`, IfMatch: head.ETag }))
      const data = await reply.Body.transformToByteArray()
      const status = reply.$metadata.httpStatusCode
      if (status !== 206 || data.length !== BLOCK) throw new Error(`GetObject bytes ${offset}+${BLOCK}: status ${status}, ${data.length} bytes`)
    },
  })
  s3.destroy()
  process.stdout.write(`${JSON.stringify(result)}\n`)
} else {
  process.stderr.write('usage: s3-client.mjs seq ENDPOINT REGION BUCKET KEY [BYTES] | seqn ENDPOINT REGION BUCKET KEY STREAMS | rate ENDPOINT REGION BUCKET KEY CONCURRENCY SECONDS\n')
  process.exitCode = 2
}

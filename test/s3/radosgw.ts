import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GetObjectCommand, HeadObjectCommand, type S3Client, type S3ServiceException } from '@aws-sdk/client-s3'
import { GiB, LARGE_IMAGE_EXTENTS, LARGE_IMAGE_SIZE, makeLargeSparseImage, readSource } from '../fixtures/images.js'
import { s3Client, startRadosgw } from '../fixtures/radosgw.js'
import { PART_BYTES } from '../fixtures/s3-upload.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { largeImageSuite } from '../fixtures/read-path-suite.js'
import { ddRange, readRange } from '../fixtures/readers.js'
import { ramp, seededBytes } from '../fixtures/test-data.js'
import { S3Backend } from '../../src/backend/s3/s3-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { readLargeImage, specSource, useAwsCredentials } from '../fixtures/conformance-sources.js'

/**
 * The radosgw fixture against what the S3 backend relies on: ranged GETs of an object past
 * 4 GiB (both sides of 2^31 and 2^32, and the end) byte for byte, SigV4 enforced, and If-Match.
 */
const BUCKET = 'snapmount-test'
// Not a multiple of any block size, so an off-by-one at the end shows.
const SMALL_SIZE = 1024 * 1024 + 17
// makeLargeSparseImage leaves 2 GiB (the signed 32-bit line) as zeros; give it data of its own.
const SIGNED_LINE_EXTENT = { offset: 2 * GiB - 70_000, length: 140_000 }

t.test('radosgw: a real S3 server on loopback', async (t) => {
  const dir = await tempDir(t)
  let started = Date.now()
  const rgw = await startRadosgw(t)
  t.comment(`radosgw ready in ${Date.now() - started} ms at ${rgw.endpoint}`)
  t.match(rgw.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/, 'on loopback')
  await rgw.createBucket(BUCKET)

  const smallBytes = seededBytes(21, SMALL_SIZE)
  const small = join(dir, 'small.bin')
  await writeFile(small, smallBytes)
  const smallEtag = await rgw.uploadFile(BUCKET, 'small.bin', small)

  const large = await makeLargeSparseImage(dir)
  const handle = await open(large, 'r+')
  await handle.write(ramp(SIGNED_LINE_EXTENT.offset, SIGNED_LINE_EXTENT.length), 0, SIGNED_LINE_EXTENT.length, SIGNED_LINE_EXTENT.offset)
  await handle.close()
  started = Date.now()
  // Only the parts holding data are sent; the rest are copied from zeros on the gateway.
  const largeEtag = await rgw.uploadFile(BUCKET, 'large.img', large, { dataExtents: [...LARGE_IMAGE_EXTENTS, SIGNED_LINE_EXTENT] })
  t.comment(`${LARGE_IMAGE_SIZE} bytes uploaded in ${Date.now() - started} ms`)

  t.test('a small object comes back whole and in ranges', async (t) => {
    t.equal(smallEtag, `"${createHash('md5').update(smallBytes).digest('hex')}"`, 'one PutObject: the ETag is the MD5')
    const whole = await get(rgw.client, 'small.bin')
    t.equal(whole.status, 200)
    t.ok(whole.body.equals(smallBytes), 'the whole object')
    const tail = await get(rgw.client, 'small.bin', { range: [SMALL_SIZE - 1000, 1000] })
    t.equal(tail.status, 206)
    t.equal(tail.contentRange, `bytes ${SMALL_SIZE - 1000}-${SMALL_SIZE - 1}/${SMALL_SIZE}`)
    t.ok(tail.body.equals(smallBytes.subarray(SMALL_SIZE - 1000)), 'the last 1000 bytes')
  })

  t.test('an object past 4 GiB, read in ranges pinned to its ETag', async (t) => {
    t.match(largeEtag, new RegExp(`^"[0-9a-f]{32}-${Math.ceil(LARGE_IMAGE_SIZE / PART_BYTES)}"$`), 'a multipart ETag, a part per 64 MiB')
    const head = await rgw.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'large.img' }))
    t.equal(head.ContentLength, LARGE_IMAGE_SIZE)
    t.equal(head.ETag, largeEtag)
    const ranges = [
      SIGNED_LINE_EXTENT,
      { offset: 2 ** 31 - 1000, length: 2000 }, // across 2^31
      { offset: 2 ** 32 - 1000, length: 2000 }, // across 2^32
      { offset: 2 ** 32 + 1, length: 9 * 1024 * 1024 }, // past 2^32, across 4 MiB stripes
      ...LARGE_IMAGE_EXTENTS,
      { offset: LARGE_IMAGE_SIZE - 1, length: 1 }, // the last byte
    ]
    for (const { offset, length } of ranges) {
      const reply = await get(rgw.client, 'large.img', { range: [offset, length], ifMatch: largeEtag })
      const expected = await readSource(large, offset, length)
      t.equal(reply.status, 206, `${offset}+${length}: 206`)
      t.equal(reply.contentRange, `bytes ${offset}-${offset + length - 1}/${LARGE_IMAGE_SIZE}`)
      t.ok(reply.body.equals(expected), `${offset}+${length}: the source's bytes`)
    }
    // The zeros between the extents are data too: a range of them must not come back short.
    const zeros = await get(rgw.client, 'large.img', { range: [3 * GiB, 1024 * 1024] })
    t.ok(zeros.body.equals(Buffer.alloc(1024 * 1024)), '1 MiB of zeros at 3 GiB')
  })

  t.test('SigV4 is checked: wrong keys get 403', async (t) => {
    for (const [what, credentials, code] of [
      ['a wrong secret key', { accessKeyId: rgw.accessKeyId, secretAccessKey: `${rgw.secretAccessKey}x` }, 'SignatureDoesNotMatch'],
      ['an unknown access key', { accessKeyId: 'SNAPMOUNTUNKNOWNKEY0', secretAccessKey: rgw.secretAccessKey }, 'InvalidAccessKeyId'],
    ] as const) {
      const client = s3Client(rgw, credentials)
      t.teardown(() => client.destroy())
      const err = await failure(get(client, 'small.bin'))
      t.equal(err.$metadata.httpStatusCode, 403, `${what}: 403`)
      t.equal(err.name, code)
    }
  })

  t.test('through a snapmount mount: past 2^31 and 2^32, and refusals of bad credentials', async (t) => {
    const saved = { ...process.env }
    t.teardown(() => {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_CA_BUNDLE']) {
        if (saved[name] === undefined) delete process.env[name]
        else process.env[name] = saved[name]
      }
    })
    // The daemon is a child process: it takes its credentials from the environment, as users give them.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey })
    const config = join(dir, 'snapmount.yaml')
    const snapshot = (name: string, key: string) =>
      `  - name: ${name}\n    type: s3\n    url: s3://${BUCKET}/${key}\n    endpoint: ${rgw.endpoint}\n    region: ${rgw.region}\n`
    await writeFile(config, `mountpoint: mnt\nsnapshots:\n${snapshot('large', 'large.img')}${snapshot('small', 'small.bin')}`)
    await mkdir(join(dir, 'mnt'))

    for (const bundle of [undefined, '/nonexistent/ca-bundle.pem']) {
      if (bundle === undefined) delete process.env.AWS_CA_BUNDLE
      else process.env.AWS_CA_BUNDLE = bundle
      const check = await runCli(['check', '--config', config])
      t.equal(check.code, 0, `check works with AWS_CA_BUNDLE ${bundle ?? 'unset'}: ${check.stderr}`)
      t.match(check.stdout, new RegExp(`^large\\ts3\\t${LARGE_IMAGE_SIZE}\\t`, 'm'))
    }

    const daemon = await startDaemon(t, join(dir, 'mnt'), ['--config', config])
    t.teardown(() => daemon.stop())
    largeImageSuite(t, { mounted: join(dir, 'mnt', 'large'), source: large, size: LARGE_IMAGE_SIZE })
    t.test('around 2^31 and 2^32', async (t) => {
      for (const { offset, length } of [SIGNED_LINE_EXTENT, { offset: 2 ** 31 - 1000, length: 2000 }, { offset: 2 ** 32 - 1000, length: 2000 }]) {
        const got = await ddRange(join(dir, 'mnt', 'large'), offset, length, { direct: true })
        t.ok(got.equals(await readSource(large, offset, length)), `${length} bytes at ${offset}`)
      }
      t.ok((await readRange(join(dir, 'mnt', 'small'), 0, SMALL_SIZE)).equals(smallBytes), 'and the small object whole')
    })

    t.test('wrong credentials are refused at start, naming the cause', async (t) => {
      process.env.AWS_SECRET_ACCESS_KEY = `${rgw.secretAccessKey}x`
      const wrongSecret = await runCli(['check', '--config', config])
      t.equal(wrongSecret.code, 2)
      t.match(wrongSecret.stderr, /cannot open s3:\/\/snapmount-test\/large\.img: access denied \(403 SignatureDoesNotMatch\); check the credentials/)
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'SNAPMOUNTUNKNOWNKEY0', AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey })
      const unknownKey = await runCli(['check', '--config', config])
      t.equal(unknownKey.code, 2)
      t.match(unknownKey.stderr, /access denied \(403 InvalidAccessKeyId\)/)
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey })
    })
  })

  t.test('S3Backend: its direct GETs, signed by the SDK and sent by RangeClient, pass the SigV4 check', async (t) => {
    const logger = { info: () => {}, warn: (m: string) => t.fail(m), error: (m: string) => t.fail(m) }
    // The backend takes credentials from the SDK's chain only: here, the environment.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
    process.env.AWS_ACCESS_KEY_ID = rgw.accessKeyId
    process.env.AWS_SECRET_ACCESS_KEY = rgw.secretAccessKey
    t.teardown(() => {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    })
    const before = await rgw.perfCounters()
    const backend = await S3Backend.open({
      bucket: BUCKET, key: 'large.img', versionId: undefined, region: rgw.region, endpoint: rgw.endpoint, forcePathStyle: true,
      profile: undefined, anonymous: false, connections: 4, connectTimeoutMs: 5000, requestTimeoutMs: 10_000,
      retry: { maxAttempts: 3, deadlineMs: 20_000, baseDelayMs: 10, maxDelayMs: 100 }, logger,
    })
    t.teardown(() => backend.close())
    const ranges = [SIGNED_LINE_EXTENT, { offset: 2 ** 32 - 1000, length: 2000 }, { offset: LARGE_IMAGE_SIZE - 1, length: 1 }]
    for (const { offset, length } of ranges) t.ok((await backend.readExact(offset, length)).equals(await readSource(large, offset, length)), `${offset}+${length}`)
    const after = await rgw.perfCounters()
    t.equal(after.get - before.get, 1 + ranges.length, 'one HeadObject and a GET per read: none refused and asked again')
    t.equal(after.failed_req - before.failed_req, 0, 'no request refused')
  })

  // The conformance suite's radosgw subject lives here, over the objects uploaded above: a second
  // upload of the 5 GiB image took ~55 s at load 11 on the 2-core test machine.
  void runConformance(t, 's3 backend on radosgw', async () => {
    useAwsCredentials(rgw.accessKeyId, rgw.secretAccessKey)
    const entry = (key: string) => ({ type: 's3', url: `s3://${BUCKET}/${key}`, endpoint: rgw.endpoint, region: rgw.region })
    return {
      small: specSource(entry('small.bin'), SMALL_SIZE, (offset, length) => smallBytes.subarray(offset, offset + length)),
      large: specSource(entry('large.img'), LARGE_IMAGE_SIZE, readLargeImage(large)),
      abortsInFlight: true,
    }
  })

  t.test('If-Match: a wrong ETag gets 412, the right one the range', async (t) => {
    const err = await failure(get(rgw.client, 'large.img', { range: [2 ** 32, 100], ifMatch: '"0123456789abcdef0123456789abcdef-81"' }))
    t.equal(err.$metadata.httpStatusCode, 412)
    t.equal(err.name, 'PreconditionFailed')
    const reply = await get(rgw.client, 'large.img', { range: [2 ** 32, 100], ifMatch: largeEtag })
    t.equal(reply.status, 206)
    t.ok(reply.body.equals(await readSource(large, 2 ** 32, 100)))
  })
})

interface Reply {
  status: number | undefined
  contentRange: string | undefined
  body: Buffer
}

async function get(client: S3Client, key: string, options: { range?: [offset: number, length: number]; ifMatch?: string } = {}): Promise<Reply> {
  const range = options.range && `bytes=${options.range[0]}-${options.range[0] + options.range[1] - 1}`
  const reply = await client.send(
    new GetObjectCommand({ Bucket: BUCKET, Key: key, ...(range && { Range: range }), ...(options.ifMatch && { IfMatch: options.ifMatch }) }),
  )
  return {
    status: reply.$metadata.httpStatusCode,
    contentRange: reply.ContentRange,
    body: Buffer.from(await reply.Body!.transformToByteArray()),
  }
}

async function failure(promise: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await promise
  } catch (err) {
    return err as S3ServiceException
  }
  throw new Error('expected the request to fail')
}

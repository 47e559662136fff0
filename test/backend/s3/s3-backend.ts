import t, { type Test } from 'tap'
import { S3Backend, type S3BackendOptions } from '../../../src/backend/s3/s3-backend.js'
import { openBackend } from '../../../src/backend/open-backend.js'
import { startFaultServer } from '../../fixtures/fault-server.js'
import { FAUX_S3_ENV, startFauxS3 } from '../../fixtures/fauxqs.js'
import { seededBytes } from '../../fixtures/test-data.js'
import { tempDir } from '../../fixtures/temp-dir.js'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { makeCertificates } from '../../fixtures/certificates.js'
import type { AddressInfo } from 'node:net'

/**
 * S3Backend in this process: against fauxqs for the S3 protocol, and against our fault server
 * (which serves its one object at any path, so at /bucket/key too) for misbehaviour S3 servers
 * rarely show on purpose.
 */
const OBJECT = seededBytes(41, 1024 * 1024 + 3)

function collectingLogger() {
  const lines: string[] = []
  return { lines, logger: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) } }
}

function options(endpoint: string, fields: Partial<S3BackendOptions> = {}): S3BackendOptions {
  return {
    bucket: 'snaps',
    key: 'golden/disk.raw',
    versionId: undefined,
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    profile: undefined,
    anonymous: false,
    connections: 8,
    // fauxqs answers from this test's own event loop, which a busy machine can hold up for a
    // while: budgets generous enough that only a real fault fails a read.
    connectTimeoutMs: 2000,
    requestTimeoutMs: 2000,
    retry: { maxAttempts: 5, deadlineMs: 8000, baseDelayMs: 10, maxDelayMs: 50 },
    logger: collectingLogger().logger,
    ...fields,
  }
}

/** Sets environment variables for one test; the SDK reads credentials and region from them. */
function withEnv(t: Test, env: Record<string, string | undefined>) {
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]))
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
  apply(env)
  t.teardown(() => apply(saved))
}

t.test('against fauxqs', async (t) => {
  withEnv(t, FAUX_S3_ENV)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await s3.putObject('snaps', 'golden/disk.raw', OBJECT)

  t.test('openBackend: an s3 spec opens the S3 backend itself, its requests told to the observer', async (t) => {
    const spec = { name: 'disk.raw', type: 's3' as const, ...options(s3.endpoint), maxAttempts: 5, readDeadlineMs: 8000 }
    const requests: number[] = []
    const observe = () => ({ request: ({ bytes }: { bytes: number }) => requests.push(bytes), retry: () => {} })
    const backend = await openBackend(spec, { env: {}, logger: collectingLogger().logger, observe })
    t.teardown(() => backend.close())
    t.ok(backend instanceof S3Backend, 'no layer around it: those are put on where snapshots are opened')
    t.ok((await backend.readExact(100_000, 50_000)).equals(OBJECT.subarray(100_000, 150_000)))
    t.ok(requests.some((bytes) => bytes === 50_000), 'the observer is told of the ranged GETs')
  })

  t.test('check describes what was found at open', async (t) => {
    const backend = await S3Backend.open(options(s3.endpoint, { versionId: 'v1-pinned' }))
    t.teardown(() => backend.close())
    t.match(backend.describe(), new RegExp(`^s3://snaps/golden/disk\\.raw; etag "[0-9a-f]+"; version v1-pinned; ${s3.endpoint} us-east-1; \\d+ ms round trip$`))
    t.ok((await backend.readExact(10, 20)).equals(OBJECT.subarray(10, 30)), 'reads carry the version and still get the bytes')
    // The disk cache files blocks under it: store, bucket and key, size, version id and ETag.
    t.match(backend.identity(), { source: `${s3.endpoint} s3://snaps/golden/disk.raw`, size: OBJECT.length, validator: /^v1-pinned "[0-9a-f]+"$/ })
  })

  t.test('anonymous: unsigned requests, no credentials looked up', async (t) => {
    withEnv(t, { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent' })
    const backend = await S3Backend.open(options(s3.endpoint, { anonymous: true }))
    t.teardown(() => backend.close())
    t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)))
  })

  t.test('no credentials anywhere: refused, saying so', async (t) => {
    withEnv(t, {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_PROFILE: undefined,
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
      AWS_CONFIG_FILE: '/nonexistent',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    })
    const { lines, logger } = collectingLogger()
    await t.rejects(S3Backend.open(options(s3.endpoint, { logger })), {
      code: 'E_SOURCE_OPEN',
      message: /no AWS credentials found \(Could not load credentials from any providers\)$/,
      fix: /anonymous: true/,
    })
    t.same(lines, [], 'at once: no retry can find credentials')
  })

  t.test('no region anywhere, or one that is not a region: refused at once, saying so', async (t) => {
    withEnv(t, { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_CONFIG_FILE: '/nonexistent', AWS_PROFILE: undefined })
    const { lines, logger } = collectingLogger()
    await t.rejects(S3Backend.open(options(s3.endpoint, { region: undefined, logger })), { code: 'E_SOURCE_OPEN', message: /no region$/, fix: /AWS_REGION/ })
    await t.rejects(S3Backend.open(options(s3.endpoint, { region: 'eu west 1', logger })), {
      message: /the region is not valid \(Region not accepted: region="eu west 1" is not a valid hostname component\.\)$/,
      fix: 'set region: to a region name, e.g. eu-west-1',
    })
    t.same(lines, [], 'no retries')
  })

  t.test('an object overwritten after open fails reads E_REMOTE_CHANGED', async (t) => {
    await s3.putObject('snaps', 'changing.raw', OBJECT)
    const backend = await S3Backend.open(options(s3.endpoint, { key: 'changing.raw' }))
    t.teardown(() => backend.close())
    await s3.putObject('snaps', 'changing.raw', seededBytes(42, OBJECT.length))
    await t.rejects(backend.readExact(0, 10), { code: 'E_REMOTE_CHANGED', message: /412/ })
  })
})

t.test('against a misbehaving server', async (t) => {
  withEnv(t, FAUX_S3_ENV)
  const server = await startFaultServer(t, OBJECT)

  t.test('cut, truncated, shifted and refused answers are retried into the right bytes', async (t) => {
    const { lines, logger } = collectingLogger()
    const backend = await S3Backend.open(options(server.origin, { logger }))
    t.teardown(() => backend.close())
    server.plan({ kind: 'reset-mid-body' }, { kind: 'short-body' }, { kind: 'wrong-range' }, { kind: 'status', status: 503 })
    t.ok((await backend.readExact(1000, 50_000)).equals(OBJECT.subarray(1000, 51_000)), 'exact bytes in the end')
    t.equal(lines.filter((line) => / retry \d\/4 in /.test(line)).length, 4, 'four retries logged')
    t.ok((await backend.readExact(5000, 70_000)).equals(OBJECT.subarray(5000, 75_000)), 'and the next read is clean')
  })

  t.test('a body cut after K bytes: the retry asks only for the rest, with the same pin', async (t) => {
    const K = 12_345
    const ranges = (mark: number) => server.requests.slice(mark).map(({ headers, bodyBytes }) => ({ range: headers.range, ifMatch: headers['if-match'], bodyBytes }))
    for (const fault of [{ kind: 'short-body', bytes: K }, { kind: 'reset-mid-body', bytes: K }] as const) {
      const { lines, logger } = collectingLogger()
      const backend = await S3Backend.open(options(server.origin, { logger }))
      t.teardown(() => backend.close())
      const mark = server.requests.length
      server.plan(fault)
      t.ok((await backend.readExact(1000, 50_000)).equals(OBJECT.subarray(1000, 51_000)), `${fault.kind}: the exact bytes`)
      const [first, retry, ...more] = ranges(mark)
      t.match(first, { range: 'bytes=1000-50999', ifMatch: /^"[0-9a-f]+"$/, bodyBytes: K })
      t.match(retry, { range: `bytes=${1000 + K}-50999`, ifMatch: first?.ifMatch, bodyBytes: 50_000 - K }, 'K + (length - K) bytes in all')
      t.same(more, [])
      t.match(lines, [new RegExp(`^GetObject s3://snaps/golden/disk\\.raw bytes 1000-50999: .*; retry 1/4 in \\d+ ms, from byte ${1000 + K}$`)])
    }
  })

  t.test("a body the SDK's request got cut is resumed too", async (t) => {
    const K = 20_000
    const { lines, logger } = collectingLogger()
    const backend = await S3Backend.open(options(server.origin, { logger }))
    t.teardown(() => backend.close())
    const mark = server.requests.length
    // The direct GET's 403 sends the request to the SDK, whose answer is cut.
    server.plan({ kind: 'status', status: 403 }, { kind: 'short-body', bytes: K })
    t.ok((await backend.readExact(0, 60_000)).equals(OBJECT.subarray(0, 60_000)))
    t.same(server.requests.slice(mark).map(({ headers }) => headers.range), ['bytes=0-59999', 'bytes=0-59999', `bytes=${K}-59999`])
    t.match(lines, [new RegExp(`; retry 1/4 in \\d+ ms, from byte ${K}$`)])
  })

  t.test('the object changed between attempts: the resumed GetObject fails on its pin, E_REMOTE_CHANGED', async (t) => {
    const changing = await startFaultServer(t, OBJECT)
    const backend = await S3Backend.open(options(changing.origin))
    t.teardown(() => backend.close())
    const mark = changing.requests.length
    changing.plan({ kind: 'short-body', bytes: 1000 })
    void changing.received(mark + 1).then(() => changing.setObject(seededBytes(43, OBJECT.length)))
    await t.rejects(backend.readExact(0, 50_000), { code: 'E_REMOTE_CHANGED', message: /412/ })
    const [first, retry, ...more] = changing.requests.slice(mark).map(({ headers }) => ({ range: headers.range, ifMatch: headers['if-match'] }))
    t.match(retry, { range: 'bytes=1000-49999', ifMatch: first?.ifMatch })
    t.same(more, [], 'not retried')
  })

  t.test('a final status after open is asked again through the SDK, which types it', async (t) => {
    const backend = await S3Backend.open(options(server.origin))
    t.teardown(() => backend.close())
    const mark = server.requests.length
    server.plan({ kind: 'status', status: 404 }, { kind: 'status', status: 404 })
    await t.rejects(backend.readExact(0, 100), { code: 'E_HTTP_STATUS', status: 404 })
    t.equal(server.requests.length - mark, 2, 'the direct GET, then the SDK\'s')
    t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)), 'and the next read is right')
    server.plan({ kind: 'status', status: 403 })
    t.ok((await backend.readExact(200, 100)).equals(OBJECT.subarray(200, 300)), 'a one-off 403 (a clock skew, say): the SDK\'s request gets the bytes')
    server.plan({ kind: 'status', status: 403 })
    const into = Buffer.alloc(100)
    t.equal(await backend.readExact(300, 100, { into }), into, 'into the buffer the cache offered')
    t.ok(into.equals(OBJECT.subarray(300, 400)))
    server.plan({ kind: 'status', status: 403 }, { kind: 'status', status: 412 })
    await t.rejects(backend.readExact(0, 100), { code: 'E_REMOTE_CHANGED' }, 'a 412 to the SDK\'s request is a changed object too')
  })

  t.test('a 206 whose Content-Length is not the range is refused before any byte is stored', async (t) => {
    const store = createServer((req, res) => {
      const headers = { etag: '"v1"', 'last-modified': new Date(0).toUTCString() }
      if (req.method === 'HEAD') return res.writeHead(200, { ...headers, 'content-length': OBJECT.length }).end()
      const [, first, last] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!
      const body = OBJECT.subarray(Number(first), Number(last) + 2)
      res.writeHead(206, { ...headers, 'content-range': `bytes ${first}-${last}/${OBJECT.length}`, 'content-length': body.length }).end(body)
    })
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => store.close(resolve)))
    const backend = await S3Backend.open(options(`http://127.0.0.1:${(store.address() as AddressInfo).port}`, { retry: { maxAttempts: 1, deadlineMs: 1000, baseDelayMs: 10, maxDelayMs: 10 } }))
    t.teardown(() => backend.close())
    await t.rejects(backend.readExact(0, 100), { code: 'E_RETRIES_EXHAUSTED', cause: { code: 'E_BAD_RESPONSE', message: /Content-Length 101 for 100 bytes$/ } })
  })

  t.test('a RequestTimeout (400) is retried, as the SDK would: the store gave up waiting, not the request', async (t) => {
    const { lines, logger } = collectingLogger()
    const backend = await S3Backend.open(options(server.origin, { logger }))
    t.teardown(() => backend.close())
    const timedOut = { kind: 'status', status: 400, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0"?><Error><Code>RequestTimeout</Code><Message>idle</Message></Error>' } as const
    // The direct GET's 400 goes to the SDK, which reads the code from the second.
    server.plan(timedOut, timedOut)
    t.ok((await backend.readExact(0, 100)).equals(OBJECT.subarray(0, 100)))
    t.match(lines, [/answered 400 RequestTimeout; retry 1\/4 in \d+ ms$/])
  })

  t.test('a refusal for a skewed clock is retried once the SDK has set its clock from the answer', async (t) => {
    const { lines, logger } = collectingLogger()
    const ahead = 3600_000
    server.plan({ kind: 'status', status: 403, method: 'HEAD', headers: { date: new Date(Date.now() + ahead).toUTCString() } })
    const mark = server.requests.length
    const backend = await S3Backend.open(options(server.origin, { logger }))
    t.teardown(() => backend.close())
    t.match(lines, [/answered 403.*; retry 1\/4 in \d+ ms$/])
    const [refused, signedAgain] = server.requests.slice(mark).map(({ headers }) => Date.parse(String(headers['x-amz-date']).replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')))
    t.ok(signedAgain! - refused! > ahead - 60_000, 'the second HeadObject is signed with the store\'s time')
  })

  t.test('a denial at open names the S3 error code from a one-byte GET', async (t) => {
    server.plan({ kind: 'status', status: 403, method: 'HEAD' }, { kind: 'status', status: 403, headers: { 'content-type': 'application/xml' } })
    await t.rejects(S3Backend.open(options(server.origin)), { code: 'E_SOURCE_OPEN', message: /access denied \(403/ })
  })

  t.test('a HEAD denied while a GET is allowed still says access denied', async (t) => {
    server.plan({ kind: 'status', status: 403, method: 'HEAD' })
    await t.rejects(S3Backend.open(options(server.origin)), { message: /access denied \(403\);?/ })
  })

  t.test('a store that ignores IfMatch cannot slip in a new version: the ETag is checked too', async (t) => {
    const backend = await S3Backend.open(options(server.origin))
    t.teardown(() => backend.close())
    server.setObject(seededBytes(43, OBJECT.length))
    server.setMode({ ignoreConditions: true })
    t.teardown(() => {
      server.setMode({ ignoreConditions: false })
      server.setObject(OBJECT)
    })
    await t.rejects(backend.readExact(0, 100), { code: 'E_REMOTE_CHANGED', message: /ETag was "[^"]+", now "[^"]+"/ })
  })

  t.test('another status at open, and the wrong region', async (t) => {
    server.plan({ kind: 'status', status: 400, method: 'HEAD' })
    await t.rejects(S3Backend.open(options(server.origin)), { message: /the store answered 400/ })
    server.plan({ kind: 'status', status: 301, method: 'HEAD', headers: { 'x-amz-bucket-region': 'eu-west-1' } })
    await t.rejects(S3Backend.open(options(server.origin)), { message: /the bucket is in another region \(eu-west-1\)/, fix: /set region: eu-west-1/ })
    server.plan({ kind: 'status', status: 301, method: 'HEAD' })
    await t.rejects(S3Backend.open(options(server.origin)), { message: /the bucket is in another region$/, fix: /set region: to the bucket's region/ })
  })

  t.test('a store that sends no ETag is refused: reads could not be pinned', async (t) => {
    server.setMode({ etag: 'none' })
    t.teardown(() => server.setMode({ etag: 'strong' }))
    await t.rejects(S3Backend.open(options(server.origin)), { code: 'E_SOURCE_OPEN', message: /gave no ETag/ })
  })

  t.test('a denial under a named profile names the profile', async (t) => {
    const dir = await tempDir(t)
    const credentials = join(dir, 'credentials')
    await writeFile(credentials, '[images]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret\n')
    withEnv(t, { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: '/nonexistent' })
    server.plan({ kind: 'status', status: 403, method: 'HEAD' }, { kind: 'status', status: 403 })
    await t.rejects(S3Backend.open(options(server.origin, { profile: 'images' })), { message: /access denied \(403/, fix: /credentials of profile images/ })
    t.match(server.requests.at(-1)?.headers.authorization, /Credential=AKIDPROFILE\//, 'signed with the profile key')
  })

  t.test('a store whose TLS certificate is not trusted: refused at once, naming the fix', async (t) => {
    const certificates = await makeCertificates(await tempDir(t))
    const store = createHttpsServer({ cert: await readFile(certificates.serverCertFile), key: await readFile(certificates.serverKeyFile) }, (_req, res) => res.end())
    await new Promise<void>((resolve) => store.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => store.close(resolve)))
    const { lines, logger } = collectingLogger()
    await t.rejects(S3Backend.open(options(`https://127.0.0.1:${(store.address() as AddressInfo).port}`, { logger })), {
      message: /the store's TLS certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)$/,
      fix: /NODE_EXTRA_CA_CERTS/,
    })
    t.same(lines, [], 'no retries')
  })

  t.test('an unreachable endpoint', async (t) => {
    await t.rejects(S3Backend.open(options('http://127.0.0.1:9', { retry: { maxAttempts: 1, deadlineMs: 1000, baseDelayMs: 10, maxDelayMs: 10 } })), {
      message: /endpoint http:\/\/127\.0\.0\.1:9 unreachable/,
    })
  })
})

import t from 'tap'
import { S3Client } from '@aws-sdk/client-s3'
import { GetObjectSigner } from '../../../src/backend/s3/signed-request.js'

/** Nothing is sent: the SDK is stopped right after signing, so no store is needed. */
function signer(endpoint: string, config: Record<string, unknown> = {}) {
  // The backend's settings: no checksum mode header (a header this signer does not know).
  const settings = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret' }, ...settings, ...config })
  t.teardown(() => client.destroy())
  return new GetObjectSigner(client)
}

const input = (first: number, extra: Record<string, string> = {}) => ({ Bucket: 'snaps', Key: 'golden/a b+c(1)!.img', Range: `bytes=${first}-${first + 9}`, IfMatch: '"v1"', ...extra })
const signal = new AbortController().signal
const SIGNED = /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=(\S+), Signature=[0-9a-f]{64}$/

t.test('the first request is the SDK\'s; the next ones are signed here for the same endpoint, path and query', async (t) => {
  const s = signer('http://127.0.0.1:9000')
  const first = await s.sign(input(0, { VersionId: 'v 1' }), signal)
  t.equal(first.origin, 'http://127.0.0.1:9000')
  t.equal(first.target, '/snaps/golden/a%20b%2Bc%281%29%21.img?x-id=GetObject&versionId=v%201')
  t.match(first.headers, { range: 'bytes=0-9', 'if-match': '"v1"', authorization: SIGNED, 'amz-sdk-invocation-id': /./ })
  t.notOk('host' in first.headers, 'the client sends its own host header, the same one')

  const second = await s.sign(input(100, { VersionId: 'v 1' }), signal)
  t.equal(second.origin, first.origin)
  t.equal(second.target, first.target)
  t.match(second.headers, { range: 'bytes=100-109', 'if-match': '"v1"', 'x-amz-content-sha256': first.headers['x-amz-content-sha256'] })
  t.equal(SIGNED.exec(second.headers.authorization!)?.[1], 'host;if-match;range;x-amz-content-sha256;x-amz-date', 'signed here: what the store checks')
  t.notOk('amz-sdk-invocation-id' in second.headers, 'without the SDK\'s bookkeeping')
  t.notOk('host' in second.headers)
})

t.test('a session token is signed in', async (t) => {
  const s = signer('http://127.0.0.1:9000', { credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'TOKEN' } })
  await s.sign(input(0), signal)
  const second = await s.sign(input(10), signal)
  t.equal(second.headers['x-amz-security-token'], 'TOKEN')
  t.match(second.headers.authorization, /SignedHeaders=host;if-match;range;x-amz-content-sha256;x-amz-date;x-amz-security-token,/)
})

t.test('anonymous: no signature, the first time or after', async (t) => {
  const s = signer('https://s3.example.test', { credentials: { accessKeyId: '', secretAccessKey: '' }, signer: { sign: async (request: unknown) => request } })
  const first = await s.sign(input(0), signal)
  t.equal(first.origin, 'https://s3.example.test', 'a default port stays out of the origin')
  const second = await s.sign(input(10), signal)
  t.notOk('authorization' in first.headers || 'authorization' in second.headers)
  t.equal(second.headers.range, 'bytes=10-19')
})

t.test('a header this does not know (ExpectedBucketOwner): the SDK signs every request', async (t) => {
  const s = signer('http://127.0.0.1:9000')
  await s.sign(input(0, { ExpectedBucketOwner: '123456789012' }), signal)
  const second = await s.sign(input(10, { ExpectedBucketOwner: '123456789012' }), signal)
  t.match(second.headers, { 'x-amz-expected-bucket-owner': '123456789012', 'amz-sdk-invocation-id': /./ })
})

t.test('another signing scheme: the SDK signs every request', async (t) => {
  const s = signer('http://127.0.0.1:9000', { signer: { sign: async (request: { headers: Record<string, string> }) => ((request.headers.authorization = 'AWS4-ECDSA-P256-SHA256 Credential=x'), request) } })
  await s.sign(input(0), signal)
  const second = await s.sign(input(10), signal)
  t.match(second.headers, { authorization: /^AWS4-ECDSA/, 'amz-sdk-invocation-id': /./ })
})

t.test('a failure before signing (no credentials) is the SDK\'s own error', async (t) => {
  const s = signer('http://127.0.0.1:9000', {
    credentials: async () => {
      throw Object.assign(new Error('no credentials here'), { name: 'CredentialsProviderError' })
    },
  })
  await t.rejects(s.sign(input(0), signal), { name: 'CredentialsProviderError' })
})

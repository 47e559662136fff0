import t from 'tap'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { signedRequest } from '../../../src/backend/s3/signed-request.js'

/** Nothing is sent: the SDK is stopped right after signing, so no store is needed. */
function client(endpoint: string, credentials: S3Client['config']['credentials'] | { accessKeyId: string; secretAccessKey: string } = { accessKeyId: 'AKID', secretAccessKey: 'secret' }) {
  const made = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, maxAttempts: 1, credentials: credentials as never })
  t.teardown(() => made.destroy())
  return made
}

const get = (input: Partial<ConstructorParameters<typeof GetObjectCommand>[0]> = {}) =>
  new GetObjectCommand({ Bucket: 'snaps', Key: "golden/a b+c(1)!.img", Range: 'bytes=0-9', IfMatch: '"v1"', ...input })

t.test('the request the SDK would send: its endpoint, encoded path and query, signed headers but host', async (t) => {
  const signed = await signedRequest(client('http://127.0.0.1:9000'), get({ VersionId: 'v 1' }), new AbortController().signal)
  t.equal(signed.origin, 'http://127.0.0.1:9000')
  t.equal(signed.target, '/snaps/golden/a%20b%2Bc%281%29%21.img?x-id=GetObject&versionId=v%201')
  t.match(signed.headers, { range: 'bytes=0-9', 'if-match': '"v1"', authorization: /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=.*host;if-match;range/ })
  t.notOk('host' in signed.headers, 'the client sends its own host header, the same one')
})

t.test('a default port stays out of the origin', async (t) => {
  const signed = await signedRequest(client('https://s3.example.test'), get(), new AbortController().signal)
  t.equal(signed.origin, 'https://s3.example.test')
})

t.test('a failure before signing (no credentials) is the SDK\'s own error', async (t) => {
  const failing = client('http://127.0.0.1:9000', async () => {
    throw Object.assign(new Error('no credentials here'), { name: 'CredentialsProviderError' })
  })
  await t.rejects(signedRequest(failing, get(), new AbortController().signal), { name: 'CredentialsProviderError' })
})

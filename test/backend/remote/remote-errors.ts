import t from 'tap'
import {
  BadResponseError,
  HttpStatusError,
  RangeIgnoredError,
  RedirectError,
  RemoteChangedError,
  RetriesExhaustedError,
  TruncatedBodyError,
  ConnectionClosedError,
  ResponseTimeoutError,
  isRetryable,
  setupProblem,
  type SetupProblem,
  type StoreAnswer,
} from '../../../src/backend/remote/remote-errors.js'
import { OutOfRangeError } from '../../../src/backend/errors.js'

const URL = 'https://h/x.img'

t.test('what is worth another attempt', async (t) => {
  for (const status of [408, 429, 500, 502, 503, 504, 507]) t.ok(isRetryable(new HttpStatusError(status, URL)), `${status}`)
  for (const status of [400, 401, 403, 404, 410, 416, 501, 505]) t.notOk(isRetryable(new HttpStatusError(status, URL)), `${status}`)
  t.ok(isRetryable(new BadResponseError(URL, 'x')), 'a wrong answer may be a proxy hiccup')
  t.ok(isRetryable(new TruncatedBodyError(URL, 10, 4)), 'a cut body')
  t.ok(isRetryable(new ConnectionClosedError(URL, 'early')), 'a connection closed before the answer')
  for (const code of ['E_CONNECT_TIMEOUT', 'E_HEADERS_TIMEOUT', 'E_BODY_TIMEOUT'] as const) t.ok(isRetryable(new ResponseTimeoutError(code, URL, 'slow')), code)
  for (const err of [new RemoteChangedError(URL, 'x'), new RangeIgnoredError(URL), new RedirectError(URL, 'x'), new OutOfRangeError(0, 1, 0)]) {
    t.notOk(isRetryable(err), err.code)
  }
})

t.test('S3 answers: the status decides, but for the two the AWS SDK retries on a final status', async (t) => {
  const s3 = (status: number, store: StoreAnswer) => new HttpStatusError(status, URL, 0, store)
  for (const [status, errorCode] of [[404, 'NoSuchBucket'], [404, 'NoSuchKey'], [403, 'AccessDenied'], [403, 'InvalidAccessKeyId'], [403, 'SignatureDoesNotMatch'], [400, 'ExpiredToken']] as const) {
    t.notOk(isRetryable(s3(status, { errorCode })), `${status} ${errorCode}: final`)
  }
  t.ok(isRetryable(s3(503, { errorCode: 'SlowDown' })), '503 SlowDown')
  t.ok(isRetryable(s3(400, { errorCode: 'RequestTimeout' })), '400 RequestTimeout: the store gave up waiting for the request')
  t.ok(isRetryable(s3(403, { errorCode: 'RequestTimeTooSkewed', clockSkewCorrected: true })), 'a refusal after which the SDK set its clock right')
  t.notOk(isRetryable(s3(403, { errorCode: 'RequestTimeTooSkewed', clockSkewCorrected: false })), 'but not one it could not correct')
  t.equal(s3(404, { errorCode: 'NoSuchKey' }).message, `${URL} answered 404 NoSuchKey`, 'the code is in the message')
})

t.test('errors that are not ours: the network retried, the client\'s own setup final', async (t) => {
  const failure = (fields: { name?: string; code?: string; message?: string }) => Object.assign(new Error(fields.message ?? 'x'), fields)
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ERR_TLS_HANDSHAKE_TIMEOUT']) {
    t.ok(isRetryable(failure({ code })), `${code}: retried`)
    t.equal(setupProblem(failure({ code })), undefined)
  }
  const final: Array<[SetupProblem, { name?: string; code?: string; message?: string }]> = [
    ['credentials', { name: 'CredentialsProviderError', message: 'Could not load credentials from any providers' }],
    ['credentials', { name: 'TokenProviderError', message: 'The SSO session has expired' }],
    ['credentials', { name: 'ProviderError', message: 'No providers in chain' }],
    ['region', { message: 'Region is missing' }],
    ['region', { message: 'Region not accepted: region="us east 1" is not a valid hostname component.' }],
    ['endpoint', { name: 'TypeError', code: 'ERR_INVALID_URL', message: 'Invalid URL' }],
    ...['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'].map(
      (code) => ['certificate', { code }] as [SetupProblem, { code: string }],
    ),
  ]
  for (const [problem, fields] of final) {
    t.notOk(isRetryable(failure(fields)), `${fields.name ?? fields.code ?? fields.message}: final`)
    t.equal(setupProblem(failure(fields)), problem, `a ${problem} problem`)
  }
  t.ok(isRetryable('a thrown string'), 'anything else from below is given the benefit of the doubt')
  t.equal(setupProblem(undefined), undefined)
})

t.test('RetriesExhaustedError carries the last failure, whatever it was', async (t) => {
  const last = new HttpStatusError(503, URL, 1000)
  const err = new RetriesExhaustedError('GET x', 3, 1500, last)
  t.equal(err.message, `GET x failed after 3 attempt(s) in 1500 ms: ${URL} answered 503`)
  t.equal(err.cause, last)
  t.equal(err.name, 'RetriesExhaustedError')
  t.equal(new RetriesExhaustedError('GET x', 1, 5, 'boom').message, 'GET x failed after 1 attempt(s) in 5 ms: boom', 'a thrown string')
  t.equal(new RetriesExhaustedError('GET x', 1, 5, undefined).message, 'GET x failed after 1 attempt(s) in 5 ms: undefined')
})

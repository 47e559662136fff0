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
} from '../../../src/backend/remote/remote-errors.js'
import { OutOfRangeError } from '../../../src/backend/errors.js'

const URL = 'https://h/x.img'

t.test('what is worth another attempt', async (t) => {
  for (const status of [408, 429, 500, 502, 503, 504]) t.ok(isRetryable(new HttpStatusError(status, URL)), `${status}`)
  for (const status of [400, 401, 403, 404, 410, 416]) t.notOk(isRetryable(new HttpStatusError(status, URL)), `${status}`)
  t.ok(isRetryable(new BadResponseError(URL, 'x')), 'a wrong answer may be a proxy hiccup')
  t.ok(isRetryable(new TruncatedBodyError(URL, 10, 4)), 'a cut body')
  t.ok(isRetryable(new ConnectionClosedError(URL, 'early')), 'a connection closed before the answer')
  t.ok(isRetryable(new ResponseTimeoutError('E_HEADERS_TIMEOUT', URL, 'slow')), 'a timeout')
  t.ok(isRetryable(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'network errors')
  for (const err of [new RemoteChangedError(URL, 'x'), new RangeIgnoredError(URL), new RedirectError(URL, 'x'), new OutOfRangeError(0, 1, 0)]) {
    t.notOk(isRetryable(err), err.code)
  }
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

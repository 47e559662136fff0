import t from 'tap'
import { parseContentRange, parseUnsatisfiedRange } from '../../../src/backend/remote/content-range.js'
import { redactUrl, urlForMessage } from '../../../src/redact.js'

const U = 'https://h/x.img'

t.test('Content-Range', async (t) => {
  t.strictSame(parseContentRange('bytes 0-0/10', U), { first: 0, last: 0, total: 10 })
  t.strictSame(parseContentRange('bytes 4294967296-4295098367/5368721465', U), { first: 4294967296, last: 4295098367, total: 5368721465 })
  t.strictSame(parseContentRange('bytes 5-9/*', U), { first: 5, last: 9, total: undefined })
  for (const bad of [undefined, '', 'bytes */10', 'items 0-1/2', 'bytes 0-1', 'bytes=0-1/2', 'bytes -1-2/3']) {
    t.equal(parseContentRange(bad, U), undefined, `${JSON.stringify(bad)} is not a range`)
  }
  t.equal(parseUnsatisfiedRange('bytes */0', U), 0)
  t.equal(parseUnsatisfiedRange('bytes */12345', U), 12345)
  t.equal(parseUnsatisfiedRange('bytes 0-1/2', U), undefined)
  t.equal(parseUnsatisfiedRange(undefined, U), undefined)
})

t.test('a size past 2^53 - 1 is an ImpossibleSizeError, never a rounded number', async (t) => {
  t.strictSame(parseContentRange('bytes 0-0/9007199254740991', U), { first: 0, last: 0, total: 9007199254740991 })
  t.throws(() => parseContentRange('bytes 0-0/9007199254740992', U), { code: 'E_IMPOSSIBLE_SIZE', message: /https:\/\/h\/x\.img gives a size of 9007199254740992 bytes in Content-Range/ })
  t.throws(() => parseContentRange('bytes 9007199254740993-9007199254740993/*', U), { code: 'E_IMPOSSIBLE_SIZE' })
  t.throws(() => parseUnsatisfiedRange(`bytes */${'9'.repeat(400)}`, U), { message: /gives a size of 9{24}\.\.\. \(400 digits\) bytes/ })
})

t.test('URLs in logs carry no secrets', async (t) => {
  t.equal(redactUrl('https://h/x.img'), 'https://h/x.img')
  t.equal(
    redactUrl('https://bucket.s3.example/x.img?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=def'),
    'https://bucket.s3.example/x.img?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED',
  )
  t.equal(redactUrl(new URL('https://user:pass@h/x')), 'https://REDACTED:REDACTED@h/x')
  t.equal(redactUrl('https://TOKEN1@h/x'), 'https://REDACTED@h/x', 'a user name alone may be a token')
  t.equal(redactUrl('https://h/x.img?TOKEN2'), 'https://h/x.img?REDACTED', 'a bare key may be the secret itself')
  t.equal(redactUrl('https://h/x.img?a=1&TOKEN3&=4#TOKEN5'), 'https://h/x.img?a=REDACTED&REDACTED&REDACTED', 'no fragment, no bare key, no empty name')
})

t.test('an unparseable URL shows its scheme and host at most', async (t) => {
  t.equal(urlForMessage('https://h/x?sig=SECRET'), 'https://h/x?sig=REDACTED')
  t.equal(urlForMessage('https://user:SECRET@bad host/x?sig=SECRET'), 'an unparseable URL starting "https://bad"')
  t.equal(urlForMessage('http://[::1/x?SECRET'), 'an unparseable URL starting "http://[::1"')
  t.equal(urlForMessage('SECRET'), 'an unparseable URL')
})

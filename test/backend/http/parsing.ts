import t from 'tap'
import { parseContentRange, parseUnsatisfiedRange } from '../../../src/backend/remote/content-range.js'
import { redactUrl } from '../../../src/backend/http/redact.js'

t.test('Content-Range', async (t) => {
  t.strictSame(parseContentRange('bytes 0-0/10'), { first: 0, last: 0, total: 10 })
  t.strictSame(parseContentRange('bytes 4294967296-4295098367/5368721465'), { first: 4294967296, last: 4295098367, total: 5368721465 })
  t.strictSame(parseContentRange('bytes 5-9/*'), { first: 5, last: 9, total: undefined })
  for (const bad of [undefined, '', 'bytes */10', 'items 0-1/2', 'bytes 0-1', 'bytes=0-1/2', 'bytes -1-2/3']) {
    t.equal(parseContentRange(bad), undefined, `${JSON.stringify(bad)} is not a range`)
  }
  t.equal(parseUnsatisfiedRange('bytes */0'), 0)
  t.equal(parseUnsatisfiedRange('bytes */12345'), 12345)
  t.equal(parseUnsatisfiedRange('bytes 0-1/2'), undefined)
  t.equal(parseUnsatisfiedRange(undefined), undefined)
})

t.test('URLs in logs carry no secrets', async (t) => {
  t.equal(redactUrl('https://h/x.img'), 'https://h/x.img')
  t.equal(
    redactUrl('https://bucket.s3.example/x.img?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=def'),
    'https://bucket.s3.example/x.img?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED',
  )
  t.equal(redactUrl(new URL('https://user:pass@h/x')), 'https://user:REDACTED@h/x')
})

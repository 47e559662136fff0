import t from 'tap'
import { parseResponseHead } from '../../../src/backend/remote/response-head.js'

const URL = 'http://host/disk.img'

t.test('fields: names lowercased, repeats joined, white space around values dropped', async (t) => {
  const head = parseResponseHead('HTTP/1.1 206 Partial Content\r\nETag: "v1"\r\nX-A: 1\r\nx-a:  2 \r\nContent-Length: 10', URL)
  t.same(head, { status: 206, headers: { etag: '"v1"', 'x-a': '1, 2', 'content-length': '10' }, keepAlive: true, contentLength: 10 })
})

t.test('keep-alive: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive', async (t) => {
  t.equal(parseResponseHead('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close', URL).keepAlive, false)
  t.equal(parseResponseHead('HTTP/1.0 200 OK', URL).keepAlive, false)
  t.equal(parseResponseHead('HTTP/1.0 200 OK\r\nconnection: keep-alive', URL).keepAlive, true)
  t.equal(parseResponseHead('HTTP/1.1 204', URL).status, 204, 'a status line without a reason')
})

t.test('Content-Length: absent or under Transfer-Encoding means not delimited by it', async (t) => {
  t.equal(parseResponseHead('HTTP/1.1 206 x', URL).contentLength, undefined)
  t.equal(parseResponseHead('HTTP/1.1 206 x\r\ncontent-length: 5\r\ntransfer-encoding: chunked', URL).contentLength, undefined)
})

t.test('malformed heads are bad responses, never guesses', async (t) => {
  for (const [text, detail] of [
    ['HTTP/2 200 OK', /status line "HTTP\/2 200 OK"$/],
    ['HTTP/1.1 20 OK', /status line/],
    ['HTTP/1.1 206 x\r\n folded: value', /header line " folded: value"$/],
    ['HTTP/1.1 206 x\r\nno colon', /header line "no colon"$/],
    ['HTTP/1.1 206 x\r\ncontent-length: 5, 5', /Content-Length "5, 5"$/],
    ['HTTP/1.1 206 x\r\ncontent-length: -1', /Content-Length "-1"$/],
  ] as const) {
    t.throws(() => parseResponseHead(text, URL), { code: 'E_BAD_RESPONSE', message: detail }, JSON.stringify(text))
  }
})

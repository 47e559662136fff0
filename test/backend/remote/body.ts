import t from 'tap'
import { Readable } from 'node:stream'
import { collectBody, discardBody } from '../../../src/backend/remote/body.js'
import { ramp } from '../../fixtures/test-data.js'

const URL = 'https://h/x.img'

t.test('collectBody: exactly the bytes asked for, in one buffer', async (t) => {
  const bytes = ramp(1000, 10)
  const chunks = [bytes.subarray(0, 3), bytes.subarray(3, 7), bytes.subarray(7)]
  t.ok((await collectBody(Readable.from(chunks), 10, URL)).equals(bytes))
  t.equal((await collectBody(Readable.from([]), 0, URL)).length, 0, 'an empty body for an empty range')
})

t.test('collectBody: more is not our range, fewer is a truncation', async (t) => {
  const bytes = ramp(0, 10)
  await t.rejects(collectBody(Readable.from([bytes.subarray(0, 6), bytes.subarray(6)]), 8, URL), {
    code: 'E_BAD_RESPONSE',
    message: `${URL} sent a response that is not the requested bytes: body longer than the 8 bytes asked for`,
  })
  await t.rejects(collectBody(Readable.from([bytes.subarray(0, 4)]), 10, URL), { code: 'E_TRUNCATED_BODY', expected: 10, received: 4 })
})

t.test('discardBody: an unread body is destroyed, and its abort error goes nowhere', async (t) => {
  const body = new Readable({
    read() {},
    destroy(_err, callback) {
      callback(new Error('aborted')) // as undici's body does when destroyed before its end
    },
  })
  body.push(Buffer.from('unread'))
  discardBody(body)
  // Not events.once: it listens for 'error' itself, which would hide a missing listener.
  await new Promise((resolve) => body.once('close', resolve))
  t.ok(body.destroyed, 'destroyed')
  t.equal(body.errored?.message, 'aborted', 'it failed, and no uncaught error followed')
  discardBody(undefined)
  t.pass('an answer without a body (an S3 error) is nothing to discard')
})

t.test('collectBody: nothing is written to the target once the body has failed', async (t) => {
  const body = new Readable({ read() {} })
  const target = Buffer.alloc(8, 0xee)
  const collected = collectBody(body, 8, URL, target)
  body.emit('error', new Error('reset'))
  await t.rejects(collected, /reset/)
  // A late chunk (a stream that emits after failing) must not land in a buffer now someone else's.
  body.emit('data', Buffer.alloc(8, 1))
  t.same(target, Buffer.alloc(8, 0xee), 'the target is untouched')
  const filled = await collectBody(Readable.from([Buffer.from('abcd')]), 4, URL, Buffer.alloc(4))
  t.equal(filled.toString(), 'abcd', 'a given target is filled and returned')
})

t.test('collectBody: a failure tells progress the bytes stored; a body too long counts none', async (t) => {
  const bytes = ramp(0, 10)
  const truncated = { stored: -1 }
  await t.rejects(collectBody(Readable.from([bytes.subarray(0, 4)]), 10, URL, Buffer.alloc(10), truncated), { code: 'E_TRUNCATED_BODY' })
  t.equal(truncated.stored, 4, 'a truncation: the 4 bytes that came')
  const reset = { stored: -1 }
  const body = new Readable({ read() {} })
  const collected = collectBody(body, 10, URL, Buffer.alloc(10), reset)
  body.push(bytes.subarray(0, 3))
  await new Promise((resolve) => setImmediate(resolve))
  body.destroy(new Error('reset'))
  await t.rejects(collected, /reset/)
  t.equal(reset.stored, 3, 'an error mid-body: the 3 bytes before it')
  const tooLong = { stored: -1 }
  await t.rejects(collectBody(Readable.from([bytes.subarray(0, 6), bytes.subarray(6)]), 8, URL, Buffer.alloc(8), tooLong), { code: 'E_BAD_RESPONSE' })
  t.equal(tooLong.stored, -1, 'a body longer than asked is not the range: nothing of it counts')
})

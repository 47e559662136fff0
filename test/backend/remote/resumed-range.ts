import t from 'tap'
import { readResuming, type BodyProgress } from '../../../src/backend/remote/resumed-range.js'
import { remoteRetrying } from '../../../src/backend/remote/retrying.js'
import { ramp } from '../../fixtures/test-data.js'

/**
 * readResuming with the real retry loop and a scripted part reader (our own interface): which
 * parts each attempt asks for, and what the retries log. The backends' tests show it on the wire.
 */
const OBJECT = ramp(0, 1000)

function retrying(lines: string[]) {
  const logger = { info() {}, warn: (message: string) => lines.push(message), error() {} }
  return remoteRetrying({ retry: { maxAttempts: 4, deadlineMs: 5000, baseDelayMs: 0, maxDelayMs: 0 }, logger, random: () => 0 })
}

/** A part reader that, per attempt, stores `cuts[i]` bytes and fails, then serves the rest. */
function cutting(cuts: number[], asked: string[]) {
  return async (offset: number, part: Buffer, progress: BodyProgress) => {
    asked.push(`${offset}+${part.length}`)
    const cut = cuts.shift()
    const stored = Math.min(cut ?? part.length, part.length)
    OBJECT.copy(part, 0, offset, offset + stored)
    if (cut === undefined) return
    progress.stored = stored
    throw Object.assign(new Error('reset'), { code: 'ECONNRESET' })
  }
}

t.test('each retry asks only for the bytes not yet stored, and says where it resumes', async (t) => {
  const lines: string[] = []
  const asked: string[] = []
  const target = Buffer.alloc(500)
  const bytes = await readResuming(retrying(lines), 'GET x', 100, target, cutting([120, 0, 80], asked))
  t.equal(bytes, target, 'the whole target comes back')
  t.ok(bytes.equals(OBJECT.subarray(100, 600)), 'with the exact bytes')
  t.same(asked, ['100+500', '220+380', '220+380', '300+300'])
  t.same(lines, ['GET x: ECONNRESET: reset; retry 1/3 in 0 ms, from byte 220', 'GET x: ECONNRESET: reset; retry 2/3 in 0 ms, from byte 220', 'GET x: ECONNRESET: reset; retry 3/3 in 0 ms, from byte 300'])
})

t.test('a failure with nothing stored retries the whole range, logged as before', async (t) => {
  const lines: string[] = []
  const asked: string[] = []
  const bytes = await readResuming(retrying(lines), 'GET x', 0, Buffer.alloc(10), cutting([0], asked))
  t.ok(bytes.equals(OBJECT.subarray(0, 10)))
  t.same(asked, ['0+10', '0+10'])
  t.same(lines, ['GET x: ECONNRESET: reset; retry 1/3 in 0 ms'])
})

t.test('a stream that failed after its last byte: the retry has nothing to ask for', async (t) => {
  const lines: string[] = []
  const asked: string[] = []
  const bytes = await readResuming(retrying(lines), 'GET x', 10, Buffer.alloc(10), cutting([10], asked))
  t.ok(bytes.equals(OBJECT.subarray(10, 20)))
  t.same(asked, ['10+10'], 'one request only')
  t.same(lines, ['GET x: ECONNRESET: reset; retry 1/3 in 0 ms, from byte 20'])
})

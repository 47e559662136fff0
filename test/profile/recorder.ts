import t from 'tap'
import { MAX_PROFILE_BLOCKS, ProfileRecorder } from '../../src/profile/recorder.js'
import { encodeProfile, parseProfile, profileBytes } from '../../src/profile/format.js'

const BLOCK = 4096
/** Ten blocks and a short eleventh: the last block's bytes are counted short. */
const identity = { bytes: 10 * BLOCK + 100, validator: 'sha256:ab' }

function recorder(maxBlocks?: number) {
  let time = 1000
  const subject = new ProfileRecorder({ identity, blockBytes: BLOCK, now: () => time, maxBlocks })
  return { subject, tick: (ms: number) => (time += ms) }
}

t.test('options are checked where they enter', async (t) => {
  t.throws(() => new ProfileRecorder({ identity, blockBytes: 3000, now: () => 0 }), /power of two/)
  t.throws(() => new ProfileRecorder({ identity, blockBytes: 0, now: () => 0 }), /power of two/)
  t.throws(() => new ProfileRecorder({ identity, blockBytes: BLOCK, now: () => 0, maxBlocks: 0 }), /maxBlocks/)
  t.throws(() => new ProfileRecorder({ identity, blockBytes: BLOCK, now: () => 0, maxBlocks: 1.5 }), /maxBlocks/)
  t.equal(MAX_PROFILE_BLOCKS, 65_536)
})

t.test('blocks in order of first touch, one run per read, timed from the first read', async (t) => {
  const { subject, tick } = recorder()
  t.equal(subject.quietMs(), undefined, 'nothing read yet')
  t.equal(subject.spanMs, 0)
  t.equal(subject.note(5 * BLOCK + 10, 100), 1, 'block 5')
  tick(7)
  t.equal(subject.note(0, 3 * BLOCK), 3, 'blocks 0-2 in one read: one run')
  tick(3)
  t.equal(subject.note(5 * BLOCK, BLOCK), 0, 'block 5 again: nothing new')
  t.equal(subject.quietMs(), 3, 'quiet since the last new block')
  tick(2.5)
  // Blocks 1-7: 1, 2 and 5 were touched before, so 3-4 and 6-7 are new, in two runs.
  t.equal(subject.note(BLOCK + 1, 7 * BLOCK - 2), 4)
  tick(1)
  t.equal(subject.note(2 * BLOCK, 0), 0, 'an empty read notes nothing')
  t.equal(subject.note(9 * BLOCK, 10 * BLOCK), 2, 'a read past the end notes the image\'s blocks only')
  t.same(subject.profile(new Date(0)).runs, [
    { firstBlock: 5, blockCount: 1, atMs: 0 },
    { firstBlock: 0, blockCount: 3, atMs: 7 },
    { firstBlock: 3, blockCount: 2, atMs: 12.5 },
    { firstBlock: 6, blockCount: 2, atMs: 12.5 },
    { firstBlock: 9, blockCount: 2, atMs: 13.5 },
  ])
  t.equal(subject.blocks, 10)
  t.equal(subject.runCount, 5)
  t.equal(subject.spanMs, 13.5)
  t.equal(subject.full, false)
})

t.test('bytes: whole blocks, the image\'s last block short; the profile agrees', async (t) => {
  const { subject } = recorder()
  subject.note(0, BLOCK)
  t.equal(subject.bytes, BLOCK)
  subject.note(10 * BLOCK, 100)
  t.equal(subject.bytes, BLOCK + 100)
  const profile = subject.profile(new Date('2026-12-02T11:00:00Z'))
  t.equal(profileBytes(profile), subject.bytes)
  t.same(parseProfile(encodeProfile(profile), 'p'), profile, 'what it produces is a valid profile file')
  t.same(profile.identity, identity)
  t.not(profile.identity, subject.identity, 'a copy: the profile is the caller\'s')
})

t.test('bounded: the read that would pass the bound notes nothing, and nothing after it', async (t) => {
  const { subject } = recorder(3)
  t.equal(subject.note(0, 2 * BLOCK), 2)
  t.equal(subject.note(2 * BLOCK, 2 * BLOCK), 0, 'two more would make 4 > 3')
  t.equal(subject.full, true)
  t.equal(subject.note(2 * BLOCK, BLOCK), 0, 'full: not even the one that would fit')
  t.equal(subject.blocks, 2)
  t.same(subject.profile(new Date(0)).runs, [{ firstBlock: 0, blockCount: 2, atMs: 0 }])
})

t.test('a real boot (test/fixtures/linux-boot-trace.txt): each block once, in the order first read', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const { parseTrace } = await import('../../bench/lib/boot-trace.mjs')
  const reads = parseTrace(await readFile(new URL('../fixtures/linux-boot-trace.txt', import.meta.url), 'utf8'))
  const block = 128 * 1024
  let time = 0
  const subject = new ProfileRecorder({ identity: { bytes: 4 * 2 ** 30, validator: 'sha256:ab' }, blockBytes: block, now: () => time })
  const order: number[] = []
  for (const { ms, offset, length } of reads) {
    time = ms
    for (let b = Math.floor(offset / block); b <= Math.floor((offset + length - 1) / block); b++) if (!order.includes(b)) order.push(b)
    subject.note(offset, length)
  }
  const profile = subject.profile(new Date(0))
  t.same(profile.runs.flatMap(({ firstBlock, blockCount }) => Array.from({ length: blockCount }, (_, i) => firstBlock + i)), order)
  t.equal(subject.blocks, 530)
  const text = encodeProfile(profile)
  t.ok(text.length < 16 * 1024, `${subject.runCount} runs, ${subject.blocks} blocks (${(subject.bytes / 2 ** 20).toFixed(1)} MiB) in ${text.length} bytes of file`)
  t.equal(profile.runs[0]!.atMs, 0)
})

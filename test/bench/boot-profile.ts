import t from 'tap'
import { readFile } from 'node:fs/promises'
import { PROFILE_BLOCK_BYTES, randomRuns, runsFromReads, validatorFromLog } from '../../bench/lib/boot-profile.mjs'
import { parseTrace } from '../../bench/lib/boot-trace.mjs'
import { bootProfileReport } from '../../bench/lib/report.mjs'
import type { BootResults, BootRow } from '../../bench/lib/results.mjs'
import { encodeProfile, parseProfile, profileBytes } from '../../src/profile/format.js'

const B = PROFILE_BLOCK_BYTES
const MIB = 2 ** 20

t.test("a trace's reads become runs of blocks in first-touch order, each block once", async (t) => {
  const reads = [
    { ms: 1, offset: 0, length: 512 },
    { ms: 2, offset: 5 * B - 10, length: 2 * B },
    { ms: 3, offset: 100, length: 10 },
    { ms: 4, offset: 6 * B, length: 3 * B },
    { ms: 5, offset: 9 * B, length: 0 },
  ]
  t.same(runsFromReads(reads), [
    { firstBlock: 0, blockCount: 1, atMs: 1 },
    { firstBlock: 4, blockCount: 3, atMs: 2 },
    { firstBlock: 7, blockCount: 2, atMs: 4 },
  ])
})

t.test("the recorded boot's profile: its blocks cover what the boot read, in at most 1.3x its bytes", async (t) => {
  const reads = parseTrace(await readFile(new URL('../fixtures/linux-boot-trace.txt', import.meta.url), 'utf8'))
  const imageBytes = 4 * 2 ** 30
  const runs = runsFromReads(reads)
  const profile = parseProfile(encodeProfile({ identity: { bytes: imageBytes, validator: '"e"' }, blockBytes: B, recordedAt: new Date(), runs }), 'trace')
  const read = reads.reduce((sum, r) => sum + r.length, 0)
  t.ok(profileBytes(profile) <= 1.3 * read, `${profileBytes(profile)} bytes for a boot that read ${read}`)
  const wrong = randomRuns(runs, imageBytes, 19)
  const count = runs.reduce((sum, run) => sum + run.blockCount, 0)
  t.equal(wrong.length, count, 'a wrong profile of as many blocks')
  t.equal(new Set(wrong.map((run) => run.firstBlock)).size, count, 'each once')
  t.same(randomRuns(runs, imageBytes, 19), wrong, 'the same for the same seed')
  t.equal(randomRuns(runs, 3 * B, 1).length, 3, 'never more blocks than the image has')
})

t.test("the image's identity, from a probe daemon's warning", async (t) => {
  t.equal(validatorFromLog('snapmount warn: disk: prefetch profile /p not used: it was recorded from "probe", this image is "6b-121"; record it again for this image\n'), '"6b-121"')
  t.equal(validatorFromLog('{"time":"t","level":"info","msg":"mounted"}\n{"time":"t","level":"warn","msg":"disk: prefetch profile /p not used: it was recorded from \\"probe\\", this image is \\" 6b-121\\"; record it again for this image"}\n'), '" 6b-121"', 'a JSON line: its message, unescaped')
  t.equal(validatorFromLog('{"cut\nsnapmount info: mounted\n'), undefined)
})

t.test('the boot profiles table: x local, x the same mount without a profile, hits, prefetched against read', async (t) => {
  const run = (seconds: number, stats?: NonNullable<BootResults['rows'][string]['runs'][number]['stats']>) => ({ readyMs: seconds * 1000, guestBytes: 52 * MIB, guestReads: 1426, serverBytes: undefined, failedUnits: 0, load: 4, ...(stats && { stats }) })
  const row = (title: string, seconds: number, stats?: Parameters<typeof run>[1]): BootRow => ({ title, group: 'snapmount', proto: 'http', rttMs: 10, runs: [run(seconds, stats)], medianMs: seconds * 1000, guestBytes: 52 * MIB })
  const prefetch = { state: 'done', prefetchedBytes: 58 * MIB, hitBytes: 50 * MIB, wastedBytes: 8 * MIB }
  const boot: BootResults = {
    accel: 'tcg', accelReason: 'no KVM', image: '/i.raw', cache: 'none', overlay: 'snapshot', runs: 1, notes: [], load: { before: 1, after: 1 },
    rows: {
      local: { ...row('local file', 30), group: 'floor', proto: 'local', rttMs: 0 },
      'snapmount-http-10ms': row('snapmount HTTP', 60),
      'snapmount-http-10ms-profile': row('snapmount HTTP, with profile', 33, { cacheHits: 950, cacheMisses: 50, prefetch }),
      'snapmount-http-10ms-wrong-profile': row('snapmount HTTP, wrong profile', 63, { cacheHits: 0, cacheMisses: 0, prefetch: undefined }),
    },
  }
  const text = bootProfileReport(boot)
  const cells = (line: string) => line.split('|').slice(1, -1).map((cell) => cell.trim())
  const lines = text.split('\n').filter((line) => line.startsWith('|'))
  t.same(cells(lines[0]!), ['mount', 'RTT', 'x local', 'x no profile', 'cache hits % (lookups)', 'prefetched MiB (x guest read)', 'read of it MiB', 'wasted MiB'])
  t.same(cells(lines[2]!), ['snapmount HTTP, with profile', '10 ms', '1.10', '0.55', '95.0 (1,000)', '58.0 (1.115x)', '50.0', '8.0'])
  t.same(cells(lines[3]!), ['snapmount HTTP, wrong profile', '10 ms', '2.10', '1.05', '-', '-', '-', '-'])
  t.equal(bootProfileReport({ ...boot, rows: { local: boot.rows.local! } }), '', 'no profile rows, no table')
})

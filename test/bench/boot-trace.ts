import t from 'tap'
import { formatSummary, formatTrace, parseTrace, summarizeReads } from '../../bench/lib/boot-trace.mjs'

const KIB = 1024
const MIB = 1024 * KIB

t.test('a trace file round-trips, comments and all', async (t) => {
  const reads = [
    { ms: 0.2, offset: 0, length: 512 },
    { ms: 12.5, offset: 1048576, length: 65536 },
  ]
  const text = formatTrace(reads, ['recorded here'])
  t.equal(text, '# recorded here\n0.2 0 512\n12.5 1048576 65536\n')
  t.same(parseTrace(text), reads)
  t.throws(() => parseTrace('# ok\n1 2\n'), /line 2 is not "MS OFFSET LENGTH": 1 2/)
  t.throws(() => parseTrace('1 -2 3\n'), /line 1/)
})

t.test('the summary counts reads, sizes, distinct bytes and where they fall', async (t) => {
  const reads = [
    { ms: 1, offset: 0, length: 4 * KIB },
    { ms: 2, offset: 4 * KIB, length: 60 * KIB },
    { ms: 3, offset: 0, length: 4 * KIB },
    { ms: 4, offset: 3 * MIB, length: 2 * MIB },
  ]
  const s = summarizeReads(reads, 64 * MIB)
  t.equal(s.reads, 4)
  t.equal(s.bytes, 68 * KIB + 2 * MIB)
  t.equal(s.distinctBytes, 64 * KIB + 2 * MIB, 'the re-read 4 KiB counted once')
  t.equal(s.sequential, 1)
  t.equal(s.lastMs, 4)
  t.same(s.sizes.map((size) => size.reads), [2, 0, 1, 0, 0, 0, 1])
  t.equal(s.spread[0], 68 * KIB)
  t.equal(s.spread[3], 2 * MIB)
  const lines = formatSummary(s)
  t.match(lines[0], /^4 reads, 2\.1 MiB \(2\.1 MiB distinct, 3\.22 % of the image\), 1 starting where the one before ended; the last 0\.0 s/)
  t.match(lines.join('\n'), /<= 4 KiB\s+2 reads\s+0\.0 MiB #{40}/)
  t.match(lines.join('\n'), /> 1 MiB\s+1 reads/)
  t.equal(lines.at(-1), `  0 |.  #${' '.repeat(60)}| 0 GiB`)
  t.same(summarizeReads([], 64 * MIB).lastMs, 0, 'an empty trace has no last read')
})

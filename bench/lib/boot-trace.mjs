// A guest's boot as the reads it made of its disk image (tools/linux-guest.mjs traces them from
// QEMU): the trace's file format, and the summary the boot part prints. Pure functions, tested in
// test/bench/boot-trace.ts; test/cache/boot-trace-replay.ts replays the recorded trace
// (test/fixtures/linux-boot-trace.txt) through the cache.
//
// The file: lines starting with '#' say what was recorded and how; then one read per line,
// `MS OFFSET LENGTH` (ms from QEMU's start, a tenth's precision; bytes), in the order issued.

const KIB = 1024
const MIB = 1024 * KIB

/** The size classes of the histogram: a read falls in the first whose bound it does not pass. */
const SIZE_BOUNDS = [4 * KIB, 16 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, 1 * MIB, Infinity]
/** Columns of the spread plot: each a 64th of the image (64 MiB of a 4 GiB one). */
const SPREAD_COLUMNS = 64
/** A spread column's bytes as one of these marks, from none to the most read. */
const SPREAD_MARKS = ' .:-=+*#'

/** The trace as its file's text: `header` lines (without '#') first. */
export function formatTrace(reads, header = []) {
  return [...header.map((line) => `# ${line}`), ...reads.map((r) => `${r.ms.toFixed(1)} ${r.offset} ${r.length}`)].join('\n') + '\n'
}

/** The reads of a trace file's text; throws on a line that is not a read. */
export function parseTrace(text) {
  const reads = []
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(' ').map(Number)
    if (fields.length !== 3 || !fields.every((n) => Number.isFinite(n) && n >= 0)) throw new Error(`trace line ${index + 1} is not "MS OFFSET LENGTH": ${line}`)
    reads.push({ ms: fields[0], offset: fields[1], length: fields[2] })
  }
  return reads
}

/**
 * What the guest read: the number of reads, their bytes, the bytes of the image they covered
 * (each byte once), how many started where the one before ended, a histogram of their sizes,
 * and the bytes read per 64th of the image (`imageBytes`).
 */
export function summarizeReads(reads, imageBytes) {
  const sizes = SIZE_BOUNDS.map((bound) => ({ upTo: bound, reads: 0, bytes: 0 }))
  const spread = new Array(SPREAD_COLUMNS).fill(0)
  const column = imageBytes / SPREAD_COLUMNS
  let bytes = 0
  let sequential = 0
  let previousEnd = -1
  for (const { offset, length } of reads) {
    bytes += length
    const size = sizes.find((s) => length <= s.upTo)
    size.reads++
    size.bytes += length
    if (offset === previousEnd) sequential++
    previousEnd = offset + length
    // A read that straddles a column's edge counts in the column it starts in: at most 1 MiB of a 64 MiB column.
    spread[Math.min(SPREAD_COLUMNS - 1, Math.floor(offset / column))] += length
  }
  return { reads: reads.length, bytes, distinctBytes: distinctBytes(reads), sequential, lastMs: reads.at(-1)?.ms ?? 0, sizes, spread, imageBytes }
}

/** Bytes covered by the union of the reads' ranges. */
function distinctBytes(reads) {
  const ranges = reads.map((r) => [r.offset, r.offset + r.length]).sort((a, b) => a[0] - b[0])
  let total = 0
  let end = -1
  for (const [start, stop] of ranges) {
    if (stop <= end) continue
    total += stop - Math.max(start, end)
    end = stop
  }
  return total
}

/** The summary as printed lines: totals, the size histogram, and the spread as a strip of marks. */
export function formatSummary(s) {
  const mib = (n) => (n / MIB).toFixed(1)
  const label = (bound) => (bound === Infinity ? '> 1 MiB' : bound >= MIB ? `<= ${bound / MIB} MiB` : `<= ${bound / KIB} KiB`)
  const lines = [
    `${s.reads.toLocaleString('en-US')} reads, ${mib(s.bytes)} MiB (${mib(s.distinctBytes)} MiB distinct, ${((s.distinctBytes / s.imageBytes) * 100).toFixed(2)} % of the image), ` +
      `${s.sequential.toLocaleString('en-US')} starting where the one before ended; the last ${(s.lastMs / 1000).toFixed(1)} s after QEMU's start`,
    'sizes:',
  ]
  const widest = Math.max(...s.sizes.map((size) => size.reads))
  for (const size of s.sizes) {
    const bar = '#'.repeat(widest ? Math.round((size.reads / widest) * 40) : 0)
    lines.push(`  ${label(size.upTo).padEnd(10)} ${String(size.reads).padStart(6)} reads ${mib(size.bytes).padStart(7)} MiB ${bar}`)
  }
  const most = Math.max(...s.spread)
  const strip = s.spread.map((b) => (b === 0 ? SPREAD_MARKS[0] : SPREAD_MARKS[Math.max(1, Math.ceil((b / most) * (SPREAD_MARKS.length - 1)))])).join('')
  lines.push(`spread over the image, ${mib(s.imageBytes / SPREAD_COLUMNS)} MiB per column ('${SPREAD_MARKS.slice(1)}': fewer to more bytes; most ${mib(most)} MiB):`)
  lines.push(`  0 |${strip}| ${(s.imageBytes / 2 ** 30).toFixed(0)} GiB`)
  return lines
}

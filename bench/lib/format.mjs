// How numbers are written in the tables and progress lines, and the tables themselves.

/** Rates, counts, sizes: three significant digits or more, thousands separated. */
export function fmt(value) {
  if (value === undefined || Number.isNaN(value)) return 'n/a'
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)
}

/** Latencies: two decimals below 10 ms, where the RTT target lives. */
export function fmtMs(value) {
  if (value === undefined || Number.isNaN(value)) return 'n/a'
  return value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

/** Bytes sent per byte read: three decimals, so the protocol's overhead shows. */
export function fmtAmp(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value >= 100 ? fmt(value) : value.toFixed(value >= 10 ? 1 : 3)
}

/** KiB per read: one decimal up to 10 000, so 128.3 (a block plus its headers) is not shown as 128. */
export function fmtKib(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value >= 10_000 ? fmt(value) : value.toFixed(1)
}

export function fmtCount(value) {
  return value === undefined ? 'n/a' : Math.round(value).toLocaleString('en-US')
}

/** CPU seconds (per GiB): two decimals, the grain of /proc's 10 ms ticks over a GiB. */
export function fmtCpu(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value.toFixed(2)
}

/** A share (0..1) as a whole percentage. */
export function fmtShare(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return `${Math.round(value * 100)} %`
}

export function okOr(ok) {
  return ok === undefined ? 'n/a' : ok ? 'OK' : 'MISMATCH'
}

/** p50 / p99 of a random-read result. */
export function latency(r) {
  return r ? `${fmtMs(r.p50Ms)} / ${fmtMs(r.p99Ms)}` : 'n/a'
}

/** Columns padded to their widest cell; markdown pipes so it pastes into an issue as-is. */
export function table(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const line = (row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`
  return [line(rows[0]), line(widths.map((width) => '-'.repeat(width))), ...rows.slice(1).map(line)].join('\n')
}

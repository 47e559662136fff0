// The fleet part's table and issue 21's storm targets: pure functions of its results
// (results.fleet), tested without running anything.

import { fmt, okOr, table } from './format.mjs'

/** Issue 21: origin bytes whatever N, at most this times what one daemon alone made it send through the tier. */
export const STORM_ORIGIN_LIMIT = 1.1
/** Issue 21: each daemon's p99 time in a storm, at most this times one daemon's alone through the tier. */
export const STORM_P99_LIMIT = 1.5

const MB = 1e6

/** The storm table: a row per (tier, N). */
export function fleetReport(fleet) {
  const rows = [['path', 'daemons', 'origin MB', 'origin requests', 'origin MB / working set', 'per daemon p50 s', 'p99 s', 'max s', 'bytes']]
  for (const r of fleet.rows) {
    rows.push([
      r.tier ? `caching tier${r.slice ? `, slice ${r.slice}` : ''}` : 'origin only',
      String(r.daemons),
      fmt(r.originBytes / MB),
      String(r.originRequests),
      (r.originBytes / fleet.unique).toFixed(2),
      r.p50Seconds.toFixed(2),
      r.p99Seconds.toFixed(2),
      r.maxSeconds.toFixed(2),
      okOr(r.bytesOk),
    ])
  }
  return table(rows)
}

export function fleetSection(fleet) {
  return (
    `\nFleet: N daemons replay one boot's reads at once (${fleet.reads} reads, ${fmt(fleet.read / MB)} MB read, ${fmt(fleet.unique / MB)} MB of the image), ` +
    `kernel TCP at ${fleet.rttMs} ms RTT on every hop, cold origin and tier per row; working set = the ${fmt(fleet.unique / MB)} MB touched\n\n${fleetReport(fleet)}\n`
  )
}

/**
 * Issue 21's storm targets against one daemon alone through the tier: origin bytes at most
 * STORM_ORIGIN_LIMIT times that whatever N, each daemon's p99 at most STORM_P99_LIMIT times its time.
 */
export function fleetTargets(fleet) {
  const scope = 'fleet'
  if (!fleet) return [{ scope, target: 'storm targets', value: undefined, limit: undefined, pass: undefined, detail: 'part fleet not run' }]
  const tier = fleet.rows.filter((r) => r.tier)
  return tier
    .filter((r) => r.daemons > 1)
    .flatMap((r) => {
      // Against one daemon through the same tier (the same slice size, when sizes are compared).
      const alone = tier.find((a) => a.daemons === 1 && a.slice === r.slice)
      if (!alone) return []
      const at = r.slice ? ` (slice ${r.slice})` : ''
      const originLimit = STORM_ORIGIN_LIMIT * alone.originBytes
      const p99Limit = STORM_P99_LIMIT * alone.p99Seconds
      return [
        { scope, target: `N=${r.daemons}${at} origin bytes <= ${STORM_ORIGIN_LIMIT}x one daemon's`, value: r.originBytes, limit: originLimit, pass: r.originBytes <= originLimit, detail: `${fmt(r.originBytes / MB)} vs ${STORM_ORIGIN_LIMIT} x ${fmt(alone.originBytes / MB)} MB` },
        { scope, target: `N=${r.daemons}${at} p99 per daemon <= ${STORM_P99_LIMIT}x one alone`, value: r.p99Seconds, limit: p99Limit, pass: r.p99Seconds <= p99Limit, detail: `${r.p99Seconds.toFixed(2)} vs ${STORM_P99_LIMIT} x ${alone.p99Seconds.toFixed(2)} s` },
      ]
    })
}

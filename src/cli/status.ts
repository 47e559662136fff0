import type { CommandModule } from 'yargs'
import type { SnapshotStatus, StatusReport } from '../control/protocol.js'
import type { PrefetchReport } from '../backend/storage-backend.js'
import { formatSize } from './format.js'
import { requestAndShow, withTargetOptions, type ControlCommandContext, type TargetArgs } from './control-target.js'

interface StatusArgs extends TargetArgs {
  json?: boolean | undefined
}

/** `snapmount status [MOUNTPOINT] [--json]`: what the running daemon serves and how it is doing. */
export function statusCommand(context: ControlCommandContext): CommandModule<object, StatusArgs> {
  return {
    command: 'status [mountpoint]',
    describe: 'show what a running daemon serves: sizes, backends, cache, errors, recent latency',
    builder: (y) =>
      withTargetOptions(y)
        .positional('mountpoint', { type: 'string', describe: 'the mountpoint of the daemon to ask (default: the only one running)' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON, for scripts' })
        .example('$0 status', 'the daemon running on this host')
        .example('$0 status /mnt/snap --json', 'the one serving /mnt/snap, as JSON') as never,
    handler: (args) =>
      context.run(() => requestAndShow(args, context, { op: 'status' }, (report: StatusReport) => (args.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report))))(),
  }
}

/** The report for people: a header, the cache, then one row per snapshot. */
export function formatStatus(report: StatusReport): string {
  const lines = [`${report.mountpoint}: pid ${report.pid}, up ${formatUptime(report.uptimeSeconds)}, ${report.snapshots.length} snapshot(s)`]
  if (report.metricsUrl) lines.push(`metrics: ${report.metricsUrl}`)
  const { cache } = report
  if (cache) {
    const lookups = cache.hits + cache.misses
    const ratio = lookups === 0 ? 'no lookups yet' : `${((100 * cache.hits) / lookups).toFixed(1)} % hits`
    lines.push(`cache: ${formatSize(cache.bytesInUse)} of ${formatSize(cache.capacityBytes)} in use, ${ratio}, ${cache.evictions} evictions`)
  } else {
    lines.push('cache: none')
  }
  const disk = report.diskCache
  if (disk) {
    const lookups = disk.hits + disk.misses
    const ratio = lookups === 0 ? 'no lookups yet' : `${((100 * disk.hits) / lookups).toFixed(1)} % hits`
    const problems = `${disk.verifyFailures} blocks failed their check, ${disk.writeErrors} write errors`
    lines.push(`disk cache: ${formatSize(disk.bytesInUse)} of ${formatSize(disk.capacityBytes)} on disk, ${ratio}, ${disk.evictions} evictions, ${problems}`)
  }
  // The ON DISK column only for a daemon with a disk cache.
  const header = ['NAME', 'TYPE', 'SIZE', 'CACHED', ...(disk ? ['ON DISK'] : []), 'READS', 'READ', 'ERRORS', 'IN FLIGHT', 'LATENCY 1 MIN (p50 / p99)', 'SOURCE']
  const rows = report.snapshots.map((s) => {
    const cached = s.cachedBytes === null ? '-' : formatSize(s.cachedBytes)
    const onDisk = disk ? [s.diskBytes === null ? '-' : formatSize(s.diskBytes)] : []
    return [s.name, s.type, formatSize(s.size), cached, ...onDisk, String(s.reads), formatSize(s.bytes), String(s.errors), String(s.inFlight), latency(s), s.source ?? '']
  })
  lines.push('', ...table([header, ...rows]))
  for (const { name, profileRecording: recording } of report.snapshots) {
    if (!recording) continue
    const how = recording.automatic ? 'automatically' : 'by request'
    const bound = recording.full ? ', at its bound' : ''
    lines.push(`${name}: recording a boot profile (${how}) to ${recording.path}: ${recording.blocks} blocks, ${formatSize(recording.bytes)} so far${bound}`)
  }
  const prefetching = report.snapshots.filter((s) => s.prefetch)
  if (prefetching.length > 0) lines.push('', ...prefetching.map((s) => `${s.name}: ${formatPrefetch(s.prefetch!)}`))
  return `${lines.join('\n')}\n`
}

/** One snapshot's boot profile prefetch: how far it got, how much of it was read, what it cost. */
function formatPrefetch(p: PrefetchReport): string {
  const age = p.ageSeconds === null ? '' : `, recorded ${formatUptime(Math.round(p.ageSeconds))} ago`
  if (p.state === 'loading' || p.state === 'unused') return `prefetch ${p.state === 'loading' ? 'loading' : 'unused (no profile yet, or not fit to use: see the log)'}, profile ${p.profile}`
  const read = p.prefetchedBytes === 0 ? '' : ` (${((100 * p.hitBytes) / p.prefetchedBytes).toFixed(1)} % read since)`
  const failures = p.failures === 0 ? '' : `, ${p.failures} failed`
  return `prefetch ${p.state}: ${formatSize(p.prefetchedBytes)} of the profile's ${formatSize(p.profileBytes)} prefetched${read}, ${p.hitBlocks} blocks hit, ${formatSize(p.wastedBytes)} wasted (${formatSize(p.evictedBytes)} evicted unread)${failures}; profile ${p.profile}${age}`
}

function latency({ recent }: SnapshotStatus): string {
  if (recent.count === 0) return 'no reads'
  return `${formatMs(recent.p50Ms!)} / ${formatMs(recent.p99Ms!)} (${recent.count} reads)`
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`
}

function formatUptime(seconds: number): string {
  const [d, h, m, s] = [Math.floor(seconds / 86400), Math.floor((seconds % 86400) / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd())
}

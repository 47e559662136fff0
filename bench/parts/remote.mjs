// What every HTTP and S3 mount is measured with, through one proxy per condition (no delay, and
// RTT_MS round trip): the four cold daemons of each mount, the proxy's counters around each read,
// and one condition's run from its proxy to its table's numbers.

import { loadavg } from 'node:os'
import { startDelayProxy } from '../../tools/delay-proxy.mjs'
import { ownMicros, withCpu } from '../lib/cpu.mjs'
import { measureStarts, withDaemon } from '../lib/daemons.mjs'
import { fmt, fmtAmp, fmtCpu, fmtMs, okOr } from '../lib/format.mjs'
import { KIB4_SLICES, MIB_SLICES, sliceSha256 } from '../lib/images.mjs'
import { progress } from '../lib/progress.mjs'
import { fioRand, fioSeq } from '../lib/readers.mjs'
import { IMAGE_BYTES, PROXY_TIMER_SLACK_MS, PROXY_WINDOW_BYTES, RTT_MS, SEQ_READERS } from '../lib/settings.mjs'
import { max, median } from '../lib/stats.mjs'

/** The remote conditions: no added delay, and RTT_MS through the delay proxy. */
export const DELAYS = [
  { suffix: '0ms', title: '0 ms', oneWayDelayMs: 0 },
  { suffix: '10ms', title: `${RTT_MS} ms RTT`, oneWayDelayMs: RTT_MS / 2 },
]

/**
 * After a reader finishes, a mount's readahead may still be receiving: counters are read once
 * nothing has moved for this long (at most SETTLE_MAX_MS), so those bytes count for the read that
 * caused them.
 */
const SETTLE_MS = 200
const SETTLE_MAX_MS = 3_000

/** A delay proxy to 127.0.0.1:port, registered with `procs` so a failed run still closes it. */
export async function startProxy(procs, port, oneWayDelayMs) {
  const proxy = await startDelayProxy({ host: '127.0.0.1', port }, oneWayDelayMs, { timerSlackMs: PROXY_TIMER_SLACK_MS, windowBytes: PROXY_WINDOW_BYTES })
  proxy.stop = proxy.close
  return procs.addService(proxy)
}

/** Waits until the proxy has seen no byte for SETTLE_MS (at most SETTLE_MAX_MS), then reads its counters. */
async function settledCounters(proxy) {
  const deadline = Date.now() + SETTLE_MAX_MS
  let last = proxy.counters()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    const now = proxy.counters()
    if (now.bytesFromTarget === last.bytesFromTarget || Date.now() > deadline) return now
    last = now
  }
}

/** What the proxy saw between two readings, for `bytesRead` bytes read by the client. */
function traffic(before, after, bytesRead) {
  const gets = after.gets - before.gets
  const sent = after.bytesFromTarget - before.bytesFromTarget
  const used = Object.keys(after.requestsByConnection).filter((id) => after.requestsByConnection[id] !== (before.requestsByConnection[id] ?? 0))
  return {
    amp: sent / bytesRead,
    gets,
    sentKiBPerGet: gets ? sent / gets / 1024 : undefined,
    askedMiBPerGet: gets ? (after.rangeBytesAsked - before.rangeBytesAsked) / gets / 2 ** 20 : undefined,
    connections: used.length,
    bytesRead,
    sent,
    asked: after.rangeBytesAsked - before.rangeBytesAsked,
  }
}

/**
 * Runs `work()` (resolving to { bytes, ... }) against `daemon` and adds what the proxy saw
 * meanwhile as `traffic` and what it cost in CPU as `cpu` (lib/cpu.mjs: the daemon, the proxy in
 * this process, the machine's idle share), both read once the traffic has settled.
 */
export async function counted(ctx, daemon, proxy, work) {
  const before = proxy.counters()
  let after
  const result = await withCpu(daemon.child.pid, ctx.ticksPerSecond, work, async () => (after = await settledCounters(proxy)))
  return { ...result, traffic: traffic(before, after, result.bytes) }
}

/** KiB the server sent per 4 KiB read, from a random-read run's traffic. */
function kibPer4k(t) {
  return t.bytesRead ? t.sent / (t.bytesRead / 4096) / 1024 : undefined
}

/** KiB of ranges asked for (the bodies requested, no headers) per 4 KiB read. */
function askedKibPer4k(t) {
  return t.bytesRead ? t.asked / (t.bytesRead / 4096) / 1024 : undefined
}

/**
 * One remote mount in one condition, on four cold daemons, all through `proxy`:
 *   A  sequential, 1 reader (from offset 0, up to 1 GiB or seqSeconds), then the second pass over
 *      exactly the bytes it read (buffered; the kernel's page cache should serve it), then 1 MiB slices;
 *   B  sequential, 4 readers each on its own quarter, then 1 MiB slices;
 *   C  4 KiB random reads, 1 reader, O_DIRECT, then 4 KiB slices;
 *   D  the same with 8 readers.
 * Separate daemons because a cache (snapmount's, s3fs's temp file) filled by one reader would
 * serve the next: random reads after a sequential one would not reach the server.
 */
async function measureRemoteMount(ctx, mount, proxy) {
  const { procs, image, settings } = ctx
  const want = { mib: await image.expectedSha(MIB_SLICES), kib4: await image.expectedSha(KIB4_SLICES) }
  const a = await withDaemon(ctx, mount, async (file, daemon) => {
    const seq = await counted(ctx, daemon, proxy, () => fioSeq(procs, file, { bytesEach: IMAGE_BYTES, seconds: settings.seqSeconds }))
    const warm = await counted(ctx, daemon, proxy, () => fioSeq(procs, file, { bytesEach: seq.bytes }))
    return { seq, warm, sliceOk: (await sliceSha256(procs, file, 'direct', MIB_SLICES)) === want.mib }
  })
  const b = await withDaemon(ctx, mount, async (file, daemon) => {
    const seq4 = await counted(ctx, daemon, proxy, () => fioSeq(procs, file, { jobs: SEQ_READERS, bytesEach: IMAGE_BYTES / SEQ_READERS, seconds: settings.seqSeconds }))
    return { seq4, sliceOk: (await sliceSha256(procs, file, 'direct', MIB_SLICES)) === want.mib }
  })
  const random = (jobs) =>
    withDaemon(ctx, mount, async (file, daemon) => {
      const rand = await counted(ctx, daemon, proxy, () => fioRand(procs, file, { jobs, seconds: settings.fioSeconds }))
      return { rand, sliceOk: (await sliceSha256(procs, file, 'direct', KIB4_SLICES)) === want.kib4 }
    })
  const c = await random(1)
  const d = await random(8)
  const daemons = [a, b, c, d]
  const rand = (r) => ({ iops: r.iops, p50Ms: r.p50Ms, p99Ms: r.p99Ms, bytesRead: r.bytes, fetched: r.traffic.sent, kibPerRead: kibPer4k(r.traffic), askedKibPerRead: askedKibPer4k(r.traffic), getsPerRead: r.traffic.gets / (r.bytes / 4096) })
  const result = {
    mountMs: median(daemons.map((x) => x.mountMs)),
    seq1: { mbps: a.seq.mbps, bytesRead: a.seq.bytes, fetched: a.seq.traffic.sent, fetchPerByte: a.seq.traffic.amp, gets: a.seq.traffic.gets, connections: a.seq.traffic.connections, cpu: a.seq.cpu },
    warm: { mbps: a.warm.mbps, bytesRead: a.warm.bytes, fetched: a.warm.traffic.sent, cpu: a.warm.cpu },
    seq4: { mbps: b.seq4.mbps, bytesRead: b.seq4.bytes, fetched: b.seq4.traffic.sent, fetchPerByte: b.seq4.traffic.amp, cpu: b.seq4.cpu },
    rand1: rand(c.rand),
    rand8: rand(d.rand),
    peakRssMiB: max(daemons.map((x) => x.peakRssMiB)),
    slicesOk: daemons.every((x) => x.sliceOk),
    exits: daemons.map((x) => x.exit),
    cleanExit: daemons.every((x) => x.cleanExit),
  }
  result.ok = result.slicesOk && result.cleanExit
  progress(
    `${mount.title}: seq ${fmt(result.seq1.mbps)} MB/s (${fmt(result.seq1.bytesRead / 1e6)} MB, fetched x${fmtAmp(result.seq1.fetchPerByte)}, ` +
      `daemon CPU ${fmtCpu(result.seq1.cpu.daemonSecondsPerGiB)} s/GiB), ` +
      `x${SEQ_READERS} ${fmt(result.seq4.mbps)} MB/s, 2nd pass ${fmt(result.warm.mbps)} MB/s; ` +
      `rand ${fmt(result.rand1.iops)} IOPS p50 ${fmtMs(result.rand1.p50Ms)} ms (${fmt(result.rand1.kibPerRead)} KiB/read) / ${fmt(result.rand8.iops)} IOPS; ` +
      `RSS ${fmt(result.peakRssMiB)} MiB; slices ${okOr(result.slicesOk)}; exits ${result.exits.join(', ')}`,
  )
  return result
}

/**
 * Every mount of one condition, one after the other; a peer that fails is noted and left out,
 * snapmount failing fails the bench.
 */
async function measureMounts(ctx, mounts, proxy, notes) {
  const results = {}
  for (const mount of mounts) {
    try {
      results[mount.key] = await measureRemoteMount(ctx, mount, proxy)
    } catch (err) {
      if (mount.key === 'snapmount' || ctx.procs.stopping) throw err
      notes.push(`${mount.title} not measured: ${err.message.split('\n')[0]}`)
      progress(`${notes.at(-1)}\n${err.stack ?? err}`)
    }
  }
  return results
}

/** A raw client's 4 KiB rate result (bench/rate.mjs) as the mounts' rows show it. */
function rawRate(r) {
  return { iops: r.rate, p50Ms: r.medianMs, p99Ms: r.p99Ms }
}

/**
 * The raw client's figures, taken alike for both protocols: one stream straight to the server
 * (`seqDirect()`), then 1, SEQ_READERS and 8 streams at once through the proxy (`seq(streams)`),
 * each resolving to MB/s and reading the whole image; then 4 KiB reads by 1 and 8 clients
 * (`rate(clients, seconds)`, resolving to bench/rate.mjs's result). `names` ({ label, stream,
 * request }) word the progress line. The one stream through the proxy also gives the proxy's CPU
 * per GiB (this process's), the reference for the mounts' proxy rows.
 */
export async function measureRaw({ settings }, names, { seqDirect, seq, rate }) {
  const raw = {}
  raw.seqDirect = await seqDirect()
  const before = ownMicros()
  raw.seq1 = await seq(1)
  raw.seq1ProxyCpuPerGiB = (ownMicros() - before) / 1e6 / (IMAGE_BYTES / 2 ** 30)
  raw.seq4 = await seq(SEQ_READERS)
  raw.seq8 = await seq(8)
  raw.rand1 = rawRate(await rate(1, settings.rawRateSeconds))
  raw.rand8 = rawRate(await rate(8, settings.rawRateSeconds))
  progress(
    `raw ${names.label}: ${names.stream} direct ${fmt(raw.seqDirect)} MB/s; via proxy 1/${SEQ_READERS}/8 streams ${fmt(raw.seq1)} / ${fmt(raw.seq4)} / ${fmt(raw.seq8)} MB/s; ` +
      `4 KiB ${names.request}/s ${fmt(raw.rand1.iops)} (p50 ${fmtMs(raw.rand1.p50Ms)} ms) / ${fmt(raw.rand8.iops)}`,
  )
  return raw
}

/**
 * One condition of one protocol: a proxy to the `server`'s `port` (its name and version, for the
 * table's title) with the condition's delay, the raw client (`rawClient(origin)`, measureRaw's
 * figures), at 0 ms each mount's start times (fresh daemons, nothing read: the start table), then
 * every mount (`mountsOf(origin)`) on its four daemons. `notes` start the condition's notes
 * (printed above its table).
 */
export async function measureCondition(ctx, { proto, server, delay, port, notes, rawClient, mountsOf }) {
  const key = `${proto}-${delay.suffix}`
  const began = Date.now()
  const load = loadavg()[0]
  const proxy = await startProxy(ctx.procs, port, delay.oneWayDelayMs)
  const origin = `http://127.0.0.1:${proxy.port}`
  const raw = await rawClient(origin)
  const mounts = mountsOf(origin)
  let starts
  if (delay.oneWayDelayMs === 0) {
    starts = { mounts: {}, notes: [] }
    starts.mounts = await measureStarts(ctx, mounts, starts.notes, (mount) => mount.key !== 'snapmount')
  }
  const results = await measureMounts(ctx, mounts, proxy, notes)
  await ctx.procs.stopService(proxy)
  const title = `${proto === 'http' ? 'HTTP' : 'S3'}, ${delay.title}`
  const condition = { key, proto, title, server, rttMs: delay.oneWayDelayMs * 2, raw, mounts: results, notes, seconds: (Date.now() - began) / 1000, loadBefore: load, loadAfter: loadavg()[0] }
  if (starts) condition.starts = starts
  return condition
}

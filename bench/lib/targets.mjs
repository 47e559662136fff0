// The targets of issues 5, 17 and 20, evaluated from one run's results (the object written as JSON):
// a pure function of them, so it is tested without running anything.

import { fmt, fmtAmp, fmtCpu, fmtKib, fmtMs, fmtShare } from './format.mjs'
import { BIG_IMAGE_BYTES, MANIFEST_KEY, PROXY_WINDOW_BYTES, RSS_CACHE_MIB, RSS_SLACK_MIB, RTT_MS, SEQ_READERS } from './settings.mjs'

/**
 * Issue 17: a hypervisor host's CPU belongs to its guests. The daemon's CPU seconds (user +
 * system) per GiB of a sequential read, per protocol: S3 is allowed more for signing requests.
 */
export const CPU_LIMITS = { http: 0.8, s3: 1.0 }
/** Issue 17: a mount per VM is common; start to mounted for a local or an HTTP snapshot, in ms. */
export const START_LIMIT_MS = 250
/** Issue 20: a manifest may cost a sequential read a tenth, and a random 4 KiB read 1 ms at the median. */
export const MANIFEST_SEQ_RATIO = 0.9
export const MANIFEST_P50_SLACK_MS = 1

const SCOPES = { http: 'HTTP', s3: 'S3' }

/**
 * Each target as PASS, FAIL or n/a (not measured in this run), with the numbers behind it:
 * { scope, target, value, limit, pass (true, false, or undefined for n/a), detail }.
 * Issue 5's remote targets are evaluated at RTT_MS for HTTP and for S3 alike; issue 17's CPU
 * targets on every remote condition run (the null backend's beside them: the FUSE path alone);
 * its loopback target (1.5x the best peer) and start target on HTTP at 0 ms, and the start
 * target on the local file too.
 */
export function evaluateTargets(results) {
  const targets = []
  const add = (scope, target, value, limit, pass, detail) => targets.push({ scope, target, value, limit, pass, detail })
  for (const proto of ['http', 's3']) {
    const key = `${proto}-${RTT_MS}ms`
    const c = results.remote?.[key]
    const scope = `${SCOPES[proto]} ${RTT_MS} ms`
    if (!c?.mounts.snapmount) {
      add(scope, 'remote targets', undefined, undefined, undefined, `part ${key} not run`)
      continue
    }
    const s = c.mounts.snapmount
    bestPeerTarget(scope, c, add)
    // The window a real 10 ms link gives one connection (PROXY_WINDOW_BYTES) is what bounds it.
    const rawNote = `; one stream through the proxy's ${PROXY_WINDOW_BYTES / 2 ** 20} MiB window (${fmt(c.raw.seqDirect)} MB/s without the proxy)`
    add(scope, 'seq 1 reader >= 1.5x one raw stream', s.seq1.mbps, 1.5 * c.raw.seq1, s.seq1.mbps >= 1.5 * c.raw.seq1, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(c.raw.seq1)} MB/s${rawNote}`)
    const p50Limit = 1.3 * RTT_MS + 1
    add(scope, `rand 1 reader p50 <= 1.3 x RTT + 1 ms`, s.rand1.p50Ms, p50Limit, s.rand1.p50Ms <= p50Limit, `${fmtMs(s.rand1.p50Ms)} ms vs ${fmtMs(p50Limit)} ms (raw client p50 ${fmtMs(c.raw.rand1.p50Ms)} ms)`)
    // Judged on the ranges asked for (bodies), not the TCP bytes, which add ~0.3 KiB of response headers per GET.
    add(scope, 'rand 1 reader <= 128 KiB fetched per 4 KiB read', s.rand1.askedKibPerRead, 128, s.rand1.askedKibPerRead <= 128, `${fmtKib(s.rand1.askedKibPerRead)} KiB asked (${fmtKib(s.rand1.kibPerRead)} KiB received, headers included)`)
    const iopsLimit = (0.8 * 8 * 1000) / RTT_MS
    add(scope, 'rand 8 readers >= 80% of 8/RTT reads/s', s.rand8.iops, iopsLimit, s.rand8.iops >= iopsLimit, `${fmt(s.rand8.iops)} vs ${fmt(iopsLimit)} /s (raw 8 clients ${fmt(c.raw.rand8.iops)} /s)`)
    add(scope, 'seq fetch <= 1.1 bytes per byte read', s.seq1.fetchPerByte, 1.1, s.seq1.fetchPerByte <= 1.1, `${fmtAmp(s.seq1.fetchPerByte)} (1 reader), ${fmtAmp(s.seq4.fetchPerByte)} (${SEQ_READERS} readers, not judged)`)
    const src = results.sourceSeq
    add(scope, '2nd pass >= 0.5x source from page cache', s.warm.mbps, 0.5 * src, s.warm.mbps >= 0.5 * src, `${fmt(s.warm.mbps)} vs 0.5 x ${fmt(src)} MB/s; ${fmt(s.warm.fetched / 1e6)} MB fetched during it`)
  }
  if (results.rss) {
    const limit = RSS_CACHE_MIB + RSS_SLACK_MIB
    const r = results.rss
    add('4 GiB seq', `peak RSS <= cache bound + ${RSS_SLACK_MIB} MiB`, r.peakRssMiB, limit, r.peakRssMiB <= limit && r.bytesRead === BIG_IMAGE_BYTES, `${fmt(r.peakRssMiB)} vs ${RSS_CACHE_MIB} + ${RSS_SLACK_MIB} MiB (${fmt(r.bytesRead / 2 ** 20)} MiB read; ${fmt(r.peakWithCheckMiB)} after the slice check)`)
  } else add('4 GiB seq', `peak RSS <= cache bound + ${RSS_SLACK_MIB} MiB`, undefined, undefined, undefined, 'part rss not run')
  const local = results.local?.mounts
  if (local?.qemu) {
    for (const key of ['file', 'mmap']) {
      const m = local[key]
      add('local', `snapmount ${key} seq >= QEMU FUSE export`, m.seqCold, local.qemu.seqCold, m.seqCold >= local.qemu.seqCold, `${fmt(m.seqCold)} vs ${fmt(local.qemu.seqCold)} MB/s`)
    }
  } else add('local', 'snapmount seq >= QEMU FUSE export', undefined, undefined, undefined, local ? 'QEMU FUSE export not measured' : 'part local not run')
  const loopback = results.remote?.['http-0ms']
  if (loopback?.mounts.snapmount) bestPeerTarget('HTTP 0 ms', loopback, add)
  else add('HTTP 0 ms', 'seq 1 reader >= 1.5x best peer', undefined, undefined, undefined, 'part http-0ms not run')
  for (const proto of ['http', 's3']) cpuTargets(results, proto, add)
  startTarget(results.local?.starts?.mounts, { key: 'file', source: 'local file', peers: ['qemu'], notRun: 'part local not run' }, add)
  startTarget(results.remote?.['http-0ms']?.starts?.mounts, { key: 'snapmount', source: 'HTTP, 0 ms', peers: ['httpfs2', 'rclone', 'qemu'], notRun: 'part http-0ms not run' }, add)
  kernelTargets(results, add)
  // Only when the boot part ran: a run of the other parts prints the targets it always did.
  // Issue 19's "with profile" rows get the same three limits, on their own lines, when they ran.
  if (results.boot) for (const proto of ['http', 's3']) for (const profile of [false, true]) bootTargets(results.boot, proto, profile, add)
  // Issue 18's rows only when its part ran: runs from before it have no such field.
  if (results.diskCache) diskCacheTargets(results.diskCache, add)
  manifestTargets(results, add)
  return targets
}

/** Issue 16's limits on a cold boot at RTT_MS: over the local file, over the best peer, server bytes over guest bytes. */
export const BOOT_LIMITS = { overLocal: 1.5, overBestPeer: 0.5, bytesOverGuest: 2 }

/**
 * Issue 16's targets on snapmount's `proto` boot at RTT_MS, from the boot part's rows: the plain
 * mount's, or (`profile`) the same mount's with a boot profile, which only a run that had that
 * row gets (issue 16 allows the plain boot to miss a target where the boot is a chain of
 * dependent reads, the profile being the remedy; its lines show whether it is).
 */
function bootTargets(boot, proto, profile, add) {
  const scope = `boot ${SCOPES[proto]} ${RTT_MS} ms${profile ? ', with profile' : ''}`
  const s = boot.rows[`snapmount-${proto}-${RTT_MS}ms${profile ? '-profile' : ''}`]
  if (profile && !s) return
  const local = boot.rows.local
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`
  if (s?.medianMs === undefined) {
    add(scope, 'boot targets', undefined, undefined, undefined, s?.note ?? `snapmount ${SCOPES[proto]} at ${RTT_MS} ms not measured`)
    return
  }
  const { overLocal, overBestPeer, bytesOverGuest } = BOOT_LIMITS
  if (local?.medianMs === undefined) add(scope, `boot <= ${overLocal}x local file`, s.medianMs, undefined, undefined, 'local file not measured')
  else add(scope, `boot <= ${overLocal}x local file`, s.medianMs, overLocal * local.medianMs, s.medianMs <= overLocal * local.medianMs, `${secs(s.medianMs)} vs ${overLocal} x ${secs(local.medianMs)}`)
  const peers = Object.entries(boot.rows).filter(([, r]) => r.group === 'peer' && r.proto === proto && r.rttMs === RTT_MS && r.medianMs !== undefined)
  const best = peers.reduce((b, [key, r]) => (r.medianMs < (b?.medianMs ?? Infinity) ? { key, medianMs: r.medianMs } : b), undefined)
  const failed = Object.values(boot.rows).filter((r) => r.group === 'peer' && r.proto === proto && r.medianMs === undefined).map((r) => r.title)
  const failedNote = failed.length ? `; not booted: ${failed.join(', ')}` : ''
  if (!best) add(scope, `boot <= ${overBestPeer}x best peer`, s.medianMs, undefined, undefined, `no peer booted${failedNote}`)
  else add(scope, `boot <= ${overBestPeer}x best peer`, s.medianMs, overBestPeer * best.medianMs, s.medianMs <= overBestPeer * best.medianMs, `${secs(s.medianMs)} vs ${overBestPeer} x ${secs(best.medianMs)} (${best.key})${failedNote}`)
  const ratio = s.serverBytes / s.guestBytes
  const known = Number.isFinite(ratio)
  add(scope, `server bytes <= ${bytesOverGuest}x guest bytes`, known ? ratio : undefined, bytesOverGuest, known ? ratio <= bytesOverGuest : undefined, known ? `${fmt(s.serverBytes / 2 ** 20)} vs ${bytesOverGuest} x ${fmt(s.guestBytes / 2 ** 20)} MiB (${fmtAmp(ratio)}x)` : 'bytes not known')
}

/** Issue 18's targets, on the disk-cache part's numbers (bench/parts/disk-cache.mjs). */
function diskCacheTargets(d, add) {
  const scope = `disk cache ${d.rttMs} ms`
  const served = d.restart.seq.serverBytes + d.restart.rand.serverBytes
  add(scope, 'restart: 0 bytes from the server', served, 0, served === 0, `${served} bytes for the 1 GiB re-read and the random reads`)
  const seq = d.restart.seq.mbps / d.localFile.seqMbps
  add(scope, 'restart seq >= 0.8x local file backend', seq, 0.8, seq >= 0.8, `${fmt(d.restart.seq.mbps)} vs ${fmt(d.localFile.seqMbps)} MB/s`)
  const rand = d.restart.rand.iops / d.localFile.randIops
  add(scope, 'restart 4K O_DIRECT >= 0.8x local file backend', rand, 0.8, rand >= 0.8, `${fmt(d.restart.rand.iops)} vs ${fmt(d.localFile.randIops)} reads/s`)
  const c = d.crash
  // Reuse in committed blocks (bench/parts/disk-cache.mjs says why); the origin bytes beside it.
  add(scope, `crash: ${c.crashes} x kill -9, image right, reuse >= 99 %`, c.reuse, 0.99, c.shaOk && c.reuse >= 0.99, `${c.shaOk ? 'hash right' : 'HASH WRONG'}; ${c.committedRefetched} of ${c.committedChecked} committed blocks fetched again after restarts (${fmtShare(c.reuse)} reused); origin: ${fmtShare(c.byteReuse)} of ${fmt(c.fetchedBeforeKills / 2 ** 20)} MiB fetched before the kills reused, ${fmt(c.wastedBytes / 2 ** 20)} MiB fetched again, ${fmt(c.lostAtKillsBytes / 2 ** 20)} MiB uncommitted at the kills`)
  const k = d.corruption
  const once = k.askedBytes === k.damaged * 128 * 1024
  add(scope, `corruption: ${k.damaged} blocks, 0 wrong bytes, each refetched once`, k.askedBytes, k.damaged * 128 * 1024, k.shaOk && once, `${k.shaOk ? 'hash right' : 'HASH WRONG'}; ${k.askedBytes} bytes asked of the server (${k.damaged} x 128 KiB = ${k.damaged * 128 * 1024}); ${k.logged} logged`)
  const { on, off } = d.firstPass
  const cost = on.cpuSecondsPerGiB / off.cpuSecondsPerGiB
  // The floor: what digests, direct writes and syncs cost alone (lib/disk-cache-floor.mjs), on top of the pass without.
  const { floorCpuSecondsPerGiB: floorCpu, leastRatio } = d.firstPass
  const floor = floorCpu === undefined ? '' : `; at the least ${leastRatio.toFixed(2)}x (writes and digests alone: ${fmtCpu(floorCpu)} s/GiB)`
  add(scope, 'first pass CPU <= 1.05x without a disk cache', cost, 1.05, cost <= 1.05, `${fmtCpu(on.cpuSecondsPerGiB)} vs ${fmtCpu(off.cpuSecondsPerGiB)} s/GiB; ${fmt(on.mbps)} vs ${fmt(off.mbps)} MB/s${floor}`)
}

/**
 * Issue 20's targets, in every remote condition whose run had snapmount with a manifest (runs
 * from before it have none, and no line): its sequential read against snapmount's without, its
 * random 4 KiB p50, and the bit-flipping row (0 wrong bytes served, every damaged block logged).
 */
function manifestTargets(results, add) {
  for (const c of Object.values(results.remote ?? {})) {
    const m = c.mounts[MANIFEST_KEY]
    const s = c.mounts.snapmount
    if (!m || !s) continue
    const scope = `${SCOPES[c.proto]} ${c.rttMs} ms`
    const ratio = m.seq1.mbps / s.seq1.mbps
    add(scope, `manifest: seq 1 reader >= ${MANIFEST_SEQ_RATIO}x without`, ratio, MANIFEST_SEQ_RATIO, ratio >= MANIFEST_SEQ_RATIO, `${fmt(m.seq1.mbps)} vs ${fmt(s.seq1.mbps)} MB/s (${ratio.toFixed(2)}x); ${SEQ_READERS} readers ${(m.seq4.mbps / s.seq4.mbps).toFixed(2)}x (not judged)`)
    const limit = s.rand1.p50Ms + MANIFEST_P50_SLACK_MS
    add(scope, `manifest: rand 1 reader p50 <= without + ${MANIFEST_P50_SLACK_MS} ms`, m.rand1.p50Ms, limit, m.rand1.p50Ms <= limit, `${fmtMs(m.rand1.p50Ms)} vs ${fmtMs(s.rand1.p50Ms)} + ${MANIFEST_P50_SLACK_MS} ms`)
    const flips = c.corruption
    if (!flips) continue
    const w = flips.with
    const pass = w.wrongBytes === 0 && w.failedReads === 0 && w.flippedBlocks > 0 && w.loggedBlocks === w.flippedBlocks && w.bytesRead > 0
    add(scope, 'manifest: bit-flipping proxy, 0 wrong bytes, every bad block logged', w.wrongBytes, 0, pass, `${w.wrongBytes} wrong bytes, ${w.failedReads} failed reads, ${w.loggedBlocks} of ${w.flippedBlocks} flipped blocks logged (${w.flips} of ${w.responses} responses flipped); without a manifest ${flips.without.wrongBytes} wrong bytes`)
  }
}

/** Issues 5 and 17: snapmount's one sequential reader in condition `c` against 1.5x the best peer's. */
function bestPeerTarget(scope, c, add) {
  const s = c.mounts.snapmount
  const peers = Object.entries(c.mounts).filter(([k]) => k !== 'snapmount' && k !== MANIFEST_KEY)
  const best = peers.reduce((b, [k, m]) => (m.seq1.mbps > (b?.mbps ?? -1) ? { key: k, mbps: m.seq1.mbps } : b), undefined)
  if (best) add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, 1.5 * best.mbps, s.seq1.mbps >= 1.5 * best.mbps, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(best.mbps)} MB/s (${best.key})`)
  else add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, undefined, undefined, 'no peer measured')
}

/**
 * What the FUSE path alone costs in this run, for the CPU rows: the null backend's first read
 * (the local part), which no backend can go under.
 */
function floorNote(results) {
  const floor = results.local?.mounts?.null?.seqColdCpu?.daemonSecondsPerGiB
  return floor === undefined ? '' : `; null backend ${fmtCpu(floor)}`
}

/** Issue 17's CPU target on snapmount's 1-reader sequential read, in every condition of `proto` run. */
function cpuTargets(results, proto, add) {
  const limit = CPU_LIMITS[proto]
  const target = `daemon CPU <= ${limit.toFixed(1)} s per GiB, seq 1 reader`
  const conditions = Object.values(results.remote ?? {}).filter((c) => c.proto === proto && c.mounts.snapmount)
  if (!conditions.length) add(SCOPES[proto], target, undefined, undefined, undefined, `no ${proto} part run`)
  for (const c of conditions) {
    const { seq1, seq4 } = c.mounts.snapmount
    const value = seq1.cpu?.daemonSecondsPerGiB
    const detail =
      value === undefined
        ? 'not measured (the daemon was gone)'
        : `${fmtCpu(value)} vs ${limit.toFixed(1)} s/GiB at ${fmt(seq1.mbps)} MB/s, machine idle ${fmtShare(seq1.cpu.idleShare)}; ` +
          `${fmtCpu(seq4.cpu?.daemonSecondsPerGiB)} with ${SEQ_READERS} readers (not judged)${floorNote(results)}`
    add(`${SCOPES[proto]} ${c.rttMs} ms`, target, value, limit, value === undefined ? undefined : value <= limit, detail)
  }
}

/**
 * Issue 17's targets at RTT_MS over kernel TCP (the part http-kernel): snapmount's
 * one sequential reader against 1.5x rclone's and 1.5x one curl stream's, and its CPU per GiB.
 */
function kernelTargets(results, add) {
  const c = results.kernelTcp?.http
  const scope = `HTTP ${RTT_MS} ms kernel TCP`
  const s = c?.mounts.snapmount
  if (!s) {
    add(scope, 'kernel-TCP targets', undefined, undefined, undefined, c ? c.notes.join('; ') || 'snapmount not measured' : 'part http-kernel not run')
    return
  }
  const rclone = c.mounts.rclone
  if (rclone) add(scope, 'seq 1 reader >= 1.5x rclone', s.seq1.mbps, 1.5 * rclone.seq1.mbps, s.seq1.mbps >= 1.5 * rclone.seq1.mbps, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(rclone.seq1.mbps)} MB/s`)
  else add(scope, 'seq 1 reader >= 1.5x rclone', s.seq1.mbps, undefined, undefined, 'rclone not measured')
  add(scope, 'seq 1 reader >= 1.5x one raw stream', s.seq1.mbps, 1.5 * c.raw.seq1, s.seq1.mbps >= 1.5 * c.raw.seq1, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(c.raw.seq1)} MB/s (one curl stream)`)
  const limit = CPU_LIMITS.http
  const value = s.seq1.cpu?.daemonSecondsPerGiB
  const detail = value === undefined ? 'not measured (the daemon was gone)' : `${fmtCpu(value)} vs ${limit.toFixed(1)} s/GiB at ${fmt(s.seq1.mbps)} MB/s, machine idle ${fmtShare(s.seq1.cpu.idleShare)}${floorNote(results)}`
  add(scope, `daemon CPU <= ${limit.toFixed(1)} s per GiB, seq 1 reader`, value, limit, value === undefined ? undefined : value <= limit, detail)
}

/**
 * Issue 17's start target on the start table's row of snapmount `key` in `starts` (a part's
 * starts.mounts), with the fastest of its `peers` beside it.
 */
function startTarget(starts, { key, source, peers, notRun }, add) {
  const target = `snapmount ${source}: start to mounted <= ${START_LIMIT_MS / 1000} s`
  const s = starts?.[key]
  if (!s) {
    add('start', target, undefined, undefined, undefined, starts ? 'snapmount start not measured' : notRun)
    return
  }
  const measured = peers.map((peer) => starts[peer]).filter(Boolean)
  const best = measured.reduce((b, p) => (p.medianMs < (b?.medianMs ?? Infinity) ? p : b), undefined)
  const bestNote = best ? `; fastest peer ${best.title} ${fmt(best.medianMs)} ms` : ''
  add('start', target, s.medianMs, START_LIMIT_MS, s.medianMs <= START_LIMIT_MS, `${fmt(s.medianMs)} vs ${START_LIMIT_MS} ms, median of ${s.ms.length}${bestNote}`)
}

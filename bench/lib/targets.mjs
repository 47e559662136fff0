// The targets of issue 5, evaluated from one run's results (the object written as JSON): a pure
// function of them, so it is tested without running anything.

import { fmt, fmtAmp, fmtKib, fmtMs } from './format.mjs'
import { BIG_IMAGE_BYTES, PROXY_WINDOW_BYTES, RSS_CACHE_MIB, RSS_SLACK_MIB, RTT_MS, SEQ_READERS } from './settings.mjs'

const SCOPES = { http: 'HTTP', s3: 'S3' }

/**
 * Each target as PASS, FAIL or n/a (not measured in this run), with the numbers behind it:
 * { scope, target, value, limit, pass (true, false, or undefined for n/a), detail }.
 * The remote targets are evaluated at RTT_MS for HTTP and for S3 alike.
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
    const peers = Object.entries(c.mounts).filter(([k]) => k !== 'snapmount')
    const best = peers.reduce((b, [k, m]) => (m.seq1.mbps > (b?.mbps ?? -1) ? { key: k, mbps: m.seq1.mbps } : b), undefined)
    if (best) add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, 1.5 * best.mbps, s.seq1.mbps >= 1.5 * best.mbps, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(best.mbps)} MB/s (${best.key})`)
    else add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, undefined, undefined, 'no peer measured')
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
  return targets
}

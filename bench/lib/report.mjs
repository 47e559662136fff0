// The printed report: every table and the lines around them, pure functions of the results (the
// object written as JSON), so they are tested without running anything.

import { formatSummary } from './boot-trace.mjs'
import { fmt, fmtAmp, fmtCount, fmtCpu, fmtKib, fmtMs, fmtShare, latency, okOr, table } from './format.mjs'
import { RCLONE_SETTINGS } from './peers.mjs'
import { IMAGE_BYTES, MANIFEST_KEY, RSS_CACHE_MIB, RTT_MS, SEQ_READERS } from './settings.mjs'
import { max, min } from './stats.mjs'
import { START_LIMIT_MS } from './targets.mjs'

const LOCAL_TITLES = { file: 'snapmount file', mmap: 'snapmount mmap', null: 'null backend', qemu: 'QEMU FUSE export' }
const PEER_TITLES = { snapmount: 'snapmount', [MANIFEST_KEY]: 'snapmount + manifest', httpfs2: 'httpfs2', rclone: 'rclone mount', qemu: 'QEMU curl+FUSE', s3fs: 's3fs' }

/** A read's daemon CPU per GiB with the machine's idle share during it: "1.88 (12 %)". */
function cpuCell(cpu) {
  return `${fmtCpu(cpu?.daemonSecondsPerGiB)} (${fmtShare(cpu?.idleShare)})`
}

/** The local part's table: a column per mount, then the source file read directly. */
export function localReport({ source, mounts }) {
  const keys = ['file', 'mmap', 'null', 'qemu'].filter((k) => mounts[k])
  const cols = keys.map((k) => mounts[k])
  const rows = [['measurement', ...keys.map((k) => LOCAL_TITLES[k]), 'source file directly']]
  const row = (label, cell, sourceCell) => rows.push([label, ...cols.map(cell), sourceCell])
  row('daemon start to "mounted" (ms)', (m) => fmt(m.mountMs), '-')
  row('seq MB/s, 1st read after mount (median of cold daemons)', (m) => `${fmt(m.seqCold)} (${(m.seqCold / source.seq).toFixed(2)}x)`, `${fmt(source.seq)} (page cache)`)
  row('seq MB/s, 2nd read, same mount', (m) => `${fmt(m.seqWarm)} (${(m.seqWarm / source.seq).toFixed(2)}x)`, fmt(source.seq))
  row('  daemon CPU s per GiB, 1st read (machine idle during it)', (m) => cpuCell(m.seqColdCpu), '-')
  row('  daemon CPU s per GiB, 2nd read (machine idle during it)', (m) => cpuCell(m.seqWarmCpu), '-')
  row('4K randread IOPS, 1 reader (mount O_DIRECT; source buffered)', (m) => fmt(m.rand1.iops), fmt(source.rand1.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand1), latency(source.rand1))
  row('4K randread IOPS, 8 readers', (m) => fmt(m.rand8.iops), fmt(source.rand8.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand8), latency(source.rand8))
  row('source 4K randread IOPS O_DIRECT, 1 / 8 readers', () => '-', source.rand1Direct ? `${fmt(source.rand1Direct.iops)} / ${fmt(source.rand8Direct.iops)}` : 'n/a')
  row('sha256 of the whole file (cached read / O_DIRECT read)', (m) => `${okOr(m.shaCached)} / ${okOr(m.shaDirect)}`, `${source.sha.slice(0, 12)}... (null: zeros)`)
  row('daemon peak RSS MiB (VmHWM)', (m) => fmt(m.peakRssMiB), '-')
  row('daemon exit status after SIGTERM', (m) => String(m.exit), '-')
  return table(rows)
}

/** One remote condition's table: a column per mount, then the raw client. */
export function remoteReport(c, sourceSeq, { seqSeconds }) {
  const keys = Object.keys(c.mounts)
  const cols = keys.map((k) => c.mounts[k])
  const rawTitle = c.proto === 'http' ? 'raw client (curl; undici for 4K)' : 'raw client (AWS SDK)'
  const rows = [['measurement', ...keys.map((k) => PEER_TITLES[k] ?? k), rawTitle]]
  const row = (label, cell, rawCell = '-') => rows.push([label, ...cols.map(cell), rawCell])
  const gib = (m) => (m.seq1.bytesRead < IMAGE_BYTES ? ` [${fmt(m.seq1.bytesRead / 2 ** 20)} MiB in ${seqSeconds} s]` : '')
  row('daemon start to "mounted" (ms), median of 4 daemons', (m) => fmt(m.mountMs))
  row('seq MB/s, 1 reader, cold (raw: 1 stream)', (m) => `${fmt(m.seq1.mbps)}${gib(m)}`, fmt(c.raw.seq1))
  row(`seq MB/s, ${SEQ_READERS} readers on own quarters, aggregate (raw: ${SEQ_READERS} streams)`, (m) => fmt(m.seq4.mbps), fmt(c.raw.seq4))
  row('  server bytes per byte read, 1 reader (GETs; connections)', (m) => `${fmtAmp(m.seq1.fetchPerByte)} (${fmtCount(m.seq1.gets)}; ${m.seq1.connections})`)
  row(`  server bytes per byte read, ${SEQ_READERS} readers`, (m) => fmtAmp(m.seq4.fetchPerByte))
  row('  daemon CPU s per GiB read, 1 reader (machine idle during it)', (m) => cpuCell(m.seq1.cpu))
  row(`  daemon CPU s per GiB read, ${SEQ_READERS} readers (machine idle during it)`, (m) => cpuCell(m.seq4.cpu))
  row(`  proxy CPU s per GiB read, 1 / ${SEQ_READERS} readers (raw: 1 stream)`, (m) => `${fmtCpu(m.seq1.cpu?.proxySecondsPerGiB)} / ${fmtCpu(m.seq4.cpu?.proxySecondsPerGiB)}`, fmtCpu(c.raw.seq1ProxyCpuPerGiB))
  row('2nd pass over the 1-reader bytes, MB/s (x source from page cache)', (m) => `${fmt(m.warm.mbps)} (${(m.warm.mbps / sourceSeq).toFixed(2)}x)`, `source ${fmt(sourceSeq)}`)
  row('  MB fetched from the server during the 2nd pass', (m) => fmt(m.warm.fetched / 1e6))
  row('  daemon CPU s per GiB during the 2nd pass (machine idle during it)', (m) => cpuCell(m.warm.cpu))
  row('4K randread IOPS, 1 reader, O_DIRECT (raw: 1 client)', (m) => fmt(m.rand1.iops), fmt(c.raw.rand1.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand1), latency(c.raw.rand1))
  row('  KiB received per 4 KiB read (KiB asked in Range; GETs per read)', (m) => `${fmtKib(m.rand1.kibPerRead)} (${fmtKib(m.rand1.askedKibPerRead)}; ${m.rand1.getsPerRead.toFixed(2)})`)
  row('4K randread IOPS, 8 readers (raw: 8 clients)', (m) => fmt(m.rand8.iops), fmt(c.raw.rand8.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand8), latency(c.raw.rand8))
  row('  KiB received per 4 KiB read (KiB asked in Range)', (m) => `${fmtKib(m.rand8.kibPerRead)} (${fmtKib(m.rand8.askedKibPerRead)})`)
  row('daemon peak RSS MiB (max VmHWM of its 4 daemons)', (m) => fmt(m.peakRssMiB))
  row('bytes check: sha256 of O_DIRECT slices on each daemon', (m) => okOr(m.slicesOk))
  row('daemon exit status after SIGTERM', (m) => [...new Set(m.exits.map(String))].join(', '))
  return table(rows)
}

/** The kernel-TCP part's table: a column per mount, then one curl stream. */
export function kernelReport(c) {
  const keys = Object.keys(c.mounts)
  const cols = keys.map((k) => c.mounts[k])
  const rows = [['measurement', ...keys.map((k) => PEER_TITLES[k] ?? k), 'raw client (curl)']]
  const row = (label, cell, rawCell = '-') => rows.push([label, ...cols.map(cell), rawCell])
  row('daemon start to "mounted" (ms)', (m) => fmt(m.mountMs))
  row('seq MB/s, 1 reader, cold (raw: 1 stream)', (m) => `${fmt(m.seq1.mbps)}${m.seq1.bytesRead < IMAGE_BYTES ? ` [${fmt(m.seq1.bytesRead / 2 ** 20)} MiB]` : ''}`, fmt(c.raw.seq1))
  row('  daemon CPU s per GiB read (machine idle during it)', (m) => cpuCell(m.seq1.cpu))
  row('daemon peak RSS MiB (VmHWM)', (m) => fmt(m.peakRssMiB))
  row('bytes check: sha256 of O_DIRECT slices', (m) => okOr(m.sliceOk))
  row('daemon exit status after SIGTERM', (m) => String(m.exit))
  return table(rows)
}

/**
 * Each part's start measurements (local, and the 0 ms remote conditions), in run order: the
 * part's title and its starts ({ mounts, notes }).
 */
function startSources(results) {
  const sources = []
  if (results.local?.starts) sources.push({ title: 'local file', starts: results.local.starts, judged: 'file' })
  for (const c of Object.values(results.remote ?? {})) if (c.starts) sources.push({ title: c.title, starts: c.starts, judged: c.proto === 'http' ? 'snapmount' : undefined })
  return sources
}

/**
 * The start table: spawn to mounted for every mount of the parts run, fresh daemons with nothing
 * read; undefined when no part measured starts. The rows issue 17's target judges (snapmount on
 * a local file and over HTTP) say PASS or FAIL in the last column, as the targets table does.
 */
export function startReport(results) {
  const sources = startSources(results)
  if (!sources.length) return undefined
  const rows = [['source', 'daemon', 'median ms', 'min - max ms', 'starts', `target (issue 17)`]]
  for (const { title, starts, judged } of sources) {
    for (const [key, s] of Object.entries(starts.mounts)) {
      const target = key === judged ? `<= ${START_LIMIT_MS} ms: ${s.medianMs <= START_LIMIT_MS ? 'PASS' : 'FAIL'}` : '-'
      rows.push([title, s.title, fmt(s.medianMs), `${fmt(min(s.ms))} - ${fmt(max(s.ms))}`, String(s.ms.length), target])
    }
  }
  return table(rows)
}

export function targetsReport(targets) {
  const rows = [['scope', 'target', 'result', 'numbers']]
  for (const t of targets) rows.push([t.scope, t.target, t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : 'FAIL', t.detail])
  return table(rows)
}

/** The local part's title lines and table. */
export function localSection(local, settings) {
  return (
    `\nLocal: the 1 GiB image as a local file (page-cached), ${settings.seqDaemons} cold daemons per mount for the sequential rows, ${settings.fioSeconds} s of fio per IOPS figure; part ${local.seconds.toFixed(0)} s\n` +
    `QEMU FUSE export: ${local.qemuNote}; qemu-storage-daemon --blockdev driver=file,read-only=on --export type=fuse,writable=off\n\n` +
    `${localReport(local)}\n`
  )
}

/** One remote condition's title lines, notes and table. */
export function remoteSection(c, sourceSeq, settings) {
  return (
    `\n${c.title}: ${c.server} on 127.0.0.1 through tools/delay-proxy.mjs (${c.rttMs / 2} ms each way, counting bytes); part ${c.seconds.toFixed(0)} s, load ${c.loadBefore.toFixed(2)} -> ${c.loadAfter.toFixed(2)}\n` +
    `proxy check: 1 raw stream straight to the server ${fmt(c.raw.seqDirect)} MB/s; through the proxy 1 / ${SEQ_READERS} / 8 streams ${fmt(c.raw.seq1)} / ${fmt(c.raw.seq4)} / ${fmt(c.raw.seq8)} MB/s (a mount near the last figure is held by the proxy)\n` +
    c.notes.map((note) => `${note}\n`).join('') +
    `\n${remoteReport(c, sourceSeq, settings)}\n`
  )
}

/** The kernel-TCP part's title lines, notes and table (just the notes when it could not run). */
export function kernelSection(c) {
  const sysctls = Object.entries(c.sysctls)
    .map(([name, value]) => `${name.replace(/^net\.ipv4\./, '')} ${value}`)
    .join(', ')
  const head = `\n${c.title}: ${c.server} and every daemon in a network namespace delaying each packet ${c.rttMs / 2} ms in the kernel (tools/delay-netns.mjs); one cold daemon per mount; part ${c.seconds.toFixed(0)} s, load ${c.loadBefore.toFixed(2)} -> ${c.loadAfter.toFixed(2)}\n`
  const notes = c.notes.map((note) => `${note}\n`).join('')
  if (!Object.keys(c.mounts).length) return `${head}${notes}`
  return `${head}TCP inside: ${sysctls}\n${notes}\n${kernelReport(c)}\n`
}

/**
 * Issue 20's overhead table: each remote condition with a manifest mount, snapmount without and
 * with the manifest side by side; then the bit-flipping rows. '' when no condition had one.
 */
export function integritySection(results) {
  const conditions = Object.values(results.remote ?? {}).filter((c) => c.mounts[MANIFEST_KEY] && c.mounts.snapmount)
  if (!conditions.length) return ''
  const both = (pick, show) => (c) => {
    const [s, m] = [pick(c.mounts.snapmount), pick(c.mounts[MANIFEST_KEY])]
    return `${show(s)} / ${show(m)}`
  }
  const rows = [['measurement (without / with the manifest)', ...conditions.map((c) => c.title)]]
  const row = (label, cell) => rows.push([label, ...conditions.map(cell)])
  row('seq MB/s, 1 reader', (c) => `${both((m) => m.seq1.mbps, fmt)(c)} (${(c.mounts[MANIFEST_KEY].seq1.mbps / c.mounts.snapmount.seq1.mbps).toFixed(2)}x)`)
  row(`seq MB/s, ${SEQ_READERS} readers`, (c) => `${both((m) => m.seq4.mbps, fmt)(c)} (${(c.mounts[MANIFEST_KEY].seq4.mbps / c.mounts.snapmount.seq4.mbps).toFixed(2)}x)`)
  row('  daemon CPU s per GiB, 1 reader', both((m) => m.seq1.cpu?.daemonSecondsPerGiB, fmtCpu))
  row(`  daemon CPU s per GiB, ${SEQ_READERS} readers`, both((m) => m.seq4.cpu?.daemonSecondsPerGiB, fmtCpu))
  const delta = (ms) => (ms < 0 ? `-${fmtMs(-ms)}` : `+${fmtMs(ms)}`)
  row('4K randread p50 ms, 1 reader', (c) => `${both((m) => m.rand1.p50Ms, fmtMs)(c)} (${delta(c.mounts[MANIFEST_KEY].rand1.p50Ms - c.mounts.snapmount.rand1.p50Ms)})`)
  row('4K randread IOPS, 8 readers', both((m) => m.rand8.iops, fmt))
  row('daemon start to "mounted" (ms)', both((m) => m.mountMs, fmt))
  row('daemon peak RSS MiB', both((m) => m.peakRssMiB, fmt))
  let text = `
Integrity manifest (issue 20): snapmount without / with a manifest of 128 KiB blocks (snapmount manifest create's defaults: BLAKE3), same daemons and reads as the tables above

${table(rows)}
`
  for (const c of conditions.filter((c) => c.corruption)) {
    const { flipShare, without, with: w } = c.corruption
    const line = (r) => `${fmt(r.bytesRead / 2 ** 20)} MiB read, ${r.wrongBytes} wrong bytes, ${r.failedReads} failed reads, ${r.flips} of ${r.responses} responses flipped, ${r.loggedBlocks} of ${r.flippedBlocks} flipped blocks logged`
    text += `bit-flipping proxy in front of nginx (${flipShare * 100} % of range responses get a flipped bit, headers and ETag kept), the whole image read once:
  without a manifest: ${line(without)}
  with the manifest:  ${line(w)}
`
  }
  return text
}

/** What follows the remote tables: rclone's settings (when it ran) and the peers' notes. */
export function peersSection(results) {
  let text = ''
  const conditions = [...Object.values(results.remote ?? {}), ...Object.values(results.kernelTcp ?? {})]
  if (conditions.some((c) => c.mounts.rclone)) text += `\nrclone mount: --read-only, otherwise defaults: ${RCLONE_SETTINGS}\n`
  const peerNotes = Object.entries(results.peers).map(([k, note]) => `${k}: ${note}`)
  if (peerNotes.length) text += `peers: ${peerNotes.join('; ')}\n`
  return text
}

export function rssSection(r) {
  return (
    `\nRSS: snapmount --cache-size-mib ${RSS_CACHE_MIB} reading the 4 GiB image from nginx (0 ms) once, sequentially: ${fmt(r.bytesRead / 2 ** 20)} MiB at ${fmt(r.mbps)} MB/s, ` +
    `server bytes per byte read ${fmtAmp(r.fetchPerByte)}, daemon CPU ${fmtCpu(r.cpu?.daemonSecondsPerGiB)} s per GiB (machine idle ${fmtShare(r.cpu?.idleShare)}); ` +
    `peak RSS ${fmt(r.peakRssMiB)} MiB during the read, ${fmt(r.peakWithCheckMiB)} MiB after the O_DIRECT slice check; slices ${okOr(r.sliceOk)}; exit ${r.exit}\n`
  )
}

/** The disk-cache part's lines (issue 18). */
export function diskCacheSection(d) {
  const { on, off } = d.firstPass
  return (
    `\nDisk cache: the 1 GiB image from nginx at ${d.rttMs} ms RTT through the counting proxy; part ${d.seconds.toFixed(0)} s, load ${d.loadBefore.toFixed(2)} -> ${d.loadAfter.toFixed(2)}\n` +
    `first pass: ${fmt(on.mbps)} MB/s, ${fmtCpu(on.cpuSecondsPerGiB)} CPU s/GiB with an empty disk cache; ${fmt(off.mbps)} MB/s, ${fmtCpu(off.cpuSecondsPerGiB)} CPU s/GiB without${floorNote(d.firstPass)}\n` +
    `after a restart (page cache dropped): seq ${fmt(d.restart.seq.mbps)} MB/s, ${fmtCpu(d.restart.seq.cpuSecondsPerGiB)} CPU s/GiB (${d.restart.seq.serverBytes} server bytes); 4K O_DIRECT ${fmt(d.restart.rand.iops)} reads/s, p50 / p99 ${latency(d.restart.rand)}; ` +
    `local file backend (page cache dropped): seq ${fmt(d.localFile.seqMbps)} MB/s, ${fmtCpu(d.localFile.seqCpuSecondsPerGiB)} CPU s/GiB, 4K ${fmt(d.localFile.randIops)} reads/s\n` +
    restartRounds(d.restartRounds) +
    `corruption: ${d.corruption.damaged} blocks (${Object.entries(d.corruption.kinds).map(([k, n]) => `${n} ${k}`).join(', ')}); hash ${okOr(d.corruption.shaOk)}; ${d.corruption.askedBytes} bytes asked again; ${d.corruption.logged} logged\n` +
    `crash: ${d.crash.crashes} x kill -9 during the fill; hash ${okOr(d.crash.shaOk)}; ${d.crash.committedRefetched} of ${d.crash.committedChecked} committed blocks fetched again; ${fmt(d.crash.fetchedBeforeKills / 2 ** 20)} MiB fetched before the kills, ${fmt(d.crash.wastedBytes / 2 ** 20)} MiB fetched again, ${fmt(d.crash.lostAtKillsBytes / 2 ** 20)} MiB uncommitted at the kills\n`
  )
}

/**
 * What the disk cache's writes cost at the least (lib/disk-cache-floor.mjs), and the ratio no
 * first pass could go under. Results from before it: nothing.
 */
function floorNote({ floorCpuSecondsPerGiB: floor, leastRatio }) {
  if (floor === undefined) return ''
  return `; digests, direct writes and syncs alone cost ${fmtCpu(floor)} CPU s/GiB, so no first pass into the disk cache can cost less than ${leastRatio.toFixed(2)}x the one without`
}

/** The restart's rounds one by one (results before they had rounds: none), each restart read then the local backend's. */
function restartRounds(rounds) {
  if (!rounds || rounds.length < 2) return ''
  const each = rounds.map((r, index) => `${index + 1}: seq ${fmt(r.seqMbps)} / ${fmt(r.localSeqMbps)} MB/s, 4K ${fmt(r.randIops)} / ${fmt(r.localRandIops)} reads/s`)
  return `  the restart's reads and the local backend's in ${rounds.length} rounds, one after the other (the numbers above are over all), disk cache / local: ${each.join('; ')}\n`
}

/** The start table with its title and the notes of mounts whose start was not measured; '' if no part measured starts. */
export function startSection(results) {
  const report = startReport(results)
  if (!report) return ''
  const notes = startSources(results).flatMap(({ starts }) => starts.notes)
  return (
    `\nStart to mounted: spawn until snapmount logs "mounted" (a peer: until mountinfo lists its mount), fresh daemons started one after the other, nothing read; ` +
    `remote sources through their 0 ms proxy\n${notes.map((note) => `${note}\n`).join('')}\n${report}\n`
  )
}

export function targetsSection(targets) {
  return `\nTargets (issues 5, 16-20: bench/README.md, "The targets table"; RTT = ${RTT_MS} ms, configured; n/a = not measured in this run)\n\n${targetsReport(targets)}\n`
}

/**
 * The boot part's table: a row per way of serving the image, its median boot time (and each
 * run's, with the 1-min load average when it began), that over the local file's, what the guest
 * read and what the server sent.
 */
export function bootReport(boot) {
  const floor = boot.rows.local?.medianMs
  const mib = (bytes) => (bytes === undefined ? '-' : fmt(bytes / 2 ** 20))
  const rows = [['mount', 'RTT', 'boot s (median)', 'runs s [load]', 'x local', 'guest read MiB (reads)', 'server sent MiB (x guest)']]
  for (const row of Object.values(boot.rows)) {
    if (row.medianMs === undefined) {
      rows.push([row.title, `${row.rttMs} ms`, row.note?.startsWith('failed') ? 'failed (below)' : 'not measured (below)', '', '', '', ''])
      continue
    }
    const guest = row.runs.at(-1)
    const served = row.serverBytes === undefined ? '-' : `${mib(row.serverBytes)} (${fmtAmp(row.serverBytes / row.guestBytes)}x)`
    rows.push([
      row.note ? `${row.title} (a run failed, below)` : row.title,
      `${row.rttMs} ms`,
      (row.medianMs / 1000).toFixed(1),
      row.runs.map((r) => `${(r.readyMs / 1000).toFixed(1)} [${r.load.toFixed(1)}]`).join(', '),
      floor ? (row.medianMs / floor).toFixed(2) : 'n/a',
      `${mib(row.guestBytes)} (${fmtCount(guest.guestReads)})`,
      served,
    ])
  }
  return table(rows)
}

/**
 * Issue 19's figures for the rows with a boot profile (their runs carry the daemon's `status`
 * after the boot): the boot over the local file's and over the same mount's without a profile,
 * the share of the guest's block lookups the cache answered (the reads that did not wait for the
 * network), and what the profile fetched against what the guest read. Empty without such rows.
 */
export function bootProfileReport(boot) {
  const floor = boot.rows.local?.medianMs
  const profiled = Object.entries(boot.rows).filter(([, row]) => row.runs?.some((r) => r.stats))
  if (profiled.length === 0) return ''
  const rows = [['mount', 'RTT', 'x local', 'x no profile', 'cache hits % (lookups)', 'prefetched MiB (x guest read)', 'read of it MiB', 'wasted MiB']]
  for (const [key, row] of profiled) {
    const plain = boot.rows[key.replace(/-(wrong-)?profile$/, '')]?.medianMs
    const run = row.runs.at(-1)
    const { cacheHits = 0, cacheMisses = 0, prefetch } = run.stats
    const lookups = cacheHits + cacheMisses
    rows.push([
      row.title,
      `${row.rttMs} ms`,
      floor && row.medianMs ? (row.medianMs / floor).toFixed(2) : 'n/a',
      plain && row.medianMs ? (row.medianMs / plain).toFixed(2) : 'n/a',
      lookups === 0 ? '-' : `${fmt((100 * cacheHits) / lookups)} (${fmtCount(lookups)})`,
      prefetch ? `${fmt(prefetch.prefetchedBytes / 2 ** 20)} (${run.guestBytes ? fmtAmp(prefetch.prefetchedBytes / run.guestBytes) : '-'}x)` : '-',
      prefetch ? fmt(prefetch.hitBytes / 2 ** 20) : '-',
      prefetch ? fmt(prefetch.wastedBytes / 2 ** 20) : '-',
    ])
  }
  return `\nBoot profiles (the last run of each row; the daemon's status after the boot):\n${table(rows)}\n`
}

/** The boot table with its title lines and the guest's read trace summarised under it. */
export function bootSection(boot) {
  const notes = [...Object.values(boot.rows).filter((row) => row.note).map((row) => `${row.title}, ${row.rttMs} ms: ${row.note}`), ...boot.notes].map((note) => `${note}\n`)
  const trace = boot.trace ? `
What the guest read (QEMU's trace of the local file's first boot, until the marker):
${formatSummary(boot.trace).join('\n')}
` : ''
  return (
    `
Boot: a Debian guest (${boot.image.split('/').at(-1)}) from QEMU's start to its ready marker, ${boot.accel} (${boot.accelReason}); ` +
    `cache=${boot.cache}, ${boot.overlay}=on, virtio-blk; cold (image dropped from the page cache, fresh daemon, new connections); ` +
    `median of ${boot.runs}; ${boot.rows['snapmount-http-0ms'] ? '0 ms: host loopback; ' : ''}${RTT_MS} ms: servers and their clients in a network namespace delaying every packet; ` +
    `load ${boot.load.before.toFixed(2)} -> ${boot.load.after.toFixed(2)}\n\n${bootReport(boot)}\n${bootProfileReport(boot)}${notes.join('')}${trace}`
  )
}

/** The last lines: host, load, where the JSON went, whether every check passed. */
export function footer(results, file) {
  return (
    `\n${results.host}${results.hostMemory ? `; ${results.hostMemory}` : ''}; 1-min load average ${results.load.before.toFixed(2)} before, ${results.load.after.toFixed(2)} after. MB/s = 10^6 bytes/s.\n` +
    `results: ${file}; total ${results.seconds.toFixed(0)} s; ${results.ok ? 'all checks passed' : 'FAILED: see MISMATCH or exit status above'}\n`
  )
}

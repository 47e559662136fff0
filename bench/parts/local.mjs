// The local part: the 1 GiB image as a page-cached local file through snapmount (file, mmap), the
// null backend and QEMU's FUSE export, beside the file read directly.

import { join } from 'node:path'
import { withCpu } from '../lib/cpu.mjs'
import { measureStarts, withDaemon } from '../lib/daemons.mjs'
import { fmt, okOr } from '../lib/format.mjs'
import { zeroSha256 } from '../lib/images.mjs'
import { qemuMount } from '../lib/peers.mjs'
import { progress } from '../lib/progress.mjs'
import { fioRand, fioSeq, sha256Direct, sha256File } from '../lib/readers.mjs'
import { IMAGE_BYTES, NAME, ROOT, SNAPMOUNT, SOURCE_SEQ_RUNS } from '../lib/settings.mjs'
import { max, median } from '../lib/stats.mjs'

/**
 * The source file read directly from the page cache, as the mounts are read (fio, 1 MiB buffered
 * reads): the reference of every "second pass" row. Median of SOURCE_SEQ_RUNS.
 */
export async function measureSourceSeq({ procs, image }) {
  await image.warm()
  const runs = []
  for (let i = 0; i < SOURCE_SEQ_RUNS; i++) runs.push((await fioSeq(procs, image.path, { bytesEach: IMAGE_BYTES })).mbps)
  progress(`source from page cache: seq ${fmt(median(runs))} MB/s (median of ${runs.map(fmt).join(', ')})`)
  return median(runs)
}

function localMounts(imagePath, qemu) {
  const mounts = [
    { key: 'file', title: 'snapmount file', command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=${imagePath}`] },
    { key: 'mmap', title: 'snapmount mmap', command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=mmap://${imagePath}`] },
    { key: 'null', title: 'null backend', command: (mnt) => ['node', join(ROOT, 'bench/null-daemon.mjs'), mnt, NAME, String(IMAGE_BYTES)] },
  ]
  // aio=threads, cache.direct=off: QEMU's defaults, reading through the host's page cache as snapmount does.
  if (qemu.path) mounts.push(qemuMount('qemu', 'QEMU FUSE export', `driver=file,filename=${imagePath}`, qemu))
  return mounts
}

/** The source directly: its sha256 (which also warms it), buffered sequential, 4 KiB random buffered and O_DIRECT. */
async function measureSource({ procs, image, settings }, sourceSeq) {
  const seconds = settings.fioSeconds
  const result = { sha: await sha256File(procs, image.path) }
  result.seq = sourceSeq
  result.rand1 = await fioRand(procs, image.path, { jobs: 1, direct: false, seconds })
  result.rand8 = await fioRand(procs, image.path, { jobs: 8, direct: false, seconds })
  progress(`source: buffered randread ${fmt(result.rand1.iops)} / ${fmt(result.rand8.iops)} IOPS`)
  try {
    result.rand1Direct = await fioRand(procs, image.path, { jobs: 1, direct: true, seconds })
    result.rand8Direct = await fioRand(procs, image.path, { jobs: 8, direct: true, seconds })
    progress(`source: O_DIRECT randread ${fmt(result.rand1Direct.iops)} / ${fmt(result.rand8Direct.iops)} IOPS`)
  } catch (err) {
    progress(`source: O_DIRECT not measured (${err.message.split('\n')[0]})`)
  }
  return result
}

/** The median daemon CPU per GiB and idle share of the samples' `key` reads. */
function medianCpu(samples, key) {
  return {
    daemonSecondsPerGiB: median(samples.map((s) => s[key].daemonSecondsPerGiB)),
    idleShare: median(samples.map((s) => s[key].idleShare)),
  }
}

/**
 * One local mount: settings.seqDaemons cold daemons each read the whole file twice with dd-like
 * 1 MiB reads (the first read after mount is the number that matters and can only be taken once
 * per mount, and a 2-CPU VM is noisy, so the median is reported), each read's daemon CPU and idle
 * share beside it; the first daemon also runs the random reads and the checksums (whole file,
 * cached and O_DIRECT).
 */
async function measureLocalMount(ctx, mount, expectedSha) {
  const { procs, image, settings } = ctx
  const samples = []
  for (let i = 0; i < settings.seqDaemons; i++) {
    await image.warm() // fio O_DIRECT on the source or another mount must not have left it cold
    samples.push(
      await withDaemon(ctx, mount, async (file, daemon) => {
        const read = () => withCpu(daemon.child.pid, ctx.ticksPerSecond, () => fioSeq(procs, file, { bytesEach: IMAGE_BYTES }))
        const cold = await read() // every page from the daemon
        const warm = await read() // from the page cache the first read filled, if kept
        const seq = { seqCold: cold.mbps, seqColdCpu: cold.cpu, seqWarm: warm.mbps, seqWarmCpu: warm.cpu }
        if (i > 0) return seq
        const rand1 = await fioRand(procs, file, { jobs: 1, seconds: settings.fioSeconds })
        const rand8 = await fioRand(procs, file, { jobs: 8, seconds: settings.fioSeconds })
        // Cached: what readers saw, filled by the first read. Direct: what the daemon answers now.
        const shaCached = (await sha256File(procs, file)) === expectedSha
        const shaDirect = (await sha256Direct(procs, file)) === expectedSha
        return { ...seq, rand1, rand8, shaCached, shaDirect }
      }),
    )
  }
  const result = { ...samples[0] }
  result.seqCold = median(samples.map((s) => s.seqCold))
  result.seqWarm = median(samples.map((s) => s.seqWarm))
  result.seqColdCpu = medianCpu(samples, 'seqColdCpu')
  result.seqWarmCpu = medianCpu(samples, 'seqWarmCpu')
  result.mountMs = median(samples.map((s) => s.mountMs))
  result.peakRssMiB = max(samples.map((s) => s.peakRssMiB))
  result.exit = samples.map((s) => s.exit).find((exit) => exit !== 0) ?? 0
  result.ok = result.shaCached && result.shaDirect && samples.every((s) => s.cleanExit)
  const list = (key) => samples.map((s) => fmt(s[key])).join(', ')
  progress(
    `${mount.title}: seq MB/s first read ${list('seqCold')}; cached ${list('seqWarm')}; start ms ${list('mountMs')}; ` +
      `daemon CPU s/GiB first read ${samples.map((s) => s.seqColdCpu.daemonSecondsPerGiB?.toFixed(2)).join(', ')}; ` +
      `O_DIRECT randread ${fmt(result.rand1.iops)} / ${fmt(result.rand8.iops)} IOPS; sha256 ${okOr(result.shaCached)} / ${okOr(result.shaDirect)}`,
  )
  return result
}

/**
 * The source, then each mount's start times (fresh daemons, nothing read), then each mount's
 * reads. QEMU failing is noted and left out; anything else failing fails the bench.
 */
export async function measureLocal(ctx, qemu, sourceSeq) {
  const source = await measureSource(ctx, sourceSeq)
  const zeros = zeroSha256(IMAGE_BYTES)
  const mounts = localMounts(ctx.image.path, qemu)
  const starts = { mounts: {}, notes: [] }
  starts.mounts = await measureStarts(ctx, mounts, starts.notes, (mount) => mount.key === 'qemu')
  const results = {}
  for (const mount of mounts) {
    try {
      results[mount.key] = await measureLocalMount(ctx, mount, mount.key === 'null' ? zeros : source.sha)
    } catch (err) {
      if (mount.key !== 'qemu' || ctx.procs.stopping) throw err
      qemu.note = `qemu-storage-daemon not measured: ${err.message.split('\n')[0]}`
      progress(qemu.note)
    }
  }
  return { source, mounts: results, qemuNote: qemu.note, starts }
}

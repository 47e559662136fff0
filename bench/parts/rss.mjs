// The rss part: snapmount's peak memory while a 4 GiB image is read through a bounded cache.

import { basename } from 'node:path'
import { startNginx } from '../../tools/nginx.mjs'
import { peakRssMiB, withDaemon } from '../lib/daemons.mjs'
import { fmt, fmtAmp, fmtCpu, okOr } from '../lib/format.mjs'
import { SourceImage, sliceSet, sliceSha256 } from '../lib/images.mjs'
import { progress } from '../lib/progress.mjs'
import { fioSeq } from '../lib/readers.mjs'
import { BIG_IMAGE_BYTES, NAME, NGINX_PREFIX, RSS_CACHE_MIB, SNAPMOUNT } from '../lib/settings.mjs'
import { counted, startProxy } from './remote.mjs'

const BIG_SLICES = sliceSet(BIG_IMAGE_BYTES, 2 ** 20)

/**
 * One daemon, `--cache-size-mib RSS_CACHE_MIB`, on the 4 GiB image from nginx (through a proxy
 * with no delay, which counts what it fetched), read once from start to end with 1 MiB reads;
 * its VmHWM after the read and the 4 GiB slice check. A 4 GiB image rather than four names of the
 * 1 GiB one: one stream whose readahead window grows as far as it will, the case the bound is for.
 */
export async function measureRss(ctx) {
  const { procs, settings } = ctx
  const big = new SourceImage(procs, settings.bigImagePath, BIG_IMAGE_BYTES)
  const image = await big.ensure()
  await big.warm()
  const expectedSha = await big.expectedSha(BIG_SLICES)
  const nginx = procs.addService(await startNginx(settings.benchDir, { prefix: NGINX_PREFIX }))
  try {
    const proxy = await startProxy(procs, nginx.port, 0)
    const url = `http://127.0.0.1:${proxy.port}/${basename(big.path)}`
    const mount = {
      key: 'rss',
      title: `snapmount --cache-size-mib ${RSS_CACHE_MIB}`,
      command: (mnt) => [SNAPMOUNT, 'mount', '--cache-size-mib', String(RSS_CACHE_MIB), mnt, `${NAME}=${url}`],
    }
    const r = await withDaemon(ctx, mount, async (file, daemon) => {
      const seq = await counted(ctx, daemon, proxy, () => fioSeq(procs, file, { bytesEach: BIG_IMAGE_BYTES, seconds: 180 }))
      // The target is the peak during the read; the slice check after it is another workload
      // (16 random 1 MiB O_DIRECT reads), whose peak is reported beside it.
      const readPeakMiB = await peakRssMiB(daemon)
      return { seq, readPeakMiB, sliceOk: (await sliceSha256(procs, file, 'direct', BIG_SLICES)) === expectedSha }
    }, { timeoutMs: 240_000 })
    await procs.stopService(proxy)
    const result = {
      image: `${big.path} (${image})`,
      cacheMiB: RSS_CACHE_MIB,
      mbps: r.seq.mbps,
      bytesRead: r.seq.bytes,
      fetchPerByte: r.seq.traffic.amp,
      cpu: r.seq.cpu,
      peakRssMiB: r.readPeakMiB,
      peakWithCheckMiB: r.peakRssMiB,
      sliceOk: r.sliceOk,
      exit: r.exit,
      ok: r.sliceOk && r.cleanExit && r.seq.bytes === BIG_IMAGE_BYTES,
    }
    progress(`rss: ${fmt(result.bytesRead / 2 ** 20)} MiB read at ${fmt(result.mbps)} MB/s, fetched x${fmtAmp(result.fetchPerByte)}, daemon CPU ${fmtCpu(result.cpu.daemonSecondsPerGiB)} s/GiB; peak RSS ${fmt(result.peakRssMiB)} MiB (${fmt(result.peakWithCheckMiB)} after the slice check); slices ${okOr(result.sliceOk)}; exit ${result.exit}`)
    return result
  } finally {
    await procs.stopService(nginx)
  }
}

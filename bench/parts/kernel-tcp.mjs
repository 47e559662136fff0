// The HTTP sequential read over kernel TCP at RTT_MS (issue 17): nginx, every mount's daemon and
// curl run inside a network namespace whose loopback holds every packet RTT_MS / 2 in the kernel
// (tools/delay-netns.mjs, NFQUEUE), with TCP set up as on a stock host: the kernel's own windows,
// slow start, and slow start again after a connection idles. The user-space proxy of the other
// HTTP parts models one window and no slow start; here the kernel does it all, as across a real
// link. No proxy counts bytes here: each mount gets one cold daemon, one reader, its CPU per GiB.

import { basename, join } from 'node:path'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { DelayNetnsUnavailableError, startDelayNetns } from '../../tools/delay-netns.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { withCpu } from '../lib/cpu.mjs'
import { inNetns, withDaemon } from '../lib/daemons.mjs'
import { fmt, fmtCpu, okOr } from '../lib/format.mjs'
import { MIB_SLICES, sliceSha256 } from '../lib/images.mjs'
import { progress } from '../lib/progress.mjs'
import { fioSeq } from '../lib/readers.mjs'
import { IMAGE_BYTES, NETNS_PREFIX, NGINX_PREFIX, RTT_MS, TEMP_PREFIX } from '../lib/settings.mjs'
import { httpMounts, nginxVersion, writeIndex } from './http.mjs'

/** Readahead still arriving after the reader stopped is charged to its read: no proxy says when it ends. */
const SETTLE_MS = 300

/** One curl GET of the whole image from inside the namespace: MB/s. */
async function curlInside(netns, url) {
  const started = performance.now()
  const { stdout } = await netns.run('curl', ['--silent', '--show-error', '--fail', '--output', '/dev/null', '--write-out', '%{size_download}', url])
  if (Number(stdout.trim()) !== IMAGE_BYTES) throw new Error(`curl ${url}: ${stdout.trim()} bytes, expected ${IMAGE_BYTES}`)
  return IMAGE_BYTES / ((performance.now() - started) / 1000) / 1e6
}

/** One cold daemon of `mount`: one sequential reader (as daemon A of the other parts, first read only), its CPU, the slice check. */
async function measureMount(ctx, mount, wantMib) {
  const { procs, settings } = ctx
  const r = await withDaemon(ctx, mount, async (file, daemon) => {
    const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    const seq = await withCpu(daemon.child.pid, ctx.ticksPerSecond, () => fioSeq(procs, file, { bytesEach: IMAGE_BYTES, seconds: settings.seqSeconds }), settle)
    return { seq, sliceOk: (await sliceSha256(procs, file, 'direct', MIB_SLICES)) === wantMib }
  })
  const result = {
    mountMs: r.mountMs,
    seq1: { mbps: r.seq.mbps, bytesRead: r.seq.bytes, cpu: r.seq.cpu },
    peakRssMiB: r.peakRssMiB,
    sliceOk: r.sliceOk,
    exit: r.exit,
    cleanExit: r.cleanExit,
  }
  result.ok = result.sliceOk && result.cleanExit
  progress(`${mount.title}, kernel TCP ${RTT_MS} ms: seq ${fmt(result.seq1.mbps)} MB/s (${fmt(result.seq1.bytesRead / 1e6)} MB), daemon CPU ${fmtCpu(result.seq1.cpu.daemonSecondsPerGiB)} s/GiB; slices ${okOr(result.sliceOk)}; exit ${result.exit}`)
  return result
}

/**
 * The part `http-kernel`: resolves to its condition ({ key, title, server, rttMs, sysctls, raw: {
 * seq1 }, mounts, notes, seconds, load... }), or to one with no mounts and a note when this
 * machine cannot make the namespace (not root, no NFQUEUE, no iptables).
 */
export async function measureKernelHttp(ctx, peers) {
  const { procs, image, settings } = ctx
  const began = Date.now()
  const loadBefore = loadavg()[0]
  const base = { key: `http-kernel-${RTT_MS}ms`, proto: 'http', title: `HTTP, ${RTT_MS} ms RTT over kernel TCP`, rttMs: RTT_MS, notes: [], mounts: {} }
  let netns
  try {
    netns = procs.addService(await startDelayNetns({ rttMs: RTT_MS, prefix: NETNS_PREFIX }))
  } catch (err) {
    if (!(err instanceof DelayNetnsUnavailableError)) throw err
    progress(`kernel TCP part not run: ${err.message}`)
    return { ...base, server: '', sysctls: {}, raw: {}, notes: [`not run: ${err.message.split('\n')[0]}`], seconds: 0, loadBefore, loadAfter: loadavg()[0] }
  }
  const file = basename(image.path)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = procs.addService({ stop: () => rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'rclone-empty.conf'), '')
  await writeIndex(settings.benchDir, file)
  const nginx = procs.addService(await startNginx(settings.benchDir, { acceptRangesOnPartial: true, prefix: NGINX_PREFIX, netns }))
  try {
    await image.warm()
    const wantMib = await image.expectedSha(MIB_SLICES)
    const raw = { seq1: await curlInside(netns, nginx.url(file)) }
    progress(`raw HTTP, kernel TCP ${RTT_MS} ms: one curl stream ${fmt(raw.seq1)} MB/s`)
    const mounts = {}
    for (const mount of httpMounts(nginx.origin, file, peers, dir)) {
      try {
        mounts[mount.key] = await measureMount(ctx, inNetns(mount, netns), wantMib)
      } catch (err) {
        if (mount.key === 'snapmount' || procs.stopping) throw err
        base.notes.push(`${mount.title} not measured: ${err.message.split('\n')[0]}`)
        progress(base.notes.at(-1))
      }
    }
    const { sysctls } = netns
    return { ...base, server: `nginx ${await nginxVersion(procs)}`, sysctls, raw, mounts, seconds: (Date.now() - began) / 1000, loadBefore, loadAfter: loadavg()[0] }
  } finally {
    await procs.stopService(nginx)
    await procs.stopService(temp)
    await procs.stopService(netns)
  }
}

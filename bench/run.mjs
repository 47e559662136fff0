// snapmount read benchmark. One run measures, for a 1 GiB image:
//   local   the image as a local file through snapmount (file, mmap), a zero-cost null backend and
//           QEMU's FUSE export of the same file (qemu-storage-daemon), beside the file itself;
//   http    the image from nginx on loopback, at 0 ms and at 10 ms round-trip time (a delaying
//           proxy of our own), through snapmount, httpfs2, rclone mount and QEMU's curl driver
//           with a FUSE export, beside a raw client (curl, undici) on the same path;
//   http-kernel  the same at 10 ms over kernel TCP (a network namespace delaying every packet,
//           tools/delay-netns.mjs): one sequential reader per mount, beside one curl stream;
//   s3      the image as an object in Ceph's radosgw on loopback, at 0 ms and 10 ms, through
//           snapmount, s3fs and rclone mount, beside a raw SDK client;
//   rss     snapmount's peak RSS while a 4 GiB image is read sequentially with a 256 MiB cache;
//   boot    (only when named) a Debian guest booted cold by QEMU from a local file, through
//           snapmount (file, HTTP, S3 at 0 ms and 10 ms RTT in a delaying network namespace) and
//           through the peers;
//   disk-cache  (only when named) snapmount's disk cache (issue 18): first pass, re-read after a
//           restart, corruption, kill -9;
//   fleet   (only when named) a boot storm: 1, 8 and 32 daemons replay one boot's reads at once
//           through deploy/nginx's caching tier and straight from the origin, at 10 ms over kernel TCP;
//   failover (only when named) a full read of the image from three nginx mirrors at 10 ms over
//           kernel TCP, undisturbed and with the mirror in use stopped halfway;
// then evaluates issues 5, 16, 17, 18 and 21's targets from those numbers, prints every table and writes it
// all as JSON to bench/results/. See bench/README.md for what each number means and where each
// piece lives (bench/lib/, bench/parts/). `npm run bench` builds first; `npm run bench -- http
// s3-10ms` runs only the parts named.
//
// Every access to a mount happens in a child process (dd, fio), never in this one, and every
// daemon runs as a child too: a synchronous access from the daemon's own process would deadlock
// it, and an async one from here would still tie the numbers to this event loop. The proxies
// (delay and count, one hop: tools/delay-proxy.mjs) do run in this process, which otherwise only
// waits for its children.
//
// This file is the entry: it reads the environment and the arguments, makes the run's one
// BenchProcesses (what is running, for cleanup) and context, runs the parts, evaluates the
// targets, prints and writes the results. The parts get everything they use from the context.

import { access, mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { clearStaleDelayNetns } from '../tools/delay-netns.mjs'
import { clearStaleNginx } from '../tools/nginx.mjs'
import { clockTicksPerSecond } from './lib/cpu.mjs'
import { clearStaleMounts, clearStaleProcesses } from './lib/daemons.mjs'
import { SourceImage } from './lib/images.mjs'
import { NBDKIT_CURL_PLUGIN, QEMU_CURL_MODULE, ensurePeer } from './lib/peers.mjs'
import { BenchProcesses } from './lib/processes.mjs'
import { progress } from './lib/progress.mjs'
import { bootSection, diskCacheSection, footer, integritySection, kernelSection, localSection, peersSection, remoteSection, rssSection, startSection, targetsSection } from './lib/report.mjs'
import { IMAGE_BYTES, NETNS_PREFIX, NGINX_PREFIX, RESULTS_DIR, RSS_CACHE_MIB, RTT_MS, TEMP_PREFIX, benchSettings, withoutProxyVariables } from './lib/settings.mjs'
import { evaluateTargets } from './lib/targets.mjs'
import { pauseFreePageReporting, restoreFreePageReporting } from './lib/page-reporting.mjs'
import { fleetSection, fleetTargets } from './lib/fleet-report.mjs'
import { failoverSection, failoverTargets } from './lib/failover-report.mjs'
import { measureFailover } from './parts/failover.mjs'
import { measureFleet } from './parts/fleet.mjs'
import { measureBoot } from './parts/boot.mjs'
import { measureDiskCache } from './parts/disk-cache.mjs'
import { measureHttp } from './parts/http.mjs'
import { measureKernelHttp } from './parts/kernel-tcp.mjs'
import { measureLocal, measureSourceSeq } from './parts/local.mjs'
import { measureRss } from './parts/rss.mjs'
import { checkCeph, clearStaleS3, measureS3 } from './parts/s3.mjs'

/** The parts in the order they run; `npm run bench -- http-10ms rss` runs only those named. */
const PARTS = ['local', 'http-0ms', 'http-10ms', 'http-kernel', 's3-0ms', 's3-10ms', 'rss', 'disk-cache', 'boot', 'fleet', 'failover']
/**
 * Parts run only when named: the disk cache's kills and restarts, the boot part's ~40 boots (30-60
 * min), the fleet's storm of 41 daemons per path, two paths, the failover's stopped mirror
 * (`npm run bench -- boot fleet failover`).
 */
const NAMED_ONLY = ['disk-cache', 'boot', 'fleet', 'failover']
const ALIASES = { http: ['http-0ms', 'http-10ms', 'http-kernel'], s3: ['s3-0ms', 's3-10ms'] }
/** Boots per row of the boot part: its times are the median of these. `--runs N` sets fewer for a quick look. */
const BOOT_RUNS = 3

function parseArgs(argv) {
  const args = [...argv]
  let bootRuns = BOOT_RUNS
  const runsAt = args.findIndex((a) => a === '--runs' || a.startsWith('--runs='))
  if (runsAt >= 0) {
    const [value] = args[runsAt].includes('=') ? [args[runsAt].split('=')[1]] : args.splice(runsAt + 1, 1)
    bootRuns = Number(value)
    if (!Number.isInteger(bootRuns) || bootRuns < 1) throw new Error(`--runs takes a whole number of boots per row, at least 1, not ${value}`)
    args.splice(runsAt, 1)
  }
  // --boot-rows=KEY,KEY: only those rows of the boot part (their keys are in the results' JSON), for a quick look.
  const rowsAt = args.findIndex((a) => a.startsWith('--boot-rows='))
  const bootRows = rowsAt >= 0 ? args.splice(rowsAt, 1)[0].split('=')[1].split(',') : undefined
  // The fleet part: --fleet-slices=128k,256k,1m (tier slice sizes to compare, in place of the
  // shipped one), --fleet-sizes=1,8 (N), --fleet-tier-only (no origin-only rows).
  const listFlag = (name) => {
    const at = args.findIndex((a) => a.startsWith(`--${name}=`))
    return at >= 0 ? args.splice(at, 1)[0].split('=')[1].split(',') : undefined
  }
  const fleetSlices = listFlag('fleet-slices')
  for (const slice of fleetSlices ?? []) if (!/^\d+[km]$/.test(slice)) throw new Error(`--fleet-slices takes nginx sizes such as 128k or 1m, not ${slice}`)
  const fleetSizes = listFlag('fleet-sizes')?.map(Number)
  for (const n of fleetSizes ?? []) if (!Number.isInteger(n) || n < 1) throw new Error('--fleet-sizes takes whole numbers of daemons, at least 1')
  const tierOnlyAt = args.indexOf('--fleet-tier-only')
  const fleetTierOnly = tierOnlyAt >= 0
  if (fleetTierOnly) args.splice(tierOnlyAt, 1)
  const flags = args.filter((a) => a.startsWith('--'))
  for (const flag of flags) if (flag !== '--no-peers' && flag !== '--keep-page-reporting') throw new Error(`unknown flag ${flag}: the flags are --no-peers, --keep-page-reporting, --runs N, --boot-rows=KEY,KEY, --fleet-slices=S,S, --fleet-sizes=N,N and --fleet-tier-only`)
  const named = args.filter((a) => !a.startsWith('--')).flatMap((a) => ALIASES[a] ?? [a])
  for (const part of named) if (!PARTS.includes(part)) throw new Error(`unknown part ${part}: the parts are ${[...PARTS, ...Object.keys(ALIASES)].join(', ')}`)
  return { parts: PARTS.filter((p) => (named.length ? named.includes(p) : !NAMED_ONLY.includes(p))), peers: !flags.includes('--no-peers'), keepPageReporting: flags.includes('--keep-page-reporting'), bootRuns, bootRows, fleet: { slices: fleetSlices, sizes: fleetSizes, tierOnly: fleetTierOnly } }
}

/** The peers the parts run need: found, installed, or a note saying why not (lib/peers.mjs). */
async function findPeers(procs, args, runs) {
  // A peer not needed by the parts run has no note and is not mentioned.
  const peer = async (needed, ...how) => (!needed ? {} : args.peers ? await ensurePeer(procs, ...how) : { note: `${how[0]} not run: --no-peers` })
  const peers = {
    httpfs2: await peer(runs('http') || runs('boot'), 'httpfs2'),
    rclone: await peer(runs('http') || runs('s3') || runs('boot'), 'rclone'),
    s3fs: await peer(runs('s3') || runs('boot'), 's3fs'),
    // qemu-storage-daemon is in qemu-system-common; its curl driver is a module in qemu-block-extra.
    qemu: await peer(runs('http') || runs('local'), 'qemu-storage-daemon', ['qemu-system-common', 'qemu-block-extra'], [QEMU_CURL_MODULE]),
    // The boot part's QEMU with its own curl driver (the same module), and nbdkit (its curl plugin is in the package).
    qemuSystemCurl: await peer(runs('boot'), 'qemu-system-x86_64', ['qemu-system-x86', 'qemu-block-extra'], [QEMU_CURL_MODULE]),
    nbdkit: await peer(runs('boot'), 'nbdkit', ['nbdkit'], [NBDKIT_CURL_PLUGIN]),
  }
  peers.qemuCurl = await access(QEMU_CURL_MODULE).then(() => true, () => false)
  return peers
}

/** bench/results/<start time>.json and a copy as latest.json. */
async function writeResults(results) {
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `${results.startedAt.replace(/[:.]/g, '-')}.json`)
  const text = `${JSON.stringify(results, null, 2)}\n`
  await writeFile(file, text)
  await writeFile(join(RESULTS_DIR, 'latest.json'), text)
  return file
}

async function main(procs, settings) {
  const began = Date.now()
  const startedAt = new Date().toISOString()
  const args = parseArgs(process.argv.slice(2))
  const runs = (prefix) => args.parts.some((p) => p.startsWith(prefix))
  // Anything else running on the machine (builds, tests) shows up in these numbers: say so.
  const loadBefore = loadavg()[0]
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      progress(`${signal}: stopping daemons, unmounting, stopping servers`)
      procs.interrupt()
      procs.cleanup().finally(restoreFreePageReporting).finally(() => process.exit(130))
    })
  }
  // After the handlers: a signal during the pause's 8 GiB touch puts the order back too.
  const hostMemory = await pauseFreePageReporting({ keep: args.keepPageReporting })
  progress(hostMemory)
  if (runs('s3')) await checkCeph()
  await clearStaleProcesses([join(settings.benchDir, 'mnt-'), join(tmpdir(), TEMP_PREFIX)])
  await clearStaleMounts(procs, settings.benchDir)
  for (const dir of await clearStaleNginx(NGINX_PREFIX)) progress(`cleared nginx left by an earlier run in ${dir}`)
  for (const name of await clearStaleDelayNetns(NETNS_PREFIX)) progress(`removed network namespace ${name}, left by an earlier run`)
  await clearStaleS3()
  /** What every part is handed: the settings, the run's processes, the 1 GiB image, /proc's clock unit. */
  const ctx = { settings, procs, image: new SourceImage(procs, settings.imagePath, IMAGE_BYTES), ticksPerSecond: await clockTicksPerSecond(procs) }
  // The boot part boots its own image (the guest's); only the other parts read the 1 GiB one.
  const readsImage = args.parts.some((p) => p !== 'boot')
  const image = readsImage ? await ctx.image.ensure() : 'not needed'
  const peers = await findPeers(procs, args, runs)
  const fioVersion = (await procs.run('fio', ['--version'])).stdout.trim()
  const host = `node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ${fioVersion}`
  progress(`image ${settings.imagePath} (${image}); ${host}; parts ${args.parts.join(', ')}${settings.quick ? ' (QUICK: shortened runs)' : ''}`)
  for (const [name, peer] of Object.entries(peers)) if (peer.note) progress(`${name}: ${peer.note}`)

  const results = {
    schema: 1,
    startedAt,
    quick: settings.quick,
    parts: args.parts,
    host,
    hostMemory,
    settings: { fioSeconds: settings.fioSeconds, seqSeconds: settings.seqSeconds, rawRateSeconds: settings.rawRateSeconds, rttMs: RTT_MS, rssCacheMiB: RSS_CACHE_MIB, seqDaemons: settings.seqDaemons, startRuns: settings.startRuns, ...(runs('boot') && { bootRuns: args.bootRuns }) },
    peers: Object.fromEntries(Object.entries(peers).filter(([, p]) => p?.note).map(([k, p]) => [k, p.note])),
  }
  let ok = true
  const out = (text) => process.stdout.write(text)
  try {
    if (readsImage) results.sourceSeq = await measureSourceSeq(ctx)
    if (runs('local')) {
      const partBegan = Date.now()
      results.local = await measureLocal(ctx, peers.qemu, results.sourceSeq)
      results.local.seconds = (Date.now() - partBegan) / 1000
      ok &&= ['file', 'mmap', 'null'].every((k) => results.local.mounts[k].ok && results.local.starts.mounts[k].cleanExit)
      out(localSection(results.local, results.settings))
    }
    results.remote = {}
    if (args.parts.some((p) => p === 'http-0ms' || p === 'http-10ms')) Object.assign(results.remote, await measureHttp(ctx, peers, args.parts))
    if (runs('s3')) Object.assign(results.remote, await measureS3(ctx, peers, args.parts))
    for (const c of Object.values(results.remote)) {
      ok &&= c.mounts.snapmount.ok && (c.starts?.mounts.snapmount.cleanExit ?? true)
      out(remoteSection(c, results.sourceSeq, results.settings))
    }
    if (runs('http-kernel')) {
      results.kernelTcp = { http: await measureKernelHttp(ctx, peers) }
      ok &&= results.kernelTcp.http.mounts.snapmount?.ok ?? true
      out(kernelSection(results.kernelTcp.http))
    }
    out(integritySection(results))
    out(peersSection(results))
    if (runs('rss')) {
      results.rss = await measureRss(ctx)
      ok &&= results.rss.ok
      out(rssSection(results.rss))
    }
    if (runs('disk-cache')) {
      results.diskCache = await measureDiskCache(ctx)
      ok &&= results.diskCache.ok
      out(diskCacheSection(results.diskCache))
    }
    if (runs('boot')) {
      results.boot = await measureBoot(ctx, peers, { runs: args.bootRuns, only: args.bootRows })
      out(bootSection(results.boot))
    }
    if (runs('fleet')) {
      results.fleet = await measureFleet(ctx, args.fleet)
      ok &&= results.fleet.rows.every((r) => r.bytesOk)
      out(fleetSection(results.fleet))
    }
    if (runs('failover')) {
      results.failover = await measureFailover(ctx)
      ok &&= results.failover.rows.every((r) => r.wrongBytes === 0)
      out(failoverSection(results.failover))
    }
    out(startSection(results))
    results.targets = [...evaluateTargets(results), ...(results.fleet ? fleetTargets(results.fleet) : []), ...(results.failover ? failoverTargets(results.failover) : [])]
    out(targetsSection(results.targets))
    results.seconds = (Date.now() - began) / 1000
    results.load = { before: loadBefore, after: loadavg()[0] }
    results.ok = ok
    out(footer(results, await writeResults(results)))
  } finally {
    await procs.cleanup()
    await restoreFreePageReporting()
  }
  return ok ? 0 : 1
}

const procs = new BenchProcesses(withoutProxyVariables(process.env))
process.exitCode = await main(procs, benchSettings(process.env)).catch(async (err) => {
  await procs.cleanup()
  // Also when main failed before its own cleanup (e.g. no Ceph for an S3 part).
  await restoreFreePageReporting()
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  return 1
})

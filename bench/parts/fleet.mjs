// The fleet part: a boot storm. N snapmount daemons (1, 8, 32), each its own mount, replay the
// same boot's reads (lib/working-set.mjs) at once, at RTT_MS over kernel TCP: daemons, the
// caching tier (deploy/nginx, as shipped: tools/fleet-cache.mjs) and the origin nginx all run
// in one delaying network namespace, so every hop (daemon to tier, tier to origin, or daemon to
// origin) pays the round trip with TCP's own windows. Each row starts a fresh origin log and a
// fresh, empty tier: a cold storm. Reported per row: what the origin sent (bytes, requests), and
// each daemon's time to finish its boot's reads (p50, p99), beside the same storm without the tier.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { clearStaleDelayNetns, startDelayNetns } from '../../tools/delay-netns.mjs'
import { startFleetCache } from '../../tools/fleet-cache.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { inNetns, startDaemon } from '../lib/daemons.mjs'
import { MIB_SLICES, sliceSha256 } from '../lib/images.mjs'
import { progress } from '../lib/progress.mjs'
import { NAME, RTT_MS, SNAPMOUNT, TEMP_PREFIX } from '../lib/settings.mjs'
import { percentile } from '../lib/stats.mjs'
import { WORKING_SET_SPAN_BYTES, bootWorkingSet, fioIolog, workingSetBytes } from '../lib/working-set.mjs'

/** Daemons per storm: one alone, a rack, as many as this 2-core machine holds at once. */
export const FLEET_SIZES = [1, 8, 32]
const NETNS_PREFIX = 'snapmount-bench-fleet-'
/** Daemons started at once: 32 cold Node processes starting together would time out on 2 cores. */
const START_BATCH = 8

/**
 * The storm, with the tier and without, for each of FLEET_SIZES (quick: 1 and 8 only), or of
 * `sizes`; through the shipped tier, or once per slice size of `slices` (nginx sizes, `256k`);
 * `tierOnly` skips the rows straight to the origin.
 */
export async function measureFleet(ctx, { slices, sizes: only, tierOnly = false } = {}) {
  const { procs, image, settings } = ctx
  for (const name of await clearStaleDelayNetns(NETNS_PREFIX)) progress(`removed namespace ${name} left by an earlier run`)
  const reads = bootWorkingSet(WORKING_SET_SPAN_BYTES)
  const sizes = only ?? (settings.quick ? FLEET_SIZES.slice(0, 2) : FLEET_SIZES)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = procs.addService({ stop: () => rm(dir, { recursive: true, force: true }) })
  const netns = procs.addService(await startDelayNetns({ rttMs: RTT_MS, prefix: NETNS_PREFIX }))
  const results = { rttMs: RTT_MS, reads: reads.length, ...workingSetBytes(reads), rows: [] }
  try {
    const paths = [...(tierOnly ? [] : [{ tier: false }]), ...(slices ?? [undefined]).map((slice) => ({ tier: true, slice }))]
    for (const { tier, slice } of paths) {
      for (const daemons of sizes) {
        progress(`fleet: ${daemons} daemon(s) ${tier ? `through the caching tier${slice ? ` (slice ${slice})` : ''}` : 'straight to the origin'}`)
        results.rows.push({ tier, ...(slice ? { slice } : {}), daemons, ...(await storm(ctx, netns, dir, reads, { tier, slice, daemons })) })
      }
    }
  } finally {
    await procs.stopService(netns)
    await procs.stopService(temp)
  }
  return results
}

/** One cold storm: fresh origin and tier, `daemons` mounts, every one replaying `reads` at once. */
async function storm(ctx, netns, dir, reads, { tier, slice, daemons }) {
  const { procs, image } = ctx
  const origin = procs.addService(await startNginx(ctx.settings.benchDir, { netns, prefix: `${NETNS_PREFIX}nginx-` }))
  const cache = tier ? procs.addService(await startFleetCache(`127.0.0.1:${origin.port}`, { netns, prefix: `${NETNS_PREFIX}cache-`, slice })) : undefined
  const url = (cache ?? origin).url(basename(image.path))
  const mount = inNetns({ key: `fleet-${tier ? 'tier' : 'origin'}`, title: `snapmount (fleet, ${tier ? 'tier' : 'origin'})`, command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=${url}`] }, netns)
  const started = []
  try {
    for (let i = 0; i < daemons; i += START_BATCH) {
      started.push(...(await Promise.all(Array.from({ length: Math.min(START_BATCH, daemons - i) }, () => startDaemon(ctx, mount)))))
    }
    const seconds = await Promise.all(started.map((daemon, i) => replay(procs, dir, `${daemons}-${i}`, join(daemon.mnt, NAME), reads)))
    // Counted before the byte check, whose reads are not part of the boot.
    const requests = await origin.requests()
    // The bytes: 1 MiB slices spread over the image, from the last daemon started, against the source.
    const bytesOk = (await sliceSha256(procs, join(started.at(-1).mnt, NAME), 'direct', MIB_SLICES)) === (await image.expectedSha(MIB_SLICES))
    return {
      bytesOk,
      originBytes: requests.reduce((sum, request) => sum + request.bytes, 0),
      originRequests: requests.length,
      p50Seconds: percentile(seconds, 50),
      p99Seconds: percentile(seconds, 99),
      maxSeconds: Math.max(...seconds),
    }
  } finally {
    await Promise.all(started.map((daemon) => daemon.stop()))
    if (cache) await procs.stopService(cache)
    await procs.stopService(origin)
  }
}

/** fio replays `reads` on `path` one after another, O_DIRECT (each reaches the daemon): seconds taken. */
async function replay(procs, dir, name, path, reads) {
  const iolog = join(dir, `boot-${name}.iolog`)
  await writeFile(iolog, fioIolog(path, reads))
  const began = performance.now()
  await procs.run('fio', ['--name=boot', `--read_iolog=${iolog}`, '--replay_no_stall=1', '--direct=1', '--ioengine=psync', '--output=/dev/null'])
  return (performance.now() - began) / 1000
}

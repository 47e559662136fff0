// The failover part (issue 21): a mirrored snapshot (`urls:`, three nginx mirrors of the 1 GiB
// image) read in full through a real mount while random readers probe its latency
// (lib/checked-reads.mjs, every byte compared with the source), once undisturbed and once with
// mirror 0, the one in use, stopped (SIGTERM: nginx's fast shutdown, its connections cut) halfway
// through. The daemon and the mirrors run in one delaying network namespace (kernel TCP at
// RTT_MS). The failover time is read from the daemon's own log: its "reads failed over" line,
// logged when another mirror answers the first read after mirror 0 failed, against the moment of
// the stop. Each run has fresh mirrors and a fresh daemon (cold cache).

import { writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { clearStaleDelayNetns, startDelayNetns } from '../../tools/delay-netns.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { inNetns, startDaemon } from '../lib/daemons.mjs'
import { failoverRow } from '../lib/failover-report.mjs'
import { progress } from '../lib/progress.mjs'
import { IMAGE_BYTES, NAME, RTT_MS, SNAPMOUNT } from '../lib/settings.mjs'

const NETNS_PREFIX = 'snapmount-bench-failover-'
const READER = fileURLToPath(new URL('../lib/checked-reads.mjs', import.meta.url))
/** Matches checked-reads.mjs. */
const RANDOM_READERS = 2
const MIRRORS = 3
/** Mirror 0 is stopped this far into the undisturbed run's full read: midway. */
const STOP_AT = 0.5
/** Pairs of runs (undisturbed, stopped): one run's p99 on a loaded 2-core machine is noise. */
const PAIRS = 3

export async function measureFailover(ctx) {
  const { procs } = ctx
  for (const name of await clearStaleDelayNetns(NETNS_PREFIX)) progress(`removed namespace ${name} left by an earlier run`)
  await ctx.image.warm()
  const netns = procs.addService(await startDelayNetns({ rttMs: RTT_MS, prefix: NETNS_PREFIX }))
  const results = { rttMs: RTT_MS, imageBytes: IMAGE_BYTES, mirrors: MIRRORS, randomReaders: RANDOM_READERS, rows: [] }
  try {
    for (let pair = 1; pair <= (ctx.settings.quick ? 1 : PAIRS); pair++) {
      progress(`failover ${pair}: full read, three mirrors, undisturbed`)
      const calm = await run(ctx, netns, undefined)
      results.rows.push(calm)
      const stopAfterMs = STOP_AT * calm.seqSeconds * 1000
      progress(`failover ${pair}: full read, mirror 0 stopped after ${(stopAfterMs / 1000).toFixed(1)} s`)
      results.rows.push(await run(ctx, netns, stopAfterMs))
    }
  } finally {
    await procs.stopService(netns)
  }
  return results
}

/** One run: fresh mirrors and daemon, the full read, mirror 0 stopped after `stopAfterMs` if given. */
async function run(ctx, netns, stopAfterMs) {
  const { procs, image, settings } = ctx
  // One root for all three: the same file, so the same ETag, as copies made with rsync -t would have.
  const mirrors = []
  for (let i = 0; i < MIRRORS; i++) mirrors.push(procs.addService(await startNginx(settings.benchDir, { netns, prefix: `${NETNS_PREFIX}nginx-` })))
  const config = join(settings.benchDir, `failover-${process.pid}.yaml`)
  const mount = inNetns(
    {
      key: 'failover',
      title: 'snapmount (three mirrors)',
      command: async (mnt) => {
        const urls = mirrors.map((mirror) => `      - ${mirror.url(basename(image.path))}`)
        await writeFile(config, ['mountpoint: ' + mnt, 'snapshots:', '  - type: http', `    name: ${NAME}`, '    urls:', ...urls, ''].join('\n'))
        return [SNAPMOUNT, 'mount', '--config', config]
      },
    },
    netns,
  )
  const daemon = await startDaemon(ctx, mount)
  let stop
  let stoppedAt
  try {
    if (stopAfterMs !== undefined) {
      stop = setTimeout(() => {
        stoppedAt = Date.now()
        void procs.stopService(mirrors[0])
      }, stopAfterMs)
    }
    const { stdout } = await procs.run(process.execPath, [READER, join(daemon.mnt, NAME), image.path])
    clearTimeout(stop)
    if (stopAfterMs !== undefined && stoppedAt === undefined) throw new Error(`failover: the full read ended before mirror 0 was to be stopped (${stopAfterMs.toFixed(0)} ms)`)
    const { reads } = JSON.parse(stdout)
    const requests = await Promise.all(mirrors.map((mirror) => mirror.requests().then((r) => r.length)))
    return { ...failoverRow(stopAfterMs === undefined ? 'undisturbed' : 'mirror 0 stopped', reads, { stoppedAt, log: daemon.log }), mirrorRequests: requests }
  } finally {
    clearTimeout(stop)
    await daemon.stop()
    for (const mirror of mirrors) await procs.stopService(mirror)
  }
}

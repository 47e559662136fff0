// The failover part (issue 21): a mirrored snapshot (`urls:`, three nginx mirrors of the 1 GiB
// image) read in full through a real mount while random readers probe its latency
// (lib/checked-reads.mjs, every byte compared with the source), in pairs of runs: undisturbed,
// and with mirror 0, the one in use, stopped (SIGTERM: nginx's fast shutdown, its connections
// cut) once the full read is halfway through. The daemon and the mirrors run in one delaying
// network namespace (kernel TCP at RTT_MS). The failover time is read from the daemon's own log:
// its "reads failed over" line, logged when another mirror answers the first read after mirror 0
// failed (lib/failover-report.mjs). Each run has fresh mirrors and a fresh daemon (cold cache).
// Then a pair of boots of the Linux guest (tools/linux-guest.mjs, QEMU with cache=none reading
// the mount) through the mirrors, undisturbed and with mirror 0 stopped early in the boot, where
// most of its reads are.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { clearStaleDelayNetns, startDelayNetns } from '../../tools/delay-netns.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { bootGuest, chooseAccel, ensureGuestImage } from '../../tools/linux-guest.mjs'
import { inNetns, startDaemon } from '../lib/daemons.mjs'
import { bootRow, failoverRow, pooledLatency } from '../lib/failover-report.mjs'
import { progress } from '../lib/progress.mjs'
import { IMAGE_BYTES, NAME, RTT_MS, SNAPMOUNT, TEMP_PREFIX } from '../lib/settings.mjs'

const NETNS_PREFIX = 'snapmount-bench-failover-'
const READER = fileURLToPath(new URL('../lib/checked-reads.mjs', import.meta.url))
/** Matches checked-reads.mjs. */
const RANDOM_READERS = 2
const MIRRORS = 3
/** Mirror 0 is stopped once the full read has read this share of the image: midway. */
const STOP_AT = 0.5
/**
 * A boot's mirror 0 is stopped once it has answered this share of the requests it answered in the
 * undisturbed boot: the guest's progress, whatever the boot's speed (TCG boots here take 29-104 s
 * from one to the next).
 */
const BOOT_STOP_AT = 0.3
/** How often mirror 0's access log is counted while a boot waits for the stop. */
const BOOT_POLL_MS = 50
/** Pairs of runs (undisturbed, stopped): one run's p99 on a loaded 2-core machine is noise. */
const PAIRS = 3

export async function measureFailover(ctx) {
  const { procs } = ctx
  for (const name of await clearStaleDelayNetns(NETNS_PREFIX)) progress(`removed namespace ${name} left by an earlier run`)
  await ctx.image.warm()
  const netns = procs.addService(await startDelayNetns({ rttMs: RTT_MS, prefix: NETNS_PREFIX }))
  const results = { rttMs: RTT_MS, imageBytes: IMAGE_BYTES, mirrors: MIRRORS, randomReaders: RANDOM_READERS, rows: [] }
  try {
    const pooled = { undisturbed: [], stopped: [] }
    for (let pair = 1; pair <= (ctx.settings.quick ? 1 : PAIRS); pair++) {
      progress(`failover ${pair}: full read, three mirrors, undisturbed`)
      const calm = await run(ctx, netns, false)
      results.rows.push(calm.row)
      pooled.undisturbed.push(...calm.reads)
      progress(`failover ${pair}: full read, mirror 0 stopped halfway`)
      const stopped = await run(ctx, netns, true)
      results.rows.push(stopped.row)
      pooled.stopped.push(...stopped.reads)
    }
    results.pooled = { undisturbed: pooledLatency(pooled.undisturbed), stopped: pooledLatency(pooled.stopped) }
    results.boots = await boots(ctx, netns)
  } finally {
    await procs.stopService(netns)
  }
  return results
}

/**
 * A pair of cold boots of the Linux guest through the mirrors (TCG: 25-80 s each): undisturbed,
 * then with mirror 0 stopped BOOT_STOP_AT into the first's time. Skipped, with why, where no
 * guest can boot.
 */
async function boots(ctx, netns) {
  const { accel, reason } = await chooseAccel()
  if (!accel) return { note: `not booted: ${reason}`, rows: [] }
  const image = await ensureGuestImage({ onBuild: (path) => progress(`building the guest image ${path} (minutes; scripts/build-guest-image)`) })
  const root = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = ctx.procs.addService({ stop: () => rm(root, { recursive: true, force: true }) })
  try {
    await mkdir(join(root, 'www'))
    await symlink(image, join(root, 'www', 'guest.raw'))
    const guest = { root: join(root, 'www'), file: 'guest.raw', accel }
    progress('failover: a guest boot through three mirrors, undisturbed')
    const calm = await boot(ctx, netns, guest, undefined)
    const stopAtRequests = Math.max(1, Math.round(BOOT_STOP_AT * calm.mirror0Requests))
    progress(`failover: a guest boot, mirror 0 stopped after ${stopAtRequests} of its requests (undisturbed boot: ${calm.mirror0Requests} in ${calm.row.readySeconds.toFixed(1)} s)`)
    const stopped = await boot(ctx, netns, guest, stopAtRequests)
    return { accel, rows: [calm.row, stopped.row] }
  } finally {
    await ctx.procs.stopService(temp)
  }
}

/**
 * Fresh mirrors of `file` (a path in `root`) and a fresh daemon with `urls:` listing them; runs
 * `work(disk, stop, served)`, where `stop()` stops mirror 0 and returns when (epoch ms) and
 * `served()` counts mirror 0's requests so far; the daemon's log and each mirror's requests after.
 */
async function withMirrors(ctx, netns, { root, file }, work) {
  const { procs, settings } = ctx
  // One root for all three: the same file, so the same ETag, as copies made with rsync -t would have.
  const mirrors = []
  for (let i = 0; i < MIRRORS; i++) mirrors.push(procs.addService(await startNginx(root, { netns, prefix: `${NETNS_PREFIX}nginx-` })))
  const config = join(settings.benchDir, `failover-${process.pid}.yaml`)
  const mount = inNetns(
    {
      key: 'failover',
      title: 'snapmount (three mirrors)',
      command: async (mnt) => {
        const urls = mirrors.map((mirror) => `      - ${mirror.url(file)}`)
        await writeFile(config, ['mountpoint: ' + mnt, 'snapshots:', '  - type: http', `    name: ${NAME}`, '    urls:', ...urls, ''].join('\n'))
        return [SNAPMOUNT, 'mount', '--config', config]
      },
    },
    netns,
  )
  const daemon = await startDaemon(ctx, mount)
  try {
    const stop = () => {
      const at = Date.now()
      void procs.stopService(mirrors[0])
      return at
    }
    const served = () => mirrors[0].requests().then((requests) => requests.length)
    const result = await work(join(daemon.mnt, NAME), stop, served)
    // mirror0: its label in the daemon's log (no query string to redact), to tell its failover from another's.
    return { ...result, log: daemon.log, mirror0: mirrors[0].url(file), mirrorRequests: await Promise.all(mirrors.map((mirror) => mirror.requests().then((r) => r.length))) }
  } finally {
    await daemon.stop()
    for (const mirror of mirrors) await procs.stopService(mirror)
  }
}

/**
 * `work` while mirror 0's requests are counted every BOOT_POLL_MS, mirror 0 stopped once they
 * reach `stopAtRequests` (if given): its result and when the stop was.
 */
async function stoppingAt(stopAtRequests, stop, served, work) {
  let stoppedAt
  let counting = false
  const poll =
    stopAtRequests === undefined
      ? undefined
      : setInterval(() => {
          if (counting || stoppedAt !== undefined) return
          counting = true
          served()
            .then((count) => {
              if (count >= stopAtRequests && stoppedAt === undefined) stoppedAt = stop()
            })
            .finally(() => (counting = false))
        }, BOOT_POLL_MS)
  try {
    const result = await work()
    if (stopAtRequests !== undefined && stoppedAt === undefined) throw new Error(`failover: the boot ended before mirror 0 had answered ${stopAtRequests} requests`)
    return { ...result, stoppedAt }
  } finally {
    clearInterval(poll)
  }
}

/** One read run: the full read, mirror 0 stopped once it is STOP_AT through if `stopping`; its row and its reads. */
async function run(ctx, netns, stopping) {
  const { image } = ctx
  const { reads, stoppedAt, log, mirror0, mirrorRequests } = await withMirrors(ctx, netns, { root: dirname(image.path), file: basename(image.path) }, (disk, stop) =>
    checkedReads(ctx, disk, stopping ? stop : undefined),
  )
  return { row: { ...failoverRow(stopping ? 'mirror 0 stopped' : 'undisturbed', reads, { stoppedAt, log, from: mirror0 }), mirrorRequests }, reads }
}

/** lib/checked-reads.mjs on `disk`; `stop()` called when it says it is STOP_AT through. Its reads, and when the stop was. */
function checkedReads({ procs, image }, disk, stop) {
  return new Promise((resolve, reject) => {
    procs.refuseIfStopping('checked-reads')
    const child = procs.spawnTool(process.execPath, [READER, disk, image.path, ...(stop ? [String(STOP_AT)] : [])])
    let stdout = ''
    let stderr = ''
    let stoppedAt
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => {
      stderr += chunk
      if (stop && stoppedAt === undefined && /^mark$/m.test(stderr)) stoppedAt = stop()
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`checked-reads.mjs ${disk} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`))
      resolve({ reads: JSON.parse(stdout).reads, stoppedAt })
    })
  })
}

/**
 * One boot of the guest through the mirrors, cold, mirror 0 stopped once it has answered
 * `stopAtRequests` requests if given: its row, and mirror 0's requests (an undisturbed boot's).
 */
async function boot(ctx, netns, guest, stopAtRequests) {
  const { root, file, accel } = guest
  const { boot: booted, stoppedAt, log, mirror0, mirrorRequests } = await withMirrors(ctx, netns, { root, file }, (disk, stop, served) =>
    stoppingAt(stopAtRequests, stop, served, async () => ({ boot: await bootGuest(disk, { accel, cache: 'none' }) })),
  )
  return { row: bootRow(stopAtRequests === undefined ? 'boot, undisturbed' : 'boot, mirror 0 stopped', booted, { stoppedAt, log, from: mirror0 }), mirror0Requests: mirrorRequests[0] }
}

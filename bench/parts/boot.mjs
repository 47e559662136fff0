// The boot part (issue 16): a Debian guest (scripts/build-guest-image, 4 GiB raw) booted by QEMU
// to its ready marker, cold, from the image as a local file (the floor), through snapmount's file
// backend, snapmount over HTTP (nginx) and S3 (radosgw) at 0 ms and at RTT_MS, and the peers at
// RTT_MS as their users run them: QEMU's own curl driver, nbdkit's curl plugin under QEMU's NBD
// client, rclone mount (cache off and full), httpfs2, and for S3 s3fs and rclone.
//
// The RTT_MS condition is a network namespace whose loopback delays every packet in the kernel
// (tools/delay-netns.mjs): nginx, radosgw and every client of them (the daemons, nbdkit, QEMU
// with its curl driver) run inside it; the mounts they make and QEMU reading them are the host's.
// The 0 ms condition is the host's own loopback.
//
// Each boot is cold: the image's pages are dropped from the host's page cache (`dd iflag=nocache
// count=0`, this file only), the daemon is a fresh one (rclone's cache dir emptied), and its
// connections are new. QEMU runs with cache=none (O_DIRECT: each of the guest's reads reaches
// the mount once, as the guest's block layer issued it) and snapshot=on. Per row: the median of
// `runs` boots, each run's time, what the guest read (QMP), and the bytes the server sent
// (nginx's access log; radosgw's log of each request).

import { spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { clearStaleDelayNetns, startDelayNetns } from '../../tools/delay-netns.mjs'
import { BOOT_TIMEOUT_MS, bootGuest, chooseAccel, ensureGuestImage } from '../../tools/linux-guest.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { bytesSentFromLog, startRadosgw } from '../../tools/radosgw.mjs'
import { parseTrace, summarizeReads } from '../lib/boot-trace.mjs'
import { PROFILE_BLOCK_BYTES, randomRuns, runsFromReads, validatorFromLog } from '../lib/boot-profile.mjs'
import { encodeProfile } from '../../dist/profile/format.js'
import { inNetns, startDaemon } from '../lib/daemons.mjs'
import { progress } from '../lib/progress.mjs'
import { NAME, NGINX_PREFIX, RADOSGW_PREFIX, RTT_MS, SNAPMOUNT, TEMP_PREFIX } from '../lib/settings.mjs'
import { median } from '../lib/stats.mjs'
import { httpMounts } from './http.mjs'
import { S3_BUCKET, s3Env, s3Mounts } from './s3.mjs'

/** The image's name where nginx serves it (a link to the cached image) and its key in radosgw. */
const GUEST_FILE = 'guest.raw'
/** The bench's own namespace prefix, so clearing a killed run's touches no test's. */
export const NETNS_PREFIX = 'snapmount-bench-netns-'
/**
 * A boot through a peer that takes longer than this is reported as hung (QEMU killed). The floor
 * takes 25-55 s under TCG here (up to 80 s at load 10-18); a peer a few times slower still fits.
 */
const PEER_BOOT_TIMEOUT_MS = 240_000
/** Boots again after a guest's kernel panic (bootRetryingPanics). */
const PANIC_RETRIES = 2
/** nbdkit's socket appears within a second; this long means it failed. */
const NBDKIT_START_MS = 15_000
/** After the marker, the server's log is read once nothing has been sent for a moment. */
const SERVER_SETTLE_MS = 300
/** The guest's boot as its reads (bench/record-boot-trace.mjs): what the "with profile" rows' profile is made of. */
const BOOT_TRACE = new URL('../../test/fixtures/linux-boot-trace.txt', import.meta.url)
/** A probe daemon says the image's identity within this (its profile loads right after the mount). */
const PROBE_WAIT_MS = 15_000
/** The wrong profile's blocks: drawn at random with this seed. */
const WRONG_PROFILE_SEED = 19

/** The bytes nginx sent (bodies, from its access log), summed over every request so far. */
async function nginxSent(nginx) {
  return (await nginx.requests()).reduce((sum, r) => sum + r.bytes, 0)
}

/** Drops the image's pages from the host's page cache (GNU dd: nocache with count=0 drops the whole file). */
function dropImageCache(procs, image) {
  return procs.run('dd', [`if=${image}`, 'iflag=nocache', 'count=0', 'status=none'])
}

/**
 * A server-side condition: nginx and radosgw (with the image uploaded) on the host's loopback
 * (`rttMs` 0) or in a delaying namespace. Returns what the rows need and a stop().
 */
async function startCondition(ctx, { rttMs, www, image, s3 }) {
  const { procs } = ctx
  const netns = rttMs > 0 ? procs.addService(await startDelayNetns({ rttMs, prefix: NETNS_PREFIX })) : undefined
  const nginx = procs.addService(await startNginx(www, { acceptRangesOnPartial: true, prefix: NGINX_PREFIX, ...(netns && { netns }) }))
  let rgw
  if (s3) {
    const started = Date.now()
    rgw = procs.addService(await startRadosgw({ prefix: RADOSGW_PREFIX, ...(netns && { netns }) }))
    await rgw.createBucket(S3_BUCKET)
    await rgw.uploadFile(S3_BUCKET, GUEST_FILE, image)
    progress(`boot, ${rttMs} ms: radosgw at ${rgw.endpoint}, ${GUEST_FILE} uploaded in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
  return {
    rttMs,
    netns,
    nginx,
    rgw,
    stop: async () => {
      if (rgw) await procs.stopService(rgw)
      await procs.stopService(nginx)
      if (netns) await procs.stopService(netns)
    },
  }
}

/**
 * The rows, in the order they run: each { key, title, group (floor, snapmount, peer), proto,
 * rttMs, note? } with `prepare(dir)` resolving to { disk or driveFile, wrap?, sent(), stop() }
 * for one cold boot, or a `note` saying why it is not measured.
 */
function bootRows(ctx, { image, peers, conditions, dir }) {
  const rows = []
  const local = { proto: 'local', rttMs: 0 }
  rows.push({ key: 'local', title: 'local file (QEMU on the image)', group: 'floor', ...local, prepare: async () => ({ disk: image, sent: async () => undefined, stop: async () => {} }) })
  const mounted = (mount, condition, sent) => async () => {
    const daemon = await startDaemon(ctx, inNetns(mount, condition?.netns))
    return { disk: join(daemon.mnt, mount.file ?? NAME), sent, stop: async () => checkExit(mount, await daemon.stop()) }
  }
  const fileMount = { key: 'boot-file', title: 'snapmount file', command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=${image}`] }
  rows.push({ key: 'snapmount-file', title: 'snapmount file', group: 'snapmount', ...local, prepare: mounted(fileMount, undefined, async () => undefined) })
  for (const condition of conditions) {
    const { rttMs, nginx, rgw } = condition
    const http = httpMounts(nginx.origin, GUEST_FILE, peers, dir)
    rows.push({ key: `snapmount-http-${rttMs}ms`, title: 'snapmount HTTP', group: 'snapmount', proto: 'http', rttMs, prepare: mounted(http[0], condition, () => nginxSent(nginx)) })
    if (rgw) {
      const env = s3Env(ctx.procs.env, rgw)
      const s3 = s3Mounts({ endpoint: rgw.endpoint, key: GUEST_FILE, rgw, env, dir, peers })
      rows.push({ key: `snapmount-s3-${rttMs}ms`, title: 'snapmount S3', group: 'snapmount', proto: 's3', rttMs, prepare: mounted(s3[0], condition, () => radosgwSent(rgw)) })
    }
  }
  const far = conditions.find((c) => c.rttMs === RTT_MS)
  if (!far) return rows
  const { nginx, rgw, netns } = far
  profileRows(ctx, { rows, far, image, dir })
  const url = nginx.url(`/${GUEST_FILE}`)
  const peer = (key, title, proto, prepare, note) => rows.push({ key, title, group: 'peer', proto, rttMs: RTT_MS, ...(note ? { note } : { prepare }) })
  peer('qemu-curl', "QEMU's curl driver (file.driver=http)", 'http', async () => ({
    driveFile: ['file.driver=http', `file.url=${url.replaceAll(',', ',,')}`],
    wrap: (command, args) => netns.wrap(command, args),
    sent: () => nginxSent(nginx),
    stop: async () => {},
  }), peers.qemuSystemCurl?.path ? undefined : peers.qemuSystemCurl?.note)
  peer('nbdkit-curl', 'nbdkit curl + QEMU nbd', 'http', async () => startNbdkit(ctx, peers.nbdkit.path, url, netns, () => nginxSent(nginx)), peers.nbdkit?.path ? undefined : peers.nbdkit?.note)
  const http = Object.fromEntries(httpMounts(nginx.origin, GUEST_FILE, peers, dir).map((m) => [m.key, m]))
  const sentHttp = () => nginxSent(nginx)
  peer('rclone-http', 'rclone mount, cache off', 'http', http.rclone && mounted(http.rclone, far, sentHttp), !http.rclone && peers.rclone?.note)
  const rcloneFull = http.rclone && { ...http.rclone, key: 'rclone-full', command: async (mnt) => [...(await http.rclone.command(mnt)), '--vfs-cache-mode', 'full'] }
  peer('rclone-http-full', 'rclone mount, cache full', 'http', rcloneFull && mounted(rcloneFull, far, sentHttp), !rcloneFull && peers.rclone?.note)
  peer('httpfs2', 'httpfs2', 'http', http.httpfs2 && mounted(http.httpfs2, far, sentHttp), !http.httpfs2 && peers.httpfs2?.note)
  if (rgw) {
    const env = s3Env(ctx.procs.env, rgw)
    const s3 = Object.fromEntries(s3Mounts({ endpoint: rgw.endpoint, key: GUEST_FILE, rgw, env, dir, peers }).map((m) => [m.key, m]))
    const sentS3 = () => radosgwSent(rgw)
    peer('s3fs', 's3fs', 's3', s3.s3fs && mounted(s3.s3fs, far, sentS3), !s3.s3fs && peers.s3fs?.note)
    peer('rclone-s3', 'rclone mount (S3), cache off', 's3', s3.rclone && mounted(s3.rclone, far, sentS3), !s3.rclone && peers.rclone?.note)
  }
  return rows
}

/**
 * Issue 19's rows at RTT_MS: snapmount over HTTP and S3 with a boot profile made from the guest's
 * recorded trace, and over HTTP with a wrong one (as many blocks, drawn at random, under the
 * image's own identity, so it passes the check: the worst case). The profile names the image's
 * identity, which only the daemon knows as it checks it (the ETag as the source gives it): a probe
 * daemon, given a profile of another identity, says it in its warning. Each daemon has a control
 * socket: after the boot, `status` gives the cache's hits and misses and what the profile fetched.
 */
function profileRows(ctx, { rows, far, image, dir }) {
  const { rttMs, nginx, rgw } = far
  const entries = {
    http: { entry: `{ name: ${NAME}, type: http, url: ${nginx.url(`/${GUEST_FILE}`)}`, sent: () => nginxSent(nginx), env: undefined },
    ...(rgw && { s3: { entry: `{ name: ${NAME}, type: s3, url: s3://${S3_BUCKET}/${GUEST_FILE}, endpoint: ${rgw.endpoint}, region: ${rgw.region}`, sent: () => radosgwSent(rgw), env: s3Env(ctx.procs.env, rgw) } }),
  }
  const profiled = (proto, key, title, wrong) => {
    const { entry, sent, env } = entries[proto]
    const profile = join(dir, `${key}.profile.json`)
    const socket = join(dir, `${key}.sock`)
    const mount = {
      key,
      title,
      env,
      command: async (mnt) => {
        const config = join(dir, `${key}.yaml`)
        await writeFile(config, `mountpoint: ${mnt}\noptions: { control_socket: ${socket} }\nsnapshots:\n  - ${entry}, prefetch_profile: ${profile} }\n`)
        return [SNAPMOUNT, 'mount', '--config', config]
      },
    }
    let written = false
    return async () => {
      if (!written) {
        await writeProfile(ctx, { mount: inNetns(mount, far.netns), profile, image, wrong })
        written = true
      }
      const daemon = await startDaemon(ctx, inNetns(mount, far.netns))
      return {
        disk: join(daemon.mnt, NAME),
        sent,
        stats: () => profileStats(ctx, socket),
        stop: async () => checkExit(mount, await daemon.stop()),
      }
    }
  }
  const add = (proto, key, title, wrong) => rows.push({ key, title, group: 'snapmount', proto, rttMs, prepare: profiled(proto, key, title, wrong) })
  add('http', `snapmount-http-${rttMs}ms-profile`, 'snapmount HTTP, with profile', false)
  if (rgw) add('s3', `snapmount-s3-${rttMs}ms-profile`, 'snapmount S3, with profile', false)
  add('http', `snapmount-http-${rttMs}ms-wrong-profile`, 'snapmount HTTP, wrong profile', true)
}

/** Writes the profile `mount` prefetches: the trace's, or a random one; under the identity a probe daemon reports. */
async function writeProfile(ctx, { mount, profile, image, wrong }) {
  const { size } = await stat(image)
  const probe = (validator) => encodeProfile({ identity: { bytes: size, validator }, blockBytes: PROFILE_BLOCK_BYTES, recordedAt: new Date(), runs: [] })
  await writeFile(profile, probe('"probe: not this image"'))
  const daemon = await startDaemon(ctx, mount)
  let validator
  try {
    for (const began = Date.now(); !(validator = validatorFromLog(daemon.log)) && Date.now() - began < PROBE_WAIT_MS; ) await new Promise((resolve) => setTimeout(resolve, 50))
  } finally {
    await daemon.stop()
  }
  if (!validator) throw new Error(`${mount.title}: the probe daemon did not report the image's identity:\n${daemon.log}`)
  const runs = runsFromReads(parseTrace(await readFile(BOOT_TRACE, 'utf8')))
  const text = encodeProfile({ identity: { bytes: size, validator }, blockBytes: PROFILE_BLOCK_BYTES, recordedAt: new Date(), runs: wrong ? randomRuns(runs, size, WRONG_PROFILE_SEED) : runs })
  await writeFile(profile, text)
  progress(`${mount.title}: profile of ${runs.length} runs written under ${validator}`)
}

/** The daemon's cache hits and misses (block lookups of the guest's reads) and its prefetch report, from `status`. */
async function profileStats(ctx, socket) {
  const report = JSON.parse((await ctx.procs.run(SNAPMOUNT, ['status', '--json', '--socket', socket])).stdout)
  return { cacheHits: report.cache?.hits, cacheMisses: report.cache?.misses, prefetch: report.snapshots[0]?.prefetch }
}

async function radosgwSent(rgw) {
  return bytesSentFromLog(await rgw.gatewayLog())
}

/** A daemon that did not exit cleanly after SIGTERM is worth a line (its boot still counts). */
function checkExit(mount, { code, signal }) {
  if ((signal ?? code) !== (mount.sigtermExit ?? 0)) progress(`${mount.title}: exited ${signal ?? code} after SIGTERM`)
}

/** nbdkit's curl plugin serving `url` on a unix socket, run in `netns`; QEMU's NBD client reads it. */
async function startNbdkit(ctx, nbdkit, url, netns, sent) {
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const socket = join(dir, 'nbd.sock')
  const [command, args] = netns.wrap(nbdkit, ['--foreground', '--readonly', '--unix', socket, 'curl', `url=${url}`])
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: ctx.procs.env })
  let log = ''
  child.stderr.on('data', (chunk) => (log += chunk))
  const exited = new Promise((resolve) => child.once('close', resolve))
  const stop = async () => {
    child.kill('SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
  }
  const service = ctx.procs.addService({ stop })
  for (const began = Date.now(); !(await access(socket).then(() => true, () => false)); ) {
    if (child.exitCode !== null || Date.now() - began > NBDKIT_START_MS) {
      await ctx.procs.stopService(service)
      throw new Error(`nbdkit did not listen on ${socket}: ${log.trim()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { driveFile: ['file.driver=nbd', 'file.server.type=unix', `file.server.path=${socket}`], sent, stop: () => ctx.procs.stopService(service) }
}

/** One cold boot of `row`: { readyMs, guestBytes, guestReads, serverBytes, reads? }. */
async function bootOnce(ctx, row, { accel, image, dir, timeoutMs, traceReads }) {
  await dropImageCache(ctx.procs, image)
  // rclone's cache (full mode) lives here: a cold boot starts with none.
  await rm(join(dir, 'rclone-cache'), { recursive: true, force: true })
  const source = await row.prepare(dir)
  try {
    const before = await source.sent()
    const boot = await bootGuest(source.disk ?? '', { accel, cache: 'none', timeoutMs, traceReads, ...(source.driveFile && { driveFile: source.driveFile }), ...(source.wrap && { wrap: source.wrap }) })
    if (boot.failedUnitCount !== 0) progress(`${row.title}: the guest reported ${boot.failedUnitCount} failed units: ${boot.failedUnits.join(' ')}`)
    await new Promise((resolve) => setTimeout(resolve, SERVER_SETTLE_MS))
    const after = await source.sent()
    const stats = await source.stats?.()
    return {
      readyMs: boot.readyMs,
      guestBytes: boot.guestRead?.bytes,
      guestReads: boot.guestRead?.operations,
      serverBytes: before === undefined ? undefined : after - before,
      failedUnits: boot.failedUnitCount,
      ...(stats && { stats }),
      ...(boot.reads && { reads: boot.reads }),
    }
  } finally {
    await source.stop()
  }
}

/**
 * bootOnce, booted again (at most PANIC_RETRIES times) when the guest's kernel panicked: under TCG
 * on a loaded host its timer check fails now and then in its first instants, before it reads
 * anything through the mount. Each retry is a note in `notes`.
 */
async function bootRetryingPanics(ctx, row, options, notes) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await bootOnce(ctx, row, options)
    } catch (err) {
      if (!err.guestPanic || attempt >= PANIC_RETRIES || ctx.procs.stopping) throw err
      notes.push(`${row.title}, ${row.rttMs} ms: booted again, ${err.message.split('\n')[0]} (load ${loadavg()[0].toFixed(1)})`)
      progress(notes.at(-1))
    }
  }
}

/**
 * Every row's boots (`runs` each, in rounds), the trace of the floor's first boot summarised. A
 * snapmount row that fails fails the part; a peer that fails or hangs is noted with why and its
 * other runs skipped.
 */
export async function measureBoot(ctx, peers, { runs, only }) {
  const { procs } = ctx
  const loadBefore = loadavg()[0]
  const { accel, reason } = await chooseAccel()
  if (!accel) throw new Error(`the boot part cannot boot a guest here: ${reason}`)
  const image = await ensureGuestImage({ onBuild: (path) => progress(`building the guest image ${path} (minutes; scripts/build-guest-image)`) })
  for (const name of await clearStaleDelayNetns(NETNS_PREFIX)) progress(`removed network namespace ${name}, left by an earlier run`)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = procs.addService({ stop: () => rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'rclone-empty.conf'), '')
  const www = join(dir, 'www')
  await mkdir(www)
  await symlink(image, join(www, GUEST_FILE))
  // rclone's http backend lists the directory from its HTML index.
  await writeFile(join(www, 'index.html'), `<!doctype html>\n<html><body><a href="${GUEST_FILE}">${GUEST_FILE}</a></body></html>\n`)
  const conditions = []
  const result = { accel, accelReason: reason, image, cache: 'none', overlay: 'snapshot', runs, rows: {}, notes: [] }
  try {
    // With `only` (--boot-rows), the 0 ms servers only if a row chosen needs them.
    for (const rttMs of [0, RTT_MS]) {
      if (rttMs === 0 && only && !only.some((key) => key.includes('-0ms'))) continue
      conditions.push(await startCondition(ctx, { rttMs, www, image, s3: !only || only.some((key) => key.includes('s3')) }))
    }
    const rows = bootRows(ctx, { image, peers, conditions, dir }).filter((row) => !only || only.includes(row.key))
    for (const row of rows) {
      result.rows[row.key] = { title: row.title, group: row.group, proto: row.proto, rttMs: row.rttMs, runs: [], ...(row.note && { note: row.note }) }
    }
    // Round by round, every row once per round: the machine's load drifts over the part's half
    // hour, and each row's median then spans the same stretch of it.
    for (let i = 0; i < runs; i++) {
      for (const row of rows) {
        const entry = result.rows[row.key]
        if (entry.note) continue
        const traceReads = row.key === 'local' && i === 0
        const timeoutMs = row.group === 'peer' ? PEER_BOOT_TIMEOUT_MS : BOOT_TIMEOUT_MS[accel]
        try {
          const load = loadavg()[0]
          const run = await bootRetryingPanics(ctx, row, { accel, image, dir, timeoutMs, traceReads }, result.notes)
          if (run.reads) result.trace = summarizeReads(run.reads, (await stat(image)).size)
          delete run.reads
          entry.runs.push({ ...run, load })
          progress(`boot ${row.title}, ${row.rttMs} ms, run ${i + 1}/${runs}: ${(run.readyMs / 1000).toFixed(1)} s; guest read ${mib(run.guestBytes)} MiB; server sent ${mib(run.serverBytes)} MiB; load ${load.toFixed(1)}`)
        } catch (err) {
          if (row.group !== 'peer' || procs.stopping) throw err
          // Where the guest had got to: the console's last line.
          const last = err.console?.split('\n').map((line) => line.trim()).filter(Boolean).at(-1)
          entry.note = `failed: ${err.message.split('\n')[0]}${last ? `; the console's last line: ${last}` : ''}`
          progress(`boot ${row.title}: ${entry.note}`)
        }
      }
    }
    for (const entry of Object.values(result.rows)) {
      entry.medianMs = median(entry.runs.map((r) => r.readyMs))
      entry.guestBytes = median(entry.runs.map((r) => r.guestBytes))
      entry.serverBytes = median(entry.runs.map((r) => r.serverBytes))
    }
  } finally {
    for (const condition of conditions) await condition.stop()
    await procs.stopService(temp)
  }
  result.load = { before: loadBefore, after: loadavg()[0] }
  return result
}

function mib(bytes) {
  return bytes === undefined ? 'n/a' : (bytes / 2 ** 20).toFixed(1)
}

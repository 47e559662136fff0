// Where the daemon's CPU goes on a sequential HTTP read (issue 17): one fresh snapmount daemon
// mounting the bench's 1 GiB image from nginx, read once with `dd bs=1M` (buffered: the kernel's
// readahead, as a plain reader gets it), and the daemon's CPU seconds per GiB from /proc beside
// the rate. `--cpu-prof DIR` runs the daemon under V8's sampling profiler and prints the functions
// with the most self time. Not part of `npm test` or of `npm run bench`; for finding and checking
// cuts one at a time. Run it under `flock /tmp/snapmount-bench.lock` on a shared machine.
//
// Page faults are the daemon's first touch of its memory, not a rate: Node's start (~5k), then
// the block cache's buffers up to a sequential stream's working set (~160 MiB of the arena with
// the default cache: the small queue's tenth plus the fetches in flight), written once each and
// recycled warm after; minflt is flat once the read has run ~1 s. Per MiB they shrink as --mib
// grows (1 GiB: 42-48 over the daemon's life, ~43 of them during the read; 256 MiB: ~165, ~150).
//
//   node bench/cpu-probe.mjs [--runs N] [--mib N] [--rtt MS | --proxy MS] [--s3] [--manifest FILE] [--cpu-prof DIR] [--top N] [-- daemon args]
//
// --rtt MS puts nginx and the daemon in a network namespace whose loopback delays every packet
// (tools/delay-netns.mjs: kernel TCP, slow start after idle as on a stock host). Arguments after
// `--` go to `snapmount mount` (e.g. `--cache-size-mib 64`). --s3 reads the image from Ceph's
// radosgw instead of nginx (started here, the image uploaded first: ~15 s), the daemon mounting it
// from a config as the bench's S3 part does; not with --rtt. --proxy MS puts the bench's own
// delay proxy (tools/delay-proxy.mjs, MS each way, the remote parts' window and timer slack)
// between the daemon and the server, as the bench's remote parts do, and prints what it counted
// (GETs, connections, bytes) and its own CPU per GiB beside the daemon's. --connections N sets the
// snapshot's `connections:` (HTTP's default is 8, S3's 64), from a config as for S3. --manifest
// FILE pins that manifest (`snapmount manifest create` of the bench's image) on the snapshot, from
// a config too, as the bench's manifest rows do. --syscalls
// counts the daemon's read, epoll_pwait, epoll_wait and writev calls during the read (`perf stat` on their
// tracepoints): socket reads per MiB say how finely the body arrived. --alternate (with --s3 and
// --proxy) makes every other run go straight to radosgw, so the two paths are compared under the
// same load, back to back, on one gateway. Free page reporting is paused for the probe as for the
// bench (lib/page-reporting.mjs); --keep-page-reporting leaves it on.

import { spawn, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { startDelayNetns } from '../tools/delay-netns.mjs'
import { startDelayProxy } from '../tools/delay-proxy.mjs'
import { startNginx } from '../tools/nginx.mjs'
import { startRadosgw } from '../tools/radosgw.mjs'
import { S3_BUCKET, s3Env } from './parts/s3.mjs'
import { sampleCpu } from './lib/cpu.mjs'
import { SourceImage } from './lib/images.mjs'
import { pauseFreePageReporting, restoreFreePageReporting } from './lib/page-reporting.mjs'
import { DEFAULT_BENCH_DIR, IMAGE_BYTES, PROXY_TIMER_SLACK_MS, PROXY_WINDOW_BYTES, ROOT, SNAPMOUNT } from './lib/settings.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '1' },
    mib: { type: 'string', default: '1024' },
    rtt: { type: 'string' },
    proxy: { type: 'string' },
    connections: { type: 'string' },
    manifest: { type: 'string' },
    syscalls: { type: 'boolean', default: false },
    alternate: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    perf: { type: 'string' },
    curl: { type: 'boolean', default: false },
    s3: { type: 'boolean', default: false },
    'no-idle-restart': { type: 'boolean', default: false },
    'keep-page-reporting': { type: 'boolean', default: false },
    start: { type: 'string' },
    top: { type: 'string', default: '25' },
  },
})
const mib = Number(values.mib)
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/**
 * The daemon's command: bin/snapmount's own Node flags and environment, with the profiler's
 * flags added (node refuses --cpu-prof in NODE_OPTIONS, so the wrapper cannot pass it on).
 */
async function daemonCommand(profDir) {
  const script = await readFile(SNAPMOUNT, 'utf8')
  const flags = /exec node (.*?) "\$dist/.exec(script)[1].split(' ')
  const entry = `dist/${/^entry=(.*)$/m.exec(script)[1]}`
  const env = { ...process.env }
  for (const [, name, value] of script.matchAll(/: "\$\{(\w+):=([^}]*)\}"/g)) env[name] ??= value
  const prof = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
  return { args: [...flags, ...prof, join(ROOT, entry)], env }
}

/**
 * The daemon's user and system ticks (fields 14 and 15 of /proc/PID/stat: all its threads), so a
 * read's CPU splits into what its code did and what the kernel did for it: the kernel's share
 * (socket and FUSE copies, page faults) is what moves with the machine's memory traffic. And its
 * minor page faults (field 10), to count the read's own apart from the start's.
 */
async function userSystemTicks(pid) {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
  return { user: Number(fields[11]), system: Number(fields[12]), minflt: Number(fields[7]) }
}

/** The daemon's system calls --syscalls counts. */
const SYSCALLS = ['read', 'epoll_pwait', 'epoll_wait', 'writev']

/** Starts the daemon and resolves once it logs "mounted", with the ms that took. */
async function startDaemon(command, mnt, source, extra, netns) {
  // `source`: a URL or path, or { snapshot, dir, env } for an S3 snapshot: a config in `dir` with
  // the mountpoint and that snapshot entry (a config names the mountpoint itself).
  let sourceArgs = [mnt, `img=${source}`]
  if (typeof source !== 'string') {
    const config = join(source.dir, `${basename(mnt)}.yaml`)
    await writeFile(config, `mountpoint: ${mnt}\nsnapshots:\n${source.snapshot}\n`)
    sourceArgs = ['--config', config]
  }
  const args = [...command.args, 'mount', ...sourceArgs, ...extra]
  const [program, programArgs] = netns ? netns.wrap(process.execPath, args) : [process.execPath, args]
  const started = performance.now()
  const child = spawn(program, programArgs, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...command.env, ...source.env } })
  let log = ''
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve(signal ?? code)))
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      log += chunk
      if (/\bmounted\b/.test(log)) resolve()
    })
    exited.then((status) => reject(new Error(`daemon exited (${status}) before mounting:\n${log}`)))
  })
  return { child, exited, mountMs: performance.now() - started, log: () => log }
}

function dd(file, mib) {
  return new Promise((resolve, reject) => {
    const child = spawn('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', `count=${mib}`, 'status=none'], { stdio: 'inherit' })
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`dd exited ${code}`))))
  })
}

async function run(server, command, extra, netns) {
  const mnt = await mkdtemp(join(tmpdir(), 'snapmount-cpu-probe-'))
  const daemon = await startDaemon(command, mnt, server.source, extra, netns)
  try {
    const pid = daemon.child.pid
    const proxyBefore = server.proxy?.counters()
    const before = await sampleCpu(pid)
    const threadsBefore = await userSystemTicks(pid)
    const ownBefore = process.cpuUsage()
    const counting = values.syscalls && spawn('perf', ['stat', '-x', ',', '-o', join(mnt + '.perf-stat'), '-e', SYSCALLS.map((name) => `syscalls:sys_enter_${name}`).join(','), '-p', String(pid)], { stdio: 'inherit' })
    const perf = values.perf && spawn('perf', ['record', '-q', '-g', ...(process.env.PERF_EVENT ? ['-e', process.env.PERF_EVENT] : []), '-o', values.perf, '-p', String(pid)], { stdio: 'inherit' })
    const started = performance.now()
    await dd(join(mnt, 'img'), mib)
    const seconds = (performance.now() - started) / 1000
    // Readahead still arriving is the read's too.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const ownAfter = process.cpuUsage(ownBefore)
    const after = await sampleCpu(pid)
    const threadsAfter = await userSystemTicks(pid)
    const proxyAfter = server.proxy?.counters()
    for (const child of [perf, counting]) {
      if (!child) continue
      child.kill('SIGINT')
      await new Promise((resolve) => child.on('close', resolve))
    }
    let syscalls
    if (counting) {
      const stat = await readFile(mnt + '.perf-stat', 'utf8')
      await rm(mnt + '.perf-stat', { force: true })
      syscalls = Object.fromEntries(SYSCALLS.map((name) => [name, Number(new RegExp(`^(\\d+),,syscalls:sys_enter_${name},`, 'm').exec(stat)?.[1]) / mib]))
    }
    // Fields 10 (minflt), 14 and 15 (utime, stime) of /proc/PID/stat, over the daemon's life.
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')
    const [minflt, utime, stime] = [fields[7], fields[11], fields[12]].map(Number)
    const bytes = mib * 2 ** 20
    const cpuSeconds = (after.daemonTicks - before.daemonTicks) / ticksPerSecond
    const idle = (after.machine.idle - before.machine.idle) / (after.machine.total - before.machine.total)
    const rss = /VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))[1] / 1024
    const proxy = proxyAfter && {
      gets: proxyAfter.gets - proxyBefore.gets,
      connections: proxyAfter.connections - proxyBefore.connections,
      bytesPerByte: (proxyAfter.bytesFromTarget - proxyBefore.bytesFromTarget) / bytes,
      cpuPerGiB: (ownAfter.user + ownAfter.system) / 1e6 / (bytes / 2 ** 30),
    }
    const perGiB = (ticks) => ticks / ticksPerSecond / (bytes / 2 ** 30)
    const split = { user: perGiB(threadsAfter.user - threadsBefore.user), system: perGiB(threadsAfter.system - threadsBefore.system) }
    return { split, mountMs: daemon.mountMs, mbps: bytes / seconds / 1e6, cpuPerGiB: cpuSeconds / (bytes / 2 ** 30), idle, rssMiB: rss, systemShare: stime / (utime + stime), faultsPerMiB: minflt / mib, readFaultsPerMiB: (threadsAfter.minflt - threadsBefore.minflt) / mib, proxy, syscalls }
  } finally {
    daemon.child.kill('SIGTERM')
    const status = await daemon.exited
    if (status !== 0) process.stderr.write(`daemon exited ${status}:\n${daemon.log()}`)
    await rmdir(mnt).catch(() => {})
  }
}

/** The functions with the most self time in a .cpuprofile, as [ms, share, name]. */
function topSelfTime(profile, top) {
  const selfTicks = new Map()
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const counts = new Map()
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)
  const totalUs = profile.endTime - profile.startTime
  const perSample = totalUs / profile.samples.length
  for (const [id, count] of counts) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const name = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim()
    selfTicks.set(name, (selfTicks.get(name) ?? 0) + count)
  }
  const busy = [...counts].filter(([id]) => byId.get(id).callFrame.functionName !== '(idle)').reduce((sum, [, count]) => sum + count, 0)
  return {
    busyMs: (busy * perSample) / 1000,
    rows: [...selfTicks]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ticks]) => [(ticks * perSample) / 1000, ticks / busy, name]),
  }
}

/**
 * `--start N`: N daemons started on the local image and stopped at once, each
 * timed to "mounted" in wall-clock ms and in the daemon's CPU ms (user + system, from /proc at
 * that moment): on a loaded machine the CPU figure is the steadier one.
 */
async function measureStarts(command, source, runs) {
  const wall = []
  const cpu = []
  for (let i = 0; i < runs; i++) {
    const mnt = await mkdtemp(join(tmpdir(), 'snapmount-cpu-probe-'))
    const daemon = await startDaemon(command, mnt, source, [], undefined)
    const fields = (await readFile(`/proc/${daemon.child.pid}/stat`, 'utf8')).split(') ')[1].split(' ')
    cpu.push(((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000)
    wall.push(daemon.mountMs)
    daemon.child.kill('SIGTERM')
    await daemon.exited
    await rmdir(mnt).catch(() => {})
  }
  const list = (values) => values.map((v) => v.toFixed(0)).join(', ')
  console.log(`start to mounted (${source}): wall ${list(wall)} ms; daemon CPU ${list(cpu)} ms; load ${loadavg().map((l) => l.toFixed(2)).join(', ')}`)
}

async function main() {
  const image = new SourceImage(undefined, join(DEFAULT_BENCH_DIR, 'image-1GiB-aes128ctr-v1.raw'), IMAGE_BYTES)
  await image.ensure()
  if (values.start) return measureStarts(await daemonCommand(values['cpu-prof']), image.path, Number(values.start))
  if (values.s3) return probeS3(image)
  const netns = values.rtt === undefined ? undefined : await startDelayNetns({ rttMs: Number(values.rtt), prefix: 'snapmount-cpu-probe-', ...(values['no-idle-restart'] && { sysctls: { 'net.ipv4.tcp_slow_start_after_idle': 0 } }) })
  const nginx = await startNginx(DEFAULT_BENCH_DIR, { prefix: 'snapmount-cpu-probe-nginx-', ...(netns && { netns }) })
  const profDir = values['cpu-prof']
  let server
  try {
    const command = await daemonCommand(profDir)
    server = { url: nginx.url(basename(image.path)) }
    server.proxy = await proxyTo(server.url)
    if (server.proxy) server.url = throughProxy(server.url, server.proxy)
    server.source = values.connections === undefined && values.manifest === undefined ? server.url : { snapshot: `  - { name: img, type: http, url: "${server.url}"${snapshotFields()} }`, dir: await mkdtemp(join(tmpdir(), 'snapmount-cpu-probe-http-')) }
    const [load1] = loadavg()
    console.log(`${mib} MiB, dd bs=1M buffered, ${netns ? `kernel TCP at ${netns.rttMs} ms RTT` : 'loopback'}${server.proxy ? `, through the delay proxy (${values.proxy} ms each way)` : ''}; load ${load1.toFixed(2)} (${loadavg().map((l) => l.toFixed(2)).join(', ')})`)
    if (values.curl) {
      // One curl stream of the same bytes, from where the daemon runs.
      const args = ['--silent', '--fail', '--output', '/dev/null', '--range', `0-${mib * 2 ** 20 - 1}`, '--write-out', '%{speed_download}', server.url]
      const { stdout } = netns ? await netns.run('curl', args) : { stdout: execFileSync('curl', args, { encoding: 'utf8' }) }
      console.log(`curl, one stream: ${(Number(stdout) / 1e6).toFixed(0)} MB/s`)
    }
    await runAll(server, command, netns)
  } finally {
    await server?.proxy?.close()
    if (typeof server?.source === 'object') await rm(server.source.dir, { recursive: true, force: true })
    await nginx.stop()
    await netns?.stop()
  }
  await printProfiles(profDir)
}

async function runAll(server, command, netns, direct) {
  for (let i = 0; i < Number(values.runs); i++) {
    const through = direct && i % 2 === 1 ? direct : server
    const r = await run(through, command, positionals, netns)
    console.log(`run ${i + 1}${direct ? (through === direct ? ' (direct)' : ' (proxy)') : ''}: ${r.mbps.toFixed(0)} MB/s, daemon ${r.cpuPerGiB.toFixed(2)} CPU-s/GiB (user ${r.split.user.toFixed(2)} + system ${r.split.system.toFixed(2)} during the read; ${(r.systemShare * 100).toFixed(0)} % of the daemon's life in the kernel, ${r.faultsPerMiB.toFixed(0)} page faults per MiB read, ${r.readFaultsPerMiB.toFixed(0)} of them during the read), machine idle ${(r.idle * 100).toFixed(0)} %, start to mounted ${r.mountMs.toFixed(0)} ms, peak RSS ${r.rssMiB.toFixed(0)} MiB${r.proxy ? `; proxy: ${r.proxy.gets} GETs on ${r.proxy.connections} connections, ${r.proxy.bytesPerByte.toFixed(3)} bytes per byte, proxy CPU ${r.proxy.cpuPerGiB.toFixed(2)} s/GiB` : ''}${r.syscalls ? `; per MiB read: ${Object.entries(r.syscalls).map(([name, n]) => `${n.toFixed(1)} ${name}`).join(', ')}` : ''}`)
  }
  console.log(`load after: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`)
}

/** `--proxy MS`: the bench's delay proxy in front of the server at `url`, or undefined without the option. */
async function proxyTo(url) {
  if (values.proxy === undefined) return undefined
  if (values.rtt !== undefined) throw new Error('--proxy and --rtt are two ways to delay: give one')
  const { hostname, port } = new URL(url)
  return startDelayProxy({ host: hostname, port: Number(port) }, Number(values.proxy), { timerSlackMs: PROXY_TIMER_SLACK_MS, windowBytes: PROXY_WINDOW_BYTES })
}

/** The snapshot entry's fields besides name, type and url: `connections: N` (--connections) and the pinned manifest (--manifest). */
function snapshotFields() {
  const manifest = values.manifest === undefined ? '' : `, manifest: { path: "${values.manifest}", sha256: ${createHash('sha256').update(readFileSync(values.manifest)).digest('hex')} }`
  return (values.connections === undefined ? '' : `, connections: ${Number(values.connections)}`) + manifest
}

/** `url` with the proxy's port in place of the server's. */
function throughProxy(url, proxy) {
  const through = new URL(url)
  through.port = String(proxy.port)
  return through.href.replace(/\/$/, '')
}

/** `--s3`: radosgw started here, the image uploaded, then the runs against it. */
async function probeS3(image) {
  const rgw = await startRadosgw({ prefix: 'snapmount-cpu-probe-rgw-', compression: 'none' })
  const dir = await mkdtemp(join(tmpdir(), 'snapmount-cpu-probe-s3-'))
  let proxy
  try {
    await rgw.createBucket(S3_BUCKET)
    const key = basename(image.path)
    await rgw.uploadFile(S3_BUCKET, key, image.path)
    proxy = await proxyTo(rgw.endpoint)
    const endpoint = proxy ? throughProxy(rgw.endpoint, proxy) : rgw.endpoint
    const snapshot = `  - { name: img, type: s3, url: s3://${S3_BUCKET}/${key}, endpoint: "${endpoint}", region: ${rgw.region}${snapshotFields()} }`
    const [load1] = loadavg()
    console.log(`${mib} MiB, dd bs=1M buffered, S3 (radosgw) on loopback${proxy ? `, through the delay proxy (${values.proxy} ms each way)` : ''}; load ${load1.toFixed(2)} (${loadavg().map((l) => l.toFixed(2)).join(', ')})`)
    const env = s3Env(process.env, rgw)
    const direct = values.alternate && proxy && { source: { snapshot: snapshot.replace(endpoint, rgw.endpoint), dir, env } }
    await runAll({ proxy, source: { snapshot, dir, env } }, await daemonCommand(values['cpu-prof']), undefined, direct)
  } finally {
    await proxy?.close()
    await rgw.stop()
    await rm(dir, { recursive: true, force: true })
  }
  await printProfiles(values['cpu-prof'])
}

async function printProfiles(profDir) {
  if (profDir) {
    for (const file of (await readdir(profDir)).filter((name) => name.endsWith('.cpuprofile')).sort()) {
      const { busyMs, rows } = topSelfTime(JSON.parse(await readFile(join(profDir, file), 'utf8')), Number(values.top))
      console.log(`\n${file}: ${busyMs.toFixed(0)} ms on the main thread (not idle); top self time:`)
      for (const [ms, share, name] of rows) console.log(`${ms.toFixed(0).padStart(7)} ms ${(share * 100).toFixed(1).padStart(5)} %  ${name}`)
    }
  }
}

// Ctrl-C skips `finally`: the machine-wide order is put back first (mounts are left as before).
process.once('SIGINT', () => void restoreFreePageReporting().finally(() => process.exit(130)))
try {
  console.log(await pauseFreePageReporting({ keep: values['keep-page-reporting'] }))
  await main()
} finally {
  await restoreFreePageReporting()
}

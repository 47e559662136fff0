// snapmount read benchmark: throughput and IOPS through a fresh daemon for each backend (file,
// mmap, and a zero-cost null backend), against reading the source image directly; then the same
// image from nginx on loopback, plain and behind a 10 ms delay proxy, through snapmount's HTTP
// backend and httpfs2, against a plain HTTP client on the same path. See bench/README.md for what
// each number means. Run with `npm run bench` (it builds first).
//
// Every access to a mount happens in a child process (dd, fio, sha256sum), never in this one, and
// every daemon runs as a child too: a synchronous access from the daemon's own process would
// deadlock it, and an async one from here would still tie the numbers to this event loop.

import { spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, mkdtemp, open, readFile, rename, rm, rmdir, stat } from 'node:fs/promises'
import { cpus, loadavg, release } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDelayProxy } from '../tools/delay-proxy.mjs'
import { NGINX, clearStaleNginx, startNginx } from '../tools/nginx.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** /var/tmp survives reboots and is on disk, not tmpfs: the cached image is reused across runs. */
const BENCH_DIR = process.env.SNAPMOUNT_BENCH_DIR ?? '/var/tmp/snapmount-bench'
/** 1 GiB: a sequential read from page cache lasts long enough (~0.1 s+) for dd's clock to mean something. */
const IMAGE_BYTES = 2 ** 30
/** The name says how the bytes were made, so a change of generator never reuses a stale image. */
const IMAGE_PATH = join(BENCH_DIR, 'image-1GiB-aes128ctr-v1.raw')
/** File name of the image inside each mount. */
const NAME = 'img'
/** Per fio run: 10 runs make ~50 s of the ~90 s total, well inside the 3-minute budget. */
const FIO_SECONDS = 5
/** A daemon that has not said "mounted" or exited by then is reported as hung. */
const DAEMON_TIMEOUT_MS = 15_000
/** The source's buffered sequential read is short and noisy: the median of this many is reported. */
const SOURCE_SEQ_RUNS = 3
/** Cold daemons per backend for the sequential reads; each costs ~0.3 s to start plus two reads. */
const SEQ_DAEMONS = 3

/**
 * The environment of every child: the caller's, without proxy settings. The HTTP part's traffic
 * must go straight to 127.0.0.1, and snapmount and curl would honour an http_proxy.
 */
const DIRECT_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)))

const MOUNTS = [
  { key: 'file', title: 'snapmount file', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=${IMAGE_PATH}`] },
  { key: 'mmap', title: 'snapmount mmap', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=mmap://${IMAGE_PATH}`] },
  { key: 'null', title: 'null backend', command: (mnt) => ['node', join(ROOT, 'bench/null-daemon.mjs'), mnt, NAME, String(IMAGE_BYTES)] },
]

/** Daemons and mountpoints still to be cleaned up, so SIGINT and failures leave no mount behind. */
const live = new Set()
/** nginx and the delay proxy, stopped after the daemons: each has a `stop()`. */
const services = new Set()
/** Running dd/fio/sha256sum: stopped first on SIGINT, so none holds a mount busy while it unmounts. */
const tools = new Set()

// ---------------------------------------------------------------------------------------------
// Child processes

/** Runs a command to completion; rejects with its stderr if it fails. `env` adds to DIRECT_ENV. */
function run(command, args, { env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...DIRECT_ENV, ...env } })
    tools.add(child)
    child.on('close', () => tools.delete(child))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`))
    })
  })
}

/**
 * `dd if=path of=/dev/null bs=1M [count=...]`, the MB/s (10^6 bytes/s) dd's own clock measured,
 * over the first `bytes` of the file (a whole number of MiB).
 */
async function seqReadMBps(path, bytes = IMAGE_BYTES) {
  const count = bytes < IMAGE_BYTES ? [`count=${bytes / 2 ** 20}`] : []
  // LC_ALL=C pins dd's summary line to "N bytes (...) copied, S s, R unit/s".
  const { stderr } = await run('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M', ...count], { env: { LC_ALL: 'C' } })
  const match = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(stderr)
  if (!match) throw new Error(`cannot parse dd output: ${stderr}`)
  const [read, seconds] = [Number(match[1]), Number(match[2])]
  if (read !== bytes) throw new Error(`dd read ${read} bytes of ${path}, expected ${bytes}`)
  return read / seconds / 1e6
}

/** 4 KiB random-read IOPS from fio, psync, `jobs` readers each with its own descriptor. */
async function randReadIops(path, { jobs, direct }) {
  const { stdout } = await run('fio', [
    '--name=randread',
    `--filename=${path}`,
    '--readonly',
    '--rw=randread',
    '--bs=4k',
    '--ioengine=psync',
    `--direct=${direct ? 1 : 0}`,
    // fio's default invalidate=1 drops the file's page cache before the run, which would turn the
    // warm-source measurement into a disk measurement and cool the source for the mounts after it.
    '--invalidate=0',
    // No map of blocks already read: random offsets stay random and fio's own overhead stays low.
    '--norandommap',
    '--time_based',
    `--runtime=${FIO_SECONDS}`,
    `--numjobs=${jobs}`,
    '--group_reporting',
    '--output-format=json',
  ])
  // fio may print notices before the JSON document.
  const report = JSON.parse(stdout.slice(stdout.indexOf('{')))
  const job = report.jobs?.[0]
  if (!job || job.error) throw new Error(`fio reported error ${job?.error} for ${path}`)
  return job.read.iops
}

/** sha256 of a file as sha256sum reads it (buffered: through the page cache). */
async function sha256File(path) {
  const { stdout } = await run('sha256sum', ['--binary', path])
  return stdout.split(' ')[0]
}

/** sha256 of a file read with O_DIRECT, so every byte comes from the daemon, not the page cache. */
function sha256Direct(path) {
  return new Promise((resolve, reject) => {
    const dd = spawn('dd', [`if=${path}`, 'bs=1M', 'iflag=direct', 'status=none'], { stdio: ['ignore', 'pipe', 'pipe'] })
    tools.add(dd)
    dd.on('close', () => tools.delete(dd))
    const hash = createHash('sha256')
    let stderr = ''
    dd.stdout.on('data', (chunk) => hash.update(chunk))
    dd.stderr.on('data', (chunk) => (stderr += chunk))
    dd.on('error', reject)
    dd.on('close', (code) => (code === 0 ? resolve(hash.digest('hex')) : reject(new Error(`dd iflag=direct ${path}: ${stderr.trim()}`))))
  })
}

// ---------------------------------------------------------------------------------------------
// The image

/**
 * Reuses the cached image if it has the right size, else writes one: an AES-128-CTR keystream
 * under a fixed key, so it is incompressible, never a run of zero pages, identical on every
 * machine, and generated at GB/s. Written beside the target and renamed, so an interrupted run
 * never leaves a short image to be reused.
 */
async function ensureImage() {
  await mkdir(BENCH_DIR, { recursive: true })
  const existing = await stat(IMAGE_PATH).catch(() => undefined)
  if (existing?.size === IMAGE_BYTES) return 'reused'
  const partial = `${IMAGE_PATH}.partial-${process.pid}`
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 's'), Buffer.alloc(16))
  const zeros = Buffer.alloc(8 * 2 ** 20)
  const handle = await open(partial, 'w')
  try {
    for (let written = 0; written < IMAGE_BYTES; written += zeros.length) await handle.write(cipher.update(zeros))
    await handle.close()
    await rename(partial, IMAGE_PATH)
  } catch (err) {
    await handle.close().catch(() => {})
    await rm(partial, { force: true })
    throw err
  }
  return 'created'
}

/** sha256 of IMAGE_BYTES zeros: what the null backend's file must hash to. */
function zeroSha256() {
  const hash = createHash('sha256')
  const zeros = Buffer.alloc(64 * 2 ** 20)
  for (let done = 0; done < IMAGE_BYTES; done += zeros.length) hash.update(zeros)
  return hash.digest('hex')
}

// ---------------------------------------------------------------------------------------------
// Daemons and mounts

/** Spawns a daemon and resolves once it logs "mounted"; rejects if it exits or hangs first. */
async function startDaemon(mount) {
  const mnt = await mkdtemp(join(BENCH_DIR, `mnt-${mount.key}-`))
  const [command, ...args] = mount.command(mnt)
  const started = process.hrtime.bigint()
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: DIRECT_ENV })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const daemon = { mnt, child, exited, log: '', stopped: undefined }
  live.add(daemon)
  let poll
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mount.title}: no "mounted" within ${DAEMON_TIMEOUT_MS} ms:\n${daemon.log}`)), DAEMON_TIMEOUT_MS)
    const mounted = () => {
      clearTimeout(timer)
      resolve()
    }
    child.stderr.on('data', (chunk) => {
      daemon.log += chunk
      // "unmounted" contains "mounted" too, but can only come after.
      if (!mount.listedWhenMounted && /\bmounted\b/.test(daemon.log)) mounted()
    })
    // A daemon that does not say when it is ready (httpfs2) is ready once the kernel lists its mount.
    if (mount.listedWhenMounted) poll = setInterval(() => mountedPaths().then((paths) => paths.includes(mnt) && mounted(), reject), 10)
    child.on('error', reject)
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${mount.title} exited (${signal ?? code}) before mounting:\n${daemon.log}`))
    })
  }).finally(() => clearInterval(poll))
  daemon.mountMs = Number(process.hrtime.bigint() - started) / 1e6
  return daemon
}

/**
 * SIGTERM, then waits for the daemon to unmount and exit; resolves to its exit status. Whatever
 * happens, the mountpoint ends unmounted (fusermount -uz if the daemon left it) and removed.
 * Idempotent: the main path and the SIGINT handler may both call it.
 */
function stopDaemon(daemon) {
  daemon.stopped ??= (async () => {
    daemon.child.kill('SIGTERM')
    let timer
    const hung = new Promise((resolve) => (timer = setTimeout(() => resolve(undefined), DAEMON_TIMEOUT_MS)))
    let status = await Promise.race([daemon.exited, hung])
    clearTimeout(timer)
    if (!status) {
      daemon.child.kill('SIGKILL')
      status = { code: null, signal: 'SIGKILL after a hung SIGTERM' }
    }
    await unmountIfMounted(daemon.mnt)
    await rmdir(daemon.mnt).catch(() => {})
    live.delete(daemon)
    return status
  })()
  return daemon.stopped
}

/** Mountpoints currently listed in /proc/self/mountinfo. */
async function mountedPaths() {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  // Field 5 is the mountpoint, with space, tab, newline and backslash as octal escapes.
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter(Boolean)
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8))))
}

async function unmountIfMounted(mnt) {
  if ((await mountedPaths()).includes(mnt)) await run('fusermount', ['-u', '-z', mnt])
}

/** Clears mounts a killed earlier run left under BENCH_DIR. */
async function clearStaleMounts() {
  for (const path of await mountedPaths()) {
    if (!path.startsWith(join(BENCH_DIR, 'mnt-'))) continue
    process.stderr.write(`bench: clearing stale mount ${path}\n`)
    await run('fusermount', ['-u', '-z', path])
    await rmdir(path).catch(() => {})
  }
}

async function cleanupAll() {
  await Promise.allSettled([...live].map(stopDaemon))
  await Promise.allSettled([...services].map((service) => service.stop()))
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** Reads the whole source once so it sits in the page cache, as it would under a busy daemon. */
async function warmSource() {
  await run('dd', [`if=${IMAGE_PATH}`, 'of=/dev/null', 'bs=1M', 'status=none'])
}

async function measureSource() {
  const result = {}
  result.sha = await sha256File(IMAGE_PATH) // also warms the page cache
  const seq = []
  for (let i = 0; i < SOURCE_SEQ_RUNS; i++) seq.push(await seqReadMBps(IMAGE_PATH))
  result.seq = median(seq)
  progress(`source: seq ${fmt(result.seq)} MB/s (median of ${seq.map(fmt).join(', ')})`)
  result.iops1 = await randReadIops(IMAGE_PATH, { jobs: 1, direct: false })
  result.iops8 = await randReadIops(IMAGE_PATH, { jobs: 8, direct: false })
  progress(`source: buffered randread ${fmt(result.iops1)} / ${fmt(result.iops8)} IOPS`)
  try {
    result.iops1Direct = await randReadIops(IMAGE_PATH, { jobs: 1, direct: true })
    result.iops8Direct = await randReadIops(IMAGE_PATH, { jobs: 8, direct: true })
    progress(`source: O_DIRECT randread ${fmt(result.iops1Direct)} / ${fmt(result.iops8Direct)} IOPS`)
  } catch (err) {
    progress(`source: O_DIRECT not measured (${err.message.split('\n')[0]})`)
  }
  return result
}

/**
 * One backend: SEQ_DAEMONS cold daemons each read the file twice (the first read after mount is
 * the number that matters and can only be taken once per mount, and a 2-CPU VM is noisy, so the
 * median is reported); the first daemon also runs the IOPS and checksum measurements.
 */
async function measureMount(mount, expectedSha) {
  const samples = []
  for (let i = 0; i < SEQ_DAEMONS; i++) {
    const sample = await withDaemon(mount, async (file) => {
      const seqCold = await seqReadMBps(file) // the mount's page cache is empty: every page from the daemon
      const seqWarm = await seqReadMBps(file) // kernel_cache: served from the page cache the first read filled
      return { seqCold, seqWarm, ...(i === 0 && (await readerMeasurements(mount, file, expectedSha))) }
    })
    samples.push(sample)
  }
  // A copy: samples[0] must keep its own numbers for the progress line below.
  const result = { ...samples[0] }
  result.seqCold = median(samples.map((s) => s.seqCold))
  result.seqWarm = median(samples.map((s) => s.seqWarm))
  result.mountMs = median(samples.map((s) => s.mountMs))
  result.exit = samples.map((s) => s.exit).find((exit) => exit !== 0) ?? 0
  const list = (key) => samples.map((s) => fmt(s[key])).join(', ')
  progress(`${mount.title}: seq MB/s first read ${list('seqCold')}; cached ${list('seqWarm')}; daemon start ms ${list('mountMs')}`)
  return result
}

/** O_DIRECT IOPS with 1 and 8 readers, then the checksums, on an already-mounted file. */
async function readerMeasurements(mount, file, expectedSha) {
  const iops1 = await randReadIops(file, { jobs: 1, direct: true })
  const iops8 = await randReadIops(file, { jobs: 8, direct: true })
  progress(`${mount.title}: O_DIRECT randread ${fmt(iops1)} / ${fmt(iops8)} IOPS`)
  // Cached: what readers saw, filled by the first read. Direct: what the daemon answers now.
  const shaCached = (await sha256File(file)) === expectedSha
  const shaDirect = (await sha256Direct(file)) === expectedSha
  progress(`${mount.title}: sha256 cached ${okOr(shaCached)}, O_DIRECT ${okOr(shaDirect)}`)
  return { iops1, iops8, shaCached, shaDirect }
}

/** Runs `work(file)` against a fresh daemon, always stopping it; adds start time and exit status. */
async function withDaemon(mount, work) {
  await warmSource() // fio O_DIRECT on the source or another mount must not have left it cold
  const daemon = await startDaemon(mount)
  let result
  try {
    result = await work(join(daemon.mnt, mount.file ?? NAME))
  } finally {
    const { code, signal } = await stopDaemon(daemon)
    if ((signal ?? code) !== 0) progress(`${mount.title}: daemon exited ${signal ?? code} after SIGTERM:\n${daemon.log}`)
    if (result) result.exit = signal ?? code
  }
  return { ...result, mountMs: daemon.mountMs }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

// ---------------------------------------------------------------------------------------------
// HTTP: the same image from nginx, through snapmount's HTTP backend and httpfs2, beside a plain
// HTTP client on the same path

/** The "distant server" condition: 5 ms each way through tools/delay-proxy.mjs, a 10 ms round trip. */
const ONE_WAY_DELAY_MS = 5
/**
 * The proxy may release a chunk this much before it is due: Node's timers tick in whole ms and
 * often fire a fraction early, and without slack each hop would wait a whole extra tick. Measured
 * here: 5 ms asked, 5.1-5.5 ms given (p10-p90).
 */
const PROXY_TIMER_SLACK_MS = 0.5
/** nginx's temp dirs: the bench's own prefix, so clearing a killed run's nginx touches no test's. */
const NGINX_PREFIX = 'snapmount-bench-nginx-'
/**
 * Sequential bytes read on the 10 ms path. With one GET per 128 KiB and one or two in flight, the
 * mounts read 8-20 MB/s there: 128 MiB is already ~1 000 round trips, 7-17 s a mount.
 */
const SLOW_SEQ_BYTES = 128 * 2 ** 20
/** The image as nginx serves it (root BENCH_DIR); httpfs2 names its file after the URL's last segment. */
const HTTP_FILE = basename(IMAGE_PATH)
/**
 * Integrity check per HTTP mount: 1 MiB slices at MiB offsets spread over the image (one in each
 * 64 MiB, at a different place in each), read with O_DIRECT so they come from the daemon now, and
 * hashed together. The sequential read is not hashed: sha256sum runs at ~0.3 GB/s here, slower
 * than some mounts, and a second full read through a slow path would cost more than the rest.
 */
const CHECK_SLICE_MIB = Array.from({ length: 16 }, (_, i) => i * 64 + ((i * 37) % 63))
const HTTP_CLIENT = join(ROOT, 'bench/http-client.mjs')

const CONDITIONS = [
  { key: 'loopback', title: 'loopback', oneWayDelayMs: 0, seqBytes: IMAGE_BYTES },
  { key: 'rtt10', title: '10 ms RTT', oneWayDelayMs: ONE_WAY_DELAY_MS, seqBytes: SLOW_SEQ_BYTES },
]

/** The HTTP mounts of one URL: snapmount with its defaults (8 connections), and httpfs2 if present. */
function httpMounts(url, httpfs2) {
  const mounts = [{ key: 'http', title: 'snapmount http', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=${url}`] }]
  if (httpfs2.path) {
    mounts.push({
      key: 'httpfs2',
      title: 'httpfs2',
      file: HTTP_FILE,
      listedWhenMounted: true,
      // -f: stay a child we can signal; -c: its messages go to our pipe instead of /dev/console.
      command: (mnt) => [httpfs2.path, '-f', '-c', '/dev/stderr', url, mnt],
    })
  }
  return mounts
}

/**
 * httpfs2 (a C FUSE file system for one file over HTTP) as the reference mount: found on PATH,
 * else installed with apt-get when Debian has it. Returns { path, note } or { note } if absent.
 */
async function ensureHttpfs2() {
  const which = async () => (await run('sh', ['-c', 'command -v httpfs2']).catch(() => ({ stdout: '' }))).stdout.trim()
  const version = async () => (await run('dpkg-query', ['-W', '-f=${Version}', 'httpfs2']).catch(() => ({ stdout: '' }))).stdout.trim()
  let path = await which()
  if (path) return { path, note: `httpfs2 ${(await version()) || '(not from a package)'}, already installed` }
  const policy = (await run('apt-cache', ['policy', 'httpfs2']).catch(() => ({ stdout: '' }))).stdout
  const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1]
  if (!candidate || candidate === '(none)') return { note: 'httpfs2 not measured: not installed, and apt-cache policy httpfs2 has no candidate' }
  progress(`installing httpfs2 ${candidate} with apt-get`)
  try {
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'httpfs2'], { env: { DEBIAN_FRONTEND: 'noninteractive' } })
  } catch (err) {
    return { note: `httpfs2 not measured: apt-get install httpfs2 failed (${err.message.split('\n').at(-1)})` }
  }
  path = await which()
  return path ? { path, note: `httpfs2 ${await version()}, installed by this run (apt-get)` } : { note: 'httpfs2 not measured: installed but not on PATH' }
}

/** sha256 of the CHECK_SLICE_MIB slices of `path`, each read with `iflag`. */
async function sliceSha256(path, iflag) {
  const script = 'f=$1; flag=$2; shift 2; for mib; do dd if="$f" bs=1M count=1 skip="$mib" iflag="$flag" status=none || exit 1; done | sha256sum'
  const { stdout } = await run('bash', ['-o', 'pipefail', '-c', script, 'bash', path, iflag, ...CHECK_SLICE_MIB.map(String)])
  return stdout.split(' ')[0]
}

/** The plain client on `url`: one curl GET, one undici GET, and 4 KiB ranged-GET rates. */
async function measureRaw(url, condition) {
  const bytes = condition.seqBytes
  const client = async (...args) => JSON.parse((await run('node', [HTTP_CLIENT, ...args.map(String)])).stdout)
  const curl = await run('curl', ['--silent', '--show-error', '--fail', '--noproxy', '*', '--output', '/dev/null', '--range', `0-${bytes - 1}`, '--write-out', '%{size_download} %{time_total}', url])
  const [size, seconds] = curl.stdout.trim().split(' ').map(Number)
  if (size !== bytes) throw new Error(`curl ${url}: ${size} bytes, expected ${bytes}`)
  const result = { seqCurl: bytes / seconds / 1e6, seqUndici: (await client('seq', url, bytes)).mbps }
  const rate1 = await client('rate', url, 1, FIO_SECONDS)
  const rate8 = await client('rate', url, 8, FIO_SECONDS)
  Object.assign(result, { iops1: rate1.rate, iops8: rate8.rate, getMs: rate1.medianMs })
  progress(`raw ${condition.title}: seq curl ${fmt(result.seqCurl)} MB/s, undici ${fmt(result.seqUndici)} MB/s; 4 KiB GETs/s ${fmt(result.iops1)} / ${fmt(result.iops8)}, median ${result.getMs.toFixed(2)} ms`)
  return result
}

/** One cold daemon on `url`: the sequential read (counting nginx's GETs), fio, the slice check. */
async function measureHttpMount(mount, condition, nginx, expectedSliceSha) {
  const title = `${mount.title} ${condition.title}`
  const result = await withDaemon(mount, async (file) => {
    const before = (await nginx.requests()).length
    const seq = await seqReadMBps(file, condition.seqBytes)
    const served = (await nginx.requests()).slice(before)
    const gets = served.length
    const getKiB = served.reduce((sum, request) => sum + request.bytes, 0) / gets / 1024
    const connections = new Set(served.map((request) => request.clientPort)).size
    const iops1 = await randReadIops(file, { jobs: 1, direct: true })
    const iops8 = await randReadIops(file, { jobs: 8, direct: true })
    const sliceOk = (await sliceSha256(file, 'direct')) === expectedSliceSha
    return { seq, gets, getKiB, connections, iops1, iops8, sliceOk }
  })
  progress(`${title}: start ${fmt(result.mountMs)} ms; seq ${fmt(result.seq)} MB/s in ${fmt(result.gets)} GETs of ${fmt(result.getKiB)} KiB on ${result.connections} connections; O_DIRECT randread ${fmt(result.iops1)} / ${fmt(result.iops8)} IOPS; slices ${okOr(result.sliceOk)}; exit ${result.exit}`)
  return result
}

/** Both conditions: nginx once, the delay proxy for the 10 ms one; results by condition key. */
async function measureHttp(httpfs2) {
  // Accept-Ranges on 206s: httpfs2 fails every read without it.
  const nginx = await startNginx(BENCH_DIR, { acceptRangesOnPartial: true, prefix: NGINX_PREFIX })
  services.add(nginx)
  const expectedSliceSha = await sliceSha256(IMAGE_PATH, 'fullblock')
  const results = {}
  try {
    for (const condition of CONDITIONS) {
      let proxy
      if (condition.oneWayDelayMs > 0) {
        proxy = await startDelayProxy({ host: '127.0.0.1', port: nginx.port }, condition.oneWayDelayMs, { timerSlackMs: PROXY_TIMER_SLACK_MS })
        proxy.stop = proxy.close
        services.add(proxy)
      }
      const url = `http://127.0.0.1:${proxy?.port ?? nginx.port}/${HTTP_FILE}`
      progress(`HTTP ${condition.title}: ${url}`)
      await warmSource()
      const result = { raw: await measureRaw(url, condition) }
      for (const mount of httpMounts(url, httpfs2)) result[mount.key] = await measureHttpMount(mount, condition, nginx, expectedSliceSha)
      results[condition.key] = result
      if (proxy) {
        await proxy.close()
        services.delete(proxy)
      }
    }
  } finally {
    await nginx.stop()
    services.delete(nginx)
  }
  return results
}

async function nginxVersion() {
  // nginx prints its version on stderr: "nginx version: nginx/1.22.1".
  const { stderr } = await run(NGINX, ['-v'])
  return /nginx\/(\S+)/.exec(stderr)?.[1] ?? ''
}

// ---------------------------------------------------------------------------------------------
// Output

function progress(message) {
  process.stderr.write(`bench: ${message}\n`)
}

function fmt(value) {
  if (value === undefined) return 'n/a'
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)
}

function okOr(ok) {
  return ok ? 'OK' : 'MISMATCH'
}

function ratio(mounted, source) {
  return mounted === undefined || source === undefined ? 'n/a' : `${(mounted / source).toFixed(2)}x`
}

/** Columns padded to their widest cell; markdown pipes so it pastes into an issue as-is. */
function table(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const line = (row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`
  return [line(rows[0]), line(widths.map((width) => '-'.repeat(width))), ...rows.slice(1).map(line)].join('\n')
}

function report(source, mounts) {
  const [file, mmap, nul] = [mounts.file, mounts.mmap, mounts.null]
  const ratios = (key, sourceValue) => [file, mmap, nul].map((m) => ratio(m[key], sourceValue)).join(' / ')
  const row = (label, key, sourceValue, sourceLabel = fmt(sourceValue)) => [
    label,
    fmt(file[key]),
    fmt(mmap[key]),
    fmt(nul[key]),
    sourceLabel,
    sourceValue === undefined ? '-' : ratios(key, sourceValue),
  ]
  const rows = [
    ['measurement', 'snapmount file', 'snapmount mmap', 'null backend', 'direct source', 'ratios file / mmap / null vs source'],
    ['daemon start to "mounted" (ms)', fmt(file.mountMs), fmt(mmap.mountMs), fmt(nul.mountMs), '-', '-'],
    row('seq read MB/s, 1st after mount (source: page cache)', 'seqCold', source.seq),
    row('seq read MB/s, 2nd, mount page cache warm', 'seqWarm', source.seq),
    row('4K randread IOPS, 1 reader (mount O_DIRECT; source buffered, cached)', 'iops1', source.iops1),
    row('4K randread IOPS, 8 readers (mount O_DIRECT; source buffered, cached)', 'iops8', source.iops8),
    row('4K randread IOPS, 1 reader (mount O_DIRECT; source O_DIRECT, disk)', 'iops1', source.iops1Direct),
    row('4K randread IOPS, 8 readers (mount O_DIRECT; source O_DIRECT, disk)', 'iops8', source.iops8Direct),
    [
      'sha256 equals source (cached read / O_DIRECT read)',
      ...[file, mmap, nul].map((m) => `${okOr(m.shaCached)} / ${okOr(m.shaDirect)}`),
      `${source.sha.slice(0, 16)}...`,
      'null: vs sha256 of zeros',
    ],
    ['daemon exit status after SIGTERM', ...[file, mmap, nul].map((m) => String(m.exit)), '-', '-'],
  ]
  return table(rows)
}

/**
 * The HTTP table: per condition, the two mounts beside the plain client on the same URL. A mount
 * missing (httpfs2 not installed) shows n/a.
 */
function httpReport(results) {
  const rows = [['measurement', 'snapmount http', 'httpfs2', 'raw HTTP client, no FUSE', 'ratios snapmount / httpfs2 vs raw']]
  for (const condition of CONDITIONS) {
    const { raw, http, httpfs2 = {} } = results[condition.key]
    const mounts = [http, httpfs2]
    const at = condition.title
    const seqWhat = condition.seqBytes === IMAGE_BYTES ? '1 GiB' : `first ${condition.seqBytes / 2 ** 20} MiB only`
    const row = (label, key, rawValue, rawKey = key) => [
      label,
      ...mounts.map((m) => fmt(m[key])),
      fmt(rawValue ?? raw[rawKey]),
      mounts.map((m) => ratio(m[key], rawValue ?? raw[rawKey])).join(' / '),
    ]
    const msPerRead = (m) => (m.iops1 === undefined ? 'n/a' : `${(1000 / m.iops1).toFixed(2)}`)
    rows.push(
      [`${at}: daemon start to "mounted" (ms)`, ...mounts.map((m) => fmt(m.mountMs)), '-', '-'],
      row(`${at}: seq read MB/s, 1st after mount, ${seqWhat} (raw: one curl GET)`, 'seq', raw.seqCurl),
      row(`${at}: seq read MB/s, the same (raw: one undici GET)`, 'seq', raw.seqUndici),
      [
        `${at}: GETs nginx served for the seq read (mean KiB each; connections)`,
        ...mounts.map((m) => (m.gets === undefined ? 'n/a' : `${fmt(m.gets)} (${fmt(m.getKiB)}; ${m.connections})`)),
        '1',
        '-',
      ],
      row(`${at}: 4K randread IOPS, 1 reader (mount O_DIRECT; raw: 4 KiB GETs/s, 1 client)`, 'iops1'),
      row(`${at}: 4K randread IOPS, 8 readers (mount O_DIRECT; raw: 8 clients, 8 connections)`, 'iops8'),
      [`${at}: ms per 4K read, 1 reader (raw: median 4 KiB GET)`, ...mounts.map(msPerRead), raw.getMs.toFixed(2), '-'],
      [`${at}: sha256 of ${CHECK_SLICE_MIB.length} x 1 MiB O_DIRECT slices equals source`, ...mounts.map((m) => (m.sliceOk === undefined ? 'n/a' : okOr(m.sliceOk))), '-', '-'],
      [`${at}: daemon exit status after SIGTERM`, ...mounts.map((m) => (m.exit === undefined ? 'n/a' : String(m.exit))), '-', '-'],
    )
  }
  return table(rows)
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const began = Date.now()
  // Anything else running on the machine (builds, tests) shows up in these numbers: say so.
  const loadBefore = loadavg()[0]
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      progress(`${signal}: stopping daemons and unmounting`)
      for (const child of tools) child.kill('SIGTERM')
      cleanupAll().finally(() => process.exit(130))
    })
  }
  await clearStaleMounts()
  for (const dir of await clearStaleNginx(NGINX_PREFIX)) progress(`cleared nginx left by an earlier run in ${dir}`)
  const image = await ensureImage()
  // Before any measurement, so apt and dpkg do not run beside one.
  const httpfs2 = await ensureHttpfs2()
  progress(httpfs2.note)
  const fioVersion = (await run('fio', ['--version'])).stdout.trim()
  progress(`image ${IMAGE_PATH} (${image}); node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ${fioVersion}`)

  let failed = false
  try {
    const source = await measureSource()
    const zeros = zeroSha256()
    const mounts = {}
    for (const mount of MOUNTS) mounts[mount.key] = await measureMount(mount, mount.key === 'null' ? zeros : source.sha)
    for (const m of Object.values(mounts)) failed ||= !m.shaCached || !m.shaDirect || m.exit !== 0

    process.stdout.write(`\nsnapmount read benchmark: 1 GiB image, medians of ${SEQ_DAEMONS} cold daemons per backend for sequential reads and start time,\n${FIO_SECONDS} s of fio per IOPS figure\n`)
    process.stdout.write(`node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ${fioVersion}; `)
    process.stdout.write(`1-min load average ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after (the benchmark itself raises it)\n\n`)
    process.stdout.write(`${report(source, mounts)}\n\n`)
    process.stdout.write('MB/s = 10^6 bytes/s. References (issue): C FUSE passthrough (bindfs) ~300 MB/s, QEMU FUSE export ~600 MB/s,\n')
    process.stdout.write('both reading a page-cached file. See bench/README.md.\n')

    const httpBegan = Date.now()
    const httpLoadBefore = loadavg()[0]
    const http = await measureHttp(httpfs2)
    // Only snapmount's checks decide the exit status; httpfs2's are reported beside them.
    for (const { http: m } of Object.values(http)) failed ||= !m.sliceOk || m.exit !== 0
    const httpSeconds = (Date.now() - httpBegan) / 1000
    process.stdout.write(`\nHTTP: the same image from nginx ${await nginxVersion()} on 127.0.0.1 (sendfile, keep-alive), one cold daemon per mount and condition,\n`)
    process.stdout.write(`${FIO_SECONDS} s of fio or of the raw client per rate; 10 ms RTT = tools/delay-proxy.mjs, ${ONE_WAY_DELAY_MS} ms each way, between client and nginx\n`)
    process.stdout.write(`${httpfs2.note}; 1-min load average ${httpLoadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after\n\n`)
    process.stdout.write(`${httpReport(http)}\n\n`)
    process.stdout.write('raw: bench/http-client.mjs (Node, undici Pool, keep-alive, If-Match like the daemon) and curl, same URL and path as the mounts.\n')
    process.stdout.write(`snapmount http: defaults (8 connections, one GET per FUSE read, no cache or readahead of its own). HTTP part ${httpSeconds.toFixed(0)} s.\n`)
    process.stdout.write(`total ${((Date.now() - began) / 1000).toFixed(0)} s; ${failed ? 'FAILED: see MISMATCH or exit status above' : 'all checks passed'}\n`)
  } finally {
    await cleanupAll()
  }
  return failed ? 1 : 0
}

process.exitCode = await main().catch(async (err) => {
  await cleanupAll()
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  return 1
})

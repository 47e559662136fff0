// snapmount read benchmark: throughput and IOPS through a fresh daemon for each backend (file,
// mmap, and a zero-cost null backend), against reading the source image directly; then the same
// image from nginx on loopback, plain and behind a 10 ms delay proxy, through snapmount's HTTP
// backend and httpfs2, against a plain HTTP client on the same path; then the same image as an
// object in Ceph's radosgw on loopback, through snapmount's S3 backend, s3fs and rclone mount,
// against a plain S3 client, with the bytes the server sent per byte read. See bench/README.md for
// what each number means. Run with `npm run bench` (it builds first).
//
// Every access to a mount happens in a child process (dd, fio, sha256sum), never in this one, and
// every daemon runs as a child too: a synchronous access from the daemon's own process would
// deadlock it, and an async one from here would still tie the numbers to this event loop.

import { spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { access, mkdir, mkdtemp, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCountProxy } from '../tools/count-proxy.mjs'
import { startDelayProxy } from '../tools/delay-proxy.mjs'
import { NGINX, clearStaleNginx, startNginx } from '../tools/nginx.mjs'
import { CEPH_MON, CEPH_OSD, RADOSGW, clearStaleRadosgw, startRadosgw } from '../tools/radosgw.mjs'
import { PART_BYTES, PARTS_IN_FLIGHT } from '../tools/s3-upload.mjs'

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
/** nginx, the proxies, radosgw and temp dirs, stopped after the daemons: each has a `stop()`. */
const services = new Set()
/** Running dd/fio/sha256sum: stopped first on SIGINT, so none holds a mount busy while it unmounts. */
const tools = new Set()
/**
 * Set by SIGINT/SIGTERM/SIGHUP: from then on nothing new is started but the cleanup (a step that
 * failed because its tool was killed must not be followed by the next step while the cleanup runs).
 */
let stopping = false

function refuseIfStopping(what) {
  if (stopping) throw new Error(`not starting ${what}: the benchmark is stopping`)
}

// ---------------------------------------------------------------------------------------------
// Child processes

/**
 * Runs a command to completion; rejects with its stderr if it fails. `env` adds to `baseEnv`.
 * Refused once the benchmark is stopping, unless it is part of the cleanup (`cleanup: true`).
 */
function run(command, args, { env, baseEnv = DIRECT_ENV, cleanup = false } = {}) {
  return new Promise((resolve, reject) => {
    if (!cleanup) refuseIfStopping(command)
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...baseEnv, ...env } })
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
  return (await fioRandRead(path, { jobs, direct })).iops
}

/** The same fio run for `seconds`: its IOPS and the bytes it read. */
async function fioRandRead(path, { jobs, direct, seconds = FIO_SECONDS }) {
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
    `--runtime=${seconds}`,
    `--numjobs=${jobs}`,
    '--group_reporting',
    '--output-format=json',
  ])
  // fio may print notices before the JSON document.
  const report = JSON.parse(stdout.slice(stdout.indexOf('{')))
  const job = report.jobs?.[0]
  if (!job || job.error) throw new Error(`fio reported error ${job?.error} for ${path}`)
  return { iops: job.read.iops, bytes: job.read.io_bytes }
}

/** sha256 of a file as sha256sum reads it (buffered: through the page cache). */
async function sha256File(path) {
  const { stdout } = await run('sha256sum', ['--binary', path])
  return stdout.split(' ')[0]
}

/** sha256 of a file read with O_DIRECT, so every byte comes from the daemon, not the page cache. */
function sha256Direct(path) {
  return new Promise((resolve, reject) => {
    refuseIfStopping('dd')
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
  refuseIfStopping(mount.title)
  const mnt = await mkdtemp(join(BENCH_DIR, `mnt-${mount.key}-`))
  const [command, ...args] = await mount.command(mnt)
  const started = process.hrtime.bigint()
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: mount.env ?? DIRECT_ENV })
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
    // A daemon that does not say when it is ready (httpfs2, s3fs, rclone) is ready once the kernel lists its mount.
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
  if ((await mountedPaths()).includes(mnt)) await run('fusermount', ['-u', '-z', mnt], { cleanup: true })
}

/**
 * Stops what a killed earlier run left running: a daemon (snapmount, httpfs2, s3fs, rclone) keeps
 * serving after its mount is detached (snapmount does not notice), and dd or fio may still be
 * reading. Each names a mountpoint under BENCH_DIR or a file in an S3 temp dir on its command
 * line. SIGTERM first (a daemon still mounted unmounts), SIGKILL for whatever is left after 5 s.
 */
async function clearStaleProcesses() {
  const marks = [join(BENCH_DIR, 'mnt-'), join(tmpdir(), S3_TEMP_PREFIX)]
  const stale = []
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)) {
    if (pid === process.pid) continue
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (!marks.some((mark) => cmdline.includes(mark))) continue
    progress(`stopping pid ${pid}, left by an earlier run: ${cmdline.replaceAll('\0', ' ').trim()}`)
    try {
      process.kill(pid, 'SIGTERM')
      stale.push(pid)
    } catch {
      // Gone meanwhile.
    }
  }
  const alive = async () => (await Promise.all(stale.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')))).some(Boolean)
  for (let waited = 0; waited < 5_000 && (await alive()); waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  for (const pid of stale) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Exited on SIGTERM, as it should.
    }
  }
}

/**
 * Clears mounts a killed earlier run left under BENCH_DIR, and their mountpoints (empty
 * directories: rmdir removes nothing else).
 */
async function clearStaleMounts() {
  for (const path of await mountedPaths()) {
    if (!path.startsWith(join(BENCH_DIR, 'mnt-'))) continue
    process.stderr.write(`bench: clearing stale mount ${path}\n`)
    await run('fusermount', ['-u', '-z', path])
  }
  for (const name of await readdir(BENCH_DIR).catch(() => [])) {
    if (name.startsWith('mnt-')) await rmdir(join(BENCH_DIR, name)).catch(() => {})
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

/**
 * Runs `work(file)` against a fresh daemon, always stopping it; adds start time and exit status.
 * `warm: false` for mounts that never read the local source (S3).
 */
async function withDaemon(mount, work, { warm = true } = {}) {
  if (warm) await warmSource() // fio O_DIRECT on the source or another mount must not have left it cold
  const daemon = await startDaemon(mount)
  let result
  try {
    result = await work(join(daemon.mnt, mount.file ?? NAME))
  } finally {
    const { code, signal } = await stopDaemon(daemon)
    // rclone answers SIGTERM by unmounting and exiting 143 (128 + SIGTERM): its clean exit.
    if ((signal ?? code) !== (mount.sigtermExit ?? 0)) progress(`${mount.title}: daemon exited ${signal ?? code} after SIGTERM:\n${daemon.log}`)
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
 * A reference mount's program (httpfs2, s3fs, rclone: Debian package and command share the name):
 * found on PATH, else installed with apt-get when Debian has it. Returns { path, note }, or
 * { note } saying why it is absent.
 */
async function ensurePackage(name) {
  const which = async () => (await run('sh', ['-c', `command -v ${name}`]).catch(() => ({ stdout: '' }))).stdout.trim()
  const version = async () => (await run('dpkg-query', ['-W', '-f=${Version}', name]).catch(() => ({ stdout: '' }))).stdout.trim()
  let path = await which()
  if (path) return { path, note: `${name} ${(await version()) || '(not from a package)'}, already installed` }
  const policy = (await run('apt-cache', ['policy', name]).catch(() => ({ stdout: '' }))).stdout
  const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1]
  if (!candidate || candidate === '(none)') return { note: `${name} not measured: not installed, and apt-cache policy ${name} has no candidate` }
  progress(`installing ${name} ${candidate} with apt-get`)
  try {
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', name], { env: { DEBIAN_FRONTEND: 'noninteractive' } })
  } catch (err) {
    return { note: `${name} not measured: apt-get install ${name} failed (${err.message.split('\n').at(-1)})` }
  }
  path = await which()
  return path ? { path, note: `${name} ${await version()}, installed by this run (apt-get)` } : { note: `${name} not measured: installed but not on PATH` }
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
// S3: the same image as one object in Ceph's radosgw on loopback, through snapmount's S3 backend,
// s3fs and rclone mount, beside a plain S3 client on the same endpoint

/** The bench's own temp prefixes, so clearing a killed run's leftovers touches no test's. */
const RADOSGW_PREFIX = 'snapmount-bench-radosgw-'
const S3_TEMP_PREFIX = 'snapmount-bench-s3-'
const S3_BUCKET = 'snapmount-bench'
/** The object's key; s3fs and rclone show it as the file's name (snapmount's config names it NAME). */
const S3_KEY = basename(IMAGE_PATH)
/**
 * Read amplification is measured on daemons of their own, through tools/count-proxy.mjs: the
 * proxy copies every byte through this process, which halved a raw GetObject stream's rate here
 * (~650 to ~350 MB/s), so the rates are measured without it. 256 MiB is at least ~1 s of
 * sequential reading for every mount (snapmount read ~60 MB/s in the runs here), and a third of
 * the fio time per random run is enough to count GETs per read.
 */
const AMP_SEQ_BYTES = 256 * 2 ** 20
const AMP_FIO_SECONDS = 3
/**
 * After a reader finishes, a mount's readahead (rclone's 16 MiB buffer, s3fs's parallel parts)
 * may still be receiving: counters are read once nothing has moved for this long (at most
 * AMP_SETTLE_MAX_MS), so those bytes count for the read that caused them.
 */
const AMP_SETTLE_MS = 200
const AMP_SETTLE_MAX_MS = 3_000
const S3_CLIENT = join(ROOT, 'bench/s3-client.mjs')
/** rclone's defaults that decide how it reads (rclone 1.60 `rclone mount --help`), for the table's label. */
const RCLONE_SETTINGS = '--vfs-cache-mode off, --vfs-read-chunk-size 128Mi (doubling, no limit), --buffer-size 16Mi, --vfs-read-wait 20ms'

/**
 * The environment of everything that talks to radosgw: the bench's, without any AWS_* variable
 * (a profile, a session token or a region would change what is signed, and rclone 1.60 fails at
 * start whenever AWS_CA_BUNDLE is set: "HTTPClient's transport unsupported type"), plus the keys.
 */
function s3Env(rgw) {
  const env = Object.fromEntries(Object.entries(DIRECT_ENV).filter(([name]) => !name.startsWith('AWS_')))
  return { ...env, AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey }
}

/**
 * The S3 mounts of one endpoint (radosgw's own, or the counting proxy's): snapmount from a
 * config file, s3fs and rclone when present, each with its defaults but read-only and path-style.
 */
function s3Mounts(endpoint, rgw, dir, peers) {
  const env = s3Env(rgw)
  const port = new URL(endpoint).port
  const mounts = [
    {
      key: 's3',
      title: 'snapmount s3',
      env,
      command: async (mnt) => {
        const config = join(dir, `snapmount-${basename(mnt)}.yaml`)
        const snapshot = `  - name: ${NAME}\n    type: s3\n    url: s3://${S3_BUCKET}/${S3_KEY}\n    endpoint: ${endpoint}\n    region: ${rgw.region}\n`
        await writeFile(config, `mountpoint: ${mnt}\nsnapshots:\n${snapshot}`)
        return [join(ROOT, 'bin/snapmount'), 'mount', '--config', config]
      },
    },
  ]
  if (peers.s3fs.path) {
    mounts.push({
      key: 's3fs',
      title: 's3fs',
      file: S3_KEY,
      listedWhenMounted: true,
      env,
      // -f: stay a child we can signal. The keys file must be private, or s3fs refuses it.
      command: async (mnt) => {
        const passwd = join(dir, 's3fs.passwd')
        await writeFile(passwd, `${rgw.accessKeyId}:${rgw.secretAccessKey}\n`, { mode: 0o600 })
        return [peers.s3fs.path, S3_BUCKET, mnt, '-f', '-o', `ro,url=${endpoint},use_path_request_style,passwd_file=${passwd}`]
      },
    })
  }
  if (peers.rclone.path) {
    mounts.push({
      key: 'rclone',
      title: 'rclone mount',
      file: S3_KEY,
      listedWhenMounted: true,
      sigtermExit: 143,
      env,
      command: async (mnt) => {
        const config = join(dir, `rclone-${port}.conf`)
        await writeFile(
          config,
          `[rgw]\ntype = s3\nprovider = Ceph\nendpoint = ${endpoint}\naccess_key_id = ${rgw.accessKeyId}\nsecret_access_key = ${rgw.secretAccessKey}\n`,
          { mode: 0o600 },
        )
        // --cache-dir: rclone's default is under ~/.cache; with the cache off nothing is kept there.
        return [peers.rclone.path, 'mount', `rgw:${S3_BUCKET}`, mnt, '--read-only', '--config', config, '--cache-dir', join(dir, 'rclone-cache')]
      },
    })
  }
  return mounts
}

/** Runs bench/s3-client.mjs against `endpoint`; resolves with its JSON. */
async function s3Client(rgw, endpoint, ...args) {
  const { stdout } = await run('node', [S3_CLIENT, args[0], endpoint, rgw.region, S3_BUCKET, S3_KEY, ...args.slice(1).map(String)], { baseEnv: s3Env(rgw) })
  return JSON.parse(stdout)
}

/** The plain client straight to radosgw: one GetObject stream, then 4 KiB ranged GetObjects/s. */
async function measureRawS3(rgw) {
  const seq = await s3Client(rgw, rgw.endpoint, 'seq')
  const rate1 = await s3Client(rgw, rgw.endpoint, 'rate', 1, FIO_SECONDS)
  const rate8 = await s3Client(rgw, rgw.endpoint, 'rate', 8, FIO_SECONDS)
  const result = { seq: seq.mbps, iops1: rate1.rate, iops8: rate8.rate, getMs: rate1.medianMs }
  progress(`raw S3: GetObject ${fmt(result.seq)} MB/s; 4 KiB GetObjects/s ${fmt(result.iops1)} / ${fmt(result.iops8)}, median ${result.getMs.toFixed(2)} ms`)
  return result
}

/**
 * One mount's rates, each on a cold daemon straight to radosgw: the sequential read (then the
 * slice check), fio with 1 reader, fio with 8. Separate daemons because s3fs keeps what it
 * downloaded in a temp file for as long as it runs: after the sequential read, its "random reads"
 * would be local file reads.
 */
async function measureS3Mount(mount, expectedSliceSha) {
  const seq = await withDaemon(
    mount,
    async (file) => ({ seq: await seqReadMBps(file), sliceOk: (await sliceSha256(file, 'direct')) === expectedSliceSha }),
    { warm: false },
  )
  const fio1 = await withDaemon(mount, async (file) => ({ iops1: await randReadIops(file, { jobs: 1, direct: true }) }), { warm: false })
  const fio8 = await withDaemon(mount, async (file) => ({ iops8: await randReadIops(file, { jobs: 8, direct: true }) }), { warm: false })
  const daemons = [seq, fio1, fio8]
  const result = {
    mountMs: median(daemons.map((d) => d.mountMs)),
    seq: seq.seq,
    sliceOk: seq.sliceOk,
    iops1: fio1.iops1,
    iops8: fio8.iops8,
    exits: daemons.map((d) => d.exit),
  }
  progress(`${mount.title}: start ${daemons.map((d) => fmt(d.mountMs)).join(', ')} ms; seq ${fmt(result.seq)} MB/s; O_DIRECT randread ${fmt(result.iops1)} / ${fmt(result.iops8)} IOPS; slices ${okOr(result.sliceOk)}; exits ${result.exits.join(', ')}`)
  return result
}

/** Waits until the proxy has seen no byte for AMP_SETTLE_MS (at most AMP_SETTLE_MAX_MS), then reads its counters. */
async function settledCounters(proxy) {
  const deadline = Date.now() + AMP_SETTLE_MAX_MS
  let last = proxy.counters()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, AMP_SETTLE_MS))
    const now = proxy.counters()
    if (now.bytesFromTarget === last.bytesFromTarget || Date.now() > deadline) return now
    last = now
  }
}

/** What the proxy saw between two readings, for `bytesRead` bytes read by the client. */
function traffic(before, after, bytesRead) {
  const gets = after.gets - before.gets
  const sent = after.bytesFromTarget - before.bytesFromTarget
  const used = Object.keys(after.requestsByConnection).filter((id) => after.requestsByConnection[id] !== (before.requestsByConnection[id] ?? 0))
  return {
    amp: sent / bytesRead,
    gets,
    sentKiBPerGet: gets ? sent / gets / 1024 : undefined,
    askedMiBPerGet: gets ? (after.rangeBytesAsked - before.rangeBytesAsked) / gets / 2 ** 20 : undefined,
    connections: used.length,
    bytesRead,
    sent,
  }
}

/**
 * Read amplification of one mount through the counting proxy, each on a cold daemon: fio with 1
 * reader for AMP_FIO_SECONDS (server bytes / the bytes fio read), then the first AMP_SEQ_BYTES
 * read sequentially with dd (server bytes / AMP_SEQ_BYTES).
 */
async function measureAmplification(mount, proxy) {
  const counted = (work) =>
    withDaemon(
      mount,
      async (file) => {
        const before = proxy.counters()
        const bytesRead = await work(file)
        return traffic(before, await settledCounters(proxy), bytesRead)
      },
      { warm: false },
    )
  const rand = await counted(async (file) => (await fioRandRead(file, { jobs: 1, direct: true, seconds: AMP_FIO_SECONDS })).bytes)
  const seq = await counted(async (file) => {
    await seqReadMBps(file, AMP_SEQ_BYTES)
    return AMP_SEQ_BYTES
  })
  const mb = (bytes) => fmt(bytes / 1e6)
  progress(
    `${mount.title} via count proxy: seq ${mb(seq.bytesRead)} MB read, ${mb(seq.sent)} MB sent (${fmtAmp(seq.amp)}) in ${seq.gets} GETs on ${seq.connections} connections; ` +
      `4K random ${mb(rand.bytesRead)} MB read, ${mb(rand.sent)} MB sent (${fmtAmp(rand.amp)}) in ${rand.gets} GETs on ${rand.connections} connections`,
  )
  return { seq, rand, exits: [rand.exit, seq.exit] }
}

/** The raw client through the counting proxy: what the protocol itself costs (headers, one GET per read). */
async function measureRawAmplification(rgw, proxy) {
  const endpoint = `http://127.0.0.1:${proxy.port}`
  let before = proxy.counters()
  await s3Client(rgw, endpoint, 'seq', AMP_SEQ_BYTES)
  const seq = traffic(before, await settledCounters(proxy), AMP_SEQ_BYTES)
  before = proxy.counters()
  const rate = await s3Client(rgw, endpoint, 'rate', 1, AMP_FIO_SECONDS)
  const rand = traffic(before, await settledCounters(proxy), rate.requests * 4096)
  progress(`raw S3 via count proxy: seq amplification ${fmtAmp(seq.amp)}; 4K random ${fmtAmp(rand.amp)}`)
  return { seq, rand }
}

/**
 * The S3 part: radosgw, the upload (timed), the raw client, each mount's rates, then each
 * mount's amplification through the counting proxy. Resolves with everything the table needs.
 */
async function measureS3(peers) {
  const dir = await mkdtemp(join(tmpdir(), S3_TEMP_PREFIX))
  const temp = { stop: () => rm(dir, { recursive: true, force: true }) }
  services.add(temp)
  let started = Date.now()
  // No compression: the image is incompressible, and radosgw would only spend CPU finding that out.
  const rgw = await startRadosgw({ prefix: RADOSGW_PREFIX, compression: 'none' })
  services.add(rgw)
  const startSeconds = (Date.now() - started) / 1000
  try {
    await rgw.createBucket(S3_BUCKET)
    started = Date.now()
    const etag = await rgw.uploadFile(S3_BUCKET, S3_KEY, IMAGE_PATH)
    const uploadSeconds = (Date.now() - started) / 1000
    progress(`radosgw at ${rgw.endpoint} in ${startSeconds.toFixed(1)} s; ${IMAGE_BYTES} bytes uploaded in ${uploadSeconds.toFixed(1)} s (ETag ${etag})`)
    const expectedSliceSha = await sliceSha256(IMAGE_PATH, 'fullblock')
    const result = { startSeconds, uploadSeconds, raw: await measureRawS3(rgw) }
    // A peer that fails is reported in its note and left out; snapmount failing fails the bench.
    const peerFailed = (mount, err) => {
      if (stopping) throw err
      peers[mount.key].note = `${mount.title} not measured: ${err.message.split('\n')[0]}`
      progress(`${peers[mount.key].note}\n${err.stack ?? err}`)
      delete result[mount.key]
    }
    for (const mount of s3Mounts(rgw.endpoint, rgw, dir, peers)) {
      try {
        result[mount.key] = await measureS3Mount(mount, expectedSliceSha)
      } catch (err) {
        if (mount.key === 's3') throw err
        peerFailed(mount, err)
      }
    }

    const proxy = await startCountProxy({ host: '127.0.0.1', port: Number(new URL(rgw.endpoint).port) })
    proxy.stop = proxy.close
    services.add(proxy)
    try {
      result.raw.amplification = await measureRawAmplification(rgw, proxy)
      for (const mount of s3Mounts(`http://127.0.0.1:${proxy.port}`, rgw, dir, peers)) {
        if (!result[mount.key]) continue
        try {
          const amplification = await measureAmplification(mount, proxy)
          result[mount.key].amplification = amplification
          result[mount.key].exits.push(...amplification.exits)
        } catch (err) {
          if (mount.key === 's3') throw err
          peerFailed(mount, err)
        }
      }
    } finally {
      await proxy.close()
      services.delete(proxy)
    }
    return result
  } finally {
    await rgw.stop()
    services.delete(rgw)
    await temp.stop()
    services.delete(temp)
  }
}

/** Removes what a killed run left: its radosgw (daemons and dir) and its S3 temp dirs. */
async function clearStaleS3() {
  for (const dir of await clearStaleRadosgw(RADOSGW_PREFIX)) progress(`cleared radosgw left by an earlier run in ${dir}`)
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(S3_TEMP_PREFIX)) continue
    progress(`removing ${join(tmpdir(), name)}, left by an earlier run`)
    await rm(join(tmpdir(), name), { recursive: true, force: true })
  }
}

/** radosgw, ceph-mon and ceph-osd must be installed (scripts/setup does it): say so before measuring anything. */
async function checkCeph() {
  for (const program of [RADOSGW, CEPH_MON, CEPH_OSD]) {
    await access(program).catch(() => {
      throw new Error(`${program} is missing: the S3 part needs Debian's radosgw, ceph-mon and ceph-osd (scripts/setup installs them)`)
    })
  }
}

async function versionOf(command, args, pattern) {
  const { stdout, stderr } = await run(command, args).catch(() => ({ stdout: '', stderr: '' }))
  return pattern.exec(`${stdout}${stderr}`)?.[1] ?? ''
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

/** A count: whole numbers, thousands separated. */
function fmtCount(value) {
  return value === undefined ? 'n/a' : Math.round(value).toLocaleString('en-US')
}

/** A ratio that may be far below 1 (GETs per read): two significant digits there. */
function fmtPerRead(value) {
  return value < 1 ? value.toPrecision(2) : value.toFixed(2)
}

/** Amplification: bytes the server sent per byte read (three decimals, the protocol's overhead shows). */
function fmtAmp(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value >= 100 ? fmt(value) : value.toFixed(value >= 10 ? 1 : 3)
}

/**
 * The S3 table: the three mounts beside the plain client on the same endpoint. A mount missing
 * (s3fs or rclone not installed) shows n/a.
 */
function s3Report(results) {
  const { raw } = results
  const mounts = ['s3', 's3fs', 'rclone'].map((key) => results[key] ?? {})
  const rows = [['measurement', 'snapmount s3', 's3fs', 'rclone mount', 'raw S3 client, no FUSE', 'ratios snapmount / s3fs / rclone vs raw']]
  const cells = (value) => mounts.map((m) => (m.mountMs === undefined ? 'n/a' : value(m)))
  const row = (label, key, rawKey = key) => [label, ...mounts.map((m) => fmt(m[key])), fmt(raw[rawKey]), mounts.map((m) => ratio(m[key], raw[rawKey])).join(' / ')]
  const amp = (m, kind) => m.amplification?.[kind]
  const mb = (bytes) => fmt(bytes / 1e6)
  const ampCell = (t, withRead = false) => (t === undefined ? 'n/a' : `${fmtAmp(t.amp)} (${mb(t.sent)}${withRead ? ` / ${mb(t.bytesRead)}` : ''})`)
  const perRead = (t) => (t?.gets === undefined ? 'n/a' : `${fmtPerRead(t.gets / (t.bytesRead / 4096))} (${fmtAmp(t.askedMiBPerGet)}; ${t.connections})`)
  rows.push(
    ['daemon start to "mounted" (ms), median of 3 cold daemons', ...cells((m) => fmt(m.mountMs)), '-', '-'],
    row('seq read MB/s, 1st after mount, 1 GiB (raw: one GetObject stream)', 'seq'),
    row('4K randread IOPS, 1 reader (mount O_DIRECT, cold; raw: 4 KiB GetObjects/s, 1 client)', 'iops1'),
    row('4K randread IOPS, 8 readers (mount O_DIRECT, cold; raw: 8 clients, 8 connections)', 'iops8'),
    ['ms per 4K read, 1 reader (raw: median 4 KiB GetObject)', ...cells((m) => (1000 / m.iops1).toFixed(2)), raw.getMs.toFixed(2), '-'],
    [
      `read amplification, seq, first ${AMP_SEQ_BYTES / 2 ** 20} MiB: bytes radosgw sent / bytes read (MB sent)`,
      ...cells((m) => ampCell(amp(m, 'seq'))),
      ampCell(raw.amplification.seq),
      '-',
    ],
    [
      '  GETs for that read (mean KiB sent each; connections used)',
      ...cells((m) => `${fmtCount(amp(m, 'seq').gets)} (${fmt(amp(m, 'seq').sentKiBPerGet)}; ${amp(m, 'seq').connections})`),
      `${fmtCount(raw.amplification.seq.gets)} (${fmt(raw.amplification.seq.sentKiBPerGet)}; ${raw.amplification.seq.connections})`,
      '-',
    ],
    [
      `read amplification, 4K randread O_DIRECT, 1 reader, ${AMP_FIO_SECONDS} s (MB sent / MB read; raw: 4 KiB GetObjects)`,
      ...cells((m) => ampCell(amp(m, 'rand'), true)),
      ampCell(raw.amplification.rand, true),
      '-',
    ],
    ['  GETs per 4K read in that run (MiB asked per GET; connections used)', ...cells((m) => perRead(amp(m, 'rand'))), perRead(raw.amplification.rand), '-'],
    [`sha256 of ${CHECK_SLICE_MIB.length} x 1 MiB O_DIRECT slices equals source (after the seq read)`, ...cells((m) => okOr(m.sliceOk)), '-', '-'],
    ['daemon exit status after SIGTERM (each of its 5 daemons)', ...cells((m) => [...new Set(m.exits.map(String))].join(', ')), '-', '-'],
  )
  return table(rows)
}

// ---------------------------------------------------------------------------------------------
// Main

/** The parts, in the order they run; `node bench/run.mjs s3` (or `npm run bench -- s3`) runs only those named. */
const PARTS = ['local', 'http', 's3']

async function main() {
  const began = Date.now()
  const parts = process.argv.slice(2)
  for (const part of parts) if (!PARTS.includes(part)) throw new Error(`unknown part ${part}: the parts are ${PARTS.join(', ')}`)
  const runs = (part) => parts.length === 0 || parts.includes(part)
  // Anything else running on the machine (builds, tests) shows up in these numbers: say so.
  const loadBefore = loadavg()[0]
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      progress(`${signal}: stopping daemons, unmounting, stopping servers`)
      stopping = true
      for (const child of tools) child.kill('SIGTERM')
      cleanupAll().finally(() => process.exit(130))
    })
  }
  if (runs('s3')) await checkCeph()
  await clearStaleProcesses()
  await clearStaleMounts()
  for (const dir of await clearStaleNginx(NGINX_PREFIX)) progress(`cleared nginx left by an earlier run in ${dir}`)
  await clearStaleS3()
  const image = await ensureImage()
  // Before any measurement, so apt and dpkg do not run beside one.
  const absent = { note: 'not needed by the parts run' }
  const httpfs2 = runs('http') ? await ensurePackage('httpfs2') : absent
  const peers = runs('s3') ? { s3fs: await ensurePackage('s3fs'), rclone: await ensurePackage('rclone') } : {}
  for (const peer of [httpfs2, ...Object.values(peers)]) if (peer !== absent) progress(peer.note)
  const fioVersion = (await run('fio', ['--version'])).stdout.trim()
  progress(`image ${IMAGE_PATH} (${image}); node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ${fioVersion}`)

  let failed = false
  try {
    if (runs('local')) {
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
    }

    if (runs('http')) {
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
    }

    if (runs('s3')) {
      const s3Began = Date.now()
      const s3LoadBefore = loadavg()[0]
      const s3 = await measureS3(peers)
      // Only snapmount's checks decide the exit status; the peers' are reported beside them.
      failed ||= !s3.s3.sliceOk || s3.s3.exits.some((exit) => exit !== 0)
      const s3Seconds = (Date.now() - s3Began) / 1000
      const radosgwVersion = await versionOf(RADOSGW, ['--version'], /ceph version (\S+)/)
      const uploadMBps = IMAGE_BYTES / s3.uploadSeconds / 1e6
      process.stdout.write(`\nS3: the same image as one object in Ceph radosgw ${radosgwVersion} on 127.0.0.1 (beast, one memstore OSD, no compression), started in ${s3.startSeconds.toFixed(1)} s;\n`)
      process.stdout.write(`uploaded by this run in ${s3.uploadSeconds.toFixed(1)} s (${fmt(uploadMBps)} MB/s; ${IMAGE_BYTES / PART_BYTES} parts of ${PART_BYTES / 2 ** 20} MiB, ${PARTS_IN_FLIGHT} in flight). A cold daemon per mount and measurement,\n`)
      process.stdout.write(`${FIO_SECONDS} s of fio or of the raw client per rate; amplification on daemons of its own through tools/count-proxy.mjs (a counting TCP proxy)\n`)
      process.stdout.write(`${peers.s3fs.note}; ${peers.rclone.note}; 1-min load average ${s3LoadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after\n`)
      process.stdout.write(`rclone mount: --read-only, otherwise defaults: ${RCLONE_SETTINGS}\n\n`)
      process.stdout.write(`${s3Report(s3)}\n\n`)
      process.stdout.write('raw: bench/s3-client.mjs (Node, AWS SDK v3 built as the daemon builds it: keep-alive, one attempt, IfMatch), same endpoint.\n')
      process.stdout.write('snapmount s3: defaults (64 sockets, one GetObject per FUSE read, no cache or readahead of its own); s3fs: -o ro, url, use_path_request_style,\n')
      process.stdout.write(`passwd_file, otherwise defaults (no use_cache: what it downloads stays in a temp file while it runs). S3 part ${s3Seconds.toFixed(0)} s.\n`)
    }
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

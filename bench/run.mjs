// snapmount read benchmark. One run measures, for a 1 GiB image:
//   local   the image as a local file through snapmount (file, mmap), a zero-cost null backend and
//           QEMU's FUSE export of the same file (qemu-storage-daemon), beside the file itself;
//   http    the image from nginx on loopback, at 0 ms and at 10 ms round-trip time (a delaying
//           proxy of our own), through snapmount, httpfs2, rclone mount and QEMU's curl driver
//           with a FUSE export, beside a raw client (curl, undici) on the same path;
//   s3      the image as an object in Ceph's radosgw on loopback, at 0 ms and 10 ms, through
//           snapmount, s3fs and rclone mount, beside a raw SDK client;
//   rss     snapmount's peak RSS while a 4 GiB image is read sequentially with a 256 MiB cache;
// then evaluates issue 5's targets from those numbers, prints every table and writes it all as
// JSON to bench/results/. See bench/README.md for what each number means. `npm run bench` builds
// first; `npm run bench -- http s3-10ms` runs only the parts named.
//
// Every access to a mount happens in a child process (dd, fio), never in this one, and every
// daemon runs as a child too: a synchronous access from the daemon's own process would deadlock
// it, and an async one from here would still tie the numbers to this event loop. The proxies
// (delay and count, one hop: tools/delay-proxy.mjs) do run in this process, which otherwise only
// waits for its children.

import { spawn } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { access, mkdir, mkdtemp, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDelayProxy } from '../tools/delay-proxy.mjs'
import { NGINX, clearStaleNginx, startNginx } from '../tools/nginx.mjs'
import { CEPH_MON, CEPH_OSD, RADOSGW, clearStaleRadosgw, startRadosgw } from '../tools/radosgw.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** /var/tmp survives reboots and is on disk, not tmpfs: the cached images are reused across runs. */
const BENCH_DIR = process.env.SNAPMOUNT_BENCH_DIR ?? '/var/tmp/snapmount-bench'
const RESULTS_DIR = join(ROOT, 'bench/results')
/** 1 GiB: a sequential read from page cache lasts long enough (~0.1 s+) for the clocks to mean something. */
const IMAGE_BYTES = 2 ** 30
/** The name says how the bytes were made, so a change of generator never reuses a stale image. */
const IMAGE_PATH = join(BENCH_DIR, 'image-1GiB-aes128ctr-v1.raw')
/**
 * The rss part's image: the same keystream continued to 4 GiB (its first GiB is IMAGE_PATH's
 * bytes). Real bytes, not a sparse file, so the server and the daemon do their real work.
 */
const BIG_IMAGE_BYTES = 4 * 2 ** 30
const BIG_IMAGE_PATH = join(BENCH_DIR, 'image-4GiB-aes128ctr-v1.raw')
/** File name of the image inside each snapmount mount. */
const NAME = 'img'
/** SNAPMOUNT_BENCH_QUICK=1 halves every timed measurement: for iterating, not for quoting. */
const QUICK = process.env.SNAPMOUNT_BENCH_QUICK === '1'
/** Per fio random-read run: 4 s is >300 reads even at 10 ms with one reader, enough for a p99. */
const FIO_SECONDS = QUICK ? 2 : 4
/**
 * A sequential read stops at the end of its bytes or after this long: at 10 ms a slow peer
 * (~10-25 MB/s) would otherwise take a minute per GiB. What it read is what the rows report.
 */
const SEQ_SECONDS = QUICK ? 3 : 6
/** The raw clients' 4 KiB rate loops. */
const RAW_RATE_SECONDS = QUICK ? 2 : 3
/** A daemon that has not said "mounted" or exited by then is reported as hung. */
const DAEMON_TIMEOUT_MS = 15_000
/**
 * A daemon's work (reads and checks; ~15 s at most for the slowest peer) longer than this means a
 * hung mount: QEMU 7.2's curl driver, straight to nginx on loopback, sometimes never answers a
 * read (fio stuck in D state for minutes). The daemon is killed, which fails the reads stuck in
 * the kernel, and the mount is reported as not measured. The rss part gives its read longer.
 */
const WORK_TIMEOUT_MS = 60_000
/** The source's buffered sequential read is short and noisy: the median of this many is reported. */
const SOURCE_SEQ_RUNS = 3
/** Cold daemons per local backend for the sequential reads; each costs ~0.3 s to start plus two reads. */
const SEQ_DAEMONS = QUICK ? 1 : 3
/** The configured round trip of the distant condition, and the targets' RTT. */
const RTT_MS = 10
/**
 * The proxy may release a chunk this much before it is due: Node's timers tick in whole ms and
 * often fire a fraction early, and without slack each hop would wait a whole extra tick. Measured
 * here: 5 ms asked, 5.1-5.5 ms given (p10-p90).
 */
const PROXY_TIMER_SLACK_MS = 0.5
/**
 * What one proxied connection may have in flight each way (tools/delay-proxy.mjs's windowBytes):
 * a real 10 ms link carries one TCP stream at window / RTT, and without this bound one stream
 * through the proxy ran at ~0.9-1.2 GB/s. Calibrated on the issue's measurement of one curl stream
 * over a real 10 ms link on these machines (netem): ~310 MB/s, i.e. ~3.1 MB in flight. It agrees
 * with the kernel: a sender keeps at most its send buffer in flight (net.ipv4.tcp_wmem's maximum,
 * 4 MiB here), and Linux refills that buffer only once a third of it is free.
 */
const PROXY_WINDOW_BYTES = 3 * 1024 * 1024
/** The rss part's daemon runs with this cache bound: the target is this plus 100 MiB. */
const RSS_CACHE_MIB = 256
const RSS_SLACK_MIB = 100
/** Readers in the "4 readers" sequential row, each on its own quarter of the image. */
const SEQ_READERS = 4

/**
 * The environment of every child: the caller's, without proxy settings. The remote parts'
 * traffic must go straight to 127.0.0.1, and snapmount, curl and rclone would honour an http_proxy.
 */
const DIRECT_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)))

/** Daemons and mountpoints still to be cleaned up, so SIGINT and failures leave no mount behind. */
const live = new Set()
/** nginx, the proxies, radosgw and temp dirs, stopped after the daemons: each has a `stop()`. */
const services = new Set()
/** Running dd/fio/curl: stopped first on SIGINT, so none holds a mount busy while it unmounts. */
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

/** fio on one file, psync, its JSON's read side (group_reporting: all jobs together). */
async function fio(path, args) {
  const { stdout } = await run('fio', [
    '--name=bench',
    `--filename=${path}`,
    '--readonly',
    '--ioengine=psync',
    // fio's default invalidate=1 drops the file's page cache before each job, which would turn a
    // warm measurement into a cold one and cool the source for later mounts.
    '--invalidate=0',
    // No POSIX_FADV_SEQUENTIAL/RANDOM hint: the kernel's readahead as a plain reader (dd, QEMU) gets it.
    '--fadvise_hint=0',
    '--group_reporting',
    '--output-format=json',
    ...args,
  ])
  // fio may print notices before the JSON document.
  const report = JSON.parse(stdout.slice(stdout.indexOf('{')))
  const job = report.jobs?.[0]
  if (!job || job.error) throw new Error(`fio reported error ${job?.error} for ${path}`)
  return job.read
}

/**
 * A buffered sequential read in 1 MiB reads by `jobs` readers, reader i from i × bytesEach for
 * bytesEach bytes, stopping early after `seconds` if given: bytes read and aggregate MB/s (10^6 B/s).
 */
async function fioSeq(path, { jobs = 1, bytesEach, seconds }) {
  const read = await fio(path, [
    '--rw=read',
    '--bs=1M',
    '--direct=0',
    `--size=${bytesEach}`,
    `--offset_increment=${bytesEach}`,
    `--numjobs=${jobs}`,
    ...(seconds ? [`--runtime=${seconds}`] : []),
  ])
  return { bytes: read.io_bytes, mbps: read.bw_bytes / 1e6 }
}

/**
 * 4 KiB random reads at 4 KiB-aligned offsets by `jobs` readers (each its own descriptor) for
 * `seconds`: IOPS, bytes read, and fio's completion-latency percentiles in ms.
 */
async function fioRand(path, { jobs, direct = true, seconds = FIO_SECONDS }) {
  const read = await fio(path, [
    '--rw=randread',
    '--bs=4k',
    `--direct=${direct ? 1 : 0}`,
    // No map of blocks already read: random offsets stay random and fio's own overhead stays low.
    '--norandommap',
    '--time_based',
    `--runtime=${seconds}`,
    `--numjobs=${jobs}`,
  ])
  const percentile = read.clat_ns?.percentile ?? {}
  const ms = (key) => (percentile[key] === undefined ? undefined : percentile[key] / 1e6)
  return { iops: read.iops, bytes: read.io_bytes, p50Ms: ms('50.000000'), p99Ms: ms('99.000000') }
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
// The images

/**
 * Reuses the image at `path` if it has the right size, else writes one: an AES-128-CTR keystream
 * under a fixed key, so it is incompressible, never a run of zero pages, identical on every
 * machine (and the 4 GiB image starts with the 1 GiB one), and generated at GB/s. Written beside
 * the target and renamed, so an interrupted run never leaves a short image to be reused.
 */
async function ensureImage(path, bytes) {
  await mkdir(BENCH_DIR, { recursive: true })
  const existing = await stat(path).catch(() => undefined)
  if (existing?.size === bytes) return 'reused'
  progress(`writing ${path} (${bytes / 2 ** 30} GiB)`)
  const partial = `${path}.partial-${process.pid}`
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 's'), Buffer.alloc(16))
  const zeros = Buffer.alloc(8 * 2 ** 20)
  const handle = await open(partial, 'w')
  try {
    for (let written = 0; written < bytes; written += zeros.length) await handle.write(cipher.update(zeros))
    await handle.close()
    await rename(partial, path)
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

/**
 * Byte checks: slices at offsets spread over the image (one in each 1/16th, at a different place
 * in each), read with O_DIRECT so they come from the daemon now (its cache, or the server), and
 * hashed together; compared with the same slices of the source. 1 MiB slices after sequential
 * reads, 4 KiB slices (the random reads' size) after random reads. The whole image is not hashed:
 * sha256sum runs at ~0.3 GB/s here, and a full read over a slow path would cost more than the rest.
 */
function slices(imageBytes, sliceBytes, count = 16) {
  const region = imageBytes / count
  const perRegion = region / sliceBytes
  return { sliceBytes, indexes: Array.from({ length: count }, (_, i) => i * perRegion + ((i * 7919 + 37) % (perRegion - 1))) }
}
const MIB_SLICES = slices(IMAGE_BYTES, 2 ** 20)
const KIB4_SLICES = slices(IMAGE_BYTES, 4096, 32)
const BIG_SLICES = slices(BIG_IMAGE_BYTES, 2 ** 20)

/** sha256 of `set`'s slices of `path`, each read by dd with `iflag` (direct from a mount, fullblock from the source). */
async function sliceSha256(path, iflag, set) {
  const script = 'f=$1; flag=$2; bs=$3; shift 3; for i; do dd if="$f" bs="$bs" count=1 skip="$i" iflag="$flag" status=none || exit 1; done | sha256sum'
  const { stdout } = await run('bash', ['-o', 'pipefail', '-c', script, 'bash', path, iflag, String(set.sliceBytes), ...set.indexes.map(String)])
  return stdout.split(' ')[0]
}

/** The expected slice hashes of the 1 GiB image, computed once per run. */
let expectedSlices
async function expected() {
  expectedSlices ??= {
    mib: await sliceSha256(IMAGE_PATH, 'fullblock', MIB_SLICES),
    kib4: await sliceSha256(IMAGE_PATH, 'fullblock', KIB4_SLICES),
  }
  return expectedSlices
}

// ---------------------------------------------------------------------------------------------
// Daemons and mounts

/**
 * Spawns a daemon and resolves once it logs "mounted" (or, for a peer that does not say, once its
 * mount is listed in mountinfo); rejects if it exits or hangs first. `mount.fileMount`: the daemon
 * mounts on a regular file (QEMU's FUSE export), created empty first.
 */
async function startDaemon(mount) {
  refuseIfStopping(mount.title)
  const mnt = await mkdtemp(join(BENCH_DIR, `mnt-${mount.key}-`))
  const mountPath = mount.fileMount ? join(mnt, NAME) : mnt
  if (mount.fileMount) await writeFile(mountPath, '')
  const [command, ...args] = await mount.command(mountPath)
  const started = process.hrtime.bigint()
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: mount.env ?? DIRECT_ENV })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const daemon = { mnt, mountPath, fileMount: mount.fileMount, child, exited, log: '', stopped: undefined }
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
      // "unmounted" contains "mounted" too, but not as a word.
      if (!mount.listedWhenMounted && /\bmounted\b/.test(daemon.log)) mounted()
    })
    if (mount.listedWhenMounted) poll = setInterval(() => mountedPaths().then((paths) => paths.includes(mountPath) && mounted(), reject), 10)
    child.on('error', reject)
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${mount.title} exited (${signal ?? code}) before mounting:\n${daemon.log}`))
    })
  }).finally(() => clearInterval(poll))
  daemon.mountMs = Number(process.hrtime.bigint() - started) / 1e6
  return daemon
}

/** The daemon's peak resident set (VmHWM) in MiB, from /proc; undefined once it is gone. */
async function peakRssMiB(daemon) {
  const status = await readFile(`/proc/${daemon.child.pid}/status`, 'utf8').catch(() => '')
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
  return kib === undefined ? undefined : Number(kib) / 1024
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
    await unmountIfMounted(daemon.mountPath)
    if (daemon.fileMount) await rm(daemon.mountPath, { force: true }).catch(() => {})
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
  const marks = [join(BENCH_DIR, 'mnt-'), join(tmpdir(), TEMP_PREFIX)]
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
    if (!name.startsWith('mnt-')) continue
    // A QEMU export's mountpoint is an empty file in its directory.
    await rm(join(BENCH_DIR, name, NAME), { force: true }).catch(() => {})
    await rmdir(join(BENCH_DIR, name)).catch(() => {})
  }
}

async function cleanupAll() {
  await Promise.allSettled([...live].map(stopDaemon))
  await Promise.allSettled([...services].map((service) => service.stop()))
}
/**
 * Runs `work(file, daemon)` against a fresh daemon, always stopping it; adds start time, exit
 * status and the daemon's peak RSS (VmHWM, read just before SIGTERM).
 */
async function withDaemon(mount, work, { timeoutMs = WORK_TIMEOUT_MS } = {}) {
  const daemon = await startDaemon(mount)
  let result
  let peak
  let hung
  const watchdog = setTimeout(() => {
    hung = `its reads did not finish within ${timeoutMs / 1000} s: killed`
    progress(`${mount.title}: ${hung}`)
    daemon.child.kill('SIGKILL')
  }, timeoutMs)
  try {
    const file = mount.fileMount ? daemon.mountPath : join(daemon.mnt, mount.file ?? NAME)
    result = await work(file, daemon).catch((err) => {
      throw hung ? new Error(hung) : err
    })
  } finally {
    clearTimeout(watchdog)
    peak = await peakRssMiB(daemon)
    const { code, signal } = await stopDaemon(daemon)
    // rclone answers SIGTERM by unmounting and exiting 143 (128 + SIGTERM): its clean exit.
    if ((signal ?? code) !== (mount.sigtermExit ?? 0)) progress(`${mount.title}: daemon exited ${signal ?? code} after SIGTERM:\n${daemon.log}`)
    if (result) result.exit = signal ?? code
  }
  return { ...result, mountMs: daemon.mountMs, peakRssMiB: peak, cleanExit: result.exit === (mount.sigtermExit ?? 0) }
}

function median(values) {
  const sorted = values.filter((v) => v !== undefined).sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function max(values) {
  const defined = values.filter((v) => v !== undefined)
  return defined.length ? Math.max(...defined) : undefined
}

/** Reads the whole source once so it sits in the page cache, as it would under a busy daemon or server. */
async function warmSource(path = IMAGE_PATH) {
  await run('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M', 'status=none'])
}

/**
 * The source file read directly from the page cache, as the mounts are read (fio, 1 MiB buffered
 * reads): the reference of every "second pass" row. Median of SOURCE_SEQ_RUNS.
 */
let sourceSeqMemo
async function sourceSeq() {
  if (sourceSeqMemo) return sourceSeqMemo
  await warmSource()
  const runs = []
  for (let i = 0; i < SOURCE_SEQ_RUNS; i++) runs.push((await fioSeq(IMAGE_PATH, { bytesEach: IMAGE_BYTES })).mbps)
  progress(`source from page cache: seq ${fmt(median(runs))} MB/s (median of ${runs.map(fmt).join(', ')})`)
  sourceSeqMemo = median(runs)
  return sourceSeqMemo
}

/**
 * A peer's program (httpfs2, s3fs, rclone, qemu-storage-daemon): found on PATH with every `files`
 * it needs, else installed with apt-get (its Debian `packages`) when Debian has them. Returns
 * { path, note }, or { note } saying why it is absent. Run before any measurement, so apt and
 * dpkg never run beside one.
 */
async function ensurePeer(command, packages = [command], files = []) {
  const which = async () => (await run('sh', ['-c', `command -v ${command}`]).catch(() => ({ stdout: '' }))).stdout.trim()
  const version = async () => (await run('dpkg-query', ['-W', '-f=${Version}', packages[0]]).catch(() => ({ stdout: '' }))).stdout.trim()
  const complete = async () => (await which()) !== '' && (await Promise.all(files.map((f) => access(f).then(() => true, () => false)))).every(Boolean)
  if (await complete()) return { path: await which(), note: `${command} ${(await version()) || '(not from a package)'}, already installed` }
  for (const name of packages) {
    const policy = (await run('apt-cache', ['policy', name]).catch(() => ({ stdout: '' }))).stdout
    const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1]
    if (!candidate || candidate === '(none)') return { note: `${command} not measured: not installed, and apt-cache policy ${name} has no candidate` }
  }
  progress(`installing ${packages.join(' ')} with apt-get`)
  try {
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env: { DEBIAN_FRONTEND: 'noninteractive' } })
  } catch (err) {
    return { note: `${command} not measured: apt-get install ${packages.join(' ')} failed (${err.message.split('\n').at(-1)})` }
  }
  return (await complete()) ? { path: await which(), note: `${command} ${await version()}, installed by this run (apt-get)` } : { note: `${command} not measured: installed but not complete` }
}

/** QEMU's curl block driver, a module of Debian's qemu-block-extra. */
const QEMU_CURL_MODULE = '/usr/lib/x86_64-linux-gnu/qemu/block-curl.so'

/**
 * qemu-storage-daemon exporting one block node over FUSE on a regular file, read-only. The
 * export's file is the mount's file; QEMU unmounts and exits 0 on SIGTERM.
 */
function qemuMount(key, title, blockdev, qemu) {
  return {
    key,
    title,
    fileMount: true,
    listedWhenMounted: true,
    command: (file) => [qemu.path, '--blockdev', `${blockdev},node-name=src,read-only=on`, '--export', `type=fuse,id=exp,node-name=src,mountpoint=${file},writable=off`],
  }
}

// ---------------------------------------------------------------------------------------------
// Local: the image as a local file

function localMounts(qemu) {
  const mounts = [
    { key: 'file', title: 'snapmount file', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=${IMAGE_PATH}`] },
    { key: 'mmap', title: 'snapmount mmap', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=mmap://${IMAGE_PATH}`] },
    { key: 'null', title: 'null backend', command: (mnt) => ['node', join(ROOT, 'bench/null-daemon.mjs'), mnt, NAME, String(IMAGE_BYTES)] },
  ]
  // aio=threads, cache.direct=off: QEMU's defaults, reading through the host's page cache as snapmount does.
  if (qemu.path) mounts.push(qemuMount('qemu', 'QEMU FUSE export', `driver=file,filename=${IMAGE_PATH}`, qemu))
  return mounts
}

/** The source directly: its sha256 (which also warms it), buffered sequential, 4 KiB random buffered and O_DIRECT. */
async function measureSource() {
  const result = { sha: await sha256File(IMAGE_PATH) }
  result.seq = await sourceSeq()
  result.rand1 = await fioRand(IMAGE_PATH, { jobs: 1, direct: false })
  result.rand8 = await fioRand(IMAGE_PATH, { jobs: 8, direct: false })
  progress(`source: buffered randread ${fmt(result.rand1.iops)} / ${fmt(result.rand8.iops)} IOPS`)
  try {
    result.rand1Direct = await fioRand(IMAGE_PATH, { jobs: 1, direct: true })
    result.rand8Direct = await fioRand(IMAGE_PATH, { jobs: 8, direct: true })
    progress(`source: O_DIRECT randread ${fmt(result.rand1Direct.iops)} / ${fmt(result.rand8Direct.iops)} IOPS`)
  } catch (err) {
    progress(`source: O_DIRECT not measured (${err.message.split('\n')[0]})`)
  }
  return result
}

/**
 * One local mount: SEQ_DAEMONS cold daemons each read the whole file twice with dd-like 1 MiB
 * reads (the first read after mount is the number that matters and can only be taken once per
 * mount, and a 2-CPU VM is noisy, so the median is reported); the first daemon also runs the
 * random reads and the checksums (whole file, cached and O_DIRECT).
 */
async function measureLocalMount(mount, expectedSha) {
  const samples = []
  for (let i = 0; i < SEQ_DAEMONS; i++) {
    await warmSource() // fio O_DIRECT on the source or another mount must not have left it cold
    samples.push(
      await withDaemon(mount, async (file) => {
        const seqCold = (await fioSeq(file, { bytesEach: IMAGE_BYTES })).mbps // every page from the daemon
        const seqWarm = (await fioSeq(file, { bytesEach: IMAGE_BYTES })).mbps // from the page cache the first read filled, if kept
        if (i > 0) return { seqCold, seqWarm }
        const rand1 = await fioRand(file, { jobs: 1 })
        const rand8 = await fioRand(file, { jobs: 8 })
        // Cached: what readers saw, filled by the first read. Direct: what the daemon answers now.
        const shaCached = (await sha256File(file)) === expectedSha
        const shaDirect = (await sha256Direct(file)) === expectedSha
        return { seqCold, seqWarm, rand1, rand8, shaCached, shaDirect }
      }),
    )
  }
  const result = { ...samples[0] }
  result.seqCold = median(samples.map((s) => s.seqCold))
  result.seqWarm = median(samples.map((s) => s.seqWarm))
  result.mountMs = median(samples.map((s) => s.mountMs))
  result.peakRssMiB = max(samples.map((s) => s.peakRssMiB))
  result.exit = samples.map((s) => s.exit).find((exit) => exit !== 0) ?? 0
  result.ok = result.shaCached && result.shaDirect && samples.every((s) => s.cleanExit)
  const list = (key) => samples.map((s) => fmt(s[key])).join(', ')
  progress(
    `${mount.title}: seq MB/s first read ${list('seqCold')}; cached ${list('seqWarm')}; start ms ${list('mountMs')}; ` +
      `O_DIRECT randread ${fmt(result.rand1.iops)} / ${fmt(result.rand8.iops)} IOPS; sha256 ${okOr(result.shaCached)} / ${okOr(result.shaDirect)}`,
  )
  return result
}

async function measureLocal(qemu) {
  const source = await measureSource()
  const zeros = zeroSha256()
  const mounts = {}
  for (const mount of localMounts(qemu)) {
    try {
      mounts[mount.key] = await measureLocalMount(mount, mount.key === 'null' ? zeros : source.sha)
    } catch (err) {
      if (mount.key !== 'qemu' || stopping) throw err
      qemu.note = `qemu-storage-daemon not measured: ${err.message.split('\n')[0]}`
      progress(qemu.note)
    }
  }
  return { source, mounts, qemuNote: qemu.note }
}

// ---------------------------------------------------------------------------------------------
// Remote: what every HTTP and S3 mount gets measured with, through one proxy per condition

/**
 * After a reader finishes, a mount's readahead may still be receiving: counters are read once
 * nothing has moved for this long (at most SETTLE_MAX_MS), so those bytes count for the read that
 * caused them.
 */
const SETTLE_MS = 200
const SETTLE_MAX_MS = 3_000

/** Waits until the proxy has seen no byte for SETTLE_MS (at most SETTLE_MAX_MS), then reads its counters. */
async function settledCounters(proxy) {
  const deadline = Date.now() + SETTLE_MAX_MS
  let last = proxy.counters()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
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
    asked: after.rangeBytesAsked - before.rangeBytesAsked,
  }
}

/** Runs `work()` (resolving to { bytes, ... }) and adds what the proxy saw meanwhile as `traffic`. */
async function counted(proxy, work) {
  const before = proxy.counters()
  const result = await work()
  return { ...result, traffic: traffic(before, await settledCounters(proxy), result.bytes) }
}

/** KiB the server sent per 4 KiB read, from a random-read run's traffic. */
function kibPer4k(t) {
  return t.bytesRead ? t.sent / (t.bytesRead / 4096) / 1024 : undefined
}

/** KiB of ranges asked for (the bodies requested, no headers) per 4 KiB read. */
function askedKibPer4k(t) {
  return t.bytesRead ? t.asked / (t.bytesRead / 4096) / 1024 : undefined
}

/**
 * One remote mount in one condition, on four cold daemons, all through `proxy`:
 *   A  sequential, 1 reader (from offset 0, up to 1 GiB or SEQ_SECONDS), then the second pass over
 *      exactly the bytes it read (buffered; the kernel's page cache should serve it), then 1 MiB slices;
 *   B  sequential, 4 readers each on its own quarter, then 1 MiB slices;
 *   C  4 KiB random reads, 1 reader, O_DIRECT, then 4 KiB slices;
 *   D  the same with 8 readers.
 * Separate daemons because a cache (snapmount's, s3fs's temp file) filled by one reader would
 * serve the next: random reads after a sequential one would not reach the server.
 */
async function measureRemoteMount(mount, proxy) {
  const want = await expected()
  const a = await withDaemon(mount, async (file) => {
    const seq = await counted(proxy, () => fioSeq(file, { bytesEach: IMAGE_BYTES, seconds: SEQ_SECONDS }))
    const warm = await counted(proxy, () => fioSeq(file, { bytesEach: seq.bytes }))
    return { seq, warm, sliceOk: (await sliceSha256(file, 'direct', MIB_SLICES)) === want.mib }
  })
  const b = await withDaemon(mount, async (file) => {
    const seq4 = await counted(proxy, () => fioSeq(file, { jobs: SEQ_READERS, bytesEach: IMAGE_BYTES / SEQ_READERS, seconds: SEQ_SECONDS }))
    return { seq4, sliceOk: (await sliceSha256(file, 'direct', MIB_SLICES)) === want.mib }
  })
  const random = (jobs) =>
    withDaemon(mount, async (file) => {
      const rand = await counted(proxy, () => fioRand(file, { jobs }))
      return { rand, sliceOk: (await sliceSha256(file, 'direct', KIB4_SLICES)) === want.kib4 }
    })
  const c = await random(1)
  const d = await random(8)
  const daemons = [a, b, c, d]
  const rand = (r) => ({ iops: r.iops, p50Ms: r.p50Ms, p99Ms: r.p99Ms, bytesRead: r.bytes, fetched: r.traffic.sent, kibPerRead: kibPer4k(r.traffic), askedKibPerRead: askedKibPer4k(r.traffic), getsPerRead: r.traffic.gets / (r.bytes / 4096) })
  const result = {
    mountMs: median(daemons.map((x) => x.mountMs)),
    seq1: { mbps: a.seq.mbps, bytesRead: a.seq.bytes, fetched: a.seq.traffic.sent, fetchPerByte: a.seq.traffic.amp, gets: a.seq.traffic.gets, connections: a.seq.traffic.connections },
    warm: { mbps: a.warm.mbps, bytesRead: a.warm.bytes, fetched: a.warm.traffic.sent },
    seq4: { mbps: b.seq4.mbps, bytesRead: b.seq4.bytes, fetched: b.seq4.traffic.sent, fetchPerByte: b.seq4.traffic.amp },
    rand1: rand(c.rand),
    rand8: rand(d.rand),
    peakRssMiB: max(daemons.map((x) => x.peakRssMiB)),
    slicesOk: daemons.every((x) => x.sliceOk),
    exits: daemons.map((x) => x.exit),
    cleanExit: daemons.every((x) => x.cleanExit),
  }
  result.ok = result.slicesOk && result.cleanExit
  progress(
    `${mount.title}: seq ${fmt(result.seq1.mbps)} MB/s (${fmt(result.seq1.bytesRead / 1e6)} MB, fetched x${fmtAmp(result.seq1.fetchPerByte)}), ` +
      `x${SEQ_READERS} ${fmt(result.seq4.mbps)} MB/s, 2nd pass ${fmt(result.warm.mbps)} MB/s; ` +
      `rand ${fmt(result.rand1.iops)} IOPS p50 ${fmtMs(result.rand1.p50Ms)} ms (${fmt(result.rand1.kibPerRead)} KiB/read) / ${fmt(result.rand8.iops)} IOPS; ` +
      `RSS ${fmt(result.peakRssMiB)} MiB; slices ${okOr(result.slicesOk)}; exits ${result.exits.join(', ')}`,
  )
  return result
}

/**
 * Every mount of one condition, one after the other; a peer that fails is noted and left out,
 * snapmount failing fails the bench.
 */
async function measureMounts(mounts, proxy, notes) {
  const results = {}
  for (const mount of mounts) {
    try {
      results[mount.key] = await measureRemoteMount(mount, proxy)
    } catch (err) {
      if (mount.key === 'snapmount' || stopping) throw err
      notes.push(`${mount.title} not measured: ${err.message.split('\n')[0]}`)
      progress(`${notes.at(-1)}\n${err.stack ?? err}`)
    }
  }
  return results
}

/** The remote conditions: no added delay, and RTT_MS through the delay proxy. */
const DELAYS = [
  { suffix: '0ms', title: '0 ms', oneWayDelayMs: 0 },
  { suffix: '10ms', title: `${RTT_MS} ms RTT`, oneWayDelayMs: RTT_MS / 2 },
]

async function startProxy(port, oneWayDelayMs) {
  const proxy = await startDelayProxy({ host: '127.0.0.1', port }, oneWayDelayMs, { timerSlackMs: PROXY_TIMER_SLACK_MS, windowBytes: PROXY_WINDOW_BYTES })
  proxy.stop = proxy.close
  services.add(proxy)
  return proxy
}

async function stopService(service) {
  await service.stop()
  services.delete(service)
}

// ---------------------------------------------------------------------------------------------
// HTTP: the image from nginx

/** nginx's temp dirs: the bench's own prefix, so clearing a killed run's nginx touches no test's. */
const NGINX_PREFIX = 'snapmount-bench-nginx-'
/** The image as nginx serves it (root BENCH_DIR); httpfs2 and rclone name their file after it. */
const HTTP_FILE = basename(IMAGE_PATH)
const HTTP_CLIENT = join(ROOT, 'bench/http-client.mjs')
/** rclone's http backend lists a directory from its HTML index: this one links the image only. */
const INDEX_HTML = `<!doctype html>\n<html><body><a href="${HTTP_FILE}">${HTTP_FILE}</a></body></html>\n`
const RCLONE_SETTINGS = '--vfs-cache-mode off, --vfs-read-chunk-size 128Mi (doubling, no limit), --buffer-size 16Mi, --vfs-read-wait 20ms'

/** The HTTP mounts of one URL: snapmount with its defaults, and each peer present. */
function httpMounts(origin, peers, dir) {
  const url = `${origin}/${HTTP_FILE}`
  const mounts = [{ key: 'snapmount', title: 'snapmount', command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', mnt, `${NAME}=${url}`] }]
  if (peers.httpfs2.path) {
    mounts.push({
      key: 'httpfs2',
      title: 'httpfs2',
      file: HTTP_FILE,
      listedWhenMounted: true,
      // -f: stay a child we can signal; -c: its messages go to our pipe instead of /dev/console.
      command: (mnt) => [peers.httpfs2.path, '-f', '-c', '/dev/stderr', url, mnt],
    })
  }
  if (peers.rclone.path) {
    mounts.push({
      key: 'rclone',
      title: 'rclone mount',
      file: HTTP_FILE,
      listedWhenMounted: true,
      sigtermExit: 143,
      // An empty config: everything is on the command line. --cache-dir: with the cache off nothing is kept there.
      command: (mnt) => [peers.rclone.path, 'mount', ':http:', mnt, '--http-url', `${origin}/`, '--read-only', '--config', join(dir, 'rclone-empty.conf'), '--cache-dir', join(dir, 'rclone-cache')],
    })
  }
  if (peers.qemu.path && peers.qemuCurl) mounts.push(qemuMount('qemu', 'QEMU curl + FUSE export', `driver=http,url=${url}`, peers.qemu))
  return mounts
}

/** `streams` curl GETs at once, each of its own slice of `bytes`: the aggregate MB/s. */
async function curlSeq(url, streams, bytes = IMAGE_BYTES) {
  const each = bytes / streams
  const started = performance.now()
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const { stdout } = await run('curl', ['--silent', '--show-error', '--fail', '--noproxy', '*', '--output', '/dev/null', '--range', `${i * each}-${(i + 1) * each - 1}`, '--write-out', '%{size_download}', url])
      if (Number(stdout.trim()) !== each) throw new Error(`curl ${url} slice ${i}: ${stdout.trim()} bytes, expected ${each}`)
    }),
  )
  return bytes / ((performance.now() - started) / 1000) / 1e6
}

/** A raw client's 4 KiB rate result as the mounts' rows show it. */
function rawRate(r) {
  return { iops: r.rate, p50Ms: r.medianMs, p99Ms: r.p99Ms }
}

/** The plain clients: curl streams straight to nginx and through the proxy, 4 KiB ranged GETs through it. */
async function measureRawHttp(directUrl, url, title) {
  const client = async (...args) => JSON.parse((await run('node', [HTTP_CLIENT, ...args.map(String)])).stdout)
  const raw = {}
  raw.seqDirect = await curlSeq(directUrl, 1)
  raw.seq1 = await curlSeq(url, 1)
  raw.seq4 = await curlSeq(url, SEQ_READERS)
  raw.seq8 = await curlSeq(url, 8)
  raw.rand1 = rawRate(await client('rate', url, 1, RAW_RATE_SECONDS))
  raw.rand8 = rawRate(await client('rate', url, 8, RAW_RATE_SECONDS))
  progress(
    `raw HTTP ${title}: curl direct ${fmt(raw.seqDirect)} MB/s; via proxy 1/${SEQ_READERS}/8 streams ${fmt(raw.seq1)} / ${fmt(raw.seq4)} / ${fmt(raw.seq8)} MB/s; ` +
      `4 KiB GETs/s ${fmt(raw.rand1.iops)} (p50 ${fmtMs(raw.rand1.p50Ms)} ms) / ${fmt(raw.rand8.iops)}`,
  )
  return raw
}

/** Both HTTP conditions (or those asked for): nginx once, a proxy per condition. */
async function measureHttp(peers, which) {
  await writeFile(join(BENCH_DIR, 'index.html'), INDEX_HTML)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = { stop: () => rm(dir, { recursive: true, force: true }) }
  services.add(temp)
  await writeFile(join(dir, 'rclone-empty.conf'), '')
  // Accept-Ranges on 206s: httpfs2 fails every read without it.
  const nginx = await startNginx(BENCH_DIR, { acceptRangesOnPartial: true, prefix: NGINX_PREFIX })
  services.add(nginx)
  const results = {}
  try {
    await warmSource()
    for (const delay of DELAYS) {
      const key = `http-${delay.suffix}`
      if (!which.includes(key)) continue
      const began = Date.now()
      const load = loadavg()[0]
      const proxy = await startProxy(nginx.port, delay.oneWayDelayMs)
      const origin = `http://127.0.0.1:${proxy.port}`
      progress(`HTTP ${delay.title}: ${origin}/${HTTP_FILE}`)
      const notes = []
      const raw = await measureRawHttp(`${nginx.origin}/${HTTP_FILE}`, `${origin}/${HTTP_FILE}`, delay.title)
      const mounts = await measureMounts(httpMounts(origin, peers, dir), proxy, notes)
      await stopService(proxy)
      results[key] = { key, proto: 'http', title: `HTTP, ${delay.title}`, rttMs: delay.oneWayDelayMs * 2, raw, mounts, notes, seconds: (Date.now() - began) / 1000, loadBefore: load, loadAfter: loadavg()[0] }
    }
  } finally {
    await stopService(nginx)
    await stopService(temp)
  }
  return results
}

// ---------------------------------------------------------------------------------------------
// S3: the image as one object in Ceph's radosgw

/** The bench's own temp prefixes, so clearing a killed run's leftovers touches no test's. */
const RADOSGW_PREFIX = 'snapmount-bench-radosgw-'
const TEMP_PREFIX = 'snapmount-bench-s3-'
const S3_BUCKET = 'snapmount-bench'
/** The object's key; s3fs and rclone show it as the file's name (snapmount's config names it NAME). */
const S3_KEY = basename(IMAGE_PATH)
const S3_CLIENT = join(ROOT, 'bench/s3-client.mjs')


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
      key: 'snapmount',
      title: 'snapmount',
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

/** The plain SDK client: one GetObject stream straight to radosgw and through the proxy, 4 and 8 at once, 4 KiB GetObjects. */
async function measureRawS3(rgw, endpoint, title) {
  const raw = {}
  raw.seqDirect = (await s3Client(rgw, rgw.endpoint, 'seq')).mbps
  raw.seq1 = (await s3Client(rgw, endpoint, 'seq')).mbps
  raw.seq4 = (await s3Client(rgw, endpoint, 'seqn', SEQ_READERS)).mbps
  raw.seq8 = (await s3Client(rgw, endpoint, 'seqn', 8)).mbps
  raw.rand1 = rawRate(await s3Client(rgw, endpoint, 'rate', 1, RAW_RATE_SECONDS))
  raw.rand8 = rawRate(await s3Client(rgw, endpoint, 'rate', 8, RAW_RATE_SECONDS))
  progress(
    `raw S3 ${title}: GetObject direct ${fmt(raw.seqDirect)} MB/s; via proxy 1/${SEQ_READERS}/8 streams ${fmt(raw.seq1)} / ${fmt(raw.seq4)} / ${fmt(raw.seq8)} MB/s; ` +
      `4 KiB GetObjects/s ${fmt(raw.rand1.iops)} (p50 ${fmtMs(raw.rand1.p50Ms)} ms) / ${fmt(raw.rand8.iops)}`,
  )
  return raw
}

/** radosgw, the upload (timed), then per condition the raw client and every mount through that condition's proxy. */
async function measureS3(peers, which) {
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = { stop: () => rm(dir, { recursive: true, force: true }) }
  services.add(temp)
  let started = Date.now()
  // No compression: the image is incompressible, and radosgw would only spend CPU finding that out.
  const rgw = await startRadosgw({ prefix: RADOSGW_PREFIX, compression: 'none' })
  services.add(rgw)
  const startSeconds = (Date.now() - started) / 1000
  const results = {}
  try {
    await rgw.createBucket(S3_BUCKET)
    started = Date.now()
    const etag = await rgw.uploadFile(S3_BUCKET, S3_KEY, IMAGE_PATH)
    const uploadSeconds = (Date.now() - started) / 1000
    progress(`radosgw at ${rgw.endpoint} in ${startSeconds.toFixed(1)} s; ${IMAGE_BYTES} bytes uploaded in ${uploadSeconds.toFixed(1)} s (ETag ${etag})`)
    const version = await versionOf(RADOSGW, ['--version'], /ceph version (\S+)/)
    for (const delay of DELAYS) {
      const key = `s3-${delay.suffix}`
      if (!which.includes(key)) continue
      const began = Date.now()
      const load = loadavg()[0]
      const proxy = await startProxy(Number(new URL(rgw.endpoint).port), delay.oneWayDelayMs)
      const endpoint = `http://127.0.0.1:${proxy.port}`
      progress(`S3 ${delay.title}: ${endpoint}`)
      const notes = [`radosgw ${version} started in ${startSeconds.toFixed(1)} s, 1 GiB uploaded in ${uploadSeconds.toFixed(1)} s`]
      const raw = await measureRawS3(rgw, endpoint, delay.title)
      const mounts = await measureMounts(s3Mounts(endpoint, rgw, dir, peers), proxy, notes)
      await stopService(proxy)
      results[key] = { key, proto: 's3', title: `S3, ${delay.title}`, rttMs: delay.oneWayDelayMs * 2, raw, mounts, notes, seconds: (Date.now() - began) / 1000, loadBefore: load, loadAfter: loadavg()[0] }
    }
  } finally {
    await stopService(rgw)
    await stopService(temp)
  }
  return results
}

/** Removes what a killed run left: its radosgw (daemons and dir) and its S3 temp dirs. */
async function clearStaleS3() {
  for (const dir of await clearStaleRadosgw(RADOSGW_PREFIX)) progress(`cleared radosgw left by an earlier run in ${dir}`)
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(TEMP_PREFIX)) continue
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
// RSS: snapmount's peak memory while a 4 GiB image is read through a bounded cache

/**
 * One daemon, `--cache-size-mib RSS_CACHE_MIB`, on the 4 GiB image from nginx (through a proxy
 * with no delay, which counts what it fetched), read once from start to end with 1 MiB reads;
 * its VmHWM after the read and the 4 GiB slice check. A 4 GiB image rather than four names of the
 * 1 GiB one: one stream whose readahead window grows as far as it will, the case the bound is for.
 */
async function measureRss() {
  const image = await ensureImage(BIG_IMAGE_PATH, BIG_IMAGE_BYTES)
  await warmSource(BIG_IMAGE_PATH)
  const expectedSha = await sliceSha256(BIG_IMAGE_PATH, 'fullblock', BIG_SLICES)
  const nginx = await startNginx(BENCH_DIR, { prefix: NGINX_PREFIX })
  services.add(nginx)
  try {
    const proxy = await startProxy(nginx.port, 0)
    const url = `http://127.0.0.1:${proxy.port}/${basename(BIG_IMAGE_PATH)}`
    const mount = {
      key: 'rss',
      title: `snapmount --cache-size-mib ${RSS_CACHE_MIB}`,
      command: (mnt) => [join(ROOT, 'bin/snapmount'), 'mount', '--cache-size-mib', String(RSS_CACHE_MIB), mnt, `${NAME}=${url}`],
    }
    const r = await withDaemon(mount, async (file, daemon) => {
      const seq = await counted(proxy, () => fioSeq(file, { bytesEach: BIG_IMAGE_BYTES, seconds: 180 }))
      // The target is the peak during the read; the slice check after it is another workload
      // (16 random 1 MiB O_DIRECT reads), whose peak is reported beside it.
      const readPeakMiB = await peakRssMiB(daemon)
      return { seq, readPeakMiB, sliceOk: (await sliceSha256(file, 'direct', BIG_SLICES)) === expectedSha }
    }, { timeoutMs: 240_000 })
    await stopService(proxy)
    const result = {
      image: `${BIG_IMAGE_PATH} (${image})`,
      cacheMiB: RSS_CACHE_MIB,
      mbps: r.seq.mbps,
      bytesRead: r.seq.bytes,
      fetchPerByte: r.seq.traffic.amp,
      peakRssMiB: r.readPeakMiB,
      peakWithCheckMiB: r.peakRssMiB,
      sliceOk: r.sliceOk,
      exit: r.exit,
      ok: r.sliceOk && r.cleanExit && r.seq.bytes === BIG_IMAGE_BYTES,
    }
    progress(`rss: ${fmt(result.bytesRead / 2 ** 20)} MiB read at ${fmt(result.mbps)} MB/s, fetched x${fmtAmp(result.fetchPerByte)}; peak RSS ${fmt(result.peakRssMiB)} MiB (${fmt(result.peakWithCheckMiB)} after the slice check); slices ${okOr(result.sliceOk)}; exit ${result.exit}`)
    return result
  } finally {
    await stopService(nginx)
  }
}

// ---------------------------------------------------------------------------------------------
// Targets (issue 5), evaluated from this run's numbers

/**
 * Each target as PASS, FAIL or n/a (not measured in this run), with the numbers behind it.
 * Remote targets are evaluated at RTT_MS for HTTP and for S3 alike.
 */
function evaluateTargets(results) {
  const targets = []
  const add = (scope, target, value, limit, pass, detail) => targets.push({ scope, target, value, limit, pass, detail })
  for (const proto of ['http', 's3']) {
    const key = `${proto}-${RTT_MS}ms`
    const c = results.remote?.[key]
    const scope = `${proto === 'http' ? 'HTTP' : 'S3'} ${RTT_MS} ms`
    if (!c?.mounts.snapmount) {
      add(scope, 'remote targets', undefined, undefined, undefined, `part ${key} not run`)
      continue
    }
    const s = c.mounts.snapmount
    const peers = Object.entries(c.mounts).filter(([k]) => k !== 'snapmount')
    const best = peers.reduce((b, [k, m]) => (m.seq1.mbps > (b?.mbps ?? -1) ? { key: k, mbps: m.seq1.mbps } : b), undefined)
    if (best) add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, 1.5 * best.mbps, s.seq1.mbps >= 1.5 * best.mbps, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(best.mbps)} MB/s (${best.key})`)
    else add(scope, 'seq 1 reader >= 1.5x best peer', s.seq1.mbps, undefined, undefined, 'no peer measured')
    // The window a real 10 ms link gives one connection (PROXY_WINDOW_BYTES) is what bounds it.
    const rawNote = `; one stream through the proxy's ${PROXY_WINDOW_BYTES / 2 ** 20} MiB window (${fmt(c.raw.seqDirect)} MB/s without the proxy)`
    add(scope, 'seq 1 reader >= 1.5x one raw stream', s.seq1.mbps, 1.5 * c.raw.seq1, s.seq1.mbps >= 1.5 * c.raw.seq1, `${fmt(s.seq1.mbps)} vs 1.5 x ${fmt(c.raw.seq1)} MB/s${rawNote}`)
    const p50Limit = 1.3 * RTT_MS + 1
    add(scope, `rand 1 reader p50 <= 1.3 x RTT + 1 ms`, s.rand1.p50Ms, p50Limit, s.rand1.p50Ms <= p50Limit, `${fmtMs(s.rand1.p50Ms)} ms vs ${fmtMs(p50Limit)} ms (raw client p50 ${fmtMs(c.raw.rand1.p50Ms)} ms)`)
    // Judged on the ranges asked for (bodies), not the TCP bytes, which add ~0.3 KiB of response headers per GET.
    add(scope, 'rand 1 reader <= 128 KiB fetched per 4 KiB read', s.rand1.askedKibPerRead, 128, s.rand1.askedKibPerRead <= 128, `${fmtKib(s.rand1.askedKibPerRead)} KiB asked (${fmtKib(s.rand1.kibPerRead)} KiB received, headers included)`)
    const iopsLimit = (0.8 * 8 * 1000) / RTT_MS
    add(scope, 'rand 8 readers >= 80% of 8/RTT reads/s', s.rand8.iops, iopsLimit, s.rand8.iops >= iopsLimit, `${fmt(s.rand8.iops)} vs ${fmt(iopsLimit)} /s (raw 8 clients ${fmt(c.raw.rand8.iops)} /s)`)
    add(scope, 'seq fetch <= 1.1 bytes per byte read', s.seq1.fetchPerByte, 1.1, s.seq1.fetchPerByte <= 1.1, `${fmtAmp(s.seq1.fetchPerByte)} (1 reader), ${fmtAmp(s.seq4.fetchPerByte)} (${SEQ_READERS} readers, not judged)`)
    const src = results.sourceSeq
    add(scope, '2nd pass >= 0.5x source from page cache', s.warm.mbps, 0.5 * src, s.warm.mbps >= 0.5 * src, `${fmt(s.warm.mbps)} vs 0.5 x ${fmt(src)} MB/s; ${fmt(s.warm.fetched / 1e6)} MB fetched during it`)
  }
  if (results.rss) {
    const limit = RSS_CACHE_MIB + RSS_SLACK_MIB
    const r = results.rss
    add('4 GiB seq', `peak RSS <= cache bound + ${RSS_SLACK_MIB} MiB`, r.peakRssMiB, limit, r.peakRssMiB <= limit && r.bytesRead === BIG_IMAGE_BYTES, `${fmt(r.peakRssMiB)} vs ${RSS_CACHE_MIB} + ${RSS_SLACK_MIB} MiB (${fmt(r.bytesRead / 2 ** 20)} MiB read; ${fmt(r.peakWithCheckMiB)} after the slice check)`)
  } else add('4 GiB seq', `peak RSS <= cache bound + ${RSS_SLACK_MIB} MiB`, undefined, undefined, undefined, 'part rss not run')
  const local = results.local?.mounts
  if (local?.qemu) {
    for (const key of ['file', 'mmap']) {
      const m = local[key]
      add('local', `snapmount ${key} seq >= QEMU FUSE export`, m.seqCold, local.qemu.seqCold, m.seqCold >= local.qemu.seqCold, `${fmt(m.seqCold)} vs ${fmt(local.qemu.seqCold)} MB/s`)
    }
  } else add('local', 'snapmount seq >= QEMU FUSE export', undefined, undefined, undefined, local ? 'QEMU FUSE export not measured' : 'part local not run')
  return targets
}

// ---------------------------------------------------------------------------------------------
// Output

function progress(message) {
  process.stderr.write(`bench: ${message}\n`)
}

function fmt(value) {
  if (value === undefined || Number.isNaN(value)) return 'n/a'
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)
}

/** Latencies: two decimals below 10 ms, where the RTT target lives. */
function fmtMs(value) {
  if (value === undefined || Number.isNaN(value)) return 'n/a'
  return value >= 10 ? value.toFixed(1) : value.toFixed(2)
}

/** Bytes sent per byte read: three decimals, so the protocol's overhead shows. */
function fmtAmp(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value >= 100 ? fmt(value) : value.toFixed(value >= 10 ? 1 : 3)
}

/** KiB per read: one decimal up to 10 000, so 128.3 (a block plus its headers) is not shown as 128. */
function fmtKib(value) {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value >= 10_000 ? fmt(value) : value.toFixed(1)
}

function fmtCount(value) {
  return value === undefined ? 'n/a' : Math.round(value).toLocaleString('en-US')
}

function okOr(ok) {
  return ok === undefined ? 'n/a' : ok ? 'OK' : 'MISMATCH'
}

/** Columns padded to their widest cell; markdown pipes so it pastes into an issue as-is. */
function table(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  const line = (row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`
  return [line(rows[0]), line(widths.map((width) => '-'.repeat(width))), ...rows.slice(1).map(line)].join('\n')
}

function latency(r) {
  return r ? `${fmtMs(r.p50Ms)} / ${fmtMs(r.p99Ms)}` : 'n/a'
}

function localReport({ source, mounts }) {
  const keys = ['file', 'mmap', 'null', 'qemu'].filter((k) => mounts[k])
  const titles = { file: 'snapmount file', mmap: 'snapmount mmap', null: 'null backend', qemu: 'QEMU FUSE export' }
  const cols = keys.map((k) => mounts[k])
  const rows = [['measurement', ...keys.map((k) => titles[k]), 'source file directly']]
  const row = (label, cell, sourceCell) => rows.push([label, ...cols.map(cell), sourceCell])
  row('daemon start to "mounted" (ms)', (m) => fmt(m.mountMs), '-')
  row('seq MB/s, 1st read after mount (median of cold daemons)', (m) => `${fmt(m.seqCold)} (${(m.seqCold / source.seq).toFixed(2)}x)`, `${fmt(source.seq)} (page cache)`)
  row('seq MB/s, 2nd read, same mount', (m) => `${fmt(m.seqWarm)} (${(m.seqWarm / source.seq).toFixed(2)}x)`, fmt(source.seq))
  row('4K randread IOPS, 1 reader (mount O_DIRECT; source buffered)', (m) => fmt(m.rand1.iops), fmt(source.rand1.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand1), latency(source.rand1))
  row('4K randread IOPS, 8 readers', (m) => fmt(m.rand8.iops), fmt(source.rand8.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand8), latency(source.rand8))
  row('source 4K randread IOPS O_DIRECT, 1 / 8 readers', () => '-', source.rand1Direct ? `${fmt(source.rand1Direct.iops)} / ${fmt(source.rand8Direct.iops)}` : 'n/a')
  row('sha256 of the whole file (cached read / O_DIRECT read)', (m) => `${okOr(m.shaCached)} / ${okOr(m.shaDirect)}`, `${source.sha.slice(0, 12)}... (null: zeros)`)
  row('daemon peak RSS MiB (VmHWM)', (m) => fmt(m.peakRssMiB), '-')
  row('daemon exit status after SIGTERM', (m) => String(m.exit), '-')
  return table(rows)
}

const PEER_TITLES = { snapmount: 'snapmount', httpfs2: 'httpfs2', rclone: 'rclone mount', qemu: 'QEMU curl+FUSE', s3fs: 's3fs' }

function remoteReport(c, sourceSeq) {
  const keys = Object.keys(c.mounts)
  const cols = keys.map((k) => c.mounts[k])
  const rawTitle = c.proto === 'http' ? 'raw client (curl; undici for 4K)' : 'raw client (AWS SDK)'
  const rows = [['measurement', ...keys.map((k) => PEER_TITLES[k] ?? k), rawTitle]]
  const row = (label, cell, rawCell = '-') => rows.push([label, ...cols.map(cell), rawCell])
  const gib = (m) => (m.seq1.bytesRead < IMAGE_BYTES ? ` [${fmt(m.seq1.bytesRead / 2 ** 20)} MiB in ${SEQ_SECONDS} s]` : '')
  row('daemon start to "mounted" (ms), median of 4 daemons', (m) => fmt(m.mountMs))
  row('seq MB/s, 1 reader, cold (raw: 1 stream)', (m) => `${fmt(m.seq1.mbps)}${gib(m)}`, fmt(c.raw.seq1))
  row(`seq MB/s, ${SEQ_READERS} readers on own quarters, aggregate (raw: ${SEQ_READERS} streams)`, (m) => fmt(m.seq4.mbps), fmt(c.raw.seq4))
  row('  server bytes per byte read, 1 reader (GETs; connections)', (m) => `${fmtAmp(m.seq1.fetchPerByte)} (${fmtCount(m.seq1.gets)}; ${m.seq1.connections})`)
  row(`  server bytes per byte read, ${SEQ_READERS} readers`, (m) => fmtAmp(m.seq4.fetchPerByte))
  row('2nd pass over the 1-reader bytes, MB/s (x source from page cache)', (m) => `${fmt(m.warm.mbps)} (${(m.warm.mbps / sourceSeq).toFixed(2)}x)`, `source ${fmt(sourceSeq)}`)
  row('  MB fetched from the server during the 2nd pass', (m) => fmt(m.warm.fetched / 1e6))
  row('4K randread IOPS, 1 reader, O_DIRECT (raw: 1 client)', (m) => fmt(m.rand1.iops), fmt(c.raw.rand1.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand1), latency(c.raw.rand1))
  row('  KiB received per 4 KiB read (KiB asked in Range; GETs per read)', (m) => `${fmtKib(m.rand1.kibPerRead)} (${fmtKib(m.rand1.askedKibPerRead)}; ${m.rand1.getsPerRead.toFixed(2)})`)
  row('4K randread IOPS, 8 readers (raw: 8 clients)', (m) => fmt(m.rand8.iops), fmt(c.raw.rand8.iops))
  row('  p50 / p99 ms', (m) => latency(m.rand8), latency(c.raw.rand8))
  row('  KiB received per 4 KiB read (KiB asked in Range)', (m) => `${fmtKib(m.rand8.kibPerRead)} (${fmtKib(m.rand8.askedKibPerRead)})`)
  row('daemon peak RSS MiB (max VmHWM of its 4 daemons)', (m) => fmt(m.peakRssMiB))
  row('bytes check: sha256 of O_DIRECT slices on each daemon', (m) => okOr(m.slicesOk))
  row('daemon exit status after SIGTERM', (m) => [...new Set(m.exits.map(String))].join(', '))
  return table(rows)
}

function targetsReport(targets) {
  const rows = [['scope', 'target', 'result', 'numbers']]
  for (const t of targets) rows.push([t.scope, t.target, t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : 'FAIL', t.detail])
  return table(rows)
}

// ---------------------------------------------------------------------------------------------
// Main

/** The parts in the order they run; `npm run bench -- http-10ms rss` runs only those named. */
const PARTS = ['local', 'http-0ms', 'http-10ms', 's3-0ms', 's3-10ms', 'rss']
const ALIASES = { http: ['http-0ms', 'http-10ms'], s3: ['s3-0ms', 's3-10ms'] }

function parseArgs(argv) {
  const flags = argv.filter((a) => a.startsWith('--'))
  for (const flag of flags) if (flag !== '--no-peers') throw new Error(`unknown flag ${flag}: the only flag is --no-peers`)
  const named = argv.filter((a) => !a.startsWith('--')).flatMap((a) => ALIASES[a] ?? [a])
  for (const part of named) if (!PARTS.includes(part)) throw new Error(`unknown part ${part}: the parts are ${[...PARTS, ...Object.keys(ALIASES)].join(', ')}`)
  return { parts: named.length ? PARTS.filter((p) => named.includes(p)) : PARTS, peers: !flags.includes('--no-peers') }
}

async function main() {
  const began = Date.now()
  const startedAt = new Date().toISOString()
  const args = parseArgs(process.argv.slice(2))
  const runs = (prefix) => args.parts.some((p) => p.startsWith(prefix))
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
  const image = await ensureImage(IMAGE_PATH, IMAGE_BYTES)
  // A peer not needed by the parts run has no note and is not mentioned.
  const peer = async (needed, ...how) => (!needed ? {} : args.peers ? await ensurePeer(...how) : { note: `${how[0]} not run: --no-peers` })
  const peers = {
    httpfs2: await peer(runs('http'), 'httpfs2'),
    rclone: await peer(runs('http') || runs('s3'), 'rclone'),
    s3fs: await peer(runs('s3'), 's3fs'),
    // qemu-storage-daemon is in qemu-system-common; its curl driver is a module in qemu-block-extra.
    qemu: await peer(runs('http') || runs('local'), 'qemu-storage-daemon', ['qemu-system-common', 'qemu-block-extra'], [QEMU_CURL_MODULE]),
  }
  peers.qemuCurl = await access(QEMU_CURL_MODULE).then(() => true, () => false)
  const fioVersion = (await run('fio', ['--version'])).stdout.trim()
  const host = `node ${process.version}, linux ${release()}, ${cpus().length} CPUs, ${fioVersion}`
  progress(`image ${IMAGE_PATH} (${image}); ${host}; parts ${args.parts.join(', ')}${QUICK ? ' (QUICK: shortened runs)' : ''}`)
  for (const [name, peer] of Object.entries(peers)) if (peer.note) progress(`${name}: ${peer.note}`)

  const results = { schema: 1, startedAt, quick: QUICK, parts: args.parts, host, settings: { fioSeconds: FIO_SECONDS, seqSeconds: SEQ_SECONDS, rawRateSeconds: RAW_RATE_SECONDS, rttMs: RTT_MS, rssCacheMiB: RSS_CACHE_MIB }, peers: Object.fromEntries(Object.entries(peers).filter(([, p]) => p?.note).map(([k, p]) => [k, p.note])) }
  let ok = true
  const out = (text) => process.stdout.write(text)
  try {
    results.sourceSeq = await sourceSeq()
    if (runs('local')) {
      const began = Date.now()
      results.local = await measureLocal(peers.qemu)
      ok &&= ['file', 'mmap', 'null'].every((k) => results.local.mounts[k].ok)
      out(`\nLocal: the 1 GiB image as a local file (page-cached), ${SEQ_DAEMONS} cold daemons per mount for the sequential rows, ${FIO_SECONDS} s of fio per IOPS figure; part ${((Date.now() - began) / 1000).toFixed(0)} s\n`)
      out(`QEMU FUSE export: ${peers.qemu.note}; qemu-storage-daemon --blockdev driver=file,read-only=on --export type=fuse,writable=off\n\n`)
      out(`${localReport(results.local)}\n`)
    }
    results.remote = {}
    if (runs('http')) Object.assign(results.remote, await measureHttp(peers, args.parts))
    if (runs('s3')) Object.assign(results.remote, await measureS3(peers, args.parts))
    for (const c of Object.values(results.remote)) {
      ok &&= c.mounts.snapmount.ok
      out(`\n${c.title}: ${c.proto === 'http' ? `nginx ${await nginxVersion()}` : 'Ceph radosgw'} on 127.0.0.1 through tools/delay-proxy.mjs (${c.rttMs / 2} ms each way, counting bytes); part ${c.seconds.toFixed(0)} s, load ${c.loadBefore.toFixed(2)} -> ${c.loadAfter.toFixed(2)}\n`)
      out(`proxy check: 1 raw stream straight to the server ${fmt(c.raw.seqDirect)} MB/s; through the proxy 1 / ${SEQ_READERS} / 8 streams ${fmt(c.raw.seq1)} / ${fmt(c.raw.seq4)} / ${fmt(c.raw.seq8)} MB/s (a mount near the last figure is held by the proxy)\n`)
      for (const note of c.notes) out(`${note}\n`)
      out(`\n${remoteReport(c, results.sourceSeq)}\n`)
    }
    if (Object.values(results.remote).some((c) => c.mounts.rclone)) out(`\nrclone mount: --read-only, otherwise defaults: ${RCLONE_SETTINGS}\n`)
    const peerNotes = Object.entries(results.peers).map(([k, note]) => `${k}: ${note}`)
    if (peerNotes.length) out(`peers: ${peerNotes.join('; ')}\n`)
    if (runs('rss')) {
      results.rss = await measureRss()
      ok &&= results.rss.ok
      const r = results.rss
      out(`\nRSS: snapmount --cache-size-mib ${RSS_CACHE_MIB} reading the 4 GiB image from nginx (0 ms) once, sequentially: ${fmt(r.bytesRead / 2 ** 20)} MiB at ${fmt(r.mbps)} MB/s, `)
      out(`server bytes per byte read ${fmtAmp(r.fetchPerByte)}; peak RSS ${fmt(r.peakRssMiB)} MiB during the read, ${fmt(r.peakWithCheckMiB)} MiB after the O_DIRECT slice check; slices ${okOr(r.sliceOk)}; exit ${r.exit}\n`)
    }
    results.targets = evaluateTargets(results)
    out(`\nTargets (issue 5; RTT = ${RTT_MS} ms, configured; n/a = not measured in this run)\n\n${targetsReport(results.targets)}\n`)
    results.seconds = (Date.now() - began) / 1000
    results.load = { before: loadBefore, after: loadavg()[0] }
    results.ok = ok
    const file = await writeResults(results)
    out(`\n${host}; 1-min load average ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after. MB/s = 10^6 bytes/s.\n`)
    out(`results: ${file}; total ${results.seconds.toFixed(0)} s; ${ok ? 'all checks passed' : 'FAILED: see MISMATCH or exit status above'}\n`)
  } finally {
    await cleanupAll()
  }
  return ok ? 0 : 1
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

async function nginxVersion() {
  // nginx prints its version on stderr: "nginx version: nginx/1.22.1".
  const { stderr } = await run(NGINX, ['-v'])
  return /nginx\/(\S+)/.exec(stderr)?.[1] ?? ''
}

process.exitCode = await main().catch(async (err) => {
  await cleanupAll()
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`)
  return 1
})

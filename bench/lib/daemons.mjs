// Daemons and their mounts: start one and time it until it is mounted, run work against it, stop
// it and leave nothing mounted; and clear what a killed earlier run left behind.
//
// A mount (what startDaemon takes) describes one way to serve the image:
//   key, title         its name in the JSON and in the tables
//   command(path)      [program, ...args] serving the image at `path` (may be async)
//   env                the daemon's environment (default: the bench's, without proxy variables)
//   file               the image's name inside the mount (default NAME)
//   fileMount          the daemon mounts on a regular file (QEMU's FUSE export), created empty first
//   listedWhenMounted  the daemon does not log "mounted": it is mounted once mountinfo lists it
//   sigtermExit        its clean exit status after SIGTERM (default 0; rclone's is 143)

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { progress } from './progress.mjs'
import { DAEMON_TIMEOUT_MS, NAME, WORK_TIMEOUT_MS } from './settings.mjs'
import { median } from './stats.mjs'

/** How often mountinfo is read while waiting for a peer that does not say "mounted". */
const MOUNT_POLL_MS = 10
/** The start table's finer grain: its peers mount in 15-100 ms. */
const START_POLL_MS = 2

/**
 * Spawns a daemon and resolves once it logs "mounted" (or, for a peer that does not say, once its
 * mount is listed in mountinfo); rejects if it exits or hangs first. The daemon is registered with
 * `procs` until stopDaemon has unmounted it.
 */
export async function startDaemon({ procs, settings }, mount, { pollMs = MOUNT_POLL_MS } = {}) {
  procs.refuseIfStopping(mount.title)
  const mnt = await mkdtemp(join(settings.benchDir, `mnt-${mount.key}-`))
  const mountPath = mount.fileMount ? join(mnt, NAME) : mnt
  if (mount.fileMount) await writeFile(mountPath, '')
  const [command, ...args] = await mount.command(mountPath)
  const started = process.hrtime.bigint()
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: mount.env ?? procs.env })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const daemon = { mnt, mountPath, fileMount: mount.fileMount, child, exited, log: '', stopped: undefined }
  daemon.stop = () => stopDaemon(procs, daemon)
  procs.daemonStarted(daemon)
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
    if (mount.listedWhenMounted) poll = setInterval(() => mountedPaths().then((paths) => paths.includes(mountPath) && mounted(), reject), pollMs)
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
 * `mount` with its daemon started inside `netns` (tools/delay-netns.mjs: nsenter execs it in
 * place, same pid, and its mount is still the host's); `mount` itself without a namespace.
 */
export function inNetns(mount, netns) {
  if (!netns) return mount
  return {
    ...mount,
    command: async (path) => {
      const [command, ...args] = await mount.command(path)
      const [wrapped, wrappedArgs] = netns.wrap(command, args)
      return [wrapped, ...wrappedArgs]
    },
  }
}

/** The daemon's peak resident set (VmHWM) in MiB, from /proc; undefined once it is gone. */
export async function peakRssMiB(daemon) {
  const status = await readFile(`/proc/${daemon.child.pid}/status`, 'utf8').catch(() => '')
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1]
  return kib === undefined ? undefined : Number(kib) / 1024
}

/**
 * SIGTERM, then waits for the daemon to unmount and exit; resolves to its exit status. Whatever
 * happens, the mountpoint ends unmounted (fusermount -uz if the daemon left it) and removed.
 * Idempotent: the main path and the SIGINT cleanup may both call it.
 */
function stopDaemon(procs, daemon) {
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
    await unmountIfMounted(procs, daemon.mountPath)
    if (daemon.fileMount) await rm(daemon.mountPath, { force: true }).catch(() => {})
    await rmdir(daemon.mnt).catch(() => {})
    procs.daemonStopped(daemon)
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

async function unmountIfMounted(procs, mnt) {
  if ((await mountedPaths()).includes(mnt)) await procs.run('fusermount', ['-u', '-z', mnt], { cleanup: true })
}

/**
 * Runs `work(file, daemon)` against a fresh daemon, always stopping it; adds start time, exit
 * status and the daemon's peak RSS (VmHWM, read just before SIGTERM).
 */
export async function withDaemon(ctx, mount, work, { timeoutMs = WORK_TIMEOUT_MS } = {}) {
  const daemon = await startDaemon(ctx, mount)
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
    const { code, signal } = await daemon.stop()
    // rclone answers SIGTERM by unmounting and exiting 143 (128 + SIGTERM): its clean exit.
    if ((signal ?? code) !== (mount.sigtermExit ?? 0)) progress(`${mount.title}: daemon exited ${signal ?? code} after SIGTERM:\n${daemon.log}`)
    if (result) result.exit = signal ?? code
  }
  return { ...result, mountMs: daemon.mountMs, peakRssMiB: peak, cleanExit: result.exit === (mount.sigtermExit ?? 0) }
}

/**
 * The start table's numbers: each mount started `settings.startRuns` times on a fresh daemon and
 * stopped at once, nothing read, one after the other: spawn to "mounted" (to listed in mountinfo
 * for a peer, polled every START_POLL_MS) in ms, each run's and the median, and whether every
 * daemon exited cleanly. A mount that fails is noted in `notes` and left out if `optional(mount)`
 * (a peer), else it fails the bench.
 */
export async function measureStarts(ctx, mounts, notes, optional) {
  const results = {}
  for (const mount of mounts) {
    const ms = []
    const exits = []
    try {
      for (let i = 0; i < ctx.settings.startRuns; i++) {
        const daemon = await startDaemon(ctx, mount, { pollMs: START_POLL_MS })
        ms.push(daemon.mountMs)
        const { code, signal } = await daemon.stop()
        exits.push(signal ?? code)
      }
    } catch (err) {
      if (!optional(mount) || ctx.procs.stopping) throw err
      notes.push(`${mount.title}: start not measured: ${err.message.split('\n')[0]}`)
      progress(notes.at(-1))
      continue
    }
    results[mount.key] = { title: mount.title, ms, medianMs: median(ms), exits, cleanExit: exits.every((exit) => exit === (mount.sigtermExit ?? 0)) }
    progress(`${mount.title}: start to mounted ${ms.map((t) => t.toFixed(1)).join(', ')} ms; exits ${[...new Set(exits)].join(', ')}`)
  }
  return results
}

/**
 * Stops what a killed earlier run left running: a daemon (snapmount, httpfs2, s3fs, rclone) keeps
 * serving after its mount is detached (snapmount does not notice), and dd or fio may still be
 * reading. Each names one of `marks` (a mountpoint under the bench's dir, a file in an S3 temp
 * dir) on its command line. SIGTERM first (a daemon still mounted unmounts), SIGKILL for whatever
 * is left after 5 s.
 */
export async function clearStaleProcesses(marks) {
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
 * Clears mounts a killed earlier run left under `benchDir`, and their mountpoints (empty
 * directories: rmdir removes nothing else).
 */
export async function clearStaleMounts(procs, benchDir) {
  for (const path of await mountedPaths()) {
    if (!path.startsWith(join(benchDir, 'mnt-'))) continue
    process.stderr.write(`bench: clearing stale mount ${path}\n`)
    await procs.run('fusermount', ['-u', '-z', path])
  }
  for (const name of await readdir(benchDir).catch(() => [])) {
    if (!name.startsWith('mnt-')) continue
    // A QEMU export's mountpoint is an empty file in its directory.
    await rm(join(benchDir, name, NAME), { force: true }).catch(() => {})
    await rmdir(join(benchDir, name)).catch(() => {})
  }
}

import type { Config, SnapshotSpec } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import type { SnapshotContext } from '../snapshots/open-snapshot.js'
import { InputError } from '../errors.js'
import type { Logger } from '../log.js'
import { SnapshotFs, type KeptSnapshot, type PendingSnapshot, type Snapshot } from '../fuse/snapshot-fs.js'
import { mountFuse } from '../fuse/fuse-mount.js'
import { mountedType, prepareMountpoint } from '../fuse/mountpoint.js'
import { accessInWords, checkAllowOther, checkFuseDevice, needsAllowOther, resolveOwnership, type Ownership } from '../fuse/access.js'
import { closeSnapshots, openForServing } from './open-snapshots.js'
import { notifyReady, notifyStatus } from './sd-notify.js'
import { formatSize } from './format.js'
import { observability } from './observability.js'
import { BlockCache } from '../cache/block-cache.js'
import { openDiskCache } from './disk-cache.js'
import { KERNEL_READAHEAD_KIB, setKernelReadahead } from '../fuse/kernel-readahead.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const
/**
 * How long a stop waits for a reload under way before abandoning it. A reload is of no use once
 * the daemon stops; it is waited for only so that one about to finish does so (and logs what it
 * did) instead of being cut off. A healthy one takes a round trip or two per changed remote
 * snapshot, well under this; a hung one (a source that never answers) is abandoned after it,
 * while the reads in flight settle alongside, so a stop stays within the reads' own bound
 * (read_timeout_ms, 14 s at most) and the unit's TimeoutStopSec=30s.
 */
const RELOAD_STOP_WAIT_MS = 2000
/**
 * fuse-native says nothing when the kernel drops the mount (`fusermount -u` by hand, `umount`), so
 * the daemon looks at /proc/self/mountinfo this often and exits when its mount is gone, as
 * mountpoint-s3 does, instead of serving nothing until a signal comes. The read costs microseconds.
 */
const MOUNT_WATCH_MS = 2000

/** Re-reads the config for a reload (SIGHUP): the same file and command-line flags as at start. */
export type Reloader = () => Promise<Config>

/**
 * Serves `config` until SIGINT or SIGTERM, then unmounts and resolves; also resolves once the
 * mount has been removed from outside. Input problems (mountpoint, sources, access) reject
 * before anything is mounted. SIGHUP re-reads the config through `reload` and applies what can
 * change without a remount.
 *
 * Stopping: opens are refused (EBUSY) from the signal on, the reads in flight then finish (each
 * within read_timeout_ms), and the mount is unmounted; if files on it are still open it is
 * detached lazily, with a log line naming the snapshots held, rather than waiting for them.
 */
export async function runMount(config: Config, processContext: OpenContext, reload: Reloader): Promise<void> {
  // From the first moment: a SIGHUP while the sources open and the mount comes up must not meet
  // Node's default handler, which ends the process (after the mount, leaving a dead one).
  const earlyReloads = holdEarlyReloads(processContext.logger)
  // And a SIGINT or SIGTERM then must not end it without a word.
  const earlyStops = holdEarlyStops(processContext.logger)
  // Metering for `snapmount status`, metrics, the control socket: src/cli/observability.ts.
  const observed = await observability(config, processContext)
  // One block cache for every remote snapshot, under one bound (src/cache/).
  const cache = new BlockCache({ capacityBytes: config.options.cacheBytes, blockBytes: config.options.blockBytes })
  // Told of each SIGHUP: what backends read from files besides their sources (header tokens).
  const reloaded = new Set<() => void>()
  const onReload = (listener: () => void) => (reloaded.add(listener), () => void reloaded.delete(listener))
  // Before anything is mounted: another daemon on the same cache_dir is an input error (exit 2).
  const diskCache = await openDiskCache(config.options, processContext.logger)
  const closeDiskCache = diskCache ? () => diskCache.close() : async () => {}
  // A local source's open is bounded like a read (open-source.ts).
  const context: SnapshotContext = { ...processContext, ...observed.hooks, cache, diskCache, onReload, openTimeoutMs: config.options.readTimeoutMs }
  const { logger } = context
  const ids = await resolveIds(config)
  // Optional in Node's types for Windows' sake; snapmount runs where FUSE does, which has them.
  const daemonUid = process.getuid!()
  const allowOther = config.options.allowOther ?? needsAllowOther(ids, daemonUid)
  await checkAllowOther(allowOther, daemonUid)
  await prepareMountpoint(config.mountpoint, logger)
  const snapshots = await openForServing(config.snapshots, context).catch(async (err: unknown) => {
    await closeDiskCache()
    throw err
  })
  const fs = new SnapshotFs(snapshots, { ...ids, readTimeoutMs: config.options.readTimeoutMs, mountedAt: new Date() })
  const signals = listenForStop(logger)
  // After listenForStop, not before: a signal in an instant with no listener would meet Node's default.
  earlyStops.handOver()
  let mount
  try {
    // Last, so a problem with the config or a source is reported first.
    await checkFuseDevice(process.getuid!())
    mount = await mountFuse(config.mountpoint, fs, { allowOther }, logger)
  } catch (err) {
    await fs.close()
    await closeDiskCache()
    throw err
  }
  await setKernelReadahead(config.mountpoint, KERNEL_READAHEAD_KIB, logger)
  const served = config.snapshots.map((spec, index) => describeSnapshot(spec, snapshots[index]!))
  await observed.serve(fs, cache, diskCache)
  logger.info(`mounted ${config.mountpoint} read-only: ${served.join(', ')}; each ${accessInWords({ ...config.options, allowOther }, ids, daemonUid)}`)
  const reloads = watchReloads(fs, config, allowOther, reload, context, () => reloaded.forEach((listener) => listener()), earlyReloads)
  await notifyReady(context.env, serving(snapshots.length, config.mountpoint), logger)

  const watch = watchMount(config.mountpoint)
  const reason = await signals.stopOn(watch.promise)
  watch.cancel()
  fs.stopOpening()
  logger.info(`${reason}: refusing new opens (EBUSY), finishing the reads in flight`)
  void signals.hurried.then(() => fs.abortReads())
  await Promise.all([reloads.stop(reason, signals.hurried), fs.settleReads()])
  if (await mountedType(config.mountpoint)) {
    logger.info(`${reason}: unmounting ${config.mountpoint}`)
    const refusal = await mount.unmount()
    if (refusal !== undefined) {
      const held = fs.heldOpen().map(({ name, handles }) => `${name}: ${handles} open`)
      const what = held.length > 0 ? `still open: ${held.join(', ')}` : 'no snapshot is open; a process may have its working directory there'
      logger.warn(`${config.mountpoint} was busy (${refusal}); ${what}; detached it lazily, and reads on those files now fail`)
    }
  } else {
    logger.warn(`${reason}: ${config.mountpoint} was already unmounted`)
  }
  await observed.close()
  await fs.close()
  // After the snapshots: their last blocks are written and indexed, and the directory unlocked.
  await closeDiskCache()
  logger.info('unmounted')
}

/** The owner and umask the files show: ids resolved from names now, at start or reload. */
function resolveIds({ options }: Config): Promise<Ownership> {
  return resolveOwnership(options, { uid: process.getuid!(), gid: process.getgid!() })
}

function describeSnapshot({ name, type }: SnapshotSpec, snapshot: Snapshot | PendingSnapshot): string {
  return 'backend' in snapshot ? `${name} (${type}, ${formatSize(snapshot.backend.length)})` : `${name} (${type}, waiting for its source)`
}

/** A wait that can be given up. */
interface Wait<T> {
  promise: Promise<T>
  cancel(): void
}

/** The daemon's stop signals: what starts the stop, and whether a later one asked to hurry. */
interface StopSignals {
  /** Resolves with the first SIGINT or SIGTERM, or with `other`'s reason if that comes first. */
  stopOn(other: Promise<string>): Promise<string>
  /** Resolves at a signal once the stop has begun: it hurries (reads in flight fail now, a reload is abandoned). */
  readonly hurried: Promise<void>
}

/**
 * Listens for SIGINT and SIGTERM from now until the process exits (never removed: Node's default
 * for a signal nobody listens for is to die at once, which would leave a dead mount, "Transport
 * endpoint is not connected", and a stale control socket). The first starts the stop; one during
 * the stop (a double Ctrl-C, an impatient supervisor) hurries it; any after that is logged and
 * changes nothing more: the stop is already as quick as a clean unmount can be.
 */
function listenForStop(logger: Logger): StopSignals {
  let resolveWith!: (signal: string) => void
  const first = new Promise<string>((resolve) => (resolveWith = resolve))
  let hurry!: () => void
  const hurried = new Promise<void>((resolve) => (hurry = resolve))
  let stopping = false
  let hurrying = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true
      return resolveWith(signal)
    }
    if (!hurrying) {
      hurrying = true
      logger.warn(`${signal} while stopping: hurrying: reads in flight fail now (EIO), a reload under way is abandoned, a busy mount is detached lazily`)
      return hurry()
    }
    logger.warn(`${signal} while stopping: already hurrying; the mount goes as soon as it is unmounted`)
  }
  for (const name of STOP_SIGNALS) process.on(name, onSignal)
  return {
    async stopOn(other) {
      const reason = await Promise.race([first, other])
      stopping = true
      return reason
    },
    hurried,
  }
}

/** Resolves once nothing is mounted at `mountpoint` any more. */
function watchMount(mountpoint: string): Wait<string> {
  let timer: NodeJS.Timeout | undefined
  const promise = new Promise<string>((resolve) => {
    timer = setInterval(async () => {
      if (!(await mountedType(mountpoint))) resolve('mount removed from outside')
    }, MOUNT_WATCH_MS)
  })
  return { promise, cancel: () => clearInterval(timer) }
}

/** SIGINT and SIGTERM before `listenForStop` takes over. */
interface EarlyStops {
  /** Stops listening; `listenForStop` must be listening already. */
  handOver(): void
}

/**
 * Listens for SIGINT and SIGTERM until `listenForStop` takes over: one that comes while the
 * sources open is logged, then ends the process by that signal, as Node's default would have
 * done without a word. Nothing is mounted yet, so there is nothing to unmount; and not
 * process.exit(): it can hang behind an open stuck on libuv's pool (open-source.ts).
 * Dying by the signal also keeps the exit status a stop always had, for systemd and shells.
 */
function holdEarlyStops(logger: Logger): EarlyStops {
  const stopListening = () => {
    for (const name of STOP_SIGNALS) process.off(name, listener)
  }
  const listener = (signal: NodeJS.Signals) => {
    logger.info(`${signal} while starting: nothing is mounted yet; stopping`)
    stopListening()
    process.kill(process.pid, signal)
  }
  for (const name of STOP_SIGNALS) process.on(name, listener)
  return { handOver: stopListening }
}

/** SIGHUPs received before the reloads are watched. */
interface EarlyReloads {
  /** Stops listening; true if a SIGHUP came meanwhile. */
  handOver(): boolean
}

/**
 * Listens for SIGHUP until `watchReloads` takes over: one that comes while the sources open or
 * the mount comes up is logged and remembered, and applied once serving, instead of ending the
 * process. If the start fails, the listener stays and the process exits anyway.
 */
function holdEarlyReloads(logger: Logger): EarlyReloads {
  let received = false
  const listener = () => {
    if (!received) logger.info('SIGHUP while starting: the config is read again once mounted')
    received = true
  }
  process.on('SIGHUP', listener)
  return {
    handOver() {
      process.off('SIGHUP', listener)
      return received
    },
  }
}

/**
 * Applies a reload on each SIGHUP, one at a time, after telling `notify` (the `onReload`
 * listeners: header token files are read again whatever the config says). `stop()` waits for a
 * reload under way, at most RELOAD_STOP_WAIT_MS or until `hurried`, then abandons it: it changes
 * nothing from then on and closes what it opens as that arrives, so shutdown never closes
 * backends a reload is handing over and never waits on a source that does not answer. A SIGHUP
 * after `stop()` is ignored with a log line (still listened for: Node's default would end the
 * process mid-unmount).
 */
function watchReloads(fs: SnapshotFs, started: Config, allowOther: boolean, reload: Reloader, context: SnapshotContext, notify: () => void, early: EarlyReloads): { stop(reason: string, hurried: Promise<void>): Promise<void> } {
  const { logger } = context
  let current = started
  let queue = Promise.resolve()
  let underWay = 0
  let stopping = false
  const abandon = new AbortController()
  const onSighup = () => {
    if (stopping) return logger.warn('SIGHUP ignored: stopping')
    notify()
    underWay++
    queue = queue.then(async () => {
      current = await applyReload(fs, current, allowOther, reload, context, abandon.signal)
      underWay--
    })
  }
  process.on('SIGHUP', onSighup)
  // Ours from here on; one that came while starting is applied now (the config read at start may
  // be older than the SIGHUP).
  if (early.handOver()) onSighup()
  return {
    async stop(reason, hurried) {
      stopping = true
      if (underWay === 0) return
      logger.info(`${reason}: a reload is under way; waiting for it at most ${RELOAD_STOP_WAIT_MS} ms`)
      let timer: NodeJS.Timeout | undefined
      const waited = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`did not finish within ${RELOAD_STOP_WAIT_MS} ms`), RELOAD_STOP_WAIT_MS)
      })
      const outcome = await Promise.race([queue.then(() => undefined), waited, hurried.then(() => 'is not waited for in a hurry')])
      clearTimeout(timer)
      if (outcome === undefined) return
      abandon.abort()
      logger.warn(`${reason}: the reload under way ${outcome}: abandoned; what it opens is closed as it arrives`)
    },
  }
}

/**
 * Re-reads the config and applies it: snapshots added, removed or changed (same name, another
 * spec, or a local source that changed since it was opened) are swapped in for new opens,
 * unchanged ones stay as they are; the owner, umask and read
 * deadline change at once. Mount options (mountpoint, allow_other) cannot change without a
 * remount: they are logged and kept. If anything fails (the config, an id, a source that is not
 * lazy) nothing changes. Resolves with the config now in force.
 */
async function applyReload(fs: SnapshotFs, current: Config, allowOther: boolean, reload: Reloader, context: SnapshotContext, abandoned: AbortSignal): Promise<Config> {
  const { logger } = context
  let next: Config
  let ids: Awaited<ReturnType<typeof resolveIds>>
  try {
    next = await reload()
    ids = await resolveIds(next)
  } catch (err) {
    logger.error(`SIGHUP: reload refused, nothing changed: ${explain(err)}`)
    return current
  }
  const keeps = new Map(current.snapshots.map((spec) => [spec.name, spec]))
  // A local source that changed since it was opened fails its reads: a reload opens it again.
  const stale = new Set(fs.snapshots().filter(({ backend }) => backend.inspect?.().sourceChanged !== undefined).map(({ name }) => name))
  const changed = next.snapshots.filter((spec) => !sameSpec(keeps.get(spec.name), spec) || stale.has(spec.name))
  let opened: Array<Snapshot | PendingSnapshot>
  try {
    opened = await openForServing(changed, { ...context, openTimeoutMs: next.options.readTimeoutMs })
  } catch (err) {
    logger.error(`SIGHUP: reload refused, nothing changed: ${explain(err)}`)
    return current
  }
  if (abandoned.aborted) {
    // The stop gave up on this reload: nothing of it is served, and the fs may be closed by now.
    await closeSnapshots(opened)
    logger.info(`SIGHUP: the abandoned reload finished after all; closed the ${opened.length} snapshot(s) it opened`)
    return current
  }
  const fresh = new Map(opened.map((snapshot) => [snapshot.name, snapshot]))
  fs.update(next.snapshots.map(({ name }): Snapshot | PendingSnapshot | KeptSnapshot => fresh.get(name) ?? { keep: name }))
  fs.setOptions({ ...ids, readTimeoutMs: next.options.readTimeoutMs })

  const nextNames = new Set(next.snapshots.map(({ name }) => name))
  const added = changed.filter(({ name }) => !keeps.has(name)).map(({ name }) => name)
  const replaced = changed.filter(({ name }) => keeps.has(name)).map(({ name }) => name)
  const removed = current.snapshots.filter(({ name }) => !nextNames.has(name)).map(({ name }) => name)
  const unchanged = next.snapshots.length - changed.length
  const stillRead = fs.heldOpen().filter(({ retired, name }) => retired && replaced.includes(name))
  for (const { name, handles } of stillRead) {
    logger.warn(
      `${name}: replaced while ${handles} handle(s) of the earlier version are open; they keep reading it, but the kernel keeps one page cache per name, so readers without O_DIRECT can see pages of both: close them, or serve a new version under a new name`,
    )
  }
  const applied = keepMountOptions(current, next, logger)
  const list = (names: string[]) => (names.length > 0 ? names.join(', ') : 'none')
  const daemonUid = process.getuid!()
  if (!allowOther && needsAllowOther(ids, daemonUid)) {
    logger.warn(`SIGHUP: the new uid, gid or umask let users other than uid ${daemonUid} in, but allow_other has been off since the start: that needs a restart (systemctl restart)`)
  }
  logger.info(`SIGHUP: each snapshot ${accessInWords({ ...next.options, allowOther }, ids, daemonUid)}`)
  logger.info(`SIGHUP: reloaded: added ${list(added)}; removed ${list(removed)}; replaced ${list(replaced)}; ${unchanged} unchanged`)
  await notifyStatus(context.env, serving(next.snapshots.length, applied.mountpoint), logger)
  return applied
}

/** The status line systemd shows for the service. */
function serving(count: number, mountpoint: string): string {
  return `serving ${count} snapshot(s) at ${mountpoint}`
}

/** The reloaded config, with the options only a remount could change put back as they are. */
function keepMountOptions(current: Config, next: Config, logger: Logger): Config {
  const KiB = 1024
  const fixed = [
    ['mountpoint', current.mountpoint, next.mountpoint],
    ['allow_other', current.options.allowOther ?? 'automatic', next.options.allowOther ?? 'automatic'],
    // The one block cache is made at start, for every snapshot: its bound and block size stay.
    ['cache_size_mib', current.options.cacheBytes / KiB / KiB, next.options.cacheBytes / KiB / KiB],
    ['cache_block_kib', current.options.blockBytes / KiB, next.options.blockBytes / KiB],
    // So is the disk cache, locked for this daemon.
    ['cache_dir', current.options.cacheDir, next.options.cacheDir],
    ['disk_cache_size_gib', current.options.diskCacheBytes / KiB ** 3, next.options.diskCacheBytes / KiB ** 3],
  ] as const
  for (const [field, was, now] of fixed) {
    if (was !== now) logger.warn(`SIGHUP: ${field} changed from ${was} to ${now}: that needs a restart (systemctl restart); still ${was}`)
  }
  const { allowOther, cacheBytes, blockBytes, cacheDir, diskCacheBytes } = current.options
  return { ...next, mountpoint: current.mountpoint, options: { ...next.options, allowOther, cacheBytes, blockBytes, cacheDir, diskCacheBytes } }
}

function sameSpec(a: SnapshotSpec | undefined, b: SnapshotSpec): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b)
}

function explain(err: unknown): string {
  // Config, id and source-open failures are all InputErrors; anything else would be a bug, and
  // no test can make one.
  /* c8 ignore next */
  return err instanceof InputError ? `${err.message}; ${err.fix}` : (err as Error).message
}

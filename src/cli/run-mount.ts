import type { Config } from '../config/config.js'
import type { OpenContext } from '../backend/open-backend.js'
import { SnapshotFs } from '../fuse/snapshot-fs.js'
import { mountFuse } from '../fuse/fuse-mount.js'
import { mountedType, prepareMountpoint } from '../fuse/mountpoint.js'
import { openSnapshots } from './open-snapshots.js'
import { formatSize } from './format.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const
/**
 * fuse-native says nothing when the kernel drops the mount (`fusermount -u` by hand, `umount`), so
 * the daemon looks at /proc/self/mountinfo this often and exits when its mount is gone, as
 * mountpoint-s3 does, instead of serving nothing until a signal comes. The read costs microseconds.
 */
const MOUNT_WATCH_MS = 2000

/**
 * Serves `config` until SIGINT or SIGTERM, then unmounts and resolves; also resolves once the
 * mount has been removed from outside. Input problems (mountpoint,
 * sources) reject before anything is mounted.
 */
export async function runMount(config: Config, context: OpenContext): Promise<void> {
  const { logger } = context
  await prepareMountpoint(config.mountpoint, logger)
  const snapshots = await openSnapshots(config.snapshots, context)
  const fs = new SnapshotFs(snapshots, {
    // Optional in Node's types for Windows' sake; snapmount runs where FUSE does, which has them.
    uid: process.getuid!(),
    gid: process.getgid!(),
    readTimeoutMs: config.options.readTimeoutMs,
    mountedAt: new Date(),
  })
  const signalled = waitForSignal()
  let mount
  try {
    mount = await mountFuse(config.mountpoint, fs, { allowOther: config.options.allowOther }, logger)
  } catch (err) {
    await fs.close()
    throw err
  }
  const served = config.snapshots.map(({ name, type }, i) => `${name} (${type}, ${formatSize(snapshots[i]!.backend.length)})`)
  logger.info(`mounted ${config.mountpoint} read-only: ${served.join(', ')}`)

  const watch = watchMount(config.mountpoint)
  const reason = await Promise.race([signalled.promise, watch.promise])
  signalled.cancel()
  watch.cancel()
  if (await mountedType(config.mountpoint)) {
    logger.info(`${reason}: unmounting ${config.mountpoint}`)
    await mount.unmount()
  } else {
    logger.warn(`${reason}: ${config.mountpoint} was already unmounted`)
  }
  await fs.close()
  logger.info('unmounted')
}

/** A wait that can be given up. */
interface Wait<T> {
  promise: Promise<T>
  cancel(): void
}

/** Resolves with the first stop signal; listening replaces Node's default of dying mid-mount. */
function waitForSignal(): Wait<string> {
  let resolveWith!: (signal: string) => void
  const promise = new Promise<string>((resolve) => (resolveWith = resolve))
  const onSignal = (signal: NodeJS.Signals) => resolveWith(signal)
  for (const name of STOP_SIGNALS) process.on(name, onSignal)
  return { promise, cancel: () => STOP_SIGNALS.forEach((name) => process.off(name, onSignal)) }
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

import type { Config } from '../config/config.js'
import type { OpenContext } from '../backend/open-backend.js'
import { SnapshotFs } from '../fuse/snapshot-fs.js'
import { mountFuse } from '../fuse/fuse-mount.js'
import { mountedType, prepareMountpoint } from '../fuse/mountpoint.js'
import { openSnapshots } from './open-snapshots.js'
import { formatSize } from './format.js'

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/**
 * Serves `config` until SIGINT or SIGTERM, then unmounts and resolves. Input problems (mountpoint,
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
  const stopped = waitForSignal()
  let mount
  try {
    mount = await mountFuse(config.mountpoint, fs, { allowOther: config.options.allowOther }, logger)
  } catch (err) {
    await fs.close()
    throw err
  }
  const served = config.snapshots.map(({ name, type }, i) => `${name} (${type}, ${formatSize(snapshots[i]!.backend.length)})`)
  logger.info(`mounted ${config.mountpoint} read-only: ${served.join(', ')}`)

  const signal = await stopped
  logger.info(`${signal}: unmounting ${config.mountpoint}`)
  try {
    await mount.unmount()
  } catch (err) {
    // Someone ran `fusermount -u` by hand: the mount is gone, which is all unmounting is for.
    // A lazy unmount (fusermount -uz) of a mount that is still there does not fail: not testable.
    /* c8 ignore next */
    if (await mountedType(config.mountpoint)) throw err
    logger.warn(`${config.mountpoint} was already unmounted`)
  }
  await fs.close()
  logger.info('unmounted')
}

/** Resolves with the first stop signal; listening replaces Node's default of dying mid-mount. */
function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      for (const name of STOP_SIGNALS) process.off(name, onSignal)
      resolve(signal)
    }
    for (const name of STOP_SIGNALS) process.on(name, onSignal)
  })
}

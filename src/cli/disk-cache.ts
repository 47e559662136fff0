import type { MountOptions } from '../config/config.js'
import type { Logger } from '../log.js'
import { describe } from '../backend/errors.js'
import type { DiskCache } from '../disk-cache/disk-cache.js'
import { DiskCacheLockedError } from '../disk-cache/errors.js'

/**
 * The daemon's disk cache, when `cache_dir` is set. Another daemon holding the directory is an
 * input error (DiskCacheLockedError: exit 2, nothing mounted). A directory that cannot be used
 * (unwritable, not a directory, a broken index) is not: the daemon serves from the sources as
 * without a disk cache, and says so once.
 *
 * The disk cache's modules are loaded here, only when it is set: its index is better-sqlite3, a
 * native addon that took ~9 CPU-ms of every daemon's start (start to mounted is a target: issue 17).
 */
export async function openDiskCache(options: MountOptions, logger: Logger): Promise<DiskCache | undefined> {
  if (options.cacheDir === undefined) return undefined
  const { DiskCache } = await import('../disk-cache/disk-cache.js')
  try {
    return DiskCache.open({ dir: options.cacheDir, capacityBytes: options.diskCacheBytes, blockBytes: options.blockBytes, logger })
  } catch (err) {
    if (err instanceof DiskCacheLockedError) throw err
    logger.warn(`disk cache off: cannot use ${options.cacheDir} (${describe(err)}); reads go to the sources`)
    return undefined
  }
}

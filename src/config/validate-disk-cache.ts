import { isAbsolute } from 'node:path'
import type { Fail } from './fields.js'
import { DISK_CACHE_SIZE_GIB, type MountOptions } from './config.js'

/** The options this module checks, beside the others in `options:`. */
export const DISK_CACHE_FIELDS = ['cache_dir', 'disk_cache_size_gib'] as const

type DiskCacheOptions = Pick<MountOptions, 'cacheDir' | 'diskCacheBytes'>

const GIB = 1024 * 1024 * 1024

/**
 * Checks `cache_dir` (an absolute path; the command line resolves its flag first) and
 * `disk_cache_size_gib`; absent ones keep `defaults`. `cache_dir: null` turns the disk cache off.
 */
export function checkDiskCache(options: Record<string, unknown>, defaults: DiskCacheOptions, fail: Fail): DiskCacheOptions {
  const cacheDir = options.cache_dir === undefined ? defaults.cacheDir : options.cache_dir
  if (cacheDir !== undefined && cacheDir !== null && (typeof cacheDir !== 'string' || !isAbsolute(cacheDir))) {
    throw fail('options.cache_dir', 'must be an absolute path', 'write e.g. cache_dir: /var/cache/snapmount, or leave it out for no disk cache')
  }
  const gib = options.disk_cache_size_gib === undefined ? defaults.diskCacheBytes / GIB : options.disk_cache_size_gib
  const { min, max } = DISK_CACHE_SIZE_GIB
  if (typeof gib !== 'number' || !Number.isInteger(gib) || gib < min || gib > max) {
    throw fail('options.disk_cache_size_gib', `must be a whole number from ${min} to ${max}`, `give gibibytes, e.g. disk_cache_size_gib: ${DISK_CACHE_SIZE_GIB.default}`)
  }
  return { cacheDir: cacheDir ?? undefined, diskCacheBytes: gib * GIB }
}

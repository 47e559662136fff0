import { writeFile } from 'node:fs/promises'
import type { Logger } from '../log.js'
import { describe } from '../backend/errors.js'
import { mountEntry } from './mountpoint.js'

/**
 * Sets how far the kernel reads ahead on the mount (its backing device's `read_ahead_kb`).
 *
 * The kernel gives a FUSE mount 128 KiB of readahead, so a sequential reader has about two
 * 128 KiB requests in flight and waits a daemon round trip for every 128 KiB, even when the
 * daemon already holds the bytes. A larger window lets the kernel send larger requests (up to
 * 1 MiB, which libfuse 3 allows) and more of them at once (up to FUSE's 12 background requests),
 * which the daemon answers in parallel from its cache and readahead. FUSE's mount options cannot
 * raise it (`max_readahead` only lowers it); root can, by writing the device's sysfs entry after
 * the mount. Where that fails (not root, a read-only /sys), the mount works as before and a log
 * line says so.
 */
/**
 * The kernel's readahead on a snapmount mount. Measured here through a mount of an nginx image,
 * with libfuse 2's 128 KiB requests: 128 KiB (the default) 250 MB/s, 512 KiB 310-325, 2 MiB
 * 305-312, 8 MiB 320: past 512 KiB the kernel's 12 background requests were the limit. With
 * libfuse 3 the window is one 1 MiB request: through the 10 ms proxy, 1 MiB gave 386-452 MB/s and
 * 4 MiB 418-441 (noise), so 1 MiB stays, reading no further ahead than it has to.
 */
export const KERNEL_READAHEAD_KIB = 1024

export async function setKernelReadahead(mountpoint: string, kib: number, logger: Logger, sysfs = '/sys/class/bdi'): Promise<void> {
  const entry = await mountEntry(mountpoint)
  if (!entry) return
  const path = `${sysfs}/${entry.device}/read_ahead_kb`
  try {
    await writeFile(path, `${kib}\n`)
  } catch (err) {
    logger.warn(`could not set the kernel's readahead on ${mountpoint} to ${kib} KiB (${describe(err)}): sequential reads will be slower`)
  }
}

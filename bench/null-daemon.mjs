// The zero-cost reference (STYLE.md #15, mountpoint-s3's stub handler): snapmount's own SnapshotFs
// and fuse-native glue, from dist/, over a backend that answers every read from one buffer of
// zeros without any I/O. What it reaches is the ceiling of the FUSE path; the gap between it and
// a real backend is what the backend costs.
//
// Usage: node bench/null-daemon.mjs MOUNTPOINT NAME BYTES
// Speaks bin/snapmount's protocol: "mounted" on stderr once ready, clean unmount on SIGTERM/SIGINT.

import { SnapshotFs } from '../dist/fuse/snapshot-fs.js'
import { mountFuse } from '../dist/fuse/fuse-mount.js'
import { prepareMountpoint } from '../dist/fuse/mountpoint.js'
import { KERNEL_READAHEAD_KIB, setKernelReadahead } from '../dist/fuse/kernel-readahead.js'
import { stderrLogger } from '../dist/log.js'

/** Larger than any single FUSE read (128 KiB here, at most 1 MiB with max_pages), so views suffice. */
const ZEROS = Buffer.alloc(2 ** 20)

/** Honours the StorageBackend contract: exactly `length` bytes, a view the caller must not write to. */
class NullBackend {
  mtime = new Date(0)
  constructor(length) {
    this.length = length
  }
  async readExact(offset, length) {
    if (offset < 0 || length < 0 || offset + length > this.length) throw new RangeError(`read ${offset}+${length} out of range`)
    return length <= ZEROS.length ? ZEROS.subarray(0, length) : Buffer.alloc(length)
  }
  async close() {}
}

const [mountpoint, name, bytes] = process.argv.slice(2)
if (!mountpoint || !name || !Number.isSafeInteger(Number(bytes))) {
  process.stderr.write('usage: node bench/null-daemon.mjs MOUNTPOINT NAME BYTES\n')
  process.exit(2)
}

const logger = { ...stderrLogger(), info: (message) => process.stderr.write(`null-daemon info: ${message}\n`) }
await prepareMountpoint(mountpoint, logger)
const fs = new SnapshotFs([{ name, backend: new NullBackend(Number(bytes)) }], {
  uid: process.getuid(),
  gid: process.getgid(),
  readTimeoutMs: 10_000,
  mountedAt: new Date(),
})
const stopped = new Promise((resolve) => {
  process.once('SIGTERM', resolve)
  process.once('SIGINT', resolve)
})
const mount = await mountFuse(mountpoint, fs, { allowOther: false }, logger)
// As snapmount mount does: without it the kernel sends 128 KiB requests, eight times as many as
// snapmount gets, and the reference would not be the same FUSE path.
await setKernelReadahead(mountpoint, KERNEL_READAHEAD_KIB, logger)
logger.info(`mounted ${mountpoint}: ${name} (null backend, ${bytes} bytes of zeros)`)
const signal = await stopped
logger.info(`${signal}: unmounting ${mountpoint}`)
await mount.unmount()
await fs.close()
logger.info('unmounted')
// fuse-native's thread can outlive the unmount and keep the process alive (bin/snapmount exits
// explicitly for the same reason).
process.exit(0)

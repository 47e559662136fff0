// The least CPU a first pass into the disk cache can add (issue 18): the work every block must
// get, and nothing else, measured on its own. 1 GiB of blocks that are already in page-aligned
// memory (as the memory cache's arena holds them) is
//   - digested: XXH3 of each 16 KiB piece, with the vendored addon the cache uses;
//   - written: O_DIRECT pwritev of 4 MiB runs (32 blocks of 128 KiB), two in flight, as
//     slot-file.ts does with the runs a stream's fetches bring (~4 MiB on average over a 1 GiB fill);
//   - made durable: one fdatasync per 8 MiB, as the cache's commits (without their SQLite rows).
// This process's CPU seconds per GiB (user + system, libuv's threads included) for each step
// alone and for all three together. No daemon, no socket, no FUSE: what is left when the cache's
// own bookkeeping costs nothing. Beside a first pass without the disk cache in the same run (the
// disk-cache part reports both), it is the lowest ratio any implementation could reach.
// `node bench/disk-cache-floor.mjs` runs it alone.

import { closeSync, constants, fdatasync, openSync, rmSync, writev } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pieceDigests } from 'xxh3-c'

const GiB = 1024 ** 3
const BLOCK_BYTES = 128 * 1024
const PIECE_BYTES = 16 * 1024
const RUN_BYTES = 4 * 1024 * 1024
const SYNC_BYTES = 8 * 1024 * 1024
const IN_FLIGHT = 2
/** Memory the blocks come from: more than the host's last-level cache, as a stream's blocks are. */
const SOURCE_BYTES = 256 * 1024 * 1024

const pwritev = promisify(writev)
const datasync = promisify(fdatasync)

/** The steps measured: each alone, then together. */
export const FLOOR_STEPS = [
  ['digest', 'XXH3 of each 16 KiB piece', { digest: true }],
  ['write', 'O_DIRECT pwritev, 4 MiB runs', { write: true }],
  ['writeSync', 'pwritev + fdatasync per 8 MiB', { write: true, sync: true }],
  ['all', 'all three', { digest: true, write: true, sync: true }],
]

/**
 * Measures each step `runs` times in a directory made under `parent` (which must take O_DIRECT:
 * the bench's directory, where its disk caches live) and removed after: for each step's key,
 * `{ title, cpuSecondsPerGiB }` (the least of the runs: the step's cost with the least
 * interference from the rest of the machine), and every run's `{ user, system, seconds }`.
 */
export async function measureDiskCacheFloor(parent, { runs = 1, steps = FLOOR_STEPS } = {}) {
  await mkdir(parent, { recursive: true })
  const dir = await mkdtemp(join(parent, 'disk-cache-floor-'))
  try {
    const blocks = sourceRuns()
    const result = {}
    for (const [key, title, step] of steps) {
      const passes = []
      for (let run = 0; run < runs; run++) passes.push(await pass(dir, blocks, step))
      result[key] = { title, cpuSecondsPerGiB: Math.min(...passes.map(({ user, system }) => user + system)), passes }
    }
    return result
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** 1 GiB of 4 MiB runs of 128 KiB blocks, taken round a 256 MiB shared memory. */
function sourceRuns() {
  // Shared WebAssembly memory, as the arena's slabs: mapped by V8, so page-aligned (O_DIRECT takes it).
  const memory = new WebAssembly.Memory({ initial: SOURCE_BYTES / 65536, maximum: SOURCE_BYTES / 65536, shared: true })
  const source = Buffer.from(memory.buffer)
  for (let at = 0; at < source.length; at += 4) source.writeUInt32LE((Math.imul(at, 2654435761) ^ 0x5bd1e995) >>> 0, at)
  return Array.from({ length: GiB / RUN_BYTES }, (_, index) => {
    const start = (index * RUN_BYTES) % SOURCE_BYTES
    return Array.from({ length: RUN_BYTES / BLOCK_BYTES }, (_, block) => source.subarray(start + block * BLOCK_BYTES, start + (block + 1) * BLOCK_BYTES))
  })
}

async function pass(dir, runs, { digest, write, sync }) {
  const path = join(dir, 'blocks.dat')
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600)
  const before = process.cpuUsage()
  const began = performance.now()
  try {
    let next = 0
    let unsynced = 0
    const worker = async () => {
      while (next < runs.length) {
        const index = next++
        const blocks = runs[index]
        if (digest) for (const block of blocks) pieceDigests(block, PIECE_BYTES)
        if (write) await pwritev(fd, blocks, index * RUN_BYTES)
        unsynced += RUN_BYTES
        if (sync && unsynced >= SYNC_BYTES) {
          unsynced = 0
          await datasync(fd)
        }
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    if (sync) await datasync(fd)
  } finally {
    closeSync(fd)
  }
  const { user, system } = process.cpuUsage(before)
  const seconds = (performance.now() - began) / 1000
  rmSync(path)
  return { user: user / 1e6, system: system / 1e6, seconds }
}


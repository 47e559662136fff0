// The least CPU a first pass into the disk cache can add (issue 18): the work every block must
// get, and nothing else, measured on its own. 1 GiB of blocks that are already in page-aligned
// memory (as the memory cache's arena holds them) is
//   - digested: XXH3 of each 16 KiB piece, with the vendored addon the cache uses;
//   - written: O_DIRECT pwritev of 4 MiB runs (32 blocks of 128 KiB; --run-mib), two in flight, as
//     slot-file.ts does with the runs a stream's fetches bring (~4 MiB on average over a 1 GiB fill);
//   - made durable: one fdatasync per 8 MiB, as the cache's commits (without their SQLite rows).
// Each step runs alone, then all three together, and reports this process's CPU seconds per GiB
// (user + system, libuv's threads included). No daemon, no socket, no FUSE: what is left when the
// cache's own bookkeeping costs nothing. Set beside a first pass without the disk cache in the same
// run (`npm run bench -- disk-cache`), it is the lowest ratio any implementation could reach.
//
//   node bench/disk-cache-floor.mjs [--dir DIR] [--runs N] [--run-mib N]
//
// DIR (default: the bench's directory, where the bench's disk cache lives) must take O_DIRECT.
// Not part of `npm test` or `npm run bench`. Run it under `flock /tmp/snapmount-bench.lock`.

import { closeSync, constants, fdatasync, openSync, rmSync, writev } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from 'node:util'
import { pieceDigests } from 'xxh3-c'
import { benchSettings } from './lib/settings.mjs'

const GiB = 1024 ** 3
const BLOCK_BYTES = 128 * 1024
const PIECE_BYTES = 16 * 1024
const SYNC_BYTES = 8 * 1024 * 1024
const IN_FLIGHT = 2
/** Memory the blocks come from: more than the host's last-level cache, as a stream's blocks are. */
const SOURCE_BYTES = 256 * 1024 * 1024

const pwritev = promisify(writev)
const datasync = promisify(fdatasync)

const { values } = parseArgs({ options: { dir: { type: 'string' }, runs: { type: 'string', default: '3' }, 'run-mib': { type: 'string', default: '4' } } })
const RUN_BYTES = Number(values['run-mib']) * 1024 * 1024
const settings = benchSettings(process.env)
const dir = await mkdtemp(join(values.dir ?? settings.benchDir, 'disk-cache-floor-'))

// Shared WebAssembly memory, as the arena's slabs: mapped by V8, so page-aligned (O_DIRECT takes it).
const memory = new WebAssembly.Memory({ initial: SOURCE_BYTES / 65536, maximum: SOURCE_BYTES / 65536, shared: true })
const source = Buffer.from(memory.buffer)
for (let at = 0; at < source.length; at += 4) source.writeUInt32LE((Math.imul(at, 2654435761) ^ 0x5bd1e995) >>> 0, at)

const runs = Array.from({ length: GiB / RUN_BYTES }, (_, index) => {
  const start = (index * RUN_BYTES) % SOURCE_BYTES
  return Array.from({ length: RUN_BYTES / BLOCK_BYTES }, (_, block) => source.subarray(start + block * BLOCK_BYTES, start + (block + 1) * BLOCK_BYTES))
})

async function pass({ digest, write, sync }) {
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

const steps = [
  ['XXH3 of each 16 KiB piece', { digest: true }],
  [`O_DIRECT pwritev, ${values['run-mib']} MiB runs`, { write: true }],
  ['pwritev + fdatasync per 8 MiB', { write: true, sync: true }],
  ['all three', { digest: true, write: true, sync: true }],
]
try {
  console.log(`1 GiB into ${dir}, ${values.runs} runs each; CPU seconds per GiB (user + system)`)
  for (const [title, step] of steps) {
    const results = []
    for (let run = 0; run < Number(values.runs); run++) results.push(await pass(step))
    const cpu = results.map(({ user, system }) => (user + system).toFixed(3)).join(', ')
    const split = results.map(({ user, system }) => `${user.toFixed(3)}/${system.toFixed(3)}`).join(', ')
    const rate = results.map(({ seconds }) => Math.round(GiB / 1e6 / seconds)).join(', ')
    console.log(`${title.padEnd(32)} ${cpu}   (user/system ${split}; MB/s ${rate})`)
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}

// The reads of a VM boot, as the fleet part replays them: a fixed, seeded list shaped like the
// Linux guest's boot (test/integration/linux-guest-boot.ts measured ~1,460 reads, 52 MiB): the
// kernel, initramfs and libraries read as runs of 128 KiB reads (a guest's own readahead), and
// file-system metadata and small files as scattered 4-16 KiB reads, interleaved as a boot
// interleaves them. The same list on every run and machine, so runs compare.

import { seededRandom } from '../../tools/seeded-random.mjs'

const KiB = 1024
const MiB = 1024 * KiB
/** Runs of sequential reads: files read whole. */
const RUNS = 40
/** A run's length: 256 KiB to 2 MiB, 128 KiB at a time. */
const RUN_READ_BYTES = 128 * KiB
/** Scattered small reads: inodes, directories, small files. */
const SCATTERED = 1000
const SCATTERED_SIZES = [4 * KiB, 4 * KiB, 8 * KiB, 16 * KiB]

/**
 * The boot's reads in order, `{ offset, length }`, 4 KiB-aligned, inside the first `spanBytes`
 * of the image (a boot touches the system's part of a disk, not all of it).
 */
export function bootWorkingSet(spanBytes, seed = 16) {
  const random = seededRandom(seed)
  const pick = (n) => Math.floor(random() * n)
  const page = (bytes) => Math.floor(bytes / (4 * KiB)) * 4 * KiB
  const runs = Array.from({ length: RUNS }, () => {
    const length = (2 + pick(15)) * RUN_READ_BYTES
    const offset = page(pick(spanBytes - length))
    return Array.from({ length: length / RUN_READ_BYTES }, (_, i) => ({ offset: offset + i * RUN_READ_BYTES, length: RUN_READ_BYTES }))
  })
  const scattered = Array.from({ length: SCATTERED }, () => {
    const length = SCATTERED_SIZES[pick(SCATTERED_SIZES.length)]
    return { offset: page(pick(spanBytes - length)), length }
  })
  // Interleave: after each few small reads, the next piece of some run.
  const reads = []
  while (scattered.length > 0 || runs.some((run) => run.length > 0)) {
    for (let i = 0; i < 1 + pick(3) && scattered.length > 0; i++) reads.push(scattered.shift())
    const open = runs.filter((run) => run.length > 0)
    if (open.length > 0) reads.push(open[pick(Math.min(open.length, 3))].shift())
  }
  return reads
}

/** Bytes read, and bytes of the image touched at least once (in 4 KiB pages). */
export function workingSetBytes(reads) {
  const pages = new Set()
  let read = 0
  for (const { offset, length } of reads) {
    read += length
    for (let page = offset; page < offset + length; page += 4 * KiB) pages.add(page)
  }
  return { read, unique: pages.size * 4 * KiB }
}

/** fio's iolog (version 2) replaying `reads` on `path`, one after the other. */
export function fioIolog(path, reads) {
  return ['fio version 2 iolog', `${path} add`, `${path} open`, ...reads.map(({ offset, length }) => `${path} read ${offset} ${length}`), `${path} close`, ''].join('\n')
}

export const WORKING_SET_SPAN_BYTES = 512 * MiB

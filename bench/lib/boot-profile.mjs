// Boot profiles for the boot part's "with profile" rows (issue 19): made from the guest's recorded
// read trace (test/fixtures/linux-boot-trace.txt, bench/record-boot-trace.mjs) in snapmount's own
// format (dist/profile/format.js), or random ones of the same size for the "wrong profile" row.
// Pure functions, tested in test/bench/boot-profile.ts.

import { seededRandom } from '../../tools/seeded-random.mjs'

/** The cache's default block (cache_block_kib: 128): the profile's unit. */
export const PROFILE_BLOCK_BYTES = 128 * 1024

/**
 * The runs of a profile from a trace's reads (`{ ms, offset, length }`, in the order issued): each
 * block once, in order of first touch, consecutive new blocks of one read joined into one run, the
 * read's ms as the run's.
 */
export function runsFromReads(reads, blockBytes = PROFILE_BLOCK_BYTES) {
  const seen = new Set()
  const runs = []
  for (const { ms, offset, length } of reads) {
    if (length <= 0) continue
    const last = Math.floor((offset + length - 1) / blockBytes)
    for (let block = Math.floor(offset / blockBytes); block <= last; block++) {
      if (seen.has(block)) continue
      seen.add(block)
      const previous = runs.at(-1)
      if (previous && previous.firstBlock + previous.blockCount === block && previous.atMs === ms) previous.blockCount++
      else runs.push({ firstBlock: block, blockCount: 1, atMs: ms })
    }
  }
  return runs
}

/** As many distinct single blocks as `runs` list, drawn at random over the image (seeded): a profile of some other boot. */
export function randomRuns(runs, imageBytes, seed, blockBytes = PROFILE_BLOCK_BYTES) {
  const count = runs.reduce((sum, run) => sum + run.blockCount, 0)
  const blocks = Math.ceil(imageBytes / blockBytes)
  const random = seededRandom(seed)
  const chosen = new Set()
  while (chosen.size < Math.min(count, blocks)) chosen.add(Math.floor(random() * blocks))
  return [...chosen].map((firstBlock, i) => ({ firstBlock, blockCount: 1, atMs: i }))
}

/**
 * The validator a daemon's warning says the image has ("... this image is VALIDATOR; record it
 * again"), or undefined. The daemon's stderr is no terminal, so its lines may be JSON: their
 * `msg` is read then, not the escaped text.
 */
export function validatorFromLog(log) {
  for (const line of log.split('\n')) {
    let message = line
    if (line.startsWith('{')) {
      try {
        message = JSON.parse(line).msg ?? ''
      } catch {
        message = ''
      }
    }
    const found = /this image is (.+); record it again/.exec(message)?.[1]
    if (found !== undefined) return found
  }
  return undefined
}

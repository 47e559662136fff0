import type { StorageBackend } from '../backend/storage-backend.js'
import { HASH_ALGORITHMS, blockCountOf, type HashAlgorithm, type Manifest } from './format.js'
import type { HashPool } from './hash-pool.js'

export interface ScanOptions {
  algorithm: HashAlgorithm
  blockBytes: number
  pool: HashPool
  /** Bytes read and hashed so far, and the total; called as chunks finish. */
  progress?: ((done: number, total: number) => void) | undefined
}

/**
 * Reads are this large (a whole number of blocks, one block where a block is larger): 4 MiB is the
 * largest ranged request snapmount makes, which a remote backend finishes well within its read
 * deadline on any link that can serve a disk.
 */
const CHUNK_BYTES = 4 * 1024 * 1024
/** Reads outstanding at once: enough to keep a remote source's connections and the hash pool busy. */
const CHUNKS_IN_FLIGHT = 8

/**
 * The digest of every block of `backend`, back to back (a manifest's digest list): reads whole
 * blocks in chunks, CHUNKS_IN_FLIGHT at once, and hashes each chunk on the pool as it arrives.
 * The first failed read fails the whole.
 */
export async function digestImage(backend: StorageBackend, options: ScanOptions): Promise<Buffer> {
  const { algorithm, blockBytes, pool, progress } = options
  const size = backend.length
  const digestBytes = HASH_ALGORITHMS[algorithm].digestBytes
  const digests = Buffer.alloc(blockCountOf(size, blockBytes) * digestBytes)
  const chunkBytes = Math.max(blockBytes, CHUNK_BYTES - (CHUNK_BYTES % blockBytes))
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < size) {
      const offset = next
      const length = Math.min(chunkBytes, size - offset)
      next += length
      const data = await backend.readExact(offset, length, { maintenance: true })
      const chunk = await pool.blockDigests(algorithm, data, blockBytes)
      chunk.copy(digests, (offset / blockBytes) * digestBytes)
      done += length
      progress?.(done, size)
    }
  }
  await Promise.all(Array.from({ length: CHUNKS_IN_FLIGHT }, worker))
  return digests
}

/** A run of consecutive blocks whose digests did not match, and the bytes they cover. */
export interface BadRange {
  firstBlock: number
  lastBlock: number
  /** The first byte of the run, and the byte after its last. */
  offset: number
  end: number
}

/** The runs of blocks whose digest in `digests` differs from the manifest's, in order. */
export function badRanges(manifest: Manifest, digests: Buffer): BadRange[] {
  const size = HASH_ALGORITHMS[manifest.algorithm].digestBytes
  const bad: number[] = []
  for (let block = 0; block < manifest.blockCount; block++) {
    const at = block * size
    if (digests.compare(manifest.digests, at, at + size, at, at + size) !== 0) bad.push(block)
  }
  return rangesOf(bad, manifest.blockBytes, manifest.imageBytes)
}

/** Ascending block indices as runs of consecutive blocks, with the bytes each covers in an image of `imageBytes`. */
export function rangesOf(blocks: readonly number[], blockBytes: number, imageBytes: number): BadRange[] {
  const ranges: BadRange[] = []
  for (const block of blocks) {
    const last = ranges.at(-1)
    if (last && last.lastBlock === block - 1) last.lastBlock = block
    else ranges.push({ firstBlock: block, lastBlock: block, offset: 0, end: 0 })
  }
  for (const range of ranges) {
    range.offset = range.firstBlock * blockBytes
    range.end = Math.min(imageBytes, (range.lastBlock + 1) * blockBytes)
  }
  return ranges
}

/** "bytes 131072-262143 (block 1)" or "(blocks 1-3)": a bad range for people, ends inclusive. */
export function describeRange({ firstBlock, lastBlock, offset, end }: BadRange): string {
  const blocks = firstBlock === lastBlock ? `block ${firstBlock}` : `blocks ${firstBlock}-${lastBlock}`
  return `bytes ${offset}-${end - 1} (${blocks})`
}

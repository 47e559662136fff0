import { availableParallelism } from 'node:os'
import type { ReadOptions, SnapshotInspection, SourceIdentity, StorageBackend } from '../backend/storage-backend.js'
import type { BlockIntegrity, IntegrityStats } from '../backend/integrity.js'
import { BackendClosedError } from '../backend/errors.js'
import { assertInRange } from '../backend/range.js'
import { SnapmountError } from '../errors.js'
import type { Logger } from '../log.js'
import { HASH_ALGORITHMS, blockDigest, type Manifest } from './format.js'
import { HashPool } from './hash-pool.js'

/**
 * Fetches of one block, the first included, before a read that needs it fails: a body damaged on
 * the way (a flaky cache, a bit flipped in a gateway) is usually right the next time; a store
 * that holds damaged bytes is wrong every time, and two more round trips say so.
 */
export const BLOCK_ATTEMPTS = 3

/** A block that did not match its manifest digest on any attempt: its reads fail (EIO). */
export class BlockDigestError extends SnapmountError {
  readonly code = 'E_BLOCK_DIGEST'
  constructor(
    readonly snapshot: string,
    readonly block: number,
    readonly offset: number,
    readonly length: number,
    readonly expected: string,
    readonly got: string,
    readonly attempts: number,
  ) {
    super(`${snapshot}: block ${block} (bytes ${offset}-${offset + length - 1}) does not match the manifest after ${attempts} fetches: expected ${expected}, got ${got}`)
  }
}

export interface VerifyingOptions {
  /** The snapshot's name, for log lines and errors. */
  name: string
  logger: Logger
  /** Where blocks larger than INLINE_MAX_BYTES are hashed; default: the daemon's shared pool. */
  pool?: HashPool | undefined
  /** Fetches of a block, the first included, before its reads fail; default BLOCK_ATTEMPTS. */
  attempts?: number | undefined
  /**
   * Where a block that did not match is fetched again (`attempt` is 2 for the first retry): the
   * source by default. A mirror selector gives another mirror here.
   */
  refetchFrom?: ((block: number, attempt: number) => StorageBackend) | undefined
}

/**
 * Two threads: one job hashing while the next is copied in. More would take CPU from the guests
 * a hypervisor host runs for readahead that two SHA-256 threads (~1.8 GB/s each here) keep up with.
 */
let sharedPool: HashPool | undefined
function daemonPool(): HashPool {
  sharedPool ??= new HashPool(Math.min(2, availableParallelism()))
  return sharedPool
}

/**
 * The innermost layer of a snapshot with a manifest: every block read from the source is hashed
 * and compared with the manifest's digest before any layer above caches or serves it.
 *
 * A read is rounded out to whole manifest blocks (under the block cache it already is, when the
 * cache block is a multiple of the manifest's), fetched in one request, and its blocks hashed
 * together (on the event loop up to 16 KiB, above it on worker threads: hash-pool.ts). A block
 * that does not match is logged with both digests and fetched again alone, from
 * `refetchFrom`, up to `attempts` fetches in all; the good copy is put in its place. If every
 * fetch mismatches, the read fails with BlockDigestError (EIO), naming the block and both digests.
 * Nothing is remembered: a block that passed is not hashed again here, since the cache above
 * keeps it, and a block that failed is fetched anew by the next read that needs it.
 */
export class VerifyingBackend implements StorageBackend {
  readonly integrity: BlockIntegrity
  readonly describe?: () => string
  readonly identity?: () => SourceIdentity | undefined
  private readonly stats: IntegrityStats = { verifiedBlocks: 0, mismatches: 0, failedBlocks: 0 }
  private readonly pool: HashPool
  private readonly attempts: number
  private readonly refetchFrom: (block: number, attempt: number) => StorageBackend
  private closed = false

  constructor(
    private readonly source: StorageBackend,
    private readonly manifest: Manifest,
    private readonly options: VerifyingOptions,
  ) {
    if (manifest.imageBytes !== source.length) throw new RangeError(`a manifest of ${manifest.imageBytes} bytes for a source of ${source.length}`)
    this.pool = options.pool ?? daemonPool()
    this.attempts = options.attempts ?? BLOCK_ATTEMPTS
    if (!Number.isSafeInteger(this.attempts) || this.attempts < 1) throw new RangeError(`attempts must be at least 1, not ${this.attempts}`)
    this.refetchFrom = options.refetchFrom ?? (() => source)
    if (source.describe) this.describe = () => source.describe!()
    // The disk cache, right above, files blocks under the source's identity: the same bytes.
    if (source.identity) this.identity = () => source.identity!()
    this.integrity = {
      algorithm: manifest.algorithm,
      blockBytes: manifest.blockBytes,
      blockCount: manifest.blockCount,
      blockDigest: (index) => blockDigest(manifest, index),
      check: async (firstBlock, data) => (await this.mismatches(firstBlock, data)).map(({ block }) => block),
    }
  }

  get length(): number {
    return this.source.length
  }

  get mtime(): Date {
    return this.source.mtime
  }

  /** The source's facts, and how many blocks were checked and did not match. */
  inspect(): SnapshotInspection {
    return { ...this.source.inspect?.(), integrity: { ...this.stats } }
  }

  async readExact(offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    if (length === 0) return Buffer.alloc(0)
    const { blockBytes } = this.manifest
    const firstBlock = Math.floor(offset / blockBytes)
    const start = firstBlock * blockBytes
    const end = Math.min(this.length, Math.ceil((offset + length) / blockBytes) * blockBytes)
    const aligned = start === offset && end === offset + length
    // A caller's `into` is exactly its range: a widened read fills a buffer of its own.
    const { into: _into, ...widened } = options
    const data = await this.source.readExact(start, end - start, aligned ? options : widened)
    const bad = await this.mismatches(firstBlock, data)
    for (const { block, got } of bad) await this.repair(block, got, data, start, options)
    this.stats.verifiedBlocks += Math.ceil(data.length / blockBytes)
    return aligned ? data : data.subarray(offset - start, offset - start + length)
  }

  async close(): Promise<void> {
    this.closed = true
    await this.source.close()
  }

  /** The blocks of `data` (from `firstBlock` on) whose digest is not the manifest's, with the digest each had. */
  private async mismatches(firstBlock: number, data: Uint8Array): Promise<Array<{ block: number; got: string }>> {
    const { algorithm, blockBytes } = this.manifest
    const size = HASH_ALGORITHMS[algorithm].digestBytes
    const digests = await this.pool.blockDigests(algorithm, data, blockBytes)
    const bad: Array<{ block: number; got: string }> = []
    for (let index = 0; index * size < digests.length; index++) {
      const got = digests.subarray(index * size, (index + 1) * size)
      if (!got.equals(blockDigest(this.manifest, firstBlock + index))) bad.push({ block: firstBlock + index, got: got.toString('hex') })
    }
    return bad
  }

  /**
   * Block `block` of `data` (which starts at byte `start`) had digest `got`, not the manifest's:
   * fetches it again until a copy matches and puts that copy in its place, or throws
   * BlockDigestError once `attempts` fetches in all have not matched.
   */
  private async repair(block: number, got: string, data: Buffer, start: number, { signal }: ReadOptions): Promise<void> {
    const { algorithm, blockBytes } = this.manifest
    const offset = block * blockBytes
    const length = Math.min(blockBytes, this.length - offset)
    const expected = blockDigest(this.manifest, block).toString('hex')
    const { name, logger } = this.options
    for (let attempt = 1; attempt < this.attempts; attempt++) {
      this.stats.mismatches++
      const fields = { code: 'E_BLOCK_DIGEST', snapshot: name, block, offset, expected, got, attempt }
      logger.warn(`${name}: block ${block} (bytes ${offset}-${offset + length - 1}) does not match the manifest: expected ${expected}, got ${got}; fetching it again (attempt ${attempt + 1} of ${this.attempts})`, fields)
      const copy = await this.refetchFrom(block, attempt + 1).readExact(offset, length, signal ? { signal } : {})
      got = (await this.pool.blockDigests(algorithm, copy, blockBytes)).toString('hex')
      if (got === expected) {
        copy.copy(data, offset - start)
        return
      }
    }
    this.stats.mismatches++
    this.stats.failedBlocks++
    throw new BlockDigestError(name, block, offset, length, expected, got, this.attempts)
  }
}

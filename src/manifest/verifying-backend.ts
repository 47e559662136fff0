import { availableParallelism } from 'node:os'
import type { ReadOptions, SnapshotInspection, SourceIdentity, StorageBackend } from '../backend/storage-backend.js'
import type { BlockIntegrity, IntegrityStats } from '../backend/integrity.js'
import { BackendClosedError, type ConfinedFailure } from '../backend/errors.js'
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

/** One fetch of a block that did not match: the digest it had, and from which mirror. */
export interface BadCopy {
  /** The mirror's name (sourceSet labels); undefined for a snapshot of one source. */
  source: string | undefined
  got: string
}

/**
 * A block that did not match its manifest digest on any attempt: its reads fail (EIO). With
 * mirrors the message names each source and the digest its copy had.
 */
export class BlockDigestError extends SnapmountError implements ConfinedFailure {
  readonly code = 'E_BLOCK_DIGEST'
  /** Only this block failed: the cache fails only the reads that need it. */
  readonly failedRange: ConfinedFailure['failedRange']
  /** The digest of the last copy fetched. */
  readonly got: string
  constructor(
    readonly snapshot: string,
    readonly block: number,
    readonly offset: number,
    readonly length: number,
    readonly expected: string,
    /** Every copy fetched, in order (`attempts` of them). */
    readonly copies: readonly BadCopy[],
    readonly attempts: number,
  ) {
    const got = copies.some(({ source }) => source !== undefined)
      ? copies.map(({ source, got }) => `${got} from ${source}`).join(', ')
      : copies.at(-1)!.got
    super(`${snapshot}: block ${block} (bytes ${offset}-${offset + length - 1}) does not match the manifest after ${attempts} fetches: expected ${expected}, got ${got}`)
    this.got = copies.at(-1)!.got
    this.failedRange = { offset, length }
  }
}

export interface VerifyingOptions {
  /** The snapshot's name, for log lines and errors. */
  name: string
  logger: Logger
  /** Where blocks larger than INLINE_MAX_BYTES are hashed; default: the daemon's shared pool. */
  pool?: HashPool | undefined
  /**
   * Fetches of a block, the first included, before its reads fail; default BLOCK_ATTEMPTS. With
   * mirrors, at least one per mirror, so every mirror is asked before a read fails.
   */
  attempts?: number | undefined
}

/**
 * Two threads: one job hashing while the next is copied in. More would take CPU from the guests
 * a hypervisor host runs for readahead that two threads keep up with (SHA-256 ~1.8 GB/s each here,
 * BLAKE3 ~5 GB/s).
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
 * together (BLAKE3 on the event loop; SHA-256 there up to 16 KiB, above it on worker threads:
 * hash-pool.ts). A block
 * that does not match is logged with both digests and fetched again alone, up to `attempts`
 * fetches in all; the good copy is put in its place. If every fetch mismatches, the read fails
 * with BlockDigestError (EIO), naming the block and both digests.
 *
 * Over mirrors (the source has a `sourceSet`), each fetch says which mirror answered. A mirror
 * whose copy did not match is marked bad for that block (its error rate counts it, and later reads
 * of the block go to the others first), and the block is asked again from a mirror that has not
 * yet given a bad copy of it; only once every mirror has are they asked again. The read fails
 * once every fetch, at least one per mirror, mismatched: the error names each mirror's digest.
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
  private closed = false

  constructor(
    private readonly source: StorageBackend,
    private readonly manifest: Manifest,
    private readonly options: VerifyingOptions,
  ) {
    if (manifest.imageBytes !== source.length) throw new RangeError(`a manifest of ${manifest.imageBytes} bytes for a source of ${source.length}`)
    this.pool = options.pool ?? daemonPool()
    const attempts = options.attempts ?? BLOCK_ATTEMPTS
    if (!Number.isSafeInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be at least 1, not ${attempts}`)
    this.attempts = Math.max(attempts, source.sourceSet?.labels.length ?? 0)
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
    const { bytes: data, source } = await this.fetch(start, end - start, aligned ? options : widened)
    const bad = await this.mismatches(firstBlock, data)
    if (bad.length === 0 && source !== undefined) this.source.sourceSet!.verified(source)
    for (const { block, got } of bad) await this.repair(block, { source, got }, data, start, options)
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

  /** A read from the source; over mirrors, with the number of the one that answered. */
  private async fetch(offset: number, length: number, options: ReadOptions & { avoid?: ReadonlySet<number> }): Promise<{ bytes: Buffer; source: number | undefined }> {
    const { sourceSet } = this.source
    if (sourceSet) return sourceSet.readFrom(offset, length, options)
    return { bytes: await this.source.readExact(offset, length, options), source: undefined }
  }

  /**
   * Block `block` of `data` (which starts at byte `start`) had digest `first.got` when `first.source`
   * sent it, not the manifest's: fetches it again (from another mirror, with mirrors) until a copy
   * matches and puts that copy in its place, or throws BlockDigestError once `attempts` fetches in
   * all have not matched.
   */
  private async repair(block: number, first: { source: number | undefined; got: string }, data: Buffer, start: number, { signal }: ReadOptions): Promise<void> {
    const { algorithm, blockBytes } = this.manifest
    const offset = block * blockBytes
    const length = Math.min(blockBytes, this.length - offset)
    const expected = blockDigest(this.manifest, block).toString('hex')
    const { name, logger } = this.options
    const { sourceSet } = this.source
    /** The mirrors that gave a bad copy of this block since they were last all asked. */
    const avoid = new Set<number>()
    const copies: BadCopy[] = []
    let { source, got } = first
    for (let attempt = 1; ; attempt++) {
      this.stats.mismatches++
      const from = source === undefined ? undefined : sourceSet!.labels[source]
      copies.push({ source: from, got })
      if (source !== undefined) {
        sourceSet!.markBad(source, offset, length)
        avoid.add(source)
        if (avoid.size === sourceSet!.labels.length) avoid.clear()
      }
      if (attempt >= this.attempts) break
      const fields = { code: 'E_BLOCK_DIGEST', snapshot: name, block, offset, expected, got, attempt, ...(from !== undefined && { source: from }) }
      logger.warn(`${name}: block ${block} (bytes ${offset}-${offset + length - 1}) does not match the manifest${from === undefined ? '' : ` from ${from}`}: expected ${expected}, got ${got}; fetching it again${sourceSet ? ' from another mirror' : ''} (attempt ${attempt + 1} of ${this.attempts})`, fields)
      const copy = await this.fetch(offset, length, { ...(signal && { signal }), ...(sourceSet && { avoid }) })
      source = copy.source
      got = (await this.pool.blockDigests(algorithm, copy.bytes, blockBytes)).toString('hex')
      if (got === expected) {
        if (source !== undefined) sourceSet!.verified(source)
        copy.bytes.copy(data, offset - start)
        return
      }
    }
    this.stats.failedBlocks++
    throw new BlockDigestError(name, block, offset, length, expected, copies, this.attempts)
  }
}

import type { BootProfile, ProfileIdentity, ProfileRun } from './format.js'

/**
 * The most blocks a profile lists. At the default 128 KiB block that is 8 GiB, over ten times what
 * a Linux boot reads (some 300-600 MiB, ~6 % of an image); past it a recording is no longer a
 * boot's working set but a whole-disk scan, and replaying it would only flood the cache. It also
 * bounds the recorder's memory (a set entry and a run per block: a few MiB) and the file (~1.5 MB).
 */
export const MAX_PROFILE_BLOCKS = 65_536

export interface RecorderOptions {
  /** The image the profile is of: its size bounds the blocks, and the profile names it. */
  identity: ProfileIdentity
  /**
   * The block the profile counts in: the memory cache's block size, so the blocks a replay fetches
   * are the cache's own. A power of two.
   */
  blockBytes: number
  /** A monotonic clock in milliseconds; runs are timed from the first read. Injected by tests. */
  now: () => number
  /** The bound on blocks (MAX_PROFILE_BLOCKS unless a test sets it lower). */
  maxBlocks?: number | undefined
}

/**
 * Records which blocks of one image the readers touch, in the order they first touch them: each
 * read's blocks not touched before are noted, the consecutive ones of one read as one run, stamped
 * with the ms since the first read. A block touched again is not noted again, so a profile lists
 * each block once, where it was first needed. Bounded by `maxBlocks`: the read that would pass it
 * notes nothing, and the recorder is `full` from then on. Pure: no I/O, the clock injected.
 */
export class ProfileRecorder {
  readonly identity: ProfileIdentity
  readonly blockBytes: number
  private readonly now: () => number
  private readonly maxBlocks: number
  private readonly blockCount: number
  private readonly touched = new Set<number>()
  private readonly runs: ProfileRun[] = []
  private startedAt: number | undefined
  private lastNewAt: number | undefined
  private isFull = false

  constructor(options: RecorderOptions) {
    const { identity, blockBytes, now, maxBlocks = MAX_PROFILE_BLOCKS } = options
    if (!Number.isSafeInteger(blockBytes) || blockBytes <= 0 || (blockBytes & (blockBytes - 1)) !== 0) {
      throw new RangeError(`blockBytes must be a power of two, not ${blockBytes}`)
    }
    if (!Number.isSafeInteger(maxBlocks) || maxBlocks <= 0) throw new RangeError(`maxBlocks must be a positive integer, not ${maxBlocks}`)
    this.identity = identity
    this.blockBytes = blockBytes
    this.now = now
    this.maxBlocks = maxBlocks
    this.blockCount = Math.ceil(identity.bytes / blockBytes)
  }

  /**
   * Notes a read of `[offset, offset + length)` (the part inside the image); resolves to the
   * number of blocks it touched first, 0 when none (all touched before, or the recorder is full).
   */
  note(offset: number, length: number): number {
    if (this.isFull || length <= 0) return 0
    const first = Math.floor(offset / this.blockBytes)
    const last = Math.min(Math.ceil((offset + length) / this.blockBytes), this.blockCount) - 1
    let fresh = 0
    for (let block = first; block <= last; block++) if (!this.touched.has(block)) fresh++
    if (fresh === 0) return 0
    if (this.touched.size + fresh > this.maxBlocks) {
      this.isFull = true
      return 0
    }
    const at = this.now()
    this.startedAt ??= at
    this.lastNewAt = at
    const atMs = at - this.startedAt
    let run: ProfileRun | undefined
    for (let block = first; block <= last; block++) {
      if (this.touched.has(block)) {
        run = undefined
        continue
      }
      this.touched.add(block)
      if (run) run.blockCount++
      else this.runs.push((run = { firstBlock: block, blockCount: 1, atMs }))
    }
    return fresh
  }

  /** Whether a read was refused for the bound: nothing is noted from then on. */
  get full(): boolean {
    return this.isFull
  }

  /** Blocks noted so far. */
  get blocks(): number {
    return this.touched.size
  }

  /** Runs noted so far. */
  get runCount(): number {
    return this.runs.length
  }

  /** The bytes the blocks noted hold (the image's last block short). */
  get bytes(): number {
    const lastBlock = this.blockCount - 1
    const short = this.touched.has(lastBlock) ? this.blockCount * this.blockBytes - this.identity.bytes : 0
    return this.touched.size * this.blockBytes - short
  }

  /** Milliseconds since the last new block was noted; undefined before the first. */
  quietMs(): number | undefined {
    return this.lastNewAt === undefined ? undefined : this.now() - this.lastNewAt
  }

  /** Milliseconds from the first read to the last new block; 0 before the first. */
  get spanMs(): number {
    return this.lastNewAt === undefined ? 0 : this.lastNewAt - this.startedAt!
  }

  /** The profile of what was noted so far, recorded at `recordedAt` (the wall-clock time of its start). */
  profile(recordedAt: Date): BootProfile {
    return { identity: { ...this.identity }, blockBytes: this.blockBytes, recordedAt, runs: this.runs.map((run) => ({ ...run })) }
  }
}

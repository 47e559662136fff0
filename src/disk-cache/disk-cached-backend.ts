import type { ReadOptions, SnapshotInspection, SourceIdentity, StorageBackend } from '../backend/storage-backend.js'
import { BackendClosedError } from '../backend/errors.js'
import { assertInRange } from '../backend/range.js'
import { LayerBackend } from '../backend/layer-backend.js'
import type { DiskCache, DiskSnapshot } from './disk-cache.js'

/**
 * A remote snapshot read through the disk cache (disk-cache.ts); the same contract as the backend
 * it wraps, below the memory cache, which asks it for runs of whole blocks.
 *
 * A read is rounded out to blocks. Blocks on disk are read and checked; the others, and those that
 * fail their check, are fetched from the source in runs of adjacent blocks, one request per run,
 * and handed to the disk cache to be written behind the read. The bytes returned are the
 * source's or checked ones: a block on disk that is wrong is never served.
 */
export class DiskCachedBackend extends LayerBackend implements StorageBackend {
  private readonly snapshot: DiskSnapshot
  private closed = false

  constructor(
    source: StorageBackend,
    private readonly cache: DiskCache,
    identity: SourceIdentity,
  ) {
    super(source)
    this.snapshot = cache.attach(identity)
  }

  identity(): SourceIdentity | undefined {
    return this.inner.identity?.()
  }

  inspect(): SnapshotInspection {
    return { ...this.inner.inspect?.(), diskBytes: this.cache.bytesOf(this.snapshot) }
  }

  async readExact(offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    if (length === 0) return Buffer.alloc(0)
    // Blocks on disk may answer without waiting for anything that would see the signal.
    options.signal?.throwIfAborted()
    const blockBytes = this.cache.blockBytes
    const first = Math.floor(offset / blockBytes)
    const end = Math.ceil((offset + length) / blockBytes)
    const spanStart = first * blockBytes
    const spanEnd = Math.min(end * blockBytes, this.length)
    const whole = spanStart === offset && spanEnd === offset + length
    const target = whole && options.into?.length === length ? options.into : Buffer.allocUnsafe(spanEnd - spanStart)
    const slice = (block: number) => target.subarray(block * blockBytes - spanStart, Math.min((block + 1) * blockBytes, spanEnd) - spanStart)

    const found: boolean[] = []
    for (let block = first; block < end; block++) found.push(this.cache.has(this.snapshot, block))
    if (found.some(Boolean)) {
      // The memory cache's own buffer is page-aligned memory when it offers to hold it (holdInto).
      const pageAligned = target === options.into && options.holdInto !== undefined
      const checked = await this.cache.readRun(this.snapshot, first, found.map((_, index) => slice(first + index)), pageAligned)
      checked.forEach((ok, index) => (found[index] = ok))
    }
    const fetches: Array<Promise<void>> = []
    for (let index = 0; index < found.length; index++) {
      if (found[index]) continue
      let runEnd = index + 1
      while (runEnd < found.length && !found[runEnd]) runEnd++
      fetches.push(this.fetch(first + index, first + runEnd, target, spanStart, options.signal, target === options.into ? options.holdInto : undefined))
      index = runEnd - 1
    }
    this.cache.missed(found.filter((hit) => !hit).length)
    await Promise.all(fetches)
    return whole ? target : target.subarray(offset - spanStart, offset - spanStart + length)
  }

  /**
   * A read inside one block that is on disk and in the page cache, answered at once: only the
   * pieces of the block under it are read and checked (DiskCache.readNow). Undefined otherwise:
   * the caller reads as usual. The memory cache above asks this when it misses (caching-backend.ts).
   */
  readNow(offset: number, length: number): readonly Buffer[] | undefined {
    const place = this.placeInBlock(offset, length)
    const bytes = place && this.cache.readNow(this.snapshot, place.block, place.from, place.from + length)
    return bytes && [bytes]
  }

  /**
   * A read inside one block that is on disk but not in the page cache: only the pieces of the
   * block under it are read (past the page cache) and checked (DiskCache.readPieces). Undefined
   * otherwise. The memory cache asks this on a random miss (caching-backend.ts).
   */
  async readSmall(offset: number, length: number): Promise<readonly Buffer[] | undefined> {
    const place = this.placeInBlock(offset, length)
    const bytes = place && (await this.cache.readPieces(this.snapshot, place.block, place.from, place.from + length))
    return bytes && [bytes]
  }

  /** The block a read lies in and where in it the read starts; undefined when it is empty, out of range, across blocks or the backend closed. */
  private placeInBlock(offset: number, length: number): { block: number; from: number } | undefined {
    if (this.closed || length <= 0 || offset < 0 || offset + length > this.length) return undefined
    const blockBytes = this.cache.blockBytes
    const block = Math.floor(offset / blockBytes)
    if (Math.floor((offset + length - 1) / blockBytes) !== block) return undefined
    return { block, from: offset - block * blockBytes }
  }

  /**
   * Fetches blocks `[firstBlock, endBlock)` from the source into their place in `target`, and
   * stores them: written from `target` itself when the caller lets it be held (`holdTarget`,
   * ReadOptions.holdInto), else from a copy.
   */
  private async fetch(firstBlock: number, endBlock: number, target: Buffer, spanStart: number, signal: AbortSignal | undefined, holdTarget: (() => () => void) | undefined): Promise<void> {
    const blockBytes = this.cache.blockBytes
    const start = firstBlock * blockBytes - spanStart
    const into = target.subarray(start, Math.min(endBlock * blockBytes - spanStart, target.length))
    const bytes = await this.inner.readExact(start + spanStart, into.length, { ...(signal && { signal }), into })
    if (bytes !== into) bytes.copy(into)
    if (this.closed) return
    await this.cache.keep(this.snapshot, firstBlock, into, holdTarget)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.inner.close()
  }
}

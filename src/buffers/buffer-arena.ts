/** Sizes of a BufferArena; the block cache gives its bound (plus headroom) and its block size. */
export interface BufferArenaOptions {
  /** Most bytes of slabs, all together. */
  arenaBytes: number
  /** The size of a unit: buffers are whole runs of units (a length is rounded up). */
  unitBytes: number
  /** Largest single slab. Default MAX_SLAB_BYTES. */
  maxSlabBytes?: number
}

/**
 * Node's Buffers may be up to 4 GiB long. At 2 GiB a default cache (1 GiB) is a single slab, so a
 * single collection, and a slab's offsets stay well inside that limit.
 */
export const MAX_SLAB_BYTES = 2 * 1024 * 1024 * 1024

/**
 * A page: slabs start on one (see addSlab), so a buffer at a multiple of it in a slab may be
 * written to a file opened with O_DIRECT as it is (the disk cache's writes).
 */
export const PAGE_BYTES = 4096
/** WebAssembly's page: a memory's size is a whole number of them. */
const WASM_PAGE_BYTES = 64 * 1024

interface Slab {
  data: Buffer
  /** The number of its first unit: units are numbered across slabs, with a gap between two. */
  firstUnit: number
}

/**
 * The block cache's fetch buffers, carved out of a few large slabs instead of allocated one by one.
 *
 * V8 counts the bytes of every new ArrayBuffer towards its next full collection, so a cache
 * filling with fresh 4 MiB buffers makes it mark the whole heap again and again: a cold 1 GiB read
 * through the default 1 GiB cache ran 36 mark-compacts, about a fifth of the daemon's CPU. Slabs
 * come once (one collection for that read), and at 10 ms RTT over HTTP that read went from ~425 to
 * ~477 MB/s on the 2-core test machine, the daemon's CPU per GiB from 2.7 to 2.1 s.
 *
 * Slabs are SharedArrayBuffers: a worker thread can read a buffer taken from one without a copy.
 * Each is the memory of a shared WebAssembly.Memory, which V8 maps with mmap, so it starts on a
 * page: with a unit that is a multiple of PAGE_BYTES every buffer does (`pageAligned`), and the
 * disk cache writes it to its file with O_DIRECT as it is, where it copied each block into aligned
 * memory first (a plain SharedArrayBuffer is malloc'd, 16 bytes into a page: measured here, an
 * O_DIRECT write from one fails with EINVAL at every size from 1 MiB to 1 GiB). A buffer being
 * written behind its read is held (`hold`): given back meanwhile, it is reused only once released.
 *
 * A slab is split into units (the cache's block size); a buffer is a run of whole units. `take`
 * uses the shortest free run that is long enough (best fit: a scan's 4 MiB runs are not cut up by
 * 128 KiB random fetches while shorter runs are free), and `give` frees the run, merging it with
 * free neighbours. A slab is allocated when no free run fits, up to `arenaBytes` in all: pages of
 * a slab cost memory only once written, and freed pages are used again, not returned to the
 * system, so the cache's buffers hold at most `arenaBytes` of memory. When no run fits and the
 * arena is all allocated (the free units are scattered), the buffer is allocated apart and left
 * to the GC when given back.
 */
export class BufferArena {
  private readonly unitBytes: number
  private readonly maxSlabBytes: number
  private readonly arenaBytes: number
  private readonly slabs: Slab[] = []
  private slabBytes = 0
  /** Set once allocating a slab failed: no more attempts, every buffer is allocated apart. */
  private slabRefused = false
  /** The free runs of units: first unit -> length, and end (past the last) -> first unit. */
  private readonly freeByStart = new Map<number, number>()
  private readonly freeByEnd = new Map<number, number>()
  /** Buffers taken from a slab, each with its run. */
  private readonly taken = new Map<Buffer, { first: number; units: number }>()
  /** Buffers allocated apart and not given back yet (weakly: a lost one is the GC's). */
  private readonly apart = new WeakSet<Buffer>()
  private apartBytes = 0
  /** Holds on slab buffers (`hold`), and whether each was given back while held. */
  private readonly holds = new Map<Buffer, { count: number; given: boolean }>()

  constructor(options: BufferArenaOptions) {
    const { arenaBytes, unitBytes, maxSlabBytes = MAX_SLAB_BYTES } = options
    if (!Number.isSafeInteger(unitBytes) || unitBytes <= 0) throw new RangeError(`unitBytes must be a whole number above 0, not ${unitBytes}`)
    if (!Number.isSafeInteger(maxSlabBytes) || maxSlabBytes < unitBytes) throw new RangeError(`maxSlabBytes must be a whole number of at least one unit, not ${maxSlabBytes}`)
    if (!Number.isSafeInteger(arenaBytes) || arenaBytes < 0) throw new RangeError(`arenaBytes must be a whole number, not ${arenaBytes}`)
    this.unitBytes = unitBytes
    this.maxSlabBytes = maxSlabBytes - (maxSlabBytes % unitBytes)
    this.arenaBytes = arenaBytes
  }

  /** A buffer of exactly `length` bytes (more than 0) with undefined contents. */
  take(length: number): Buffer {
    if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`length must be a whole number above 0, not ${length}`)
    const units = Math.ceil(length / this.unitBytes)
    const first = this.bestFit(units) ?? this.addSlab(units)
    if (first === undefined) {
      const buffer = Buffer.allocUnsafeSlow(length)
      this.apart.add(buffer)
      this.apartBytes += length
      return buffer
    }
    const runUnits = this.freeByStart.get(first)!
    this.unlink(first, runUnits)
    if (runUnits > units) this.link(first + units, runUnits - units)
    const slab = this.slabOf(first)
    const start = (first - slab.firstUnit) * this.unitBytes
    const buffer = slab.data.subarray(start, start + length)
    this.taken.set(buffer, { first, units })
    return buffer
  }

  /** Takes back a buffer from `take` that nobody reads any more (reused once no hold is left on it). */
  give(buffer: Buffer): void {
    const held = this.holds.get(buffer)
    if (held) {
      held.given = true
      return
    }
    const run = this.taken.get(buffer)
    if (!run) {
      if (this.apart.delete(buffer)) this.apartBytes -= buffer.length
      return
    }
    this.taken.delete(buffer)
    let { first, units } = run
    const before = this.freeByEnd.get(first)
    if (before !== undefined) {
      units += first - before
      this.unlink(before, first - before)
      first = before
    }
    const after = this.freeByStart.get(first + units)
    if (after !== undefined) {
      this.unlink(first + units, after)
      units += after
    }
    this.link(first, units)
  }

  /** Whether `buffer`, from `take`, is in a slab and starts on a page (PAGE_BYTES): false for one allocated apart. */
  pageAligned(buffer: Buffer): boolean {
    return this.unitBytes % PAGE_BYTES === 0 && this.taken.has(buffer)
  }

  /**
   * Keeps `buffer`, a slab buffer from `take` not yet given back, from being reused until the
   * function returned is called (once; later calls do nothing): a `give` meanwhile takes effect
   * then. Holds nest.
   */
  hold(buffer: Buffer): () => void {
    if (!this.taken.has(buffer)) throw new RangeError('only a slab buffer taken and not given back can be held')
    const held = this.holds.get(buffer) ?? { count: 0, given: false }
    held.count++
    this.holds.set(buffer, held)
    let released = false
    return () => {
      if (released) return
      released = true
      if (--held.count > 0) return
      this.holds.delete(buffer)
      if (held.given) this.give(buffer)
    }
  }

  /** Bytes of buffers allocated apart (no free run was long enough) and not given back. */
  get bytesApart(): number {
    return this.apartBytes
  }

  /** Bytes of slabs allocated. */
  get bytesInSlabs(): number {
    return this.slabBytes
  }

  /** The first unit of the shortest free run of at least `units`. */
  private bestFit(units: number): number | undefined {
    let best: number | undefined
    let bestUnits = Infinity
    for (const [first, length] of this.freeByStart) {
      if (length >= units && length < bestUnits) {
        best = first
        bestUnits = length
        if (length === units) break
      }
    }
    return best
  }

  /** A new slab, all free, if the arena has room for one of at least `units`: its first unit. */
  private addSlab(units: number): number | undefined {
    const bytes = Math.min(this.maxSlabBytes, this.arenaBytes - this.slabBytes)
    const slabUnits = Math.floor(bytes / this.unitBytes)
    if (slabUnits < units || this.slabRefused) return undefined
    let data: Buffer
    try {
      // Shared memory, so the manifest's hash threads read fetched blocks where they are
      // (src/manifest/hash-pool.ts) instead of a copy of each; page-aligned (see the class
      // comment). Its pages are the kernel's zero pages until written, as a malloc'd slab's are.
      const pages = Math.ceil((slabUnits * this.unitBytes) / WASM_PAGE_BYTES)
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true })
      data = Buffer.from(memory.buffer, 0, slabUnits * this.unitBytes)
    } catch {
      // A host that commits memory strictly (vm.overcommit_memory=2) may refuse the whole bound
      // at once: buffers are then allocated apart, one fetch at a time, as they were before slabs.
      this.slabRefused = true
      return undefined
    }
    const last = this.slabs.at(-1)
    // One unused number between slabs: runs of two slabs never touch, so never merge.
    const firstUnit = last ? last.firstUnit + last.data.length / this.unitBytes + 1 : 0
    this.slabs.push({ data, firstUnit })
    this.slabBytes += slabUnits * this.unitBytes
    this.link(firstUnit, slabUnits)
    return firstUnit
  }

  private slabOf(unit: number): Slab {
    // Few slabs (one for caches up to 2 GiB): a scan from the newest is short.
    let i = this.slabs.length - 1
    while (this.slabs[i]!.firstUnit > unit) i--
    return this.slabs[i]!
  }

  private link(first: number, units: number): void {
    this.freeByStart.set(first, units)
    this.freeByEnd.set(first + units, first)
  }

  private unlink(first: number, units: number): void {
    this.freeByStart.delete(first)
    this.freeByEnd.delete(first + units)
  }
}

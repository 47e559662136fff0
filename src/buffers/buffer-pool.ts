/**
 * Read buffers kept for the next read of the same size once their reader is done with them: the
 * local file backend's, which hands each kernel read a recycled buffer. Reading at GB/s through
 * fresh buffers costs more CPU than the reads: every new buffer is new pages for the kernel to
 * fault in, and the churn of external memory makes V8 collect garbage a few times per 100 MB.
 * The kernel asks for a few sizes over and over, so a free list per exact size serves nearly
 * every read. (The block cache's fetch buffers come from buffer-arena.ts instead.)
 *
 * Idle buffers are capped (`maxIdleBytes`). Past the cap the oldest idle buffers are left to the
 * GC, whatever their size: the sizes in use now are the ones given back last, and a pool clogged
 * with odd sizes would drop every buffer of the size in use. When the size asked for changes, a
 * new size is cut from a larger idle buffer rather than allocated: the pieces share its memory,
 * which keeps being recycled, instead of new memory arriving while the old waits for the GC.
 */
export class BufferPool {
  private readonly idle = new Map<number, Buffer[]>()
  /** Every idle buffer, oldest first. */
  private readonly age = new Set<Buffer>()
  private idleBytes = 0

  constructor(private readonly maxIdleBytes: number) {}

  /** A buffer of exactly `length` bytes with undefined contents, reused when one is idle. */
  take(length: number): Buffer {
    const reused = this.idle.get(length)?.at(-1)
    if (reused) {
      this.remove(reused)
      return reused
    }
    return this.cut(length) ?? Buffer.allocUnsafeSlow(length)
  }

  /** Takes back a buffer nobody reads any more. */
  give(buffer: Buffer): void {
    if (buffer.length > this.maxIdleBytes) return
    while (this.idleBytes + buffer.length > this.maxIdleBytes) this.dropOldest()
    this.keep(buffer)
  }

  private keep(buffer: Buffer): void {
    const list = this.idle.get(buffer.length)
    if (list) list.push(buffer)
    else this.idle.set(buffer.length, [buffer])
    this.age.add(buffer)
    this.idleBytes += buffer.length
  }

  /** Bytes held idle now. */
  get idleSize(): number {
    return this.idleBytes
  }

  /** Cuts `length` bytes off the largest idle buffer longer than that; the rest stays idle. */
  private cut(length: number): Buffer | undefined {
    let largest: Buffer | undefined
    for (const buffer of this.age) if (buffer.length > length && buffer.length > (largest?.length ?? 0)) largest = buffer
    if (!largest) return undefined
    this.remove(largest)
    this.keep(largest.subarray(length))
    return largest.subarray(0, length)
  }

  private dropOldest(): void {
    this.remove(this.age.values().next().value!)
  }

  private remove(buffer: Buffer): void {
    this.age.delete(buffer)
    const list = this.idle.get(buffer.length)!
    list.splice(list.indexOf(buffer), 1)
    if (list.length === 0) this.idle.delete(buffer.length)
    this.idleBytes -= buffer.length
  }
}

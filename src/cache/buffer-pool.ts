/**
 * Buffers of fetched ranges, kept for the next fetch of the same size once the cache lets them
 * go. Reading a remote image at hundreds of MB/s through fresh 4 MiB buffers costs more CPU than
 * the HTTP parsing: every new buffer is new pages for the kernel to fault in, and the churn of
 * external memory makes V8 collect garbage a few times per 100 MB. Sequential readahead asks for
 * the same few sizes over and over, so a free list per exact size serves nearly every fetch.
 * Idle buffers are capped (`maxIdleBytes`); past that a given-back buffer is left to the GC.
 */
export class BufferPool {
  private readonly idle = new Map<number, Buffer[]>()
  private idleBytes = 0

  constructor(private readonly maxIdleBytes: number) {}

  /** A buffer of exactly `length` bytes with undefined contents, reused when one is idle. */
  take(length: number): Buffer {
    const reused = this.idle.get(length)?.pop()
    if (!reused) return Buffer.allocUnsafeSlow(length)
    this.idleBytes -= length
    return reused
  }

  /** Takes back a buffer nobody reads any more. */
  give(buffer: Buffer): void {
    if (this.idleBytes + buffer.length > this.maxIdleBytes) return
    const list = this.idle.get(buffer.length)
    if (list) list.push(buffer)
    else this.idle.set(buffer.length, [buffer])
    this.idleBytes += buffer.length
  }

  /** Bytes held idle now. */
  get idleSize(): number {
    return this.idleBytes
  }
}

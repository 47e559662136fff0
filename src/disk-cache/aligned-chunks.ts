/** O_DIRECT's alignment: of the memory, the file offset and the length (the largest logical block size in use). */
export const DIRECT_ALIGN = 4096
/** WebAssembly's page: a memory's size is a whole number of them. */
const WASM_PAGE = 64 * 1024

/**
 * A fixed set of equal chunks of page-aligned memory, for the disk cache's copies of blocks on
 * their way to the disk: an O_DIRECT write needs its memory aligned to the disk's logical block
 * (DIRECT_ALIGN), which a Node Buffer does not promise (a large one is a malloc'd block 16 bytes
 * into a page). A WebAssembly.Memory is one mapping of whole pages (V8 maps it with mmap, so its
 * start is page-aligned), and the chunks are cut from it at multiples of `chunkBytes`: when that is
 * a multiple of DIRECT_ALIGN (every block size the config allows, 4 KiB to 4 MiB in powers of
 * two), every chunk is aligned too. No native addon is needed.
 *
 * The memory is mapped at the first `take` (a daemon without remote reads never pays it) and kept
 * for the life of the process: `count × chunkBytes` bytes, recycled, never garbage collected. A
 * chunk is written once per use, so it costs its page faults once, not per block.
 */
export class AlignedChunks {
  private memory: WebAssembly.Memory | undefined
  private readonly free: Buffer[] = []

  constructor(
    readonly chunkBytes: number,
    readonly count: number,
  ) {}

  /** A free chunk (`chunkBytes` long, contents undefined), or undefined when all are in use. */
  take(): Buffer | undefined {
    if (!this.memory) {
      this.memory = new WebAssembly.Memory({ initial: Math.ceil((this.chunkBytes * this.count) / WASM_PAGE) })
      const buffer = this.memory.buffer
      // Last first, so that pop() hands out chunks in address order.
      for (let index = this.count - 1; index >= 0; index--) this.free.push(Buffer.from(buffer, index * this.chunkBytes, this.chunkBytes))
    }
    return this.free.pop()
  }

  /** Gives back a chunk from `take` (whole: not a piece of it). */
  give(chunk: Buffer): void {
    this.free.push(chunk)
  }

  /** Chunks free now. */
  get available(): number {
    return this.memory ? this.free.length : this.count
  }
}

import mmap from 'mmap-io'
import { closeSync, constants, fdatasync, ftruncateSync, openSync, read, readSync, write } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isResident, WINDOW_BYTES } from '../backend/mmap-backend.js'

/** The cache directory's one data file. */
export const DATA_FILE = 'blocks.dat'

const pread = promisify(read)
const pwrite = promisify(write)
const datasync = promisify(fdatasync)

/**
 * Reads up to this size whose pages are all in the page cache are made on the JS thread. Such a
 * pread of a 128 KiB block costs ~15 µs here; sending it to libuv's thread pool and back costs
 * 25-50 µs more of wake-ups on a loaded host (measured at load 14), on every miss of the memory
 * cache a random reader makes. Two blocks at most: larger reads (a stream's readahead) stay on
 * the pool, where the JS thread answers other reads meanwhile.
 */
export const SYNC_READ_MAX_BYTES = 256 * 1024

/**
 * The disk cache's data: one file of fixed-size slots, a block per slot, at `slot × slotBytes`;
 * the index says which block is in which slot. An evicted block's slot is written over by a later
 * block, so the file never grows past the bound (its slots) and shrinks when the bound does.
 *
 * Chosen over one file per block, measured here on ext4: creating, writing and closing a 128 KiB
 * file cost ~1.5 ms of system CPU per block, against ~70 µs to pwrite the same block into one open
 * file (a 1 GiB fill: 12 CPU-seconds against 0.6), and a read saves its open and close. One
 * fdatasync then makes a whole batch durable. Over one sparse file per snapshot: freeing space
 * there needs fallocate(PUNCH_HOLE), a native call Node does not have; reusing slots needs none.
 */
export class SlotFile {
  private readonly fd: number
  readonly path: string
  /**
   * Read-only maps of the file, `windowBytes` each, made on first use and never touched: only
   * mincore looks at them (is a range in the page cache?), so they add nothing to the RSS and a
   * truncation under them is harmless. A map may reach past the end of the file. null: it could
   * not be made.
   */
  private windows: Array<Buffer | null | undefined> = []

  constructor(dir: string, readonly slotBytes: number, private readonly windowBytes = WINDOW_BYTES) {
    this.path = join(dir, DATA_FILE)
    this.fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o600)
  }

  /** Writes `data` (at most a slot) into slot `slot`. */
  async write(slot: number, data: Buffer): Promise<void> {
    const at = slot * this.slotBytes
    for (let done = 0; done < data.length; ) done += (await pwrite(this.fd, data, done, data.length - done, at + done)).bytesWritten
  }

  /** Reads slot `slot` into `into`: the bytes read, fewer when the file ends first (truncated). */
  async read(slot: number, into: Buffer): Promise<number> {
    const at = slot * this.slotBytes
    // In the page cache: no I/O to wait for, so no thread pool (SYNC_READ_MAX_BYTES). A short
    // read (the file truncated) goes on below, which finds the end.
    let done = (into.length <= SYNC_READ_MAX_BYTES && this.readNow(slot, 0, into)) || 0
    while (done < into.length) {
      const { bytesRead } = await pread(this.fd, into, done, into.length - done, at + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done
  }

  /**
   * Reads `into.length` bytes from `offset` in slot `slot` at once, on the JS thread, if they are
   * in the page cache: the bytes read (fewer when the file ends first), or undefined when they are
   * not cached (`read` them). A failing disk's error is thrown.
   */
  readNow(slot: number, offset: number, into: Buffer): number | undefined {
    const at = slot * this.slotBytes + offset
    return this.resident(at, into.length) ? readSync(this.fd, into, 0, into.length, at) : undefined
  }

  /** Whether every page of `[at, at + length)` is in the page cache now (a read of it cannot block on the disk). */
  private resident(at: number, length: number): boolean {
    const index = Math.floor(at / this.windowBytes)
    // Across two maps: left to the thread pool, as rare as it is (one run in a window's worth).
    if (Math.floor((at + length - 1) / this.windowBytes) !== index) return false
    let window = this.windows[index]
    if (window === undefined) {
      try {
        window = mmap.map(this.windowBytes, mmap.PROT_READ, mmap.MAP_SHARED, this.fd, index * this.windowBytes)
      } catch {
        // A file that cannot be mapped (a device, no address space left): read on the pool, as before.
        window = null
      }
      this.windows[index] = window
    }
    return window !== null && isResident({ window, start: at - index * this.windowBytes, length })
  }

  /** fdatasync: every write that resolved before it is durable once this resolves. */
  async sync(): Promise<void> {
    await datasync(this.fd)
  }

  /** Cuts the file to `slots` slots (a lower bound, or slots at the end no longer used). */
  truncate(slots: number): void {
    ftruncateSync(this.fd, slots * this.slotBytes)
  }

  close(): void {
    // Unmapped when collected (mmap-io's finaliser).
    this.windows = []
    closeSync(this.fd)
  }
}

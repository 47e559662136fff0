import mmap from 'mmap-io'
import { closeSync, constants, fdatasync, ftruncateSync, openSync, read, readSync, writev } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isResident, WINDOW_BYTES } from '../backend/mmap-backend.js'
import { AlignedChunks, DIRECT_ALIGN } from './aligned-chunks.js'

/** The cache directory's one data file. */
export const DATA_FILE = 'blocks.dat'

const pread = promisify(read)
const pwritev = promisify(writev)
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
 * Direct reads (see SlotFile) go through aligned chunks of this size, a longer read in several,
 * one after another: 1 MiB per pread keeps the disk streaming (measured here, a 1 GiB re-read:
 * ~1 GB/s at 0.4 CPU-s/GiB against ~200 MB/s at 2.2 through the page cache, one block per pread).
 */
export const DIRECT_READ_BYTES = 1024 * 1024
/** Chunks of aligned read memory (4 MiB in all): libuv's four threads each read into one; more reads wait. */
const DIRECT_READ_CHUNKS = 4

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
 *
 * Writes go through a second descriptor opened with O_DIRECT, from page-aligned memory
 * (the memory cache's, or aligned-chunks.ts), a run of consecutive slots per pwritev: measured here (ext4 on virtio, 1 GiB
 * in 4 MiB writes, load 8), 0.08-0.09 s of system CPU against 0.86 s for the same writes through
 * the page cache with no sync and 2.5 s with an fdatasync per 64 MiB: the kernel neither copies
 * the bytes nor writes back dirty pages later, and the cache's blocks do not push the source's or
 * the guests' pages out of the page cache (the kernel drops the cached pages a direct write covers,
 * and a page it failed to drop would fail its check when read, like any damaged block). Where
 * O_DIRECT is refused (ramfs, some FUSE and network file systems: EINVAL; tmpfs takes it since
 * Linux 6.6), writes use the buffered descriptor, as they do after a direct write fails with
 * EINVAL (a disk whose logical block is larger than DIRECT_ALIGN). `sync` still follows direct
 * writes: it flushes the device's write cache and keeps the file's new size.
 *
 * Reads of blocks in the page cache (mincore says so) are made there, on the JS thread (`readNow`,
 * SYNC_READ_MAX_BYTES). The others, which after a restart are all of them (direct writes left
 * nothing in the page cache), are read through a third descriptor opened O_RDONLY|O_DIRECT: into
 * the caller's memory where it is page-aligned (the memory cache's arena), else into aligned
 * chunks of DIRECT_READ_BYTES, and copied out: a buffered pread of one block per call ran at
 * ~155-210 MB/s and 2.2 CPU-s/GiB here (the kernel's copy into the page cache, its readahead's
 * bookkeeping, a page cache that grows and must be reclaimed), a direct one at ~1 GB/s and 0.4
 * (a prototype; the bench's restart re-read: 2.9 CPU-s/GiB of the whole daemon before, 1.3 after).
 * The kernel writes back dirty pages of a range before a direct read of it, so a block written
 * through the page cache (`write`) reads back right. Where O_DIRECT is refused (EINVAL, as for
 * writes), reads stay buffered.
 */
export class SlotFile {
  private readonly fd: number
  private writeFd: number
  /** O_RDONLY|O_DIRECT, or `fd` where O_DIRECT is refused. */
  private readonly readFd: number
  private readsRefused = false
  private readonly readChunks = new AlignedChunks(DIRECT_READ_BYTES, DIRECT_READ_CHUNKS)
  /** Direct reads waiting for a chunk. */
  private readonly chunkWaiters: Array<() => void> = []
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
    this.writeFd = this.fd
    this.readFd = this.fd
    if (slotBytes % DIRECT_ALIGN !== 0) return
    try {
      this.writeFd = openSync(this.path, constants.O_WRONLY | constants.O_DIRECT)
      this.readFd = openSync(this.path, constants.O_RDONLY | constants.O_DIRECT)
    } catch {
      // EINVAL where the file system has no O_DIRECT: buffered writes and reads (see above).
    }
  }

  /** Whether reads of blocks not in the page cache bypass it (O_DIRECT). */
  get directReads(): boolean {
    return this.readFd !== this.fd && !this.readsRefused
  }

  /** Whether writes bypass the page cache (O_DIRECT). */
  get direct(): boolean {
    return this.writeFd !== this.fd
  }

  /**
   * Writes `data` (at most a slot) into slot `slot` through the page cache, whatever `direct` says:
   * a block then readable from memory at once (tests and tools; the cache writes with `writeRun`).
   */
  async write(slot: number, data: Buffer): Promise<void> {
    await writeAll(this.fd, [data], slot * this.slotBytes)
  }

  /**
   * Writes `blocks` into consecutive slots from `slot`, with one pwritev: every block but the last
   * is a whole slot long; each starts on a page of memory with at least DIRECT_ALIGN bytes after
   * it (a chunk of aligned-chunks.ts, or a unit of the memory cache's arena), so the last, when
   * short (the image's end), is written rounded up to DIRECT_ALIGN with what follows it there:
   * bytes past its length in its slot, which nothing reads.
   */
  async writeRun(slot: number, blocks: readonly Buffer[]): Promise<void> {
    const direct = this.direct
    const last = blocks.length - 1
    const views = direct ? blocks.map((block, index) => (index === last ? Buffer.from(block.buffer, block.byteOffset, roundUp(block.length)) : block)) : blocks
    try {
      await writeAll(this.writeFd, views, slot * this.slotBytes)
    } catch (err) {
      if (!direct || (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
      // O_DIRECT refused at write time (see above): buffered from now on.
      closeSync(this.writeFd)
      this.writeFd = this.fd
      await writeAll(this.fd, blocks, slot * this.slotBytes)
    }
  }

  /**
   * Reads slot `slot` from `offset` in it (0: its start) into `into`: the bytes read, fewer when
   * the file ends first (truncated). Direct when `offset` is a multiple of DIRECT_ALIGN: straight
   * into `into` when `pageAligned` says its ArrayBuffer starts on a page (the memory cache's arena,
   * ReadOptions.holdInto) and `into` starts and ends at multiples of DIRECT_ALIGN in it, else
   * through an aligned chunk and a copy.
   */
  async read(slot: number, into: Buffer, offset = 0, pageAligned = false): Promise<number> {
    const at = slot * this.slotBytes + offset
    // In the page cache: no I/O to wait for, so no thread pool (SYNC_READ_MAX_BYTES). Otherwise
    // direct, where it can be. A short read (the file truncated) goes on below, which finds the end.
    let done = (into.length <= SYNC_READ_MAX_BYTES && this.readNow(slot, offset, into)) || 0
    if (done === 0 && this.directReads && offset % DIRECT_ALIGN === 0) {
      try {
        const inPlace = pageAligned && into.byteOffset % DIRECT_ALIGN === 0 && into.length % DIRECT_ALIGN === 0
        done = inPlace ? await this.readDirectInPlace(at, into) : await this.readDirect(at, into)
        // A disk whose logical block is larger than DIRECT_ALIGN (or failing): none here to test with.
        /* c8 ignore start */
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
        // Refused at read time (see writeRun): buffered from now on. The descriptor stays open until
        // `close`, as other reads may be using it.
        this.readsRefused = true
      }
      /* c8 ignore stop */
    }
    while (done < into.length) {
      const { bytesRead } = await pread(this.fd, into, done, into.length - done, at + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done
  }

  /**
   * Reads `into` from `at` (aligned) through the O_DIRECT descriptor, a chunk at a
   * time, each read rounded up to DIRECT_ALIGN and copied out: the bytes read, fewer at the file's end.
   */
  private async readDirect(at: number, into: Buffer): Promise<number> {
    let done = 0
    while (done < into.length) {
      const chunk = this.readChunks.take() ?? (await this.nextChunk())
      const want = Math.min(into.length - done, DIRECT_READ_BYTES)
      let bytesRead: number
      try {
        ;({ bytesRead } = await pread(this.readFd, chunk, 0, roundUp(want), at + done))
        chunk.copy(into, done, 0, Math.min(bytesRead, want))
      } finally {
        this.giveChunk(chunk)
      }
      done += Math.min(bytesRead, want)
      if (bytesRead < want) break
    }
    return done
  }

  /**
   * Reads `into` (page-aligned memory, a multiple of DIRECT_ALIGN long) from `at` (aligned) through
   * the O_DIRECT descriptor, in place: the copy out of a chunk cost the JS thread more than
   * checking the blocks (measured here, a 1 GiB re-read after a restart: 0.35-0.39 s per GiB in
   * Buffer copies against 0.19 for the checks; in place, the daemon's CPU per GiB fell from
   * 1.38-1.59 s to 1.09-1.22 and the rate rose from 760-850 to 910-1,070 MB/s).
   * The bytes read, fewer at the file's end.
   */
  private async readDirectInPlace(at: number, into: Buffer): Promise<number> {
    let done = 0
    while (done < into.length) {
      const { bytesRead } = await pread(this.readFd, into, done, into.length - done, at + done)
      done += bytesRead
      // The file's end (a read past it returns 0, one into it fewer bytes, unaligned from there).
      if (bytesRead === 0 || bytesRead % DIRECT_ALIGN !== 0) break
    }
    return done
  }

  private nextChunk(): Promise<Buffer> {
    return new Promise((resolve) => this.chunkWaiters.push(() => resolve(this.readChunks.take()!)))
  }

  private giveChunk(chunk: Buffer): void {
    this.readChunks.give(chunk)
    this.chunkWaiters.shift()?.()
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

  /** fdatasync: every write that resolved before it is durable once this resolves (the device's cache flushed, the file's size kept). */
  async sync(): Promise<void> {
    await datasync(this.writeFd)
  }

  /** Cuts the file to `slots` slots (a lower bound, or slots at the end no longer used). */
  truncate(slots: number): void {
    ftruncateSync(this.fd, slots * this.slotBytes)
  }

  close(): void {
    // Unmapped when collected (mmap-io's finaliser).
    this.windows = []
    closeSync(this.fd)
    if (this.writeFd !== this.fd) closeSync(this.writeFd)
    if (this.readFd !== this.fd) closeSync(this.readFd)
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / DIRECT_ALIGN) * DIRECT_ALIGN
}

/** pwritev until every byte is written (a short write continues where it stopped). */
async function writeAll(fd: number, buffers: readonly Buffer[], position: number): Promise<void> {
  let rest = [...buffers]
  for (let at = position; rest.length > 0; ) {
    let { bytesWritten } = await pwritev(fd, rest, at)
    at += bytesWritten
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length
    if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten)
  }
}

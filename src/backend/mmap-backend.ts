import mmap from 'mmap-io'
import type { StorageBackend } from './storage-backend.js'
import { SourceReadError } from './errors.js'
import { LocalBackend, openPinned, type LocalSourceOptions, type PinnedSource } from './local-source.js'
import { readFully } from './file-backend.js'

/**
 * Size of one mapping. Node caps a Buffer at 4 GiB, so a large image is mapped as a row of
 * windows; 1 GiB keeps each far under the cap while a 1 TiB image needs only 1024 mappings.
 * Multiple of every page size, so each window starts page-aligned as mmap requires.
 */
export const WINDOW_BYTES = 2 ** 30

/**
 * Serves reads from a read-only shared mapping of the file, without a system call per read.
 *
 * Touching a mapped page that is not in the page cache blocks the JS thread on disk I/O, and that
 * thread answers every FUSE request. So before copying, `mincore` asks whether the range is
 * resident: if it is, the bytes come straight from the map (a view, no copy); if not, the read
 * goes to `pread` on libuv's thread pool, which also pulls those pages into the cache for next time.
 * A cold file therefore costs what FileBackend costs, never a stalled daemon.
 *
 * Windows are mapped on first use and released when the backend is garbage-collected (mmap-io
 * unmaps in the Buffer's finaliser). The source must not be truncated while mapped: touching a
 * page past the new end raises SIGBUS; snapshots are immutable, and this is the price of mmap.
 */
export class MmapBackend extends LocalBackend implements StorageBackend {
  private readonly windows: Array<Buffer | undefined>

  private constructor(source: PinnedSource) {
    super(source)
    this.windows = new Array(Math.ceil(this.length / WINDOW_BYTES))
  }

  /** Opens `path` within `options.timeoutMs` (open-source.ts), pinned to what it is now (source-pin.ts). */
  static async open(path: string, options?: LocalSourceOptions): Promise<MmapBackend> {
    return new MmapBackend(await openPinned(path, options))
  }

  async readExact(offset: number, length: number): Promise<Buffer> {
    await this.before(offset, length)
    const pieces = [...this.pieces(offset, length)]
    if (pieces.length > 0 && pieces.every(isResident)) {
      return pieces.length === 1 ? viewOf(pieces[0]!) : copyOf(pieces, length)
    }
    const target = Buffer.allocUnsafe(length)
    await readFully(this.handle, target, offset)
    await this.after()
    return target
  }

  override async close(): Promise<void> {
    this.windows.fill(undefined)
    await super.close()
  }

  /** The parts of `[offset, offset + length)` that fall in each window, in order. */
  private *pieces(offset: number, length: number): Generator<Piece> {
    let position = offset
    const end = offset + length
    while (position < end) {
      const index = Math.floor(position / WINDOW_BYTES)
      const start = position - index * WINDOW_BYTES
      const pieceLength = Math.min(end - position, WINDOW_BYTES - start)
      yield { window: this.window(index, offset, length), start, length: pieceLength }
      position += pieceLength
    }
  }

  private window(index: number, offset: number, length: number): Buffer {
    const existing = this.windows[index]
    if (existing) return existing
    const windowOffset = index * WINDOW_BYTES
    const size = Math.min(WINDOW_BYTES, this.length - windowOffset)
    try {
      const mapped = mmap.map(size, mmap.PROT_READ, mmap.MAP_SHARED, this.handle.fd, windowOffset)
      this.windows[index] = mapped
      return mapped
    } catch (cause) {
      throw new SourceReadError(offset, length, cause)
    }
  }
}

/** Page size from the binding; mincore wants page-aligned addresses. */
const PAGE_BYTES = mmap.PAGESIZE

/** A stretch of one mapped window. */
interface Piece {
  window: Buffer
  start: number
  length: number
}

/** True when every page under the piece is in the page cache, so touching it cannot block on I/O. */
function isResident({ window, start, length }: Piece): boolean {
  const alignedStart = start - (start % PAGE_BYTES)
  const [pagesNotResident] = mmap.incore(window.subarray(alignedStart, start + length))
  return pagesNotResident === 0
}

function viewOf({ window, start, length }: Piece): Buffer {
  return window.subarray(start, start + length)
}

function copyOf(pieces: Piece[], length: number): Buffer {
  const target = Buffer.allocUnsafe(length)
  let done = 0
  for (const { window, start, length: pieceLength } of pieces) {
    done += window.copy(target, done, start, start + pieceLength)
  }
  return target
}

import type { FileHandle } from 'node:fs/promises'
import type { StorageBackend } from './storage-backend.js'
import { PartialReadError, SourceReadError } from './errors.js'
import { LocalBackend, openPinned, type LocalSourceOptions } from './local-source.js'
import { BufferPool } from '../buffers/buffer-pool.js'

/**
 * Idle read buffers kept for reuse: four of the kernel's largest reads (1 MiB), more than one
 * sequential reader has in flight with the mount's 1 MiB readahead (kernel-readahead.ts).
 */
const IDLE_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * Positional reads (`pread`) on one descriptor. Each read runs on libuv's thread pool, so many
 * are in flight at once; `bin/snapmount` sizes that pool, since FUSE keeps many reads outstanding.
 */
export class FileBackend extends LocalBackend implements StorageBackend {
  private readonly pool = new BufferPool(IDLE_BUFFER_BYTES)

  /** Opens `path` within `options.timeoutMs` (open-source.ts), pinned to what it is now (source-pin.ts). */
  static async open(path: string, options?: LocalSourceOptions): Promise<FileBackend> {
    return new FileBackend(await openPinned(path, options))
  }

  async readExact(offset: number, length: number): Promise<Buffer> {
    await this.before(offset, length)
    const target = Buffer.allocUnsafe(length)
    await readFully(this.handle, target, offset)
    await this.after()
    return target
  }

  /**
   * The same bytes in a recycled buffer, valid until the caller yields to the event loop (the
   * FUSE layer copies them at once). A fresh buffer per kernel read costs more CPU than the read
   * itself: new pages to fault in, and garbage for V8 to collect.
   */
  async readPieces(offset: number, length: number): Promise<Buffer[]> {
    await this.before(offset, length)
    const target = this.pool.take(length)
    try {
      await readFully(this.handle, target, offset)
      await this.after()
    } finally {
      // After the caller's copy, which happens before it yields; on failure nobody holds it.
      setImmediate(() => this.pool.give(target))
    }
    return [target]
  }
}

/**
 * Fills `target` from `position`. pread may legally return fewer bytes than asked (signals, huge
 * requests), so it loops; a zero-byte answer means the file is shorter than it was at open.
 */
export async function readFully(handle: FileHandle, target: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < target.length) {
    let bytesRead: number
    try {
      ;({ bytesRead } = await handle.read(target, done, target.length - done, position + done))
    } catch (cause) {
      throw new SourceReadError(position, target.length, cause)
    }
    if (bytesRead === 0) throw new PartialReadError(position, target.length, done)
    done += bytesRead
  }
}

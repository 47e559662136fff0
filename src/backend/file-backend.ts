import type { FileHandle } from 'node:fs/promises'
import type { StorageBackend } from './storage-backend.js'
import { PartialReadError, SourceReadError } from './errors.js'
import { LocalBackend, openPinned, type LocalSourceOptions } from './local-source.js'

/**
 * Positional reads (`pread`) on one descriptor. Each read runs on libuv's thread pool, so many
 * are in flight at once; `bin/snapmount` sizes that pool, since FUSE keeps many reads outstanding.
 */
export class FileBackend extends LocalBackend implements StorageBackend {
  /** Opens `path` within `options.timeoutMs` (open-source.ts), pinned to what it is now (source-pin.ts). */
  static async open(path: string, options?: LocalSourceOptions): Promise<FileBackend> {
    return new FileBackend(await openPinned(path, options))
  }

  protected fill(offset: number, target: Buffer): Promise<void> {
    return readFully(this.handle, target, offset)
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

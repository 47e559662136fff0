import type { ReadOptions, StorageBackend } from '../storage-backend.js'
import { BackendClosedError } from '../errors.js'
import { assertInRange } from '../range.js'
import { remoteRetrying, type RemoteRetryOptions, type Retrying } from './retrying.js'

/**
 * What an HTTP and an S3 snapshot have in common: an object whose size and mtime are learnt at
 * open and pinned from then on, every read checked against them before a request goes out, and
 * requests run by the one retry loop. Subclasses learn the object and make the ranged request.
 */
export abstract class RemoteBackend implements StorageBackend {
  protected closed = false
  /** Learnt at open, then fixed: a read past it is refused here, a change on the server fails reads. */
  protected size = 0
  protected modified: Date
  /** Runs a request with retries, within the read's deadline (../remote/retrying.ts). */
  protected readonly retrying: Retrying

  protected constructor(options: RemoteRetryOptions, modified: Date) {
    this.retrying = remoteRetrying(options)
    this.modified = modified
  }

  get length(): number {
    return this.size
  }

  get mtime(): Date {
    return this.modified
  }

  async readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.size)
    if (length === 0) return Buffer.alloc(0)
    return this.readRange(offset, length, options)
  }

  /** The pinned version's bytes `[offset, offset + length)`, `length` above 0 and inside the object. */
  protected abstract readRange(offset: number, length: number, options: ReadOptions | undefined): Promise<Buffer>

  abstract close(): Promise<void>
}

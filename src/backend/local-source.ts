import type { FileHandle } from 'node:fs/promises'
import type { ReadOptions, SnapshotInspection } from './storage-backend.js'
import { BackendClosedError } from './errors.js'
import { assertInRange } from './range.js'
import { openLocalSource } from './open-source.js'
import { SourcePin, type OnSourceChanged } from './source-pin.js'
import { BufferPool } from '../buffers/buffer-pool.js'

/**
 * Idle read buffers kept for reuse: four of the kernel's largest reads (1 MiB), more than one
 * sequential reader has in flight with the mount's 1 MiB readahead (kernel-readahead.ts).
 */
const IDLE_BUFFER_BYTES = 4 * 1024 * 1024

/** How a local source is opened and watched. */
export interface LocalSourceOptions {
  /** How long opening may take before it is refused as hung (open-source.ts). */
  timeoutMs?: number | undefined
  /** Told once when the source changed since it was opened (source-pin.ts): its reads fail from then on. */
  onChanged?: OnSourceChanged | undefined
}

/** An opened local source: what the file and mmap backends share. */
export interface PinnedSource {
  handle: FileHandle
  path: string
  length: number
  mtime: Date
  pin: SourcePin
}

/** Opens `path` (open-source.ts) and pins it to what it is now (source-pin.ts). */
export async function openPinned(path: string, options: LocalSourceOptions = {}): Promise<PinnedSource> {
  const { handle, stats } = await openLocalSource(path, options.timeoutMs)
  return { handle, path, length: Number(stats.size), mtime: stats.mtime, pin: new SourcePin(handle, path, stats, options.onChanged) }
}

/**
 * The part of a local backend that is about its source rather than how it reads it: the
 * descriptor, the pin that fails reads once the file changed, recycled read buffers, and what
 * `check` and `status` show. Subclasses only `fill` a buffer from the source.
 */
export abstract class LocalBackend {
  private closed = false
  protected readonly handle: FileHandle
  readonly length: number
  readonly mtime: Date
  private readonly path: string
  private readonly pin: SourcePin
  private readonly pool = new BufferPool(IDLE_BUFFER_BYTES)

  constructor(source: PinnedSource) {
    ;({ handle: this.handle, length: this.length, mtime: this.mtime, path: this.path, pin: this.pin } = source)
  }

  /** A pread or a copy from the map cannot be stopped: `signal` is checked before it starts. */
  async readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    this.assertReadable(offset, length, options)
    const target = Buffer.allocUnsafe(length)
    await this.read(offset, target)
    return target
  }

  /**
   * The same bytes in a recycled buffer, valid until the caller yields to the event loop (the
   * FUSE layer copies them at once). A fresh buffer per kernel read costs more CPU than the read
   * itself: new pages to fault in, and garbage for V8 to collect.
   */
  async readPieces(offset: number, length: number, options?: ReadOptions): Promise<Buffer[]> {
    this.assertReadable(offset, length, options)
    const target = this.pool.take(length)
    try {
      await this.read(offset, target)
    } finally {
      // After the caller's copy, which happens before it yields; on failure nobody holds it.
      setImmediate(() => this.pool.give(target))
    }
    return [target]
  }

  /** The path, and what changed once it did. */
  describe(): string {
    const change = this.pin.change
    return change ? `${this.path} (changed since it was opened: ${change.detail}; reads fail until a reload)` : this.path
  }

  inspect(): SnapshotInspection {
    const change = this.pin.change
    return change ? { sourceChanged: change.detail } : {}
  }

  /** A reader opened the snapshot: look at the source now; its first read waits for the answer. */
  revalidate(): void {
    void this.pin.check()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.pin.stop()
    await this.handle.close()
  }

  /** Before a buffer is taken for a read: open, and asked for a range inside the source. */
  private assertReadable(offset: number, length: number, options: ReadOptions | undefined): void {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    options?.signal?.throwIfAborted()
  }

  /** Fills `target` with the source's bytes from `offset`, or rejects; the pin is checked around it. */
  protected abstract fill(offset: number, target: Buffer): Promise<void>

  /**
   * Reads into `target` between two looks at the pin: before, so a change already known fails the
   * read at once; after, so bytes read while a check found a change are not handed out.
   */
  private async read(offset: number, target: Buffer): Promise<void> {
    await this.pin.settle()
    await this.fill(offset, target)
    await this.pin.settle()
  }
}

import type { FileHandle } from 'node:fs/promises'
import type { SnapshotInspection } from './storage-backend.js'
import { BackendClosedError } from './errors.js'
import { assertInRange } from './range.js'
import { openLocalSource } from './open-source.js'
import { SourcePin, type OnSourceChanged } from './source-pin.js'

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
 * descriptor, the pin that fails reads once the file changed, and what `check` and `status` show.
 * Subclasses read between `before()` and `after()`.
 */
export abstract class LocalBackend {
  protected closed = false
  protected readonly handle: FileHandle
  readonly length: number
  readonly mtime: Date
  private readonly path: string
  private readonly pin: SourcePin

  constructor(source: PinnedSource) {
    ;({ handle: this.handle, length: this.length, mtime: this.mtime, path: this.path, pin: this.pin } = source)
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

  /** Before a read: not closed, in range, and the source not known to have changed. */
  protected async before(offset: number, length: number): Promise<void> {
    if (this.closed) throw new BackendClosedError()
    assertInRange(offset, length, this.length)
    await this.pin.settle()
  }

  /** After a read, before its bytes are handed out: a change seen meanwhile fails it. */
  protected after(): Promise<void> {
    return this.pin.settle()
  }
}

import type { BlockIntegrity } from './integrity.js'
import type { StorageBackend } from './storage-backend.js'

/**
 * What a layer (a StorageBackend around another: caches, metering, prefetch, recording) answers
 * as the backend below it does, written once: the source's size and mtime, its description, and
 * the manifest's digests from the verifying layer below, if any. `snapmount verify` asks the
 * outermost layer for those digests, so a layer that forgot to pass them on would hide the
 * manifest. A layer extends this, implements StorageBackend, and adds what it does itself.
 */
export abstract class LayerBackend<Inner extends StorageBackend = StorageBackend> {
  readonly describe?: () => string

  constructor(protected readonly inner: Inner) {
    if (inner.describe) this.describe = () => inner.describe!()
  }

  get length(): number {
    return this.inner.length
  }

  get mtime(): Date {
    return this.inner.mtime
  }

  /** The manifest's digests from the layer below, passed on (`snapmount verify` checks with them). */
  get integrity(): BlockIntegrity | undefined {
    return this.inner.integrity
  }
}

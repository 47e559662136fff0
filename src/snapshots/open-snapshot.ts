import type { SnapshotSpec } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import type { StorageBackend } from '../backend/storage-backend.js'
import type { BlockCache } from '../cache/block-cache.js'
import { openBackend } from '../backend/open-backend.js'
import { CachingBackend } from '../cache/caching-backend.js'
import { MeteredBackend, type ReadObserver } from '../metrics/metered-backend.js'
import type { DiskCache } from '../disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../disk-cache/disk-cached-backend.js'

/**
 * What opening a snapshot takes: the process's context (for the backend) and the pieces the
 * layers around it share. A layer whose piece is absent is left out: `snapmount check` reads
 * straight from the sources.
 */
export interface SnapshotContext extends OpenContext {
  /** The block cache remote snapshots share, under one bound (src/cache/). */
  cache?: BlockCache | undefined
  /** The disk cache remote snapshots share (src/disk-cache/), when `cache_dir` is set. */
  diskCache?: DiskCache | undefined
  /**
   * Meters every snapshot (`snapmount status`); `observer` gives the observer a snapshot's reads
   * are also told to (the Prometheus series), if any.
   */
  metering?: { observer(snapshot: string): ReadObserver | undefined } | undefined
}

/** One layer: the backend below wrapped, or returned as it is where the layer does not apply. */
type Layer = (backend: StorageBackend, spec: SnapshotSpec, context: SnapshotContext) => StorageBackend

/**
 * Innermost: remote snapshots' blocks are kept on local disk across restarts, under the memory
 * cache, which so reads from disk what it lost. Only for a source with a strong validator: its
 * identity is what the blocks are filed under.
 */
const diskCache: Layer = (backend, spec, { diskCache, logger }) => {
  if (!diskCache || (spec.type !== 'http' && spec.type !== 's3')) return backend
  const identity = backend.identity?.()
  if (identity) return new DiskCachedBackend(backend, diskCache, identity)
  logger.warn(`${spec.name}: no disk cache for it: its source has no strong ETag, so a replaced object could not be told from the one cached`)
  return backend
}

/**
 * Remote snapshots read through the shared block cache (coalescing, readahead); local ones rely
 * on the kernel's page cache of their source file, which a second copy would only halve.
 */
const blockCache: Layer = (backend, spec, { cache }) =>
  cache && (spec.type === 'http' || spec.type === 's3') ? new CachingBackend(backend, cache, { connections: spec.connections }) : backend

/** Outermost, so it sees reads as the mount's readers do: a cache hit is a fast read. */
const metering: Layer = (backend, spec, { metering }) =>
  metering ? new MeteredBackend(backend, spec.type, metering.observer(spec.name)) : backend

/**
 * The layers every snapshot is read through, innermost first: each is a StorageBackend wrapping
 * the one before it. A new layer (disk cache, manifest verifier, mirror selector, prefetcher)
 * takes its place in this list, and reports to `status` through `inspect` (storage-backend.ts).
 */
const LAYERS: readonly Layer[] = [diskCache, blockCache, metering]

/** Opens the source a spec names (src/backend/open-backend.ts) and puts the layers around it. */
export async function openSnapshot(spec: SnapshotSpec, context: SnapshotContext): Promise<StorageBackend> {
  let backend = await openBackend(spec, context)
  for (const layer of LAYERS) backend = layer(backend, spec, context)
  return backend
}

import { existsSync } from 'node:fs'
import type { HttpSnapshotSpec, S3SnapshotSpec, SnapshotSpec } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import type { StorageBackend } from '../backend/storage-backend.js'
import type { BlockCache } from '../cache/block-cache.js'
import { openBackend } from '../backend/open-backend.js'
import { CachingBackend } from '../cache/caching-backend.js'
import { MeteredBackend, type ReadObserver } from '../metrics/metered-backend.js'
import type { DiskCache } from '../disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../disk-cache/disk-cached-backend.js'
import type { Manifest } from '../manifest/format.js'
import { loadManifest } from '../manifest/load.js'
import { VerifyingBackend } from '../manifest/verifying-backend.js'
import type { ProfileIdentity } from '../profile/format.js'
import { profileIdentity } from '../profile/identity.js'
import { cachedProfilePath } from '../profile/cache-path.js'
import { ProfileRecordingBackend } from '../profile/recording-backend.js'
import { loadProfile, profileLabel } from '../profile/load.js'
import { PrefetchingBackend } from '../profile/prefetcher.js'

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

/**
 * What was read at open besides the source, for the layers: the snapshot's checked manifest, and
 * the identity its boot profiles are recorded under (profileIdentity, from the source itself:
 * the layers around it do not pass `identity()` on).
 */
interface Opened {
  manifest?: Manifest | undefined
  profileIdentity?: ProfileIdentity | undefined
}

/** HTTP and S3: the snapshots the caches are for (a local one has the kernel's page cache). */
function isRemote(spec: SnapshotSpec): spec is HttpSnapshotSpec | S3SnapshotSpec {
  return spec.type === 'http' || spec.type === 's3'
}

/** One layer: the backend below wrapped, or returned as it is where the layer does not apply. */
type Layer = (backend: StorageBackend, spec: SnapshotSpec, context: SnapshotContext, opened: Opened) => StorageBackend

/**
 * Innermost, so every block from the source is checked against the manifest before any layer
 * keeps or serves it. A manifest block larger than the cache block still verifies, but each cache
 * miss then fetches (and hashes) a whole manifest block: said once at open.
 */
const verifying: Layer = (backend, spec, { cache, logger }, { manifest }) => {
  if (!manifest) return backend
  if (cache && isRemote(spec) && manifest.blockBytes > cache.blockBytes) {
    logger.warn(`${spec.name}: its manifest's blocks (${manifest.blockBytes / 1024} KiB) are larger than the cache's (${cache.blockBytes / 1024} KiB): each cache miss fetches a whole manifest block; set cache_block_kib: ${manifest.blockBytes / 1024} or make the manifest with --block-size ${cache.blockBytes / 1024}K`)
  }
  return new VerifyingBackend(backend, manifest, { name: spec.name, logger })
}

/**
 * Next: remote snapshots' blocks (verified, with a manifest) are kept on local disk across
 * restarts, under the memory cache, which so reads from disk what it lost. Only for a source with
 * a strong validator: its identity is what the blocks are filed under.
 */
const diskCache: Layer = (backend, spec, { diskCache, logger }) => {
  if (!diskCache || !isRemote(spec)) return backend
  const identity = backend.identity?.()
  if (identity) return new DiskCachedBackend(backend, diskCache, identity)
  logger.warn(`${spec.name}: no disk cache for it: its source has no strong ETag, so a replaced object could not be told from the one cached`)
  return backend
}

/**
 * Remote snapshots read through the shared block cache (coalescing, readahead); local ones rely
 * on the kernel's page cache of their source file, which a second copy would only halve. Over the
 * disk cache, whatever it drops is still on disk: its readahead may run further.
 */
const blockCache: Layer = (backend, spec, { cache }) =>
  cache && isRemote(spec) ? new CachingBackend(backend, cache, { connections: spec.connections, keptBelow: backend instanceof DiskCachedBackend }) : backend

/** Prefetch may fill this share of the memory cache ahead of the readers: the rest is theirs. */
const PREFETCH_SHARE_OF_CACHE = 1 / 2

/**
 * A remote snapshot with `prefetch_profile:` replays its boot profile into the block cache. Just
 * above the cache it prefetches into, and below metering, so it sees every read the mount's
 * readers make (they pace it). A layer rather than a step of openSnapshot: the profile loads in
 * the background, so the mount never waits for it, and one that cannot be used is a warning. With
 * the disk cache on, what it prefetches lands on disk too, through the disk cache layer below.
 */
const prefetching: Layer = (backend, spec, context) => {
  const prefetchProfile = isRemote(spec) ? spec.prefetchProfile : undefined
  if (!prefetchProfile || !(backend instanceof CachingBackend)) return backend
  return new PrefetchingBackend(backend, {
    name: spec.name,
    label: profileLabel(prefetchProfile),
    profile: loadProfile(prefetchProfile, profileIdentity(spec, backend), spec.name, context),
    aheadBytes: Math.floor(context.cache!.capacityBytes * PREFETCH_SHARE_OF_CACHE),
    concurrency: backend.readaheadSlots,
    logger: context.logger,
  })
}

/** Above the caches, so it sees reads as the mount's readers do: a cache hit is a fast read. */
const metering: Layer = (backend, spec, { metering }) =>
  metering ? new MeteredBackend(backend, spec.type, metering.observer(spec.name)) : backend

/**
 * Outermost of all, so it notes the reads the mount's readers make, cache hits included, for a
 * boot profile (src/profile/): remote snapshots read through the block cache, whose block is the
 * profile's. It records by itself from the first read where the profile snapmount would replay is
 * absent: the `prefetch_profile` path, or, with the disk cache on and no prefetch_profile, the
 * disk cache's place for the image (cache-path.ts). The check is one stat, at open.
 */
const recording: Layer = (backend, spec, { cache, diskCache, logger }, { profileIdentity: identity }) => {
  if (!cache || !isRemote(spec)) return backend
  const configured = spec.prefetchProfile && 'path' in spec.prefetchProfile ? spec.prefetchProfile.path : undefined
  const cached = diskCache && identity && !spec.prefetchProfile ? cachedProfilePath(diskCache.dir, identity) : undefined
  const defaultPath = configured ?? cached
  const autoPath = defaultPath !== undefined && !existsSync(defaultPath) ? defaultPath : undefined
  if (autoPath !== undefined && !identity) {
    logger.warn(`${spec.name}: no boot profile at ${autoPath}, and none can be recorded: it has no manifest and its source no strong ETag to name the image by`)
  }
  return new ProfileRecordingBackend(backend, { name: spec.name, identity, blockBytes: cache.blockBytes, logger, defaultPath, autoPath })
}

/**
 * The layers every snapshot is read through, innermost first: each is a StorageBackend wrapping
 * the one before it. A new layer (disk cache, manifest verifier, mirror selector, prefetcher)
 * takes its place in this list, and reports to `status` through `inspect` (storage-backend.ts).
 */
const LAYERS: readonly Layer[] = [verifying, diskCache, blockCache, prefetching, metering, recording]

/**
 * Opens the source a spec names (src/backend/open-backend.ts), reads and checks its manifest if it
 * has one (a wrong SHA-256 or another image's size refuses the snapshot), and puts the layers
 * around it.
 */
export async function openSnapshot(spec: SnapshotSpec, context: SnapshotContext): Promise<StorageBackend> {
  let backend = await openBackend(spec, context)
  const opened: Opened = { profileIdentity: profileIdentity(spec, backend) }
  if (spec.manifest) {
    try {
      opened.manifest = await loadManifest(spec.manifest.source, { sha256: spec.manifest.sha256, imageBytes: backend.length, label: spec.name }, context)
    } catch (err) {
      await backend.close()
      throw err
    }
  }
  for (const layer of LAYERS) backend = layer(backend, spec, context, opened)
  return backend
}

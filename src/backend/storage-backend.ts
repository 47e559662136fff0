import type { BlockIntegrity, IntegrityStats } from './integrity.js'

/**
 * The one contract every source of snapshot bytes implements, and every layer above wraps.
 *
 * - `length` and `mtime` are fixed for the backend's life: snapshots are immutable.
 * - `readExact(offset, length)` resolves to a buffer of exactly `length` bytes, the bytes of the
 *   source at `[offset, offset + length)`, or rejects with a typed error (`src/backend/errors.ts`).
 *   It never resolves short or padded. A range outside `[0, this.length]` is `OutOfRangeError`;
 *   the FUSE layer clamps at EOF so that never happens in normal operation.
 * - The returned buffer may be a view of memory the backend owns (a mapped window): callers copy
 *   out of it and must not write to it.
 * - Views a layer hands out (`readPieces`, `readNow`) stay valid at least until the caller yields
 *   to the event loop, whatever the layer does in the meantime: memory behind a view is not
 *   reused for anything else before then, even by work the same call started (readahead that
 *   evicts the viewed block), and even when a source fills `into` synchronously, before its
 *   `readExact` returns. A layer that recycles buffers so pins what it hands out until the next
 *   turn of the event loop. Callers copy before they yield.
 * - `into` may be filled at any moment between the call and the settling of the promise,
 *   synchronously included; a backend that rejects may have written part of it.
 * - `close()` releases the source; reads after it reject with `BackendClosedError`.
 * - `options.signal`, when given, aborts the read: work started only for it stops and the read
 *   rejects. `options.stream` names the reader (a FUSE file handle) so layers that detect
 *   sequential access can tell interleaved readers apart; backends without such a layer ignore it.
 * - `inspect()`, where a backend or layer has facts to report (`snapmount status`, metrics), gives
 *   them merged over those of the backend it wraps: a layer returns `{ ...inner.inspect?.(), ...its
 *   own }`, and one with nothing to say leaves it out or passes the inner's on. A new layer so
 *   reaches `status` by adding its field to `SnapshotInspection`, and no caller unwraps layers.
 */
export interface StorageBackend {
  readonly length: number
  /** When the source was last modified, shown as the file's mtime. */
  readonly mtime: Date
  readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer>
  /**
   * The same bytes as `readExact`, as consecutive views of memory the backend owns (cached
   * blocks), so the caller copies each byte once instead of once to join them and once more.
   */
  readPieces?(offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]>
  /**
   * The bytes of `[offset, offset + length)` at once, as views like `readPieces`, when every one
   * of them is at hand (cached and validated); undefined, having done nothing, when any must be
   * waited for or the read cannot be made: the caller then reads as usual and gets the error
   * there. The views are valid until the caller yields to the event loop, even though the call
   * may start readahead that evicts their blocks (see above). A cache hit so needs no
   * deadline, no AbortController and no chain of promises. `stream` is `ReadOptions.stream`.
   */
  readNow?(offset: number, length: number, stream?: number): readonly Buffer[] | undefined
  /**
   * A small read inside one block, answered from below without bringing the whole block up (the
   * disk cache reads and checks only the pieces under it); undefined when it cannot: the caller
   * then reads as usual. The memory cache asks it on a miss with no readahead (a random read).
   * The bytes are the caller's.
   */
  readSmall?(offset: number, length: number): Promise<readonly Buffer[] | undefined>
  close(): Promise<void>
  /**
   * A reader opened the snapshot (a FUSE open): a backend that can tell cheaply whether its source
   * changed since it was opened looks now (a local file's fstat), and the reads after it wait for
   * the answer. Layers pass it on.
   */
  revalidate?(): void
  /** What `snapmount check` and `status` show beside the size (a URL, a validator, a local path). */
  describe?(): string
  /**
   * What this backend and the layers below it report about the snapshot (see above): cheap, as
   * every `status` call and every metrics scrape asks.
   */
  inspect?(): SnapshotInspection
  /**
   * What the source is, exactly enough that equal identities mean equal bytes (remote backends):
   * the disk cache keys its blocks by it, so a replaced object never sees the old one's blocks.
   * Undefined where the backend has no strong validator (no ETag, or a weak one) to tell versions
   * apart: such a snapshot is not disk-cached.
   */
  identity?(): SourceIdentity | undefined
  /**
   * The manifest digests this backend's blocks were checked against, offered by the verifying
   * layer (src/manifest/verifying-backend.ts) and passed on by every layer above it (as
   * `describe`), so a layer that stores blocks (a disk cache) can check them when it reads them
   * back, and `snapmount verify` can check what readers get (src/backend/integrity.ts).
   */
  readonly integrity?: BlockIntegrity | undefined
  /**
   * A backend served by several sources (src/backend/mirrors/): which source answered a read, and
   * reads kept off given sources. Only the layer right above it (the manifest's verifying layer)
   * uses it, to ask a block that failed its digest from another source; layers do not pass it on.
   */
  readonly sourceSet?: SourceSet | undefined
  /**
   * Starts and stops the recording of a boot profile (`snapmount profile record|stop`): offered by
   * the recording layer (src/profile/recording-backend.ts), outermost, on remote snapshots; absent
   * elsewhere, so the control socket finds it without knowing any layer.
   */
  readonly recorder?: ProfileRecorderControl | undefined
}

/**
 * The sources of a mirrored snapshot (`StorageBackend.sourceSet`), numbered in the config's order,
 * for a layer that can tell a good answer from a bad one, which the sources themselves cannot.
 */
export interface SourceSet {
  /** Each source's name for logs (a redacted URL, s3://bucket/key), by number. */
  readonly labels: readonly string[]
  /**
   * `readExact`, resolving with the number of the source whose bytes these are too; the sources
   * in `avoid` are not asked (a RangeError if that leaves none).
   */
  readFrom(offset: number, length: number, options?: ReadOptions & { avoid?: ReadonlySet<number> | undefined }): Promise<{ bytes: Buffer; source: number }>
  /**
   * `source` answered bytes `[offset, offset + length)` that are not the image's (they failed
   * their digest): counted against it (its error rate and bad blocks), and later reads of those
   * bytes go to it only after every other source.
   */
  markBad(source: number, offset: number, length: number): void
  /**
   * `source`'s answer to a `readFrom` passed the caller's check. A failover to it is over only
   * then: its log line (`failoverMs`) is never written for bytes that then failed their digest.
   */
  verified(source: number): void
}

/** What `StorageBackend.recorder` offers. */
export interface ProfileRecorderControl {
  /** Starts recording to `output` (an absolute path) or the snapshot's default place; throws a typed refusal when it cannot. */
  start(output?: string): { name: string; path: string }
  /** Stops the recording under way and writes its profile; rejects if none is, or if it cannot be written. */
  stop(): Promise<ProfileWritten>
}

/** What a finished recording wrote: `profile stop` answers it, and the log line says it. */
export interface ProfileWritten {
  name: string
  path: string
  runs: number
  blocks: number
  bytes: number
  /** Milliseconds from the first read to the last block noted. */
  spanMs: number
  /** The recording stopped at its bound (MAX_PROFILE_BLOCKS) before it was stopped. */
  full: boolean
}

/** A remote source's identity (see `StorageBackend.identity`). */
export interface SourceIdentity {
  /** Where it is, with no secret: a URL without password or query values, or s3://endpoint/bucket/key. */
  source: string
  size: number
  /** A strong validator: a strong ETag, or an S3 version id and ETag. */
  validator: string
}

/**
 * What the layers of one snapshot report about it, each field filled by the layer that knows it;
 * absent where no layer does (a snapshot opened without metering, a local one without a cache).
 */
export interface SnapshotInspection {
  /** The backend type from the config (file, mmap, http, s3): the metering layer's. */
  type?: string
  /** The mount's reads of the snapshot since it was opened: the metering layer's. */
  reads?: ReadStats
  /** Bytes of the snapshot in the block cache now: the caching layer's (remote snapshots). */
  cachedBytes?: number
  /** Bytes of the snapshot in the disk cache now: the disk cache layer's (remote snapshots, cache_dir set). */
  diskBytes?: number
  /** Blocks checked against the manifest, and those that did not match: the verifying layer's. */
  integrity?: IntegrityStats
  /**
   * What changed in a local source since it was opened (source-pin.ts), whose reads therefore
   * fail; absent while it has not. A reload opens such a snapshot again.
   */
  sourceChanged?: string
  /** Each source of a snapshot served from mirrors, in the config's order: the mirror layer's. */
  mirrors?: MirrorReport[]
  /** The boot profile being recorded of the snapshot: the recording layer's (src/profile/), absent when none is. */
  profileRecording?: ProfileRecordingReport
  /** The boot profile's prefetch, where `prefetch_profile:` is set: the prefetching layer's (src/profile/prefetcher.ts). */
  prefetch?: PrefetchReport
}

/** A boot profile being recorded (`snapmount profile record`, or automatically at a cold start). */
export interface ProfileRecordingReport {
  /** Where the profile will be written. */
  path: string
  /** Started by snapmount itself (a prefetch_profile path or a disk-cache profile that was absent), not by `profile record`. */
  automatic: boolean
  /** Blocks, runs and bytes noted so far. */
  blocks: number
  runs: number
  bytes: number
  /** Milliseconds from the first read to the last block noted; 0 before the first read. */
  spanMs: number
  /** The recording reached its bound (MAX_PROFILE_BLOCKS) and notes no more. */
  full: boolean
}

/** What a snapshot's boot profile prefetched, and how much of it its readers then read. */
export interface PrefetchReport {
  /**
   * `loading` the profile; `prefetching`; `waiting` for the readers to catch up (what it fetched
   * ahead of them fills its share of the cache); `done`; `stopped` after repeated failures;
   * `unused`: there is no profile yet, or it was not fit to use (the log says why).
   */
  state: 'loading' | 'prefetching' | 'waiting' | 'done' | 'stopped' | 'unused'
  /** The profile's path, or its redacted URL. */
  profile: string
  /** Bytes the profile lists, in whole cache blocks (0 until it is loaded). */
  profileBytes: number
  /** Bytes prefetched into the block cache (blocks readers had fetched already are not counted). */
  prefetchedBytes: number
  /** Prefetched blocks that readers then read, and their bytes. */
  hitBlocks: number
  hitBytes: number
  /** Prefetched bytes no reader has read: evicted unread, or still waiting in the cache. */
  wastedBytes: number
  /** Of those, the bytes evicted before any reader got to them. */
  evictedBytes: number
  /** Seconds since the profile was recorded (now − recorded_at); null until it is loaded. */
  ageSeconds: number | null
  /** Prefetches that failed (the first is logged; readers never see them). */
  failures: number
}

/** One source of a mirrored snapshot, as `status` and the metrics show it (src/backend/mirrors/). */
export interface MirrorReport {
  /** Where it is: a redacted URL or s3://bucket/key. */
  source: string
  /** Healthy, or failing: out of use after a failure until a probe read succeeds. */
  state: 'healthy' | 'failing'
  /** EWMA of its request latency; null before the first sample. */
  latencyMs: number | null
  /** Recent share of failed requests (0 to 1), decaying with time. */
  errorRate: number
  /** Requests it answered (hedges that won included). */
  requests: number
  /** Requests that failed. */
  errors: number
  /** Requests sent to it that another source answered first. */
  hedgesLost: number
  /** Blocks it answered that failed their manifest digest (a mirror that serves damaged bytes). */
  badBlocks: number
}

/** Reads the mount's readers made of one snapshot: totals since it was opened, and recent latency. */
export interface ReadStats {
  reads: number
  bytes: number
  errors: number
  inFlight: number
  recent: RecentLatency
}

/** Latency of the reads that finished within the last `windowSeconds` (the newest samples kept of them). */
export interface RecentLatency {
  windowSeconds: number
  count: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}


/** How one read is made: who asks (for readahead) and when to give up (for cancellation). */
export interface ReadOptions {
  /** Aborts the read; requests started only for it are cancelled. */
  signal?: AbortSignal
  /** The reader: an open file handle, so sequential streams are told apart per handle. */
  stream?: number
  /**
   * A buffer of exactly `length` bytes the backend may fill and resolve with, so a caller can
   * recycle memory (the block cache does). Backends that do not use it resolve with their own.
   */
  into?: Buffer
  /**
   * Offered with `into` when it is page-aligned memory (every multiple of 4096 bytes in it is
   * aligned for O_DIRECT) that its owner can keep unchanged after the read: each call keeps `into`
   * from being reused (written over) until the function it returns is called. A layer that writes
   * the bytes somewhere behind the read (the disk cache) holds them instead of copying them.
   */
  holdInto?: () => () => void
  /**
   * The daemon's own read (`snapmount warm`, `verify`), not one of the mount's readers: layers that
   * count the mount's reads (metering) pass it on uncounted; the others treat it as any read.
   */
  maintenance?: boolean
}

/** Reads as pieces where the backend can, else as the one buffer `readExact` gives. */
export async function readPieces(backend: StorageBackend, offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]> {
  return backend.readPieces ? backend.readPieces(offset, length, options) : [await backend.readExact(offset, length, options)]
}

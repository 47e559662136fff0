import type { MirrorReport, PrefetchReport, ProfileRecordingReport, ReadStats } from '../backend/storage-backend.js'
import type { CacheStats } from '../cache/cache-stats.js'
import type { DiskCacheStats } from '../disk-cache/disk-cache.js'
import type { BadRange } from '../manifest/scan.js'

/**
 * The control socket's protocol: line-delimited JSON over a Unix socket. The client sends one
 * request line; the daemon answers with any number of `progress` lines and then exactly one
 * `result` or `error` line, and closes. A client that goes away cancels its request.
 */
export type ControlRequest =
  | { op: 'status' }
  | { op: 'warm'; name: string; offset?: number | undefined; length?: number | undefined }
  /** Without `sha256`, each block against the snapshot's manifest (BlocksVerifyResult). */
  | { op: 'verify'; name: string; sha256?: string | undefined }
  /** Starts recording a boot profile, to `output` (an absolute path) or the snapshot's default place. */
  | { op: 'profile-record'; name: string; output?: string | undefined }
  /** Stops the recording and writes the profile (ProfileWritten). */
  | { op: 'profile-stop'; name: string }

export type ControlResponse =
  | { type: 'progress'; done: number; total: number }
  | { type: 'result'; result: unknown }
  | { type: 'error'; code: string; message: string; fix?: string | undefined }

/** What `snapmount status --json` prints. */
export interface StatusReport {
  pid: number
  mountpoint: string
  startedAt: string
  uptimeSeconds: number
  /** The metrics endpoint, when one is on. */
  metricsUrl: string | null
  /** The block cache's counters, shared by all snapshots; null without a cache. */
  cache: CacheStats | null
  /** The disk cache's counters (cache_dir); null without one. */
  diskCache: DiskCacheStats | null
  snapshots: SnapshotStatus[]
}

/**
 * One snapshot in `status`: the reads the mount's readers made since it was opened, what came of
 * them and their latency in the last minute (ReadStats), and the facts below.
 */
export interface SnapshotStatus extends ReadStats {
  name: string
  /** Backend type: file, mmap, http, s3. */
  type: string
  size: number
  /** What `check` shows beside the size for remote snapshots (redacted URL, validator); else null. */
  source: string | null
  /** Bytes of this snapshot in the block cache; null for local snapshots (the kernel caches those). */
  cachedBytes: number | null
  /** Bytes of this snapshot in the disk cache; null where it has none (local, no cache_dir, no strong ETag). */
  diskBytes: number | null
  /** Each source of a snapshot served from mirrors (its state, latency, errors); absent otherwise. */
  mirrors?: MirrorReport[]
  /** The boot profile being recorded of it (`snapmount profile record`, or automatically); absent when none is. */
  profileRecording?: ProfileRecordingReport
  /** Its boot profile's prefetch (prefetch_profile); absent without one. */
  prefetch?: PrefetchReport
}

/** What `warm` answers: the range it read. */
export interface WarmResult {
  name: string
  offset: number
  length: number
  seconds: number
}

/** What `profile record` answers: where the profile will be written. */
export interface ProfileRecordResult {
  name: string
  path: string
}

export type { ProfileWritten } from '../backend/storage-backend.js'

/** What `verify` answers: the digest of the whole snapshot and whether it is the one asked for. */
export interface VerifyResult {
  name: string
  bytes: number
  sha256: string
  expected: string
  match: boolean
  seconds: number
}

/** What `verify` without a digest answers: each block checked against the manifest, and the runs that differ. */
export interface BlocksVerifyResult {
  name: string
  bytes: number
  blocks: number
  blockBytes: number
  badRanges: BadRange[]
  match: boolean
  seconds: number
}

/** Longest request line the daemon reads; requests are a few dozen bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024

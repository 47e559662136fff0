import { isAbsolute } from 'node:path'
import type { ProfileRecorderControl, ReadStats, StorageBackend } from '../backend/storage-backend.js'
import type { CacheStats } from '../cache/cache-stats.js'
import type { DiskCacheStats } from '../disk-cache/disk-cache.js'
import { BadRequestError, SnapshotWaitingError, UnknownSnapshotError } from './errors.js'
import type { ControlHandler } from './server.js'
import type { BlocksVerifyResult, ControlRequest, SnapshotStatus, StatusReport, VerifyResult, WarmResult } from './protocol.js'
import type { BlockIntegrity } from '../backend/integrity.js'
import { rangesOf } from '../manifest/scan.js'
import { NotRemoteSnapshotError } from '../profile/errors.js'

/** A snapshot as the daemon serves it now. */
export interface ServedSnapshot {
  readonly name: string
  readonly backend: StorageBackend
}

/** What the control requests look at: the live list (it changes on reload) and the daemon's facts. */
export interface DaemonState {
  snapshots(): readonly ServedSnapshot[]
  /** Names of lazy snapshots listed but not open yet. */
  waiting?(): readonly string[]
  cache?: { stats(): CacheStats } | undefined
  diskCache?: { stats(): DiskCacheStats } | undefined
  mountpoint: string
  startedAt: Date
  metricsUrl: string | null
}

/**
 * warm and verify read in chunks of this size, CHUNKS_IN_FLIGHT at a time: 1 MiB is a whole
 * number of cache blocks of any power-of-two size up to it, and is one ranged request remote
 * backends finish well inside their deadline on any link that can serve a disk at all.
 */
export const CHUNK_BYTES = 1024 * 1024
/** Enough parallel ranges to keep a remote backend's connections busy, few enough to stay polite. */
const CHUNKS_IN_FLIGHT = 8
/** Progress lines are sent at most this often (and once at the end). */
const PROGRESS_EVERY_MS = 200
const SHA256_HEX = /^[0-9a-f]{64}$/
/** What status shows for a snapshot no metering layer counts. */
const NO_READS: ReadStats = { reads: 0, bytes: 0, errors: 0, inFlight: 0, recent: { windowSeconds: 60, count: 0, p50Ms: null, p99Ms: null, maxMs: null } }

/**
 * Answers status, warm and verify against `state`. verify with a digest hashes the whole
 * snapshot with SHA-256; without one it checks each block against the snapshot's manifest.
 */
export function controlHandler(state: DaemonState, now: () => number = Date.now): ControlHandler {
  return async (request: ControlRequest, progress, signal) => {
    if (request.op === 'status') return status(state, now)
    const { name, backend } = find(state, request.name)
    if (request.op === 'warm') return warm(name, backend, request.offset, request.length, progress, signal, now)
    if (request.op === 'profile-record') return recorderOf(name, backend).start(outputOf(request.output))
    if (request.op === 'profile-stop') return recorderOf(name, backend).stop()
    if (request.sha256 === undefined) return verifyBlocks(name, backend, progress, signal, now)
    return verify(name, backend, request.sha256, progress, signal, now)
  }
}

function status(state: DaemonState, now: () => number): StatusReport {
  const snapshots = state.snapshots().map(({ name, backend }): SnapshotStatus => {
    // Each layer reports what it knows over the layers below it (StorageBackend.inspect).
    const { type, reads, cachedBytes, diskBytes, mirrors, profileRecording, prefetch } = backend.inspect?.() ?? {}
    return {
      name,
      type: type ?? 'unknown',
      size: backend.length,
      source: backend.describe?.() ?? null,
      ...(reads ?? NO_READS),
      // null for a local snapshot, which has no cache of ours.
      cachedBytes: cachedBytes ?? null,
      diskBytes: diskBytes ?? null,
      ...(mirrors && { mirrors }),
      ...(profileRecording && { profileRecording }),
      ...(prefetch && { prefetch }),
    }
  })
  return {
    pid: process.pid,
    mountpoint: state.mountpoint,
    startedAt: state.startedAt.toISOString(),
    uptimeSeconds: Math.round((now() - state.startedAt.getTime()) / 1000),
    metricsUrl: state.metricsUrl,
    cache: state.cache?.stats() ?? null,
    diskCache: state.diskCache?.stats() ?? null,
    snapshots,
  }
}

function find(state: DaemonState, name: unknown): ServedSnapshot {
  const served = state.snapshots()
  const snapshot = served.find((candidate) => candidate.name === name)
  if (snapshot) return snapshot
  if (state.waiting?.().includes(String(name))) throw new SnapshotWaitingError(String(name))
  throw new UnknownSnapshotError(String(name), served.map((s) => s.name))
}

/** What records the snapshot's boot profiles (StorageBackend.recorder): remote snapshots have it, local ones not. */
function recorderOf(name: string, backend: StorageBackend): ProfileRecorderControl {
  if (backend.recorder) return backend.recorder
  throw new NotRemoteSnapshotError(name, backend.inspect?.().type ?? 'local')
}

/** The file `profile record --output` names: an absolute path (the CLI resolves it where it runs). */
function outputOf(output: unknown): string | undefined {
  if (output === undefined || (typeof output === 'string' && isAbsolute(output))) return output
  throw new BadRequestError(`${JSON.stringify(output)} is not an absolute path`, 'give the profile\'s file as an absolute path')
}

/**
 * Reads `[offset, offset + length)` through the snapshot's backend, so a cache below it keeps the
 * blocks. Without a cache this still checks that every byte of the range can be read.
 */
async function warm(name: string, backend: StorageBackend, offset = 0, length: number | undefined, progress: Progress, signal: AbortSignal, now: () => number): Promise<WarmResult> {
  const size = backend.length
  const span = length ?? size - offset
  if (!isWhole(offset) || !isWhole(span) || offset + span > size) {
    throw new BadRequestError(`range offset ${offset} length ${length ?? '(to the end)'} is not inside ${name} (${size} bytes)`, `give an offset and length within 0..${size}`)
  }
  const started = now()
  await readInOrder(backend, offset, span, signal, throttled(progress, span, now), () => {})
  return { name, offset, length: span, seconds: (now() - started) / 1000 }
}

/** Hashes the whole snapshot through its backend with SHA-256, in order, reading ahead in parallel. */
async function verify(name: string, backend: StorageBackend, expected: unknown, progress: Progress, signal: AbortSignal, now: () => number): Promise<VerifyResult> {
  const want = typeof expected === 'string' ? expected.toLowerCase() : ''
  if (!SHA256_HEX.test(want)) throw new BadRequestError(`${JSON.stringify(expected)} is not a SHA-256 digest`, 'give 64 hexadecimal digits, as sha256sum prints them')
  const started = now()
  // Loaded here, not at start: node:crypto is ~20 ms of a daemon's start, and few ever verify.
  const { createHash } = await import('node:crypto')
  const hash = createHash('sha256')
  const size = backend.length
  await readInOrder(backend, 0, size, signal, throttled(progress, size, now), (chunk) => hash.update(chunk))
  const sha256 = hash.digest('hex')
  return { name, bytes: size, sha256, expected: want, match: sha256 === want, seconds: (now() - started) / 1000 }
}

/**
 * Checks every block of the snapshot, as readers get it (cache included), against its manifest:
 * reads CHUNK_BYTES (or a manifest block, if larger) at a time, CHUNKS_IN_FLIGHT at once, and
 * checks each chunk's blocks. A block the verifying layer below already refused (every fetch of
 * it mismatched, so its read fails E_BLOCK_DIGEST) is bad too: a failed chunk is read again block
 * by block to tell which. Any other failure fails the whole.
 */
async function verifyBlocks(name: string, backend: StorageBackend, progress: Progress, signal: AbortSignal, now: () => number): Promise<BlocksVerifyResult> {
  const integrity = backend.integrity
  if (!integrity) throw new BadRequestError(`${name} has no manifest to verify against`, 'give --sha256 with the digest of the whole image, or give the snapshot a manifest: in the config')
  const started = now()
  const size = backend.length
  const chunkBytes = Math.max(CHUNK_BYTES, integrity.blockBytes)
  const report = throttled(progress, size, now)
  const bad: number[] = []
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < size) {
      signal.throwIfAborted()
      const offset = next
      const length = Math.min(chunkBytes, size - offset)
      next += length
      bad.push(...(await badBlocksOf(backend, integrity, offset, length, signal)))
      done += length
      report(done)
    }
  }
  await Promise.all(Array.from({ length: CHUNKS_IN_FLIGHT }, worker))
  bad.sort((a, b) => a - b)
  const badRanges = rangesOf(bad, integrity.blockBytes, size)
  return { name, bytes: size, blocks: integrity.blockCount, blockBytes: integrity.blockBytes, badRanges, match: bad.length === 0, seconds: (now() - started) / 1000 }
}

/** The blocks of `[offset, offset + length)` (whole blocks) that do not match, or whose read the verifying layer refused. */
async function badBlocksOf(backend: StorageBackend, integrity: BlockIntegrity, offset: number, length: number, signal: AbortSignal): Promise<number[]> {
  const { blockBytes } = integrity
  const check = async (start: number, bytes: number): Promise<number[] | undefined> => {
    try {
      return await integrity.check(start / blockBytes, await backend.readExact(start, bytes, { signal, maintenance: true }))
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'E_BLOCK_DIGEST') throw err
      return undefined
    }
  }
  const whole = await check(offset, length)
  if (whole) return whole
  const bad: number[] = []
  for (let start = offset; start < offset + length; start += blockBytes) {
    const block = start / blockBytes
    const found = await check(start, Math.min(blockBytes, offset + length - start))
    if (!found || found.length > 0) bad.push(block)
  }
  return bad
}

type Progress = (done: number, total: number) => void

/**
 * Reads the range in CHUNK_BYTES pieces with up to CHUNKS_IN_FLIGHT reads outstanding, handing
 * each chunk to `consume` in order. The first failure (or an abort) fails the whole. The reads are
 * `maintenance` ones: they are not reads of the mount, and stay out of its counts and series.
 */
async function readInOrder(backend: StorageBackend, offset: number, length: number, signal: AbortSignal, progress: (done: number) => void, consume: (chunk: Buffer) => void): Promise<void> {
  const end = offset + length
  const pending: Array<Promise<Buffer>> = []
  let next = offset
  let done = 0
  const start = () => {
    const size = Math.min(CHUNK_BYTES, end - next)
    const read = backend.readExact(next, size, { signal, maintenance: true })
    read.catch(() => {}) // awaited below in order; an early failure must not go unhandled meanwhile
    pending.push(read)
    next += size
  }
  while (next < end && pending.length < CHUNKS_IN_FLIGHT) start()
  while (pending.length > 0) {
    signal.throwIfAborted()
    const chunk = await pending.shift()!
    consume(chunk)
    done += chunk.length
    progress(done)
    if (next < end) start()
  }
  progress(done)
}

/** Calls `progress` for the first call, then at most every PROGRESS_EVERY_MS, and always at the end. */
function throttled(progress: Progress, total: number, now: () => number): (done: number) => void {
  let last = -Infinity
  return (done) => {
    const at = now()
    if (done < total && at - last < PROGRESS_EVERY_MS) return
    if (done === total && last === Infinity) return
    last = done === total ? Infinity : at
    progress(done, total)
  }
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

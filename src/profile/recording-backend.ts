import { access } from 'node:fs/promises'
import { LayerBackend } from '../backend/layer-backend.js'
import { readPieces, type ProfileRecorderControl, type ProfileWritten, type ReadOptions, type SnapshotInspection, type StorageBackend } from '../backend/storage-backend.js'
import { describe } from '../backend/errors.js'
import { SnapmountError } from '../errors.js'
import { REAL_CLOCK, type Clock } from '../clock.js'
import type { Logger } from '../log.js'
import { encodeProfile, type ProfileIdentity } from './format.js'
import { MAX_PROFILE_BLOCKS, ProfileRecorder } from './recorder.js'
import { AlreadyRecordingError, NoProfileIdentityError, NoProfileOutputError, NotRecordingError } from './errors.js'
import { writeFileAtomically } from './write-file.js'

/**
 * A recording ends by itself once no read has touched a new block for this long. A boot's reads
 * come in bursts with pauses between them, and the longest is early: the Debian guest of the boot
 * benchmark (test/fixtures/linux-boot-trace.txt, TCG at a load of 9) read nothing new for 26 s
 * between its bootloader's reads and its root file system's, while the kernel started. 10 s would
 * end a recording there with a fifth of the boot's blocks in it; 60 s outlasts that pause twice
 * over, on a host more loaded still. The cost is only the blocks a booted guest reads in the next
 * minute (few), which a replay fetches last, and the file is written a minute after the boot.
 */
export const PROFILE_IDLE_MS = 60_000

export interface RecordingOptions {
  /** The snapshot's name, for log lines and errors. */
  name: string
  /** What the profile is recorded under (profileIdentity); undefined where there is none: nothing can be recorded. */
  identity: ProfileIdentity | undefined
  /** The memory cache's block size, the profile's block (recorder.ts). */
  blockBytes: number
  logger: Logger
  /** Where `profile record` without --output writes: the prefetch_profile path, else the disk cache's place. */
  defaultPath?: string | undefined
  /**
   * Records from the first read to this path, written when idle or at close: given where the
   * profile snapmount replays from is absent (open-snapshot.ts). Ignored without an identity.
   */
  autoPath?: string | undefined
  /** Timers for the idle end; injected by tests. */
  clock?: Clock | undefined
  /** The wall-clock time a profile is stamped with (`recorded_at`); injected by tests. */
  wallClock?: (() => Date) | undefined
  idleMs?: number | undefined
  maxBlocks?: number | undefined
}

/** A profile that could not be written (`profile stop` fails with it; an idle end logs it). */
export class ProfileWriteError extends SnapmountError {
  readonly code = 'E_PROFILE_WRITE'
}

/** One recording under way. */
interface Session {
  readonly recorder: ProfileRecorder
  readonly path: string
  readonly automatic: boolean
  /** When the first block was noted: the profile's `recorded_at`. */
  recordedAt?: Date
  cancelIdle?: () => void
}

/**
 * The recording layer (style rule 6: a decorator of the same contract): outermost, so it notes
 * reads as the mount's readers make them, cache hits (`readNow`) included, before any layer below
 * changes them. While a recording is under way each read is noted in a ProfileRecorder; the
 * profile is written (atomically, 0600) when `stopRecording` is called, when no new block has been
 * touched for PROFILE_IDLE_MS, when the recorder reaches its bound, or when the snapshot closes
 * (unmount, reload). Not recording, a read costs one field test. Reads marked `maintenance`
 * (`warm`, `verify`) are the daemon's own, not a boot's, and are not noted.
 */
export class ProfileRecordingBackend extends LayerBackend implements StorageBackend {
  readonly recorder: ProfileRecorderControl = { start: (output) => this.startRecording(output), stop: () => this.stopRecording() }
  private session: Session | undefined
  private readonly writes = new Set<Promise<unknown>>()
  private readonly clock: Clock
  private readonly wallClock: () => Date
  private readonly idleMs: number
  private readonly maxBlocks: number

  constructor(
    inner: StorageBackend,
    private readonly options: RecordingOptions,
  ) {
    super(inner)
    this.clock = options.clock ?? REAL_CLOCK
    this.wallClock = options.wallClock ?? (() => new Date())
    this.idleMs = options.idleMs ?? PROFILE_IDLE_MS
    this.maxBlocks = options.maxBlocks ?? MAX_PROFILE_BLOCKS
    if (options.autoPath !== undefined && options.identity) {
      this.session = this.newSession(options.identity, options.autoPath, true)
      options.logger.info(`${options.name}: no boot profile at ${options.autoPath}: recording one from the first read, written once no new block is read for ${this.idleMs / 1000} s`, {
        snapshot: options.name,
        path: options.autoPath,
      })
    }
  }

  readExact(offset: number, length: number, options?: ReadOptions): Promise<Buffer> {
    if (this.session && !options?.maintenance) this.note(this.session, offset, length)
    return this.inner.readExact(offset, length, options)
  }

  readPieces(offset: number, length: number, options?: ReadOptions): Promise<readonly Buffer[]> {
    if (this.session && !options?.maintenance) this.note(this.session, offset, length)
    return readPieces(this.inner, offset, length, options)
  }

  /** A cache hit: noted when answered (undefined is no read: the caller reads the usual way, noted then). */
  readNow(offset: number, length: number, stream?: number): readonly Buffer[] | undefined {
    const pieces = this.inner.readNow?.(offset, length, stream)
    if (pieces && this.session) this.note(this.session, offset, length)
    return pieces
  }

  revalidate(): void {
    this.inner.revalidate?.()
  }

  /** The layers below, and the recording under way, if any. */
  inspect(): SnapshotInspection {
    const inner = this.inner.inspect?.() ?? {}
    const session = this.session
    if (!session) return inner
    const { recorder, path, automatic } = session
    return { ...inner, profileRecording: { path, automatic, blocks: recorder.blocks, runs: recorder.runCount, bytes: recorder.bytes, spanMs: recorder.spanMs, full: recorder.full } }
  }

  /**
   * Starts recording to `output` (else the default path); the profile's times count from the next
   * read. Throws when there is no identity, a recording is under way, or no path is known.
   */
  startRecording(output?: string): { name: string; path: string } {
    const { name, identity, defaultPath, logger } = this.options
    if (!identity) throw new NoProfileIdentityError(name)
    if (this.session) throw new AlreadyRecordingError(name, this.session.path)
    const path = output ?? defaultPath
    if (path === undefined) throw new NoProfileOutputError(name)
    this.session = this.newSession(identity, path, false)
    logger.info(`${name}: recording a boot profile from its next read to ${path}`, { snapshot: name, path })
    return { name, path }
  }

  /** Stops the recording under way and writes its profile; rejects if none is, or if it cannot be written. */
  async stopRecording(): Promise<ProfileWritten> {
    if (!this.session) throw new NotRecordingError(this.options.name)
    return (await this.finish(this.session, 'stopped', true))!
  }

  /** Writes the profile of a recording under way (unless it read nothing), then closes the layers below. */
  async close(): Promise<void> {
    if (this.session) await this.finish(this.session, 'the snapshot closed', false).catch(logged)
    await Promise.allSettled(this.writes)
    return this.inner.close()
  }

  private newSession(identity: ProfileIdentity, path: string, automatic: boolean): Session {
    const recorder = new ProfileRecorder({ identity, blockBytes: this.options.blockBytes, now: this.clock.now, maxBlocks: this.maxBlocks })
    return { recorder, path, automatic }
  }

  private note(session: Session, offset: number, length: number): void {
    if (session.recorder.note(offset, length) > 0) {
      if (session.recordedAt === undefined) {
        session.recordedAt = this.wallClock()
        this.armIdle(session, this.idleMs)
      }
    } else if (session.recorder.full) {
      this.options.logger.warn(`${this.options.name}: the boot profile reached its bound of ${this.maxBlocks} blocks; it stops here`, { snapshot: this.options.name })
      void this.finish(session, 'bound reached', false).catch(logged)
    }
  }

  /** Ends the recording once no new block has come for idleMs: checked when the timer fires, re-armed for the rest otherwise. */
  private armIdle(session: Session, ms: number): void {
    session.cancelIdle = this.clock.after(ms, () => {
      const quiet = session.recorder.quietMs()!
      if (quiet >= this.idleMs) void this.finish(session, `no new block read for ${this.idleMs / 1000} s`, false).catch(logged)
      else this.armIdle(session, this.idleMs - quiet)
    })
  }

  /**
   * Ends `session` at once (reads from now on are not noted) and writes its profile. An automatic
   * one that read nothing, or whose file appeared meanwhile (another daemon's, a copy), writes
   * nothing. A failed write is logged; `stop` also rejects with it.
   */
  private finish(session: Session, reason: string, stopped: boolean): Promise<ProfileWritten | undefined> {
    this.session = undefined
    session.cancelIdle?.()
    const write = this.write(session, reason, stopped)
    this.writes.add(write)
    void write.catch(logged).finally(() => this.writes.delete(write))
    return write
  }

  private async write(session: Session, reason: string, stopped: boolean): Promise<ProfileWritten | undefined> {
    const { name, logger } = this.options
    const { recorder, path } = session
    const written: ProfileWritten = { name, path, runs: recorder.runCount, blocks: recorder.blocks, bytes: recorder.bytes, spanMs: recorder.spanMs, full: recorder.full }
    if (!stopped && session.automatic) {
      if (recorder.blocks === 0) return undefined
      if (await exists(path)) {
        logger.info(`${name}: a boot profile appeared at ${path} while one was recorded; kept it, the recording is dropped`, { snapshot: name, path })
        return undefined
      }
    }
    try {
      await writeFileAtomically(path, encodeProfile(recorder.profile(session.recordedAt ?? this.wallClock())))
    } catch (err) {
      const failure = new ProfileWriteError(`${name}: boot profile not written to ${path}: ${describe(err)}`, { cause: err })
      logger.error(failure.message, { snapshot: name, path, code: failure.code })
      throw failure
    }
    const mib = (written.bytes / 2 ** 20).toFixed(1)
    logger.info(`${name}: boot profile written to ${path}: ${written.runs} runs, ${written.blocks} blocks, ${mib} MiB, over ${(written.spanMs / 1000).toFixed(1)} s (${reason})`, {
      snapshot: name,
      path,
      runs: written.runs,
      blocks: written.blocks,
      bytes: written.bytes,
    })
    return written
  }
}

/** For a write's failure where nobody waits for it: write() has logged it already. */
function logged(): void {}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

import { spawn } from 'node:child_process'
import { constants, type BigIntStats } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { SourceOpenError, SourceOpenTimeoutError, describe } from './errors.js'

/** An opened local source: its descriptor and the stat taken on that descriptor. */
export interface OpenedSource {
  handle: FileHandle
  /** In nanoseconds (`bigint: true`), so a rewrite within the same second still shows. */
  stats: BigIntStats
}

/**
 * How long opening a local source may take when the caller gives no bound: the default read
 * deadline (config.ts READ_TIMEOUT_MS), as an open is one round trip to the file system like a read.
 */
export const LOCAL_OPEN_TIMEOUT_MS = 10_000

/**
 * Opens a local image read-only and checks it is a regular file, turning each failure into a
 * `SourceOpenError` that names the path and the fix, and never hanging: within `timeoutMs` it
 * resolves or rejects (`SourceOpenTimeoutError`).
 *
 * An open can block for ever: a FIFO waits for a writer, a path on a hung network file system
 * waits for its server. And a blocked open cannot be given up on in this process: on libuv's
 * thread pool it holds a thread for ever, and Node's exit joins that pool's threads, so the
 * daemon would then not even exit on SIGTERM (measured: process.exit() hangs behind an open of
 * a FIFO on the pool; a worker thread hangs the exit the same way). So the path is first stat'ed
 * and opened by a child process (`probe`), which is killed at the deadline; only once it has come
 * back does this process stat the path (refusing anything but a regular file, a FIFO included,
 * before opening it) and open it with O_NONBLOCK (a FIFO swapped in after the stat then opens at
 * once instead of waiting), and the stat of the descriptor must be of the same file. A file system
 * that hangs in the instant between the probe and our own open still holds us; that window is
 * microseconds, where a hung server holds every open.
 */
export async function openLocalSource(path: string, timeoutMs = LOCAL_OPEN_TIMEOUT_MS): Promise<OpenedSource> {
  const started = Date.now()
  await probe(path, timeoutMs)
  const opening = openChecked(path)
  const left = timeoutMs - (Date.now() - started)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    // Only a file system that hangs after the probe came back gets here (the window described
    // above), which no test can time; whatever the open gives after this, nobody takes.
    /* c8 ignore start */
    timer = setTimeout(() => {
      reject(new SourceOpenTimeoutError(path, timeoutMs))
      void opening.then(({ handle }) => handle.close(), () => undefined)
    }, Math.max(0, left))
    /* c8 ignore stop */
  })
  try {
    return await Promise.race([opening, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Stats `path`, refuses what is not a regular file, opens it and checks the descriptor is that file. */
async function openChecked(path: string): Promise<OpenedSource> {
  let named: BigIntStats
  let handle: FileHandle
  try {
    named = await stat(path, { bigint: true })
    if (!named.isFile()) throw notAFile(path, named)
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (cause) {
    throw cause instanceof SourceOpenError ? cause : openFailure(path, cause)
  }
  // The path named another file between the stat and the open (replaced in that instant), or the
  // stat of a just-opened descriptor failed: races between two system calls that no test can set up.
  /* c8 ignore start */
  try {
    const stats = await handle.stat({ bigint: true })
    if (!stats.isFile() || stats.ino !== named.ino || stats.dev !== named.dev) {
      throw new SourceOpenError(`source ${path} was replaced while it was being opened`, 'try again once whatever writes it is done')
    }
    return { handle, stats }
  } catch (err) {
    await handle.close()
    throw err
  }
  /* c8 ignore stop */
}

/**
 * What a child process has to do to show the path can be opened in time: stat it (`test -f`) and,
 * if it is a regular file, open it (`exec 3<`). Anything else (missing, a FIFO, a directory) is
 * only stat'ed: a FIFO's open would wait for a writer, and our own stat reports the rest.
 */
const PROBE_SCRIPT = 'test ! -f "$1" || exec 3<"$1"'

/**
 * Resolves once a child process has stat'ed and opened `path` (or found it is not a regular file),
 * whatever it found: the real stat and open follow here, with their own messages. Rejects with
 * `SourceOpenTimeoutError` if the child has not finished within `timeoutMs`, and kills it; a
 * process blocked in the kernel dies as soon as its call lets go, and the daemon does not wait.
 */
function probe(path: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', PROBE_SCRIPT, 'snapmount-open-probe', path], { stdio: 'ignore' })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      child.unref()
      reject(new SourceOpenTimeoutError(path, timeoutMs))
    }, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    child.once('exit', done)
    // No /bin/sh to run (a system without one): our own stat and open follow unguarded.
    /* c8 ignore next */
    child.once('error', done)
  })
}

function notAFile(path: string, stats: BigIntStats): SourceOpenError {
  return new SourceOpenError(
    `source ${path} is not a regular file (${kindOf(stats)})`,
    'give the path of a raw image file (directories, devices, FIFOs and sockets are not supported)',
  )
}

function kindOf(stats: BigIntStats): string {
  if (stats.isDirectory()) return 'a directory'
  if (stats.isFIFO()) return 'a FIFO'
  if (stats.isBlockDevice()) return 'a block device'
  if (stats.isCharacterDevice()) return 'a character device'
  return 'a socket'
}

function openFailure(path: string, cause: unknown): SourceOpenError {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === 'ENOENT') {
    return new SourceOpenError(`source ${path} does not exist`, 'check the path', { cause })
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new SourceOpenError(
      `source ${path} is not readable (${code})`,
      'grant read permission to the user running snapmount',
      { cause },
    )
  }
  return new SourceOpenError(`cannot open source ${path}: ${describe(cause)}`, 'check the path', { cause })
}

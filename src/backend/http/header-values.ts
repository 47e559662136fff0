import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { SecretSource } from '../../config/config.js'
import type { Logger } from '../../log.js'
import type { OpenContext } from '../open-context.js'
import { SourceOpenError, describe } from '../errors.js'
import { isSafeFieldValue } from '../remote/range-client.js'

/**
 * How long after a change in a secret file's folder the file is read again. Editors and rotation
 * tools replace a file in a few steps within milliseconds (a temporary file renamed over it, or a
 * backup, a truncation and a write); reading once they have settled reads the new value instead
 * of an empty or missing file in between.
 */
const SETTLE_MS = 100

/** The header values a snapshot sends now; a value from a file follows the file. */
export interface HeaderValues {
  /** The values to send; the same object until one of them changes. */
  current(): Readonly<Record<string, string>>
  /**
   * Reads the values from files again now (on SIGHUP, or when the server refused credentials a
   * rotation may have replaced) and resolves once the values are up to date with the files.
   */
  reread(): Promise<void>
  /** Stops following the files. */
  close(): void
}

/** A header whose value is read from a file, and whether that file could be read last time. */
interface FileValue {
  readonly header: string
  readonly path: string
  failing: boolean
}

/**
 * Reads the values of a snapshot's headers (plain, from the environment or from files) and
 * follows the files: each one's folder is watched, so a file rewritten in place, replaced by a
 * rename (editors, `mv`) or swapped as Kubernetes swaps secret volumes (a symlinked folder) is
 * read again within SETTLE_MS; `context.onReload` (SIGHUP) reads them again too. A file missing,
 * empty or unreadable for a while (mid-rotation) keeps the value read before, with one warning.
 * The environment cannot change under a running process, so values from it are read once.
 * Refuses (SourceOpenError) when a value cannot be read now, before anything is watched.
 */
export async function openHeaderValues(snapshot: string, sources: Record<string, SecretSource>, context: Pick<OpenContext, 'env' | 'logger' | 'onReload'>): Promise<HeaderValues> {
  const { env, logger, onReload } = context
  let values: Record<string, string> = {}
  const files: FileValue[] = []
  for (const [header, source] of Object.entries(sources)) {
    if ('file' in source) {
      values[header] = await readAtOpen(snapshot, header, source.file)
      files.push({ header, path: source.file, failing: false })
    } else {
      values[header] = 'value' in source ? source.value : fromEnvironment(snapshot, header, source.env, env)
    }
  }

  const readFiles = async () => {
    let next = values
    for (const file of files) {
      const value = await readValue(file.path).catch((err: unknown) => err as Error)
      if (typeof value === 'string' && value === next[file.header]) {
        file.failing = false
      } else if (typeof value === 'string') {
        next = { ...next, [file.header]: value }
        file.failing = false
        logger.info(`snapshot ${snapshot}: header ${file.header} read again from ${file.path}: a new value is sent from now on`)
      } else if (!file.failing) {
        file.failing = true
        logger.warn(`snapshot ${snapshot}: header ${file.header}: ${file.path} cannot be read now (${value.message}); still sending the value read before`)
      }
    }
    values = next
  }
  // One pass at a time, in order, so an older read never overwrites a newer one; calls made while
  // a pass waits to start join it.
  let last = Promise.resolve()
  let queued: Promise<void> | undefined
  const reread = () => {
    queued ??= last = last.then(() => {
      queued = undefined
      return readFiles()
    })
    return queued
  }

  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    clearTimeout(timer)
    timer = setTimeout(() => void reread(), SETTLE_MS)
  }
  const watchers = [...new Set(files.map(({ path }) => dirname(path)))].map((folder) => watchFolder(folder, changed, logger))
  const unsubscribe = files.length > 0 ? onReload?.(() => void reread()) : undefined
  return {
    current: () => values,
    reread,
    close() {
      clearTimeout(timer)
      for (const watcher of watchers) watcher?.close()
      unsubscribe?.()
    },
  }
}

/** Watches `folder` for any change; a folder that cannot be watched leaves the values to SIGHUP. */
function watchFolder(folder: string, changed: () => void, logger: Logger): FSWatcher | undefined {
  // Reached only when inotify fails: its limits exhausted (fs.inotify.max_user_watches), which a
  // test cannot cause without breaking every other process on the machine. A folder deleted
  // under the watch gives rename events, not an error.
  /* c8 ignore next 2 */
  const unwatched = (err: unknown) =>
    logger.warn(`cannot watch ${folder} for changes (${describe(err)}): header values from files in it are read again on SIGHUP only`)
  try {
    // Not persistent: a watch alone never keeps the process alive.
    return watch(folder, { persistent: false }, changed).on('error', unwatched)
    /* c8 ignore start */
  } catch (err) {
    unwatched(err)
    return undefined
  }
  /* c8 ignore stop */
}

function fromEnvironment(snapshot: string, header: string, name: string, env: OpenContext['env']): string {
  const value = env[name]
  if (value === undefined || value === '') {
    throw new SourceOpenError(
      `snapshot ${snapshot}: header ${header} comes from the environment variable ${name}, which is not set`,
      `set ${name} in the daemon's environment (under systemd: Environment= or EnvironmentFile=)`,
    )
  }
  return value
}

async function readAtOpen(snapshot: string, header: string, path: string): Promise<string> {
  try {
    return await readValue(path)
  } catch (cause) {
    throw new SourceOpenError(`snapshot ${snapshot}: header ${header}: cannot read ${path} (${describe(cause)})`, 'check the file and its permissions', { cause })
  }
}

/** A header value from a file: its text less one trailing newline; empty or multi-line is refused. */
async function readValue(path: string): Promise<string> {
  // A trailing newline is how editors and `echo` end files; it is never part of a token.
  const value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '')
  if (value === '') throw new Error('it is empty')
  if (!isSafeFieldValue(value)) throw new Error('it has a line break or NUL inside')
  return value
}

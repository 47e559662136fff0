import { open, type FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { SourceOpenError, describe } from './errors.js'

/** An opened local source: its descriptor and the stat taken on that descriptor. */
export interface OpenedSource {
  handle: FileHandle
  stats: Stats
}

/**
 * Opens a local image read-only and checks it is a regular file, turning each failure into a
 * `SourceOpenError` that names the path and the fix. Stat is taken on the descriptor, so the size
 * is the size of the file we will read, even if the path is replaced afterwards.
 */
export async function openLocalSource(path: string): Promise<OpenedSource> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (cause) {
    throw openFailure(path, cause)
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) {
      throw new SourceOpenError(
        `source ${path} is not a regular file`,
        'give the path of a raw image file (directories and devices are not supported)',
      )
    }
    return { handle, stats }
  } catch (err) {
    await handle.close()
    throw err
  }
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

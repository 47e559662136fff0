import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { nodeCrypto } from '../lazy-builtins.js'

/**
 * Writes `text` to `path` so that a reader (the next cold start, a crash in between) sees either
 * the old file or the whole new one, never part of one: a temporary file in the same folder (so
 * the rename stays within one file system), made owner-only (0600, like the rest of snapmount's
 * state) and exclusively, written and fsync'ed, then renamed over `path`, and the folder fsync'ed
 * so the rename itself survives a crash. A missing folder is made, owner-only (0700). On failure
 * the temporary file is removed and the error goes up.
 */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const folder = dirname(path)
  await mkdir(folder, { recursive: true, mode: 0o700 })
  const temp = join(folder, `.${basename(path)}.${process.pid}.${nodeCrypto().randomBytes(4).toString('hex')}.tmp`)
  const file = await open(temp, 'wx', 0o600)
  try {
    try {
      await file.writeFile(text)
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => {})
    throw err
  }
  const dir = await open(folder, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}

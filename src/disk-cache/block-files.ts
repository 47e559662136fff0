import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/** The folder under the cache directory that holds one folder of block files per snapshot identity. */
export const DATA_DIR = 'data'

/**
 * The disk cache's data: one file per block, `data/<identity key>/<block number>`. Chosen over one
 * sparse file per snapshot because evicting a block is then an unlink, which really frees its
 * space, where a sparse file needs fallocate(PUNCH_HOLE), a native call Node does not have; the
 * cost is an open and a close per block read, and ~80 000 files for a 10 GiB cache of 128 KiB
 * blocks, which ext4 and xfs index by name. A block is written under a temporary name and renamed,
 * so a block file is never seen half-written under its own name (and a torn one fails its digest).
 */
export class BlockFiles {
  private nextTemp = 0
  /** Temporary files being written now: not orphans. */
  private readonly writing = new Set<string>()

  constructor(readonly dir: string) {}

  private folder(key: string): string {
    return join(this.dir, DATA_DIR, key)
  }

  /** Where block `block` of snapshot identity `key` is kept (tests corrupt it there). */
  path(key: string, block: number): string {
    return join(this.folder(key), String(block))
  }

  /** Makes the folder of snapshot identity `key`. */
  async prepare(key: string): Promise<void> {
    await mkdir(this.folder(key), { recursive: true })
  }

  /** Writes a block's file and waits for fdatasync: once this resolves, the bytes survive a power loss. */
  async write(key: string, block: number, data: Buffer): Promise<void> {
    const temp = `${this.path(key, block)}.${this.nextTemp++}.tmp`
    this.writing.add(temp)
    try {
      // The folder is made when the snapshot is attached; made again if it went meanwhile.
      const file = await open(temp, 'w').catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
        await this.prepare(key)
        return open(temp, 'w')
      })
      try {
        let done = 0
        while (done < data.length) done += (await file.write(data, done, data.length - done, done)).bytesWritten
        await file.datasync()
      } finally {
        await file.close()
      }
      await rename(temp, this.path(key, block))
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw err
    } finally {
      this.writing.delete(temp)
    }
  }

  /**
   * Reads a block's file into `into` (its expected length): the bytes read, fewer when the file
   * is shorter. Rejects with the system error (ENOENT when the file is gone).
   */
  async read(key: string, block: number, into: Buffer): Promise<number> {
    const file = await open(this.path(key, block), 'r')
    try {
      let done = 0
      while (done < into.length) {
        const { bytesRead } = await file.read(into, done, into.length - done, done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return done
    } finally {
      await file.close()
    }
  }

  /** Removes a block's file; a file already gone is fine. */
  async remove(key: string, block: number): Promise<void> {
    await unlink(this.path(key, block)).catch(ignoreMissing)
  }

  /**
   * Removes every file of snapshot identity `key` that is not a block `keep` accepts: orphans of a
   * crash (written, never indexed) and temporary files. Returns how many it removed.
   */
  async sweep(key: string, keep: (block: number) => boolean): Promise<number> {
    const names = await readdir(this.folder(key)).catch((err: NodeJS.ErrnoException) => (ignoreMissing(err), []))
    let removed = 0
    for (const name of names) {
      const path = join(this.folder(key), name)
      if ((/^\d+$/.test(name) && keep(Number(name))) || this.writing.has(path)) continue
      await unlink(path).catch(ignoreMissing)
      removed++
    }
    return removed
  }

  /** Folders of snapshot identities with files. */
  async keys(): Promise<string[]> {
    return readdir(join(this.dir, DATA_DIR)).catch((err: NodeJS.ErrnoException) => (ignoreMissing(err), []))
  }

  /** Removes the folder of snapshot identity `key` and every file in it. */
  async removeAll(key: string): Promise<void> {
    await rm(this.folder(key), { recursive: true, force: true })
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err
}

// The images the bench reads, the byte checks made against them, and their warm-up.

import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { progress } from './progress.mjs'
import { IMAGE_BYTES } from './settings.mjs'

/**
 * Byte checks: slices at offsets spread over the image (one in each 1/16th, at a different place
 * in each), read with O_DIRECT so they come from the daemon now (its cache, or the server), and
 * hashed together; compared with the same slices of the source. 1 MiB slices after sequential
 * reads, 4 KiB slices (the random reads' size) after random reads. The whole image is not hashed:
 * sha256sum runs at ~0.3 GB/s here, and a full read over a slow path would cost more than the rest.
 */
export function sliceSet(imageBytes, sliceBytes, count = 16) {
  const region = imageBytes / count
  const perRegion = region / sliceBytes
  return Object.freeze({ sliceBytes, indexes: Array.from({ length: count }, (_, i) => i * perRegion + ((i * 7919 + 37) % (perRegion - 1))) })
}
export const MIB_SLICES = sliceSet(IMAGE_BYTES, 2 ** 20)
export const KIB4_SLICES = sliceSet(IMAGE_BYTES, 4096, 32)

/** sha256 of `set`'s slices of `path`, each read by dd with `iflag` (direct from a mount, fullblock from the source). */
export async function sliceSha256(procs, path, iflag, set) {
  const script = 'f=$1; flag=$2; bs=$3; shift 3; for i; do dd if="$f" bs="$bs" count=1 skip="$i" iflag="$flag" status=none || exit 1; done | sha256sum'
  const { stdout } = await procs.run('bash', ['-o', 'pipefail', '-c', script, 'bash', path, iflag, String(set.sliceBytes), ...set.indexes.map(String)])
  return stdout.split(' ')[0]
}

/** sha256 of `bytes` zeros: what the null backend's file must hash to. */
export function zeroSha256(bytes) {
  const hash = createHash('sha256')
  const zeros = Buffer.alloc(64 * 2 ** 20)
  for (let done = 0; done < bytes; done += zeros.length) hash.update(zeros)
  return hash.digest('hex')
}

/** One source image: made once and reused across runs, warmed into the page cache, its slice hashes. */
export class SourceImage {
  /** The expected hashes of each slice set checked against this image, computed once per run. */
  #expected = new Map()

  constructor(procs, path, bytes) {
    this.procs = procs
    this.path = path
    this.bytes = bytes
  }

  /**
   * Reuses the image if it has the right size, else writes one: an AES-128-CTR keystream under a
   * fixed key, so it is incompressible, never a run of zero pages, identical on every machine (and
   * the 4 GiB image starts with the 1 GiB one), and generated at GB/s. Written beside the target
   * and renamed, so an interrupted run never leaves a short image to be reused.
   */
  async ensure() {
    await mkdir(dirname(this.path), { recursive: true })
    const existing = await stat(this.path).catch(() => undefined)
    if (existing?.size === this.bytes) return 'reused'
    progress(`writing ${this.path} (${this.bytes / 2 ** 30} GiB)`)
    const partial = `${this.path}.partial-${process.pid}`
    const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 's'), Buffer.alloc(16))
    const zeros = Buffer.alloc(8 * 2 ** 20)
    const handle = await open(partial, 'w')
    try {
      for (let written = 0; written < this.bytes; written += zeros.length) await handle.write(cipher.update(zeros))
      await handle.close()
      await rename(partial, this.path)
    } catch (err) {
      await handle.close().catch(() => {})
      await rm(partial, { force: true })
      throw err
    }
    return 'created'
  }

  /** Reads the whole image once so it sits in the page cache, as it would under a busy daemon or server. */
  async warm() {
    await this.procs.run('dd', [`if=${this.path}`, 'of=/dev/null', 'bs=1M', 'status=none'])
  }

  /** sha256 of `set`'s slices of this image, read from it directly. */
  async expectedSha(set) {
    if (!this.#expected.has(set)) this.#expected.set(set, await sliceSha256(this.procs, this.path, 'fullblock', set))
    return this.#expected.get(set)
  }
}

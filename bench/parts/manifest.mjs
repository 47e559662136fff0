// Issue 20 in the HTTP parts: snapmount with an integrity manifest as one more mount of each
// condition (its overhead is that column against snapmount's), and the bit-flipping row: nginx
// behind tools/corrupting-proxy.mjs, which flips a bit in FLIP_SHARE of the range responses keeping
// status, headers and ETag, read whole through snapmount without and with the manifest.

import { open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCorruptingProxy } from '../../tools/corrupting-proxy.mjs'
import { withDaemon } from '../lib/daemons.mjs'
import { fmt } from '../lib/format.mjs'
import { progress } from '../lib/progress.mjs'
import { MANIFEST_KEY, NAME, SNAPMOUNT } from '../lib/settings.mjs'

/** Issue 20's fault: 1 % of range responses damaged. */
export const FLIP_SHARE = 0.01
/** Compared a chunk at a time with the source: one read's worth, as a guest's sequential read. */
const COMPARE_BYTES = 1024 * 1024

/** Writes the image's manifest (snapmount manifest create, defaults) into `dir`: its path and pinned SHA-256. */
export async function makeManifest(procs, imagePath, dir) {
  const path = join(dir, 'image.manifest')
  const began = performance.now()
  const { stdout } = await procs.run(SNAPMOUNT, ['manifest', 'create', imagePath, '--output', path])
  progress(`manifest of ${imagePath} made in ${((performance.now() - began) / 1000).toFixed(1)} s`)
  return { path, sha256: stdout.slice(0, 64) }
}

/** snapmount reading `url` with the manifest pinned: a config file per daemon (per-snapshot settings need one). */
export function manifestMount(url, manifest, dir) {
  let configs = 0
  return {
    key: MANIFEST_KEY,
    title: 'snapmount + manifest',
    command: async (mnt) => {
      const config = join(dir, `manifest-${++configs}.json`)
      const snapshot = { name: NAME, type: 'http', url, manifest: { path: manifest.path, sha256: manifest.sha256 } }
      await writeFile(config, JSON.stringify({ mountpoint: mnt, snapshots: [snapshot] }))
      return [SNAPMOUNT, 'mount', '--config', config]
    },
  }
}

/** Reads `file` whole, 1 MiB at a time, against `sourcePath`: bytes read, bytes that differ, reads that failed. */
async function compareWithSource(file, sourcePath) {
  const [mounted, source] = await Promise.all([open(file, 'r'), open(sourcePath, 'r')])
  const got = Buffer.alloc(COMPARE_BYTES)
  const want = Buffer.alloc(COMPARE_BYTES)
  let bytesRead = 0
  let wrongBytes = 0
  let failedReads = 0
  try {
    const { size } = await source.stat()
    for (let offset = 0; offset < size; offset += COMPARE_BYTES) {
      const length = Math.min(COMPARE_BYTES, size - offset)
      await source.read(want, 0, length, offset)
      const read = await mounted.read(got, 0, length, offset).catch(() => undefined)
      if (!read || read.bytesRead !== length) {
        failedReads++
        continue
      }
      bytesRead += length
      for (let i = 0; i < length; i++) if (got[i] !== want[i]) wrongBytes++
    }
  } finally {
    await Promise.all([mounted.close(), source.close()])
  }
  return { bytesRead, wrongBytes, failedReads }
}

/**
 * The bit-flipping row: snapmount without and with the manifest, each on a fresh daemon reading
 * the whole image through the corrupting proxy in front of `origin` (nginx, no delay): bytes read,
 * bytes that differ from the source, reads that failed, responses and flips the proxy made, and
 * the blocks the daemon logged as not matching.
 */
export async function measureCorruption(ctx, { origin, file, manifest, dir }) {
  // Every (1 / FLIP_SHARE)th range response of each daemon's read, from the middle of the first
  // hundred on: a 1 GiB read is only ~160 responses of up to 8 MiB, so a random 1 % could flip
  // none of them (it did), and the row would pass without a bad block to catch.
  const every = Math.round(1 / FLIP_SHARE)
  let ranged = 0
  const proxy = await startCorruptingProxy({ origin, corrupt: ({ path, start }) => path === `/${file}` && start !== undefined && ++ranged % every === every / 2 })
  const service = ctx.procs.addService({ stop: () => proxy.close() })
  const url = proxy.url(`/${file}`)
  const rows = {}
  try {
    for (const mount of [{ key: 'snapmount', title: 'snapmount', command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=${url}`] }, manifestMount(url, manifest, dir)]) {
      const [flips, responses] = [proxy.flips.length, proxy.responses()]
      ranged = 0
      rows[mount.key] = await withDaemon(ctx, mount, async (mounted, daemon) => {
        const compared = await compareWithSource(mounted, ctx.image.path)
        const logged = new Set([...daemon.log.matchAll(/block (\d+) \(bytes \d+-\d+\) does not match the manifest/g)].map((match) => Number(match[1])))
        const flipped = new Set(proxy.flips.slice(flips).map(({ offset }) => Math.floor(offset / (128 * 1024))))
        return { ...compared, responses: proxy.responses() - responses, flips: proxy.flips.length - flips, flippedBlocks: flipped.size, loggedBlocks: [...flipped].filter((block) => logged.has(block)).length }
      })
      const r = rows[mount.key]
      progress(`${mount.title} through the bit-flipping proxy: ${fmt(r.bytesRead / 2 ** 20)} MiB read, ${r.flips} of ${r.responses} responses flipped, ${r.wrongBytes} wrong bytes, ${r.failedReads} failed reads, ${r.loggedBlocks} of ${r.flippedBlocks} flipped blocks logged`)
    }
  } finally {
    await ctx.procs.stopService(service)
  }
  return { flipShare: FLIP_SHARE, without: strip(rows.snapmount), with: strip(rows[MANIFEST_KEY]) }
}

/** The row's fields for the JSON (withDaemon adds its own: start time, RSS, exit). */
function strip({ bytesRead, wrongBytes, failedReads, responses, flips, flippedBlocks, loggedBlocks, exit }) {
  return { bytesRead, wrongBytes, failedReads, responses, flips, flippedBlocks, loggedBlocks, exit }
}

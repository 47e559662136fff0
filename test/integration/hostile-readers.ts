import t from 'tap'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage, readSource } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'
import { ddRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'

const MiB = 2 ** 20
const READERS = 256
const CACHE_MIB = 64
/**
 * Each reader reads a stretch of its own in 1 MiB O_DIRECT reads: the first 16 (as many streams
 * as readahead tracks per file) 16 MiB each, so their readahead holds room in the cache, the rest
 * 2 MiB each.
 */
const STREAMERS = 16
const STREAM_MIB = 16
const READ_MIB = 2
function stretch(i: number): { offset: number; length: number } {
  if (i < STREAMERS) return { offset: i * STREAM_MIB * MiB, length: STREAM_MIB * MiB }
  return { offset: (STREAMERS * STREAM_MIB + (i - STREAMERS) * READ_MIB) * MiB, length: READ_MIB * MiB }
}

/** The peak resident set of a process (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024
}

/**
 * Issue 14 item 11: memory stays bounded under hostile readers. 256 processes read with O_DIRECT
 * in 1 MiB reads (every read reaches the daemon; 16 of them long enough for readahead) through a
 * mount with the least cache a mount takes (64 MiB), and every byte is right. Demand fetches wait for room under the cache's
 * bound instead of allocating past it (src/cache/block-cache.ts waitForRoom).
 *
 * The limit is on what the readers add to the daemon's peak RSS (VmHWM) over its RSS once
 * mounted and read once (~85 MiB here, Node and the modules it loaded): the cache's bound and the
 * issue's 100 MiB for the rest (the arena's 4 MiB headroom, libfuse's 1 MiB reply buffer per read
 * in flight, V8's heap for 256 pending reads). Measured under load 10-24 on the 2-core test
 * machine: 77-98 MiB added (the code before demand fetches waited for room: 88); a tighter 40 MiB
 * allowance left too thin a margin on a loaded machine. The mount alone barely shows the old
 * overshoot: libfuse's 64 threads hand the daemon at most 64 reads at once, 64 MiB of demand
 * fetches, which is the smallest cache, and readahead on loopback lands at once; the deterministic
 * tests in test/cache/caching-backend.ts ("many demand readers at once", "in-flight fetches count
 * against the bound") drive the cache past that and fail on the old code.
 */
t.test(`${READERS} concurrent O_DIRECT readers of 1 MiB keep the daemon's memory bounded`, async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  // One MiB more than the readers read, for a first read that loads the read path's code.
  const size = (STREAMERS * STREAM_MIB + (READERS - STREAMERS) * READ_MIB + 1) * MiB
  const image = await makeRandomImage(www, 'disk.raw', size, 23)
  const nginx = await startNginx(t, www)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, ['--cache-size-mib', String(CACHE_MIB), mountpoint, nginx.url('/disk.raw')])
  const mounted = join(mountpoint, 'disk.raw')
  // The daemon loads some modules at the first read (src/cli/ loads lazily what start does not
  // need): in the baseline, so the limit is on what the readers' memory adds.
  t.ok((await ddRange(mounted, size - MiB, MiB, { direct: true, blockSize: MiB })).equals(await readSource(image, size - MiB, MiB)), 'a first read')
  const before = await peakRss(daemon.process.pid!)
  // No byte is read twice, so none is a cache hit but by readahead.
  const results = await Promise.all(
    Array.from({ length: READERS }, async (_, i) => {
      const { offset, length } = stretch(i)
      const got = await ddRange(mounted, offset, length, { direct: true, blockSize: MiB })
      return got.equals(await readSource(image, offset, length))
    }),
  )
  const peak = await peakRss(daemon.process.pid!)
  t.equal(results.filter((right) => !right).length, 0, `every reader got the source's bytes`)
  const added = peak - before
  t.comment(`daemon peak RSS ${(before / MiB).toFixed(0)} MiB once mounted, ${(peak / MiB).toFixed(0)} MiB after the readers`)
  t.ok(added < (CACHE_MIB + 100) * MiB, `the readers added ${(added / MiB).toFixed(0)} MiB to the peak RSS: under the ${CACHE_MIB} MiB cache + 100 MiB`)
  await daemon.stop()
})

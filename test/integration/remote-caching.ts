import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { KERNEL_READAHEAD_KIB } from '../../src/fuse/kernel-readahead.js'
import { mountEntry } from '../../src/fuse/mountpoint.js'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { startNginx, type Nginx } from '../fixtures/nginx.js'
import { ddRange } from '../fixtures/readers.js'
import { readSource } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

const run = promisify(execFile)
const MiB = 2 ** 20

/** sha256 of a whole file, read by a child process (the daemon's own process must not touch the mount). */
async function sha256(path: string): Promise<string> {
  const { stdout } = await run('sha256sum', [path])
  return stdout.split(' ')[0]!
}

/** The ranged GETs nginx has answered (206) so far. */
async function rangedGets(nginx: Nginx) {
  return (await nginx.requests()).filter((request) => request.status === 206)
}

/**
 * nginx logs a request after sending its last byte, so a reader may finish first; and readahead
 * may still be landing. Counts are taken once the log has stopped growing for `quietMs`.
 */
async function settledRangedGets(nginx: Nginx, quietMs = 100) {
  let seen = await rangedGets(nginx)
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, quietMs))
    const now = await rangedGets(nginx)
    if (now.length === seen.length) return now
    seen = now
  }
}

/**
 * The caching layers seen from outside, through a mount of an nginx-served image whose size is
 * above the daemon's cache (64 MiB, the least it takes): the kernel's page cache keeps what was
 * read across opens, the daemon's readahead turns a sequential read into few large ranges, and a
 * direct read reaches the daemon. The limits here are loose on purpose (a busy machine, the
 * kernel's reclaim): the exact costs are asserted deterministically in test/cache/caching-backend.ts
 * ("a kernel-like sequential reader", "an image read twice stays cached") and test/cache/readahead.ts.
 */
t.test('remote snapshots through the caches', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const size = 96 * MiB + 4321
  const image = await makeRandomImage(www, 'disk.raw', size, 21)
  const nginx = await startNginx(t, www)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, ['--cache-size-mib', '64', mountpoint, nginx.url('/disk.raw')])
  t.teardown(() => daemon.stop())
  const mounted = join(mountpoint, 'disk.raw')
  const entry = await mountEntry(mountpoint)
  t.equal(await readFile(`/sys/class/bdi/${entry!.device}/read_ahead_kb`, 'utf8'), `${KERNEL_READAHEAD_KIB}\n`, 'the kernel reads ahead 1 MiB on the mount')
  const gets = () => rangedGets(nginx)
  const settledGets = (quietMs?: number) => settledRangedGets(nginx, quietMs)

  const before = (await gets()).length
  const expected = await sha256(image)
  t.equal(await sha256(mounted), expected, 'a sequential read gives the source bytes')
  const sequential = (await settledGets()).slice(before)
  const fetched = sequential.reduce((sum, request) => sum + request.bytes, 0)
  t.ok(fetched <= 1.5 * size, `fetched ${(fetched / size).toFixed(3)} bytes per byte read`)
  t.ok(sequential.length < size / (128 * 1024), `${sequential.length} ranged GETs for ${size} bytes: readahead asks for large ranges`)

  const afterFirst = (await settledGets()).length
  t.equal(await sha256(mounted), expected, 'read again, by a new open')
  // The kernel keeps the pages across opens, most of them at least: the test machines' proactive
  // reclaim (DAMON) may page some out. Without it, the second pass would fetch the whole image again.
  const again = (await settledGets()).slice(afterFirst)
  const refetched = again.reduce((sum, request) => sum + request.bytes, 0)
  t.ok(refetched <= 0.25 * size, `the second pass fetched ${refetched} bytes in ${again.length} GETs: the kernel kept the pages across opens`)

  // O_DIRECT skips the page cache, so the same range now reaches the daemon, and the daemon's
  // cache no longer holds the middle of the first pass: a stream's read-once data leaves it once
  // the small queue is full (the start, fetched on demand before readahead began, may stay).
  const direct = await ddRange(mounted, 40 * MiB, MiB, { direct: true, blockSize: 128 * 1024 })
  t.ok(direct.equals(await readSource(image, 40 * MiB, MiB)))
  t.ok((await gets()).length > afterFirst + again.length, 'a direct read of evicted data does reach the server')
  const offset = 29 * MiB + 12 * 4096
  t.ok((await ddRange(mounted, offset, 4096, { direct: true, blockSize: 4096 })).equals(await readSource(image, offset, 4096)), 'a direct 4 KiB read far from it')
})

/**
 * libfuse 3 (vendor/fuse-native) lets the kernel pass a read of up to 1 MiB in one request, where
 * libfuse 2 cut every read into 128 KiB ones: one O_DIRECT 1 MiB read of a cold cache must reach
 * the daemon whole and cost one 1 MiB range, not eight 128 KiB ones.
 */
t.test('a 1 MiB read reaches the daemon as one request and costs one range', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const image = await makeRandomImage(www, 'disk.raw', 16 * MiB, 22)
  const nginx = await startNginx(t, www)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, nginx.url('/disk.raw')])
  t.teardown(() => daemon.stop())
  const mounted = join(mountpoint, 'disk.raw')
  t.equal((await stat(mounted)).blksize, MiB, 'st_blksize advertises 1 MiB reads')

  const before = (await rangedGets(nginx)).length
  const got = await ddRange(mounted, 8 * MiB, MiB, { direct: true, blockSize: MiB })
  t.ok(got.equals(await readSource(image, 8 * MiB, MiB)), 'the bytes')
  t.same((await settledRangedGets(nginx)).slice(before).map((request) => request.bytes), [MiB], 'one ranged GET of 1 MiB')
})

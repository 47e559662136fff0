import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { startNginx, type Nginx } from '../fixtures/nginx.js'
import { diskCacheSite, fileSha256 as sha256 } from '../fixtures/disk-cache-site.js'
import { tempDir } from '../fixtures/temp-dir.js'

const run = promisify(execFile)
const MiB = 2 ** 20


/** Body bytes nginx has sent for ranged GETs (206) so far; logged once each is sent, so waited for. */
async function servedBytes(nginx: Nginx): Promise<number> {
  let seen = -1
  for (;;) {
    const now = (await nginx.requests()).filter((request) => request.status === 206).reduce((sum, request) => sum + request.bytes, 0)
    if (now === seen) return now
    seen = now
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The disk cache seen from outside: an nginx-served image read through a mount with --cache-dir,
 * then read again by a new daemon on the same directory (a restart), then replaced on the server.
 */
t.test('the disk cache keeps blocks across restarts, and never serves a replaced object\'s', async (t) => {
  const size = 24 * MiB + 4321
  const { dir, www, cacheDir, mountpoint, mounted, image, nginx } = await diskCacheSite(t, size, 31)
  const expected = await sha256(image)
  const args = ['--cache-dir', cacheDir, '--cache-size-mib', '64', mountpoint, nginx.url('/disk.raw')]

  const first = await startDaemon(t, mountpoint, args)
  t.equal(await sha256(mounted), expected, 'first read: the source bytes')
  t.ok((await servedBytes(nginx)) >= size, 'fetched from the server')

  const second = await runCli(['mount', '--cache-dir', cacheDir, join(dir, 'other'), nginx.url('/disk.raw')])
  t.equal(second.code, 2, 'a second daemon on the same cache directory exits 2')
  t.match(second.stderr, /disk cache .*cache is in use by another snapmount daemon; give each daemon its own cache_dir/, 'saying why')
  t.equal(await first.stop(), 0, 'stopped')

  const restarted = await startDaemon(t, mountpoint, args)
  const beforeReread = await servedBytes(nginx)
  t.equal(await sha256(mounted), expected, 'after a restart: the same bytes')
  t.equal((await servedBytes(nginx)) - beforeReread, 0, '0 bytes from the server')
  t.equal(await restarted.stop(), 0, 'stopped')

  // The object replaced: same size, another ETag (nginx makes it from mtime and size).
  const replaced = await makeRandomImage(www, 'disk.raw', size, 32)
  await utimes(replaced, new Date(), new Date(Date.now() + 5000))
  const expectedNew = await sha256(replaced)
  const third = await startDaemon(t, mountpoint, args)
  const beforeNew = await servedBytes(nginx)
  t.equal(await sha256(mounted), expectedNew, 'the replaced object\'s bytes, none of the old')
  t.ok((await servedBytes(nginx)) - beforeNew >= size, 'all of it fetched from the server')
  t.equal(await third.stop(), 0, 'stopped')
})

/**
 * A full disk: the cache directory on a 3 MiB tmpfs, under a bound far above it. Reads go on from
 * the source with the right bytes; the failure is logged once.
 */
t.test('a full disk (ENOSPC): reads go on from the source, logged once', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  const cacheDir = join(dir, 'cache')
  const mountpoint = join(dir, 'mnt')
  await mkdir(www)
  await mkdir(mountpoint)
  await mkdir(cacheDir)
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', cacheDir])
  } catch (err) {
    t.comment(`skipped: cannot mount a tmpfs here: ${(err as Error).message}`)
    return
  }
  t.teardown(() => run('umount', ['-l', cacheDir]))
  const size = 16 * MiB + 17
  const image = await makeRandomImage(www, 'disk.raw', size, 33)
  const nginx = await startNginx(t, www)
  const daemon = await startDaemon(t, mountpoint, ['--cache-dir', cacheDir, '--disk-cache-size-gib', '1', mountpoint, nginx.url('/disk.raw')])
  t.equal(await sha256(join(mountpoint, 'disk.raw')), await sha256(image), 'the source bytes')
  t.equal(await daemon.stop(), 0, 'stopped')
  t.equal(daemon.stderr().match(/disk cache: cannot write to .* \(ENOSPC/g)?.length, 1, 'ENOSPC logged once')
})

/**
 * warm fills the disk cache (a restart then reads with 0 bytes from the server); status shows the
 * bytes on disk per snapshot and the disk cache's line; the metrics endpoint has its series.
 */
t.test('warm, status and metrics with a disk cache', async (t) => {
  const size = 12 * MiB + 5
  const { dir, cacheDir, mountpoint, image, nginx } = await diskCacheSite(t, size, 34)
  const socket = join(dir, 'control.sock')
  const args = ['--cache-dir', cacheDir, '--control-socket', socket, '--metrics-listen', '127.0.0.1:0', mountpoint, nginx.url('/disk.raw')]
  const daemon = await startDaemon(t, mountpoint, args)
  const warm = await runCli(['warm', 'disk.raw', '--socket', socket])
  t.equal(warm.code, 0, warm.stderr)
  type Report = { metricsUrl: string; diskCache: { bytesInUse: number; misses: number }; snapshots: Array<{ diskBytes: number }> }
  // The last blocks warm read may still be on their way to the disk: asked again until written.
  let report: Report
  for (let tries = 0; ; tries++) {
    report = JSON.parse((await runCli(['status', '--socket', socket, '--json'])).stdout) as Report
    if (report.snapshots[0]!.diskBytes === 97 * 128 * 1024 || tries === 50) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(report.snapshots[0]!.diskBytes, 97 * 128 * 1024, 'the whole image on disk (97 blocks, in whole slots)')
  t.match(report.diskCache, { bytesInUse: 97 * 128 * 1024, misses: Math.ceil(size / (128 * 1024)) })
  const text = await runCli(['status', '--socket', socket])
  t.match(text.stdout, /disk cache: 12\.1 MiB of 10\.0 GiB on disk, 0\.0 % hits/)
  t.match(text.stdout, /^disk\.raw +http +12\.0 MiB +\S+ \S+ +12\.1 MiB /m)
  const metrics = await (await fetch(report.metricsUrl)).text()
  t.match(metrics, /^snapmount_disk_cache_misses_total 97$/m)
  t.match(metrics, /^snapmount_disk_cache_bytes 12713984$/m)
  t.match(metrics, /^snapmount_disk_cache_verify_failures_total 0$/m)
  t.equal(await daemon.stop(), 0, 'stopped')

  const restarted = await startDaemon(t, mountpoint, args)
  const before = await servedBytes(nginx)
  t.equal(await sha256(join(mountpoint, 'disk.raw')), await sha256(image), 'the image, after a restart')
  t.equal((await servedBytes(nginx)) - before, 0, 'with 0 bytes from the server: warm filled the disk cache')
  t.equal(await restarted.stop(), 0, 'stopped')
})

import t from 'tap'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, rename, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { shippedSlice, startFleetCache } from '../../tools/fleet-cache.mjs'
import { startDaemon } from '../fixtures/daemon.js'
import { ddRange } from '../fixtures/readers.js'
import { startNginx } from '../fixtures/nginx.js'
import { seededBytes, sha256 } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

// The caching tier of deploy/nginx, as users install it, between three daemons and an origin
// nginx: every host reads the right bytes, the origin sends about one copy, and the ETag pinning
// of every host holds through the tier.

const MiB = 1024 * 1024
/** The tier's slice: deploy/nginx/snapmount-cache.conf's `slice` (nginx's `256k` or `1m`), in bytes. */
const SLICE_BYTES = await shippedSlice().then((size) => Number(size.slice(0, -1)) * (size.endsWith('m') ? MiB : 1024))
/** snapmount's default cache block (cache_block_kib): its requests start on these. */
const BLOCK_BYTES = 128 * 1024
/** Not a whole number of slices, so the last, short slice is read and cached too. */
const IMAGE_SIZE = 24 * MiB + 12_345
const HOSTS = 3

function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path, { highWaterMark: MiB })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')))
  })
}

/** The Range header of each GET in an access log of tools/nginx.mjs: [first, last] byte. */
function ranges(log: string): Array<[number, number]> {
  return [...log.matchAll(/"GET [^"]*" range="bytes=(\d+)-(\d+)"/g)].map((match) => [Number(match[1]), Number(match[2])])
}

t.test('three hosts through the shipped caching tier', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const bytes = seededBytes(21, IMAGE_SIZE)
  await writeFile(join(www, 'disk.img'), bytes)
  const origin = await startNginx(t, www)
  const tier = await startFleetCache(`127.0.0.1:${origin.port}`)
  t.teardown(() => tier.stop())

  const mountpoints = await Promise.all(
    Array.from({ length: HOSTS }, async (_, host) => {
      const mountpoint = join(dir, `host${host}`)
      await mkdir(mountpoint)
      const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk=${tier.url('disk.img')}`])
      t.teardown(() => daemon.stop())
      return mountpoint
    }),
  )
  const hashes = await Promise.all(mountpoints.map((mountpoint) => fileSha256(join(mountpoint, 'disk'))))
  t.same(hashes, Array(HOSTS).fill(sha256(bytes)), 'every host reads the image byte for byte, all at once')

  const fromOrigin = (await origin.requests()).reduce((sum, request) => sum + request.bytes, 0)
  t.ok(fromOrigin <= 1.1 * IMAGE_SIZE, `the origin sent ${fromOrigin} bytes for ${HOSTS} hosts: at most 1.1 copies of ${IMAGE_SIZE}`)
  const originRanges = ranges(await origin.accessLog())
  t.ok(originRanges.length > 0, 'the tier asked the origin for ranges')
  t.ok(
    originRanges.every(([first]) => first % SLICE_BYTES === 0),
    `the origin sees only whole ${SLICE_BYTES / 1024} KiB slices: the same cache entries for every host`,
  )
  const hostRanges = ranges(await tier.accessLog())
  t.ok(
    hostRanges.every(([first, last]) => first % BLOCK_BYTES === 0 && ((last + 1) % BLOCK_BYTES === 0 || last + 1 >= IMAGE_SIZE || last === 0)),
    `hosts ask for block-aligned ranges (${hostRanges.length} requests; the one-byte probe at 0 aside)`,
  )

  const originEtag = (await fetch(origin.url('disk.img'), { method: 'HEAD' })).headers.get('etag')
  const throughTier = await fetch(tier.url('disk.img'), { headers: { range: 'bytes=0-0' } })
  await throughTier.arrayBuffer()
  t.equal(throughTier.headers.get('etag'), originEtag, "the tier passes the origin's ETag through")
  const stale = await fetch(tier.url('disk.img'), { headers: { range: 'bytes=0-0', 'if-match': '"an-older-version"' } })
  await stale.arrayBuffer()
  t.equal(stale.status, 412, 'a cached slice is refused to a host pinned to another version (If-Match holds through the tier)')
})

t.test('an image replaced at the origin while the tier holds part of it: old bytes or EIO, never a mix', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const before = seededBytes(22, 8 * MiB)
  await writeFile(join(www, 'disk.img'), before)
  const origin = await startNginx(t, www)
  const tier = await startFleetCache(`127.0.0.1:${origin.port}`)
  t.teardown(() => tier.stop())
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)

  // One host reads one block: the tier caches the first slice (and the HEAD), no more.
  const first = await startDaemon(t, mountpoint, [mountpoint, `disk=${tier.url('disk.img')}`])
  t.ok((await ddRange(join(mountpoint, 'disk'), 0, BLOCK_BYTES, { direct: true })).equals(before.subarray(0, BLOCK_BYTES)), 'one block, its slice cached in the tier')
  t.equal(await first.stop(), 0)

  // Same size, new bytes, new mtime: nginx's ETag changes; the tier still has the old first slice.
  const after = seededBytes(23, 8 * MiB)
  await writeFile(join(www, 'next.img'), after)
  // nginx's ETag is mtime (in seconds) and size: a minute on, as a real upload would be.
  const later = new Date(Date.now() + 60_000)
  await utimes(join(www, 'next.img'), later, later)
  await rename(join(www, 'next.img'), join(www, 'disk.img'))

  // The next host pins the version the tier answers with (the old one) and must get only its bytes.
  const next = await startDaemon(t, mountpoint, [mountpoint, `disk=${tier.url('disk.img')}`])
  t.teardown(() => next.stop())
  t.ok((await ddRange(join(mountpoint, 'disk'), 0, BLOCK_BYTES, { direct: true })).equals(before.subarray(0, BLOCK_BYTES)), 'the cached block: the pinned (old) version')
  // 1 MiB reads: with slices under 1 MiB, the first also spans slices the tier never cached (EIO).
  const slices = await Promise.all(
    Array.from({ length: 8 }, (_, slice) =>
      ddRange(join(mountpoint, 'disk'), slice * MiB, MiB, { direct: true }).then(
        (bytes) => (bytes.equals(before.subarray(slice * MiB, (slice + 1) * MiB)) ? 'old' : bytes.equals(after.subarray(slice * MiB, (slice + 1) * MiB)) ? 'new' : 'wrong'),
        (err: Error) => (/Input\/output error/.test(err.message) ? 'EIO' : err.message),
      ),
    ),
  )
  t.ok(slices.every((slice) => slice === 'old' || slice === 'EIO'), `every slice the old bytes or EIO, never new or mixed: ${slices.join(' ')}`)
  t.ok(slices.slice(4).every((slice) => slice === 'EIO'), 'slices the tier never cached, another version at the origin: EIO')
  t.match(next.stderr(), /412|changed/, 'and the daemon logs why')
})

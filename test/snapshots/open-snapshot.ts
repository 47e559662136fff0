import t from 'tap'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SnapshotSpec } from '../../src/config/config.js'
import { validateConfig } from '../../src/config/validate-config.js'
import { BlockCache } from '../../src/cache/block-cache.js'
import { DiskCache } from '../../src/disk-cache/disk-cache.js'
import type { ReadObserver } from '../../src/metrics/metered-backend.js'
import { openSnapshot, type SnapshotContext } from '../../src/snapshots/open-snapshot.js'
import { encodeProfile } from '../../src/profile/format.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

/**
 * The layers a snapshot is read through, as `mount` and `check` open them: a local file and an
 * HTTP object (our fault server, which behaves until told otherwise), with and without the
 * layers' shared pieces. Which layers are there shows through `inspect`, as `status` sees it.
 */
const BYTES = seededBytes(15, 300_000)
const quiet = { info: () => {}, warn: () => {}, error: () => {} }

/** An http snapshot of `url` as the config gives it: the documented defaults, two connections. */
function httpSpec(url: string): SnapshotSpec {
  const raw = { mountpoint: '/mnt', snapshots: [{ type: 'http', name: 'web.img', url, connections: 2 }] }
  return validateConfig(raw, { origin: 'test', baseDir: '/', defaults: mountOptions() }).snapshots[0]!
}

/** Everything a mount gives: the shared cache and metering, whose observer records what it is told. */
function mountContext() {
  const told: string[] = []
  const observer = (name: string): ReadObserver => ({ started: () => {}, finished: ({ bytes }) => told.push(`${name} ${bytes}`) })
  const cache = new BlockCache({ capacityBytes: 1 << 20, blockBytes: 64 * 1024 })
  const context: SnapshotContext = { env: {}, logger: quiet, cache, metering: { observer } }
  return { told, cache, context }
}

t.test('without the layers\' pieces (check): the backend as opened', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'disk.img')
  await writeFile(path, BYTES)
  const local = await openSnapshot({ name: 'disk.img', type: 'file', path }, { env: {}, logger: quiet })
  t.teardown(() => local.close())
  t.same(local.inspect?.(), {}, 'nothing around a local backend, which reports nothing while its source is unchanged')
  const server = await startFaultServer(t, BYTES)
  const remote = await openSnapshot(httpSpec(server.url()), { env: {}, logger: quiet })
  t.teardown(() => remote.close())
  t.equal(remote.inspect, undefined, 'nor around a remote one')
  t.ok((await remote.readExact(1000, 10)).equals(BYTES.subarray(1000, 1010)))
})

t.test('a local snapshot in a mount: metered, not cached (the kernel caches its source)', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'disk.img')
  await writeFile(path, BYTES)
  const { told, cache, context } = mountContext()
  const backend = await openSnapshot({ name: 'disk.img', type: 'mmap', path }, context)
  t.teardown(() => backend.close())
  t.ok((await backend.readExact(5, 100)).equals(BYTES.subarray(5, 105)))
  t.same(Object.keys(backend.inspect!()).sort(), ['reads', 'type'])
  t.match(backend.inspect!(), { type: 'mmap', reads: { reads: 1, bytes: 100 } })
  t.same(told, ['disk.img 100'], 'its reads told to the metering observer')
  t.equal(cache.stats().fetches, 0, 'the cache never asked')
})

t.test('a remote snapshot in a mount: read through the shared cache, metered outermost', async (t) => {
  const server = await startFaultServer(t, BYTES)
  const { told, cache, context } = mountContext()
  const backend = await openSnapshot(httpSpec(server.url()), context)
  t.teardown(() => backend.close())
  t.ok((await backend.readExact(70_000, 10)).equals(BYTES.subarray(70_000, 70_010)))
  const gets = server.requests.filter((request) => request.method === 'GET').length
  t.ok((await backend.readExact(70_010, 10)).equals(BYTES.subarray(70_010, 70_020)), 'a second read of the block')
  t.equal(server.requests.filter((request) => request.method === 'GET').length, gets, 'is a cache hit')
  t.match(backend.inspect!(), { type: 'http', cachedBytes: 64 * 1024, reads: { reads: 2, bytes: 20 } }, 'each layer reports through inspect')
  t.equal(cache.stats().hits, 1)
  await backend.readExact(0, 10, { maintenance: true })
  t.match(backend.inspect!(), { cachedBytes: 2 * 64 * 1024, reads: { reads: 2 } }, 'a maintenance read fills the cache and is not counted')
  t.same(told, ['web.img 10', 'web.img 10'])
  t.match(backend.describe!(), /^http:\/\/127\.0\.0\.1:\d+\/disk\.img; etag /, 'describe reaches through the layers')
})

t.test('a remote snapshot with a disk cache: innermost, only for a strong ETag', async (t) => {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, BYTES)
  const { context } = mountContext()
  const lines: string[] = []
  const logger = { ...quiet, warn: (line: string) => void lines.push(line) }
  const diskCache = DiskCache.open({ dir, capacityBytes: 1 << 20, blockBytes: 64 * 1024, logger: quiet })
  t.teardown(() => diskCache.close())
  const backend = await openSnapshot(httpSpec(server.url()), { ...context, diskCache, logger })
  t.teardown(() => backend.close())
  t.ok((await backend.readExact(70_000, 10)).equals(BYTES.subarray(70_000, 70_010)))
  await diskCache.flush()
  t.match(backend.inspect!(), { type: 'http', cachedBytes: 64 * 1024, diskBytes: 64 * 1024 }, 'the disk layer reports through inspect')
  t.match(backend.identity?.(), undefined, 'layers above the disk cache do not pass identity on')
  server.setMode({ etag: 'weak' })
  const weak = await openSnapshot(httpSpec(server.url()), { ...context, diskCache, logger })
  t.teardown(() => weak.close())
  t.notOk('diskBytes' in weak.inspect!(), 'a weak ETag: no disk cache')
  t.match(lines, [/web\.img: no disk cache for it: its source has no strong ETag/], 'said once')
})

t.test('with a manifest: the verifying layer sits under the cache; a manifest block larger than the cache block is said once', async (t) => {
  const { blockCountOf, encodeManifest } = await import('../../src/manifest/format.js')
  const { blockDigestsOf } = await import('../../src/manifest/hash.js')
  const { sha256 } = await import('../fixtures/test-data.js')
  const dir = await tempDir(t)
  const manifest = encodeManifest({ algorithm: 'sha256', blockBytes: 128 * 1024, imageBytes: BYTES.length, blockCount: blockCountOf(BYTES.length, 128 * 1024), digests: blockDigestsOf('sha256', BYTES, 128 * 1024) })
  await writeFile(join(dir, 'm'), manifest)
  const server = await startFaultServer(t, BYTES)
  const spec = { ...httpSpec(server.url()), manifest: { source: { name: 'manifest', type: 'file' as const, path: join(dir, 'm') }, sha256: sha256(manifest) } }
  const warnings: string[] = []
  const { context } = mountContext()
  const backend = await openSnapshot(spec, { ...context, logger: { ...quiet, warn: (message: string) => warnings.push(message) } })
  t.teardown(() => backend.close())
  t.ok((await backend.readExact(70_000, 100_000)).equals(BYTES.subarray(70_000, 170_000)))
  t.match(backend.inspect?.(), { type: 'http', cachedBytes: Number, integrity: { verifiedBlocks: 2, mismatches: 0, failedBlocks: 0 } })
  t.equal(backend.integrity?.blockCount, blockCountOf(BYTES.length, 128 * 1024), 'the manifest\'s digests passed up to the outermost layer')
  t.match(warnings, [/^web\.img: its manifest's blocks \(128 KiB\) are larger than the cache's \(64 KiB\): each cache miss fetches a whole manifest block; set cache_block_kib: 128/])

  // A manifest that does not check out refuses the snapshot, its source closed behind it.
  const wrong = { ...spec, manifest: { ...spec.manifest, sha256: '0'.repeat(64) } }
  await t.rejects(openSnapshot(wrong, context), { code: 'E_MANIFEST_DIGEST' })
  const local = { name: 'disk.img', type: 'file' as const, path: join(dir, 'm'), manifest: spec.manifest }
  await t.rejects(openSnapshot(local, { env: {}, logger: quiet }), { code: 'E_MANIFEST_MISMATCH' })

  // With a disk cache too: it sits right above the verifying layer, which passes the identity on.
  const diskCache = DiskCache.open({ dir: join(dir, 'disk'), capacityBytes: 1 << 20, blockBytes: 64 * 1024, logger: quiet })
  t.teardown(() => diskCache.close())
  const both = await openSnapshot(spec, { ...context, diskCache })
  t.teardown(() => both.close())
  t.ok((await both.readExact(70_000, 10)).equals(BYTES.subarray(70_000, 70_010)))
  await diskCache.flush()
  t.match(both.inspect!(), { integrity: { verifiedBlocks: Number }, diskBytes: 64 * 1024 }, 'verified, then kept on disk')
  t.equal(both.integrity?.blockBytes, 128 * 1024, 'the manifest\'s digests passed up through the disk cache (snapmount verify checks with them)')
})

t.test('the recording layer, outermost: records by itself where the profile to replay is absent', async (t) => {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, BYTES)
  const { context } = mountContext()
  const lines: string[] = []
  const logger = { ...quiet, warn: (line: string) => void lines.push(line) }
  const withProfile = (path: string) => {
    const raw = { mountpoint: '/mnt', snapshots: [{ type: 'http', name: 'web.img', url: server.url(), prefetch_profile: path }] }
    return validateConfig(raw, { origin: 'test', baseDir: dir, defaults: mountOptions() }).snapshots[0]!
  }
  const absent = await openSnapshot(withProfile('absent.json'), { ...context, logger })
  t.teardown(() => absent.close())
  await absent.readExact(70_000, 10)
  t.match(absent.inspect!(), { type: 'http', profileRecording: { path: join(dir, 'absent.json'), automatic: true, blocks: 1 } }, 'over the metering layer')

  await writeFile(join(dir, 'there.json'), '{}')
  const present = await openSnapshot(withProfile('there.json'), { ...context, logger })
  t.teardown(() => present.close())
  t.notOk('profileRecording' in present.inspect!(), 'a profile there: nothing recorded')

  server.setMode({ etag: 'weak' })
  const anonymous = await openSnapshot(withProfile('weak.json'), { ...context, logger })
  t.teardown(() => anonymous.close())
  t.notOk('profileRecording' in anonymous.inspect!())
  // The prefetching layer reads there.json in the background, and says it is no profile.
  t.match(lines.filter((line) => line.includes('weak.json')), [/web\.img: no boot profile at .*weak\.json, and none can be recorded: it has no manifest and its source no strong ETag/])
})

t.test('with prefetch_profile: its blocks are prefetched into the cache, above it and under metering; a profile of another image is a warning', async (t) => {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, BYTES)
  const path = join(dir, 'boot.profile.json')
  const spec = (url: string) => {
    const raw = { mountpoint: '/mnt', snapshots: [{ type: 'http', name: 'web.img', url, connections: 2, prefetch_profile: path }] }
    return validateConfig(raw, { origin: 'test', baseDir: '/', defaults: mountOptions() }).snapshots[0]!
  }
  const bare = await openSnapshot(httpSpec(server.url()), { env: {}, logger: quiet })
  const validator = bare.identity!()!.validator
  await bare.close()
  const profile = { identity: { bytes: BYTES.length, validator }, blockBytes: 64 * 1024, recordedAt: new Date(Date.now() - 60_000), runs: [{ firstBlock: 2, blockCount: 2, atMs: 0 }] }
  await writeFile(path, encodeProfile(profile))
  const { context } = mountContext()
  const backend = await openSnapshot(spec(server.url()), context)
  t.teardown(() => backend.close())
  for (let i = 0; i < 200 && backend.inspect!().prefetch?.state !== 'done'; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.match(backend.inspect!(), { type: 'http', cachedBytes: 2 * 64 * 1024, prefetch: { state: 'done', profile: path, prefetchedBytes: 2 * 64 * 1024, hitBlocks: 0 } })
  t.ok(backend.inspect!().prefetch!.ageSeconds! >= 60)
  const gets = server.requests.filter((request) => request.method === 'GET').length
  t.ok((await backend.readExact(2 * 64 * 1024, 64 * 1024)).equals(BYTES.subarray(2 * 64 * 1024, 3 * 64 * 1024)))
  t.equal(server.requests.filter((request) => request.method === 'GET').length, gets, 'a prefetched block is a hit')
  t.match(backend.inspect!(), { reads: { reads: 1 }, prefetch: { hitBlocks: 1 } }, 'metered above it; the read seen by it')

  const diskDir = await tempDir(t)
  const diskCache = DiskCache.open({ dir: diskDir, capacityBytes: 1 << 20, blockBytes: 64 * 1024, logger: quiet })
  t.teardown(() => diskCache.close())
  const onDisk = await openSnapshot(spec(server.url()), { ...mountContext().context, diskCache })
  t.teardown(() => onDisk.close())
  for (let i = 0; i < 200 && onDisk.inspect!().prefetch?.state !== 'done'; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  await diskCache.flush()
  t.match(onDisk.inspect!(), { prefetch: { state: 'done', prefetchedBytes: 2 * 64 * 1024 }, diskBytes: 2 * 64 * 1024 }, 'with the disk cache: prefetched blocks land on disk too, through the layer below')

  await writeFile(path, encodeProfile({ ...profile, identity: { bytes: BYTES.length, validator: '"another"' } }))
  const lines: string[] = []
  const other = await openSnapshot(spec(server.url()), { ...context, logger: { ...quiet, warn: (line: string) => void lines.push(line) } })
  t.teardown(() => other.close())
  for (let i = 0; i < 200 && other.inspect!().prefetch?.state === 'loading'; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.match(other.inspect!().prefetch, { state: 'unused', prefetchedBytes: 0 })
  t.match(lines, [/web\.img: prefetch profile .*boot\.profile\.json not used: it was recorded from "another"/])

  await rm(path)
  const absent = await openSnapshot(spec(server.url()), { ...context, logger: { ...quiet, warn: (line: string) => void lines.push(line) } })
  t.teardown(() => absent.close())
  for (let i = 0; i < 200 && absent.inspect!().prefetch?.state === 'loading'; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.match(absent.inspect!().prefetch, { state: 'unused' }, 'no profile yet: nothing to prefetch')
  t.equal(lines.length, 1, 'and nothing to say')

  const unmetered = await openSnapshot(spec(server.url()), { env: {}, logger: quiet })
  t.teardown(() => unmetered.close())
  t.equal(unmetered.inspect, undefined, 'no cache (check): no prefetch')
})

t.test('an s3 snapshot records the same way, named by its ETag (and version)', async (t) => {
  const { useAwsCredentials } = await import('../fixtures/conformance-sources.js')
  const { FAUX_S3_ENV, startFauxS3 } = await import('../fixtures/fauxqs.js')
  const { parseProfile } = await import('../../src/profile/format.js')
  const { readFile } = await import('node:fs/promises')
  useAwsCredentials(FAUX_S3_ENV.AWS_ACCESS_KEY_ID, FAUX_S3_ENV.AWS_SECRET_ACCESS_KEY)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await s3.putObject('snaps', 'web.img', BYTES)
  const dir = await tempDir(t)
  const raw = { mountpoint: '/mnt', snapshots: [{ type: 's3', name: 'web.img', url: 's3://snaps/web.img', endpoint: s3.endpoint, region: s3.region, prefetch_profile: 'web.json' }] }
  const spec = validateConfig(raw, { origin: 'test', baseDir: dir, defaults: mountOptions() }).snapshots[0]!
  const { context } = mountContext()
  const backend = await openSnapshot(spec, context)
  await backend.readExact(200_000, 10)
  await backend.readExact(0, 10)
  await backend.close()
  const profile = parseProfile(await readFile(join(dir, 'web.json'), 'utf8'), 'web.json')
  t.same(profile.runs.map(({ firstBlock, blockCount }) => [firstBlock, blockCount]), [
    [3, 1],
    [0, 1],
  ])
  t.equal(profile.identity.bytes, BYTES.length)
  t.match(profile.identity.validator, /"/, 'the object\'s ETag')
})

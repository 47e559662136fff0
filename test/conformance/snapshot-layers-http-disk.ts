import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { DiskCache } from '../../src/disk-cache/disk-cache.js'
import { blockCountOf, encodeManifest } from '../../src/manifest/format.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { localImages, mountSnapshotContext, readLargeImage, SMALL_SIZE, specSource } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'
import { sha256 } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

const BLOCK = 32 * 1024

// An HTTP snapshot through every layer a mount with `cache_dir` puts around it (openSnapshot's
// LAYERS): the small image with a manifest, so verifying, disk cache, block cache, metering and
// the recording layer (recording by itself into the disk cache's place, as no profile is there);
// the large one without a manifest (test/conformance/verifying.ts takes that layer past 2^32).
void runConformance(t, 'snapshot layers over http (nginx) with a disk cache and a manifest', async (t) => {
  const { dir, small, large } = await localImages(t)
  const nginx = await startNginx(t, dir)
  const manifest = encodeManifest({ algorithm: 'sha256', blockBytes: BLOCK, imageBytes: SMALL_SIZE, blockCount: blockCountOf(SMALL_SIZE, BLOCK), digests: blockDigestsOf('sha256', small.bytes, BLOCK) })
  const manifestPath = join(dir, 'small.img.manifest')
  await writeFile(manifestPath, manifest)
  const diskCache = DiskCache.open({ dir: await tempDir(t), capacityBytes: 4 * 1024 * 1024, blockBytes: BLOCK, logger: { info() {}, warn() {}, error() {} } })
  t.teardown(() => diskCache.close())
  const context = { ...mountSnapshotContext(), diskCache }
  const smallSource = specSource({ type: 'http', url: nginx.url('/small.img'), manifest: { path: manifestPath, sha256: sha256(manifest) } }, SMALL_SIZE, (offset, length) => small.bytes.subarray(offset, offset + length), context)
  // The stack is the one meant: each layer reports through inspect().
  const stack = await smallSource.open()
  await stack.readExact(0, 1)
  t.match(stack.inspect!(), { integrity: { verifiedBlocks: 1 }, diskBytes: Number, cachedBytes: Number, reads: { reads: 1 }, profileRecording: { automatic: true } }, 'verifying, disk cache, block cache, metering and recording layers')
  await stack.close()
  return {
    small: smallSource,
    large: specSource({ type: 'http', url: nginx.url('/large.img') }, LARGE_IMAGE_SIZE, readLargeImage(large.path), context),
    abortsInFlight: true,
  }
})

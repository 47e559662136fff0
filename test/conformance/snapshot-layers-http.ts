import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { localImages, mountSnapshotContext, readLargeImage, SMALL_SIZE, specSource } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'

// An HTTP snapshot through every layer a mount puts around it (openSnapshot's LAYERS), on nginx:
// a new layer there is under the whole contract with no change here.
void runConformance(t, 'snapshot layers over http (nginx)', async (t) => {
  const { dir, small, large } = await localImages(t)
  const nginx = await startNginx(t, dir)
  const context = mountSnapshotContext()
  return {
    small: specSource({ type: 'http', url: nginx.url('/small.img') }, SMALL_SIZE, (offset, length) => small.bytes.subarray(offset, offset + length), context),
    large: specSource({ type: 'http', url: nginx.url('/large.img') }, LARGE_IMAGE_SIZE, readLargeImage(large.path), context),
    abortsInFlight: true,
  }
})

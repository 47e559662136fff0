import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { localImages, readLargeImage, SMALL_SIZE, specSource } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'

// The HTTP backend against a real nginx serving the small image and a sparse one past 4 GiB.
void runConformance(t, 'http backend on nginx', async (t) => {
  const { dir, small, large } = await localImages(t)
  const nginx = await startNginx(t, dir)
  return {
    small: specSource({ type: 'http', url: nginx.url('/small.img') }, SMALL_SIZE, (offset, length) => small.bytes.subarray(offset, offset + length)),
    large: specSource({ type: 'http', url: nginx.url('/large.img') }, LARGE_IMAGE_SIZE, readLargeImage(large.path)),
    abortsInFlight: true,
  }
})

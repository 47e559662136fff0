import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { localImages, mountSnapshotContext, readLargeImage, SMALL_SIZE, specSource } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'

// A local snapshot through every layer a mount puts around it (openSnapshot's LAYERS).
void runConformance(t, 'snapshot layers over a local file', async (t) => {
  const { small, large } = await localImages(t)
  const context = mountSnapshotContext()
  return {
    small: specSource({ type: 'file', path: small.path }, SMALL_SIZE, (offset, length) => small.bytes.subarray(offset, offset + length), context),
    large: specSource({ type: 'file', path: large.path }, LARGE_IMAGE_SIZE, readLargeImage(large.path), context),
    abortsInFlight: false,
  }
})

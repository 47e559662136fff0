import t from 'tap'
import { MmapBackend } from '../../src/backend/mmap-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, largeFileSource, localImages } from '../fixtures/conformance-sources.js'

void runConformance(t, 'mmap backend', async (t) => {
  const { small, large } = await localImages(t)
  return {
    small: bufferSource(small.bytes, () => MmapBackend.open(small.path)),
    large: largeFileSource(large.path, () => MmapBackend.open(large.path)),
    abortsInFlight: false,
  }
})

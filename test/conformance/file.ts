import t from 'tap'
import { FileBackend } from '../../src/backend/file-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, largeFileSource, localImages } from '../fixtures/conformance-sources.js'

void runConformance(t, 'file backend', async (t) => {
  const { small, large } = await localImages(t)
  return {
    small: bufferSource(small.bytes, () => FileBackend.open(small.path)),
    large: largeFileSource(large.path, () => FileBackend.open(large.path)),
    abortsInFlight: false,
  }
})

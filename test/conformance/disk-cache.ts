import t from 'tap'
import { DiskCache } from '../../src/disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../../src/disk-cache/disk-cached-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, rampSource, SMALL_SIZE } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

const quiet = { info() {}, warn() {}, error() {} }

// The disk cache layer over a source that answers a turn of the event loop later and stops when
// aborted, as a request does (test/disk-cache/disk-cache.ts runs it over synchronous sources too),
// with a cache smaller than the small image, so blocks are evicted and read back while rules run,
// and over the ramp past 2^32, whose blocks are filed at offsets past 4 GiB.
void runConformance(t, 'disk cache layer over an asynchronous source', async (t) => {
  const cache = DiskCache.open({ dir: await tempDir(t), capacityBytes: 2 * 1024 * 1024, blockBytes: 16 * 1024, logger: quiet })
  t.teardown(() => cache.close())
  const layer = (source: RecordingBackend, validator: string) => async () => {
    source.later = true
    return new DiskCachedBackend(source, cache, { source: 'http://127.0.0.1/disk.img', size: source.length, validator })
  }
  const bytes = seededBytes(17, SMALL_SIZE)
  return {
    small: bufferSource(bytes, layer(new RecordingBackend(bytes), '"small"')),
    large: rampSource(LARGE_IMAGE_SIZE, layer(new RecordingBackend(LARGE_IMAGE_SIZE), '"large"')),
    abortsInFlight: true,
  }
})

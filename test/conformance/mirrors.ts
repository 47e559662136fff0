import t from 'tap'
import { MirrorBackend } from '../../src/backend/mirrors/mirror-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, rampSource, SMALL_SIZE } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { seededBytes } from '../fixtures/test-data.js'

const quiet = { info() {}, warn() {}, error() {} }

// The mirror backend over three sources that answer a turn of the event loop later and stop when
// aborted, as requests do (test/backend/mirrors/mirror-backend.ts runs it over memory too), on a
// small image and on the ramp past 2^32: failover, hedges and `into` must change no answer.
void runConformance(t, 'mirror backend over three asynchronous sources', async () => {
  const open = (source: () => RecordingBackend) => async () => {
    const sources = [source(), source(), source()]
    for (const mirror of sources) mirror.later = true
    const labels = sources.map((_, i) => `http://m${i}/disk.img`)
    return new MirrorBackend({ name: 'disk', sources, labels, retry: { maxAttempts: 2, deadlineMs: 10_000, baseDelayMs: 10, maxDelayMs: 20 }, logger: quiet })
  }
  const bytes = seededBytes(13, SMALL_SIZE)
  return {
    small: bufferSource(bytes, open(() => new RecordingBackend(bytes))),
    large: rampSource(LARGE_IMAGE_SIZE, open(() => new RecordingBackend(LARGE_IMAGE_SIZE))),
    abortsInFlight: true,
  }
})

import { join } from 'node:path'
import t from 'tap'
import { ProfileRecordingBackend } from '../../src/profile/recording-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { cachingSubject } from '../fixtures/caching-subject.js'
import { ManualClock } from '../fixtures/manual-clock.js'
import { tempDir } from '../fixtures/temp-dir.js'

const quiet = { info: () => {}, warn: () => {}, error: () => {} }

// The profile recording layer (outermost of a remote snapshot) over the caching layer over an
// asynchronous source, recording from the first read of every backend a rule opens (its profile
// written at close): noting reads, readNow's hits included, must change none of their answers.
void runConformance(t, 'profile recording layer, recording, over the caching layer', async (t) => {
  const dir = await tempDir(t)
  let opened = 0
  return cachingSubject(true, (backend) => {
    const identity = { bytes: backend.length, validator: '"v"' }
    const layer = new ProfileRecordingBackend(backend, { name: 'disk', identity, blockBytes: 16 * 1024, logger: quiet, clock: new ManualClock() })
    layer.startRecording(join(dir, `profile-${opened++}.json`))
    return layer
  })
})

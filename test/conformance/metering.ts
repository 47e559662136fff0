import t from 'tap'
import { MeteredBackend } from '../../src/metrics/metered-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { cachingSubject } from '../fixtures/caching-subject.js'

// Over the caching layer, as remote snapshots are stacked, so readNow passes through it too.
void runConformance(t, 'metering layer', async () => cachingSubject(true, (backend) => new MeteredBackend(backend, 'http')))

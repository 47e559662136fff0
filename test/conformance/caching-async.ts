import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { cachingSubject } from '../fixtures/caching-subject.js'

// A source that answers a turn of the event loop later, as a socket does.
void runConformance(t, 'caching layer over an asynchronous source', async () => cachingSubject(true))

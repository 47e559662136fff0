import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { cachingSubject } from '../fixtures/caching-subject.js'

// A source that fills `into` before its readExact returns: views must survive readahead anyway.
void runConformance(t, 'caching layer over a synchronous source', async () => cachingSubject(false))

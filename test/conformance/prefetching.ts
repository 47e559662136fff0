import t from 'tap'
import type { CachingBackend } from '../../src/cache/caching-backend.js'
import { PrefetchingBackend } from '../../src/profile/prefetcher.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { cachingSubject } from '../fixtures/caching-subject.js'

const BLOCK = 16 * 1024
const quiet = { info: () => {}, warn: () => {}, error: () => {} }

// The prefetching layer over the caching layer over an asynchronous source, replaying a profile of
// scattered runs (the image's last block included) while the rules read: its prefetches share the
// cache and the source with their reads, and must change none of their answers.
void runConformance(t, 'prefetching layer over the caching layer', async () =>
  cachingSubject(true, (backend) => {
    const blocks = Math.ceil(backend.length / BLOCK)
    const runs = [[0, 4], [10, 3], [2, 1], [Math.floor(blocks / 2), 5], [blocks - 1, 1]].map(([firstBlock, blockCount], i) => ({ firstBlock: firstBlock!, blockCount: blockCount!, atMs: i }))
    const profile = { identity: { bytes: backend.length, validator: '"v"' }, blockBytes: BLOCK, recordedAt: new Date(), runs }
    return new PrefetchingBackend(backend as CachingBackend, { name: 'c', label: 'p', profile: Promise.resolve({ profile, label: 'p' }), aheadBytes: 8 * BLOCK, concurrency: 3, logger: quiet })
  }),
)

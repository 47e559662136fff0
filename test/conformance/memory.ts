import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, SMALL_SIZE } from '../fixtures/conformance-sources.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { seededBytes } from '../fixtures/test-data.js'

// The fixture the FUSE-semantics tests lean on must itself keep the contract.
void runConformance(t, 'memory backend (test fixture)', async () => {
  const bytes = seededBytes(3, SMALL_SIZE)
  return { small: bufferSource(bytes, async () => new MemoryBackend(bytes)), large: { missing: 'it holds its bytes in memory' }, abortsInFlight: false }
})

import t from 'tap'
import { backendConformance } from '../fixtures/backend-conformance.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { seededBytes } from '../fixtures/test-data.js'

// The fixture the FUSE-semantics tests lean on must itself keep the contract.
const source = seededBytes(3, 1024 * 1024 + 17)
t.test('memory backend keeps the contract', (t) => backendConformance(t, async () => new MemoryBackend(source), source))

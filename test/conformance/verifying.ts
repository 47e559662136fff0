import t from 'tap'
import { blockCountOf, type Manifest } from '../../src/manifest/format.js'
import { blockDigestsOf, digestOf } from '../../src/manifest/hash.js'
import { HashPool } from '../../src/manifest/hash-pool.js'
import { VerifyingBackend } from '../../src/manifest/verifying-backend.js'
import { runConformance } from '../fixtures/backend-conformance.js'
import { bufferSource, rampSource, SMALL_SIZE } from '../fixtures/conformance-sources.js'
import { LARGE_IMAGE_SIZE } from '../fixtures/images.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { ramp, RAMP_MODULUS, seededBytes } from '../fixtures/test-data.js'

// Above the 16 KiB hashed on the event loop, so blocks go through the worker pool too.
const BLOCK = 64 * 1024

/**
 * The ramp's manifest without hashing 5 GiB: block k holds ramp(k * BLOCK, BLOCK), which depends
 * only on k * BLOCK modulo the ramp's period, so there are at most 251 distinct full blocks.
 */
function rampManifest(size: number): Manifest {
  const blockCount = blockCountOf(size, BLOCK)
  const digests = Buffer.alloc(blockCount * 32)
  const byPhase = new Map<number, Buffer>()
  for (let block = 0; block < blockCount; block++) {
    const offset = block * BLOCK
    const length = Math.min(BLOCK, size - offset)
    const phase = offset % RAMP_MODULUS
    const key = length === BLOCK ? phase : -1
    let digest = byPhase.get(key)
    if (!digest) byPhase.set(key, (digest = digestOf('sha256', ramp(phase, length))))
    digest.copy(digests, block * 32)
  }
  return { algorithm: 'sha256', blockBytes: BLOCK, imageBytes: size, blockCount, digests }
}

// The manifest verifier (innermost of a snapshot with a manifest) over a source that answers a
// turn of the event loop later, as a socket does: its widened reads, its hashing on the pool and
// its `into` handling must change no answer of the contract.
void runConformance(t, 'verifying layer (manifest) over an asynchronous source', async (t) => {
  const pool = new HashPool(2)
  t.teardown(() => pool.close())
  const options = { name: 'disk', logger: { info() {}, warn() {}, error() {} }, pool }
  const layer = (source: RecordingBackend, manifest: Manifest) => {
    source.later = true
    return new VerifyingBackend(source, manifest, options)
  }
  const bytes = seededBytes(9, SMALL_SIZE)
  const small: Manifest = { algorithm: 'sha256', blockBytes: BLOCK, imageBytes: SMALL_SIZE, blockCount: blockCountOf(SMALL_SIZE, BLOCK), digests: blockDigestsOf('sha256', bytes, BLOCK) }
  const large = rampManifest(LARGE_IMAGE_SIZE)
  return {
    small: bufferSource(bytes, async () => layer(new RecordingBackend(bytes), small)),
    large: rampSource(LARGE_IMAGE_SIZE, async () => layer(new RecordingBackend(LARGE_IMAGE_SIZE), large)),
    abortsInFlight: true,
  }
})

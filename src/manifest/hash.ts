import { createRequire } from 'node:module'
import { nodeCrypto } from '../lazy-builtins.js'
import { HASH_ALGORITHMS, type HashAlgorithm } from './format.js'

type Blake3 = typeof import('blake3-c')
const requireHere = createRequire(import.meta.url)
let blake3Addon: Blake3 | undefined

/**
 * vendor/blake3's addon, loaded on first use (by each thread that hashes), so a daemon with no
 * BLAKE3 manifest never loads it; required, not imported, so the bundle leaves it in node_modules.
 */
function blake3(): Blake3 {
  return (blake3Addon ??= requireHere('blake3-c') as Blake3)
}

/**
 * One digest of `data` with `algorithm`, on the calling thread: SHA-256 from node:crypto, BLAKE3
 * from vendor/blake3 (the official C, which reads `data` where it is, shared memory included).
 */
export function digestOf(algorithm: HashAlgorithm, data: Uint8Array): Buffer {
  if (algorithm === 'blake3') return blake3().digest(data)
  return nodeCrypto().createHash(algorithm).update(data).digest()
}

/**
 * The digests of the consecutive blocks of `data`, `blockBytes` each (the last may be shorter),
 * back to back in one buffer, as a manifest holds them; on the calling thread. BLAKE3 hashes the
 * whole run in one call into the addon.
 */
export function blockDigestsOf(algorithm: HashAlgorithm, data: Uint8Array, blockBytes: number): Buffer {
  if (algorithm === 'blake3') return blake3().blockDigests(data, blockBytes)
  const size = HASH_ALGORITHMS[algorithm].digestBytes
  const count = Math.ceil(data.length / blockBytes)
  const out = Buffer.allocUnsafe(count * size)
  for (let index = 0; index < count; index++) {
    digestOf(algorithm, data.subarray(index * blockBytes, (index + 1) * blockBytes)).copy(out, index * size)
  }
  return out
}

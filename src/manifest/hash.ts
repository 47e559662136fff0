import { createHash } from 'node:crypto'
import { HASH_ALGORITHMS, type HashAlgorithm } from './format.js'

/** One digest of `data` with `algorithm` (SHA-256, node:crypto), on the calling thread. */
export function digestOf(algorithm: HashAlgorithm, data: Uint8Array): Buffer {
  return createHash(algorithm).update(data).digest()
}

/**
 * The digests of the consecutive blocks of `data`, `blockBytes` each (the last may be shorter),
 * back to back in one buffer, as a manifest holds them; on the calling thread.
 */
export function blockDigestsOf(algorithm: HashAlgorithm, data: Uint8Array, blockBytes: number): Buffer {
  const size = HASH_ALGORITHMS[algorithm].digestBytes
  const count = Math.ceil(data.length / blockBytes)
  const out = Buffer.allocUnsafe(count * size)
  for (let index = 0; index < count; index++) {
    digestOf(algorithm, data.subarray(index * blockBytes, (index + 1) * blockBytes)).copy(out, index * size)
  }
  return out
}

import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { HASH_ALGORITHMS, type HashAlgorithm } from './format.js'

const require = createRequire(import.meta.url)

/**
 * Where the BLAKE3 addon is, for the hashing workers to load it themselves. @napi-rs/blake-hash
 * ships a prebuilt addon per platform (as optional packages): no compiler at install.
 */
export const BLAKE3_MODULE = require.resolve('@napi-rs/blake-hash')

let blake3: ((input: Uint8Array) => Buffer) | undefined

/** One digest of `data` with `algorithm`, on the calling thread. */
export function digestOf(algorithm: HashAlgorithm, data: Uint8Array): Buffer {
  if (algorithm === 'sha256') return createHash('sha256').update(data).digest()
  blake3 ??= (require(BLAKE3_MODULE) as { blake3(input: Uint8Array): Buffer }).blake3
  return blake3(data)
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

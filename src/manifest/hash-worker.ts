import { parentPort } from 'node:worker_threads'
import { blockDigestsOf } from './hash.js'
import type { HashJob } from './hash-pool.js'

/**
 * A hashing thread of the HashPool: hashes the blocks of a job where they are (the caller's shared
 * memory, or the pool's copy in shared memory of its own) and sends their digests back (the
 * digests' memory is transferred, not copied).
 */
parentPort!.on('message', ({ algorithm, length, blockBytes, shared, offset }: HashJob) => {
  const digests = blockDigestsOf(algorithm, new Uint8Array(shared, offset, length), blockBytes)
  const copy = new Uint8Array(digests)
  parentPort!.postMessage(copy, [copy.buffer])
})

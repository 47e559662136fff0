import { parentPort, workerData } from 'node:worker_threads'
import { blockDigestsOf } from './hash.js'
import type { HashJob, HashWorkerData } from './hash-pool.js'

/**
 * A hashing thread of the HashPool: hashes the blocks the pool copied into its shared buffer and
 * sends their digests back (the digests' memory is transferred, not copied).
 */
const { shared } = workerData as HashWorkerData
const bytes = new Uint8Array(shared)
parentPort!.on('message', ({ algorithm, length, blockBytes }: HashJob) => {
  const digests = blockDigestsOf(algorithm, bytes.subarray(0, length), blockBytes)
  const copy = new Uint8Array(digests)
  parentPort!.postMessage(copy, [copy.buffer])
})

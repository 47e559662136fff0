import { parentPort, workerData } from 'node:worker_threads'
import { blockDigestsOf } from './hash.js'
import type { HashJob, HashWorkerData } from './hash-pool.js'

/**
 * A hashing thread of the HashPool: hashes the blocks of a job where they are (the caller's shared
 * memory, or the pool's copy in this thread's shared buffer) and sends their digests back (the
 * digests' memory is transferred, not copied).
 */
const { shared: own } = workerData as HashWorkerData
const bytes = new Uint8Array(own)
parentPort!.on('message', ({ algorithm, length, blockBytes, shared, offset }: HashJob) => {
  const data = shared ? new Uint8Array(shared, offset, length) : bytes.subarray(0, length)
  const digests = blockDigestsOf(algorithm, data, blockBytes)
  const copy = new Uint8Array(digests)
  parentPort!.postMessage(copy, [copy.buffer])
})

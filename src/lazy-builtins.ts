import { createRequire } from 'node:module'

// Node's built-in modules that a start need not load, each loaded by its first use. A static
// import would load them all with the daemon, for snapshots and commands that never use them.

const requireBuiltin = createRequire(import.meta.url)

let crypto: typeof import('node:crypto') | undefined
let tls: typeof import('node:tls') | undefined
let workerThreads: typeof import('node:worker_threads') | undefined

/**
 * node:crypto: ~20 of Node's internal modules; a start hashes nothing unless a snapshot has a
 * manifest or a boot profile.
 */
export function nodeCrypto(): typeof import('node:crypto') {
  return (crypto ??= requireBuiltin('node:crypto') as typeof import('node:crypto'))
}

/** node:tls (node:crypto with it): ~20-30 ms of a start, which a plain HTTP snapshot need not pay. */
export function nodeTls(): typeof import('node:tls') {
  return (tls ??= requireBuiltin('node:tls') as typeof import('node:tls'))
}

/**
 * node:worker_threads, for the hash pool's workers, which a start has only for a manifest: loaded
 * by every start, it cost ~11 ms from spawn to "mounted" (measured; ~2 ms to require alone).
 */
export function nodeWorkerThreads(): typeof import('node:worker_threads') {
  return (workerThreads ??= requireBuiltin('node:worker_threads') as typeof import('node:worker_threads'))
}

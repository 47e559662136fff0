import { createRequire } from 'node:module'

let crypto: typeof import('node:crypto') | undefined

/**
 * node:crypto, loaded on first use: loading it is ~20 of Node's internal modules, and a daemon's
 * start hashes nothing unless a snapshot has a manifest or a boot profile.
 */
export function nodeCrypto(): typeof import('node:crypto') {
  return (crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'))
}

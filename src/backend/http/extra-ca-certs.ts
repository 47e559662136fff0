import { readFile } from 'node:fs/promises'
import type { Logger } from '../../log.js'
import { describe } from '../errors.js'

/**
 * Where bin/snapmount puts NODE_EXTRA_CA_CERTS's path when it keeps the variable from Node: Node
 * 20 parses it, with all its bundled roots, as it starts, which a mount that makes no TLS
 * connection need not pay (see bin/snapmount).
 */
export const DEFERRED_EXTRA_CA_CERTS = 'SNAPMOUNT_DEFERRED_EXTRA_CA_CERTS'

/** Each file read once per process, so a missing one is logged once, not per snapshot. */
const reads = new Map<string, Promise<string | undefined>>()

/**
 * NODE_EXTRA_CA_CERTS's CAs, as PEM, for an HTTP(S) snapshot whose TLS must name them itself:
 * - when bin/snapmount deferred the variable, Node never read it;
 * - when the snapshot has a ca_file: naming any CA replaces Node's whole default trust, its
 *   extra CAs with it, so they are named again beside the bundled roots and the ca_file.
 * Otherwise undefined: Node's default trust has them. A file that cannot be read is logged and
 * left out, as Node does.
 */
export function extraCaCerts(env: Record<string, string | undefined>, hasCaFile: boolean, logger: Logger): Promise<string | undefined> {
  const path = env[DEFERRED_EXTRA_CA_CERTS] || (hasCaFile ? env.NODE_EXTRA_CA_CERTS : undefined)
  if (!path) return Promise.resolve(undefined)
  let read = reads.get(path)
  if (read === undefined) {
    read = readFile(path, 'utf8').catch((cause: unknown) => {
      logger.warn(`NODE_EXTRA_CA_CERTS ${path} cannot be read (${describe(cause)}): its CAs are not trusted; fix the path or its permissions`)
      return undefined
    })
    reads.set(path, read)
  }
  return read
}

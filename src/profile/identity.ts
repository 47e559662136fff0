import { nodeCrypto } from '../lazy-builtins.js'
import type { SnapshotSpec } from '../config/config.js'
import type { StorageBackend } from '../backend/storage-backend.js'
import type { ProfileIdentity } from './format.js'

/**
 * The identity a snapshot's profile is recorded under and checked against: the manifest's
 * SHA-256 where it has a manifest (the same on every mirror and store), else its source's strong
 * validator; undefined where it has neither, as no profile can then be told to fit it.
 */
export function profileIdentity(spec: SnapshotSpec, backend: StorageBackend): ProfileIdentity | undefined {
  if (spec.manifest) return { bytes: backend.length, validator: `sha256:${spec.manifest.sha256}` }
  const validator = backend.identity?.()?.validator
  return validator === undefined ? undefined : { bytes: backend.length, validator }
}

/**
 * The file name a profile of `identity` is kept under where snapmount picks the place (in the
 * disk cache's folder): a digest of the identity, so it names no secret and no path.
 */
export function profileFileName(identity: ProfileIdentity): string {
  return `${nodeCrypto().createHash('sha256').update(`${identity.bytes}\n${identity.validator}`).digest('hex').slice(0, 32)}.profile.json`
}

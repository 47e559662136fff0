import { resolve } from 'node:path'
import type { ManifestSpec } from './config.js'
import { asRecord, nonEmptyString, rejectUnknownFields, type Fail } from './fields.js'
import { validateBesideUrl } from './validate-beside.js'

const MANIFEST_FIELDS = ['path', 'url', 'sha256']
const SHA256_HEX = /^[0-9a-f]{64}$/i
/** The name a manifest's source is opened under: it shows in the log lines of its open only. */
const NAME = 'manifest'

/**
 * Validates a snapshot's `manifest: { path | url, sha256 }`. `entry` is the snapshot's own raw
 * entry, whose settings a manifest URL beside its image is opened with (validate-beside.ts).
 */
export function validateManifest(raw: unknown, field: string, entry: Record<string, unknown>, baseDir: string, readTimeoutMs: number, fail: Fail): ManifestSpec {
  const manifest = asRecord(raw, field, fail)
  rejectUnknownFields(manifest, MANIFEST_FIELDS, `${field}.`, fail)
  const sha256 = manifest.sha256
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) {
    throw fail(`${field}.sha256`, sha256 === undefined ? 'missing' : 'must be 64 hexadecimal digits', 'give the SHA-256 snapmount manifest create printed (sha256sum of the manifest file)')
  }
  if ((manifest.path === undefined) === (manifest.url === undefined)) {
    throw fail(field, 'needs exactly one of path and url', 'write path: /images/disk.img.manifest or url: https://host/disk.img.manifest')
  }
  const pinned = { sha256: sha256.toLowerCase() }
  if (manifest.path !== undefined) return { source: { name: NAME, type: 'file', path: resolve(baseDir, nonEmptyString(manifest.path, `${field}.path`, fail)) }, ...pinned }
  const url = nonEmptyString(manifest.url, `${field}.url`, fail)
  return { source: validateBesideUrl(url, NAME, `${field}.url`, entry, baseDir, readTimeoutMs, "give the manifest's URL, or path: for a local file", fail), ...pinned }
}

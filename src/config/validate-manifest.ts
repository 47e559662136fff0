import { resolve } from 'node:path'
import type { ManifestSpec } from './config.js'
import { asRecord, nonEmptyString, rejectUnknownFields, type Fail } from './fields.js'
import { validateHttpSnapshot } from './validate-http.js'
import { validateS3Snapshot } from './validate-s3.js'

const MANIFEST_FIELDS = ['path', 'url', 'sha256']
const SHA256_HEX = /^[0-9a-f]{64}$/i
/** The name a manifest's source is opened under: it shows in the log lines of its open only. */
const NAME = 'manifest'

/**
 * Validates a snapshot's `manifest: { path | url, sha256 }`. `entry` is the snapshot's own raw
 * entry: a manifest URL on the snapshot's origin (http) or in an S3 store (s3) is opened with the
 * snapshot's settings (headers, TLS files, endpoint, region, timeouts), as one would expect of a
 * manifest published beside its image; on another origin it gets none, so no header goes where
 * the config did not send it.
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
  const { name: _name, type, url: snapshotUrl, version_id: _version, ...settings } = entry
  if (/^https?:\/\//i.test(url)) {
    const sameOrigin = type === 'http' && typeof snapshotUrl === 'string' && URL.canParse(url) && URL.canParse(snapshotUrl) && new URL(url).origin === new URL(snapshotUrl).origin
    const { defaultName: _default, ...source } = validateHttpSnapshot({ ...(sameOrigin && settings), type: 'http', url }, `${field}.url`, baseDir, readTimeoutMs, fail)
    return { source: { name: NAME, ...source }, ...pinned }
  }
  if (/^s3:\/\//i.test(url)) {
    const { defaultName: _default, ...source } = validateS3Snapshot({ ...(type === 's3' && settings), type: 's3', url }, `${field}.url`, readTimeoutMs, fail)
    return { source: { name: NAME, ...source }, ...pinned }
  }
  throw fail(`${field}.url`, `${JSON.stringify(url)} is not an http(s):// or s3:// URL`, 'give the manifest\'s URL, or path: for a local file')
}

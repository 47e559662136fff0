import type { HttpSnapshotSpec, S3SnapshotSpec } from './config.js'
import { type Fail } from './fields.js'
import { validateHttpSnapshot } from './validate-http.js'
import { validateS3Snapshot } from './validate-s3.js'
import { urlForMessage } from '../redact.js'

/**
 * Validates the URL of a file published beside a snapshot's image (its manifest, its boot
 * profile), opened under `name`. `entry` is the snapshot's own raw entry: a URL on the snapshot's
 * origin (http) or in an S3 store (s3) is opened with the snapshot's settings (headers, TLS files,
 * endpoint, region, timeouts), as one would expect of a file beside its image; on another origin
 * it gets none, so no header goes where the config did not send it. `or` ends the fix of a URL
 * that is neither http(s):// nor s3://.
 */
export function validateBesideUrl(url: string, name: string, field: string, entry: Record<string, unknown>, baseDir: string, readTimeoutMs: number, or: string, fail: Fail): HttpSnapshotSpec | S3SnapshotSpec {
  const { name: _name, type, url: snapshotUrl, version_id: _version, ...settings } = entry
  if (/^https?:\/\//i.test(url)) {
    const sameOrigin = type === 'http' && typeof snapshotUrl === 'string' && URL.canParse(url) && URL.canParse(snapshotUrl) && new URL(url).origin === new URL(snapshotUrl).origin
    const { defaultName: _default, ...source } = validateHttpSnapshot({ ...(sameOrigin && settings), type: 'http', url }, field, baseDir, readTimeoutMs, fail)
    return { name, ...source }
  }
  if (/^s3:\/\//i.test(url)) {
    const { defaultName: _default, ...source } = validateS3Snapshot({ ...(type === 's3' && settings), type: 's3', url }, field, readTimeoutMs, fail)
    return { name, ...source }
  }
  // Redacted: a presigned URL with a typo in its scheme still carries its signature.
  throw fail(field, `${urlForMessage(url)} is not an http(s):// or s3:// URL`, or)
}

import type { S3SnapshotSpec } from './config.js'
import { booleanField, controlCharacter, nonEmptyString, quote, rejectUnknownFields, wholeNumber, type Fail } from './fields.js'
import { RETRY_BUDGET_FIELDS, validateRetryBudget } from './validate-remote.js'
import { urlForMessage } from '../redact.js'

export const S3_FIELDS = [
  'name',
  'type',
  'url',
  'version_id',
  'region',
  'endpoint',
  'force_path_style',
  'profile',
  'anonymous',
  'connections',
  'connect_timeout_ms',
  'request_timeout_ms',
  ...RETRY_BUDGET_FIELDS,
] as const

/** Splits `s3://bucket/key` (the key may hold slashes), or returns a problem to report. */
export function parseS3Url(text: string): { bucket: string; key: string } | string {
  const match = /^s3:\/\/([^/]+)\/(.+)$/is.exec(text)
  if (!match) return `${quote(text)} is not s3://bucket/key`
  return { bucket: match[1]!, key: match[2]! }
}

/** Validates an `s3` snapshot; `readTimeoutMs` bounds its per-read deadline. Credentials never live here. */
export function validateS3Snapshot(entry: Record<string, unknown>, field: string, readTimeoutMs: number, fail: Fail): Omit<S3SnapshotSpec, 'name'> & { defaultName: string } {
  rejectUnknownFields(entry, S3_FIELDS, `${field}.`, fail)
  if (entry.url === undefined) throw fail(`${field}.url`, 'missing', 'add url: s3://bucket/path/disk.img')
  const location = parseS3Url(nonEmptyString(entry.url, `${field}.url`, fail))
  if (typeof location === 'string') throw fail(`${field}.url`, location, 'write url: s3://bucket/path/disk.img')
  const control = controlCharacter(`${location.bucket}/${location.key}`)
  if (control !== undefined) {
    throw fail(`${field}.url`, `s3://${quote(`${location.bucket}/${location.key}`).slice(1, -1)} contains a control character (${control})`, 'copy the object to a key without one: names and keys reach logs and status as they are')
  }
  const optional = (key: string) => (entry[key] === undefined ? undefined : nonEmptyString(entry[key], `${field}.${key}`, fail))
  const endpoint = optional('endpoint')
  // The SDK would take a URL it cannot parse, and fail every request with it.
  if (endpoint !== undefined) checkEndpoint(endpoint, `${field}.endpoint`, fail)
  return {
    type: 's3',
    ...location,
    defaultName: location.key.split('/').pop()!,
    versionId: optional('version_id'),
    region: optional('region'),
    endpoint,
    forcePathStyle: booleanField(entry.force_path_style, endpoint !== undefined, `${field}.force_path_style`, fail),
    profile: optional('profile'),
    anonymous: booleanField(entry.anonymous, false, `${field}.anonymous`, fail),
    connections: wholeNumber(entry.connections, { min: 1, max: 1024, fallback: 64 }, `${field}.connections`, fail),
    connectTimeoutMs: wholeNumber(entry.connect_timeout_ms, { min: 10, max: 60_000, fallback: 3000 }, `${field}.connect_timeout_ms`, fail),
    requestTimeoutMs: wholeNumber(entry.request_timeout_ms, { min: 10, max: 60_000, fallback: 5000 }, `${field}.request_timeout_ms`, fail),
    ...validateRetryBudget(entry, field, readTimeoutMs, fail),
  }
}

/**
 * An endpoint is scheme://host[:port][/path]. User information in it would be shown wherever the
 * endpoint is (check, status, messages), so it is refused without being repeated; the SDK takes
 * credentials from the environment, a profile or a credentials file instead.
 */
function checkEndpoint(endpoint: string, field: string, fail: Fail): void {
  // The SDK would take a URL it cannot parse, and fail every request with it.
  if (!(/^https?:\/\/[^/]/.test(endpoint) && URL.canParse(endpoint))) {
    throw fail(field, `${urlForMessage(endpoint)} is not an http(s) URL`, 'write e.g. endpoint: https://minio.example:9000')
  }
  const url = new URL(endpoint)
  if (url.username || url.password) {
    throw fail(
      field,
      'carries a user name or password (not shown here)',
      'remove it from the endpoint and give credentials as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, a profile:, or a credentials file (AWS_SHARED_CREDENTIALS_FILE)',
    )
  }
  if (url.search || url.hash) throw fail(field, `${urlForMessage(endpoint)} has a query or fragment`, 'give only scheme://host:port, e.g. endpoint: https://minio.example:9000')
}

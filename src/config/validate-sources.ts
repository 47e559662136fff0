import type { HttpSnapshotSpec, RemoteSourceSpec, S3SnapshotSpec } from './config.js'
import { asRecord, rejectUnknownFields, type Fail } from './fields.js'
import { validateHttpSnapshot } from './validate-http.js'
import { RETRY_BUDGET_FIELDS, validateRetryBudget } from './validate-remote.js'
import { validateS3Snapshot } from './validate-s3.js'

/** What a snapshot with `sources:` may hold beside them (`lazy` is taken out before). */
const SOURCES_SNAPSHOT_FIELDS = ['name', 'sources', ...RETRY_BUDGET_FIELDS]
/** Fields of the snapshot, not of one source: refused inside an entry of `sources:`. */
const SNAPSHOT_ONLY_FIELDS = new Set(['name', 'urls', ...RETRY_BUDGET_FIELDS])

/**
 * Validates a snapshot served from mirrors that may mix HTTP and S3: `sources:`, a list whose
 * entries have the source fields of an http or an s3 snapshot (the type is `type:`, else the
 * URL's scheme). The retry budget is the snapshot's: one read's deadline and attempts span every
 * source (src/backend/mirrors/). The spec's own source fields are the first entry's.
 */
export function validateSourcesSnapshot(
  entry: Record<string, unknown>,
  field: string,
  baseDir: string,
  readTimeoutMs: number,
  fail: Fail,
): (Omit<HttpSnapshotSpec, 'name'> | Omit<S3SnapshotSpec, 'name'>) & { defaultName: string } {
  if (entry.type !== undefined) throw fail(`${field}.type`, 'is given beside sources:', 'remove it: each entry of sources: has its own type')
  rejectUnknownFields(entry, SOURCES_SNAPSHOT_FIELDS, `${field}.`, fail)
  if (!Array.isArray(entry.sources) || entry.sources.length === 0) {
    throw fail(`${field}.sources`, 'must be a non-empty list of sources', 'list each mirror as - url: https://host/disk.img or - url: s3://bucket/disk.img')
  }
  const budget = validateRetryBudget(entry, field, readTimeoutMs, fail)
  const sources = entry.sources.map((raw: unknown, index) => {
    const where = `${field}.sources[${index}]`
    const { defaultName, ...source } = validateSource(asRecord(raw, where, fail), where, baseDir, readTimeoutMs, fail)
    return { defaultName, source: { ...source, ...budget } }
  })
  const keys = sources.map(({ source }) => sourceKey(source))
  keys.forEach((key, index) => {
    const earlier = keys.indexOf(key)
    if (earlier < index) throw fail(`${field}.sources[${index}]`, `is sources[${earlier}] again`, 'list each source once')
  })
  const [first] = sources
  const spec = { ...first!.source, defaultName: first!.defaultName }
  return sources.length === 1 ? spec : { ...spec, sources: sources.map(({ source }) => source) }
}

function validateSource(entry: Record<string, unknown>, field: string, baseDir: string, readTimeoutMs: number, fail: Fail): RemoteSourceSpec & { defaultName: string } {
  for (const key of Object.keys(entry)) {
    if (SNAPSHOT_ONLY_FIELDS.has(key)) throw fail(`${field}.${key}`, 'belongs to the snapshot, not to one of its sources', `move ${key}: up beside sources: (urls: becomes one entry per URL)`)
  }
  const type = entry.type ?? (typeof entry.url === 'string' && /^s3:/i.test(entry.url) ? 's3' : 'http')
  if (type === 'http') return validateHttpSnapshot(entry, field, baseDir, readTimeoutMs, fail)
  if (type === 's3') return validateS3Snapshot(entry, field, readTimeoutMs, fail)
  throw fail(`${field}.type`, `${JSON.stringify(type)} cannot be a mirror`, 'use http or s3 (local files are not mirrored)')
}

/** What makes two sources the same one: the URL, or the store and object. */
function sourceKey(source: RemoteSourceSpec): string {
  return source.type === 'http' ? source.url : `${source.endpoint ?? 'aws'} ${source.bucket} ${source.key} ${source.versionId ?? ''}`
}

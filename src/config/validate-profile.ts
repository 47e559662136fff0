import { resolve } from 'node:path'
import type { ProfileSpec, SnapshotSpec } from './config.js'
import { nonEmptyString, type Fail } from './fields.js'
import { validateBesideUrl } from './validate-beside.js'

/** The name a profile's source is opened under: it shows in the log lines of its open only. */
const NAME = 'profile'

/**
 * The spec with its validated `prefetch_profile:`: a path (relative to the config's folder) or an
 * http(s):// or s3:// URL beside the image. Only for remote snapshots: a local image is read at
 * the disk's own speed, with the kernel's readahead, so there is nothing to prefetch it into.
 */
export function withProfile(spec: SnapshotSpec, raw: unknown, field: string, entry: Record<string, unknown>, baseDir: string, readTimeoutMs: number, fail: Fail): SnapshotSpec {
  if (spec.type !== 'http' && spec.type !== 's3') {
    throw fail(field, `is for http and s3 snapshots, and ${spec.name} is a local ${spec.type} one`, 'remove it: a local image needs no prefetch')
  }
  return { ...spec, prefetchProfile: profileSpec(nonEmptyString(raw, field, fail), field, entry, baseDir, readTimeoutMs, fail) }
}

function profileSpec(value: string, field: string, entry: Record<string, unknown>, baseDir: string, readTimeoutMs: number, fail: Fail): ProfileSpec {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    return { source: validateBesideUrl(value, NAME, field, entry, baseDir, readTimeoutMs, 'give a path, or the http(s):// or s3:// URL of a profile beside the image', fail) }
  }
  return { path: resolve(baseDir, value) }
}

import { resolve } from 'node:path'
import type { HttpSnapshotSpec, SecretSource } from './config.js'
import { asRecord, booleanField, nonEmptyString, quote, rejectUnknownFields, wholeNumber, type Fail } from './fields.js'
import { RETRY_BUDGET_FIELDS, validateRetryBudget } from './validate-remote.js'
import { urlForMessage } from '../redact.js'

export const HTTP_FIELDS = [
  'name',
  'type',
  'url',
  'urls',
  'headers',
  'ca_file',
  'client_cert_file',
  'client_key_file',
  'insecure_skip_verify',
  'connections',
  'connect_timeout_ms',
  'headers_timeout_ms',
  'body_timeout_ms',
  ...RETRY_BUDGET_FIELDS,
] as const

/**
 * Header names that say their value is a credential (Authorization, Proxy-Authorization, Cookie,
 * X-Api-Key, X-Auth-Token, X-Client-Secret, X-Amz-Security-Token...): such a value must come from
 * the environment or a file, never sit in a config file that is copied, versioned and shown.
 */
const CREDENTIAL_HEADER = /auth|cookie|key|token|secret|passw|credential|signature/i
/** RFC 9110 token characters: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Validates an `http` snapshot; `readTimeoutMs` bounds its per-read deadline. */
export function validateHttpSnapshot(entry: Record<string, unknown>, field: string, baseDir: string, readTimeoutMs: number, fail: Fail): Omit<HttpSnapshotSpec, 'name'> & { defaultName: string } {
  rejectUnknownFields(entry, HTTP_FIELDS, `${field}.`, fail)
  const urls = httpUrls(entry, field, fail)
  const url = urls[0]!
  const file = (key: string) => (entry[key] === undefined ? undefined : resolve(baseDir, nonEmptyString(entry[key], `${field}.${key}`, fail)))
  const clientCertFile = file('client_cert_file')
  const clientKeyFile = file('client_key_file')
  if ((clientCertFile === undefined) !== (clientKeyFile === undefined)) {
    throw fail(`${field}.client_cert_file`, 'client_cert_file and client_key_file go together', 'give both, or neither')
  }
  const spec = {
    type: 'http' as const,
    url: url.toString(),
    defaultName: lastSegment(url, `${field}.url`, fail),
    headers: validateHeaders(entry.headers, `${field}.headers`, baseDir, fail),
    caFile: file('ca_file'),
    clientCertFile,
    clientKeyFile,
    insecureSkipVerify: booleanField(entry.insecure_skip_verify, false, `${field}.insecure_skip_verify`, fail),
    connections: wholeNumber(entry.connections, { min: 1, max: 256, fallback: 8 }, `${field}.connections`, fail),
    connectTimeoutMs: wholeNumber(entry.connect_timeout_ms, { min: 10, max: 60_000, fallback: 3000 }, `${field}.connect_timeout_ms`, fail),
    headersTimeoutMs: wholeNumber(entry.headers_timeout_ms, { min: 10, max: 60_000, fallback: 5000 }, `${field}.headers_timeout_ms`, fail),
    bodyTimeoutMs: wholeNumber(entry.body_timeout_ms, { min: 10, max: 60_000, fallback: 5000 }, `${field}.body_timeout_ms`, fail),
    ...validateRetryBudget(entry, field, readTimeoutMs, fail),
  }
  if (urls.length === 1) return spec
  // Mirrors share every field but the URL (headers go to each mirror's own origin).
  const { defaultName, ...source } = spec
  return { ...spec, sources: urls.map((mirror) => ({ ...source, url: mirror.toString() })) }
}

/** `url:`, or the mirrors of `urls:` (src/backend/mirrors/), each checked as `url:` is. */
function httpUrls(entry: Record<string, unknown>, field: string, fail: Fail): URL[] {
  if (entry.urls === undefined) {
    if (entry.url === undefined) throw fail(`${field}.url`, 'missing', 'add url: https://host/path/disk.img (or urls: with a list of mirrors)')
    return [parseHttpUrl(nonEmptyString(entry.url, `${field}.url`, fail), `${field}.url`, fail)]
  }
  if (entry.url !== undefined) throw fail(`${field}.urls`, 'is given beside url:', 'give one url:, or every mirror in urls:, not both')
  if (!Array.isArray(entry.urls) || entry.urls.length === 0) {
    throw fail(`${field}.urls`, 'must be a non-empty list of URLs', 'write urls: [https://a.example/disk.img, https://b.example/disk.img]')
  }
  const urls = entry.urls.map((text: unknown, index) => parseHttpUrl(nonEmptyString(text, `${field}.urls[${index}]`, fail), `${field}.urls[${index}]`, fail))
  urls.forEach((url, index) => {
    const earlier = urls.findIndex((other) => other.href === url.href)
    if (earlier < index) throw fail(`${field}.urls[${index}]`, `is urls[${earlier}] again`, 'list each mirror once')
  })
  return urls
}

function parseHttpUrl(text: string, field: string, fail: Fail): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw fail(field, `${urlForMessage(text)} is not a URL`, 'give a full URL such as https://host/images/disk.img')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw fail(field, `${url.protocol} is not http: or https:`, 'give an http:// or https:// URL')
  }
  if (url.username || url.password) {
    throw fail(field, 'carries a user name or password', 'put credentials in headers: (e.g. Authorization: { env: VAR }), not in the URL')
  }
  return url
}

/** The URL path's last segment, percent-decoded: the snapshot's name unless `name:` gives one. */
function lastSegment(url: URL, field: string, fail: Fail): string {
  const segment = url.pathname.slice(url.pathname.lastIndexOf('/') + 1)
  try {
    return decodeURIComponent(segment)
  } catch {
    // decodeURIComponent throws a URIError for % not followed by two hex digits, or escapes that are not UTF-8.
    throw fail(field, `its path ends in ${quote(segment)}, which holds a malformed percent-escape`, 'write a literal % as %25, and escape only UTF-8 bytes (%C3%A9 for é)')
  }
}

function validateHeaders(raw: unknown, field: string, baseDir: string, fail: Fail): Record<string, SecretSource> {
  if (raw === undefined) return {}
  const headers: Record<string, SecretSource> = {}
  for (const [name, value] of Object.entries(asRecord(raw, field, fail))) {
    const where = `${field}.${name}`
    if (!HEADER_NAME.test(name)) throw fail(where, 'is not a valid header name', 'use letters, digits and -')
    if (typeof value === 'string') {
      if (CREDENTIAL_HEADER.test(name)) {
        throw fail(where, 'holds a credential in the config file (its name says auth, cookie, key, token, secret, password, credential or signature)', `read it at start instead: ${name}: { env: VARIABLE } or ${name}: { file: /path }`)
      }
      headers[name] = { value }
      continue
    }
    const source = asRecord(value, where, fail)
    rejectUnknownFields(source, ['env', 'file'], `${where}.`, fail)
    if (source.env !== undefined && source.file === undefined) headers[name] = { env: nonEmptyString(source.env, `${where}.env`, fail) }
    else if (source.file !== undefined && source.env === undefined) headers[name] = { file: resolve(baseDir, nonEmptyString(source.file, `${where}.file`, fail)) }
    else throw fail(where, 'needs exactly one of env: or file:', `write ${name}: { env: VARIABLE } or ${name}: { file: /path }`)
  }
  return headers
}

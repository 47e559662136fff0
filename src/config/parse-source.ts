import { fileURLToPath } from 'node:url'
import { ConfigError } from './config-error.js'
import { quote } from './fields.js'
import { urlForMessage } from '../redact.js'

/** A snapshot given on the command line, before validation (the config file's raw shape). */
export type RawSnapshot = { name?: string } & ({ type: 'file' | 'mmap'; path: string } | { type: 'http' | 's3'; url: string })

const LOCAL_SCHEMES: Record<string, 'file' | 'mmap'> = { 'file:': 'file', 'mmap:': 'mmap' }
const HTTP_SCHEMES = new Set(['http:', 'https:'])

/**
 * Parses one command-line source: `[name=]source`, where source is a path (served by the file
 * backend), `file:///path`, `mmap:///path`, an `http(s)://` URL or `s3://bucket/key` (with default
 * settings; headers, TLS files, S3 endpoints and timeouts need a config file). Text before the first `=` is a name only if it
 * holds no `/` and no `:`, so `/data/a=b.img` stays a path.
 */
export function parseSource(argument: string, position: number): RawSnapshot {
  const equals = argument.indexOf('=')
  const prefix = equals > 0 ? argument.slice(0, equals) : ''
  const named = prefix !== '' && !prefix.includes('/') && !prefix.includes(':')
  const name = named ? prefix : undefined
  const source = named ? argument.slice(equals + 1) : argument
  // Anything shaped like `scheme:/` is a URL (file:/x is as valid as file:///x); write ./a:/b for such a path.
  const scheme = /^([a-z][a-z0-9+.-]+:)\//i.exec(source)?.[1]?.toLowerCase()
  // A URL is shown redacted: its query or user information may be a secret.
  const shown = `${named ? `${name}=` : ''}${scheme === undefined ? source : urlForMessage(source)}`
  const fail = (problem: string, fix: string) => new ConfigError('command line', `source ${position} (${quote(shown)})`, problem, fix)
  if (source === '') throw fail('no source after the name', 'write name=/path/to/image')

  if (scheme === undefined) return { ...(name && { name }), type: 'file', path: source }
  if (HTTP_SCHEMES.has(scheme)) return { ...(name && { name }), type: 'http', url: source }
  if (scheme === 's3:') return { ...(name && { name }), type: 's3', url: source }
  const type = LOCAL_SCHEMES[scheme]
  if (!type) throw fail(`unsupported scheme ${scheme}`, 'use a path, file:///path, mmap:///path, an http(s):// URL or s3://bucket/key')
  let path: string
  try {
    path = fileURLToPath(`file:${source.slice(scheme.length)}`)
  } catch {
    throw fail('is not a local file URL', `write ${scheme}///absolute/path`)
  }
  return { ...(name && { name }), type, path }
}

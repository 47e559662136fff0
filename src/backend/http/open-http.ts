import { readFile } from 'node:fs/promises'
import type { HttpSnapshotSpec, SecretSource } from '../../config/config.js'
import type { OpenContext } from '../open-context.js'
import { SourceOpenError, describe } from '../errors.js'
import { HttpBackend } from './http-backend.js'
import { remoteRetryPolicy } from '../remote/retry-policy.js'

/** Reads the secrets and certificates a spec points at, then opens the backend. */
export async function openHttpBackend(spec: HttpSnapshotSpec, { env, logger, observe }: OpenContext): Promise<HttpBackend> {
  const headers: Record<string, string> = {}
  for (const [name, source] of Object.entries(spec.headers)) headers[name] = await secretValue(spec.name, name, source, env)
  const pem = (path: string | undefined, what: string) => (path === undefined ? undefined : readPem(spec.name, path, what))
  const [ca, cert, key] = await Promise.all([pem(spec.caFile, 'ca_file'), pem(spec.clientCertFile, 'client_cert_file'), pem(spec.clientKeyFile, 'client_key_file')])
  return HttpBackend.open({
    url: spec.url,
    headers,
    tls: { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }), insecureSkipVerify: spec.insecureSkipVerify },
    connections: spec.connections,
    connectTimeoutMs: spec.connectTimeoutMs,
    headersTimeoutMs: spec.headersTimeoutMs,
    bodyTimeoutMs: spec.bodyTimeoutMs,
    retry: remoteRetryPolicy(spec),
    proxy: {
      httpProxy: env.http_proxy ?? env.HTTP_PROXY ?? '',
      httpsProxy: env.https_proxy ?? env.HTTPS_PROXY ?? '',
      noProxy: env.no_proxy ?? env.NO_PROXY ?? '',
    },
    logger,
    observer: observe?.(spec.name),
  })
}

async function secretValue(snapshot: string, header: string, source: SecretSource, env: OpenContext['env']): Promise<string> {
  if ('value' in source) return source.value
  if ('env' in source) {
    const value = env[source.env]
    if (value === undefined || value === '') {
      throw new SourceOpenError(
        `snapshot ${snapshot}: header ${header} comes from the environment variable ${source.env}, which is not set`,
        `set ${source.env} in the daemon's environment (under systemd: Environment= or EnvironmentFile=)`,
      )
    }
    return value
  }
  try {
    // A trailing newline is how editors and `echo` end files; it is never part of a token.
    return (await readFile(source.file, 'utf8')).replace(/\r?\n$/, '')
  } catch (cause) {
    throw new SourceOpenError(`snapshot ${snapshot}: header ${header}: cannot read ${source.file} (${describe(cause)})`, 'check the file and its permissions', { cause })
  }
}

async function readPem(snapshot: string, path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (cause) {
    throw new SourceOpenError(`snapshot ${snapshot}: ${what} ${path} cannot be read (${describe(cause)})`, 'check the path and its permissions', { cause })
  }
}

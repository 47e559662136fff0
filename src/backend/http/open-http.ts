import { readFile } from 'node:fs/promises'
import type { HttpSnapshotSpec } from '../../config/config.js'
import type { OpenContext } from '../open-context.js'
import { SourceOpenError, describe } from '../errors.js'
import { HttpBackend } from './http-backend.js'
import { extraCaCerts } from './extra-ca-certs.js'
import { openHeaderValues } from './header-values.js'
import { remoteRetryPolicy } from '../remote/retry-policy.js'

/**
 * Reads the TLS files and the header values a spec points at (following the header files from
 * then on: header-values.ts), then opens the backend, which closes them with itself.
 */
export async function openHttpBackend(spec: HttpSnapshotSpec, context: OpenContext): Promise<HttpBackend> {
  const { env, logger, observe } = context
  const pem = (path: string | undefined, what: string) => (path === undefined ? undefined : readPem(spec.name, path, what))
  const [ca, cert, key, extraCa] = await Promise.all([
    pem(spec.caFile, 'ca_file'),
    pem(spec.clientCertFile, 'client_cert_file'),
    pem(spec.clientKeyFile, 'client_key_file'),
    extraCaCerts(env, spec.caFile !== undefined, logger),
  ])
  // Last, as it is the one with something to close (its watches): HttpBackend.open closes it on failure.
  const headers = await openHeaderValues(spec.name, spec.headers, context)
  return HttpBackend.open({
    url: spec.url,
    headers,
    tls: { ...(ca && { ca }), ...(extraCa && { extraCa }), ...(cert && { cert }), ...(key && { key }), insecureSkipVerify: spec.insecureSkipVerify },
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

async function readPem(snapshot: string, path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (cause) {
    throw new SourceOpenError(`snapshot ${snapshot}: ${what} ${path} cannot be read (${describe(cause)})`, 'check the path and its permissions', { cause })
  }
}

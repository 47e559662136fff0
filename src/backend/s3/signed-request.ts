import type { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'

/** A request as the SDK would send it: resolved endpoint, path, query and signed headers. */
export interface SignedRequest {
  /** `http://host:port` or `https://host` */
  origin: string
  /** Path and query, encoded for the request line. */
  target: string
  /** Every header the SDK set, `host` excepted (the client sends its own, which is the same). */
  headers: Record<string, string>
}

/** Carries the signed request out of the SDK's middleware stack; never leaves this module. */
class Captured extends Error {
  constructor(readonly request: CapturedRequest) {
    super('snapmount: request captured after signing')
  }
}

interface CapturedRequest {
  protocol: string
  hostname: string
  port?: number
  path: string
  /** GetObject's are single values (x-id, versionId). */
  query: Record<string, string>
  headers: Record<string, string>
}

/**
 * Has the SDK build and sign `command` (endpoint rules, credentials from its chain, SigV4) and
 * stops it just before sending: the request it would have sent. Every decision about where and
 * how to ask stays the SDK's; only the sending (and the body) is ours.
 */
export async function signedRequest(client: S3Client, command: GetObjectCommand, abortSignal: AbortSignal): Promise<SignedRequest> {
  command.middlewareStack.addRelativeTo(
    () => async (args: { request: unknown }) => {
      throw new Captured(args.request as CapturedRequest)
    },
    { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'snapmountCaptureSigned' },
  )
  let request: CapturedRequest
  try {
    await client.send(command, { abortSignal })
    /* c8 ignore next -- the capture above throws before anything is sent */
    throw new Error('the SDK sent a request snapmount meant to send itself')
  } catch (err) {
    if (!(err instanceof Captured)) throw err
    request = err.request
  }
  let query = ''
  for (const [name, value] of Object.entries(request.query)) {
    query += `${query ? '&' : '?'}${rfc3986(name)}=${rfc3986(value)}`
  }
  const { host: _host, ...headers } = request.headers
  const port = request.port === undefined ? '' : `:${request.port}`
  return { origin: `${request.protocol}//${request.hostname}${port}`, target: `${request.path}${query}`, headers }
}

/** Percent-encoding as SigV4 canonicalises it (encodeURIComponent leaves !'()* as they are). */
function rfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

import { SnapmountError } from '../../errors.js'

// Typed errors of the remote backends (HTTP and S3 alike), and which of them a retry could cure.

/** What an S3-protocol store said besides the status, where the SDK parsed its answer. */
export interface StoreAnswer {
  /** The store's error code (S3's `Code`: NoSuchKey, AccessDenied, RequestTimeout...). */
  errorCode?: string | undefined
  /** The SDK set its clock from this answer's Date, having found ours skewed: signing again can pass. */
  clockSkewCorrected?: boolean | undefined
}

/** A status the read cannot use; whether another try could get a better one: `isRetryable`. */
export class HttpStatusError extends SnapmountError {
  readonly code = 'E_HTTP_STATUS'
  constructor(
    readonly status: number,
    readonly url: string,
    readonly retryAfterMs = 0,
    readonly store: StoreAnswer = {},
  ) {
    super(`${url} answered ${status}${store.errorCode === undefined ? '' : ` ${store.errorCode}`}`)
  }
}

/** The object is no longer the one mounted (validator changed, 412, size changed): never mix versions. */
export class RemoteChangedError extends SnapmountError {
  readonly code = 'E_REMOTE_CHANGED'
  constructor(readonly url: string, detail: string) {
    super(`the object at ${url} changed on the server since it was mounted (${detail}); remount to serve the new version`)
  }
}

/** The server sent the whole object (200) to a Range request. */
export class RangeIgnoredError extends SnapmountError {
  readonly code = 'E_RANGE_IGNORED'
  constructor(readonly url: string) {
    super(`${url} answered a Range request with the whole object (200): the server does not support ranges`)
  }
}

/** A 206 that is not exactly the requested range: wrong Content-Range, wrong length, an encoding. */
export class BadResponseError extends SnapmountError {
  readonly code = 'E_BAD_RESPONSE'
  constructor(readonly url: string, detail: string) {
    super(`${url} sent a response that is not the requested bytes: ${detail}`)
  }
}

/**
 * A size past Number.MAX_SAFE_INTEGER (2^53 - 1 bytes, 8 PiB), where a JavaScript number stops
 * being exact: offsets near it would be rounded, so no read of such an object could be trusted.
 * A server says the same again, so it is final.
 */
export class ImpossibleSizeError extends SnapmountError {
  readonly code = 'E_IMPOSSIBLE_SIZE'
  constructor(readonly url: string, readonly header: string, digits: string) {
    const shown = digits.length > 24 ? `${digits.slice(0, 24)}... (${digits.length} digits)` : digits
    super(`${url} gives a size of ${shown} bytes in ${header}, past the largest snapmount can serve exactly (${Number.MAX_SAFE_INTEGER})`)
  }
}

/** The body ended before the range did (a dropped or cut connection). */
export class TruncatedBodyError extends SnapmountError {
  readonly code = 'E_TRUNCATED_BODY'
  constructor(readonly url: string, readonly expected: number, readonly received: number) {
    super(`${url} sent ${received} of ${expected} bytes before the body ended`)
  }
}

/** The server closed the connection before its answer was complete (a crash, a restart, a cut). */
export class ConnectionClosedError extends SnapmountError {
  readonly code = 'E_CONNECTION_CLOSED'
  constructor(readonly url: string, detail: string) {
    super(`${url}: the server closed the connection ${detail}`)
  }
}

/** No answer in time: no connection, no response head, or silence in the middle of a body. */
export class ResponseTimeoutError extends SnapmountError {
  constructor(readonly code: 'E_CONNECT_TIMEOUT' | 'E_HEADERS_TIMEOUT' | 'E_BODY_TIMEOUT', readonly url: string, detail: string) {
    super(`${url}: ${detail}`)
  }
}

/** More redirects than we follow, or one we refuse (https to http). */
export class RedirectError extends SnapmountError {
  readonly code = 'E_REDIRECT'
  constructor(readonly url: string, detail: string) {
    super(`${url}: ${detail}`)
  }
}

/** Credentials were refused (401, 403), and have been renewed since the request was sent: try them. */
export class CredentialsRenewedError extends SnapmountError {
  readonly code = 'E_CREDENTIALS_RENEWED'
  constructor(override readonly cause: HttpStatusError) {
    super(`${cause.message}; the credentials have been renewed since`, { cause })
  }
}

/** Every allowed attempt failed, or the read's deadline came first; `cause` is the last failure. */
export class RetriesExhaustedError extends SnapmountError {
  readonly code = 'E_RETRIES_EXHAUSTED'
  constructor(readonly what: string, readonly attempts: number, readonly elapsedMs: number, cause: unknown) {
    super(`${what} failed after ${attempts} attempt(s) in ${elapsedMs} ms: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

/**
 * Whether another attempt could succeed: the one place that decides, for HTTP and S3 alike (the
 * retry loop asks it). A final failure ends the read, or the open, at once, so its message and
 * fix are reported once instead of after a retry budget of warnings.
 *
 * Retried, as what a moment can cure: a reset, refused or cut connection, a timeout, a garbled
 * answer (a proxy's hiccup), a 401 or 403 to credentials renewed since (a token file rotated),
 * 408, 429 and 5xx but 501 and 505, S3's RequestTimeout (a 400) and a
 * refusal after which the SDK corrected its clock (the AWS SDK's own retry strategy retries those
 * two; ours replaces it). DNS failures are retried too, ENOTFOUND as well as EAI_AGAIN: a resolver
 * restarting or a VPN reconnecting can deny a name for a moment, and a mistyped host costs only
 * the short retry budget before its message.
 *
 * Final: every other status (S3's NoSuchBucket, NoSuchKey, AccessDenied, InvalidAccessKeyId,
 * SignatureDoesNotMatch and ExpiredToken among them), a changed object, a server that ignores
 * ranges, a refused redirect; and the client's own setup, which only the user can fix: no
 * credentials (the SDK's provider errors), no region or an invalid one, an endpoint that is not a
 * URL, a TLS certificate that is not trusted (unknown CA, expired, self-signed, another name).
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return retryableAnswer(err)
  if (err instanceof SnapmountError) return RETRYABLE_CODES.has(err.code)
  // Not ours: from the network stack, TLS or the AWS SDK.
  return setupProblem(err) === undefined
}

/** The client-side setup problems of `isRetryable`'s final list, which name their fix. */
export type SetupProblem = 'credentials' | 'region' | 'endpoint' | 'certificate'

/** Which setup problem `err` (not one of ours) shows, if any: no retry cures those. */
export function setupProblem(err: unknown): SetupProblem | undefined {
  const { name, code, message } = (err ?? {}) as { name?: unknown; code?: unknown; message?: unknown }
  if (typeof name === 'string' && PROVIDER_ERRORS.has(name)) return 'credentials'
  if (typeof message === 'string' && /^Region (is missing|not accepted)/.test(message)) return 'region'
  if (code === 'ERR_INVALID_URL') return 'endpoint'
  if (typeof code === 'string' && CERTIFICATE_CODE.test(code)) return 'certificate'
  return undefined
}

/** Our errors a retry can cure: a cut or garbled answer, a closed connection, a timeout, renewed credentials. */
const RETRYABLE_CODES = new Set(['E_BAD_RESPONSE', 'E_TRUNCATED_BODY', 'E_CONNECTION_CLOSED', 'E_CONNECT_TIMEOUT', 'E_HEADERS_TIMEOUT', 'E_BODY_TIMEOUT', 'E_CREDENTIALS_RENEWED'])
/** 501 Not Implemented and 505 HTTP Version Not Supported say the server never will. */
const FINAL_SERVER_STATUSES = new Set([501, 505])
/** Store error codes on a status that is otherwise final, which the AWS SDK retries. */
const RETRYABLE_STORE_CODES = new Set(['RequestTimeout'])
/** The AWS SDK's credential and token provider errors (@smithy/property-provider). */
const PROVIDER_ERRORS = new Set(['ProviderError', 'CredentialsProviderError', 'TokenProviderError'])
/**
 * OpenSSL's verification failures (UNABLE_TO_VERIFY_LEAF_SIGNATURE, CERT_HAS_EXPIRED,
 * DEPTH_ZERO_SELF_SIGNED_CERT, HOSTNAME_MISMATCH...), Node's ERR_TLS_CERT_ALTNAME_INVALID, and a
 * peer's certificate alerts (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED). ERR_TLS_HANDSHAKE_TIMEOUT
 * is not one: it is retried.
 */
const CERTIFICATE_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED/

function retryableAnswer({ status, store }: HttpStatusError): boolean {
  if (store.clockSkewCorrected || (store.errorCode !== undefined && RETRYABLE_STORE_CODES.has(store.errorCode))) return true
  return status === 408 || status === 429 || (status >= 500 && !FINAL_SERVER_STATUSES.has(status))
}

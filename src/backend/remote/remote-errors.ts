import { SnapmountError } from '../../errors.js'

// Typed errors of the remote backends (HTTP and S3 alike), and which of them a retry could cure.

/** A status the read cannot use. 408, 429 and 5xx are worth another try; the rest are final. */
export class HttpStatusError extends SnapmountError {
  readonly code = 'E_HTTP_STATUS'
  readonly retryable: boolean
  constructor(readonly status: number, readonly url: string, readonly retryAfterMs = 0) {
    super(`${url} answered ${status}`)
    this.retryable = status === 408 || status === 429 || status >= 500
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

/** Every allowed attempt failed, or the read's deadline came first; `cause` is the last failure. */
export class RetriesExhaustedError extends SnapmountError {
  readonly code = 'E_RETRIES_EXHAUSTED'
  constructor(readonly what: string, readonly attempts: number, readonly elapsedMs: number, cause: unknown) {
    super(`${what} failed after ${attempts} attempt(s) in ${elapsedMs} ms: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

/** Whether another attempt could succeed. Errors that are not ours come from the network stack. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.retryable
  if (err instanceof BadResponseError || err instanceof TruncatedBodyError) return true
  if (err instanceof ConnectionClosedError || err instanceof ResponseTimeoutError) return true
  return !(err instanceof SnapmountError)
}

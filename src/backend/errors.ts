import { InputError, SnapmountError } from '../errors.js'

/** Asked for bytes outside `[0, length)`: a bug in the caller, never answered with padding. */
export class OutOfRangeError extends SnapmountError {
  readonly code = 'E_OUT_OF_RANGE'
  constructor(readonly offset: number, readonly length: number, readonly size: number) {
    super(`read of ${length} bytes at offset ${offset} is outside a source of ${size} bytes`)
  }
}

/** The source ended before the bytes it promised: it shrank or changed under us. */
export class PartialReadError extends SnapmountError {
  readonly code = 'E_PARTIAL_READ'
  constructor(readonly offset: number, readonly length: number, readonly bytesRead: number) {
    super(`source returned ${bytesRead} of ${length} bytes at offset ${offset}; was it truncated?`)
  }
}

/** The operating system failed a read of the source (EIO from a disk, a vanished NFS server...). */
export class SourceReadError extends SnapmountError {
  readonly code = 'E_SOURCE_READ'
  constructor(readonly offset: number, readonly length: number, cause: unknown) {
    super(`reading ${length} bytes at offset ${offset} failed: ${describe(cause)}`, { cause })
  }
}

/** A read arrived after `close()`. */
export class BackendClosedError extends SnapmountError {
  readonly code = 'E_CLOSED'
  constructor() {
    super('the backend is closed')
  }
}

/** A source could not be opened when the daemon started: missing, unreadable, not a file. */
export class SourceOpenError extends InputError {
  readonly code = 'E_SOURCE_OPEN'
}

/**
 * A local source's stat or open did not come back within its deadline: a path on a hung network
 * file system (or one that blocks some other way). Refused like any source that cannot be opened.
 */
export class SourceOpenTimeoutError extends InputError {
  readonly code = 'E_SOURCE_OPEN_TIMEOUT'
  constructor(readonly path: string, readonly timeoutMs: number) {
    super(
      `opening source ${path} took longer than ${timeoutMs / 1000} s (hung network file system?)`,
      'check the file system it is on (its server, the network); with lazy: true the other snapshots are served meanwhile and this one is retried',
    )
  }
}

/** An error's code and message in one phrase, for messages that wrap it. */
export function describe(cause: unknown): string {
  const { code, message } = (cause ?? {}) as NodeJS.ErrnoException
  if (message === undefined) return String(cause)
  // Node's system errors already start with their code ("EIO: i/o error, read").
  return code && !message.startsWith(code) ? `${code}: ${message}` : message
}

/**
 * A read's failure that concerns only the bytes `[offset, offset + length)` of the source (one
 * block that never matched its manifest digest): the rest of the range asked for may be read again
 * and succeed. The block cache uses it to fail only the reads that need those bytes, not every
 * read that waited on the same request (src/cache/caching-backend.ts).
 */
export interface ConfinedFailure {
  readonly failedRange: { readonly offset: number; readonly length: number }
}

/** The bytes `err` is confined to, when it is a ConfinedFailure. */
export function failedRangeOf(err: unknown): ConfinedFailure['failedRange'] | undefined {
  return (err as Partial<ConfinedFailure> | undefined)?.failedRange
}

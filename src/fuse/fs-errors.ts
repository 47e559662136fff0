import { SnapmountError } from '../errors.js'

/** No snapshot by that name, or a path below one. */
export class NotFoundError extends SnapmountError {
  readonly code = 'E_NOT_FOUND'
  constructor(readonly path: string) {
    super(`no such file: ${path}`)
  }
}

/** Snapshots are read-only: any attempt to open for writing or to change them. */
export class ReadOnlyError extends SnapmountError {
  readonly code = 'E_READ_ONLY'
  constructor(readonly path: string) {
    super(`${path} is a read-only snapshot`)
  }
}

/** A directory operation on a snapshot file. */
export class NotADirectoryError extends SnapmountError {
  readonly code = 'E_NOT_A_DIRECTORY'
  constructor(readonly path: string) {
    super(`${path} is not a directory`)
  }
}

/** A file operation on the root directory. */
export class IsADirectoryError extends SnapmountError {
  readonly code = 'E_IS_A_DIRECTORY'
  constructor(readonly path: string) {
    super(`${path} is a directory`)
  }
}

/** The backend did not answer a read within the deadline; the kernel gets EIO, not a hang. */
export class ReadTimeoutError extends SnapmountError {
  readonly code = 'E_READ_TIMEOUT'
  constructor(readonly offset: number, readonly length: number, readonly timeoutMs: number) {
    super(`read of ${length} bytes at offset ${offset} got no answer within ${timeoutMs} ms`)
  }
}

/**
 * A lazy snapshot whose source has not answered yet: listed, but its attributes and bytes are
 * unknown, so lookups, opens and reads fail (EIO) until the background retries open it.
 */
export class UnavailableError extends SnapmountError {
  readonly code = 'E_UNAVAILABLE'
  constructor(readonly path: string) {
    super(`${path} is not available yet: its source has not answered (lazy snapshot, retried in the background)`)
  }
}

/** The daemon is stopping: opens are refused (EBUSY) while the reads in flight finish. */
export class ShuttingDownError extends SnapmountError {
  readonly code = 'E_SHUTTING_DOWN'
  constructor(readonly path: string) {
    super(`${path} cannot be opened: snapmount is shutting down`)
  }
}

/** A read in flight when a stop was hurried (a second SIGINT or SIGTERM): failed (EIO) at once. */
export class ReadAbortedError extends SnapmountError {
  readonly code = 'E_READ_ABORTED'
  constructor() {
    super('read abandoned: snapmount is stopping in a hurry')
  }
}

/** A read or release named a file handle this file system never gave out (a binding bug). */
export class BadHandleError extends SnapmountError {
  readonly code = 'E_BAD_HANDLE'
  constructor(readonly handle: number) {
    super(`file handle ${handle} is not open`)
  }
}

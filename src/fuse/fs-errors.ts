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

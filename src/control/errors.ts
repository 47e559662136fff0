import { InputError, SnapmountError } from '../errors.js'

/** A request the daemon cannot parse or that asks for something impossible (a range past the end). */
export class BadRequestError extends InputError {
  readonly code = 'E_BAD_REQUEST'
}

/** warm or verify named a snapshot the daemon does not serve (now: the list changes on reload). */
export class UnknownSnapshotError extends InputError {
  readonly code = 'E_UNKNOWN_SNAPSHOT'
  constructor(readonly snapshot: string, served: readonly string[]) {
    super(`no snapshot named ${JSON.stringify(snapshot)} is mounted`, `use one of: ${served.join(', ') || '(none)'}`)
  }
}

/** warm, verify or profile named a lazy snapshot that is listed but whose source has not answered yet. */
export class SnapshotWaitingError extends InputError {
  readonly code = 'E_SNAPSHOT_WAITING'
  constructor(readonly snapshot: string) {
    super(`${snapshot} is listed but not open yet: its source has not answered (lazy: true)`, 'try again once it opens; the daemon logs when it does')
  }
}

/** No daemon answers on the control socket (not running, another mountpoint, no permission). */
export class ControlUnavailableError extends SnapmountError {
  readonly code = 'E_CONTROL_UNAVAILABLE'
}

/** The control socket's path is taken by something that is not a stale socket. */
export class ControlSocketInUseError extends SnapmountError {
  readonly code = 'E_CONTROL_SOCKET_IN_USE'
}

/** The daemon answered a request with an error; `code` is the daemon's. */
export class DaemonError extends SnapmountError {
  constructor(readonly code: string, message: string, readonly fix: string | undefined) {
    super(message)
  }
}

/** What came back on the control socket is not the protocol: not JSON, not a response, or too long. */
export class BadReplyError extends SnapmountError {
  readonly code = 'E_BAD_REPLY'
}

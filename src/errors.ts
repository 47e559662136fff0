/**
 * The root of snapmount's typed errors. Callers match on `code`, never on the message
 * (the undici convention); `cause` carries the lower-level error where there is one.
 */
export abstract class SnapmountError extends Error {
  abstract readonly code: string
  override get name(): string {
    return this.constructor.name
  }
}

/**
 * A problem in what the user gave us (config, command line, mountpoint, source path).
 * The CLI prints `message` and `fix` on one line and exits 2, before anything is mounted.
 */
export abstract class InputError extends SnapmountError {
  constructor(message: string, readonly fix: string, options?: ErrorOptions) {
    super(message, options)
  }
}

import { InputError } from '../errors.js'

/** `profile record` for a snapshot already being recorded (by hand or automatically). */
export class AlreadyRecordingError extends InputError {
  readonly code = 'E_PROFILE_RECORDING'
  constructor(name: string, path: string) {
    super(`${name} is already being recorded, to ${path}`, `stop that first: snapmount profile stop ${name}`)
  }
}

/** `profile stop` for a snapshot nobody is recording. */
export class NotRecordingError extends InputError {
  readonly code = 'E_PROFILE_NOT_RECORDING'
  constructor(name: string) {
    super(`${name} is not being recorded`, `start a recording with snapmount profile record ${name}`)
  }
}

/** Profiles are of remote snapshots: a local one is read at the disk's speed, with nothing to prefetch. */
export class NotRemoteSnapshotError extends InputError {
  readonly code = 'E_PROFILE_NOT_REMOTE'
  constructor(name: string, type: string) {
    super(`${name} is a ${type} snapshot, not an http or s3 one: boot profiles are for remote snapshots`, 'record a remote snapshot: a local image needs no prefetch')
  }
}

/** A snapshot with neither a manifest nor a strong validator: no profile could be told to fit it. */
export class NoProfileIdentityError extends InputError {
  readonly code = 'E_PROFILE_NO_IDENTITY'
  constructor(name: string) {
    super(
      `${name} has no identity a profile could name: no manifest, and its source gives no strong ETag (or S3 version)`,
      'give the snapshot a manifest: (snapmount manifest create), or serve the image with strong ETags',
    )
  }
}

/** `profile record` without --output where snapmount has no place of its own for the file. */
export class NoProfileOutputError extends InputError {
  readonly code = 'E_PROFILE_NO_OUTPUT'
  constructor(name: string) {
    super(`no place to write ${name}'s profile: it has no prefetch_profile path and the daemon no cache_dir`, `give one: snapmount profile record ${name} --output FILE`)
  }
}

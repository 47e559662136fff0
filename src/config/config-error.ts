import { InputError } from '../errors.js'

/** A config file or command line that does not describe a valid mount. */
export class ConfigError extends InputError {
  readonly code = 'E_CONFIG'
  /**
   * @param origin the config file's path, or "command line"
   * @param field where in it, e.g. `snapshots[2].path`; empty for the file as a whole
   */
  constructor(readonly origin: string, readonly field: string, problem: string, fix: string) {
    super(field ? `${origin}: ${field}: ${problem}` : `${origin}: ${problem}`, fix)
  }
}

import { InputError } from '../errors.js'

/** Another daemon holds the cache directory: two writers would evict each other's blocks. */
export class DiskCacheLockedError extends InputError {
  readonly code = 'E_DISK_CACHE_LOCKED'
  constructor(readonly dir: string, options?: ErrorOptions) {
    super(`the disk cache ${dir} is in use by another snapmount daemon`, 'give each daemon its own cache_dir (--cache-dir), or stop the other one', options)
  }
}

import { join } from 'node:path'
import type { ProfileIdentity } from './format.js'
import { profileFileName } from './identity.js'

/** The folder of the disk cache (`cache_dir`) that holds the profiles snapmount records by itself. */
export const PROFILES_FOLDER = 'profiles'

/**
 * Where a snapshot of `identity` has its profile when the disk cache is on and the config names
 * none (`prefetch_profile` unset): `<cache_dir>/profiles/<profileFileName(identity)>`. The first
 * cold start records it there, the next one of the same image (on this host, or on another given
 * the file) replays it: both sides call this.
 */
export function cachedProfilePath(cacheDir: string, identity: ProfileIdentity): string {
  return join(cacheDir, PROFILES_FOLDER, profileFileName(identity))
}

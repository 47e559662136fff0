import { open } from 'node:fs/promises'
import type { ProfileSpec } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import { openBackend } from '../backend/open-backend.js'
import { describe } from '../backend/errors.js'
import { redactUrl } from '../redact.js'
import { identityMismatch, parseProfile, type BootProfile, type ProfileIdentity } from './format.js'

/**
 * The largest profile read: a boot of 1,400 reads is some 30 KB, and a profile listing every
 * block of a 64 GiB image at 128 KiB as a run of its own about 10 MB. 16 MiB stops a wrong URL
 * (the image named as its own profile) from being read into memory whole.
 */
export const MAX_PROFILE_BYTES = 16 * 1024 * 1024

/** A profile that was found and fits the snapshot: what to prefetch, and where it came from. */
export interface LoadedProfile {
  profile: BootProfile
  /** Its path, redacted URL or S3 bucket and key (profileLabel): for log lines and `status`. */
  label: string
}

/**
 * The boot profile a snapshot's `prefetch_profile:` names, if it can be used for the image
 * `image` (its profileIdentity). A profile is an optimisation, so nothing here fails the mount:
 * a local file that does not exist yet is no profile, quietly (recording creates it); one that
 * cannot be read, is too large, is not a valid profile, or was recorded from another image, or an
 * image with no identity to check it against, is a warning naming why, and no profile.
 */
export async function loadProfile(spec: ProfileSpec, image: ProfileIdentity | undefined, snapshot: string, context: OpenContext): Promise<LoadedProfile | undefined> {
  const { logger } = context
  const label = profileLabel(spec)
  try {
    const read = 'path' in spec ? await readFile(spec.path) : await readRemote(spec.source, context)
    if (read === undefined) return undefined
    const profile = parseProfile(read, label)
    if (!image) {
      logger.warn(`${snapshot}: prefetch profile ${label} not used: the image has neither a manifest nor a strong validator (ETag, version id), so no profile can be told to fit it`)
      return undefined
    }
    const mismatch = identityMismatch(profile, image)
    if (mismatch !== undefined) {
      logger.warn(`${snapshot}: prefetch profile ${label} not used: ${mismatch}; record it again for this image`)
      return undefined
    }
    return { profile, label }
  } catch (err) {
    logger.warn(`${snapshot}: prefetch profile ${label} not used: ${describe(err)}`)
    return undefined
  }
}

/** The text of a local profile, or undefined where there is none yet. */
async function readFile(path: string): Promise<string | undefined> {
  let file
  try {
    file = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const { size } = await file.stat()
    if (size > MAX_PROFILE_BYTES) throw tooLarge(size)
    return await file.readFile('utf8')
  } finally {
    await file.close()
  }
}

/** The text of a profile beside the image, opened as its manifest would be (same TLS, headers, credentials). */
async function readRemote(source: Extract<ProfileSpec, { source: unknown }>['source'], context: OpenContext): Promise<string> {
  const backend = await openBackend(source, context)
  try {
    if (backend.length > MAX_PROFILE_BYTES) throw tooLarge(backend.length)
    return (await backend.readExact(0, backend.length)).toString('utf8')
  } finally {
    await backend.close()
  }
}

function tooLarge(size: number): Error {
  return new Error(`it is ${size} bytes, more than any profile (${MAX_PROFILE_BYTES}): check that it names the profile, not the image`)
}

/** Where a profile is, as `status` shows it before it is loaded: a path, a redacted URL, or s3://bucket/key. */
export function profileLabel(profile: ProfileSpec): string {
  if ('path' in profile) return profile.path
  const { source } = profile
  return source.type === 's3' ? `s3://${source.bucket}/${source.key}` : redactUrl(source.url)
}

import type { SnapshotSpec } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import { openBackend } from '../backend/open-backend.js'
import { InputError } from '../errors.js'
import { decodeManifest, manifestSha256, type Manifest } from './format.js'

/**
 * The largest manifest read: a 1 TiB image at the smallest 4 KiB blocks needs 8 GiB of digests,
 * at the default 128 KiB 256 MiB. 1 GiB covers 4 TiB at the default and stops a wrong URL (an
 * image named as its own manifest) from being read into memory whole.
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024 * 1024
/** Read in pieces this large: one ranged request each, well within a remote read's deadline. */
const PIECE_BYTES = 4 * 1024 * 1024

/** A manifest whose SHA-256 is not the one pinned: nothing in it can be trusted. */
export class ManifestDigestError extends InputError {
  readonly code = 'E_MANIFEST_DIGEST'
}

/** A manifest that does not describe this image (another size), or is too large to be one. */
export class ManifestMismatchError extends InputError {
  readonly code = 'E_MANIFEST_MISMATCH'
}

/**
 * The bytes of the manifest at `source` (a local file, an http(s) URL or an S3 object, opened as
 * a snapshot's source is: same TLS, retries, credentials), read in pieces.
 */
export async function readManifestBytes(source: SnapshotSpec, context: OpenContext, label: string): Promise<Buffer> {
  const backend = await openBackend(source, context)
  try {
    const size = backend.length
    if (size > MAX_MANIFEST_BYTES) {
      throw new ManifestMismatchError(`${label}: the manifest is ${size} bytes, more than any manifest snapmount reads (${MAX_MANIFEST_BYTES})`, 'check that it names the manifest, not the image')
    }
    const pieces: Buffer[] = []
    for (let offset = 0; offset < size; offset += PIECE_BYTES) pieces.push(await backend.readExact(offset, Math.min(PIECE_BYTES, size - offset)))
    return Buffer.concat(pieces, size)
  } finally {
    await backend.close()
  }
}

/**
 * The manifest in `bytes`, checked: its SHA-256 must be `sha256` (when one is pinned) before any
 * of it is believed, then its format (ManifestFormatError), then its image size `imageBytes`.
 */
export function checkManifest(bytes: Buffer, expect: { sha256?: string | undefined; imageBytes: number; label: string }): Manifest {
  const digest = manifestSha256(bytes)
  if (expect.sha256 !== undefined && digest !== expect.sha256.toLowerCase()) {
    throw new ManifestDigestError(`${expect.label}: the manifest's SHA-256 is ${digest}, not the pinned ${expect.sha256}`, 'pin the digest snapmount manifest create printed, or give the manifest made for this image')
  }
  const manifest = decodeManifest(bytes)
  if (manifest.imageBytes !== expect.imageBytes) {
    throw new ManifestMismatchError(
      `${expect.label}: the manifest is for an image of ${manifest.imageBytes} bytes, and this one has ${expect.imageBytes}`,
      'give the manifest made for this image (snapmount manifest create)',
    )
  }
  return manifest
}

/** Reads and checks the manifest a snapshot pins (see `checkManifest`). */
export async function loadManifest(source: SnapshotSpec, expect: { sha256?: string | undefined; imageBytes: number; label: string }, context: OpenContext): Promise<Manifest> {
  return checkManifest(await readManifestBytes(source, context, expect.label), expect)
}

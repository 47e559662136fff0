import { InputError } from '../errors.js'

/**
 * The boot profile's file format (docs/profile.md): what a boot read of one snapshot, as runs of
 * blocks in the order the readers first touched them, each with the milliseconds since recording
 * began. JSON, so a user can read and diff it; one run per line, so a 1,400-read boot is a file of
 * some 30 KB.
 *
 * ```json
 * {
 *   "snapmount_profile": 1,
 *   "identity": { "bytes": 4294967296, "validator": "sha256:9f86d0..." },
 *   "block_bytes": 131072,
 *   "recorded_at": "2026-12-02T11:00:00.000Z",
 *   "runs": [
 *     [0, 1, 0],
 *     [8192, 4, 12.5]
 *   ]
 * }
 * ```
 *
 * A run is `[first block, block count, ms]`: blocks `first` to `first + count - 1` were first
 * touched together, `ms` after the first read. The recorder lists each block once.
 */
export const PROFILE_VERSION = 1

/**
 * Which image a profile was recorded from: its size and what proves its bytes. Not where it was
 * read from, so a profile serves every host and every mirror of the same image.
 */
export interface ProfileIdentity {
  bytes: number
  /**
   * `sha256:<hex>`, the manifest's digest, where the snapshot has a manifest (the strongest: the
   * same on HTTP and S3 copies); else the source's strong validator (SourceIdentity.validator).
   */
  validator: string
}

/** One run of blocks first touched together (see above). */
export interface ProfileRun {
  firstBlock: number
  blockCount: number
  atMs: number
}

/** A decoded profile. */
export interface BootProfile {
  identity: ProfileIdentity
  blockBytes: number
  recordedAt: Date
  runs: ProfileRun[]
}

/** A profile file that is not one, or not one this version reads: bad input, exit 2. */
export class ProfileFormatError extends InputError {
  readonly code = 'E_PROFILE_FORMAT'
  constructor(label: string, problem: string) {
    super(`${label}: not a valid snapmount boot profile: ${problem}`, 'record it again with snapmount profile record, or remove it')
  }
}

/** The profile as its file holds it: one run per line. */
export function encodeProfile(profile: BootProfile): string {
  const head = {
    snapmount_profile: PROFILE_VERSION,
    identity: { bytes: profile.identity.bytes, validator: profile.identity.validator },
    block_bytes: profile.blockBytes,
    recorded_at: profile.recordedAt.toISOString(),
  }
  const runs = profile.runs.map(({ firstBlock, blockCount, atMs }) => `    ${JSON.stringify([firstBlock, blockCount, Math.round(atMs * 10) / 10])}`)
  const lines = JSON.stringify(head, null, 2).split('\n').slice(0, -1)
  return `${lines.join('\n')},\n  "runs": [\n${runs.join(',\n')}\n  ]\n}\n`
}

/** Reads a profile file's text, checking every field; `label` names it in errors (its path). */
export function parseProfile(text: string, label: string): BootProfile {
  const fail = (problem: string): never => {
    throw new ProfileFormatError(label, problem)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`)
  }
  if (!isObject(json)) return fail('not a JSON object')
  if (json.snapmount_profile !== PROFILE_VERSION) return fail(`snapmount_profile is ${JSON.stringify(json.snapmount_profile)}, this version reads ${PROFILE_VERSION}`)
  const identity = json.identity
  if (!isObject(identity) || !isCount(identity.bytes) || typeof identity.validator !== 'string' || identity.validator === '') {
    return fail('identity must be { bytes, validator }')
  }
  const blockBytes = json.block_bytes
  if (!isCount(blockBytes) || blockBytes === 0 || (blockBytes & (blockBytes - 1)) !== 0) return fail('block_bytes must be a power of two')
  const recordedAt = new Date(typeof json.recorded_at === 'string' ? json.recorded_at : Number.NaN)
  if (Number.isNaN(recordedAt.getTime())) return fail('recorded_at must be an ISO date')
  if (!Array.isArray(json.runs)) return fail('runs must be a list')
  const blockCount = Math.ceil(identity.bytes / blockBytes)
  const runs = json.runs.map((run: unknown, index): ProfileRun => {
    if (!Array.isArray(run) || run.length !== 3 || !isCount(run[0]) || !isCount(run[1]) || run[1] === 0 || typeof run[2] !== 'number' || !(run[2] >= 0)) {
      return fail(`run ${index} must be [first block, block count, ms]`)
    }
    const [firstBlock, count, atMs] = run as [number, number, number]
    if (firstBlock + count > blockCount) return fail(`run ${index} reaches past the image's ${blockCount} blocks`)
    return { firstBlock, blockCount: count, atMs }
  })
  return { identity: { bytes: identity.bytes, validator: identity.validator }, blockBytes, recordedAt, runs }
}

/** Why a profile does not fit the image it would prefetch for, or undefined if it does. */
export function identityMismatch(profile: BootProfile, image: ProfileIdentity): string | undefined {
  if (profile.identity.bytes !== image.bytes) return `it was recorded from an image of ${profile.identity.bytes} bytes, this one has ${image.bytes}`
  if (profile.identity.validator !== image.validator) return `it was recorded from ${profile.identity.validator}, this image is ${image.validator}`
  return undefined
}

/** The bytes a profile would prefetch: its blocks, the image's last one short. */
export function profileBytes(profile: BootProfile): number {
  let bytes = 0
  for (const { firstBlock, blockCount } of profile.runs) {
    const end = Math.min((firstBlock + blockCount) * profile.blockBytes, profile.identity.bytes)
    bytes += end - firstBlock * profile.blockBytes
  }
  return bytes
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

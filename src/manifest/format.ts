import { InputError } from '../errors.js'
import { nodeCrypto } from '../lazy-builtins.js'

/**
 * The integrity manifest's binary format (docs/manifest.md): a 32-byte header, then one digest per
 * block of the image, in order, a flat list (as Metalink's pieces): a reader needs one block's
 * digest at a time and the whole list is a 4000th of the image at 128 KiB blocks, so a tree would
 * buy nothing a measurement asked for. All integers are big-endian. What users pin is the SHA-256
 * of the whole manifest file (`manifestSha256`), which `sha256sum` prints too.
 *
 * ```
 * offset size
 *  0     8    magic "SNAPMFST"
 *  8     2    format version (1)
 * 10     1    algorithm id (1 SHA-256, 2 BLAKE3 with 256-bit output)
 * 11     1    digest length in bytes (32 for both)
 * 12     4    block size in bytes (a power of two, 4 KiB to 4 MiB)
 * 16     8    image size in bytes
 * 24     8    block count: ceil(image size / block size)
 * 32     ...  block count digests; the last block's covers only its bytes (no padding)
 * ```
 */
export const MANIFEST_MAGIC = Buffer.from('SNAPMFST', 'latin1')
export const MANIFEST_VERSION = 1
export const HEADER_BYTES = 32

/**
 * The block digest algorithms a manifest may name, by their id in the header: SHA-256 (node:crypto)
 * and BLAKE3 (the official C, vendor/blake3), which costs a third of SHA-256's CPU here
 * (docs/manifest.md). A manifest's own digest, what users pin, is SHA-256 either way.
 */
export const HASH_ALGORITHMS = {
  sha256: { id: 1, digestBytes: 32 },
  blake3: { id: 2, digestBytes: 32 },
} as const
export type HashAlgorithm = keyof typeof HASH_ALGORITHMS

/**
 * What `snapmount manifest create` uses unless told: BLAKE3, whose cost per GiB verified is a third
 * of SHA-256's on these hosts; with it the bench's sequential reads kept issue 20's 0.9x of the
 * reads without a manifest on the median of runs, where SHA-256's gave 0.72-0.75x
 * (docs/manifest.md). `--algorithm
 * sha256` makes manifests any standard tool can check block by block (sha256sum).
 */
export const DEFAULT_HASH_ALGORITHM: HashAlgorithm = 'blake3'

/**
 * Manifest block sizes: powers of two from a page to the largest ranged request snapmount makes,
 * as the cache block (`cache_block_kib`) is; the default is the cache block's default, so a 4 KiB
 * random read fetches and hashes one 128 KiB block.
 */
export const MANIFEST_BLOCK_BYTES = { default: 128 * 1024, min: 4 * 1024, max: 4 * 1024 * 1024 } as const

/** A decoded manifest: what the header says, and the digests as one buffer. */
export interface Manifest {
  readonly algorithm: HashAlgorithm
  readonly blockBytes: number
  readonly imageBytes: number
  readonly blockCount: number
  /** `blockCount` digests of `HASH_ALGORITHMS[algorithm].digestBytes` each, back to back. */
  readonly digests: Buffer
}

/** A manifest file that is not one, or not one this version reads: bad input, exit 2. */
export class ManifestFormatError extends InputError {
  readonly code = 'E_MANIFEST_FORMAT'
  constructor(problem: string) {
    super(`not a valid snapmount manifest: ${problem}`, 'make it again with snapmount manifest create')
  }
}

/** Blocks an image of `imageBytes` has at `blockBytes` per block (the last may be short). */
export function blockCountOf(imageBytes: number, blockBytes: number): number {
  return Math.ceil(imageBytes / blockBytes)
}

/** Whether `blockBytes` is a block size a manifest may have. */
export function isManifestBlockSize(blockBytes: number): boolean {
  const { min, max } = MANIFEST_BLOCK_BYTES
  return Number.isSafeInteger(blockBytes) && blockBytes >= min && blockBytes <= max && (blockBytes & (blockBytes - 1)) === 0
}

/** Block `index`'s digest: a view into the manifest, not a copy. */
export function blockDigest(manifest: Manifest, index: number): Buffer {
  if (!Number.isSafeInteger(index) || index < 0 || index >= manifest.blockCount) {
    throw new RangeError(`block ${index} is outside the manifest's ${manifest.blockCount} blocks`)
  }
  const size = HASH_ALGORITHMS[manifest.algorithm].digestBytes
  return manifest.digests.subarray(index * size, (index + 1) * size)
}

/** The manifest's bytes; throws RangeError for a manifest no reader would accept. */
export function encodeManifest(manifest: Manifest): Buffer {
  const { algorithm, blockBytes, imageBytes, blockCount, digests } = manifest
  const { id, digestBytes } = HASH_ALGORITHMS[algorithm]
  if (!isManifestBlockSize(blockBytes)) throw new RangeError(`block size ${blockBytes} is not a power of two from ${MANIFEST_BLOCK_BYTES.min} to ${MANIFEST_BLOCK_BYTES.max}`)
  if (!Number.isSafeInteger(imageBytes) || imageBytes < 0) throw new RangeError(`image size ${imageBytes} is not a whole number of bytes`)
  if (blockCount !== blockCountOf(imageBytes, blockBytes)) throw new RangeError(`${blockCount} blocks do not cover ${imageBytes} bytes at ${blockBytes} per block`)
  if (digests.length !== blockCount * digestBytes) throw new RangeError(`${digests.length} bytes of digests for ${blockCount} blocks of ${digestBytes}`)
  const header = Buffer.alloc(HEADER_BYTES)
  MANIFEST_MAGIC.copy(header, 0)
  header.writeUInt16BE(MANIFEST_VERSION, 8)
  header.writeUInt8(id, 10)
  header.writeUInt8(digestBytes, 11)
  header.writeUInt32BE(blockBytes, 12)
  header.writeBigUInt64BE(BigInt(imageBytes), 16)
  header.writeBigUInt64BE(BigInt(blockCount), 24)
  return Buffer.concat([header, digests])
}

/**
 * Reads a manifest, strictly: every header field is checked, the length must be exactly the
 * header's promise, and anything else is a `ManifestFormatError` naming what is wrong. The
 * digests are a view of `bytes`.
 */
export function decodeManifest(bytes: Buffer): Manifest {
  if (bytes.length < HEADER_BYTES) throw new ManifestFormatError(`${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`)
  if (!bytes.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new ManifestFormatError('it does not start with SNAPMFST')
  const version = bytes.readUInt16BE(8)
  if (version !== MANIFEST_VERSION) throw new ManifestFormatError(`format version ${version}; this snapmount reads version ${MANIFEST_VERSION}`)
  const id = bytes.readUInt8(10)
  const algorithm = (Object.keys(HASH_ALGORITHMS) as HashAlgorithm[]).find((name) => HASH_ALGORITHMS[name].id === id)
  if (!algorithm) throw new ManifestFormatError(`unknown algorithm id ${id}`)
  const { digestBytes } = HASH_ALGORITHMS[algorithm]
  if (bytes.readUInt8(11) !== digestBytes) throw new ManifestFormatError(`digest length ${bytes.readUInt8(11)} for ${algorithm}, which has ${digestBytes}`)
  const blockBytes = bytes.readUInt32BE(12)
  if (!isManifestBlockSize(blockBytes)) {
    throw new ManifestFormatError(`block size ${blockBytes} is not a power of two from ${MANIFEST_BLOCK_BYTES.min} to ${MANIFEST_BLOCK_BYTES.max}`)
  }
  const imageBytes = safeNumber(bytes.readBigUInt64BE(16), 'image size')
  const blockCount = safeNumber(bytes.readBigUInt64BE(24), 'block count')
  if (blockCount !== blockCountOf(imageBytes, blockBytes)) {
    throw new ManifestFormatError(`block count ${blockCount} does not cover ${imageBytes} bytes at ${blockBytes} per block`)
  }
  const expected = HEADER_BYTES + blockCount * digestBytes
  if (bytes.length !== expected) throw new ManifestFormatError(`${bytes.length} bytes where the header promises ${expected}`)
  return { algorithm, blockBytes, imageBytes, blockCount, digests: bytes.subarray(HEADER_BYTES) }
}

/** The SHA-256 of a manifest's bytes in hex: what a snapshot's `manifest.sha256` pins. */
export function manifestSha256(bytes: Buffer): string {
  return nodeCrypto().createHash('sha256').update(bytes).digest('hex')
}

function safeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ManifestFormatError(`${what} ${value} is larger than snapmount handles (2^53 - 1)`)
  return Number(value)
}

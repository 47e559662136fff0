import { crc32c } from '@node-rs/crc32'
import { xxh64 } from '@node-rs/xxhash'

/**
 * How a block read back from the disk cache is proved to be the one written: the seam a verifying
 * layer plugs into. `digest` is stored with the block when it is written; `matches` decides, when
 * it is read back, whether the bytes are right. The default checks XXH64s of the block's pieces
 * against the stored ones; a manifest of per-block digests (issue 20) implements it by comparing
 * with the manifest's digest for `block` instead, so a block is then proved against the publisher's digest,
 * not only against what this cache wrote. `name` is stored with each block, and a block stored
 * under another name is dropped when read, so changing the digest never trusts an old one.
 */
export interface BlockDigest {
  readonly name: string
  digest(data: Buffer, block: number): Buffer
  matches(data: Buffer, block: number, stored: Buffer): boolean
  /**
   * Set when the stored digest is a row of digests, one per `pieceBytes` of the block (the last
   * piece may be shorter): a read of part of a block then reads and checks only the pieces under
   * it (`matchesPieces`), not the whole block.
   */
  readonly pieceBytes?: number
  /** Whether `data`, whole pieces of block `block` from piece `first` on, matches their stored digests. */
  matchesPieces?(data: Buffer, block: number, stored: Buffer, first: number): boolean
}

/**
 * The default digest's piece: a 4 KiB read from the disk cache reads and checks 16 KiB, ~1 µs more
 * than 4 KiB from the page cache, where a whole 128 KiB block costs ~15 µs to read and ~7 µs to
 * check; and a 128 KiB block's row carries 64 bytes of digests, not 256 (the index is read whole
 * at start: ~5 MB for 10 GiB of blocks).
 */
export const DIGEST_PIECE_BYTES = 16 * 1024

/**
 * XXH64 (@node-rs/xxhash) of each 16 KiB piece, the default: measured here at 0.055 CPU-seconds
 * per GiB of 128 KiB blocks against 0.16 for CRC32C (load 14), and every block served from disk
 * is checked, so this is a third of the CPU a re-read from the disk cache spends on its check
 * (and the same on the write of each block). 64 bits: a torn, zeroed, truncated or flipped block passes with a chance
 * of 2^-64, against 2^-32 for a 32-bit CRC. (XXH3 from the same package measured 0.45 s/GiB here:
 * its build has no SIMD path.) Like CRC32C, no defence against a block forged on purpose.
 */
export const XXH64_DIGEST: BlockDigest = {
  name: 'xxh64/16k',
  pieceBytes: DIGEST_PIECE_BYTES,
  digest(data) {
    const pieces = Math.ceil(data.length / DIGEST_PIECE_BYTES)
    const out = Buffer.allocUnsafe(8 * pieces)
    const digests = bigEndianView(out)
    const bytes = plainView(data)
    for (let piece = 0; piece < pieces; piece++) digests.setBigUint64(8 * piece, xxh64(bytes.subarray(piece * DIGEST_PIECE_BYTES, (piece + 1) * DIGEST_PIECE_BYTES)))
    return out
  },
  matches(data, block, stored) {
    return stored.length === 8 * Math.ceil(data.length / DIGEST_PIECE_BYTES) && this.matchesPieces!(data, block, stored, 0)
  },
  matchesPieces(data, _block, stored, first) {
    const pieces = Math.ceil(data.length / DIGEST_PIECE_BYTES)
    if (stored.length < 8 * (first + pieces)) return false
    const digests = bigEndianView(stored)
    const bytes = plainView(data)
    for (let piece = 0; piece < pieces; piece++) {
      if (digests.getBigUint64(8 * (first + piece)) !== xxh64(bytes.subarray(piece * DIGEST_PIECE_BYTES, (piece + 1) * DIGEST_PIECE_BYTES))) return false
    }
    return true
  },
}

/**
 * `data` as a plain Uint8Array, whose pieces are cut with the typed array's own subarray: a
 * Buffer's subarray builds a FastBuffer (~80 ns), and @node-rs/xxhash takes a plain view in about
 * half the time of a Buffer (~180 against ~340 ns a call, measured here), per 16 KiB piece.
 */
function plainView(data: Buffer): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.length)
}

/**
 * `digests` for DataView's get/setBigUint64 (big-endian by default, as stored): unlike Buffer's
 * read/writeBigUInt64BE, they make no intermediate BigInts (16 against 67 ns a write here).
 */
function bigEndianView(digests: Buffer): DataView {
  return new DataView(digests.buffer, digests.byteOffset, digests.length)
}

/**
 * CRC32C (hardware-accelerated through @node-rs/crc32): measured at 0.16 CPU-seconds per GiB here,
 * against 0.62 for SHA-256 from node:crypto (128 KiB blocks, load 6). It catches every torn, zeroed,
 * truncated or bit-flipped block a disk produces; it is no defence against someone forging a block
 * on purpose, which is a manifest digest's job.
 */
export const CRC32C_DIGEST: BlockDigest = {
  name: 'crc32c',
  digest(data) {
    const out = Buffer.allocUnsafe(4)
    out.writeUInt32BE(crc32c(data), 0)
    return out
  },
  matches(data, block, stored) {
    return stored.equals(this.digest(data, block))
  },
}

import { crc32c } from '@node-rs/crc32'
import { pieceDigests, piecesMatch } from 'xxh3-c'

/**
 * How a block read back from the disk cache is proved to be the one written: the seam a verifying
 * layer plugs into. `digest` is stored with the block when it is written; `matches` decides, when
 * it is read back, whether the bytes are right. The default checks XXH3s of the block's pieces
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
 * than 4 KiB from the page cache, where a whole 128 KiB block costs ~15 µs to read and ~3 µs to
 * check (XXH3, below); and a 128 KiB block's row carries 64 bytes of digests, not 256 (the index is
 * read whole at start: ~5 MB for 10 GiB of blocks).
 */
export const DIGEST_PIECE_BYTES = 16 * 1024

/**
 * XXH3-64 of each 16 KiB piece (vendor/xxh3), the default: all pieces of a block in one native call,
 * with the widest SIMD the CPU has, where the block lies (shared memory included). Every block is
 * digested when written and checked when served from disk, on the JS thread: per GiB of 128 KiB
 * blocks, 0.026 CPU-seconds to digest and 0.025 to check blocks in the CPU's cache, 0.078 and 0.064
 * from RAM, against 0.13/0.10 and 0.19/0.20 for the XXH64 of @node-rs/xxhash it replaced (one call
 * per piece from a JS loop; measured here, load 3: vendor/xxh3/SNAPMOUNT.md). 64 bits: a torn,
 * zeroed, truncated or flipped block passes with a chance of 2^-64, against 2^-32 for a 32-bit CRC.
 * Like CRC32C, no defence against a block forged on purpose.
 */
export const XXH3_DIGEST: BlockDigest = {
  name: 'xxh3/16k',
  pieceBytes: DIGEST_PIECE_BYTES,
  digest(data) {
    return pieceDigests(data, DIGEST_PIECE_BYTES)
  },
  matches(data, _block, stored) {
    return stored.length === 8 * Math.ceil(data.length / DIGEST_PIECE_BYTES) && piecesMatch(data, DIGEST_PIECE_BYTES, stored, 0)
  },
  matchesPieces(data, _block, stored, first) {
    return piecesMatch(data, DIGEST_PIECE_BYTES, stored, first)
  },
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

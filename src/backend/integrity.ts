/**
 * The digests a snapshot's blocks are checked against (an integrity manifest, docs/manifest.md),
 * as the layer that checks them offers them to the layers above it (`StorageBackend.integrity`).
 * A layer that keeps blocks where they could be damaged or swapped (a disk cache) checks what it
 * reads back with `check` before serving it; one that fetches elsewhere (a mirror) is checked by
 * the verifying layer below it anyway.
 */
export interface BlockIntegrity {
  /** The block digest algorithm, as the manifest names it (`blake3`, `sha256`). */
  readonly algorithm: string
  /** Bytes per block: blocks start at multiples of it; the image's last block may be shorter. */
  readonly blockBytes: number
  readonly blockCount: number
  /** The digest block `index` must have: a view of the manifest, never to be written to. */
  blockDigest(index: number): Buffer
  /**
   * Hashes the consecutive blocks of `data`, the first being block `firstBlock` (whole blocks;
   * the last may be the image's short last block), off the event loop where that pays, and
   * resolves to the indices of those whose digest differs from the manifest's: empty when all
   * match. It counts nothing and logs nothing: what a mismatch means is the caller's to say.
   */
  check(firstBlock: number, data: Uint8Array): Promise<number[]>
}

/** What a verifying layer reports (`SnapshotInspection.integrity`, the metrics). */
export interface IntegrityStats {
  /** Blocks checked and passed on, each matching its digest (after a fetch again where one did not). */
  verifiedBlocks: number
  /** Fetches of a block whose digest did not match, each retry counted. */
  mismatches: number
  /** Blocks given up on after every attempt mismatched: the reads that needed them failed (EIO). */
  failedBlocks: number
}

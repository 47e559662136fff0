/** The 32-byte BLAKE3 digest of `data`, hashed where it is (a view of a SharedArrayBuffer too). */
export function digest(data: Uint8Array): Buffer
/**
 * The 32-byte BLAKE3 digests of the consecutive `blockBytes`-byte blocks of `data` (the last may be
 * shorter), back to back: `ceil(data.length / blockBytes)` digests, none for empty `data`.
 */
export function blockDigests(data: Uint8Array, blockBytes: number): Buffer

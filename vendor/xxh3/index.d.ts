/**
 * The XXH3-64 digests (seed 0) of the consecutive `pieceBytes`-byte pieces of `data` (the last may
 * be shorter), each 8 bytes big-endian, back to back: `ceil(data.length / pieceBytes)` digests,
 * none for empty `data`. Hashed where it is (a view of a SharedArrayBuffer too), in one call.
 */
export function pieceDigests(data: Uint8Array, pieceBytes: number): Buffer
/**
 * Whether the digests `pieceDigests(data, pieceBytes)` would give equal those in `stored` from
 * digest `firstPiece` on; false when `stored` holds fewer. Allocates nothing.
 */
export function piecesMatch(data: Uint8Array, pieceBytes: number, stored: Uint8Array, firstPiece: number): boolean

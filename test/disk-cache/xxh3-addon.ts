import t from 'tap'
import { xxh3 as oracle } from '@node-rs/xxhash'
import { pieceDigests, piecesMatch } from 'xxh3-c'
import { ramp, seededBytes, seededRandom } from '../fixtures/test-data.js'

// vendor/xxh3 (SNAPMOUNT.md): upstream xxHash's XXH3-64 behind a binding of two calls. The known
// answers are XXH3-64 (seed 0) of the ramp (byte i is i % 251) of each length, from
// @node-rs/xxhash (the Rust xxhash-rust crate: an implementation of its own), one per branch of
// XXH3's length cases (0, 1-3, 4-8, 9-16, 17-128, 129-240, longer) and around the 16 KiB piece.
const VECTORS: Array<[number, string]> = [
  [1, 'c44bdff4074eecdb'],
  [3, '5f4299fc161c9cbb'],
  [16, '8355e3a6f61770db'],
  [17, '9ef341a99de37328'],
  [128, '85c6174c7ff4c46b'],
  [129, 'ec7642b431ba3e5a'],
  [240, '375a384d957fe865'],
  [241, '02e8cd95421c6d02'],
  [16383, '50c466a61f5aec47'],
  [16384, '168f7fb4781d0831'],
  [16385, 'fea38d9173737a4b'],
  [131072 - 100, 'c9470625bf0a97df'],
  [131072, 'cdcacb62ee881022'],
]
const PIECE = 16 * 1024
const WASM_PAGE = 64 * 1024

/** A view of `length` bytes at `offset` in a shared WebAssembly.Memory, as the daemon's block buffers are. */
function sharedView(offset: number, length: number): Buffer {
  const memory = new WebAssembly.Memory({ initial: Math.ceil((offset + length) / WASM_PAGE) || 1, maximum: 64, shared: true })
  return Buffer.from(memory.buffer, offset, length)
}

/** The oracle's digests of `data`'s pieces, 8 bytes big-endian each. */
function oracleDigests(data: Uint8Array, pieceBytes: number): Buffer {
  const pieces = Math.ceil(data.length / pieceBytes)
  const out = Buffer.alloc(8 * pieces)
  for (let piece = 0; piece < pieces; piece++) out.writeBigUInt64BE(oracle.xxh64(data.subarray(piece * pieceBytes, (piece + 1) * pieceBytes)), 8 * piece)
  return out
}

t.test('the oracle is XXH3-64: it gives the published digest of no bytes', async (t) => {
  t.equal(oracle.xxh64(new Uint8Array(0)), 0x2d06800538d394c2n)
})

t.test('one piece: its digest is the known answer, from a Buffer and from a view of shared memory at an odd offset', async (t) => {
  for (const [length, hex] of VECTORS) {
    t.equal(pieceDigests(ramp(0, length), PIECE * 8).toString('hex'), hex, `${length} bytes`)
    const view = sharedView(13, length)
    ramp(0, length).copy(view)
    t.equal(pieceDigests(view, PIECE * 8).toString('hex'), hex, `${length} bytes in a shared WebAssembly.Memory`)
  }
})

t.test('one digest per piece, big-endian, the last piece short, none for no bytes', async (t) => {
  const data = ramp(0, 131072 - 100)
  const digests = pieceDigests(data, PIECE)
  t.equal(digests.length, 8 * 8)
  t.same(digests, oracleDigests(data, PIECE))
  t.equal(digests.subarray(0, 8).toString('hex'), VECTORS.find(([length]) => length === PIECE)![1], 'the first piece: the ramp of 16 KiB')
  t.equal(pieceDigests(data.subarray(PIECE * 7), PIECE).toString('hex'), digests.subarray(56).toString('hex'), 'the short last piece')
  t.equal(pieceDigests(new Uint8Array(0), PIECE).length, 0)
  t.equal(pieceDigests(ramp(0, 3), 1).toString('hex'), oracleDigests(ramp(0, 3), 1).toString('hex'), 'pieces of one byte')
})

t.test('seeded lengths, piece sizes and offsets in shared memory agree with the oracle', async (t) => {
  const next = seededRandom(71)
  const shared = sharedView(0, 2 * WASM_PAGE * 5)
  for (let round = 0; round < 40; round++) {
    const offset = Math.floor(next() * 4096)
    const length = Math.floor(next() * 5 * WASM_PAGE)
    const pieceBytes = 1 + Math.floor(next() * 40000)
    const data = shared.subarray(offset, offset + length)
    seededBytes(round, length).copy(data)
    const digests = pieceDigests(data, pieceBytes)
    if (!digests.equals(oracleDigests(data, pieceBytes))) t.fail(`round ${round}: ${length} bytes at ${offset}, pieces of ${pieceBytes}`)
    if (!piecesMatch(data, pieceBytes, digests, 0)) t.fail(`round ${round}: its own digests do not match`)
  }
  t.pass('40 rounds')
})

t.test('piecesMatch: its own digests, from a given piece on; not a flipped bit, a zeroed piece or too few digests', async (t) => {
  const block = sharedView(4096, 131072 - 100)
  seededBytes(5, block.length).copy(block)
  const stored = sharedView(8, 64)
  pieceDigests(block, PIECE).copy(stored)
  t.ok(piecesMatch(block, PIECE, stored, 0), 'the whole block')
  const middle = block.subarray(2 * PIECE, 5 * PIECE)
  t.ok(piecesMatch(middle, PIECE, stored, 2), 'pieces 2 to 4, from digest 2')
  t.notOk(piecesMatch(middle, PIECE, stored, 1), 'from digest 1')
  t.notOk(piecesMatch(middle, PIECE, stored, 3), 'from digest 3')
  t.ok(piecesMatch(block.subarray(7 * PIECE), PIECE, stored, 7), 'the short last piece')
  t.notOk(piecesMatch(block.subarray(7 * PIECE), PIECE, stored, 8), 'past the last digest')
  t.notOk(piecesMatch(block, PIECE, stored.subarray(0, 63), 0), 'a digest short by a byte')
  t.notOk(piecesMatch(middle, PIECE, stored.subarray(0, 32), 2), 'digests 0 to 3 only')
  t.ok(piecesMatch(new Uint8Array(0), PIECE, stored, 8), 'no bytes: no pieces to check')

  const flipped = Buffer.from(block)
  flipped[3 * PIECE + 1234]! ^= 0x10
  t.notOk(piecesMatch(flipped, PIECE, stored, 0), 'one bit flipped')
  t.notOk(piecesMatch(flipped.subarray(3 * PIECE, 4 * PIECE), PIECE, stored, 3), 'one bit flipped, that piece alone')
  const zeroed = Buffer.from(block)
  zeroed.fill(0, 6 * PIECE, 7 * PIECE)
  t.notOk(piecesMatch(zeroed, PIECE, stored, 0), 'a piece zeroed')
  t.notOk(piecesMatch(Buffer.alloc(block.length), PIECE, stored, 0), 'all zeroed')
  t.ok(stored.equals(pieceDigests(block, PIECE)), 'stored untouched')
})

t.test('bad arguments are TypeErrors that say which', async (t) => {
  const data = ramp(0, 100)
  const stored = pieceDigests(data, 10)
  const notBytes: unknown[] = ['abc', new Uint16Array(4), new DataView(new ArrayBuffer(4)), new ArrayBuffer(4), undefined]
  for (const value of notBytes) {
    t.throws(() => pieceDigests(value as Uint8Array, 10), { name: 'TypeError', message: 'xxh3.pieceDigests: data must be a Uint8Array' })
    t.throws(() => piecesMatch(value as Uint8Array, 10, stored, 0), { name: 'TypeError', message: 'xxh3.piecesMatch: data must be a Uint8Array' })
    t.throws(() => piecesMatch(data, 10, value as Uint8Array, 0), { name: 'TypeError', message: 'xxh3.piecesMatch: stored must be a Uint8Array' })
  }
  for (const value of [0, -1, 1.5, NaN, Infinity, 2 ** 60, '16', 16n, undefined]) {
    t.throws(() => pieceDigests(data, value as number), { name: 'TypeError', message: 'xxh3.pieceDigests: pieceBytes must be a positive integer' }, `${typeof value} ${String(value)}`)
    t.throws(() => piecesMatch(data, value as number, stored, 0), { name: 'TypeError', message: 'xxh3.piecesMatch: pieceBytes must be a positive integer' }, `${typeof value} ${String(value)}`)
  }
  for (const value of [-1, 0.5, NaN, '0', undefined]) {
    t.throws(() => piecesMatch(data, 10, stored, value as number), { name: 'TypeError', message: 'xxh3.piecesMatch: firstPiece must be a non-negative integer' }, `${typeof value} ${String(value)}`)
  }
  t.throws(() => (pieceDigests as (...args: unknown[]) => Buffer)(), { name: 'TypeError' })
})

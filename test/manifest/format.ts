import t from 'tap'
import { createHash } from 'node:crypto'
import {
  HEADER_BYTES,
  MANIFEST_BLOCK_BYTES,
  ManifestFormatError,
  blockCountOf,
  blockDigest,
  decodeManifest,
  encodeManifest,
  isManifestBlockSize,
  manifestSha256,
  type Manifest,
} from '../../src/manifest/format.js'
import { blockDigestsOf, digestOf } from '../../src/manifest/hash.js'
import { ramp } from '../fixtures/test-data.js'

function manifestOf(data: Buffer, blockBytes: number, algorithm: Manifest['algorithm'] = 'sha256'): Manifest {
  return { algorithm, blockBytes, imageBytes: data.length, blockCount: blockCountOf(data.length, blockBytes), digests: blockDigestsOf(algorithm, data, blockBytes) }
}

t.test('a manifest round-trips through its bytes, header first, then a digest per block', async (t) => {
  const data = ramp(0, 10 * 4096 + 100)
  for (const algorithm of ['sha256', 'blake3'] as const) {
    const manifest = manifestOf(data, 4096, algorithm)
    const bytes = encodeManifest(manifest)
    t.equal(bytes.length, HEADER_BYTES + 11 * 32)
    t.equal(bytes.subarray(0, 8).toString('latin1'), 'SNAPMFST')
    t.equal(bytes.readUInt16BE(8), 1, 'version 1')
    t.equal(bytes.readUInt8(10), algorithm === 'sha256' ? 1 : 2)
    t.equal(bytes.readUInt32BE(12), 4096)
    t.equal(bytes.readBigUInt64BE(16), BigInt(data.length))
    t.equal(bytes.readBigUInt64BE(24), 11n)
    const decoded = decodeManifest(bytes)
    t.same({ ...decoded, digests: undefined }, { ...manifest, digests: undefined })
    t.ok(decoded.digests.equals(manifest.digests))
    // The last block is hashed over its own 100 bytes, not padded.
    t.ok(blockDigest(decoded, 10).equals(digestOf(algorithm, data.subarray(40960))))
    t.equal(manifestSha256(bytes), createHash('sha256').update(bytes).digest('hex'))
  }
  t.ok(digestOf('sha256', data).equals(createHash('sha256').update(data).digest()), 'sha256 is the standard one')
  // SHA-256's digest of the empty input, as sha256sum prints it.
  t.equal(digestOf('sha256', Buffer.alloc(0)).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  // BLAKE3's published vector for the empty input, as b3sum prints it.
  t.equal(digestOf('blake3', Buffer.alloc(0)).toString('hex'), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
  t.ok(blockDigestsOf('blake3', data, 4096).subarray(32, 64).equals(digestOf('blake3', data.subarray(4096, 8192))), 'BLAKE3 block digests are the plain digests of the blocks')
})

t.test('an empty image has no blocks', async (t) => {
  const manifest = manifestOf(Buffer.alloc(0), 128 * 1024)
  t.equal(manifest.blockCount, 0)
  t.same(decodeManifest(encodeManifest(manifest)).blockCount, 0)
})

t.test('blockDigest refuses an index outside the manifest', async (t) => {
  const manifest = manifestOf(ramp(0, 8192), 4096)
  t.throws(() => blockDigest(manifest, 2), RangeError)
  t.throws(() => blockDigest(manifest, -1), RangeError)
  t.throws(() => blockDigest(manifest, 0.5), RangeError)
})

t.test('block sizes are powers of two from 4 KiB to 4 MiB', async (t) => {
  t.ok(isManifestBlockSize(MANIFEST_BLOCK_BYTES.default))
  t.ok(isManifestBlockSize(4096) && isManifestBlockSize(4 << 20))
  t.notOk(isManifestBlockSize(2048) || isManifestBlockSize(8 << 20) || isManifestBlockSize(3 * 4096) || isManifestBlockSize(4096.5))
})

t.test('encoding refuses what no reader would accept', async (t) => {
  const good = manifestOf(ramp(0, 8192), 4096)
  t.throws(() => encodeManifest({ ...good, blockBytes: 3000 }), /block size/)
  t.throws(() => encodeManifest({ ...good, imageBytes: -1 }), /image size/)
  t.throws(() => encodeManifest({ ...good, blockCount: 3 }), /do not cover/)
  t.throws(() => encodeManifest({ ...good, digests: Buffer.alloc(10) }), /bytes of digests/)
})

t.test('decoding is strict: each bad field is named', async (t) => {
  const bytes = encodeManifest(manifestOf(ramp(0, 3 * 4096), 4096))
  const with_ = (edit: (copy: Buffer) => void) => {
    const copy = Buffer.from(bytes)
    edit(copy)
    return copy
  }
  const refused = (copy: Buffer, pattern: RegExp) => {
    t.throws(() => decodeManifest(copy), pattern)
    t.throws(() => decodeManifest(copy), ManifestFormatError)
  }
  refused(bytes.subarray(0, 20), /shorter than the 32-byte header/)
  refused(with_((b) => b.write('X', 0)), /does not start with SNAPMFST/)
  refused(with_((b) => b.writeUInt16BE(2, 8)), /format version 2/)
  refused(with_((b) => b.writeUInt8(9, 10)), /unknown algorithm id 9/)
  refused(with_((b) => b.writeUInt8(20, 11)), /digest length 20/)
  refused(with_((b) => b.writeUInt32BE(1000, 12)), /block size 1000/)
  refused(with_((b) => b.writeBigUInt64BE(2n ** 60n, 16)), /image size .* larger than snapmount handles/)
  refused(with_((b) => b.writeBigUInt64BE(4n, 24)), /block count 4 does not cover/)
  refused(Buffer.concat([bytes, Buffer.alloc(1)]), /where the header promises/)
  refused(bytes.subarray(0, bytes.length - 1), /where the header promises/)
  t.equal(new ManifestFormatError('x').code, 'E_MANIFEST_FORMAT')
  t.match(new ManifestFormatError('x').fix, /manifest create/)
})

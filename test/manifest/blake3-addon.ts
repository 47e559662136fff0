import t from 'tap'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import * as blake3 from 'blake3-c'

// vendor/blake3 (SNAPMOUNT.md): the official C implementation behind a binding of two calls. The
// digests are BLAKE3's published test vectors (upstream test_vectors/test_vectors.json: the input
// is bytes 0, 1, ... 250, 0, 1, ... of the given length; its first 32 bytes of output).
const VECTORS: Array<[number, string]> = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [8193, 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b'],
  [102400, 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'],
]

function ramp(length: number, into: Uint8Array = new Uint8Array(length)): Uint8Array {
  for (let index = 0; index < length; index++) into[index] = index % 251
  return into
}

t.test("digest gives BLAKE3's published vectors, from a Buffer and from a view of shared memory", async (t) => {
  const shared = new Uint8Array(new SharedArrayBuffer(102400 + 13))
  for (const [length, hex] of VECTORS) {
    t.equal(blake3.digest(ramp(length)).toString('hex'), hex, `${length} bytes`)
    const view = ramp(length, shared.subarray(13, 13 + length))
    t.equal(blake3.digest(view).toString('hex'), hex, `${length} bytes where they lie in a SharedArrayBuffer, at offset 13`)
  }
})

t.test('blockDigests gives one digest per block, the last block short, none for no bytes', async (t) => {
  const data = ramp(102400)
  const digests = blake3.blockDigests(data, 8192)
  t.equal(digests.length, 13 * 32)
  for (let index = 0; index < 13; index++) {
    t.ok(digests.subarray(index * 32, (index + 1) * 32).equals(blake3.digest(data.subarray(index * 8192, (index + 1) * 8192))), `block ${index}`)
  }
  t.equal(blake3.blockDigests(data, 102400).toString('hex'), VECTORS[6]![1], 'one block: the digest of the whole')
  t.equal(blake3.blockDigests(new Uint8Array(0), 4096).length, 0)
})

t.test('the calls refuse what is not a Uint8Array and a block size below one byte', async (t) => {
  t.throws(() => blake3.digest('abc' as unknown as Uint8Array), { name: 'TypeError' })
  t.throws(() => blake3.digest(new Uint16Array(4) as unknown as Uint8Array), { name: 'TypeError' })
  t.throws(() => blake3.blockDigests(new Uint8Array(4), 0), { name: 'RangeError' })
  t.throws(() => blake3.blockDigests(new Uint8Array(4), 'x' as unknown as number), { name: 'RangeError' })
})

t.test('the addon loads in a worker thread and hashes a SharedArrayBuffer the main thread filled, in place', async (t) => {
  const shared = new SharedArrayBuffer(102400 + 7)
  ramp(102400, new Uint8Array(shared, 7, 102400))
  const path = createRequire(import.meta.url).resolve('blake3-c')
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     parentPort.postMessage(require(workerData.path).digest(new Uint8Array(workerData.shared, 7, 102400)).toString('hex'))`,
    { eval: true, workerData: { path, shared } },
  )
  const hex = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject))
  await worker.terminate()
  t.equal(hex, VECTORS[6]![1])
})

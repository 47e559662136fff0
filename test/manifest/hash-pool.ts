import t from 'tap'
import { HashPool, INLINE_MAX_BYTES } from '../../src/manifest/hash-pool.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { seededBytes } from '../fixtures/test-data.js'

t.test('the pool gives the digests hashing on the calling thread gives, for every job size', async (t) => {
  const pool = new HashPool(2)
  t.teardown(() => pool.close())
  for (const algorithm of ['sha256', 'blake3'] as const) {
    // Inline (small), one worker job, and split over several jobs (over 4 MiB), short last block.
    for (const length of [4096, INLINE_MAX_BYTES[algorithm] + 1, 3 * 1024 * 1024, 9 * 1024 * 1024 + 77]) {
      const data = seededBytes(length, length)
      const digests = await pool.blockDigests(algorithm, data, 128 * 1024)
      t.ok(digests.equals(blockDigestsOf(algorithm, data, 128 * 1024)), `${algorithm} ${length}`)
    }
  }
  // Bytes in shared memory (the block cache's slabs) are hashed where they are, split over both workers.
  const shared = Buffer.from(new SharedArrayBuffer(5 * 1024 * 1024))
  seededBytes(9, shared.length).copy(shared)
  const view = shared.subarray(4096, 4096 + 3 * 1024 * 1024 + 5)
  for (const algorithm of ['sha256', 'blake3'] as const) {
    t.ok((await pool.blockDigests(algorithm, view, 128 * 1024)).equals(blockDigestsOf(algorithm, view, 128 * 1024)), `${algorithm}: a view of a SharedArrayBuffer`)
  }
  // Jobs waiting for a free worker are all answered.
  const data = seededBytes(1, 2 * 1024 * 1024)
  const results = await Promise.all(Array.from({ length: 6 }, () => pool.blockDigests('sha256', data, 64 * 1024)))
  for (const digests of results) t.ok(digests.equals(blockDigestsOf('sha256', data, 64 * 1024)))
})

t.test('a pool needs a worker; a closed pool refuses work and fails what waited', async (t) => {
  t.throws(() => new HashPool(0), RangeError)
  const pool = new HashPool(1)
  const data = seededBytes(2, 2 * 1024 * 1024)
  const running = pool.blockDigests('sha256', data, 4096)
  const queued = pool.blockDigests('sha256', data, 4096)
  // Both fail during close(), before they are awaited below.
  running.catch(() => {})
  queued.catch(() => {})
  await pool.close()
  await t.rejects(running, /closed/)
  await t.rejects(queued, /closed/)
  await t.rejects(pool.blockDigests('sha256', data, 4096), /closed/)
})

t.test('a worker that died is replaced on the next job', async (t) => {
  const pool = new HashPool(1)
  t.teardown(() => pool.close())
  const data = seededBytes(3, 2 * 1024 * 1024)
  await pool.blockDigests('sha256', data, 4096)
  const slot = (pool as unknown as { slots: Array<{ worker: { terminate(): Promise<number> } }> }).slots[0]!
  await slot.worker.terminate()
  await new Promise((resolve) => setImmediate(resolve))
  t.ok((await pool.blockDigests('sha256', data, 4096)).equals(blockDigestsOf('sha256', data, 4096)))
})

t.test("a worker's own error fails its job with that error", async (t) => {
  const pool = new HashPool(1)
  t.teardown(() => pool.close())
  // No such algorithm: the worker throws, and the pool hands its error to the job.
  await t.rejects(pool.blockDigests('md5' as never, seededBytes(4, 1024 * 1024), 4096), TypeError)
})

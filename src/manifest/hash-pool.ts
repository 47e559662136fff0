import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Worker } from 'node:worker_threads'
import { nodeWorkerThreads } from '../lazy-builtins.js'
import { HASH_ALGORITHMS, MANIFEST_BLOCK_BYTES, type HashAlgorithm } from './format.js'
import { blockDigestsOf } from './hash.js'

/**
 * One job: `length` bytes at `offset` in `shared`, in blocks of `blockBytes`. `shared` is the
 * caller's own memory when its bytes are in shared memory (the block cache's slabs: nothing
 * copied), else the worker's slot buffer, where the pool copied them (offset 0).
 */
export interface HashJob {
  algorithm: HashAlgorithm
  length: number
  blockBytes: number
  shared: SharedArrayBuffer
  offset: number
}

/**
 * Each worker's shared buffer, the most one job hashes: the largest ranged request snapmount
 * makes (4 MiB, a whole number of blocks of any manifest block size). Larger inputs are split.
 */
const JOB_BYTES = MANIFEST_BLOCK_BYTES.max

/**
 * Jobs up to this size are hashed on the calling thread. Sending one to a worker costs the event
 * loop ~15 µs (measured on this 2-vCPU machine at a load of 8) and the read a thread's wake-up;
 * hashing in-thread costs SHA-256 11 µs for 16 KiB (75 µs for 128 KiB, ~2.4 ms for 4 MiB) and
 * BLAKE3 ~22 µs for 128 KiB (0.18 CPU-s/GiB, ~0.7 ms for 4 MiB). In the bench (docs/manifest.md,
 * seven runs at loads 4-25) BLAKE3 in-thread at every read size kept a sequential read at a median
 * 1.56x (0 ms) and 1.05x (10 ms) of the same read without a manifest, the pool 0.79x and 0.90x,
 * with more CPU per GiB and +0.2 ms of 4K p50 at 0 ms: on two shared vCPUs the handoffs cost more
 * than the hashing. So BLAKE3 is hashed in-thread up to 4 MiB, then the largest read; SHA-256,
 * four times the work per byte, goes to the pool above 16 KiB. Readahead has since grown to 8 MiB
 * requests (readahead.ts), which go to the pool: measured again (session 10, cpu-probe --manifest,
 * HTTP 0 ms, 1 GiB), the pool gave 984-1,055 MB/s at 1.17-1.21 CPU-s/GiB, in-thread up to 8 MiB
 * 912-969 MB/s at 1.10-1.16: the JS thread is then the limit. So the line stays at 4 MiB.
 */
export const INLINE_MAX_BYTES: Readonly<Record<HashAlgorithm, number>> = { sha256: 16 * 1024, blake3: MANIFEST_BLOCK_BYTES.max }

interface Queued extends Omit<HashJob, 'shared' | 'offset'> {
  data: Uint8Array
  resolve(digests: Buffer): void
  reject(err: Error): void
}

interface Slot {
  worker: Worker
  /** Where bytes that are not in shared memory are copied for the worker. */
  bytes: Uint8Array<SharedArrayBuffer>
  job: Queued | undefined
}

/**
 * A small pool of worker threads that hash blocks off the event loop (small jobs excepted, see
 * INLINE_MAX_BYTES). Bytes that are a view of a SharedArrayBuffer (the block cache's slabs,
 * buffer-arena.ts) are hashed where they are: the worker is sent the buffer, the offset and the
 * length. Others are copied into the chosen worker's own SharedArrayBuffer (one memcpy: they may
 * be a view of memory that cannot be transferred). The worker transfers the digests back. An
 * input of several blocks is split into one job per worker (whole blocks each), so the threads
 * hash one large fetch together and its digests are ready in half the time on two. Jobs wait in one queue for the first free worker. Workers are started on first
 * use and are unref'd while idle, so an idle pool never keeps the process alive; a worker that
 * dies fails its job and is replaced on the next one.
 */
export class HashPool {
  private readonly slots: Array<Slot | undefined>
  private readonly queue: Queued[] = []
  private closed = false

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`a hash pool needs at least one worker, not ${size}`)
    this.slots = new Array<Slot | undefined>(size).fill(undefined)
  }

  /**
   * The digests of the consecutive blocks of `data` (`blockBytes` each, the last may be short),
   * back to back, hashed on the pool's threads. `data` may be reused once this resolves.
   */
  async blockDigests(algorithm: HashAlgorithm, data: Uint8Array, blockBytes: number): Promise<Buffer> {
    if (this.closed) throw new Error('the hash pool is closed')
    if (data.length <= INLINE_MAX_BYTES[algorithm]) return blockDigestsOf(algorithm, data, blockBytes)
    const blocks = Math.ceil(data.length / blockBytes)
    const perJob = blockBytes * Math.max(1, Math.min(Math.ceil(blocks / this.size), Math.floor(JOB_BYTES / blockBytes)))
    if (perJob >= data.length) return this.submit(algorithm, data, blockBytes)
    const parts: Array<Promise<Buffer>> = []
    for (let start = 0; start < data.length; start += perJob) parts.push(this.submit(algorithm, data.subarray(start, start + perJob), blockBytes))
    return Buffer.concat(await Promise.all(parts))
  }

  /** Stops the workers; jobs still queued or running fail. */
  async close(): Promise<void> {
    this.closed = true
    const failure = new Error('the hash pool is closed')
    for (const job of this.queue.splice(0)) job.reject(failure)
    for (const slot of this.slots) {
      slot?.job?.reject(failure)
      if (slot) slot.job = undefined
    }
    await Promise.all(this.slots.map((slot) => slot?.worker.terminate()))
  }

  private submit(algorithm: HashAlgorithm, data: Uint8Array, blockBytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.queue.push({ algorithm, length: data.length, blockBytes, data, resolve, reject })
      this.dispatch()
    })
  }

  private dispatch(): void {
    for (let index = 0; index < this.slots.length && this.queue.length > 0; index++) {
      const slot = this.slots[index] ?? this.start(index)
      if (slot.job) continue
      const job = this.queue.shift()!
      slot.job = job
      const { algorithm, length, blockBytes, data } = job
      const inPlace = data.buffer instanceof SharedArrayBuffer
      if (!inPlace) slot.bytes.set(data)
      slot.worker.ref()
      slot.worker.postMessage({
        algorithm,
        length,
        blockBytes,
        shared: inPlace ? (data.buffer as SharedArrayBuffer) : slot.bytes.buffer,
        offset: inPlace ? data.byteOffset : 0,
      } satisfies HashJob)
    }
  }

  private start(index: number): Slot {
    const worker = new (nodeWorkerThreads().Worker)(WORKER_URL)
    const slot: Slot = { worker, bytes: new Uint8Array(new SharedArrayBuffer(JOB_BYTES)), job: undefined }
    worker.unref()
    worker.on('message', (digests: Uint8Array) => {
      const job = slot.job!
      slot.job = undefined
      worker.unref()
      const expected = Math.ceil(job.length / job.blockBytes) * HASH_ALGORITHMS[job.algorithm].digestBytes
      if (digests.length === expected) job.resolve(Buffer.from(digests.buffer, digests.byteOffset, digests.length))
      /* c8 ignore next 2 */ // The worker answers each job with exactly its digests; a defence against a bug.
      else job.reject(new Error(`a hash worker answered ${digests.length} bytes of digests, not ${expected}`))
      this.dispatch()
    })
    // A worker's uncaught error (its addon failed to load) is followed by its exit: fail there.
    let failure: Error | undefined
    worker.on('error', (err) => (failure = err))
    worker.on('exit', (code) => {
      this.slots[index] = undefined
      // Only a worker killed from outside exits without an error of its own.
      /* c8 ignore next */
      slot.job?.reject(failure ?? new Error(`a hash worker exited (code ${code})`))
      if (!this.closed) this.dispatch()
    })
    this.slots[index] = slot
    return slot
  }
}

/**
 * The worker's module beside this one: compiled JavaScript in dist/, and the TypeScript source
 * when the tests run src/ directly (the worker inherits their loader through execArgv).
 */
const WORKER_URL = new URL(`./hash-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url)

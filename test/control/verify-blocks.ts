import t from 'tap'
import { join } from 'node:path'
import { serveControl } from '../../src/control/server.js'
import { controlRequest } from '../../src/control/client.js'
import { controlHandler } from '../../src/control/handlers.js'
import type { BlocksVerifyResult } from '../../src/control/protocol.js'
import type { ReadOptions, StorageBackend } from '../../src/backend/storage-backend.js'
import { blockCountOf } from '../../src/manifest/format.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { VerifyingBackend } from '../../src/manifest/verifying-backend.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

const quiet = { info: () => {}, warn: () => {}, error: () => {} }
const BLOCK = 64 * 1024
const SIZE = 40 * BLOCK + 999
const BYTES = seededBytes(31, SIZE)
const manifest = { algorithm: 'sha256' as const, blockBytes: BLOCK, imageBytes: SIZE, blockCount: blockCountOf(SIZE, BLOCK), digests: blockDigestsOf('sha256', BYTES, BLOCK) }

/** A source that damages `block` in every read of it: the verifying layer refuses that block. */
function damaging(block: number): StorageBackend {
  const memory = new MemoryBackend(BYTES)
  return {
    length: SIZE,
    mtime: memory.mtime,
    async readExact(offset: number, length: number, options?: ReadOptions) {
      const bytes = Buffer.from(await memory.readExact(offset, length))
      const at = block * BLOCK - offset
      if (at >= 0 && at < length) bytes[at]! ^= 1
      return options?.into ? (bytes.copy(options.into), options.into) : bytes
    },
    close: () => memory.close(),
  }
}

/** A layer above the verifying one whose memory went bad: block `block` comes back damaged, and no read fails. */
function rotten(inner: StorageBackend, block: number, fail?: Error): StorageBackend {
  return {
    length: inner.length,
    mtime: inner.mtime,
    integrity: inner.integrity,
    async readExact(offset, length, options) {
      if (fail) throw fail
      const bytes = Buffer.from(await inner.readExact(offset, length, options))
      const at = block * BLOCK + 3 - offset
      if (at >= 0 && at < length) bytes[at]! ^= 2
      return bytes
    },
    close: () => inner.close(),
  }
}

async function serve(t: Parameters<typeof tempDir>[0], snapshots: Array<{ name: string; backend: StorageBackend }>) {
  const path = join(await tempDir(t), 'ctl.sock')
  const server = await serveControl(path, controlHandler({ snapshots: () => snapshots, mountpoint: '/mnt', startedAt: new Date(), metricsUrl: null }), quiet)
  t.teardown(() => server.close())
  return path
}

t.test('verify without a digest checks each block against the manifest and names the runs that differ', async (t) => {
  const verifying = new VerifyingBackend(damaging(17), manifest, { name: 'disk', logger: quiet })
  const path = await serve(t, [
    { name: 'disk', backend: rotten(verifying, 3) },
    { name: 'good', backend: new VerifyingBackend(new MemoryBackend(BYTES), manifest, { name: 'good', logger: quiet }) },
    { name: 'plain', backend: new MemoryBackend(BYTES) },
  ])
  const progress: number[] = []
  const result = (await controlRequest(path, { op: 'verify', name: 'disk' }, (done) => progress.push(done))) as BlocksVerifyResult
  t.match(result, { name: 'disk', bytes: SIZE, blocks: 41, blockBytes: BLOCK, match: false })
  t.same(result.badRanges, [
    { firstBlock: 3, lastBlock: 3, offset: 3 * BLOCK, end: 4 * BLOCK },
    { firstBlock: 17, lastBlock: 17, offset: 17 * BLOCK, end: 18 * BLOCK },
  ], 'a block damaged above the verifying layer, and one it refused')
  t.equal(progress.at(-1), SIZE)
  const good = (await controlRequest(path, { op: 'verify', name: 'good' })) as BlocksVerifyResult
  t.match(good, { match: true, badRanges: [] })
  await t.rejects(controlRequest(path, { op: 'verify', name: 'plain' }), { code: 'E_BAD_REQUEST', message: /plain has no manifest/, fix: /--sha256/ })
})

t.test('a failure other than a refused block fails the whole verify', async (t) => {
  const verifying = new VerifyingBackend(new MemoryBackend(BYTES), manifest, { name: 'disk', logger: quiet })
  const broken = Object.assign(new Error('disk on fire'), { code: 'E_SOURCE_READ' })
  const refusedThenBroken: StorageBackend = {
    ...rotten(verifying, 0),
    readExact: async (_offset, length) => {
      throw length > BLOCK ? Object.assign(new Error('refused'), { code: 'E_BLOCK_DIGEST' }) : broken
    },
  }
  const path = await serve(t, [
    { name: 'broken', backend: rotten(verifying, 0, broken) },
    { name: 'mixed', backend: refusedThenBroken },
  ])
  await t.rejects(controlRequest(path, { op: 'verify', name: 'broken' }), { message: /disk on fire/ })
  await t.rejects(controlRequest(path, { op: 'verify', name: 'mixed' }), { message: /disk on fire/ })
})

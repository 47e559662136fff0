import t from 'tap'
import { readFileSync } from 'node:fs'
import { stat, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskCache, identityKey } from '../../src/disk-cache/disk-cache.js'
import { DiskCachedBackend } from '../../src/disk-cache/disk-cached-backend.js'
import { DATA_FILE } from '../../src/disk-cache/slot-file.js'
import type { SourceIdentity, StorageBackend } from '../../src/backend/storage-backend.js'
import { BufferArena } from '../../src/buffers/buffer-arena.js'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import { RecordingBackend } from '../fixtures/recording-backend.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

// The disk cache's write path: runs of blocks, written together, into consecutive slots.
const BLOCK = 16 * 1024
const IDENTITY: SourceIdentity = { source: 'http://127.0.0.1/image.raw', size: 0, validator: '"etag-1"' }
const logger = { info: () => {}, warn: () => {}, error: () => {} }

t.test('a fetched run lands in consecutive slots; the image\'s short last block comes back whole after a restart', async (t) => {
  const dir = await tempDir(t)
  // 40 blocks and 1,000 bytes: the last block is short.
  const bytes = seededBytes(7, 40 * BLOCK + 1000)
  const identity = { ...IDENTITY, size: bytes.length }
  const first = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  const source = new RecordingBackend(bytes)
  t.ok((await new DiskCachedBackend(source, first, identity).readExact(0, bytes.length)).equals(bytes))
  await first.flush()
  t.equal(first.stats().writes, 41, 'every block written')
  const key = identityKey(identity, BLOCK)
  const offsets = Array.from({ length: 41 }, (_, block) => first.placeOf(key, block)!.offset)
  t.same(offsets, Array.from({ length: 41 }, (_, block) => block * BLOCK), 'block n in slot n: one run')
  t.equal(first.placeOf(key, 40)!.length, 1000, 'the last block keeps its length')
  await first.close()
  // Direct writes round the last one up to 4 KiB: the file ends on a 4 KiB boundary past it.
  t.ok((await stat(join(dir, DATA_FILE))).size >= 40 * BLOCK + 1000, 'the last block is on disk')

  const second = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  t.teardown(() => second.close())
  const again = new RecordingBackend(bytes)
  t.ok((await new DiskCachedBackend(again, second, identity).readExact(38 * BLOCK, 2 * BLOCK + 1000)).equals(bytes.subarray(38 * BLOCK)), 'right bytes')
  t.equal(again.reads.length, 0, 'nothing from the source')
  t.equal(second.stats().verifyFailures, 0)
})

t.test('blocks already on disk split a run: the rest are written around them', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(8, 12 * BLOCK)
  const cache = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  t.teardown(() => cache.close())
  const backend = new DiskCachedBackend(new RecordingBackend(bytes), cache, { ...IDENTITY, size: bytes.length })
  await backend.readExact(4 * BLOCK, 2 * BLOCK)
  await cache.flush()
  // One source read of blocks 0-11 minus 4 and 5: two runs.
  await cache.keep(cache.attach({ ...IDENTITY, size: bytes.length }), 0, bytes)
  await cache.flush()
  t.equal(cache.stats().writes, 12, 'each block once')
  const check = new RecordingBackend(bytes)
  t.ok((await new DiskCachedBackend(check, cache, { ...IDENTITY, size: bytes.length }).readExact(0, bytes.length)).equals(bytes))
  t.equal(check.reads.length, 0, 'all from disk')
})

t.test('two runs failing at once on a full disk: both counted, logged once', async (t) => {
  const dir = await tempDir(t)
  // Every write to /dev/full fails with ENOSPC: the data file is that device.
  await symlink('/dev/full', join(dir, DATA_FILE))
  const lines: string[] = []
  const cache = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger: { ...logger, warn: (line: string) => void lines.push(line) } })
  t.teardown(() => cache.close())
  const bytes = seededBytes(9, 8 * BLOCK)
  const snapshot = cache.attach({ ...IDENTITY, size: bytes.length })
  // Blocks 0-1 and 4-5: two runs, both under way before either fails (two are written at once).
  await cache.keep(snapshot, 0, bytes.subarray(0, 2 * BLOCK))
  await cache.keep(snapshot, 4, bytes.subarray(4 * BLOCK, 6 * BLOCK))
  await cache.flush()
  t.equal(cache.stats().writeErrors, 2, 'both failures counted')
  t.equal(cache.stats().writes, 0)
  t.match(lines.filter((line) => /cannot write/.test(line)), [/cannot write to .*ENOSPC/], 'logged once')
  t.equal(cache.stats().bytesInUse, 0, 'nothing held against the bound')
})

t.test('blocks the memory cache lets it hold are written from its buffer, held until on disk; the others from copies', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(10, 6 * BLOCK + 1000)
  const identity = { ...IDENTITY, size: bytes.length }
  const cache = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  t.teardown(() => cache.close())
  const arena = new BufferArena({ arenaBytes: 16 * BLOCK, unitBytes: BLOCK })
  const into = arena.take(bytes.length)
  t.ok(arena.pageAligned(into))
  const onDisk = () => readFileSync(join(dir, DATA_FILE))
  let holds = 0
  const releasedWith: Buffer[] = []
  const holdInto = () => {
    holds++
    const release = arena.hold(into)
    return () => {
      releasedWith.push(onDisk())
      release()
    }
  }
  const backend = new DiskCachedBackend(new RecordingBackend(bytes), cache, identity)
  t.equal(await backend.readExact(0, bytes.length, { into, holdInto }), into, 'filled in place')
  arena.give(into)
  t.not(arena.take(bytes.length).byteOffset, into.byteOffset, 'given back while held: not reused yet')
  await cache.flush()
  t.equal(holds, 1, 'one hold for the run')
  t.equal(releasedWith.length, 1, 'released')
  t.ok(releasedWith.every((file) => file.subarray(0, bytes.length).equals(bytes)), 'only once the whole run was on disk')
  t.equal(cache.stats().writes, 7)

  // A read into a buffer of its own (a caller without holdInto, or a span wider than `into`): copies.
  const other = DiskCache.open({ dir: await tempDir(t), capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  t.teardown(() => other.close())
  let asked = 0
  const count = () => {
    asked++
    return () => {}
  }
  const second = new DiskCachedBackend(new RecordingBackend(bytes), other, identity)
  // Not block-aligned: the read is rounded out into a buffer of the disk cache's own.
  t.ok((await second.readExact(100, BLOCK, { into: Buffer.alloc(BLOCK), holdInto: count })).equals(bytes.subarray(100, 100 + BLOCK)))
  await other.flush()
  t.equal(asked, 0, 'nothing held: its own buffer is not the caller\'s')
  t.equal(other.stats().writes, 2, 'both blocks written, from copies')
  const check = new RecordingBackend(bytes)
  t.ok((await new DiskCachedBackend(check, other, identity).readExact(0, 2 * BLOCK)).equals(bytes.subarray(0, 2 * BLOCK)))
  t.equal(check.reads.length, 0, 'and read back from disk')
})

t.test('under the memory cache, fetches offer their page-aligned buffers to be held', async (t) => {
  const dir = await tempDir(t)
  const bytes = seededBytes(11, 32 * BLOCK)
  const cache = DiskCache.open({ dir, capacityBytes: 64 * BLOCK, blockBytes: BLOCK, logger })
  t.teardown(() => cache.close())
  const disk = new DiskCachedBackend(new RecordingBackend(bytes), cache, { ...IDENTITY, size: bytes.length })
  const offered: boolean[] = []
  const spy: StorageBackend = {
    length: disk.length,
    mtime: disk.mtime,
    readExact: (offset, length, options) => {
      offered.push(options?.holdInto !== undefined)
      return disk.readExact(offset, length, options)
    },
    close: () => disk.close(),
  }
  const memory = new CachingBackend(spy, new BlockCache({ capacityBytes: 8 * BLOCK, blockBytes: BLOCK }), { connections: 2, now: () => 0 })
  t.ok((await memory.readExact(0, bytes.length)).equals(bytes), 'through a memory cache a quarter of the image')
  await cache.flush()
  t.ok(offered.length > 0 && offered.every(Boolean), 'every fetch offered its buffer')
  t.equal(cache.stats().writes, 32, 'every block on disk')
  const check = new RecordingBackend(bytes)
  t.ok((await new DiskCachedBackend(check, cache, { ...IDENTITY, size: bytes.length }).readExact(0, bytes.length)).equals(bytes), 'right on disk')
  t.equal(check.reads.length, 0)
})

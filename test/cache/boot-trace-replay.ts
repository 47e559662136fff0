import t from 'tap'
import { readFile } from 'node:fs/promises'
import { BlockCache } from '../../src/cache/block-cache.js'
import { CachingBackend } from '../../src/cache/caching-backend.js'
import { CACHE_BLOCK_KIB, CACHE_SIZE_MIB } from '../../src/config/config.js'
import { parseTrace, summarizeReads } from '../../bench/lib/boot-trace.mjs'
import { RecordingBackend, settle } from '../fixtures/recording-backend.js'

/**
 * A real boot's reads, replayed through the cache and readahead as the daemon runs them (its
 * default cache and block size, 8 connections), against a source that counts what it is asked
 * for. The trace (bench/record-boot-trace.mjs) is a Debian guest's boot through an HTTP mount:
 * 1,426 reads, most of 4 to 128 KiB, scattered over the 4 GiB image with short sequential runs.
 * Measured through nginx before this test existed, the boot's 52 MiB cost 393-455 MiB from the
 * server: readahead set off by runs of a few adjacent reads fetched megabytes nobody read.
 */

const IMAGE_BYTES = 4 * 2 ** 30
const MIB = 2 ** 20
const reads = parseTrace(await readFile(new URL('../fixtures/linux-boot-trace.txt', import.meta.url), 'utf8'))

/** Replays `reads` in order at their recorded times; resolves to the bytes the source was asked for. */
async function replay(blockBytes = CACHE_BLOCK_KIB.default * 1024): Promise<number> {
  const source = new RecordingBackend(IMAGE_BYTES)
  let now = 0
  const backend = new CachingBackend(source, new BlockCache({ capacityBytes: CACHE_SIZE_MIB.default * MIB, blockBytes }), { connections: 8, now: () => now })
  for (const read of reads) {
    now = read.ms
    // QEMU opens the image once: one FUSE handle.
    await backend.readExact(read.offset, read.length, { stream: 1 })
    // Readahead the read started lands before the next read, as it would in the ~40 ms between reads.
    await settle()
  }
  await backend.close()
  return source.reads.reduce((sum, read) => sum + read.length, 0)
}

t.test('the recorded boot is the one described', async (t) => {
  const s = summarizeReads(reads, IMAGE_BYTES)
  t.equal(s.reads, 1426)
  t.equal(s.bytes, 54_479_360, '52.0 MiB read')
  t.ok(s.distinctBytes < s.bytes, 'some bytes read twice')
})

t.test('a boot fetches at most twice the bytes it read', async (t) => {
  const read = reads.reduce((sum, r) => sum + r.length, 0)
  const fetched = await replay()
  t.comment(`read ${(read / MIB).toFixed(1)} MiB, fetched ${(fetched / MIB).toFixed(1)} MiB (${(fetched / read).toFixed(2)}x)`)
  t.ok(fetched <= 2 * read, `fetched ${(fetched / MIB).toFixed(1)} MiB <= 2 x ${(read / MIB).toFixed(1)} MiB`)
})

import t from 'tap'
import { createReadStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startDaemon } from '../fixtures/daemon.js'
import { GiB, LARGE_IMAGE_EXTENTS, LARGE_IMAGE_SIZE, makeLargeSparseImage, makeRandomImage } from '../fixtures/images.js'
import { ddRange, readRange } from '../fixtures/readers.js'
import { randomRanges, seededRandom } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * Every read path, through a real mount, compared with the source: both local backends serve the
 * same two images, a 48 MiB random one and a sparse one past 4 GiB.
 */
const SMALL_SIZE = 48 * 1024 * 1024 + 777 // not a multiple of any block size: the last read is short

const run = promisify(execFile)

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

for (const type of ['file', 'mmap'] as const) {
  t.test(`${type} backend through the mount`, async (t) => {
    const dir = await tempDir(t)
    const small = await makeRandomImage(dir, 'small.raw', SMALL_SIZE, 42)
    const large = await makeLargeSparseImage(dir)
    const mountpoint = join(dir, 'mnt')
    await mkdir(mountpoint)
    const daemon = await startDaemon(t, mountpoint, [mountpoint, `small=${type}://${small}`, `large=${type}://${large}`])
    t.teardown(() => daemon.stop())
    const mounted = { small: join(mountpoint, 'small'), large: join(mountpoint, 'large') }

    t.test('edges: offset 0, the last byte, across EOF, past EOF', async (t) => {
      for (const [offset, length, expected, what] of [
        [0, 4096, 4096, 'first page'],
        [0, 1, 1, 'first byte'],
        [SMALL_SIZE - 1, 1, 1, 'last byte'],
        [SMALL_SIZE - 100, 4096, 100, 'a read across EOF is short, ending at EOF'],
        [SMALL_SIZE, 4096, 0, 'a read at EOF returns nothing'],
        [SMALL_SIZE + 12345, 10, 0, 'a read past EOF returns nothing'],
      ] as const) {
        const got = await readRange(mounted.small, offset, length)
        t.equal(got.length, expected, `${what}: ${expected} bytes`)
        t.ok(got.equals(await readRange(small, offset, length)), `${what}: same bytes as the source`)
      }
    })

    t.test('seeded random offsets and lengths', async (t) => {
      const ranges = randomRanges(2026, SMALL_SIZE, 200, 1024 * 1024)
      const wrong = []
      for (const { offset, length } of ranges) {
        const [got, want] = await Promise.all([readRange(mounted.small, offset, length), readRange(small, offset, length)])
        if (!got.equals(want)) wrong.push({ offset, length })
      }
      t.same(wrong, [], '200 reads match the source')
    })

    t.test('past 4 GiB: data on both sides of the line, in holes and at EOF', async (t) => {
      const probes = [
        ...LARGE_IMAGE_EXTENTS,
        { offset: 4 * GiB - 1, length: 2 },
        { offset: 4 * GiB + 65_536, length: 131_072 },
        { offset: 3 * GiB + 5, length: 70_000 }, // a hole: zeros
        { offset: LARGE_IMAGE_SIZE - 1, length: 1 },
        { offset: LARGE_IMAGE_SIZE - 1000, length: 5000 }, // across EOF
      ]
      for (const { offset, length } of probes) {
        const got = await readRange(mounted.large, offset, length)
        t.ok(got.equals(await readRange(large, offset, length)), `${length} bytes at ${offset}`)
      }
      t.equal((await readRange(mounted.large, LARGE_IMAGE_SIZE, 10)).length, 0, 'nothing past EOF')
    })

    t.test('16 readers at once, each its own process', async (t) => {
      const next = seededRandom(16)
      const readers = Array.from({ length: 16 }, (_, i) => {
        const file = i % 4 === 0 ? 'large' : 'small'
        const size = file === 'large' ? LARGE_IMAGE_SIZE : SMALL_SIZE
        const extent = LARGE_IMAGE_EXTENTS[i % LARGE_IMAGE_EXTENTS.length]!
        const offset = file === 'large' ? extent.offset : Math.floor(next() * (size - 4 * 1024 * 1024))
        const length = file === 'large' ? extent.length : 4 * 1024 * 1024
        return { file, offset, length }
      })
      const results = await Promise.all(readers.map(({ file, offset, length }) => ddRange(mounted[file as 'small'], offset, length)))
      for (const [i, { file, offset, length }] of readers.entries()) {
        const source = file === 'large' ? large : small
        t.ok(results[i]!.equals(await readRange(source, offset, length)), `reader ${i}: ${length} bytes of ${file} at ${offset}`)
      }
    })

    t.test('O_DIRECT reads, aligned and not', async (t) => {
      for (const [offset, length, blockSize] of [
        [0, 1024 * 1024, 4096],
        [4096 * 7, 512 * 1024, 512 * 1024],
        [SMALL_SIZE - 10_000, 10_000, 4096],
        [12_345, 54_321, 131_072],
      ] as const) {
        const got = await ddRange(mounted.small, offset, length, { direct: true, blockSize })
        t.ok(got.equals(await readRange(small, offset, length)), `O_DIRECT ${length} bytes at ${offset} in blocks of ${blockSize}`)
      }
      const got = await ddRange(mounted.large, 4 * GiB - 300_000, 600_000, { direct: true })
      t.ok(got.equals(await readRange(large, 4 * GiB - 300_000, 600_000)), 'O_DIRECT across 4 GiB')
    })

    t.test('the whole image: sha256 and qemu-img compare', async (t) => {
      t.equal(await sha256OfFile(mounted.small), await sha256OfFile(small), 'sha256 of the mounted file is the source sha256')
      const { stdout } = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', mounted.small, small])
      t.match(stdout, /Images are identical/, 'qemu-img compare finds them identical')
    })
  })
}

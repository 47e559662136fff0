import t from 'tap'
import { writeFile, chmod, mkdir, open, type FileHandle } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { FileBackend, readFully } from '../../src/backend/file-backend.js'
import { MmapBackend, WINDOW_BYTES } from '../../src/backend/mmap-backend.js'
import { openBackend } from '../../src/backend/open-backend.js'

const silentLogger = { info() {}, warn() {}, error() {} }
import type { StorageBackend } from '../../src/backend/storage-backend.js'
import { seededBytes } from '../fixtures/test-data.js'
import { LARGE_IMAGE_EXTENTS, LARGE_IMAGE_SIZE, makeLargeSparseImage, readSource } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

const BACKENDS: Record<string, (path: string) => Promise<StorageBackend>> = {
  file: (path) => FileBackend.open(path),
  mmap: (path) => MmapBackend.open(path),
}

for (const [type, open] of Object.entries(BACKENDS)) {
  t.test(`${type} backend`, async (t) => {
    const dir = await tempDir(t)
    const source = seededBytes(11, 3 * 1024 * 1024 + 4321)
    const path = join(dir, 'image.raw')
    await writeFile(path, source)

    t.test('reads past 4 GiB and across mmap windows return the source bytes', async (t) => {
      const large = await makeLargeSparseImage(dir)
      const backend = await open(large)
      t.teardown(() => backend.close())
      t.equal(backend.length, LARGE_IMAGE_SIZE)
      const probes = [
        ...LARGE_IMAGE_EXTENTS,
        { offset: WINDOW_BYTES - 4096, length: 8192 }, // straddles the first window edge
        { offset: 4 * 2 ** 30 - 1, length: 2 }, // straddles 4 GiB
        { offset: LARGE_IMAGE_SIZE - 1, length: 1 },
        { offset: 3 * 2 ** 30, length: 4096 }, // a hole: zeros
      ]
      for (const { offset, length } of probes) {
        const got = await backend.readExact(offset, length)
        t.ok(got.equals(await readSource(large, offset, length)), `${length} bytes at ${offset}`)
      }
    })

    t.test('reads of a cold file (page cache dropped) return the source bytes', async (t) => {
      const backend = await open(path)
      t.teardown(() => backend.close())
      // dd with iflag=nocache and count=0 asks the kernel to drop this file's cached pages.
      execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'])
      const cold = await backend.readExact(1_000_000, 200_000)
      t.ok(cold.equals(source.subarray(1_000_000, 1_200_000)), 'cold read')
      const warm = await backend.readExact(1_000_000, 200_000)
      t.ok(warm.equals(cold), 'the same read again, now from cached pages')
    })
  })
}

t.test('empty source', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'empty.raw')
  await writeFile(path, '')
  for (const [type, open] of Object.entries(BACKENDS)) {
    const backend = await open(path)
    t.equal(backend.length, 0, `${type}: length 0`)
    t.equal((await backend.readExact(0, 0)).length, 0, `${type}: the empty read`)
    await t.rejects(backend.readExact(0, 1), { code: 'E_OUT_OF_RANGE' }, `${type}: any byte is out of range`)
    await backend.close()
  }
})

t.test('a source that shrinks after open fails, never a short answer', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'shrinking.raw')
  await writeFile(path, seededBytes(5, 64 * 1024))
  const backend = await FileBackend.open(path)
  t.teardown(() => backend.close())
  const handle = await open(path, 'r')
  t.teardown(() => handle.close())
  await writeFile(path, seededBytes(5, 1000))
  // The pin sees the change (source-pin.ts); a read that races it still stops at the new end.
  await t.rejects(backend.readExact(0, 64 * 1024), { code: /^E_(SOURCE_CHANGED|PARTIAL_READ)$/ })
  await t.rejects(readFully(handle, Buffer.alloc(64 * 1024), 0), { code: 'E_PARTIAL_READ', bytesRead: 1000 })
})

t.test('opening a bad source says what is wrong and how to fix it', async (t) => {
  const dir = await tempDir(t)
  const unreadable = join(dir, 'secret.raw')
  await writeFile(unreadable, 'x')
  await chmod(unreadable, 0o000)
  await mkdir(join(dir, 'folder'))
  const cases = [
    { path: join(dir, 'missing.raw'), message: /does not exist/ },
    { path: join(dir, 'folder'), message: /is not a regular file|is a directory/ },
    { path: '/dev/null', message: /is not a regular file/ },
  ]
  // root reads a 0000 file anyway; the unreadable case only means something for other users.
  if (process.getuid?.() !== 0) cases.push({ path: unreadable, message: /not readable/ })
  for (const type of ['file', 'mmap'] as const) {
    for (const { path, message } of cases) {
      await t.rejects(openBackend({ name: 'x', type, path }, { env: {}, logger: silentLogger }), { code: 'E_SOURCE_OPEN', message, fix: /./ }, `${type}: ${path}`)
    }
  }
})

t.test('an operating-system read failure is E_SOURCE_READ with the range and the cause', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'image.raw')
  await writeFile(path, seededBytes(9, 8192))
  for (const [type, open] of Object.entries(BACKENDS)) {
    const backend = await open(path)
    // Close the descriptor under the backend: the next pread (or mmap) fails EBADF.
    await (backend as unknown as { handle: FileHandle }).handle.close()
    await t.rejects(backend.readExact(100, 200), { code: 'E_SOURCE_READ', offset: 100, length: 200, message: /EBADF|failed, 9/ }, type)
  }
})

t.test('a path through a file fails to open with the system reason', async (t) => {
  await t.rejects(FileBackend.open('/etc/hostname/x'), { code: 'E_SOURCE_OPEN', message: /ENOTDIR/ })
})

t.test('file backend: readPieces reads into recycled buffers, valid until the caller yields', async (t) => {
  const dir = await tempDir(t)
  const source = seededBytes(12, 1024 * 1024)
  const path = join(dir, 'image.raw')
  await writeFile(path, source)
  const backend = await FileBackend.open(path)
  t.teardown(() => backend.close())
  const [first] = await backend.readPieces(0, 4096)
  t.ok(first!.equals(source.subarray(0, 4096)))
  await new Promise((resolve) => setImmediate(resolve))
  const [second] = await backend.readPieces(8192, 4096)
  t.equal(second!.buffer, first!.buffer, 'the buffer came back for the next read of that size')
  t.ok(second!.equals(source.subarray(8192, 12288)))
  await t.rejects(backend.readPieces(source.length - 10, 20), { code: 'E_OUT_OF_RANGE' })
  await backend.close()
  await t.rejects(backend.readPieces(0, 1), { code: 'E_CLOSED' })
})

import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { LARGE_IMAGE_SIZE, makeLargeSparseImage, makeRandomImage } from '../fixtures/images.js'
import { readPathSuite } from '../fixtures/read-path-suite.js'
import { tempDir } from '../fixtures/temp-dir.js'

/** Not a multiple of any block size: the last read is short. */
const SMALL_SIZE = 48 * 1024 * 1024 + 777

for (const type of ['file', 'mmap'] as const) {
  t.test(`${type} backend through the mount`, async (t) => {
    const dir = await tempDir(t)
    const small = await makeRandomImage(dir, 'small.raw', SMALL_SIZE, 42)
    const large = await makeLargeSparseImage(dir)
    const mountpoint = join(dir, 'mnt')
    await mkdir(mountpoint)
    const daemon = await startDaemon(t, mountpoint, [mountpoint, `small=${type}://${small}`, `large=${type}://${large}`])
    t.teardown(() => daemon.stop())
    readPathSuite(
      t,
      { mounted: join(mountpoint, 'small'), source: small, size: SMALL_SIZE },
      { mounted: join(mountpoint, 'large'), source: large, size: LARGE_IMAGE_SIZE },
    )
  })
}

import t, { type Test } from 'tap'
import { mkdir, readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, mountAt, startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 1024 * 1024)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  return { image, mountpoint }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} unmounts cleanly and exits 0`, async (t) => {
    const { image, mountpoint } = await setUp(t)
    const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
    t.same(await readdir(mountpoint), ['disk.raw'], 'mounted and serving')
    t.equal(await daemon.stop(signal), 0, 'exit code 0')
    t.notOk(await isMounted(mountpoint), 'the mount is gone')
    t.same(await readdir(mountpoint), [], 'the mountpoint is an empty directory again')
    t.match(daemon.stderr(), new RegExp(`${signal}: unmounting`), 'logs why it stopped')
  })
}

t.test('a stale mount left by a killed daemon is cleared on the next start', async (t) => {
  const { image, mountpoint } = await setUp(t)
  const first = await startDaemon(t, mountpoint, [mountpoint, image])
  await first.stop('SIGKILL')
  await t.rejects(stat(mountpoint), { code: 'ENOTCONN' }, 'the killed daemon left a dead mount')

  const second = await startDaemon(t, mountpoint, [mountpoint, image])
  t.match(second.stderr(), /cleared a stale mount/, 'says it cleared it')
  t.ok((await readFile(join(mountpoint, 'disk.raw'))).equals(await readFile(image)), 'and serves the image')
  t.equal(await second.stop(), 0)
  t.notOk(await isMounted(mountpoint))
})

t.test('the mount is read-only, named snapmount, and of type fuse.snapmount', async (t) => {
  const { image, mountpoint } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  const mount = await mountAt(mountpoint)
  t.equal(mount?.type, 'fuse.snapmount')
  t.equal(mount?.source, 'snapmount')
  t.match(mount?.options, /(^|,)ro(,|$)/, 'ro in the mount options')
  t.equal(await daemon.stop(), 0)
})

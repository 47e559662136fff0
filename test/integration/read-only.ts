import t from 'tap'
import { mkdir, open, readdir, rename, rmdir, stat, truncate, unlink, utimes, writeFile, chmod, symlink, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('nothing can change a mounted snapshot', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 300_000)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image, `copy=mmap://${image}`])
  t.teardown(() => daemon.stop())
  const file = join(mountpoint, 'disk.raw')

  const attempts: Array<[string, () => Promise<unknown>]> = [
    ['open for writing', () => open(file, 'r+')],
    ['open write-only', () => open(file, 'w')],
    ['open for append', () => open(file, 'a')],
    ['truncate', () => truncate(file, 0)],
    ['create a new file', () => writeFile(join(mountpoint, 'new.raw'), 'x')],
    ['unlink', () => unlink(file)],
    ['rename', () => rename(file, join(mountpoint, 'other'))],
    ['mkdir', () => mkdir(join(mountpoint, 'dir'))],
    ['rmdir', () => rmdir(join(mountpoint, 'dir'))],
    ['chmod', () => chmod(file, 0o666)],
    ['utimes', () => utimes(file, new Date(), new Date())],
    ['symlink', () => symlink('disk.raw', join(mountpoint, 'link'))],
  ]
  for (const [what, attempt] of attempts) {
    await t.rejects(attempt(), { code: 'EROFS' }, `${what} fails EROFS`)
  }
  t.same((await readdir(mountpoint)).sort(), ['copy', 'disk.raw'], 'the directory is unchanged')
  t.equal((await stat(file)).size, 300_000, 'the file is unchanged')
  await t.rejects(stat(join(mountpoint, 'missing')), { code: 'ENOENT' })
})

t.test('getattr and statfs show what the sources are', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 1_000_001)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  t.teardown(() => daemon.stop())

  const [mounted, source] = await Promise.all([stat(join(mountpoint, 'disk.raw')), stat(image)])
  t.equal(mounted.size, source.size, 'size')
  t.equal(mounted.mode & 0o7777, 0o400, 'mode 0400: read-only, and its owner\'s alone by default')
  t.ok(mounted.isFile())
  // fuse-native carries times in whole milliseconds.
  t.ok(Math.abs(mounted.mtimeMs - source.mtimeMs) < 1, 'the source mtime, to the millisecond')
  t.equal(mounted.blocks, Math.ceil(source.size / 512), 'st_blocks covers the whole file')
  const root = await stat(mountpoint)
  t.equal(root.mode & 0o7777, 0o500, 'the root is a read-only directory, its owner\'s alone by default')

  const fsStats = await statfs(mountpoint)
  t.equal(fsStats.bsize, 4096)
  t.equal(fsStats.blocks, Math.ceil(1_000_001 / 4096), 'statfs counts the snapshots')
  t.equal(fsStats.bfree, 0, 'and nothing free')
})

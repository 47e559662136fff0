import t from 'tap'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { resolveMountpoint } from '../../src/fuse/mountpoint.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('resolveMountpoint: symlinks resolved; what does not exist keeps as much resolved as exists', async (t) => {
  const dir = await tempDir(t)
  const real = join(dir, 'real')
  await mkdir(real)
  await symlink(real, join(dir, 'link'))
  t.equal(await resolveMountpoint(join(dir, 'link')), real)
  t.equal(await resolveMountpoint(join(dir, 'link', 'missing')), join(real, 'missing'), 'a missing leaf under a link: the folder resolved')
  t.equal(await resolveMountpoint(join(dir, 'link', 'no', 'such')), join(dir, 'link', 'no', 'such'), 'a missing folder: left as given, for the check to report')
})

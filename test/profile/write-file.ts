import t from 'tap'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomically } from '../../src/profile/write-file.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('replaces the file whole, owner-only, leaving no temporary file', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'p.json')
  await writeFile(path, 'old', { mode: 0o644 })
  await writeFileAtomically(path, 'new')
  t.equal(await readFile(path, 'utf8'), 'new')
  t.equal((await stat(path)).mode & 0o777, 0o600, 'the new file is 0600 whatever the old one was')
  t.same(await readdir(dir), ['p.json'])
})

t.test('makes a missing folder 0700; a failed rename removes its temporary file', async (t) => {
  const dir = await tempDir(t)
  await writeFileAtomically(join(dir, 'a', 'b', 'p.json'), 'x')
  t.equal((await stat(join(dir, 'a', 'b'))).mode & 0o777, 0o700)
  await mkdir(join(dir, 'folder'))
  await t.rejects(writeFileAtomically(join(dir, 'folder'), 'x'), { code: 'EISDIR' })
  t.same((await readdir(dir)).sort(), ['a', 'folder'])
})

import t from 'tap'
import { chmod, chown, lstat, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkControlDir, ownControlDir } from '../../src/control/socket-path.js'
import { tempDir } from '../fixtures/temp-dir.js'

// The daemon's side of issue 14, item 10: the runtime folder (/tmp/snapmount-UID without
// XDG_RUNTIME_DIR) is made 0700 at once, or refused when someone else could have made it.

const uid = process.getuid!()

t.test('a missing folder is made 0700; one of ours, 0700, is taken', async (t) => {
  const dir = join(await tempDir(t), 'snapmount-test')
  t.equal(await checkControlDir(dir, uid), 'missing')
  await ownControlDir(dir, uid)
  const stats = await lstat(dir)
  t.equal(stats.mode & 0o777, 0o700)
  t.equal(stats.uid, uid)
  await ownControlDir(dir, uid)
  t.equal(await checkControlDir(dir, uid), 'ok')
})

t.test('a folder made by someone else, a symlink, a file or a folder others may enter: refused, with the fix', async (t) => {
  const base = await tempDir(t)
  const other = join(base, 'other')
  await mkdir(other, { mode: 0o700 })
  if (uid === 0) {
    await chown(other, 65534, 65534)
    await t.rejects(ownControlDir(other, uid), { code: 'E_CONTROL_DIR', message: `control folder ${other} belongs to uid 65534, not to uid 0`, fix: /rm -r .*XDG_RUNTIME_DIR.*control_socket/ })
  }
  const link = join(base, 'link')
  await mkdir(join(base, 'target'), { mode: 0o700 })
  await symlink(join(base, 'target'), link)
  await t.rejects(ownControlDir(link, uid), { message: `control folder ${link} is a symlink, which snapmount does not follow` })
  const file = join(base, 'file')
  await writeFile(file, '')
  await t.rejects(ownControlDir(file, uid), { message: `control folder ${file} is not a directory` })
  await t.rejects(checkControlDir(join(file, 'below'), uid), { code: 'ENOTDIR' }, 'a folder that cannot be looked at is an error, not "missing"')
  const open = join(base, 'open')
  await mkdir(open)
  await chmod(open, 0o1777)
  await t.rejects(ownControlDir(open, uid), { message: `control folder ${open} has mode 01777: other users may enter it`, fix: new RegExp(`^chmod 700 ${open}, or remove it`) })
  await t.rejects(ownControlDir(join(base, 'no', 'parent'), uid), { code: 'ENOENT' }, 'a missing parent is an error, not made')
})

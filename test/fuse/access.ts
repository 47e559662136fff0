import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkAllowOther, checkFuseDevice, describeAccess, fuseDeviceError, needsAllowOther, resolveId, umaskFor } from '../../src/fuse/access.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('resolveId: numbers as they are, names through getent', async (t) => {
  t.equal(await resolveId(1234, 'passwd'), 1234)
  t.equal(await resolveId('root', 'passwd'), 0)
  t.equal(await resolveId('nogroup', 'group'), 65534)
  await t.rejects(resolveId('no-such-user-here', 'passwd'), { code: 'E_ACCESS', message: 'no user named no-such-user-here', fix: /getent passwd no-such-user-here/ })
  await t.rejects(resolveId('no-such-group-here', 'group'), { message: 'no group named no-such-group-here' })
})

t.test('checkAllowOther: root, or no allow_other, never look; others need user_allow_other', async (t) => {
  const dir = await tempDir(t)
  const missing = join(dir, 'missing.conf')
  await checkAllowOther(false, 1000, missing)
  await checkAllowOther(true, 0, missing)
  await t.rejects(checkAllowOther(true, 1000, missing), {
    code: 'E_ACCESS',
    message: `allow_other needs user_allow_other in ${missing} when snapmount does not run as root (uid 1000)`,
    fix: /add a line user_allow_other to .*, run snapmount as root, or drop allow_other \(--no-allow-other\)/,
  })
  const commented = join(dir, 'commented.conf')
  await writeFile(commented, '# user_allow_other - lets users...\n#user_allow_other\nmount_max = 1000\n')
  await t.rejects(checkAllowOther(true, 1000, commented), { code: 'E_ACCESS' }, 'a commented line does not count')
  const enabled = join(dir, 'enabled.conf')
  await writeFile(enabled, '#mount_max = 1000\n  user_allow_other  \n')
  await checkAllowOther(true, 1000, enabled)
})

t.test('checkFuseDevice: a missing device or one the daemon may not open, with the fix', async (t) => {
  const dir = await tempDir(t)
  const device = join(dir, 'fuse')
  await t.rejects(checkFuseDevice(1000, device), { code: 'E_ACCESS', message: `${device} does not exist`, fix: /modprobe fuse/ })
  await writeFile(device, '')
  await checkFuseDevice(process.getuid!(), device)
  const refused = fuseDeviceError('/dev/fuse', 'EACCES', 1000)
  t.equal(refused.message, 'snapmount (uid 1000) cannot open /dev/fuse for reading and writing (EACCES)')
  t.match(refused.fix, /run snapmount as root, or give its user read-write access to \/dev\/fuse/)
})

t.test('the default umask: owner-only, or group-readable when a gid is given; an explicit one wins', async (t) => {
  t.equal(umaskFor({}), 0o077)
  t.equal(umaskFor({ gid: 'kvm' }), 0o027)
  t.equal(umaskFor({ gid: 107, umask: 0o077 }), 0o077)
  t.equal(umaskFor({ umask: 0 }), 0)
})

t.test('allow_other is needed exactly when someone other than the daemon\'s user is to read', async (t) => {
  t.equal(needsAllowOther({ uid: 0, gid: 0, umask: 0o077 }, 0), false, 'owner-only, owned by the daemon')
  t.equal(needsAllowOther({ uid: 107, gid: 0, umask: 0o077 }, 0), true, 'another owner')
  t.equal(needsAllowOther({ uid: 0, gid: 107, umask: 0o027 }, 0), true, 'a group')
  t.equal(needsAllowOther({ uid: 0, gid: 0, umask: 0o022 }, 0), true, 'everyone')
})

t.test('who may read, in words', async (t) => {
  t.equal(describeAccess({ uid: 0, gid: 0, umask: 0o077 }, false, 0), 'readable by uid 0 only (files 0400, root dir 0500, allow_other off)')
  t.equal(describeAccess({ uid: 0, gid: 107, umask: 0o027 }, true, 0, { group: 'kvm' }), 'readable by uid 0 and group kvm (gid 107) (files 0440, root dir 0550)')
  t.equal(describeAccess({ uid: 64055, gid: 0, umask: 0o077 }, true, 0, { user: 'libvirt-qemu' }), 'readable by user libvirt-qemu (uid 64055) only (files 0400, root dir 0500)')
  t.equal(describeAccess({ uid: 0, gid: 107, umask: 0o407 }, true, 0), 'readable by gid 107 only (files 0040, root dir 0150)')
  t.equal(describeAccess({ uid: 0, gid: 0, umask: 0 }, true, 0), 'readable by everyone (files 0444, root dir 0555)')
  t.equal(describeAccess({ uid: 0, gid: 0, umask: 0o777 }, true, 0), 'readable by no one (files 0000, root dir 0000)')
  t.equal(describeAccess({ uid: 107, gid: 0, umask: 0o077 }, false, 0), 'readable by no one (files 0400, root dir 0500, allow_other off, owner uid 107)', 'the kernel lets only the daemon in, and the modes keep it out')
  t.equal(describeAccess({ uid: 107, gid: 0, umask: 0 }, false, 0), 'readable by uid 0 only (files 0444, root dir 0555, allow_other off)')
})

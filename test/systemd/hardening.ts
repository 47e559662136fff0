import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { chown, chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { detach, isMounted, SNAPMOUNT } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * What the units' hardening leaves the daemon, reproduced without systemd (which this machine may
 * not run as init): no_new_privs (NoNewPrivileges=yes) and a capability bounding set of
 * CAP_SYS_ADMIN alone (CapabilityBoundingSet=), applied by setpriv before exec. The daemon must
 * still mount, read an image its user may read, and unmount; an image only another user may read
 * it must refuse, unless a drop-in adds CAP_DAC_READ_SEARCH (as the README shows).
 */
async function underSetpriv(t: Test, capabilities: string, image: string, mountpoint: string) {
  const setpriv = ['--no-new-privs', '--inh-caps=-all', `--bounding-set=-all,${capabilities}`]
  const child = spawn('setpriv', [...setpriv, SNAPMOUNT, 'mount', mountpoint, image], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SNAPMOUNT_LOG_FORMAT: 'text' } })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
    if (await isMounted(mountpoint)) await detach(mountpoint)
  })
  while (!/ info: mounted /.test(stderr) && child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 20))
  return { child, exited, stderr: () => stderr }
}

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = await makeRandomImage(dir, 'guest.raw', 1024 * 1024)
  await chmod(image, 0o600) // as libvirt leaves an image: its owner alone may read it
  return { mountpoint, image }
}

const root = process.getuid?.() === 0
t.test('with only CAP_SYS_ADMIN and no_new_privs, the daemon mounts, serves its own 0600 image and unmounts', { skip: !root && 'needs root' }, async (t) => {
  const { mountpoint, image } = await setUp(t)
  const { child, exited, stderr } = await underSetpriv(t, '+sys_admin', image, mountpoint)
  t.equal(child.exitCode, null, `mounted: ${stderr()}`)
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
  t.match(status, /^CapEff:\t0000000000200000$/m, 'effective capabilities: CAP_SYS_ADMIN (21) only')
  t.match(status, /^NoNewPrivs:\t1$/m, 'no_new_privs')
  t.ok((await readFile(join(mountpoint, 'guest.raw'))).equals(await readFile(image)), 'serves the 0600 image of its own user')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0')
  t.notOk(await isMounted(mountpoint), 'and unmounted')
})

t.test('an image only another user may read: refused under the unit, served with the drop-in that adds CAP_DAC_READ_SEARCH', { skip: !root && 'needs root' }, async (t) => {
  const { mountpoint, image } = await setUp(t)
  await chown(image, 65534, 65534)
  const plain = await underSetpriv(t, '+sys_admin', image, mountpoint)
  t.equal(await plain.exited, 2, 'exit 2: bad input')
  t.match(plain.stderr(), new RegExp(`source ${image} is not readable \\(EACCES\\)`), 'the image of another user is not republished')
  const dropIn = await underSetpriv(t, '+sys_admin,+dac_read_search', image, mountpoint)
  t.equal(dropIn.child.exitCode, null, `mounted: ${dropIn.stderr()}`)
  t.ok((await readFile(join(mountpoint, 'guest.raw'))).equals(await readFile(image)), 'with the capability, it reads')
  dropIn.child.kill('SIGTERM')
  t.equal(await dropIn.exited, 0)
})

import t from 'tap'
import { spawn } from 'node:child_process'
import { chown, chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { detach, isMounted, SNAPMOUNT } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * What the units' hardening leaves the daemon, reproduced without systemd (which this machine may
 * not run as init): no_new_privs (NoNewPrivileges=yes) and a capability bounding set of
 * CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH (CapabilityBoundingSet=), applied by setpriv before exec.
 * The daemon must still mount, read an image only its owner (another user) may read, and unmount.
 */
t.test('with only CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH and no_new_privs, the daemon mounts, serves and unmounts', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = await makeRandomImage(dir, 'guest.raw', 1024 * 1024)
  await chown(image, 65534, 65534)
  await chmod(image, 0o600) // as libvirt leaves an image: its owner alone may read it
  const setpriv = ['--no-new-privs', '--inh-caps=-all', '--bounding-set=-all,+sys_admin,+dac_read_search']
  const child = spawn('setpriv', [...setpriv, SNAPMOUNT, 'mount', mountpoint, image], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL')
    await exited
    if (await isMounted(mountpoint)) await detach(mountpoint)
  })
  while (!/ info: mounted /.test(stderr)) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
  t.match(status, /^CapEff:\t0000000000200004$/m, 'effective capabilities: CAP_SYS_ADMIN (21) and CAP_DAC_READ_SEARCH (2) only')
  t.match(status, /^NoNewPrivs:\t1$/m, 'no_new_privs')
  t.ok((await readFile(join(mountpoint, 'guest.raw'))).equals(await readFile(image)), 'serves the 0600 image of another user')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits 0')
  t.notOk(await isMounted(mountpoint), 'and unmounted')
})

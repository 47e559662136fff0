import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NOBODY, runCli, startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

const run = promisify(execFile)

async function setUp(t: Test) {
  const dir = await tempDir(t)
  await chmod(dir, 0o755) // so other users reach the mountpoint in it, as they would /var/lib/snapmount
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = await makeRandomImage(dir, 'disk.raw', 256 * 1024)
  return { dir, mountpoint, image }
}

/** `cat FILE` as another user and group, with no supplementary groups: the hypervisor's view. */
async function readAs(uid: number, gid: number, path: string): Promise<Buffer> {
  const { stdout } = await run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'cat', path], { encoding: 'buffer', maxBuffer: 1 << 20 })
  return stdout
}

t.test('uid, gid and umask by name: the files show them, and the kernel lets exactly that user read', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const { mountpoint, image } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image, '--allow-other', '--uid', 'nobody', '--gid', 'nogroup', '--umask', '0027'])
  const file = await stat(join(mountpoint, 'disk.raw'))
  t.equal(file.uid, NOBODY)
  t.equal(file.gid, NOBODY)
  t.equal(file.mode & 0o777, 0o440, 'files 0444 less 0027')
  t.equal((await stat(mountpoint)).mode & 0o777, 0o550, 'the root 0555 less 0027')
  t.ok((await readAs(NOBODY, NOBODY, join(mountpoint, 'disk.raw'))).equals(await readFile(image)), 'the owner reads')
  t.ok((await readAs(4321, NOBODY, join(mountpoint, 'disk.raw'))).equals(await readFile(image)), 'the group reads')
  await t.rejects(readAs(4321, 4321, join(mountpoint, 'disk.raw')), /Permission denied/, 'anyone else is refused')
  t.equal(await daemon.stop(), 0)
})

t.test('an owner name that does not exist: exit 2 and the fix, nothing mounted', async (t) => {
  const { mountpoint, image } = await setUp(t)
  const result = await runCli(['mount', mountpoint, image, '--gid', 'no-such-group-here'])
  t.equal(result.code, 2)
  t.match(result.stderr, /no group named no-such-group-here; check the name \(getent group no-such-group-here\) or give the number/)
})

const userAllowOther = (() => {
  try {
    return readFileSync('/etc/fuse.conf', 'utf8').split('\n').some((line) => line.trim() === 'user_allow_other')
  } catch {
    return false
  }
})()

const skipAllowOther = userAllowOther && 'this machine has user_allow_other in /etc/fuse.conf'
t.test('allow_other from a daemon that is not root, without user_allow_other: a clear refusal before mounting', { skip: skipAllowOther }, async (t) => {
  const { dir, mountpoint, image } = await setUp(t)
  // The user needs no access to anything: the check comes before the mountpoint and the sources.
  const result = await runCli(['mount', '--allow-other', mountpoint, image], { asNobody: true, cwd: dir })
  t.equal(result.code, 2, 'exit 2: bad input')
  t.match(result.stderr, /allow_other needs user_allow_other in \/etc\/fuse\.conf when snapmount does not run as root \(uid 65534\); add a line user_allow_other to \/etc\/fuse\.conf, run snapmount as root, or drop allow_other/)
})

const nobodyOpensFuse = await run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'test', '-r', '/dev/fuse', '-a', '-w', '/dev/fuse']).then(
  () => true,
  () => false,
)
const skipDevice = nobodyOpensFuse && 'nobody may open /dev/fuse on this machine (containers usually leave it 0600)'
t.test('a daemon that may not open /dev/fuse: a clear refusal before mounting', { skip: skipDevice }, async (t) => {
  const { dir, mountpoint, image } = await setUp(t)
  const result = await runCli(['mount', '--no-allow-other', mountpoint, image], { asNobody: true, cwd: dir })
  t.equal(result.code, 2, 'exit 2: bad input')
  t.match(result.stderr, /snapmount \(uid 65534\) cannot open \/dev\/fuse for reading and writing \(EACCES\); run snapmount as root, or give its user read-write access to \/dev\/fuse/)
})

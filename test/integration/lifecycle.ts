import t, { type Test } from 'tap'
import { lstat, mkdir, readFile, readdir, rmdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { detach, isMounted, mountAt, runCli, startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

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

t.test('allow_other: off by default (owner-only), on when the umask lets others read, off with --no-allow-other', async (t) => {
  const { image, mountpoint } = await setUp(t)
  const allowOther = /(^|,)allow_other(,|$)/
  const byDefault = await startDaemon(t, mountpoint, [mountpoint, image])
  t.notMatch((await mountAt(mountpoint))?.options, allowOther, 'default: off')
  t.equal(await byDefault.stop(), 0)
  const root = process.getuid?.() === 0
  if (root) {
    // A user other than root needs user_allow_other in /etc/fuse.conf for it; root does not.
    const group = await startDaemon(t, mountpoint, [mountpoint, image, '--umask', '0027'])
    t.match((await mountAt(mountpoint))?.options, allowOther, 'umask 0027: on, so the group gets in')
    t.equal(await group.stop(), 0)
  }
  const without = await startDaemon(t, mountpoint, [mountpoint, image, '--umask', '0027', '--no-allow-other'])
  t.notMatch((await mountAt(mountpoint))?.options, allowOther, '--no-allow-other: off whatever the umask')
  t.equal(await without.stop(), 0)
})

t.test('a mount that fails after the checks passed: exit 1 with the error, nothing mounted', async (t) => {
  const { mountpoint } = await setUp(t)
  const server = await startFaultServer(t, seededBytes(3, 100_000))
  // The HEAD at open is held for a second; the mountpoint is removed meanwhile, after the daemon checked it.
  server.plan({ kind: 'slow-headers', ms: 1000, method: 'HEAD' })
  const cli = runCli(['mount', mountpoint, server.url()])
  while (!server.requests.some(({ method }) => method === 'HEAD')) await new Promise((resolve) => setTimeout(resolve, 10))
  await rmdir(mountpoint)
  const result = await cli
  t.equal(result.code, 1, 'exit 1: failed while running, not bad input')
  t.equal(result.stdout, '')
  t.match(result.stderr, /^snapmount error: Error: Mountpoint does not exist\n/, 'the error, as the binding gives it')
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
  await t.rejects(lstat(mountpoint), { code: 'ENOENT' }, 'and the mountpoint is not recreated')
})

t.test('a mount taken away by hand (fusermount -u): the daemon exits 0 by itself', async (t) => {
  const { image, mountpoint } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  const exited = new Promise((resolve) => daemon.process.once('exit', resolve))
  await detach(mountpoint)
  t.equal(await exited, 0, 'exit code 0, with no signal sent')
  t.match(daemon.stderr(), /mount removed from outside: .* was already unmounted/)
})

t.test('a mount taken away by hand (fusermount -u): SIGTERM still exits 0', async (t) => {
  const { image, mountpoint } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  await detach(mountpoint)
  t.notOk(await isMounted(mountpoint), 'gone')
  t.equal(await daemon.stop(), 0, 'exit code 0')
  t.match(daemon.stderr(), /was already unmounted/)
})

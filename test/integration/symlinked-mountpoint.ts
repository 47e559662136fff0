import t from 'tap'
import { mkdir, readFile, readdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, runCli, startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { mountEntry } from '../../src/fuse/mountpoint.js'
import { KERNEL_READAHEAD_KIB } from '../../src/fuse/kernel-readahead.js'

// Issue 14, item 4: a mountpoint given through a symlink (/var/run -> /run makes this common).
// mountinfo lists the resolved path; before, the daemon compared it with the link's, decided after
// ~2 s that its mount was gone, exited 0 and left a dead mount; the already-mounted check and the
// kernel readahead setting missed it too.

/** Longer than the mount watch's period (2 s), so a watch that cannot see the mount has given up. */
const WATCHED_MS = 3500

t.test('a mountpoint given through a symlink is served, watched, checked and unmounted as the real one', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 256 * 1024)
  const real = join(dir, 'real-mnt')
  await mkdir(real)
  const link = join(dir, 'link-mnt')
  await symlink(real, link)
  // Two levels: a folder link above the mountpoint, as /var/run above /var/run/disks.
  await symlink(dir, join(dir, 'run'))
  const deep = join(dir, 'run', 'link-mnt')

  const daemon = await startDaemon(t, real, [deep, image, '--log-level', 'debug'])
  t.match(daemon.stderr(), new RegExp(`mounted ${real} read-only`), 'the log names the real path')
  // The second mount's refusal needs no watch period gone by (nor a read): it runs while they pass.
  const watched = new Promise((resolve) => setTimeout(resolve, WATCHED_MS))
  const second = await runCli(['mount', link, image])
  t.equal(second.code, 2, 'a second daemon on the same mount through the link is refused')
  t.match(second.stderr, new RegExp(`mountpoint ${real} already has a fuse\\.snapmount file system mounted on it`))

  await watched
  t.equal(daemon.process.exitCode, null, `still serving after ${WATCHED_MS} ms`)
  t.notMatch(daemon.stderr(), /mount removed from outside|already unmounted/)
  t.ok((await readFile(join(link, 'disk.raw'))).equals(await readFile(image)), 'reads through the link')
  const entry = await mountEntry(real)
  t.equal(await readFile(`/sys/class/bdi/${entry!.device}/read_ahead_kb`, 'utf8'), `${KERNEL_READAHEAD_KIB}\n`, 'the kernel readahead was set')
  t.notMatch(daemon.stderr(), /could not set the kernel's readahead/)

  // After the read, so status has a read's latency to show.
  const status = await runCli(['status', '--mountpoint', deep])
  t.equal(status.code, 0, `status finds the daemon through the link: ${status.stderr}`)
  t.match(status.stdout, /disk\.raw/)

  t.equal(await daemon.stop(), 0, 'stops cleanly')
  t.notOk(await isMounted(real), 'and unmounts')
  t.strictSame(await readdir(real), [], 'leaving an empty, live directory (no "Transport endpoint is not connected")')
})

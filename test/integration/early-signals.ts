import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, startDaemon, until } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

// Issue 14 item 3, every signal ends cleanly: a SIGHUP that comes while the daemon starts (its
// sources opening, the mount coming up) met Node's default handler, which ends the process, and
// after the mount leaves a dead one. Now it is logged and applied once serving.

const IMAGE = seededBytes(31, 256 * 1024)
/** How long the source holds its first answer: the start is under way for that long. */
const HELD_MS = 3000

t.test('SIGHUPs while the daemon starts: logged once, the config read again once mounted, the daemon serves and stops cleanly', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const server = await startFaultServer(t, IMAGE)
  server.plan({ kind: 'slow-headers', ms: HELD_MS, method: 'HEAD' })
  let signalled: Promise<void> | undefined
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`], {}, (child) => {
    signalled = (async () => {
      await until(() => server.requests.some(({ method }) => method === 'HEAD'), 'the start to ask the source')
      child.kill('SIGHUP')
      child.kill('SIGHUP')
    })()
  })
  await signalled
  const log = daemon.stderr()
  t.equal(log.match(/SIGHUP while starting: the config is read again once mounted/g)?.length, 1, 'one line for the SIGHUPs while starting')
  t.ok(log.indexOf('SIGHUP while starting') < log.indexOf(' info: mounted '), 'both came before the mount')
  await until(() => /SIGHUP: reloaded: added none; removed none; replaced none; 1 unchanged/.test(daemon.stderr()), 'the reload once mounted')
  t.ok((await readRange(join(mountpoint, 'disk.img'), 0, IMAGE.length)).equals(IMAGE), 'it serves')
  t.equal(await daemon.stop(), 0, 'and SIGTERM stops it cleanly')
  t.notOk(await isMounted(mountpoint), 'unmounted')
})

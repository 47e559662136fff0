import t, { type Test } from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, startDaemon, until } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { mountHangingFs } from '../fixtures/hanging-fs.js'
import { readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

// Issue 14 item 3, every signal ends cleanly: a SIGHUP that comes while the daemon starts (its
// sources opening, the mount coming up) met Node's default handler, which ends the process, and
// after the mount leaves a dead one. Now it is logged and applied once serving. A SIGINT or
// SIGTERM then ended the process without a word; now it says so, and still ends it by that signal.

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

/** The longest open deadline (read_timeout_ms): the start stays in the source's open until the signal. */
const OPEN_DEADLINE_MS = 14_000

/** Sources whose open never answers, and how to tell the daemon's start is waiting on one. */
const NEVER_ANSWERING = {
  async 'a local source on a hung file system'(t: Test) {
    const hung = await mountHangingFs(t)
    return { source: `hung.img=${hung.path}`, waiting: () => hung.opens() > 0 }
  },
  async 'a web server that never answers'(t: Test) {
    const server = await startFaultServer(t, IMAGE)
    server.plan({ kind: 'slow-headers', ms: 60_000, method: 'HEAD' })
    return { source: `hung.img=${server.url()}`, waiting: () => server.requests.some(({ method }) => method === 'HEAD') }
  },
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  for (const [what, neverAnswering] of Object.entries(NEVER_ANSWERING)) {
    t.test(`${signal} while the daemon waits on ${what}: one line says so, and the process ends by ${signal}`, async (t) => {
      const dir = await tempDir(t)
      const mountpoint = join(dir, 'mnt')
      await mkdir(mountpoint)
      const { source, waiting } = await neverAnswering(t)
      let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined
      let signalled: Promise<void> | undefined
      let stderr = () => ''
      const started = startDaemon(t, mountpoint, [mountpoint, source, '--read-timeout-ms', String(OPEN_DEADLINE_MS)], {}, (child, log) => {
        stderr = log
        exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
        signalled = until(waiting, 'the start to wait on the source').then(() => void child.kill(signal))
      })
      await t.rejects(started, /before mounting/, 'it never mounts')
      await signalled
      t.same(await exited, { code: null, signal }, `ended by ${signal}, not with an exit code`)
      const log = stderr()
      t.equal(log.match(new RegExp(`info: ${signal} while starting: nothing is mounted yet; stopping\n`, 'g'))?.length, 1, 'one line names the signal')
      t.notMatch(log, /^\s+at /m, 'no stack trace')
      t.notOk(await isMounted(mountpoint), 'nothing mounted')
    })
  }
}

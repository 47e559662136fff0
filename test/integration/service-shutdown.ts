import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdir, open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('SIGTERM with a read in flight: new opens get EBUSY, the read finishes, then the mount goes (lazily: a file is open)', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const bytes = seededBytes(11, 256 * 1024)
  const server = await startFaultServer(t, bytes)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`])
  const path = join(mountpoint, 'disk.img')
  const file = await open(path)
  // The source holds this read's response for 1.5 s; the signal comes while it waits.
  server.plan({ kind: 'slow-headers', ms: 1500 })
  const gets = server.requests.filter(({ method }) => method === 'GET').length
  const target = Buffer.alloc(64 * 1024)
  const reading = file.read(target, 0, target.length, 0)
  await until(() => server.requests.filter(({ method }) => method === 'GET').length > gets, 'the read to reach the source')
  const exited = daemon.stop('SIGTERM')

  await until(() => /SIGTERM: refusing new opens/.test(daemon.stderr()), 'the daemon to stop taking opens')
  await t.rejects(open(path), { code: 'EBUSY' }, 'a new open is refused while the daemon stops')
  daemon.process.kill('SIGHUP')
  await until(() => /SIGHUP ignored: stopping/.test(daemon.stderr()), 'the SIGHUP to be ignored')
  const { bytesRead } = await reading
  t.equal(bytesRead, target.length, 'the read in flight finished')
  t.ok(target.equals(bytes.subarray(0, target.length)), 'with the right bytes')
  t.equal(await exited, 0, 'exit 0')
  t.notOk(await isMounted(mountpoint), 'unmounted')
  t.match(daemon.stderr(), /SIGTERM: unmounting /)
  t.match(daemon.stderr(), /warn: .*mnt was busy \(.*\); still open: disk\.img: 1 open; detached it lazily/, 'says what held it')
  t.match(daemon.stderr(), /info: unmounted\n$/)
  await file.close().catch(() => undefined)
  t.same(await readdir(mountpoint), [], 'the mountpoint is an empty directory again')
})

t.test('a mount busy with no file open (a working directory in it): detached lazily, and the log says so', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const server = await startFaultServer(t, seededBytes(12, 4096))
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`])
  const resident = spawn('sleep', ['60'], { cwd: mountpoint, stdio: 'ignore' })
  t.teardown(() => void resident.kill())
  t.equal(await daemon.stop('SIGTERM'), 0)
  t.match(daemon.stderr(), /was busy \(.*\); no snapshot is open; a process may have its working directory there; detached it lazily/)
  t.notOk(await isMounted(mountpoint), 'detached')
})

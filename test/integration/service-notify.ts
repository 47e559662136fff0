import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { startNotifySocket } from '../fixtures/notify-socket.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

t.test('READY=1 reaches NOTIFY_SOCKET only once the mount is up', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const notify = await startNotifySocket(t, dir, mountpoint)
  // A source that takes a second to open keeps the daemon busy before mounting for that long.
  const server = await startFaultServer(t, seededBytes(9, 100_000))
  server.plan({ kind: 'slow-headers', ms: 1000, method: 'HEAD' })
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`], { NOTIFY_SOCKET: notify.path })
  while (notify.messages.length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  const [ready, barrier] = notify.messages
  t.match(ready!.text, /^READY=1\\nSTATUS=serving 1 snapshot\(s\) at /, 'READY=1 with a status line')
  t.ok(ready!.mounted, 'the mount was there when READY=1 arrived')
  t.equal(barrier!.text, 'BARRIER=1', 'then the barrier systemd-notify waits on')
  daemon.process.kill('SIGHUP')
  while (notify.messages.length < 3) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(notify.messages[2]!.text, /^STATUS=serving 1 snapshot\(s\) at /, 'a reload updates the status line')
  t.equal(await daemon.stop(), 0)
})

t.test('a NOTIFY_SOCKET nobody listens on: a warning, and the mount serves anyway', async (t) => {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = join(dir, 'disk.raw')
  const { writeFile } = await import('node:fs/promises')
  await writeFile(image, seededBytes(3, 4096))
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image], { NOTIFY_SOCKET: join(dir, 'nobody.sock') })
  while (!/could not tell systemd/.test(daemon.stderr())) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(daemon.stderr(), /warn: could not tell systemd --ready --status=serving 1 snapshot\(s\) at .* \(systemd-notify: .*\); under Type=notify a start then times out/)
  t.equal(await daemon.stop(), 0)
})

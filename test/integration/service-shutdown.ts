import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { lstat, mkdir, open, readdir, stat, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { isMounted, startDaemon, type Daemon } from '../fixtures/daemon.js'
import { startFaultServer, type FaultServer } from '../fixtures/fault-server.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A mountpoint in a temp folder, and a fault server serving 256 KiB of seeded bytes. */
async function setUp(t: Test, seed: number) {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const bytes = seededBytes(seed, 256 * 1024)
  const server = await startFaultServer(t, bytes)
  return { dir, mountpoint, bytes, server, socket: join(dir, 'control.sock') }
}

t.test('SIGTERM with a read in flight: new opens get EBUSY, the read finishes, then the mount goes (lazily: a file is open)', async (t) => {
  const { mountpoint, bytes, server } = await setUp(t, 11)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`])
  const path = join(mountpoint, 'disk.img')
  const file = await open(path)
  // The source holds this read's response for 1.5 s; the signal comes while it waits.
  server.plan({ kind: 'slow-headers', ms: 1500 })
  const gets = getsOf(server)
  const target = Buffer.alloc(64 * 1024)
  const reading = file.read(target, 0, target.length, 0)
  await nextGet(server, gets)
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
  const { mountpoint, server } = await setUp(t, 12)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`])
  const resident = spawn('sleep', ['60'], { cwd: mountpoint, stdio: 'ignore' })
  t.teardown(() => void resident.kill())
  t.equal(await daemon.stop('SIGTERM'), 0)
  t.match(daemon.stderr(), /was busy \(.*\); no snapshot is open; a process may have its working directory there; detached it lazily/)
  t.notOk(await isMounted(mountpoint), 'detached')
})

/** Sends `signal` once the daemon has logged `after`, so no two signals merge into one pending one. */
async function signalAfter(daemon: Daemon, after: RegExp, signal: NodeJS.Signals): Promise<void> {
  await until(() => after.test(daemon.stderr()), `${after}`)
  daemon.process.kill(signal)
}

/** The stop left nothing behind: nothing mounted, an empty directory that stats, no control socket. */
async function leftClean(t: Test, mountpoint: string, socket: string): Promise<void> {
  t.notOk(await isMounted(mountpoint), 'nothing mounted there')
  t.ok((await stat(mountpoint)).isDirectory(), 'the mountpoint stats: not a dead mount')
  t.same(await readdir(mountpoint), [], 'an empty directory again')
  await t.rejects(lstat(socket), { code: 'ENOENT' }, 'the control socket is gone')
}

/**
 * Resolves once the source has seen a GET beyond the `before` it had: the open's range probe is a
 * GET too, so "any GET" is true before the read under test has reached the daemon.
 */
async function nextGet(server: FaultServer, before: number): Promise<void> {
  await until(() => getsOf(server) > before, 'the read to reach the source')
}
const getsOf = (server: FaultServer) => server.requests.filter(({ method }) => method === 'GET').length

for (const signals of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGINT', 'SIGTERM']] as const) {
  t.test(`${signals.join(', ')} with a read in flight: the second hurries the stop, which still unmounts cleanly`, async (t) => {
    const { mountpoint, socket, server } = await setUp(t, 13)
    const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${server.url()}`, '--control-socket', socket])
    const file = await open(join(mountpoint, 'disk.img'))
    t.teardown(() => file.close().catch(() => undefined))
    // The source holds this read for 8 s; unhurried, the stop would wait for it.
    const SOURCE_HOLDS_MS = 8000
    server.plan({ kind: 'slow-headers', ms: SOURCE_HOLDS_MS })
    const gets = getsOf(server)
    const reading = file.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0)
    // Handled from now on: it may fail while the signals are still being sent.
    const readFails = t.rejects(reading, { code: 'EIO' }, 'the read in flight fails at once')
    await nextGet(server, gets)
    const exited = new Promise<number | null>((resolve) => daemon.process.once('exit', resolve))

    const [first, second, third] = signals
    daemon.process.kill(first)
    await signalAfter(daemon, new RegExp(`${first}: refusing new opens`), second)
    const hurried = Date.now()
    if (third) await signalAfter(daemon, /while stopping: hurrying/, third)
    await readFails
    t.equal(await exited, 0, 'exit 0, not killed by the signal')
    const took = Date.now() - hurried
    t.ok(took < SOURCE_HOLDS_MS / 2, `stopped ${took} ms after the second signal, without waiting for the source`)
    await leftClean(t, mountpoint, socket)
    const log = daemon.stderr()
    t.match(log, new RegExp(`warn: ${second} while stopping: hurrying: reads in flight fail now \\(EIO\\)`))
    t.match(log, /error: read \/disk\.img offset=0 length=\d+ failed \(errno 5\): read abandoned: snapmount is stopping in a hurry/)
    if (third) t.match(log, new RegExp(`warn: ${third} while stopping: already hurrying`))
    t.match(log, /detached it lazily[^]*info: unmounted\n$/, 'the file still open made the unmount lazy, and the log ends with it')
  })
}

/** A TCP server that takes connections and never says a word: a source that never answers. */
async function silentServer(t: Test): Promise<{ url: string; connected: Promise<void> }> {
  const sockets = new Set<Socket>()
  let onConnection!: () => void
  const connected = new Promise<void>((resolve) => (onConnection = resolve))
  const server = createServer((socket) => {
    sockets.add(socket)
    onConnection()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}/disk.img`, connected }
}

/** The reload's wait at a stop (RELOAD_STOP_WAIT_MS in src/cli/run-mount.ts). */
const RELOAD_WAIT_MS = 2000

for (const signals of [['SIGTERM'], ['SIGTERM', 'SIGINT']] as const) {
  const [first, second] = signals
  const hurried = second !== undefined
  const title = hurried ? `${first} then ${second}: it is abandoned at once` : `${first}: it is abandoned after 2 s`
  t.test(`a reload waiting on a source that never answers does not hold up the stop; ${title}, and the stop is clean`, async (t) => {
    const dir = await tempDir(t)
    const mountpoint = join(dir, 'mnt')
    const socket = join(dir, 'control.sock')
    await mkdir(mountpoint)
    await writeFile(join(dir, 'disk.raw'), seededBytes(14, 4096))
    const config = join(dir, 'snapmount.yaml')
    const local = '  - { name: disk, type: file, path: disk.raw }\n'
    await writeFile(config, `mountpoint: mnt\noptions: { read_timeout_ms: 14000, control_socket: ${socket} }\nsnapshots:\n${local}`)
    const daemon = await startDaemon(t, mountpoint, ['--config', config])
    const silent = await silentServer(t)
    // Its open would wait 13 s for the first answer, retries included, before failing.
    const stuck = `  - { name: stuck, type: http, url: "${silent.url}", headers_timeout_ms: 60000, read_deadline_ms: 13000 }\n`
    await writeFile(config, `mountpoint: mnt\noptions: { read_timeout_ms: 14000, control_socket: ${socket} }\nsnapshots:\n${local}${stuck}`)
    daemon.process.kill('SIGHUP')
    await silent.connected
    const exited = new Promise<number | null>((resolve) => daemon.process.once('exit', resolve))
    const stopped = Date.now()
    daemon.process.kill(first)
    if (hurried) await signalAfter(daemon, /a reload is under way/, second)
    t.equal(await exited, 0, 'exit 0')
    const took = Date.now() - stopped
    const bound = hurried ? RELOAD_WAIT_MS : RELOAD_WAIT_MS + 3000
    t.ok(took < bound, `stopped in ${took} ms: ${hurried ? 'before the reload\'s wait was up' : 'the reload\'s wait and a clean unmount'}, not the source's 13 s`)
    await leftClean(t, mountpoint, socket)
    const outcome = hurried ? 'is not waited for in a hurry' : 'did not finish within 2000 ms'
    t.match(daemon.stderr(), new RegExp(`info: ${first}: a reload is under way; waiting for it at most 2000 ms\\n[^]*warn: ${first}: the reload under way ${outcome}: abandoned; what it opens is closed as it arrives\\n`))
    t.notMatch(daemon.stderr(), /SIGHUP: reload/, 'nothing of the reload was applied, nor refused')
  })
}

t.test('a reload about to finish when the stop begins is waited for: it applies, then the stop goes on', async (t) => {
  const { dir, mountpoint, server } = await setUp(t, 16)
  const config = join(dir, 'snapmount.yaml')
  const disk = `  - { name: disk, type: http, url: "${server.url()}" }\n`
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n${disk}`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n${disk}  - { name: late, type: http, url: "${server.url('/late.img')}" }\n`)
  server.plan({ kind: 'slow-headers', ms: 500, method: 'HEAD' })
  daemon.process.kill('SIGHUP')
  await until(() => server.requests.some(({ method, path }) => method === 'HEAD' && path === '/late.img'), 'the reload to reach the source')
  t.equal(await daemon.stop('SIGTERM'), 0)
  t.match(daemon.stderr(), /SIGTERM: a reload is under way; waiting for it at most 2000 ms\n[^]*SIGHUP: reloaded: added late; removed none; replaced none; 1 unchanged\n[^]*info: unmounted\n$/)
  t.notMatch(daemon.stderr(), /abandoned/)
})

t.test('a reload abandoned by the stop that opens its sources after all: what it opened is closed, its lazy retries stopped, nothing served', async (t) => {
  const { dir, mountpoint, bytes, server } = await setUp(t, 15)
  const config = join(dir, 'snapmount.yaml')
  const disk = `  - { name: disk, type: http, url: "${server.url()}" }\n`
  await writeFile(config, `mountpoint: mnt\noptions: { read_timeout_ms: 9000 }\nsnapshots:\n${disk}`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  const file = await open(join(mountpoint, 'disk'))
  t.teardown(() => file.close().catch(() => undefined))
  // A read the source holds for 6 s keeps the stop going past the reload's wait (2 s) and
  // past the reload's own open, which the source answers after 3.5 s.
  server.plan({ kind: 'slow-headers', ms: 6000 })
  const gets = getsOf(server)
  const target = Buffer.alloc(64 * 1024)
  const reading = file.read(target, 0, target.length, 0)
  await nextGet(server, gets)
  // And a lazy one whose source is missing: the reload holds it pending, retried in the background.
  const late = `  - { name: late, type: http, url: "${server.url('/late.img')}" }\n  - { name: later, type: file, path: missing.raw, lazy: true }\n`
  await writeFile(config, `mountpoint: mnt\noptions: { read_timeout_ms: 9000 }\nsnapshots:\n${disk}${late}`)
  server.plan({ kind: 'slow-headers', ms: 3500, method: 'HEAD' })
  daemon.process.kill('SIGHUP')
  await until(() => server.requests.some(({ method, path }) => method === 'HEAD' && path === '/late.img'), 'the reload to reach the source')
  t.equal(await daemon.stop('SIGTERM'), 0)
  t.equal((await reading).bytesRead, target.length, 'the read in flight was waited for (the stop was not hurried)')
  t.ok(target.equals(bytes.subarray(0, target.length)), 'with the right bytes')
  t.match(
    daemon.stderr(),
    /the reload under way did not finish within 2000 ms: abandoned[^]*info: SIGHUP: the abandoned reload finished after all; closed the 2 snapshot\(s\) it opened\n[^]*info: unmounted\n$/,
  )
  t.notMatch(daemon.stderr(), /SIGHUP: reloaded/, 'nothing of it was served')
})

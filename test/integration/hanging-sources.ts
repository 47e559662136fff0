import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { isMounted, reloadDaemon, runCli, startDaemon, until } from '../fixtures/daemon.js'
import { mountHangingFs } from '../fixtures/hanging-fs.js'
import { makeRandomImage } from '../fixtures/images.js'
import { readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'

// Issue 14 item 2: no source can hang the daemon. A FIFO is refused by its stat before anything
// opens it; a path whose open never answers (a hung network file system, played by a FUSE file
// system of the test's own) is given up on at the open deadline (read_timeout_ms), at start and
// on reload, and the daemon still stops on SIGTERM afterwards.

const MiB = 1024 * 1024
/**
 * The open deadline the tests set (read_timeout_ms), and what a refusal may take beyond it on a
 * loaded machine (a CLI start alone can take seconds); a hang meets runCli's 20 s cap instead.
 */
const DEADLINE_MS = 1000
const SLACK_MS = 8000

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = await makeRandomImage(dir, 'good.raw', MiB, 1)
  const fifo = join(dir, 'pipe.raw')
  await promisify(execFile)('mkfifo', [fifo])
  const config = join(dir, 'snapmount.yaml')
  const write = (snapshots: string[]) =>
    writeFile(config, `mountpoint: mnt\noptions: { read_timeout_ms: ${DEADLINE_MS} }\nsnapshots:\n${snapshots.map((s) => `  - ${s}\n`).join('')}`)
  return { dir, mountpoint, image, fifo, config, write }
}

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const started = Date.now()
  const result = await work
  return [result, Date.now() - started]
}

const reload = reloadDaemon

for (const type of ['file', 'mmap'] as const) {
  t.test(`a FIFO as a ${type} source: check and mount refuse it at once (exit 2), naming it`, async (t) => {
    const { mountpoint, fifo, config, write } = await setUp(t)
    await write([`{ name: pipe, type: ${type}, path: pipe.raw }`])
    const refusal = new RegExp(`source ${fifo} is not a regular file \\(a FIFO\\); give the path of a raw image file`)
    const [checked, checkMs] = await timed(runCli(['check', '--config', config]))
    t.equal(checked.code, 2, checked.stderr)
    t.match(checked.stderr, refusal)
    t.ok(checkMs < SLACK_MS, `check answered in ${checkMs} ms`)
    const [mounted, mountMs] = await timed(runCli(['mount', '--config', config]))
    t.equal(mounted.code, 2, mounted.stderr)
    t.match(mounted.stderr, refusal)
    t.ok(mountMs < SLACK_MS, `mount answered in ${mountMs} ms`)
    t.notOk(await isMounted(mountpoint), 'nothing mounted')
  })
}

t.test('a source whose open never answers: check and mount give up at the deadline (exit 2) and say why', async (t) => {
  const { mountpoint, config, write } = await setUp(t)
  const hung = await mountHangingFs(t)
  await write([`{ name: good, type: file, path: good.raw }`, `{ name: hung, type: file, path: ${hung.path} }`])
  const refusal = new RegExp(`opening source ${hung.path} took longer than 1 s \\(hung network file system\\?\\); check the file system it is on`)
  for (const command of ['check', 'mount']) {
    const [result, ms] = await timed(runCli([command, '--config', config]))
    t.equal(result.code, 2, `${command}: ${result.stderr}`)
    t.match(result.stderr, refusal, command)
    t.ok(ms >= DEADLINE_MS && ms < DEADLINE_MS + SLACK_MS, `${command} gave up in ${ms} ms`)
  }
  t.ok(hung.opens() >= 2, 'the opens did reach the hung file system')
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
})

t.test('a lazy source whose open never answers is listed and retried; the others are served', async (t) => {
  const { mountpoint, image, config, write } = await setUp(t)
  const hung = await mountHangingFs(t)
  await write([`{ name: good, type: file, path: good.raw }`, `{ name: hung, type: mmap, path: ${hung.path}, lazy: true }`])
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.match(daemon.stderr(), /warn: hung: source cannot be opened: opening source .* took longer than 1 s \(hung network file system\?\); listed anyway \(lazy\)/)
  t.ok((await readRange(join(mountpoint, 'good'), 0, MiB)).equals(await readFile(image)), 'the good one is served')
  await until(() => /hung: source still cannot be opened \(attempt 2\): opening source .* took longer than 1 s/.test(daemon.stderr()), 'a retry')
  t.equal(await daemon.stop(), 0, 'and SIGTERM stops the daemon')
})

t.test('a reload that adds a FIFO or a hung source is refused; the daemon keeps serving and stops on SIGTERM', async (t) => {
  const { mountpoint, image, fifo, config, write } = await setUp(t)
  const hung = await mountHangingFs(t)
  await write([`{ name: good, type: file, path: good.raw }`])
  const daemon = await startDaemon(t, mountpoint, ['--config', config])

  await write([`{ name: good, type: file, path: good.raw }`, `{ name: pipe, type: file, path: pipe.raw }`])
  t.match(await reload(daemon), new RegExp(`error: SIGHUP: reload refused, nothing changed: source ${fifo} is not a regular file \\(a FIFO\\)`))
  await write([`{ name: good, type: file, path: good.raw }`, `{ name: hung, type: mmap, path: ${hung.path} }`])
  const [said, ms] = await timed(reload(daemon))
  t.match(said, /error: SIGHUP: reload refused, nothing changed: opening source .* took longer than 1 s \(hung network file system\?\)/)
  t.ok(ms < DEADLINE_MS + SLACK_MS, `refused in ${ms} ms`)
  t.ok((await readRange(join(mountpoint, 'good'), 0, MiB)).equals(await readFile(image)), 'still serving')
  const [code, stopMs] = await timed(daemon.stop())
  t.equal(code, 0, 'SIGTERM stops it cleanly')
  t.ok(stopMs < SLACK_MS, `in ${stopMs} ms`)
  t.notOk(await isMounted(mountpoint), 'and unmounts')
})

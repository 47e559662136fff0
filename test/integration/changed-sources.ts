import t, { type Test } from 'tap'
import { constants } from 'node:fs'
import { mkdir, open, readFile, rename, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { reloadDaemon, runCli, startDaemon, until, type Daemon } from '../fixtures/daemon.js'
import { makeRandomImage, readSource } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'
import type { StatusReport } from '../../src/control/protocol.js'

// Issue 14 item 5: a local source changed under a live mount is never served as new bytes or
// zeros: its reads fail EIO, the log says what changed, status shows it, and a reload opens it
// again. A file renamed over the path is no change: the old file is still read.

const MiB = 1024 * 1024
const SIZE = 4 * MiB
const TYPES = ['file', 'mmap'] as const

async function setUp(t: Test, type: (typeof TYPES)[number]) {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const source = await makeRandomImage(dir, 'disk.raw', SIZE, 1)
  const original = await readFile(source)
  const socket = join(dir, 'control.sock')
  const config = join(dir, 'snapmount.yaml')
  await writeFile(config, `mountpoint: mnt\noptions: { control_socket: ${socket} }\nsnapshots:\n  - { name: disk, type: ${type}, path: disk.raw }\n`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  return { dir, source, original, socket, disk: join(mountpoint, 'disk'), daemon }
}

/** Reads through one O_DIRECT open, so the read reaches the daemon and not the kernel's page cache. */
const directRead = (path: string, offset: number, length: number) => readSource(path, offset, length, constants.O_RDONLY | constants.O_DIRECT)

/** The daemon's one log line about the change, once it has come. */
async function changeLogged(t: Test, daemon: Daemon, source: string, detail: RegExp): Promise<void> {
  const said = `disk: source ${source} changed since it was opened`
  await until(() => daemon.stderr().includes(said), 'the log line')
  const lines = daemon.stderr().split('\n').filter((line) => line.includes(said))
  t.equal(lines.length, 1, 'one log line for the change (and one per failed read, naming its code)')
  t.match(lines[0], new RegExp(`error: disk: source ${source} changed since it was opened \\(${detail.source}\\); a reload \\(SIGHUP\\) opens it again; until then its reads fail \\(EIO\\)`))
}

async function status(socket: string): Promise<StatusReport> {
  const result = await runCli(['status', '--socket', socket, '--json'])
  return JSON.parse(result.stdout) as StatusReport
}

for (const type of TYPES) {
  t.test(`${type}: rewritten in place under a live mount: EIO at once, one log line, status says so, a reload serves the new bytes`, async (t) => {
    const { source, original, socket, disk, daemon } = await setUp(t, type)
    t.ok((await directRead(disk, 0, MiB)).equals(original.subarray(0, MiB)), 'served before')
    const rewritten = seededBytes(7, MiB)
    const writer = await open(source, 'r+')
    await writer.write(rewritten, 0, MiB, 2 * MiB)
    await writer.close()
    // At once, without waiting for the log: never the new bytes.
    await t.rejects(directRead(disk, 2 * MiB, MiB), { code: 'EIO' }, 'the rewritten range fails')
    await t.rejects(directRead(disk, 0, MiB), { code: 'EIO' }, 'and so does every other')
    await t.rejects(readFile(disk), { code: 'EIO' }, 'through the page cache too, for a range not in it')
    await changeLogged(t, daemon, source, /mtime [-0-9T:.]+Z -> [-0-9T:.]+Z/)
    t.match((await status(socket)).snapshots[0]!.source, /changed since it was opened: mtime .*; reads fail until a reload/, 'status shows it')

    t.match(await reloadDaemon(daemon), /reloaded: added none; removed none; replaced disk; 0 unchanged/, 'a reload opens it again')
    const now = await readFile(source)
    t.ok((await directRead(disk, 2 * MiB, MiB)).equals(now.subarray(2 * MiB, 3 * MiB)), 'and serves the new bytes')
    t.equal((await status(socket)).snapshots[0]!.source, source, 'status: the path alone again')
    t.equal(await daemon.stop(), 0)
  })

  t.test(`${type}: truncated and regrown under a live mount: EIO, never zeros`, async (t) => {
    const { source, disk, daemon } = await setUp(t, type)
    const before = await directRead(disk, MiB, MiB)
    t.equal(before.length, MiB, 'served before')
    await truncate(source, 0)
    await truncate(source, SIZE)
    await t.rejects(directRead(disk, MiB, MiB), { code: 'EIO' }, 'not the zeros now there')
    await t.rejects(directRead(disk, 3 * MiB, 4096), { code: 'EIO' })
    // The size seen depends on whether inotify's first report came before the regrowth.
    await changeLogged(t, daemon, source, new RegExp(`(size ${SIZE} -> 0 bytes, )?mtime [-0-9T:.]+Z -> [-0-9T:.]+Z`))
    t.equal(await daemon.stop(), 0)
  })

  t.test(`${type}: a file renamed over the path is no change: the opened file is still served`, async (t) => {
    const { dir, source, original, disk, daemon } = await setUp(t, type)
    const replacement = join(dir, 'disk.raw.new')
    await writeFile(replacement, seededBytes(9, SIZE))
    await rename(replacement, source)
    t.ok((await directRead(disk, MiB, MiB)).equals(original.subarray(MiB, 2 * MiB)), 'the old bytes, at once')
    // Past a periodic check of the descriptor (source-pin.ts, every second).
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.ok((await directRead(disk, 3 * MiB, MiB)).equals(original.subarray(3 * MiB)), 'and later')
    t.notMatch(daemon.stderr(), /changed since it was opened/, 'nothing logged')
    t.equal(await daemon.stop(), 0)
  })
}

/**
 * Reads 1 MiB ranges of `path` through its own O_DIRECT handles in a loop, `readers` at once,
 * until stopped; counts the reads that returned `source`'s bytes, failed, or returned others.
 */
function readInLoops(path: string, source: Buffer, readers: number) {
  let stopped = false
  const counts = { good: 0, failed: 0, wrong: 0 }
  const loops = Array.from({ length: readers }, async (_, reader) => {
    for (let i = reader; !stopped; i++) {
      const offset = (i % (source.length / MiB)) * MiB
      try {
        const bytes = await directRead(path, offset, MiB)
        if (bytes.equals(source.subarray(offset, offset + MiB))) counts.good++
        else counts.wrong++
      } catch {
        counts.failed++
      }
    }
  })
  return {
    counts,
    async stop() {
      stopped = true
      await Promise.all(loops)
      return counts
    },
  }
}

t.test('mmap: truncated to 0 while readers read from the map: EIO, never a SIGBUS that kills the daemon', async (t) => {
  // Each round truncates a fresh daemon's source while four readers copy out of its map: on main
  // before the guard, a copy caught mid-way by the truncation took the daemon down with SIGBUS.
  for (let round = 0; round < 3; round++) {
    const { source, original, disk, daemon } = await setUp(t, 'mmap')
    const readers = readInLoops(disk, original, 4)
    await until(() => readers.counts.good >= 20, 'reads from the map')
    await truncate(source, 0)
    const failedBefore = readers.counts.failed
    await until(() => readers.counts.failed >= failedBefore + 20, 'reads to fail')
    const { good, failed, wrong } = await readers.stop()
    t.equal(wrong, 0, `round ${round}: no read returned other bytes (${good} good, ${failed} failed)`)
    t.equal(daemon.process.exitCode, null, 'the daemon is alive')
    t.equal(daemon.process.signalCode, null, 'not killed by a signal')
    t.equal(await daemon.stop(), 0, 'and stops cleanly')
  }
})

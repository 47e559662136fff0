import t from 'tap'
import { spawn } from 'node:child_process'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import type { Nginx } from '../fixtures/nginx.js'
import { seededRandom } from '../fixtures/test-data.js'
import { diskCacheSite, fileSha256 as sha256 } from '../fixtures/disk-cache-site.js'

const MiB = 2 ** 20
const BLOCK = 128 * 1024

/** Ranged GETs nginx logged: the blocks each asked for, and the body bytes it sent. */
async function rangedGets(nginx: Nginx): Promise<Array<{ first: number; end: number; bytes: number }>> {
  return (await nginx.accessLog())
    .split('\n')
    .map((line) => /range="bytes=(\d+)-(\d+)" .* 206 (\d+)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ first: Math.floor(Number(match[1]) / BLOCK), end: Math.floor(Number(match[2]) / BLOCK) + 1, bytes: Number(match[3]) }))
}

/** Waits until nginx's log has stopped growing for 200 ms. */
async function settled(nginx: Nginx): Promise<void> {
  let seen = ''
  for (;;) {
    const now = await nginx.accessLog()
    if (now === seen) return
    seen = now
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Blocks the index had committed when the daemon died: the blocks completed before the kill. */
function committedBlocks(cacheDir: string): number[] {
  const db = new Database(join(cacheDir, 'index.sqlite'))
  try {
    return db.prepare<[], { block: number }>('SELECT block FROM blocks').all().map((row) => row.block)
  } finally {
    db.close()
  }
}

/**
 * kill -9 at random points of a fill, then a restart: the image still hashes right, and at least
 * 99 % of the blocks completed (committed to the index) before the kill are not fetched again.
 * (Blocks fetched and not yet written are lost with the process; the bench reports those bytes.)
 */
t.test('kill -9 during a fill: a restart reuses the blocks completed before it', async (t) => {
  const size = 40 * MiB + 999
  const { cacheDir, mountpoint, mounted, image, nginx } = await diskCacheSite(t, size, 41)
  const expected = await sha256(image)
  const args = ['--cache-dir', cacheDir, '--cache-size-mib', '64', mountpoint, nginx.url('/disk.raw')]
  const random = seededRandom(5)

  let completed: number[] = []
  for (let round = 0; round < 4; round++) {
    const daemon = await startDaemon(t, mountpoint, args)
    const logged = (await rangedGets(nginx)).length
    if (round === 3) {
      t.equal(await sha256(mounted), expected, 'after three kills the whole image hashes right')
    } else {
      // A slow sequential reader, so the kill lands inside the fill: 1 MiB per read.
      const reader = spawn('dd', [`if=${mounted}`, 'of=/dev/null', 'bs=1M'], { stdio: 'ignore' })
      let readerExited = false
      const readerDone = new Promise((resolve) => reader.once('exit', resolve)).then(() => (readerExited = true))
      const fetchedBefore = (await rangedGets(nginx)).reduce((sum, get) => sum + get.bytes, 0)
      const killAfter = (0.1 + 0.15 * random()) * size
      // And not before the index has had a few commits (every 20 ms): a fill on loopback may pass
      // killAfter in less, and a kill before the first commit leaves nothing to judge reuse by.
      const earliest = Date.now() + 100
      for (;;) {
        const fetched = (await rangedGets(nginx)).reduce((sum, get) => sum + get.bytes, 0) - fetchedBefore
        // A reader done first (what earlier rounds left to fetch was less than killAfter): the kill
        // lands after the fill, which the next round judges the same way.
        if ((fetched >= killAfter && Date.now() >= earliest) || readerExited) break
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      daemon.process.kill('SIGKILL')
      await readerDone
    }
    const gets = (await rangedGets(nginx)).slice(logged)
    if (round > 0) {
      const refetched = new Set(gets.flatMap(({ first, end }) => Array.from({ length: end - first }, (_, i) => first + i)))
      const lost = completed.filter((block) => refetched.has(block)).length
      t.ok(completed.length > 0 && lost <= 0.01 * completed.length, `round ${round}: ${lost} of ${completed.length} completed blocks fetched again`)
    }
    if (round < 3) {
      await new Promise((resolve) => daemon.process.exitCode !== null || daemon.process.signalCode !== null ? resolve(null) : daemon.process.once('exit', resolve))
      completed = committedBlocks(cacheDir)
      // nginx logs a request cut off by the kill once it notices: before the next round's count.
      await settled(nginx)
    } else {
      t.equal(await daemon.stop(), 0, 'stopped')
    }
  }
})

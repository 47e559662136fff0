// Records the reads a Debian guest's boot makes of its image, through a snapmount HTTP mount
// (nginx on loopback, no delay; QEMU cache=none, so each read reaches the daemon as the guest's
// block layer issued it), and writes them as a trace file (lib/boot-trace.mjs's format).
//
//   npm run build && node bench/record-boot-trace.mjs [OUT]   (default test/fixtures/linux-boot-trace.txt)
//
// test/cache/boot-trace-replay.ts replays that file through the cache and readahead. Record it
// again when the guest image's recipe (scripts/build-guest-image) changes.

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { bootGuest, chooseAccel, ensureGuestImage } from '../tools/linux-guest.mjs'
import { startNginx } from '../tools/nginx.mjs'
import { formatSummary, formatTrace, summarizeReads } from './lib/boot-trace.mjs'
import { ROOT, SNAPMOUNT } from './lib/settings.mjs'

const out = process.argv[2] ?? join(ROOT, 'test/fixtures/linux-boot-trace.txt')
const { accel, reason } = await chooseAccel()
if (!accel) throw new Error(`cannot boot the guest: ${reason}`)
const image = await ensureGuestImage({ onBuild: (path) => console.error(`building ${path}`) })
const dir = await mkdtemp(join(tmpdir(), 'snapmount-trace-'))
const www = join(dir, 'www')
const mnt = join(dir, 'mnt')
await mkdir(www)
await mkdir(mnt)
await symlink(image, join(www, 'guest.raw'))
const nginx = await startNginx(www)
const daemon = spawn(SNAPMOUNT, ['mount', mnt, `guest.raw=${nginx.url('/guest.raw')}`], { stdio: ['ignore', 'ignore', 'pipe'] })
try {
  await new Promise((resolve, reject) => {
    let log = ''
    daemon.stderr.on('data', (chunk) => {
      log += chunk
      if (/\bmounted\b/.test(log)) resolve()
    })
    daemon.once('close', (code) => reject(new Error(`snapmount exited ${code} before mounting:\n${log}`)))
  })
  const load = loadavg()[0]
  const boot = await bootGuest(join(mnt, 'guest.raw'), { accel, cache: 'none', traceReads: true })
  const stat = summarizeReads(boot.reads, 4 * 2 ** 30)
  const header = [
    `The reads a Debian guest's boot made of its image, until its ready marker (bench/record-boot-trace.mjs).`,
    `image ${basename(image)}; QEMU ${accel}, cache=none, snapshot=on, virtio-blk; through a snapmount HTTP mount (nginx, loopback)`,
    `recorded ${new Date().toISOString()}, load ${load.toFixed(2)}; marker ${(boot.readyMs / 1000).toFixed(1)} s after QEMU's start`,
    `columns: ms from QEMU's start, offset, length (bytes)`,
  ]
  await writeFile(out, formatTrace(boot.reads, header))
  console.log(`${out}:\n${formatSummary(stat).join('\n')}`)
} finally {
  daemon.kill('SIGTERM')
  await new Promise((resolve) => (daemon.exitCode !== null ? resolve() : daemon.once('close', resolve)))
  await nginx.stop()
  await rm(dir, { recursive: true, force: true })
}

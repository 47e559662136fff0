import t, { type Test } from 'tap'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { diskCacheSite } from '../fixtures/disk-cache-site.js'
import { ddRange } from '../fixtures/readers.js'
import { parseProfile, type BootProfile } from '../../src/profile/format.js'
import { profileFileName } from '../../src/profile/identity.js'
import { cachedProfilePath } from '../../src/profile/cache-path.js'
import type { StatusReport } from '../../src/control/protocol.js'

// Issue 19, recording: a boot profile lists the blocks the mount's readers read, in the order
// they first read them, recorded through a real mount of an nginx-served image: by hand with the
// control socket, and by itself where the profile to replay is absent.

const MiB = 2 ** 20
const KiB = 1024
/** The cache block (--cache-block-kib 64): the profile's block. */
const BLOCK = 64 * KiB
const SIZE = 8 * MiB + 4321

/** Reads through O_DIRECT, so each read reaches the daemon as it is made (no page cache, no kernel readahead). */
async function readBlocks(mounted: string): Promise<void> {
  await ddRange(mounted, 20 * BLOCK, BLOCK, { direct: true, blockSize: BLOCK }) // block 20
  await ddRange(mounted, 3 * BLOCK + 8 * KiB, 4 * KiB, { direct: true, blockSize: 4 * KiB }) // inside block 3
  await ddRange(mounted, 40 * BLOCK, 2 * BLOCK, { direct: true, blockSize: 2 * BLOCK }) // blocks 40-41, one read
  await ddRange(mounted, 20 * BLOCK, 4 * KiB, { direct: true, blockSize: 4 * KiB }) // block 20 again: a cache hit, nothing new
}

/** The runs without their times; the times must only grow. */
function blocksOf(t: Test, profile: BootProfile): Array<[number, number]> {
  const times = profile.runs.map(({ atMs }) => atMs)
  t.same(times, [...times].sort((a, b) => a - b), `times in order: ${times.join(', ')}`)
  t.equal(profile.runs[0]?.atMs, 0, 'timed from the first read')
  return profile.runs.map(({ firstBlock, blockCount }) => [firstBlock, blockCount])
}

t.test('profile record and stop through a real mount: the blocks read, in order of first touch', async (t) => {
  const { dir, mountpoint, mounted, nginx } = await diskCacheSite(t, SIZE, 41)
  const socket = join(dir, 'ctl.sock')
  const daemon = await startDaemon(t, mountpoint, ['--control-socket', socket, '--cache-block-kib', '64', mountpoint, nginx.url('/disk.raw')])
  const output = join(dir, 'profiles', 'disk.profile.json')
  const cli = (...args: string[]) => runCli([...args, '--socket', socket])

  const refused = await cli('profile', 'record', 'disk.raw')
  t.equal(refused.code, 2, 'no --output and no place of its own: exit 2')
  t.match(refused.stderr, /no place to write disk\.raw's profile: it has no prefetch_profile path and the daemon no cache_dir; give one: snapmount profile record disk\.raw --output FILE/)
  const unknown = await cli('profile', 'record', 'nope', '-o', output)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /no snapshot named "nope" is mounted; use one of: disk\.raw/)

  await ddRange(mounted, 60 * BLOCK, BLOCK, { direct: true, blockSize: BLOCK }) // before the recording: not in it
  const started = await runCli(['profile', 'record', 'disk.raw', '--socket', socket, '--output', join('profiles', 'disk.profile.json')], { cwd: dir }) // relative to where the CLI runs
  t.equal(started.code, 0, started.stderr)
  t.equal(started.stdout, `recording disk.raw's boot profile to ${output}; written at snapmount profile stop disk.raw, once no new block is read for 60 s, or at unmount\n`)
  const again = await cli('profile', 'record', 'disk.raw', '-o', output)
  t.equal(again.code, 2)
  t.match(again.stderr, /disk\.raw is already being recorded, to .*disk\.profile\.json; stop that first: snapmount profile stop disk\.raw/)

  await readBlocks(mounted)
  const status = JSON.parse((await cli('status', '--json')).stdout) as StatusReport
  t.match(status.snapshots[0]?.profileRecording, { path: output, automatic: false, blocks: 4, runs: 3, bytes: 4 * BLOCK, full: false })
  t.match((await cli('status')).stdout, /disk\.raw: recording a boot profile \(by request\) to .*: 4 blocks, 256\.0 KiB so far/)

  const stopped = await cli('profile', 'stop', 'disk.raw')
  t.equal(stopped.code, 0, stopped.stderr)
  t.match(stopped.stdout, new RegExp(`^wrote disk\\.raw's boot profile to ${output}: 3 runs, 4 blocks, 256\\.0 KiB, read over \\d+\\.\\d s\\n$`))
  t.match(daemon.stderr(), /disk\.raw: boot profile written to .*disk\.profile\.json: 3 runs, 4 blocks, 0\.3 MiB, over .* s \(stopped\)/)
  const profile = parseProfile(await readFile(output, 'utf8'), output)
  t.same(blocksOf(t, profile), [
    [20, 1],
    [3, 1],
    [40, 2],
  ])
  t.equal(profile.blockBytes, BLOCK, 'in the cache\'s blocks')
  t.equal(profile.identity.bytes, SIZE)
  t.match(profile.identity.validator, /^"[0-9a-f]+-[0-9a-f]+"$/, 'named by the ETag nginx gives it')
  t.equal((await stat(output)).mode & 0o777, 0o600, 'owner-only')

  const notRecording = await cli('profile', 'stop', 'disk.raw')
  t.equal(notRecording.code, 2)
  t.match(notRecording.stderr, /disk\.raw is not being recorded; start a recording with snapmount profile record disk\.raw/)
  t.equal(await daemon.stop(), 0)
})

t.test('automatic: a prefetch_profile path that is absent is recorded from the first read, and written at unmount', async (t) => {
  const { dir, mountpoint, mounted, nginx } = await diskCacheSite(t, SIZE, 42)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    ['mountpoint: mnt', `options: { cache_block_kib: 64, control_socket: ${join(dir, 'ctl.sock')} }`, 'snapshots:', `  - { name: disk.raw, type: http, url: "${nginx.url('/disk.raw')}", prefetch_profile: disk.profile.json }`, ''].join('\n'),
  )
  const path = join(dir, 'disk.profile.json')
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.match(daemon.stderr(), /disk\.raw: no boot profile at .*disk\.profile\.json: recording one from the first read, written once no new block is read for 60 s/)
  await readBlocks(mounted)
  const status = JSON.parse((await runCli(['status', '--json', '--config', config])).stdout) as StatusReport
  t.match(status.snapshots[0]?.profileRecording, { path, automatic: true, blocks: 4 })
  t.equal(await daemon.stop(), 0)
  t.match(daemon.stderr(), /boot profile written to .*disk\.profile\.json: 3 runs, 4 blocks, .*\(the snapshot closed\)/)
  t.same(blocksOf(t, parseProfile(await readFile(path, 'utf8'), path)), [
    [20, 1],
    [3, 1],
    [40, 2],
  ])

  // The next start finds it: nothing recorded (what replays it is the prefetcher's part).
  const next = await startDaemon(t, mountpoint, ['--config', config])
  await ddRange(mounted, 0, BLOCK, { direct: true, blockSize: BLOCK })
  t.notMatch(next.stderr(), /recording one/)
  t.notOk((JSON.parse((await runCli(['status', '--json', '--config', config])).stdout) as StatusReport).snapshots[0]?.profileRecording)
  t.equal(await next.stop(), 0)
  t.same(blocksOf(t, parseProfile(await readFile(path, 'utf8'), path)).length, 3, 'left as it was')
})

t.test('automatic with the disk cache: recorded into <cache_dir>/profiles under the image\'s identity', async (t) => {
  const { dir, cacheDir, mountpoint, mounted, nginx } = await diskCacheSite(t, SIZE, 43)
  const daemon = await startDaemon(t, mountpoint, ['--control-socket', join(dir, 'ctl.sock'), '--cache-dir', cacheDir, '--cache-block-kib', '64', mountpoint, nginx.url('/disk.raw')])
  await readBlocks(mounted)
  t.equal(await daemon.stop(), 0)
  const files = await readdir(join(cacheDir, 'profiles'))
  t.equal(files.length, 1)
  const path = join(cacheDir, 'profiles', files[0]!)
  const profile = parseProfile(await readFile(path, 'utf8'), path)
  t.equal(files[0], profileFileName(profile.identity), 'named for the identity it names')
  t.equal(cachedProfilePath(cacheDir, profile.identity), path, 'where the next cold start looks')
  t.same(blocksOf(t, profile), [
    [20, 1],
    [3, 1],
    [40, 2],
  ])
  t.equal((await stat(join(cacheDir, 'profiles'))).mode & 0o777, 0o700, 'the folder owner-only')
})

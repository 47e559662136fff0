import t from 'tap'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, startDaemon, until } from '../fixtures/daemon.js'
import { startNginx } from '../fixtures/nginx.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { openBackend } from '../../src/backend/open-backend.js'
import { validateConfig } from '../../src/config/validate-config.js'
import type { SnapshotStatus, StatusReport } from '../../src/control/protocol.js'
import { encodeProfile, type BootProfile } from '../../src/profile/format.js'

/**
 * A boot profile replayed through a real mount of an image on nginx: the profile, beside the image
 * on the same server, names scattered blocks (the short last one too); the daemon prefetches them at
 * open, so each is cached before the test reads it, and every byte read is the image's. A second
 * snapshot of the same image, given a profile recorded from another image, is mounted and read
 * all the same, with one warning.
 */

const KiB = 1024
const BLOCK = 128 * KiB
const SIZE = 24 * 1024 * KiB + 3333
const LAST = Math.ceil(SIZE / BLOCK) - 1
/** Runs of `[first block, count]`, in the order a boot might first touch them. */
const RUNS: Array<[number, number]> = [[0, 2], [100, 3], [7, 1], [150, 4], [LAST, 1], [40, 1]]
const LISTED = RUNS.flatMap(([first, count]) => Array.from({ length: count }, (_, i) => first + i))

t.test('a profile beside the image: its blocks are cached before they are read, the bytes are the image\'s; a wrong profile is a warning', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.img', SIZE, 19)
  const bytes = await readFile(image)
  const nginx = await startNginx(t, dir)
  const url = `${nginx.origin}/disk.img`

  // The identity the daemon will check the profile against: the image's strong ETag on nginx.
  const quiet = { info: () => {}, warn: () => {}, error: () => {} }
  const spec = validateConfig({ mountpoint: '/mnt', snapshots: [{ type: 'http', name: 'd', url }] }, { origin: 'test', baseDir: '/', defaults: mountOptions() }).snapshots[0]!
  const source = await openBackend(spec, { env: {}, logger: quiet })
  const validator = source.identity!()!.validator
  await source.close()
  const profile: BootProfile = {
    identity: { bytes: SIZE, validator },
    blockBytes: BLOCK,
    recordedAt: new Date(Date.now() - 3_600_000),
    runs: RUNS.map(([firstBlock, blockCount], i) => ({ firstBlock, blockCount, atMs: 10 * i })),
  }
  await writeFile(join(dir, 'disk.img.profile.json'), encodeProfile(profile))
  await writeFile(join(dir, 'other.profile.json'), encodeProfile({ ...profile, identity: { bytes: SIZE, validator: '"another-image"' } }))

  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const socket = join(dir, 'ctl.sock')
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    [
      'mountpoint: mnt',
      `options: { control_socket: ${socket} }`,
      'snapshots:',
      `  - { name: disk.img, type: http, url: ${url}, prefetch_profile: ${nginx.origin}/disk.img.profile.json }`,
      `  - { name: wrong.img, type: http, url: ${url}, prefetch_profile: other.profile.json }`,
      '',
    ].join('\n'),
  )
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  const status = async () => (JSON.parse((await runCli(['status', '--json', '--socket', socket])).stdout) as StatusReport).snapshots
  const of = (snapshots: SnapshotStatus[], name: string) => snapshots.find((s) => s.name === name)!
  await until(async () => of(await status(), 'disk.img').prefetch?.state === 'done', 'the prefetch is done')

  const before = of(await status(), 'disk.img')
  t.match(before.prefetch, { state: 'done', profile: `${nginx.origin}/disk.img.profile.json`, profileBytes: (LISTED.length - 1) * BLOCK + (SIZE - LAST * BLOCK), hitBlocks: 0, failures: 0 })
  t.equal(before.prefetch!.prefetchedBytes, before.prefetch!.profileBytes, 'every listed block prefetched')
  t.ok(before.prefetch!.ageSeconds! >= 3600, 'the profile\'s age')
  t.ok(before.cachedBytes! >= before.prefetch!.profileBytes, 'in the block cache before any read')

  // Each listed block read on its own, in another order than the profile's.
  const handle = await open(join(mountpoint, 'disk.img'), 'r')
  try {
    for (const block of [...LISTED].reverse()) {
      const length = Math.min(BLOCK, SIZE - block * BLOCK)
      const { buffer } = await handle.read(Buffer.alloc(length), 0, length, block * BLOCK)
      if (!buffer.equals(bytes.subarray(block * BLOCK, block * BLOCK + length))) t.fail(`block ${block}`)
    }
  } finally {
    await handle.close()
  }
  const after = of(await status(), 'disk.img')
  t.equal(after.prefetch!.hitBlocks, LISTED.length, 'every listed block was a hit: cached before it was read')
  t.equal(after.prefetch!.wastedBytes, 0)

  t.ok((await readFile(join(mountpoint, 'disk.img'))).equals(bytes), 'the whole image reads back exact')
  t.ok((await readFile(join(mountpoint, 'wrong.img'))).equals(bytes), 'so does the snapshot given a wrong profile')
  t.match(of(await status(), 'wrong.img').prefetch, { state: 'unused', prefetchedBytes: 0 })
  t.match(daemon.stderr(), /wrong\.img: prefetch profile .*other\.profile\.json not used: it was recorded from "another-image", this image is /)
  const text = await runCli(['status', '--socket', socket])
  t.match(text.stdout, /\ndisk\.img: prefetch done: [\d.]+ MiB of the profile's [\d.]+ MiB prefetched \(100\.0 % read since\), 12 blocks hit, 0 bytes wasted/)
  t.equal(await daemon.stop(), 0)
})

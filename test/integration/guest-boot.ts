import t, { type Test } from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BOOT_BAD, BOOT_OK, FAR_LAYOUT, NEAR_LAYOUT, makeBootImage, type BootImage } from '../fixtures/boot-image.js'
import { startDaemon } from '../fixtures/daemon.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { GiB } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'
import { boot } from '../fixtures/qemu.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * A guest boots from a snapshot served by snapmount: QEMU (TCG, SeaBIOS) boots a raw image
 * straight from the mount, read-only on virtio-blk, once with cache=none (O_DIRECT opens) and
 * once with QEMU's default cache. The boot sector reads sectors far apart through BIOS int 13h
 * (past 4 GiB for file, mmap and HTTP), hashes them and prints the result on the serial port
 * (test/fixtures/boot-image.ts). The same image with one byte flipped must print BAD.
 */

// The daemon of the S3 test inherits these; fauxqs accepts any credentials.
Object.assign(process.env, FAUX_S3_ENV)

/** Boots `good` both ways and `bad` once, all from the mount, and checks what the guest said. */
function bootsFrom(t: Test, good: { mounted: string; image: BootImage }, bad: string): void {
  for (const cache of ['none', 'writeback'] as const) {
    t.test(`boots with cache=${cache}`, async (t) => {
      // cache=writeback is QEMU's default; it is spelled out so the test says what it runs.
      const result = await boot(`file=${good.mounted},format=raw,readonly=on,if=virtio,cache=${cache}`)
      t.comment(`booted in ${result.ms} ms`)
      t.match(result.serial, BOOT_OK, `the guest says OK\n${result.serial}${result.stderr}`)
      t.equal(BOOT_OK.exec(result.serial)?.[1], good.image.checksum, 'with the hash of the source')
      t.equal(result.code, 1, 'and QEMU exits through isa-debug-exit with the guest\'s OK (1)')
    })
  }
  t.test('a corrupted copy boots and says BAD', async (t) => {
    const result = await boot(`file=${bad},format=raw,readonly=on,if=virtio,cache=none`)
    t.match(result.serial, BOOT_BAD, `the guest says BAD\n${result.serial}${result.stderr}`)
    t.notMatch(result.serial, BOOT_OK, 'and never OK')
    t.equal(result.code, 3, 'and exits with the guest\'s BAD (3)')
  })
}

t.test('file and mmap snapshots', async (t) => {
  const dir = await tempDir(t)
  const image = await makeBootImage(dir, 'disk.img', FAR_LAYOUT)
  const bad = await makeBootImage(dir, 'bad.img', FAR_LAYOUT, { corrupt: true })
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [
    mountpoint,
    `disk.img=file://${image.path}`,
    `mapped.img=mmap://${image.path}`,
    `bad.img=file://${bad.path}`,
    `bad-mapped.img=mmap://${bad.path}`,
  ])
  t.teardown(() => daemon.stop())
  t.test('file', async (t) => bootsFrom(t, { mounted: join(mountpoint, 'disk.img'), image }, join(mountpoint, 'bad.img')))
  t.test('mmap', async (t) => bootsFrom(t, { mounted: join(mountpoint, 'mapped.img'), image }, join(mountpoint, 'bad-mapped.img')))
})

t.test('http snapshot served by nginx', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const image = await makeBootImage(www, 'disk.img', FAR_LAYOUT)
  await makeBootImage(www, 'bad.img', FAR_LAYOUT, { corrupt: true })
  const nginx = await startNginx(t, www)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, nginx.url('/disk.img'), nginx.url('/bad.img')])
  t.teardown(() => daemon.stop())
  bootsFrom(t, { mounted: join(mountpoint, 'disk.img'), image }, join(mountpoint, 'bad.img'))
  t.test("the guest's reads past 4 GiB reached nginx as ranged GETs", async (t) => {
    const starts = [...(await nginx.accessLog()).matchAll(/"GET \/disk\.img [^\n]*range="bytes=(\d+)-/g)].map((m) => Number(m[1]))
    t.ok(starts.some((start) => start >= 4 * GiB), `a range starting past 4 GiB among ${starts.length}`)
  })
})

t.test('s3 snapshot served by fauxqs', async (t) => {
  const dir = await tempDir(t)
  const image = await makeBootImage(dir, 'disk.img', NEAR_LAYOUT)
  const bad = await makeBootImage(dir, 'bad.img', NEAR_LAYOUT, { corrupt: true })
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await s3.uploadFile('snaps', 'vm/disk.img', image.path)
  await s3.uploadFile('snaps', 'vm/bad.img', bad.path)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const config = join(dir, 'snapmount.yaml')
  const snapshot = (key: string) => `  - type: s3\n    url: s3://snaps/${key}\n    endpoint: ${s3.endpoint}\n    region: ${s3.region}\n`
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n${snapshot('vm/disk.img')}${snapshot('vm/bad.img')}`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.teardown(() => daemon.stop())
  bootsFrom(t, { mounted: join(mountpoint, 'disk.img'), image }, join(mountpoint, 'bad.img'))
})

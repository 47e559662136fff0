import t from 'tap'
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { BOOT_BAD, BOOT_OK, FAR_LAYOUT, makeBootImage } from '../fixtures/boot-image.js'
import { startDaemon } from '../fixtures/daemon.js'
import { GiB, readSource } from '../fixtures/images.js'
import { boot } from '../fixtures/qemu.js'
import { readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * The README's "Use with a hypervisor" recipes, run as a new user would run them: a qcow2 overlay
 * whose backing file is the mounted snapshot, and a hypervisor running as another user (libvirt
 * runs QEMU as libvirt-qemu), which needs allow_other. The read-only -drive is guest-boot.ts.
 */
const run = promisify(execFile)

/** A command's exit code and output, without throwing on failure. */
async function attempt(file: string, args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { timeout: 30_000, encoding: 'buffer' })
    return { code: 0, stdout, stderr: stderr.toString() }
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: unknown; stdout?: Buffer; stderr?: Buffer }
    return { code: typeof code === 'number' ? code : null, stdout: stdout ?? Buffer.alloc(0), stderr: String(stderr ?? '') }
  }
}

t.test('a qcow2 overlay on the mounted snapshot takes the writes; the snapshot keeps its bytes', async (t) => {
  const dir = await tempDir(t)
  const image = await makeBootImage(dir, 'source.img', FAR_LAYOUT)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk.img=${image.path}`])
  t.teardown(() => daemon.stop())
  const snapshot = join(mountpoint, 'disk.img')
  const overlay = join(dir, 'overlay.qcow2')

  // The README's command, word for word.
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', snapshot, '-F', 'raw', overlay])
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', overlay])).stdout) as Record<string, unknown>
  t.equal(info['backing-filename'], snapshot, 'the overlay is backed by the mounted file')
  t.equal(info['virtual-size'], Math.ceil(FAR_LAYOUT.size / 512) * 512, 'with its size (QEMU rounds up to a sector)')

  // Guests share the snapshot: this one, a second overlay's and one on the snapshot itself, at
  // once (QEMU takes shared locks on a read-only image; they must not conflict).
  const second = join(dir, 'second.qcow2')
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', snapshot, '-F', 'raw', second])
  const [before, other, direct] = await Promise.all([
    boot(`file=${overlay},format=qcow2,if=virtio`),
    boot(`file=${second},format=qcow2,if=virtio`),
    boot(`file=${snapshot},format=raw,readonly=on,if=virtio`),
  ])
  t.match(before.serial, BOOT_OK, `a guest boots from the overlay\n${before.serial}${before.stderr}`)
  t.match(other.serial, BOOT_OK, `so does one from a second overlay at the same time\n${other.serial}${other.stderr}`)
  t.match(direct.serial, BOOT_OK, `and one from the snapshot itself\n${direct.serial}${direct.stderr}`)

  // A write inside the first extent the guest hashes, and one on the 4 GiB line; qemu-io goes
  // through the same block layer as a guest's writes.
  const written = [
    { offset: 4096, length: 4096, pattern: 0xa5 },
    { offset: 4 * GiB, length: 512, pattern: 0x5a },
  ]
  const writes = written.flatMap(({ offset, length, pattern }) => ['-c', `write -P ${pattern} ${offset} ${length}`])
  const io = await attempt('qemu-io', ['-f', 'qcow2', ...writes, overlay])
  t.equal(io.code, 0, `qemu-io writes to the overlay ${io.stderr}`)

  // What the overlay now reads, 64 KiB around each write: the source, with the write in place.
  // (A raw node with offset and size slices the overlay; qemu-img dd cannot skip past 4 GiB.)
  for (const { offset, length, pattern } of written) {
    const start = Math.max(0, offset - 32768)
    const slice = { driver: 'raw', offset: start, size: 65536, file: { driver: 'qcow2', file: { driver: 'file', filename: overlay } } }
    const out = join(dir, `read-${offset}.raw`)
    await run('qemu-img', ['convert', '-O', 'raw', `json:${JSON.stringify(slice)}`, out])
    const expected = await readSource(image.path, start, 65536)
    expected.fill(pattern, offset - start, offset - start + length)
    t.ok((await readFile(out)).equals(expected), `the overlay reads the write at ${offset} and the snapshot around it`)
    t.ok((await readRange(snapshot, start, 65536)).equals(await readSource(image.path, start, 65536)), `the mounted snapshot still has its own bytes at ${offset}`)
  }

  const after = await boot(`file=${overlay},format=qcow2,if=virtio`)
  t.match(after.serial, BOOT_BAD, `the guest sees the overlay's write (its hash no longer matches)\n${after.serial}`)
  const snapshotBoot = await boot(`file=${snapshot},format=raw,readonly=on,if=virtio`)
  t.match(snapshotBoot.serial, BOOT_OK, 'while the snapshot itself still boots OK')

  const commit = await attempt('qemu-img', ['commit', overlay])
  t.not(commit.code, 0, 'qemu-img commit into the snapshot fails')
  t.match(commit.stderr, /Read-only file system/, `because the mount is read-only: ${commit.stderr.trim()}`)
  t.ok((await readRange(snapshot, 4096, 4096)).equals(await readSource(image.path, 4096, 4096)), 'the snapshot is unchanged after it')
})

t.test('libvirt: another user (QEMU as libvirt-qemu) reads the mount only when the config names it, and only with allow_other', async (t) => {
  const dir = await tempDir(t)
  await chmod(dir, 0o755) // mkdtemp makes it 0700; the other user must reach the mountpoints
  const image = await makeBootImage(dir, 'source.img', FAR_LAYOUT)
  const open = join(dir, 'open')
  const closed = join(dir, 'closed')
  await mkdir(open)
  await mkdir(closed)
  // Snapshots are their owner's alone (0400): naming QEMU's user as the owner lets it in, and
  // turns allow_other on by itself; --no-allow-other keeps even the owner out.
  const shared = await startDaemon(t, open, ['--uid', 'nobody', open, `disk.img=${image.path}`])
  t.teardown(() => shared.stop())
  const private_ = await startDaemon(t, closed, ['--uid', 'nobody', '--no-allow-other', closed, `disk.img=${image.path}`])
  t.teardown(() => private_.stop())

  const dd = (path: string) => attempt('runuser', ['-u', 'nobody', '--', 'dd', `if=${path}`, 'bs=4096', 'count=8', 'status=none'])
  const read = await dd(join(open, 'disk.img'))
  t.equal(read.code, 0, `nobody reads the file with allow_other: ${read.stderr}`)
  t.ok(read.stdout.equals(await readSource(image.path, 0, 32768)), 'the source\'s bytes')
  const guest = await boot(`file=${join(open, 'disk.img')},format=raw,readonly=on,if=virtio,cache=none`, { user: 'nobody' })
  t.match(guest.serial, BOOT_OK, `QEMU running as nobody boots from it\n${guest.serial}${guest.stderr}`)
  t.equal(BOOT_OK.exec(guest.serial)?.[1], image.checksum, 'with the hash of the source')

  const refused = await dd(join(closed, 'disk.img'))
  t.not(refused.code, 0, 'without allow_other, nobody cannot read it')
  t.match(refused.stderr, /Permission denied/, 'Permission denied')
  const refusedGuest = await boot(`file=${join(closed, 'disk.img')},format=raw,readonly=on,if=virtio`, { user: 'nobody' })
  t.notMatch(refusedGuest.serial, BOOT_OK, 'nor boot from it')
  t.match(refusedGuest.stderr, /Permission denied/, `QEMU says so: ${refusedGuest.stderr.trim()}`)
  const root = await readRange(join(closed, 'disk.img'), 0, 512)
  t.equal(root.readUInt16LE(510), 0xaa55, 'while the user who mounted it (root) still can')
})

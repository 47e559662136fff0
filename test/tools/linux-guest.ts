import t from 'tap'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { bootGuest, chooseAccel, parseReadTrace, qemuArgs, type Accel, type BootOptions } from '../../tools/linux-guest.mjs'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('QEMU\'s trace lines become reads of the busiest drive, until the marker', async (t) => {
  const startedAt = 1_796_197_298_000
  const line = (seconds: string, blk: string, offset: number, bytes: number) => `4242@${seconds}:blk_co_preadv blk ${blk} bs 0x2 offset ${offset} bytes ${bytes} flags 0x8`
  const text = [
    line('1796197298.100000', '0xa', 0, 512),
    'some other line',
    line('1796197298.200050', '0xa', 4096, 8192),
    line('1796197298.250000', '0xb', 0, 512),
    line('1796197299.000000', '0xa', 8192, 4096),
  ].join('\n')
  t.same(parseReadTrace(text, startedAt, 500), [
    { ms: 100, offset: 0, length: 512 },
    { ms: 200.1, offset: 4096, length: 8192 },
  ])
})

t.test('a guest whose kernel panics is ended a moment later, and the error says so', async (t) => {
  // `wrap` stands a shell in for QEMU: it writes a panic on the console, then would wait a minute.
  const panicking = (): [string, string[]] => ['sh', ['-c', 'echo "[    0.056000] Kernel panic - not syncing: IO-APIC + timer doesn\'t work!"; exec sleep 60']]
  const started = Date.now()
  const err = await bootGuest('/nonexistent', { accel: 'tcg', timeoutMs: 30_000, wrap: panicking }).catch((e: Error & { guestPanic?: boolean }) => e)
  t.ok(err instanceof Error)
  t.match((err as Error).message, /^the guest's kernel panicked: Kernel panic - not syncing: IO-APIC \+ timer doesn't work!\n/)
  t.equal((err as Error & { guestPanic?: boolean }).guestPanic, true)
  t.match((err as Error & { console?: string }).console, /^\[    0\.056000\] Kernel panic/, 'the console comes with it')
  t.ok(Date.now() - started < 10_000, 'not at the time limit')
})

t.test('chooseAccel: KVM only when /dev/kvm opens and the KVM is the hardware one; kvm_pvm means TCG, and it says so', async (t) => {
  const dir = await tempDir(t)
  const qemu = join(dir, 'qemu-system-x86_64')
  await writeFile(qemu, '#!/bin/sh\n', { mode: 0o755 })
  const kvmDevice = join(dir, 'kvm')
  await writeFile(kvmDevice, '')
  const modules = join(dir, 'module')
  await mkdir(join(modules, 'kvm'), { recursive: true })
  const host = { qemu, kvmDevice, modules }
  // These machines' KVM: /dev/kvm opens, QEMU starts, Debian's kernel never gets past its decompressor.
  await mkdir(join(modules, 'kvm_pvm'))
  t.same(await chooseAccel({}, host), { accel: 'tcg', reason: `${kvmDevice} opens, but this KVM is kvm_pvm, which runs only guest kernels built for it: TCG` })
  await rm(join(modules, 'kvm_pvm'), { recursive: true })
  t.same(await chooseAccel({}, host), { accel: 'tcg', reason: `${kvmDevice} opens, but this KVM is neither kvm_intel nor kvm_amd: TCG` })
  for (const hardware of ['kvm_intel', 'kvm_amd']) {
    await mkdir(join(modules, hardware))
    t.same(await chooseAccel({}, host), { accel: 'kvm', reason: `${kvmDevice} opens and KVM is the hardware one` }, hardware)
    await rm(join(modules, hardware), { recursive: true })
  }
  t.same(await chooseAccel({}, { ...host, kvmDevice: join(dir, 'absent') }), { accel: 'tcg', reason: `${join(dir, 'absent')} cannot be opened (ENOENT): TCG` })
  t.same(await chooseAccel({ SNAPMOUNT_GUEST_ACCEL: 'kvm' }, host), { accel: 'kvm', reason: 'SNAPMOUNT_GUEST_ACCEL=kvm' }, 'forced, even on a KVM that cannot boot it')
  await t.rejects(chooseAccel({ SNAPMOUNT_GUEST_ACCEL: 'hvf' }, host), /SNAPMOUNT_GUEST_ACCEL is 'hvf'; use kvm, tcg or leave it unset/)
  t.same(await chooseAccel({}, { ...host, qemu: join(dir, 'absent') }), { accel: undefined, reason: `${join(dir, 'absent')} is missing (apt-get install qemu-system-x86)` }, 'no QEMU: a skip reason')
})

t.test("qemuArgs: virtio-blk, raw, snapshot=on or readonly=on, cache=none or QEMU's default", async (t) => {
  const drive = (options: Partial<BootOptions>) => {
    const args = qemuArgs('/mnt/a,b.raw', { accel: 'tcg', ...options })
    return args[args.indexOf('-drive') + 1]
  }
  t.equal(drive({}), 'id=guest,file=/mnt/a,,b.raw,format=raw,if=virtio,snapshot=on', "the default: snapshot=on, QEMU's default cache; a comma doubled")
  t.equal(drive({ cache: 'none' }), 'id=guest,file=/mnt/a,,b.raw,format=raw,if=virtio,snapshot=on,cache=none')
  t.equal(drive({ overlay: 'readonly' }), 'id=guest,file=/mnt/a,,b.raw,format=raw,if=virtio,readonly=on')
  t.equal(drive({ overlay: 'readonly', cache: 'none' }), 'id=guest,file=/mnt/a,,b.raw,format=raw,if=virtio,readonly=on,cache=none')
  t.equal(drive({ driveFile: ['file.driver=http', 'file.url=http://h/g.raw'] }), 'id=guest,file.driver=http,file.url=http://h/g.raw,format=raw,if=virtio,snapshot=on')
  const tcg = qemuArgs('/g.raw', { accel: 'tcg' })
  t.ok(tcg.includes('pc,accel=tcg') && !tcg.includes('-cpu'), 'TCG: its own CPU model')
  const kvm = qemuArgs('/g.raw', { accel: 'kvm' }, '/run/qmp.sock', '/tmp/reads.trace')
  t.ok(kvm.includes('pc,accel=kvm') && kvm.join(' ').includes('-cpu host'), 'KVM: the host CPU')
  t.ok(kvm.join(' ').includes('-qmp unix:/run/qmp.sock,server=on,wait=off'), 'QMP on the socket')
  t.ok(kvm.join(' ').includes('-trace enable=blk_co_preadv,file=/tmp/reads.trace'), 'the reads traced')
  t.throws(() => qemuArgs('/g.raw', { accel: 'hvf' as Accel }), /accel must be kvm or tcg, not hvf/)
  t.throws(() => qemuArgs('/g.raw', { accel: 'tcg', cache: 'writeback' as 'none' }), /cache must be default or none, not writeback/)
  t.throws(() => qemuArgs('/g.raw', { accel: 'tcg', overlay: 'qcow2' as 'snapshot' }), /overlay must be snapshot or readonly, not qcow2/)
})

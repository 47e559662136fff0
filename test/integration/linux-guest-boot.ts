import t from 'tap'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { bootGuest, chooseAccel, linuxGuestImage } from '../fixtures/linux-guest.js'
import { startNginx } from '../fixtures/nginx.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * A real Linux guest boots from a snapshot served over HTTP: Debian (scripts/build-guest-image),
 * its bootloader, kernel, initramfs and root file system all read by QEMU through snapmount's
 * mount of nginx's copy, with cache=none so every read reaches the daemon. systemd brings it to
 * multi-user.target, where a unit writes its ready marker with the failed units and powers off
 * (tools/linux-guest.mjs). The boot-sector tests (guest-boot.ts) check the bytes; this one checks
 * that a whole boot, thousands of reads of every size, goes through without a fault.
 */

const { accel, reason } = await chooseAccel()
if (!accel) t.plan(0, `no Linux guest boot: ${reason}`)
else {
  t.comment(`accelerator: ${accel} (${reason})`)
  t.test('a Debian guest boots to systemd through an HTTP mount', async (t) => {
    const image = await linuxGuestImage(t, accel)
    const dir = await tempDir(t)
    const www = join(dir, 'www')
    await mkdir(www)
    // nginx follows the link: the 4 GiB image is served from the cache, not copied.
    await symlink(image, join(www, 'guest.raw'))
    const nginx = await startNginx(t, www)
    const mountpoint = join(dir, 'mnt')
    await mkdir(mountpoint)
    const daemon = await startDaemon(t, mountpoint, [mountpoint, nginx.url('/guest.raw')])
    t.teardown(() => daemon.stop())

    const boot = await bootGuest(join(mountpoint, 'guest.raw'), { accel, cache: 'none' })
    const gets = (await nginx.requests()).filter((request) => request.status === 206)
    const served = gets.reduce((sum, request) => sum + request.bytes, 0)
    const read = boot.guestRead ? `the guest read ${mib(boot.guestRead.bytes)} MiB in ${boot.guestRead.operations} reads` : 'the guest\'s reads unknown'
    t.comment(`${accel}: ready ${(boot.readyMs / 1000).toFixed(1)} s after QEMU started; ${read}; nginx sent ${mib(served)} MiB in ${gets.length} ranged GETs`)

    t.same(boot.failedUnits, [], 'no unit failed in the guest')
    t.equal(boot.failedUnitCount, 0, 'as the guest counted them')
    // With `quiet` the kernel still prints errors: a read that failed or returned garbage shows here.
    t.notMatch(boot.console, /I\/O error|EXT4-fs error|SQUASHFS error|Kernel panic|corrupt/i, 'the guest logged no read or file-system error')
    t.equal(boot.code, 0, 'the guest powered off by itself')
    t.ok(served > 10 * 2 ** 20, 'nginx sent more than 10 MiB (the kernel and initramfs alone are more): the boot read through the mount')
    t.same((await nginx.requests()).filter((request) => request.status >= 400), [], 'nginx refused nothing')
    t.equal(await daemon.stop(), 0, 'the daemon exits cleanly')
    t.notMatch(daemon.stderr(), /^snapmount (error|warn):/m, 'the daemon logged no error or warning')
  })
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1)
}

import t from 'tap'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setKernelReadahead } from '../../src/fuse/kernel-readahead.js'
import { mountEntry } from '../../src/fuse/mountpoint.js'
import { tempDir } from '../fixtures/temp-dir.js'

function collecting() {
  const lines: string[] = []
  return { lines, logger: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warn: ${m}`), error: (m: string) => lines.push(`error: ${m}`) } }
}

t.test('writes read_ahead_kb of the device mounted at the path', async (t) => {
  // /proc is always mounted: its device's entry, in a stand-in for /sys/class/bdi.
  const sysfs = await tempDir(t)
  const proc = await mountEntry('/proc')
  t.ok(proc, '/proc is a mount')
  await mkdir(join(sysfs, proc!.device))
  const { lines, logger } = collecting()
  await setKernelReadahead('/proc', 2048, logger, sysfs)
  t.equal(await readFile(join(sysfs, proc!.device, 'read_ahead_kb'), 'utf8'), '2048\n')
  t.same(lines, [])
})

t.test('a path that is not a mount point is left alone; a write that fails is a warning, not a failure', async (t) => {
  const sysfs = await tempDir(t)
  const { lines, logger } = collecting()
  await setKernelReadahead(sysfs, 1024, logger, sysfs)
  t.same(lines, [], 'not a mount point: nothing to do')
  await setKernelReadahead('/proc', 1024, logger, join(sysfs, 'missing'))
  t.match(lines, [/^warn: could not set the kernel's readahead on \/proc to 1024 KiB \(.*ENOENT.*\): sequential reads will be slower$/])
})

import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { openDiskCache } from '../../src/cli/disk-cache.js'
import { DiskCacheLockedError } from '../../src/disk-cache/errors.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('the daemon\'s disk cache: none without cache_dir; an unusable directory is a warning, a held one an input error', async (t) => {
  const dir = await tempDir(t)
  const lines: string[] = []
  const logger = { info: () => {}, warn: (line: string) => void lines.push(line), error: () => {} }
  t.equal(await openDiskCache(mountOptions(), logger), undefined, 'off by default')
  const file = join(dir, 'a-file')
  await writeFile(file, '')
  t.equal(await openDiskCache(mountOptions({ cacheDir: join(file, 'cache') }), logger), undefined, 'unusable: off')
  t.match(lines, [/^disk cache off: cannot use .*a-file\/cache \(ENOTDIR.*\); reads go to the sources$/])
  const held = await openDiskCache(mountOptions({ cacheDir: join(dir, 'cache') }), logger)
  t.ok(held, 'opened')
  t.teardown(() => held?.close())
  await t.rejects(openDiskCache(mountOptions({ cacheDir: join(dir, 'cache') }), logger), DiskCacheLockedError, 'a second one is refused')
})

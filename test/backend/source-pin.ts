import t, { type Test } from 'tap'
import { open, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SourcePin, type SourceChangedError } from '../../src/backend/source-pin.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

/** A pinned file of 8 KiB; the periodic check is an hour away, so only what the test does checks. */
async function pinned(t: Test) {
  const path = join(await tempDir(t), 'image.raw')
  await writeFile(path, seededBytes(1, 8192))
  const handle = await open(path, 'r')
  const changes: SourceChangedError[] = []
  const pin = new SourcePin(handle, path, await handle.stat({ bigint: true }), (change) => changes.push(change), 3_600_000)
  t.teardown(async () => {
    pin.stop()
    await handle.close().catch(() => undefined)
  })
  return { path, handle, pin, changes }
}

t.test('an unchanged file settles; one rewritten in place fails every settle after, reported once', async (t) => {
  const { path, pin, changes } = await pinned(t)
  await pin.check()
  await pin.settle()
  t.equal(pin.change, undefined)
  const writer = await open(path, 'r+')
  await writer.write(seededBytes(2, 100), 0, 100, 4000)
  await writer.close()
  // Two checks at once: the second waits for the first and looks again after it.
  await Promise.all([pin.check(), pin.check()])
  await t.rejects(pin.settle(), { code: 'E_SOURCE_CHANGED', path, message: /^source .* changed since it was opened \(mtime \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z -> .*\); a reload \(SIGHUP\) opens it again$/ })
  await pin.check()
  t.equal(changes.length, 1, 'reported once')
  t.equal(pin.change, changes[0])
})

t.test('a size change is named with both sizes', async (t) => {
  const { path, pin } = await pinned(t)
  await writeFile(path, seededBytes(1, 4096))
  await pin.check()
  // writeFile truncates first: inotify may report that before the write.
  t.match(pin.change?.detail, /^size 8192 -> (0|4096) bytes, mtime /)
})

t.test('inotify: a write is seen without anyone asking', async (t) => {
  const { path, pin, changes } = await pinned(t)
  await writeFile(path, seededBytes(3, 8192))
  const deadline = Date.now() + 5000
  while (changes.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(changes.length, 1)
  await t.rejects(pin.settle(), { code: 'E_SOURCE_CHANGED' })
})

t.test('a file renamed over the path, or a descriptor that cannot be stat\'ed, is no change', async (t) => {
  const { path, handle, pin, changes } = await pinned(t)
  const other = `${path}.new`
  await writeFile(other, seededBytes(4, 100))
  await rename(other, path)
  await pin.check()
  await pin.settle()
  await handle.close()
  await pin.check()
  await pin.settle()
  t.same(changes, [])
})

t.test('without an inotify watch (the path gone before it), the periodic check still sees a change', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'image.raw')
  await writeFile(path, seededBytes(5, 8192))
  const handle = await open(path, 'r+')
  t.teardown(() => handle.close())
  const changes: SourceChangedError[] = []
  const pin = new SourcePin(handle, join(dir, 'gone.raw'), await handle.stat({ bigint: true }), (change) => changes.push(change), 20)
  t.teardown(() => pin.stop())
  await handle.truncate(100)
  const deadline = Date.now() + 5000
  while (changes.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.match(changes[0]?.detail, /^size 8192 -> 100 bytes/)
})

import t, { type Test } from 'tap'
import { constants } from 'node:fs'
import { mkdir, open, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { reloadDaemon, runCli, startDaemon, until, type Daemon } from '../fixtures/daemon.js'
import { startNginx } from '../fixtures/nginx.js'
import { makeRandomImage } from '../fixtures/images.js'
import { keepReading, readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'

const MiB = 1024 * 1024

const reload = reloadDaemon

const listing = async (path: string) => (await readdir(path)).sort()

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const images = {
    keep: await makeRandomImage(dir, 'keep.raw', 4 * MiB, 1),
    gone: await makeRandomImage(dir, 'gone.raw', 1 * MiB, 2),
    old: await makeRandomImage(dir, 'old.raw', 1 * MiB, 3),
    next: await makeRandomImage(dir, 'next.raw', 2 * MiB, 4),
    added: await makeRandomImage(dir, 'added.raw', 1 * MiB, 5),
  }
  const config = join(dir, 'snapmount.yaml')
  const write = (snapshots: string, options = '') => writeFile(config, `mountpoint: mnt\n${options}snapshots:\n${snapshots}`)
  return { dir, mountpoint, images, config, write }
}

t.test('SIGHUP adds, removes and replaces snapshots while a reader keeps reading an untouched one', async (t) => {
  const { mountpoint, images, config, write } = await setUp(t)
  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: gone, type: file, path: gone.raw }\n  - { name: disk, type: file, path: old.raw }\n`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.same(await listing(mountpoint), ['disk', 'gone', 'keep'])
  const keepBytes = await readFile(images.keep)
  const reader = keepReading(join(mountpoint, 'keep'), keepBytes)

  // Before the reload: the old disk read through the page cache, and handles left open on it and on gone.
  t.ok((await readFile(join(mountpoint, 'disk'))).equals(await readFile(images.old)))
  const oldDisk = await open(join(mountpoint, 'disk'), constants.O_RDONLY | constants.O_DIRECT)
  const goneHandle = await open(join(mountpoint, 'gone'), constants.O_RDONLY | constants.O_DIRECT)

  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: disk, type: file, path: next.raw }\n  - { name: added, type: mmap, path: added.raw }\n`)
  const said = await reload(daemon)
  const readsAtReload = reader.reads()
  t.match(said, /reloaded: added added; removed gone; replaced disk; 1 unchanged/)
  t.match(said, /disk: replaced while 1 handle\(s\) of the earlier version are open/, 'warns about the shared page cache')
  t.same(await listing(mountpoint), ['added', 'disk', 'keep'], 'the new listing')
  await until(() => stat(join(mountpoint, 'gone')).then(() => false, (err) => err.code === 'ENOENT'), 'gone to be gone (attributes are cached for 1 s)')
  await t.rejects(open(join(mountpoint, 'gone')), { code: 'ENOENT' }, 'gone cannot be opened')
  await until(async () => (await stat(join(mountpoint, 'disk'))).size === 2 * MiB, 'the new size of disk (attributes are cached for 1 s)')
  t.ok((await readFile(join(mountpoint, 'disk'))).equals(await readFile(images.next)), 'a new open of disk reads the replacement, not cached pages of the old one')
  t.ok((await readFile(join(mountpoint, 'added'))).equals(await readFile(images.added)), 'added is served')

  const old = Buffer.alloc(MiB)
  await oldDisk.read(old, 0, MiB, 0)
  t.ok(old.equals(await readFile(images.old)), 'the handle opened before the reload still reads the old disk')
  const gone = Buffer.alloc(MiB)
  await goneHandle.read(gone, 0, MiB, 0)
  t.ok(gone.equals(await readFile(images.gone)), 'and the removed one still reads')
  await oldDisk.close()
  await goneHandle.close()

  // Counted, not timed: a slow machine may read little in any fixed span.
  await t.resolves(until(() => reader.reads() >= readsAtReload + 5, 'reads of keep after the reload'), 'the reader kept reading through the reload')
  const { errors } = await reader.stop()
  t.same(errors, [], 'without an error')
  t.equal(await daemon.stop(), 0)
})

t.test('a reload that cannot apply changes nothing and says why; mount options need a restart', async (t) => {
  const { dir, mountpoint, images, config, write } = await setUp(t)
  await write(`  - { name: keep, type: file, path: keep.raw }\n`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])

  await writeFile(config, 'mountpoint: mnt\nsnapshots: [ { name: keep, type: file, path: keep.raw }\n')
  t.match(await reload(daemon), /error: SIGHUP: reload refused, nothing changed: .*snapmount\.yaml: line \d+: .*; fix the YAML\/JSON syntax/, 'bad YAML')
  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: new, type: file, path: missing.raw }\n`)
  t.match(await reload(daemon), /reload refused, nothing changed: source .*missing\.raw does not exist; check the path/, 'a source that does not open')
  await write(`  - { name: keep, type: file, path: keep.raw }\n`, 'options: { uid: no-such-user-here }\n')
  t.match(await reload(daemon), /reload refused, nothing changed: no user named no-such-user-here/, 'an owner that does not exist')
  t.same(await listing(mountpoint), ['keep'], 'still the first listing')
  t.ok((await readRange(join(mountpoint, 'keep'), 0, MiB)).equals((await readFile(images.keep)).subarray(0, MiB)), 'and still serving')

  await mkdir(join(dir, 'elsewhere'))
  await writeFile(config, `mountpoint: elsewhere\noptions: { allow_other: false, umask: "0027", uid: 0, gid: 0, read_timeout_ms: 5000, cache_size_mib: 128 }\nsnapshots:\n  - { name: keep, type: file, path: keep.raw }\n`)
  const said = await reload(daemon)
  t.match(said, /warn: SIGHUP: mountpoint changed from .*mnt to .*elsewhere: that needs a restart \(systemctl restart\); still .*mnt/)
  t.match(said, /warn: SIGHUP: allow_other changed from automatic to false: that needs a restart/)
  t.match(said, /warn: SIGHUP: the new uid, gid or umask let users other than uid \d+ in, but allow_other has been off since the start: that needs a restart/)
  t.match(said, /info: SIGHUP: each snapshot readable by uid \d+ only \(files 0440, root dir 0550, allow_other off\)/, 'the reload says who can read now')
  t.match(said, /warn: SIGHUP: cache_size_mib changed from 1024 to 128: that needs a restart/)
  t.match(said, /reloaded: added none; removed none; replaced none; 1 unchanged/)
  await until(async () => ((await stat(join(mountpoint, 'keep'))).mode & 0o777) === 0o440, 'umask 0027 on the file')
  // The kernel keeps each inode's attributes for a while of its own: the root's may come later.
  await until(async () => ((await stat(mountpoint)).mode & 0o777) === 0o550, 'and on the root')
  t.equal(await daemon.stop(), 0)
})

t.test('started from the command line, SIGHUP re-reads the same arguments: nothing changes', async (t) => {
  const { mountpoint, images } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, images.keep])
  t.match(await reload(daemon), /reloaded: added none; removed none; replaced none; 1 unchanged/)
  t.equal(await daemon.stop(), 0)
})

/**
 * A lazy snapshot's source appears (`image` moved to `source`) once the daemon has retried it: the
 * retry loop notices, and the mounted file then has the source's size and bytes.
 */
async function servesOnceItAppears(t: Test, daemon: Daemon, mounted: string, image: string, source: string): Promise<void> {
  const name = basename(mounted)
  await until(() => new RegExp(`${name}: source still cannot be opened \\(attempt 2\\)`).test(daemon.stderr()), 'a retry')
  await rename(image, source)
  await until(() => new RegExp(`${name}: source opened on attempt \\d+; now readable`).test(daemon.stderr()), 'the source to open')
  t.equal((await stat(mounted)).size, MiB, 'the real size')
  t.ok((await readFile(mounted)).equals(await readFile(source)), 'and the bytes')
}

t.test('lazy: a snapshot whose source is missing is listed, fails EIO, and serves once the source appears', async (t) => {
  const { dir, mountpoint, images, config, write } = await setUp(t)
  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: late, type: file, path: late.raw, lazy: true }\n`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.match(daemon.stderr(), /warn: late: source .*late\.raw does not exist; listed anyway \(lazy\), unreadable \(EIO\) until it answers, retried in the background/)
  t.match(daemon.stderr(), /mounted .* keep \(file, 4\.0 MiB\), late \(file, waiting for its source\)/)
  t.same(await listing(mountpoint), ['keep', 'late'], 'listed')
  await t.rejects(stat(join(mountpoint, 'late')), { code: 'EIO' }, 'no attributes to show yet')
  await t.rejects(readFile(join(mountpoint, 'late')), { code: 'EIO' }, 'nor bytes')
  const warm = await runCli(['warm', 'late', '--config', config])
  t.equal(warm.code, 2, 'warm refuses it')
  t.match(warm.stderr, /late is listed but not open yet: its source has not answered \(lazy: true\); try again once it opens/, 'saying it is waiting, not that it does not exist')
  await servesOnceItAppears(t, daemon, join(mountpoint, 'late'), images.added, join(dir, 'late.raw'))

  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: later, type: file, path: later.raw, lazy: true }\n`)
  t.match(await reload(daemon), /later: source .* does not exist; listed anyway[^]*reloaded: added later; removed late; replaced none; 1 unchanged/, 'a reload can add a lazy one too')
  t.equal(await daemon.stop(), 0, 'and stopping cancels its retries')
})

t.test('lazy over HTTP: a 404 at start is listed as EIO, retried, and served through the cache once the server has it', async (t) => {
  const { dir, mountpoint, images, config, write } = await setUp(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const nginx = await startNginx(t, www)
  await write(`  - { name: keep, type: file, path: keep.raw }\n  - { name: web, type: http, url: "${nginx.url('/web.raw')}", lazy: true }\n`)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.match(daemon.stderr(), /warn: web: .*listed anyway \(lazy\), unreadable \(EIO\) until it answers, retried in the background/)
  t.same(await listing(mountpoint), ['keep', 'web'], 'listed')
  await t.rejects(readFile(join(mountpoint, 'web')), { code: 'EIO' }, 'no bytes while the server answers 404')
  await servesOnceItAppears(t, daemon, join(mountpoint, 'web'), images.added, join(www, 'web.raw'))
  t.equal(await daemon.stop(), 0)
})

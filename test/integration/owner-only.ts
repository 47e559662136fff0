import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { mountAt, NOBODY, runCli, startDaemon } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'

// Issue 14, item 1: nobody reads a snapshot the config did not allow. Before, a daemon run as root
// turned allow_other on and showed every file 0444, so any local user read a root-only image.

const run = promisify(execFile)
const GROUP = 4321
const root = process.getuid?.() === 0

async function setUp(t: Test) {
  const dir = await tempDir(t)
  await chmod(dir, 0o755) // other users reach the mountpoint, as they would /srv/snapshots
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const image = await makeRandomImage(dir, 'disk.raw', 256 * 1024)
  await chmod(image, 0o600) // root's alone, as a guest's disk should be
  return { dir, mountpoint, image, file: join(mountpoint, 'disk.raw') }
}

/** `cat FILE` as uid and gid with no supplementary groups, through setpriv. */
async function readAs(uid: number, gid: number, path: string): Promise<Buffer> {
  const { stdout } = await run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'cat', path], { encoding: 'buffer', maxBuffer: 1 << 20 })
  return stdout
}

t.test('by default a mount is its owner\'s alone: files 0400, no allow_other, nobody refused', { skip: !root && 'needs root (to read as nobody)' }, async (t) => {
  const { mountpoint, image, file } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  t.match(daemon.stderr(), /mounted .* read-only: disk\.raw \(file, 256\.0 KiB\); each readable by uid 0 only \(files 0400, root dir 0500, allow_other off\)/, 'the start log says who can read')
  const stats = await stat(file)
  t.equal(stats.mode & 0o777, 0o400, 'files 0400')
  t.equal(stats.uid, 0, "owned by the daemon's user")
  t.equal((await stat(mountpoint)).mode & 0o777, 0o500, 'the root 0500')
  t.notMatch((await mountAt(mountpoint))?.options, /(^|,)allow_other(,|$)/, 'allow_other off')
  t.ok((await readFile(file)).equals(await readFile(image)), 'the owner reads')
  await t.rejects(readAs(NOBODY, NOBODY, file), /Permission denied/, 'nobody cannot read the image')
  await t.rejects(run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'ls', mountpoint]), /Permission denied/, 'nor list the mount')
  t.equal(await daemon.stop(), 0)
})

t.test('gid with umask 0027: exactly that group reads; gid alone means the same', { skip: !root && 'needs root' }, async (t) => {
  const { mountpoint, image, file } = await setUp(t)
  for (const args of [['--gid', String(GROUP), '--umask', '0027'], ['--gid', String(GROUP)]]) {
    const daemon = await startDaemon(t, mountpoint, [mountpoint, image, ...args])
    t.match(daemon.stderr(), new RegExp(`each readable by uid 0 and gid ${GROUP} \\(files 0440, root dir 0550\\)`), `${args.join(' ')}: the start log says who can read`)
    t.equal((await stat(file)).mode & 0o777, 0o440)
    t.equal((await stat(file)).gid, GROUP)
    t.match((await mountAt(mountpoint))?.options, /(^|,)allow_other(,|$)/, 'allow_other on: the group is let in')
    t.ok((await readAs(NOBODY, GROUP, file)).equals(await readFile(image)), 'a member of the group reads')
    await t.rejects(readAs(NOBODY, NOBODY, file), /Permission denied/, 'a user outside the group is refused')
    t.equal(await daemon.stop(), 0)
  }
})

t.test('an explicit umask wins: 0022 lets everyone read, and says so', { skip: !root && 'needs root' }, async (t) => {
  const { mountpoint, image, file } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image, '--umask', '0022'])
  t.match(daemon.stderr(), /each readable by everyone \(files 0444, root dir 0555\)/)
  t.ok((await readAs(NOBODY, NOBODY, file)).equals(await readFile(image)), 'nobody reads, as configured')
  t.equal(await daemon.stop(), 0)
})

t.test('check says who can read each snapshot', async (t) => {
  const { dir, image } = await setUp(t)
  const config = join(dir, 'snapmount.yaml')
  const uid = process.getuid!()
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - { type: file, path: ${image} }\n  - { type: file, name: copy.raw, path: ${image} }\n`)
  const owner = await runCli(['check', '--config', config])
  t.equal(owner.code, 0, owner.stderr)
  const rows = owner.stdout.trimEnd().split('\n').map((line) => line.split('\t'))
  t.strictSame(rows.map((row) => [row[0], row[5]]), [
    ['disk.raw', `readable by uid ${uid} only (files 0400, root dir 0500, allow_other off)`],
    ['copy.raw', `readable by uid ${uid} only (files 0400, root dir 0500, allow_other off)`],
  ])
  const group = await runCli(['check', '--config', config, '--gid', 'nogroup'])
  t.equal(group.code, 0, group.stderr)
  t.match(group.stdout, new RegExp(`^disk\\.raw\\t.*\\treadable by uid ${uid} and group nogroup \\(gid ${NOBODY}\\) \\(files 0440, root dir 0550\\)$`, 'm'))
})

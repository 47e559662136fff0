import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { chmod, lstat, mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { detach, isMounted, NOBODY, runCli, startDaemon, type CliResult } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { sha256 } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

// Every refusal is exit 2 and exactly one line: "snapmount error: <problem>; <fix>".

interface Setup {
  dir: string
  image: string
  mountpoint: string
}

/** A temp dir with one image, an empty mountpoint, and a teardown that never leaves a mount behind. */
async function setUp(t: Test): Promise<Setup> {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 64 * 1024)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  t.teardown(async () => {
    if (await isMounted(mountpoint)) await detach(mountpoint)
  })
  return { dir, image, mountpoint }
}

/** Every entry under `dir` with its type and content hash: what "nothing changed" is checked against. */
async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {}
  for (const entry of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, entry)
    const stats = await lstat(path)
    tree[entry] = stats.isFile() ? `file ${(stats.mode & 0o7777).toString(8)} ${sha256(await readFile(path))}` : `dir ${(stats.mode & 0o7777).toString(8)}`
  }
  return tree
}

/**
 * Runs the CLI, which must refuse with exit 2 and one stderr line matching `problem` and `fix`,
 * print nothing on stdout, mount nothing on `mountpoint` and change nothing under `dir`.
 */
async function expectRefusal(
  t: Test,
  { dir, mountpoint }: Setup,
  args: string[],
  problem: RegExp,
  fix: RegExp,
  run: (args: string[]) => Promise<CliResult> = runCli,
): Promise<void> {
  const before = await snapshotTree(dir)
  const result = await run(args)
  t.equal(result.code, 2, 'exit 2: bad input')
  t.equal(result.stdout, '', 'nothing on stdout')
  // Retries before giving up are logged as warnings; the refusal itself is one error line, the last.
  const errors = result.stderr.split('\n').filter((line) => !line.startsWith('snapmount warn: '))
  t.match(errors.join('\n'), /^snapmount error: [^\n]+; [^\n]+\n$/, `exactly one error line: ${result.stderr}`)
  t.match(result.stderr, problem, 'names the problem')
  t.match(result.stderr, fix, 'gives the fix')
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
  t.strictSame(await snapshotTree(dir), before, 'nothing created, removed or changed')
}

async function writeConfig(dir: string, name: string, text: string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

const yamlConfig = (snapshots: string) => `mountpoint: mnt\nsnapshots:\n${snapshots}`

t.test('config file problems', async (t) => {
  const cases: { label: string; config: string; problem: RegExp; fix: RegExp }[] = [
    {
      label: 'unknown type',
      config: yamlConfig('  - type: nfs\n    path: disk.raw\n'),
      problem: /: snapshots\[0\]\.type: unknown type "nfs"/,
      fix: /; use one of file, mmap, http, s3$/m,
    },
    {
      label: 'missing field',
      config: yamlConfig('  - type: file\n    name: disk\n'),
      problem: /: snapshots\[0\]\.path: missing/,
      fix: /; add path: the image file to serve$/m,
    },
    {
      label: 'missing mountpoint field',
      config: 'snapshots:\n  - type: file\n    path: disk.raw\n',
      problem: /: mountpoint: missing/,
      fix: /; add the directory to mount on/,
    },
    {
      label: 'extra field',
      config: yamlConfig('  - type: file\n    path: disk.raw\n    readonly: true\n'),
      problem: /: snapshots\[0\]\.readonly: unknown field/,
      fix: /; remove it \(known fields: name, type, path\)$/m,
    },
    {
      label: 'duplicate name',
      config: yamlConfig('  - type: file\n    path: disk.raw\n  - type: mmap\n    path: disk.raw\n'),
      problem: /: snapshots\[1\]\.name: "disk\.raw" is also the name of snapshots\[0\]/,
      fix: /; give each snapshot its own name$/m,
    },
    {
      label: "name with '/'",
      config: yamlConfig('  - type: file\n    path: disk.raw\n    name: vm/disk\n'),
      problem: /: snapshots\[0\]\.name: "vm\/disk" contains "\/"/,
      fix: /; give a plain file name such as base\.img$/m,
    },
    {
      label: "name '..'",
      config: yamlConfig('  - type: file\n    path: disk.raw\n    name: ".."\n'),
      problem: /: snapshots\[0\]\.name: "\.\." is not a file name/,
      fix: /; give a plain file name/,
    },
    {
      label: 'name over 255 bytes (128 two-byte characters)',
      config: yamlConfig(`  - type: file\n    path: disk.raw\n    name: ${'é'.repeat(128)}\n`),
      problem: /: snapshots\[0\]\.name: is 256 bytes long, over the limit of 255/,
      fix: /; give a shorter name$/m,
    },
  ]
  for (const { label, config, problem, fix } of cases) {
    t.test(label, async (t) => {
      const setup = await setUp(t)
      const file = await writeConfig(setup.dir, 'snapmount.yaml', config)
      await expectRefusal(t, setup, ['mount', '--config', file], new RegExp(`^snapmount error: ${file}${problem.source}`), fix)
    })
  }
})

t.test('name with NUL (JSON config)', async (t) => {
  const setup = await setUp(t)
  const file = await writeConfig(setup.dir, 'snapmount.json', '{"mountpoint": "mnt", "snapshots": [{"type": "file", "path": "disk.raw", "name": "disk\\u0000raw"}]}')
  t.match(await readFile(file, 'utf8'), /"disk\\u0000raw"/, 'the file holds the JSON escape, not a raw NUL')
  await expectRefusal(t, setup, ['mount', '--config', file], /snapshots\[0\]\.name: "disk\\u0000raw" contains a NUL byte/, /; give a plain file name/)
})

t.test('command-line names are checked like config names', async (t) => {
  const setup = await setUp(t)
  const { image, mountpoint } = setup
  await expectRefusal(t, setup, ['mount', mountpoint, `..=${image}`], /command line: snapshots\[0\]\.name: "\.\." is not a file name/, /plain file name/)
  await expectRefusal(t, setup, ['mount', mountpoint, `${'x'.repeat(256)}=${image}`], /command line: snapshots\[0\]\.name: is 256 bytes long/, /shorter name/)
  await expectRefusal(t, setup, ['mount', mountpoint, image, `disk.raw=${image}`], /snapshots\[1\]\.name: "disk\.raw" is also the name of snapshots\[0\]/, /own name/)
})

t.test('missing source file', async (t) => {
  const setup = await setUp(t)
  const missing = join(setup.dir, 'missing.raw')
  await expectRefusal(t, setup, ['mount', setup.mountpoint, setup.image, missing], new RegExp(`source ${missing} does not exist`), /; check the path$/m)
})

t.test('missing source given as an mmap URL', async (t) => {
  const setup = await setUp(t)
  const missing = join(setup.dir, 'missing.raw')
  await expectRefusal(t, setup, ['mount', setup.mountpoint, `mmap://${missing}`], new RegExp(`source ${missing} does not exist`), /check the path/)
})

t.test('source that is a directory', async (t) => {
  const setup = await setUp(t)
  const folder = join(setup.dir, 'images')
  await mkdir(folder)
  for (const source of [folder, `mmap://${folder}`]) {
    await expectRefusal(t, setup, ['mount', setup.mountpoint, source], new RegExp(`source ${folder} (is not a regular file|is a directory)`), /; give the path of (a raw )?image file/)
  }
})

/**
 * Root reads a mode-0000 file anyway, so as root the unreadable case runs the CLI as the
 * unprivileged `nobody` (uid 65534) through setpriv, when both exist.
 */
async function unprivilegedRunner(): Promise<{ run: (args: string[]) => Promise<CliResult> } | { skip: string }> {
  if (process.getuid?.() !== 0) return { run: runCli }
  const probe = await new Promise<Error | null>((resolve) => execFile('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'true'], (err) => resolve(err)))
  if (probe) return { skip: `running as root and cannot drop to uid ${NOBODY} with setpriv (${probe.message.split('\n')[0]}), so a mode-0000 file is readable` }
  return { run: (args) => runCli(args, { asNobody: true }) }
}

const unprivileged = await unprivilegedRunner()
t.test('unreadable source', { skip: 'skip' in unprivileged ? unprivileged.skip : false }, async (t) => {
  if ('skip' in unprivileged) return
  const setup = await setUp(t)
  // The unprivileged user must reach the mountpoint and the file, just not read the file.
  await chmod(setup.dir, 0o755)
  await chmod(setup.mountpoint, 0o755)
  await chmod(setup.image, 0o000)
  await expectRefusal(
    t,
    setup,
    ['mount', setup.mountpoint, setup.image],
    new RegExp(`source ${setup.image} is not readable \\(EACCES\\)`),
    /; grant read permission to the user running snapmount$/m,
    unprivileged.run,
  )
})

t.test('missing mountpoint is not created', async (t) => {
  const setup = await setUp(t)
  const missing = join(setup.dir, 'no-such-dir')
  await expectRefusal(t, setup, ['mount', missing, setup.image], new RegExp(`mountpoint ${missing} does not exist`), new RegExp(`; create it: mkdir -p ${missing}$`, 'm'))
  await t.rejects(lstat(missing), { code: 'ENOENT' }, 'still absent')
})

t.test('mountpoint that is a file', async (t) => {
  const setup = await setUp(t)
  const file = join(setup.dir, 'not-a-dir')
  await writeFile(file, 'keep me')
  await expectRefusal(t, setup, ['mount', file, setup.image], new RegExp(`mountpoint ${file} is not a directory`), /; give an empty directory$/m)
  t.equal(await readFile(file, 'utf8'), 'keep me')
})

t.test('mountpoint that is not empty', async (t) => {
  const setup = await setUp(t)
  await writeFile(join(setup.mountpoint, 'keep.txt'), 'precious')
  await mkdir(join(setup.mountpoint, 'sub'))
  await expectRefusal(
    t,
    setup,
    ['mount', setup.mountpoint, setup.image],
    new RegExp(`mountpoint ${setup.mountpoint} is not empty \\(2 entries\\)`),
    /; give an empty directory; mounting over files would hide them$/m,
  )
  t.strictSame((await readdir(setup.mountpoint)).sort(), ['keep.txt', 'sub'])
  t.equal(await readFile(join(setup.mountpoint, 'keep.txt'), 'utf8'), 'precious')
})

/** How many mounts sit exactly at `path` (a second one stacked on top would make it 2). */
async function mountCount(path: string): Promise<number> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  return mountinfo.split('\n').filter((line) => line.split(' ')[4] === path).length
}

t.test('mountpoint that already has a snapmount mount', async (t) => {
  const { dir, image, mountpoint } = await setUp(t)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, image])
  t.equal(await mountCount(mountpoint), 1)
  const other = await makeRandomImage(dir, 'other.raw', 4096, 2)
  const result = await runCli(['mount', mountpoint, other])
  t.equal(result.code, 2, 'exit 2')
  t.match(result.stderr, /^snapmount error: [^\n]+\n$/, `one line: ${result.stderr}`)
  t.match(result.stderr, new RegExp(`mountpoint ${mountpoint} already has a fuse\\.snapmount file system mounted on it`))
  t.match(result.stderr, new RegExp(`; unmount it first \\(fusermount -u ${mountpoint}\\) or choose another directory$`, 'm'))
  t.equal(await mountCount(mountpoint), 1, 'no second mount stacked on the first')
  t.strictSame(await readdir(mountpoint), ['disk.raw'], 'the first daemon still serves its image')
  t.equal(await daemon.stop(), 0, 'and stops cleanly')
  t.notOk(await isMounted(mountpoint))
})

t.test('config file missing', async (t) => {
  const setup = await setUp(t)
  const missing = join(setup.dir, 'nope.yaml')
  await expectRefusal(t, setup, ['mount', '--config', missing], new RegExp(`^snapmount error: ${missing}: config file does not exist`), /; check the --config path$/m)
})

t.test('config YAML syntax error', async (t) => {
  const setup = await setUp(t)
  const file = await writeConfig(setup.dir, 'snapmount.yaml', 'mountpoint: mnt\nsnapshots:\n  - path: disk.raw\n   type: file\n')
  await expectRefusal(t, setup, ['mount', '--config', file], new RegExp(`^snapmount error: ${file}: line 4: `), /; fix the YAML\/JSON syntax$/m)
})

t.test('--config together with a mountpoint or sources', async (t) => {
  const setup = await setUp(t)
  const file = await writeConfig(setup.dir, 'snapmount.yaml', yamlConfig('  - type: file\n    path: disk.raw\n'))
  for (const extra of [[setup.mountpoint, setup.image], [setup.image]]) {
    await expectRefusal(
      t,
      setup,
      ['mount', '--config', file, ...extra],
      /command line: arguments: .* given together with --config/,
      /; the config file names the mountpoint and the snapshots; remove the extra arguments$/m,
    )
  }
})

t.test('no sources', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(t, setup, ['mount', setup.mountpoint], /snapmount error: no sources given/, /; name at least one image: snapmount mount MOUNTPOINT \/path\/to\/image$/m)
})

t.test('mount with no arguments', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(t, setup, ['mount'], /snapmount error: no mountpoint given/, /; write snapmount mount MOUNTPOINT SOURCE\.\. or use --config$/m)
})

t.test('no command', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(t, setup, [], /snapmount error: give a command: mount, check, status, warm, verify, manifest or profile/, /; see snapmount --help$/m)
})

t.test('unknown command-line option', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(t, setup, ['mount', setup.mountpoint, setup.image, '--read-only'], /Unknown arguments?: read-only/, /; see snapmount --help$/m)
  await expectRefusal(t, setup, ['mount', setup.mountpoint, setup.image, '--allow_other'], /Unknown argument/, /see snapmount --help/)
})

t.test('an unsupported scheme', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(
    t,
    setup,
    ['mount', setup.mountpoint, setup.image, 'nbd://host/export'],
    /command line: source 2 \("nbd:\/\/host\/export"\): unsupported scheme nbd:/,
    /; use a path, file:\/\/\/path, mmap:\/\/\/path, an http\(s\):\/\/ URL or s3:\/\/bucket\/key$/m,
  )
})

t.test('an http:// source nobody answers', async (t) => {
  const setup = await setUp(t)
  const url = 'http://127.0.0.1:9/base.img' // the discard port: closed on loopback, refused at once
  await expectRefusal(t, setup, ['mount', setup.mountpoint, url], /cannot open http:\/\/127\.0\.0\.1:9\/base\.img: .*ECONNREFUSED/, /; check the URL, and that the server is up and reachable$/m)
})

t.test('a mountpoint below a file cannot be checked', async (t) => {
  const setup = await setUp(t)
  const below = join(setup.image, 'mnt')
  await expectRefusal(t, setup, ['mount', below, setup.image], new RegExp(`mountpoint ${below} cannot be checked \\(ENOTDIR\\)`), /; give a directory snapmount can read$/m)
})

t.test('a read timeout out of range on the command line', async (t) => {
  const setup = await setUp(t)
  await expectRefusal(t, setup, ['mount', setup.mountpoint, setup.image, '--read-timeout-ms', '5'], /command line: options\.read_timeout_ms: must be a whole number from 100 to 14000/, /read_timeout_ms: 10000$/m)
})

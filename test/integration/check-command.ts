import t, { type Test } from 'tap'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, runCli } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

// Sizes that are not multiples of any block or page size, so a rounded size shows.
const BASE_SIZE = 3 * 1024 * 1024 + 7
const VM_SIZE = 5001

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const base = await makeRandomImage(dir, 'base.img', BASE_SIZE, 1)
  await mkdir(join(dir, 'images'))
  const vm = await makeRandomImage(join(dir, 'images'), 'vm.raw', VM_SIZE, 2)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    ['mountpoint: mnt', 'snapshots:', '  - path: base.img', '    type: file', '  - name: disk', '    type: mmap', '    path: images/vm.raw', ''].join('\n'),
  )
  return { dir, base, vm, mountpoint, config }
}

t.test('check prints one line per snapshot with name, type and exact size, and mounts nothing', async (t) => {
  const { base, vm, mountpoint, config } = await setUp(t)
  const result = await runCli(['check', '--config', config])
  t.equal(result.code, 0, 'exit 0')
  t.equal(result.stderr, '', 'nothing on stderr')
  const lines = result.stdout.split('\n')
  t.equal(lines.pop(), '', 'ends with a newline')
  t.equal(lines.length, 2, 'one line per snapshot')
  const rows = lines.map((line) => line.split('\t'))
  t.strictSame(
    rows.map(([name, type, bytes]) => [name, type, bytes]),
    [
      ['base.img', 'file', String(BASE_SIZE)],
      ['disk', 'mmap', String(VM_SIZE)],
    ],
  )
  t.equal(rows[0]?.[4], base, 'the resolved path of each source')
  t.equal(rows[1]?.[4], vm)
  t.match(rows[0]?.[5], /^readable by uid \d+ only \(files 0400, root dir 0500, allow_other off\)$/, 'and who may read it')
  t.match(lines[0], /\t3\.0 MiB\t/, 'a size for people beside the exact one')
  t.match(lines[1], /\t4\.9 KiB\t/)
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
  t.strictSame(await readdir(mountpoint), [], 'the mountpoint is untouched')
})

t.test('check of an http snapshot shows what open learnt: the URL, the validator and the round trip', async (t) => {
  const { config } = await setUp(t)
  const server = await startFaultServer(t, seededBytes(4, 100_000))
  await writeFile(config, `${await readFile(config, 'utf8')}  - type: http\n    name: remote\n    url: ${server.url()}?token=secret\n`)
  const result = await runCli(['check', '--config', config])
  t.equal(result.code, 0, result.stderr)
  const remote = result.stdout.split('\n').find((line) => line.startsWith('remote\t'))
  const [name, type, bytes, size, source] = remote?.split('\t') ?? []
  t.strictSame([name, type, bytes, size], ['remote', 'http', '100000', '97.7 KiB'])
  t.equal(source?.split('; ')[0], `${server.url()}?token=REDACTED`, 'the URL, its query values redacted')
  t.match(source, /; etag "[0-9a-f]+"; ranges ok; \d+ ms round trip$/)
  t.same(
    server.requests.map(({ method, headers }) => `${method} ${headers.range ?? ''}`.trim()),
    ['HEAD', 'GET bytes=0-0'],
    'opened, not read',
  )
})

t.test('check does not need the mountpoint to exist', async (t) => {
  const { dir, config } = await setUp(t)
  await writeFile(config, (await readFile(config, 'utf8')).replace('mountpoint: mnt', 'mountpoint: not-yet'))
  const result = await runCli(['check', '--config', config])
  t.equal(result.code, 0, result.stderr)
  t.equal(result.stdout.split('\n').length, 3)
  t.notOk((await readdir(dir)).includes('not-yet'), 'and does not create it')
})

t.test('check with a missing source exits 2 naming it', async (t) => {
  const { dir, mountpoint, config } = await setUp(t)
  await writeFile(config, `${await readFile(config, 'utf8')}  - type: file\n    path: gone.img\n`)
  const result = await runCli(['check', '--config', config])
  t.equal(result.code, 2, 'exit 2')
  t.equal(result.stdout, '', 'no partial listing')
  t.match(result.stderr, /^snapmount error: [^\n]+\n$/, 'one line')
  t.match(result.stderr, new RegExp(`source ${join(dir, 'gone.img')} does not exist; check the path`))
  t.notOk(await isMounted(mountpoint))
})

t.test('check refuses an invalid config with exit 2', async (t) => {
  const { config } = await setUp(t)
  await writeFile(config, (await readFile(config, 'utf8')).replace('type: mmap', 'type: nbd'))
  const result = await runCli(['check', '--config', config])
  t.equal(result.code, 2)
  t.equal(result.stdout, '')
  t.match(result.stderr, new RegExp(`^snapmount error: ${config}: snapshots\\[1\\]\\.type: unknown type "nbd"; use one of file, mmap, http, s3\\n$`))
})

t.test('the cache flags override the config and go through its validation', async (t) => {
  const { config } = await setUp(t)
  const bad = await runCli(['check', '--config', config, '--cache-block-kib', '48'])
  t.equal(bad.code, 2, bad.stderr)
  t.match(bad.stderr, /^snapmount error: command line: options\.cache_block_kib: must be a power of two from \d+ to \d+; /)
  const small = await runCli(['check', '--config', config, '--cache-size-mib', '0'])
  t.equal(small.code, 2, small.stderr)
  t.match(small.stderr, /options\.cache_size_mib/)
  const good = await runCli(['check', '--config', config, '--cache-block-kib', '64', '--cache-size-mib', '64'])
  t.equal(good.code, 0, good.stderr)
})

t.test('check without --config exits 2', async (t) => {
  const result = await runCli(['check'])
  t.equal(result.code, 2)
  t.equal(result.stdout, '')
  t.match(result.stderr, /^snapmount error: Missing required argument: config; see snapmount --help\n$/)
})

t.test('--version prints the package version', async (t) => {
  const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.match(version, /^\d+\.\d+\.\d+/)
  const result = await runCli(['--version'])
  t.equal(result.code, 0)
  t.equal(result.stdout, `${version}\n`)
  t.equal(result.stderr, '')
})

t.test('--help lists the commands and exits 0', async (t) => {
  for (const flag of ['--help', '-h']) {
    const result = await runCli([flag])
    t.equal(result.code, 0, `${flag}: exit 0`)
    t.equal(result.stderr, '', `${flag}: nothing on stderr`)
    t.match(result.stdout, /^snapmount <command>/, `${flag}: usage first`)
    t.match(result.stdout, /snapmount mount \[mountpoint\] \[sources\.\.\]/, `${flag}: the mount command`)
    t.match(result.stdout, /snapmount check\s/, `${flag}: the check command`)
  }
})

t.test('each command’s --help shows examples and exits 0', async (t) => {
  const mount = await runCli(['mount', '--help'])
  t.equal(mount.code, 0)
  t.match(mount.stdout, /Examples:\n/)
  t.match(mount.stdout, /snapmount mount \/mnt\/snap \/var\/lib\/images\/base\.img\s+serve one image as \/mnt\/snap\/base\.img/)
  t.match(mount.stdout, /snapmount mount \/mnt\/snap disk=mmap:\/\/\/srv\/vm\.raw/)
  t.match(mount.stdout, /snapmount mount --config \/etc\/snapmount\.yaml/)
  t.match(mount.stdout, /\[name=\]PATH \| \[name=\]file:\/\/\/PATH \| \[name=\]mmap:\/\/\/PATH/, 'the source syntax')

  const check = await runCli(['check', '--help'])
  t.equal(check.code, 0)
  t.match(check.stdout, /Examples:\n\s+snapmount check --config \/etc\/snapmount\.yaml/)
  t.match(check.stdout, /--config\s+YAML or JSON config file\s+\[string\] \[required\]/)
})

import t, { type Test } from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { ConfigError } from '../../src/config/config-error.js'
import type { MountOptions } from '../../src/config/config.js'
import { loadConfig } from '../../src/config/load-config.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { mountOptions } from '../fixtures/mount-options.js'

const DEFAULTS: MountOptions = mountOptions({ allowOther: false, readTimeoutMs: 4321 })

async function writeConfig(t: Test, name: string, text: string): Promise<{ dir: string; file: string }> {
  const dir = await tempDir(t)
  const file = join(dir, name)
  await writeFile(file, text)
  return { dir, file }
}

/** loadConfig(file) must reject with a ConfigError whose origin is `file` as given. */
async function refuses(t: Test, file: string, field: string, problem: RegExp): Promise<ConfigError | undefined> {
  const thrown = await loadConfig(file, DEFAULTS).then(
    () => undefined,
    (err: unknown) => err,
  )
  if (!(thrown instanceof ConfigError)) {
    t.fail(`expected a ConfigError loading ${file}`, { found: thrown })
    return undefined
  }
  t.equal(thrown.code, 'E_CONFIG')
  t.equal(thrown.origin, file, 'names the file')
  t.equal(thrown.field, field)
  t.ok(thrown.message.startsWith(`${file}: `), thrown.message)
  t.match(thrown.message, problem)
  t.match(thrown.fix, /\S/, 'has a fix')
  return thrown
}

t.test('a YAML file', async (t) => {
  const { file } = await writeConfig(
    t,
    'snapmount.yaml',
    [
      '# served to the hypervisor',
      'mountpoint: /mnt/snap',
      'options:',
      '  read_timeout_ms: 2500',
      'snapshots:',
      '  - path: /images/base.img',
      '    type: file',
      '  - name: disk',
      '    type: mmap',
      '    path: /images/vm.raw',
      '',
    ].join('\n'),
  )
  t.strictSame(await loadConfig(file, DEFAULTS), {
    mountpoint: '/mnt/snap',
    options: { ...DEFAULTS, allowOther: false, readTimeoutMs: 2500 },
    snapshots: [
      { name: 'base.img', type: 'file', path: '/images/base.img' },
      { name: 'disk', type: 'mmap', path: '/images/vm.raw' },
    ],
  })
})

t.test('a JSON file', async (t) => {
  const raw = {
    mountpoint: '/mnt/snap',
    options: { allow_other: true },
    snapshots: [{ name: 'a', type: 'mmap', path: '/images/a.raw' }],
  }
  const { file } = await writeConfig(t, 'snapmount.json', JSON.stringify(raw, null, 2))
  t.strictSame(await loadConfig(file, DEFAULTS), {
    mountpoint: '/mnt/snap',
    options: { ...DEFAULTS, allowOther: true, readTimeoutMs: 4321 },
    snapshots: [{ name: 'a', type: 'mmap', path: '/images/a.raw' }],
  })
})

t.test('relative paths in the file are taken from its folder, not the working directory', async (t) => {
  const dir = await tempDir(t)
  await mkdir(join(dir, 'etc'))
  const file = join(dir, 'etc', 'snapmount.yaml')
  await writeFile(file, 'mountpoint: ../mnt\nsnapshots:\n  - type: file\n    path: ../images/base.img\n  - type: mmap\n    path: vm.raw\n')
  t.not(process.cwd(), join(dir, 'etc'), 'the working directory is elsewhere')
  for (const given of [file, relative(process.cwd(), file)]) {
    const config = await loadConfig(given, DEFAULTS)
    t.equal(config.mountpoint, join(dir, 'mnt'), `${given}: mountpoint`)
    t.strictSame(
      config.snapshots.map((spec) => ('path' in spec ? spec.path : undefined)),
      [join(dir, 'images', 'base.img'), join(dir, 'etc', 'vm.raw')],
      `${given}: snapshot paths`,
    )
  }
})

t.test('a missing file says it does not exist', async (t) => {
  const dir = await tempDir(t)
  const err = await refuses(t, join(dir, 'nope.yaml'), '', /config file does not exist/)
  t.match(err?.fix, /--config/)
})

t.test('a folder given as the config says it cannot be read', async (t) => {
  const dir = await tempDir(t)
  await refuses(t, dir, '', /config file cannot be read \(EISDIR\)/)
})

t.test('a YAML syntax error names the line', async (t) => {
  const { file } = await writeConfig(t, 'bad.yaml', 'mountpoint: /mnt/snap\nsnapshots:\n  - path: /images/base.img\n    type: [file\n')
  const err = await refuses(t, file, 'line 5', /^[^\n]+$/)
  t.match(err?.message, new RegExp(`^${file}: line 5: `))
  t.match(err?.fix, /YAML\/JSON syntax/)
})

t.test('a JSON syntax error names the line', async (t) => {
  const { file } = await writeConfig(t, 'bad.json', '{\n  "mountpoint": "/mnt/snap",\n  "snapshots": [\n    {"type": "file", "path": "/a.img"}}\n  ]\n}\n')
  const err = await refuses(t, file, 'line 4', /./)
  t.match(err?.fix, /YAML\/JSON syntax/)
})

t.test('an alias bomb is refused without a line (the parser gives none) and without expanding it', async (t) => {
  // Each level nine times the one before: 9^5 nodes if expanded; the parser stops counting aliases first.
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]']
  for (const [name, below] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd']]) levels.push(`${name}: &${name} [${Array(9).fill(`*${below}`).join(', ')}]`)
  const { file } = await writeConfig(t, 'bomb.yaml', `${levels.join('\n')}\n`)
  const err = await refuses(t, file, 'line ?', /^[^\n]+: line \?: Excessive alias count indicates a resource exhaustion attack$/)
  t.match(err?.fix, /YAML\/JSON syntax/)
})

t.test('validation errors inside the file name the file as origin', async (t) => {
  const { file } = await writeConfig(t, 'snapmount.yaml', 'mountpoint: /mnt/snap\nsnapshots:\n  - type: nfs\n    path: /a.img\n')
  const err = await refuses(t, file, 'snapshots[0].type', /unknown type "nfs"/)
  t.match(err?.fix, /file, mmap/)
})

t.test('an empty file is not a config', async (t) => {
  const { file } = await writeConfig(t, 'empty.yaml', '')
  await refuses(t, file, '(top level)', /must be a mapping/)
})

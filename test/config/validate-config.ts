import t, { type Test } from 'tap'
import { resolve } from 'node:path'
import { ConfigError } from '../../src/config/config-error.js'
import type { MountOptions } from '../../src/config/config.js'
import { validateConfig, validateOptions, type ValidationContext } from '../../src/config/validate-config.js'
import { mountOptions } from '../fixtures/mount-options.js'

const ORIGIN = '/etc/snapmount.yaml'
const BASE_DIR = '/srv/configs'
// Not the built-in defaults, so a test can tell they came from the context.
const DEFAULTS: MountOptions = mountOptions({ allowOther: true, readTimeoutMs: 1234 })
const CONTEXT: ValidationContext = { origin: ORIGIN, baseDir: BASE_DIR, defaults: DEFAULTS }

const snapshot = (fields: Record<string, unknown> = {}) => ({ type: 'file', path: '/images/base.img', ...fields })
const config = (fields: Record<string, unknown> = {}) => ({ mountpoint: '/mnt/snap', snapshots: [snapshot()], ...fields })

/** Runs `attempt`, which must throw a ConfigError naming `origin` and `field`, with a fix. */
function expectConfigError(t: Test, attempt: () => unknown, field: string, problem: RegExp, origin = ORIGIN): ConfigError | undefined {
  let thrown: unknown
  try {
    attempt()
  } catch (err) {
    thrown = err
  }
  if (!(thrown instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${field}`, { found: thrown })
    return undefined
  }
  t.equal(thrown.code, 'E_CONFIG', 'code E_CONFIG')
  t.equal(thrown.origin, origin, 'names the origin')
  t.equal(thrown.field, field, 'names the field')
  t.ok(thrown.message.startsWith(`${origin}: ${field}: `), `message starts with origin and field: ${thrown.message}`)
  t.match(thrown.message, problem, 'says what is wrong')
  t.match(thrown.fix, /\S/, 'has a fix')
  return thrown
}

const rejects = (t: Test, raw: unknown, field: string, problem: RegExp) => expectConfigError(t, () => validateConfig(raw, CONTEXT), field, problem)

t.test('a valid config comes back with every default filled in', async (t) => {
  t.strictSame(validateConfig(config(), CONTEXT), {
    mountpoint: '/mnt/snap',
    options: DEFAULTS,
    snapshots: [{ name: 'base.img', type: 'file', path: '/images/base.img' }],
  })
})

t.test('options given override the defaults one by one', async (t) => {
  t.strictSame(validateConfig(config({ options: { allow_other: false } }), CONTEXT).options, { ...DEFAULTS, allowOther: false })
  t.strictSame(validateConfig(config({ options: { read_timeout_ms: 5000 } }), CONTEXT).options, { ...DEFAULTS, readTimeoutMs: 5000 })
  t.strictSame(validateConfig(config({ options: {} }), CONTEXT).options, DEFAULTS)
  t.strictSame(validateConfig(config({ options: { read_timeout_ms: 100 } }), CONTEXT).options.readTimeoutMs, 100, 'lowest allowed')
  t.strictSame(validateConfig(config({ options: { read_timeout_ms: 14_000 } }), CONTEXT).options.readTimeoutMs, 14_000, 'highest allowed')
})

t.test('the returned options are a copy, not the defaults object', async (t) => {
  const { options } = validateConfig(config(), CONTEXT)
  options.readTimeoutMs = 9999
  t.equal(DEFAULTS.readTimeoutMs, 1234)
})

t.test('name defaults to the basename of the path; a given name wins', async (t) => {
  const { snapshots } = validateConfig(
    config({
      snapshots: [
        snapshot({ path: '/images/vm/disk0.raw' }),
        snapshot({ path: '/images/vm/disk1.raw', name: 'second' }),
        snapshot({ path: '/images/vm/disk2.raw', type: 'mmap' }),
      ],
    }),
    CONTEXT,
  )
  t.strictSame(snapshots, [
    { name: 'disk0.raw', type: 'file', path: '/images/vm/disk0.raw' },
    { name: 'second', type: 'file', path: '/images/vm/disk1.raw' },
    { name: 'disk2.raw', type: 'mmap', path: '/images/vm/disk2.raw' },
  ])
})

t.test('relative paths are resolved against baseDir, not the working directory', async (t) => {
  const result = validateConfig(config({ mountpoint: 'mnt', snapshots: [snapshot({ path: '../images/a.img' })] }), CONTEXT)
  t.equal(result.mountpoint, resolve(BASE_DIR, 'mnt'))
  t.equal(result.mountpoint, '/srv/configs/mnt')
  t.match(result.snapshots[0], { path: '/srv/images/a.img' })
  t.equal(result.snapshots[0]?.name, 'a.img', 'the default name comes from the resolved path')
})

t.test('a name that merely contains ".." is a fine file name', async (t) => {
  for (const name of ['a..b', '..a', 'b..', '...']) {
    t.equal(validateConfig(config({ snapshots: [snapshot({ name })] }), CONTEXT).snapshots[0]?.name, name, name)
  }
})

t.test('names up to 255 bytes are accepted', async (t) => {
  for (const name of ['x'.repeat(255), 'é'.repeat(127)]) {
    t.equal(validateConfig(config({ snapshots: [snapshot({ name })] }), CONTEXT).snapshots[0]?.name, name, `${Buffer.byteLength(name)} bytes`)
  }
})

t.test('the top level must be a mapping', async (t) => {
  for (const raw of [null, undefined, 'mountpoint: /mnt', 42, [config()]]) {
    t.test(JSON.stringify(raw) ?? 'undefined', async (t) => void rejects(t, raw, '(top level)', /must be a mapping/))
  }
})

t.test('unknown top-level field', async (t) => {
  const err = rejects(t, config({ snapshot: [] }), 'snapshot', /unknown field/)
  t.match(err?.fix, /mountpoint, options, snapshots/, 'the fix lists the known fields')
})

t.test('missing mountpoint', async (t) => {
  const { mountpoint: _, ...raw } = config()
  rejects(t, raw, 'mountpoint', /missing/)
})

t.test('mountpoint that is not a non-empty string', async (t) => {
  for (const mountpoint of ['', 7, null, ['/mnt']]) {
    t.test(JSON.stringify(mountpoint), async (t) => void rejects(t, config({ mountpoint }), 'mountpoint', /non-empty string/))
  }
})

t.test('missing snapshots', async (t) => {
  const { snapshots: _, ...raw } = config()
  rejects(t, raw, 'snapshots', /missing/)
})

t.test('snapshots must be a non-empty list', async (t) => {
  rejects(t, config({ snapshots: [] }), 'snapshots', /non-empty list/)
  rejects(t, config({ snapshots: snapshot() }), 'snapshots', /non-empty list/)
  rejects(t, config({ snapshots: null }), 'snapshots', /non-empty list/)
})

t.test('a snapshot must be a mapping', async (t) => {
  rejects(t, config({ snapshots: [snapshot(), '/images/base.img'] }), 'snapshots[1]', /must be a mapping/)
  rejects(t, config({ snapshots: [null] }), 'snapshots[0]', /must be a mapping/)
})

t.test('missing type', async (t) => {
  const err = rejects(t, config({ snapshots: [{ path: '/images/base.img' }] }), 'snapshots[0].type', /missing/)
  t.match(err?.fix, /file, mmap/, 'the fix lists the known types')
})

t.test('unknown type', async (t) => {
  const err = rejects(t, config({ snapshots: [snapshot({ type: 'nfs' })] }), 'snapshots[0].type', /unknown type "nfs"/)
  t.match(err?.fix, /file, mmap/, 'the fix lists the known types')
  rejects(t, config({ snapshots: [snapshot({ type: 'FILE' })] }), 'snapshots[0].type', /unknown type "FILE"/)
  rejects(t, config({ snapshots: [snapshot({ type: 1 })] }), 'snapshots[0].type', /unknown type 1/)
})

t.test('missing path', async (t) => {
  rejects(t, config({ snapshots: [{ type: 'mmap', name: 'disk' }] }), 'snapshots[0].path', /missing/)
})

t.test('path or name that is not a non-empty string', async (t) => {
  rejects(t, config({ snapshots: [snapshot({ path: '' })] }), 'snapshots[0].path', /non-empty string/)
  rejects(t, config({ snapshots: [snapshot({ path: 3 })] }), 'snapshots[0].path', /non-empty string/)
  rejects(t, config({ snapshots: [snapshot({ name: '' })] }), 'snapshots[0].name', /non-empty string/)
  rejects(t, config({ snapshots: [snapshot({ name: 2024 })] }), 'snapshots[0].name', /non-empty string/)
})

t.test('extra field in a snapshot', async (t) => {
  const err = rejects(t, config({ snapshots: [snapshot(), snapshot({ name: 'b', size: 10 })] }), 'snapshots[1].size', /unknown field/)
  t.match(err?.fix, /name, type, path/, 'the fix lists the known fields')
})

t.test('duplicate name names both snapshots', async (t) => {
  const raw = config({
    snapshots: [snapshot({ name: 'a' }), snapshot({ path: '/x/base.img', name: 'b' }), snapshot({ path: '/y/base.img', name: 'a' })],
  })
  const err = rejects(t, raw, 'snapshots[2].name', /"a" is also the name of snapshots\[0\]/)
  t.match(err?.fix, /own name/)
})

t.test('duplicate default names (same basename in two folders) are caught too', async (t) => {
  const raw = config({ snapshots: [snapshot({ path: '/a/disk.raw' }), snapshot({ path: '/b/disk.raw' })] })
  rejects(t, raw, 'snapshots[1].name', /"disk.raw" is also the name of snapshots\[0\]/)
})

t.test('names that cannot be one directory entry', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['slash', 'a/b', /"a\/b" contains "\/"/],
    ['leading slash', '/etc', /contains "\/"/],
    ['dot dot', '..', /"\.\." is not a file name/],
    ['dot', '.', /"\." is not a file name/],
    ['NUL', 'a\0b', /contains a NUL byte/],
    ['256 ASCII bytes', 'x'.repeat(256), /is 256 bytes long, over the limit of 255/],
    ['128 two-byte characters', 'é'.repeat(128), /is 256 bytes long, over the limit of 255/],
    ['86 three-byte characters', '€'.repeat(86), /is 258 bytes long, over the limit of 255/],
  ]
  for (const [label, name, problem] of cases) {
    t.test(label, async (t) => void rejects(t, config({ snapshots: [snapshot({ name })] }), 'snapshots[0].name', problem))
  }
  t.test('the check applies to every snapshot, not just the first', async (t) => {
    rejects(t, config({ snapshots: [snapshot(), snapshot({ name: '..' })] }), 'snapshots[1].name', /not a file name/)
  })
})

t.test('options', async (t) => {
  t.test('must be a mapping', async (t) => {
    rejects(t, config({ options: ['allow_other'] }), 'options', /must be a mapping/)
  })
  t.test('an empty section (null) means no options; an empty value is not a default', async (t) => {
    t.strictSame(validateConfig(config({ options: null }), CONTEXT).options, DEFAULTS)
    rejects(t, config({ options: { allow_other: null } }), 'options.allow_other', /must be true or false/)
    rejects(t, config({ options: { read_timeout_ms: null } }), 'options.read_timeout_ms', /whole number/)
  })
  t.test('unknown field', async (t) => {
    const err = rejects(t, config({ options: { allowOther: true } }), 'options.allowOther', /unknown field/)
    t.match(err?.fix, /allow_other, read_timeout_ms/)
  })
  t.test('allow_other not boolean', async (t) => {
    for (const value of ['yes', 1, 'true', 0]) {
      rejects(t, config({ options: { allow_other: value } }), 'options.allow_other', /must be true or false/)
    }
  })
  t.test('read_timeout_ms out of range or not a whole number', async (t) => {
    for (const value of [99, 14_001, 0, -1, 100.5, '5000', Number.NaN, Infinity, true]) {
      const err = rejects(t, config({ options: { read_timeout_ms: value } }), 'options.read_timeout_ms', /whole number from 100 to 14000/)
      t.match(err?.fix, /read_timeout_ms: 10000/, `${String(value)}: the fix gives an example`)
    }
  })
})

t.test('validateOptions checks the command-line flags alone', async (t) => {
  const origin = 'command line'
  t.strictSame(validateOptions({}, DEFAULTS, origin), DEFAULTS, 'no flags: the defaults')
  t.strictSame(validateOptions({ allow_other: false, read_timeout_ms: 200 }, DEFAULTS, origin), { ...DEFAULTS, allowOther: false, readTimeoutMs: 200 })
  const check = (raw: Record<string, unknown>, field: string, problem: RegExp) =>
    expectConfigError(t, () => validateOptions(raw, DEFAULTS, origin), field, problem, origin)
  check({ timeout: 5 }, 'options.timeout', /unknown field/)
  check({ allow_other: 'no' }, 'options.allow_other', /must be true or false/)
  check({ read_timeout_ms: 20_000 }, 'options.read_timeout_ms', /from 100 to 14000/)
  check({ read_timeout_ms: 2.5 }, 'options.read_timeout_ms', /whole number/)
})

import t from 'tap'
import { ConfigError } from '../../src/config/config-error.js'
import type { MountOptions } from '../../src/config/config.js'
import { checkAccess } from '../../src/config/validate-access.js'
import { validateConfig, validateOptions } from '../../src/config/validate-config.js'

const fail = (field: string, problem: string, fix: string) => new ConfigError('test.yaml', field, problem, fix)

t.test('uid and gid: numbers, digit strings and names; umask: octal in a string', async (t) => {
  t.same(checkAccess(undefined, {}, fail), {}, 'nothing given, no defaults: nothing')
  t.same(checkAccess(null, { uid: 5 }, fail), { uid: 5 }, 'defaults kept')
  t.same(checkAccess({ uid: 64055, gid: '112', umask: '0027' }, {}, fail), { uid: 64055, gid: 112, umask: 0o027 })
  t.same(checkAccess({ uid: 'libvirt-qemu', gid: 'kvm', umask: '22' }, {}, fail), { uid: 'libvirt-qemu', gid: 'kvm', umask: 0o022 })
  t.same(checkAccess({ umask: '0' }, { uid: 1, gid: 2, umask: 0o077 }, fail), { uid: 1, gid: 2, umask: 0 }, 'a given value wins over the default')
})

t.test('what is refused, with the field and a fix', async (t) => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ uid: -1 }, 'options.uid', /whole number from 0 to 4294967294/],
    [{ uid: 2 ** 32 - 1 }, 'options.uid', /whole number/],
    [{ gid: 1.5 }, 'options.gid', /whole number/],
    [{ uid: '' }, 'options.uid', /must be a user id or name/],
    [{ gid: 'a b' }, 'options.gid', /must be a group id or name/],
    [{ uid: true }, 'options.uid', /must be a user id or name/],
    [{ umask: 27 }, 'options.umask', /octal digits in quotes, e\.g\. "0027" \(got 27\)/],
    [{ umask: '0089' }, 'options.umask', /octal digits/],
    [{ umask: '00277' }, 'options.umask', /octal digits/],
  ]
  for (const [options, field, problem] of cases) {
    t.throws(() => checkAccess(options, {}, fail), { field, message: problem, fix: /./ }, JSON.stringify(options))
  }
})

// Every option the other checks need, so only the access fields vary here.
const DEFAULTS = { allowOther: false, readTimeoutMs: 10_000, cacheBytes: 2 ** 30, blockBytes: 2 ** 17, diskCacheBytes: 2 ** 33, logLevel: 'info' } as MountOptions
const context = { origin: 'test.yaml', baseDir: '/srv', defaults: DEFAULTS }
const snapshots = [{ type: 'file', path: 'a.img' }]

t.test('through validateConfig and validateOptions (command-line flags over the file)', async (t) => {
  const config = validateConfig({ mountpoint: '/mnt', options: { uid: 'nobody', umask: '0027' }, snapshots }, context)
  t.match(config.options, { uid: 'nobody', umask: 0o027 })
  t.throws(() => validateConfig({ mountpoint: '/mnt', options: { owner: 1 }, snapshots }, context), { field: 'options.owner', message: /unknown field/, fix: /known fields: .*uid, gid, umask/ }, 'an unknown option lists the access fields')
  const flags = validateOptions({ gid: '44' }, config.options, 'command line')
  t.match(flags, { uid: 'nobody', gid: 44, umask: 0o027 }, 'a flag adds to the file, which keeps the rest')
})

t.test('lazy: any snapshot type may have it; only true is written into the spec', async (t) => {
  const config = validateConfig(
    {
      mountpoint: '/mnt',
      snapshots: [
        { type: 'file', path: 'a.img', lazy: true },
        { type: 'http', url: 'https://example.com/b.img', lazy: true },
        { type: 's3', url: 's3://bucket/c.img', lazy: false },
        { type: 'mmap', path: 'd.img' },
      ],
    },
    context,
  )
  t.same(config.snapshots.map((spec) => spec.lazy), [true, true, undefined, undefined])
  t.throws(() => validateConfig({ mountpoint: '/mnt', snapshots: [{ type: 'file', path: 'a.img', lazy: 'yes' }] }, context), { field: 'snapshots[0].lazy', message: /true or false/ })
})

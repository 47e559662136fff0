import t from 'tap'
import { ConfigError } from '../../src/config/config-error.js'
import type { MountOptions } from '../../src/config/config.js'
import { validateOptions } from '../../src/config/validate-config.js'
import { OBSERVABILITY_DEFAULTS } from '../../src/cli/observability.js'

const MiB = 2 ** 20
const DEFAULTS: MountOptions = { ...OBSERVABILITY_DEFAULTS, allowOther: false, readTimeoutMs: 1000, cacheBytes: 256 * MiB, blockBytes: 64 * 1024, cacheDir: undefined, diskCacheBytes: 2 * 1024 * MiB }
const ORIGIN = 'command line'

t.test('cache options: given values in bytes, defaults where absent', async (t) => {
  t.match(validateOptions({}, DEFAULTS, ORIGIN), { cacheBytes: 256 * MiB, blockBytes: 64 * 1024 })
  t.match(validateOptions({ cache_size_mib: 64 }, DEFAULTS, ORIGIN), { cacheBytes: 64 * MiB, blockBytes: 64 * 1024 })
  t.match(validateOptions({ cache_block_kib: 4 }, DEFAULTS, ORIGIN), { blockBytes: 4096 })
  t.match(validateOptions({ cache_block_kib: 4096, cache_size_mib: 1024 * 1024 }, DEFAULTS, ORIGIN), { blockBytes: 4 * MiB, cacheBytes: 1024 * 1024 * MiB })
})

t.test('cache options out of range say so, with an example', async (t) => {
  const refused = (raw: Record<string, unknown>, field: string, problem: RegExp, fix: RegExp) => {
    const err = t.throws(() => validateOptions(raw, DEFAULTS, ORIGIN)) as unknown
    t.ok(err instanceof ConfigError, `${JSON.stringify(raw)} is a ConfigError`)
    t.match(err, { field, message: problem, fix })
  }
  for (const value of [63, 1024 * 1024 + 1, 100.5, '1024', null, true]) {
    refused({ cache_size_mib: value }, 'options.cache_size_mib', /whole number from 64 to 1048576/, /cache_size_mib: 1024/)
  }
  for (const value of [2, 8192, 96, 12.5, '128']) {
    refused({ cache_block_kib: value }, 'options.cache_block_kib', /power of two from 4 to 4096/, /cache_block_kib: 128/)
  }
})

t.test('disk cache options: off by default; an absolute cache_dir and a bound in GiB', async (t) => {
  const GiB = 1024 * MiB
  t.match(validateOptions({}, DEFAULTS, ORIGIN), { cacheDir: undefined, diskCacheBytes: 2 * GiB })
  t.match(validateOptions({ cache_dir: '/var/cache/snapmount', disk_cache_size_gib: 3 }, DEFAULTS, ORIGIN), { cacheDir: '/var/cache/snapmount', diskCacheBytes: 3 * GiB })
  t.match(validateOptions({ cache_dir: null }, { ...DEFAULTS, cacheDir: '/var/cache/a' }, ORIGIN), { cacheDir: undefined }, 'null turns it off')
  t.match(validateOptions({ disk_cache_size_gib: 5 }, { ...DEFAULTS, cacheDir: '/var/cache/a' }, ORIGIN), { cacheDir: '/var/cache/a', diskCacheBytes: 5 * GiB }, 'kept from the defaults')
  for (const value of ['var/cache', 7, '']) {
    t.throws(() => validateOptions({ cache_dir: value }, DEFAULTS, ORIGIN), { field: 'options.cache_dir', message: /absolute path/ })
  }
  for (const value of [0, 1.5, '10', 64 * 1024 + 1]) {
    t.throws(() => validateOptions({ disk_cache_size_gib: value }, DEFAULTS, ORIGIN), { field: 'options.disk_cache_size_gib', message: /whole number from 1 to 65536/ })
  }
})

t.test('with the disk cache turned on, the block cache defaults to 256 MiB unless its size is given', async (t) => {
  const usual = { ...DEFAULTS, cacheBytes: 1024 * MiB }
  t.match(validateOptions({ cache_dir: '/c' }, usual, ORIGIN), { cacheBytes: 256 * MiB }, 'smaller')
  t.match(validateOptions({ cache_dir: '/c', cache_size_mib: 2048 }, usual, ORIGIN), { cacheBytes: 2048 * MiB }, 'as given')
  t.match(validateOptions({ cache_dir: '/c' }, { ...DEFAULTS, cacheBytes: 512 * MiB }, ORIGIN), { cacheBytes: 512 * MiB }, 'a size given before (not the usual default) is kept')
  t.match(validateOptions({ cache_dir: '/c' }, { ...usual, cacheDir: '/b' }, ORIGIN), { cacheBytes: 1024 * MiB }, 'already on: the size given with it is kept')
  t.match(validateOptions({}, usual, ORIGIN), { cacheBytes: 1024 * MiB }, 'off: the usual default')
})

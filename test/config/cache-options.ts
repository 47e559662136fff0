import t from 'tap'
import { ConfigError } from '../../src/config/config-error.js'
import type { MountOptions } from '../../src/config/config.js'
import { validateOptions } from '../../src/config/validate-config.js'
import { OBSERVABILITY_DEFAULTS } from '../../src/cli/observability.js'

const MiB = 2 ** 20
const DEFAULTS: MountOptions = { ...OBSERVABILITY_DEFAULTS, allowOther: false, readTimeoutMs: 1000, cacheBytes: 256 * MiB, blockBytes: 64 * 1024 }
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

import t from 'tap'
import { validateOptions } from '../../src/config/validate-config.js'
import { isLoopback } from '../../src/config/validate-observability.js'
import type { MountOptions } from '../../src/config/config.js'

const DEFAULTS = {
  allowOther: false,
  readTimeoutMs: 10_000,
  cacheBytes: 1024 * 1024 * 1024,
  blockBytes: 128 * 1024,
  diskCacheBytes: 10 * 1024 ** 3,
  logLevel: 'info',
  metrics: undefined,
  controlSocket: undefined,
} as MountOptions
const check = (raw: Record<string, unknown>, defaults: MountOptions = DEFAULTS) => validateOptions(raw, defaults, 'snap.yaml')

t.test('log_level, metrics and control_socket: values and defaults', async (t) => {
  t.match(check({}), { logLevel: 'info', metrics: undefined, controlSocket: undefined })
  t.match(check({ log_level: 'debug', control_socket: '/run/x.sock' }), { logLevel: 'debug', controlSocket: '/run/x.sock' })
  t.same(check({ metrics: { listen: '127.0.0.1:9464' } }).metrics, { host: '127.0.0.1', port: 9464, allowRemote: false })
  t.same(check({ metrics: { listen: 'localhost:0' } }).metrics, { host: '127.0.0.1', port: 0, allowRemote: false })
  t.same(check({ metrics: { listen: '[::1]:9464' } }).metrics, { host: '::1', port: 9464, allowRemote: false })
  t.same(check({ metrics: { listen: '0.0.0.0:9464', allow_remote: true } }).metrics, { host: '0.0.0.0', port: 9464, allowRemote: true })
  const on = check({ metrics: { listen: '127.0.0.1:1', allow_remote: true } })
  t.same(check({ metrics: { listen: '10.0.0.1:9' } }, on).metrics, { host: '10.0.0.1', port: 9, allowRemote: true }, 'a flag keeps the file\'s allow_remote')
  t.equal(check({ metrics: false }, on).metrics, undefined, 'false turns it off')
  t.equal(check({ metrics: null }, on).metrics, undefined)
  t.same(check({}, on).metrics, on.metrics)
})

t.test('refusals name the field and the fix', async (t) => {
  const refuse = (raw: Record<string, unknown>, field: string, problem: RegExp) =>
    t.throws(() => check(raw), { message: new RegExp(`^snap\\.yaml: ${field.replace(/\./g, '\\.')}: .*${problem.source}`) }, field)
  refuse({ log_level: 'loud' }, 'options.log_level', /must be one of debug, info, warn, error/)
  refuse({ control_socket: 'rel.sock' }, 'options.control_socket', /absolute path/)
  refuse({ control_socket: 5 }, 'options.control_socket', /absolute path/)
  refuse({ metrics: 'on' }, 'options.metrics', /mapping/)
  refuse({ metrics: { listen: '127.0.0.1:9', port: 1 } }, 'options.metrics.port', /unknown field/)
  refuse({ metrics: {} }, 'options.metrics.listen', /missing/)
  refuse({ metrics: { listen: 9464 } }, 'options.metrics.listen', /is not HOST:PORT/)
  refuse({ metrics: { listen: 'example.com:9464' } }, 'options.metrics.listen', /is not an IP address/)
  refuse({ metrics: { listen: '[127.0.0.1]:9464' } }, 'options.metrics.listen', /is not an IP address/)
  refuse({ metrics: { listen: '127.0.0.1:70000' } }, 'options.metrics.listen', /over 65535/)
  refuse({ metrics: { listen: '0.0.0.0:9464' } }, 'options.metrics.listen', /not a loopback address.*no authentication/)
  refuse({ metrics: { listen: '[::]:9464', allow_remote: 'yes' } }, 'options.metrics.allow_remote', /true or false/)
})

t.test('loopback addresses', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(host), host)
  for (const host of ['0.0.0.0', '10.0.0.1', '::', 'fe80::1', '128.0.0.1']) t.notOk(isLoopback(host), host)
})

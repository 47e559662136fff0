import t from 'tap'
import { createServer } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { observability, observabilityFlags } from '../../src/cli/observability.js'
import { validateOptions } from '../../src/config/validate-config.js'
import { controlRequest } from '../../src/control/client.js'
import type { StatusReport } from '../../src/control/protocol.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { tempDir } from '../fixtures/temp-dir.js'

function recordingLogger() {
  const errors: Array<{ msg: string; fields: unknown }> = []
  return { errors, logger: { info: () => {}, warn: () => {}, error: (msg: string, fields?: unknown) => errors.push({ msg, fields }) } }
}

t.test("the command-line flags become options: fields, which override the config file's", async (t) => {
  t.same(observabilityFlags({}), {}, 'no flags, nothing overridden')
  const all = { 'log-level': 'debug', 'metrics-listen': '[::1]:9464', 'metrics-allow-remote': true, 'control-socket': '/run/x.sock' }
  t.same(observabilityFlags(all), { log_level: 'debug', metrics: { listen: '[::1]:9464', allow_remote: true }, control_socket: '/run/x.sock' })
  t.same(observabilityFlags({ 'metrics-allow-remote': false }), { metrics: { allow_remote: false } }, 'one metrics flag alone')
  const fromFile = mountOptions({ logLevel: 'warn', controlSocket: '/run/file.sock' })
  t.match(validateOptions(observabilityFlags(all), fromFile, 'command line'), {
    logLevel: 'debug',
    metrics: { host: '::1', port: 9464, allowRemote: true },
    controlSocket: '/run/x.sock',
  })
  t.match(validateOptions(observabilityFlags({ 'metrics-listen': '127.0.0.1:0' }), fromFile, 'command line'), { logLevel: 'warn', controlSocket: '/run/file.sock', metrics: { port: 0 } }, "the file's values where no flag is given")
})

t.test('a metrics port or control socket that cannot be had is logged, and serving goes on', async (t) => {
  const dir = await tempDir(t)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as { port: number }).port
  const notASocket = join(dir, 'ctl.sock')
  await writeFile(notASocket, 'a file of someone else')
  const { errors, logger } = recordingLogger()
  const options = mountOptions({ metrics: { host: '127.0.0.1', port, allowRemote: false }, controlSocket: notASocket })
  const served = await observability({ mountpoint: '/mnt/x', options, snapshots: [] }, { env: {}, logger })

  await served.serve({ snapshots: () => [], waiting: () => [] })
  t.match(errors, [
    { msg: new RegExp(`^metrics endpoint 127\\.0\\.0\\.1:${port} not started: .*EADDRINUSE.*; serving without it$`), fields: { code: 'E_METRICS_LISTEN' } },
    { msg: new RegExp(`^control socket ${notASocket} not started: .*; snapmount status cannot reach this daemon$`), fields: { code: 'E_CONTROL_SOCKET' } },
  ])
  t.equal(errors.length, 2, 'one line each')
  await served.close()
  t.pass('close has nothing to close and still resolves')
})

t.test('with both available: the socket reports the endpoint it serves', async (t) => {
  const dir = await tempDir(t)
  const socket = join(dir, 'ctl.sock')
  const { errors, logger } = recordingLogger()
  const options = mountOptions({ metrics: { host: '127.0.0.1', port: 0, allowRemote: false }, controlSocket: socket })
  const served = await observability({ mountpoint: '/mnt/x', options, snapshots: [] }, { env: {}, logger })
  await served.serve({ snapshots: () => [{ name: 'disk', backend: new MemoryBackend(Buffer.alloc(3)) }], waiting: () => [] })
  t.teardown(() => served.close())
  const report = (await controlRequest(socket, { op: 'status' })) as StatusReport
  t.match(report, { mountpoint: '/mnt/x', metricsUrl: /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, snapshots: [{ name: 'disk', size: 3 }] })
  t.match(await (await fetch(report.metricsUrl!)).text(), /^snapmount_snapshot_size_bytes\{snapshot="disk"\} 3$/m)
  t.same(errors, [])
})

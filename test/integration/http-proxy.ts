import t from 'tap'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startConnectProxy } from '../fixtures/connect-proxy.js'
import { startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { ddRange } from '../fixtures/readers.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

t.test('HTTP_PROXY carries the requests, and NO_PROXY exempts a host', async (t) => {
  const bytes = seededBytes(31, 512 * 1024)
  const server = await startFaultServer(t, bytes)
  const proxy = await startConnectProxy(t)
  const dir = await tempDir(t)
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY }
  t.teardown(() => Object.assign(process.env, saved))

  const mount = async (name: string, env: Record<string, string>) => {
    const mountpoint = join(dir, name)
    await mkdir(mountpoint)
    Object.assign(process.env, env) // the daemon, a child process, inherits the environment
    const daemon = await startDaemon(t, mountpoint, [mountpoint, `disk=${server.url()}`])
    const got = await ddRange(join(mountpoint, 'disk'), 4096, 65536, { direct: true })
    t.ok(got.equals(bytes.subarray(4096, 4096 + 65536)), `${name}: exact bytes`)
    t.equal(await daemon.stop(), 0)
  }

  await mount('proxied', { HTTP_PROXY: proxy.url, NO_PROXY: '' })
  const origin = new URL(server.origin).host
  t.ok(proxy.tunnels.length > 0 && proxy.tunnels.every((to) => to === origin), `tunnelled to ${origin} through the proxy`)

  const before = proxy.tunnels.length
  await mount('exempt', { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' })
  t.equal(proxy.tunnels.length, before, 'NO_PROXY: straight to the server')
})

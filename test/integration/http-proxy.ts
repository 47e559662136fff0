import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { ddRange } from '../fixtures/readers.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

/** A forward proxy that tunnels CONNECT requests to loopback only, and remembers where to. */
async function startConnectProxy(t: Test) {
  const tunnels: string[] = []
  const server = createServer((_, response) => response.writeHead(405).end())
  server.on('connect', (request, client, head) => {
    tunnels.push(request.url ?? '')
    const [host, port] = (request.url ?? '').split(':')
    if (host !== '127.0.0.1') return client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client).pipe(upstream)
    })
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tunnels }
}

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

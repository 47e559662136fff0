import { createServer } from 'node:net'

/**
 * A loopback port free a moment ago. Another process could take it before the caller binds it;
 * the servers started with it (nginx, radosgw) report that at start and their launchers retry.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

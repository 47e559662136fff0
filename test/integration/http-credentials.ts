import t from 'tap'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startDaemon, type Daemon } from '../fixtures/daemon.js'
import { startFaultServer, type FaultServer } from '../fixtures/fault-server.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { keepReading } from '../fixtures/readers.js'
import { seededBytes } from '../fixtures/test-data.js'

/**
 * A header token read from a file, rotated under a live mount: the server starts accepting only
 * the new token at the moment the file is replaced, as when an expiring token is renewed, and a
 * reader reading all along never gets an error.
 */

const MiB = 1024 * 1024
const OBJECT = seededBytes(71, 16 * MiB + 333)

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const tokensSent = (server: FaultServer, token: string) => server.requests.filter(({ method, headers }) => method === 'GET' && headers.authorization === token).length

async function rotate(daemon: Daemon, server: FaultServer, secrets: string, previous: string, token: string): Promise<void> {
  const from = daemon.stderr().length
  await writeFile(join(secrets, 'token.new'), `${token}\n`)
  // The old token stops working the moment the file is replaced, not before: a 401 to a token
  // still in the file is a wrong token, which fails the read (an expiring token is renewed
  // before it expires). Both are good while the rename is made.
  server.setMode({ authorization: [previous, token] })
  await rename(join(secrets, 'token.new'), join(secrets, 'token'))
  server.setMode({ authorization: token })
  await until(() => /header Authorization read again from .*token: a new value is sent from now on/.test(daemon.stderr().slice(from)), 'the daemon to read the new token')
  const before = tokensSent(server, token)
  await until(() => tokensSent(server, token) > before + 5, 'reads with the new token')
}

t.test('a token file replaced by a rename while a reader reads: the new token is sent, no read fails', async (t) => {
  const dir = await tempDir(t)
  const secrets = join(dir, 'secrets')
  await mkdir(secrets)
  await writeFile(join(secrets, 'token'), 'Bearer first\n')
  const server = await startFaultServer(t, OBJECT)
  server.setMode({ authorization: 'Bearer first' })
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    `mountpoint: mnt\nsnapshots:\n  - name: disk\n    type: http\n    url: "${server.url()}"\n    headers:\n      Authorization: { file: secrets/token }\n`,
  )
  await mkdir(join(dir, 'mnt'))
  const daemon = await startDaemon(t, join(dir, 'mnt'), ['--config', config])
  const reader = keepReading(join(dir, 'mnt', 'disk'), OBJECT)
  await until(() => tokensSent(server, 'Bearer first') > 5, 'reads with the first token')

  // The server switches at the moment the file is replaced: requests already sent with the old
  // token are refused, read the file again and are sent again.
  await rotate(daemon, server, secrets, 'Bearer first', 'Bearer second')
  await rotate(daemon, server, secrets, 'Bearer second', 'Bearer third')
  // Reading goes on after the last rotation: waited for by count, not by time, as a slow machine
  // may read little in any fixed span.
  const readsAfterRotations = reader.reads()
  await t.resolves(until(() => reader.reads() >= readsAfterRotations + 5, 'reads after the last rotation'), 'the reader kept reading after the rotations')

  const { errors } = await reader.stop()
  t.same(errors, [], 'and no read failed')
  t.equal(tokensSent(server, 'Bearer first') + tokensSent(server, 'Bearer second') + tokensSent(server, 'Bearer third'), server.requests.filter(({ method }) => method === 'GET').length, 'every GET carried one of the tokens')
  t.notMatch(daemon.stderr(), /error:/, 'no error logged')
  // A reload reads the file again too, whatever the config says; here the token is as it was.
  const from = daemon.stderr().length
  daemon.process.kill('SIGHUP')
  await until(() => /SIGHUP: reloaded: added none; removed none; replaced none; 1 unchanged/.test(daemon.stderr().slice(from)), 'the reload')
  t.notMatch(daemon.stderr().slice(from), /read again/, 'an unchanged token is not logged')
  t.equal(await daemon.stop(), 0)
})

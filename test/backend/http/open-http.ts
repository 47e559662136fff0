import t, { type Test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { HttpSnapshotSpec } from '../../../src/config/config.js'
import { openHttpBackend } from '../../../src/backend/http/open-http.js'
import { startFaultServer } from '../../fixtures/fault-server.js'
import { tempDir } from '../../fixtures/temp-dir.js'
import { seededBytes } from '../../fixtures/test-data.js'

const OBJECT = seededBytes(41, 10_000)

function spec(url: string, fields: Partial<HttpSnapshotSpec> = {}): HttpSnapshotSpec {
  return {
    name: 'disk',
    type: 'http',
    url,
    headers: {},
    caFile: undefined,
    clientCertFile: undefined,
    clientKeyFile: undefined,
    insecureSkipVerify: false,
    connections: 2,
    connectTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    bodyTimeoutMs: 1000,
    maxAttempts: 2,
    readDeadlineMs: 2000,
    ...fields,
  }
}

const quiet = { info() {}, warn() {}, error() {} }

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, OBJECT)
  return { dir, server }
}

t.test('headers from the config, the environment and files go to every request at home', async (t) => {
  const { dir, server } = await setUp(t)
  const tokenFile = join(dir, 'token')
  await writeFile(tokenFile, 'Bearer from-a-file\n')
  const backend = await openHttpBackend(
    spec(server.url(), { headers: { 'X-Tenant': { value: 'blue' }, 'X-Api-Key': { env: 'SNAP_TEST_KEY' }, Authorization: { file: tokenFile } } }),
    { env: { SNAP_TEST_KEY: 'key-from-env' }, logger: quiet },
  )
  t.teardown(() => backend.close())
  t.ok((await backend.readExact(5000, 100)).equals(OBJECT.subarray(5000, 5100)))
  t.same(
    server.requests.map(({ method, headers }) => [method, headers['x-tenant'], headers['x-api-key'], headers.authorization]),
    [
      ['HEAD', 'blue', 'key-from-env', 'Bearer from-a-file'],
      ['GET', 'blue', 'key-from-env', 'Bearer from-a-file'],
      ['GET', 'blue', 'key-from-env', 'Bearer from-a-file'],
    ],
    'the file’s trailing newline is not part of the token',
  )
})

t.test('a header from an environment variable that is unset or empty: refused before any request', async (t) => {
  const { server } = await setUp(t)
  for (const env of [{}, { SNAP_TEST_KEY: '' }]) {
    await t.rejects(openHttpBackend(spec(server.url(), { headers: { 'X-Api-Key': { env: 'SNAP_TEST_KEY' } } }), { env, logger: quiet }), {
      code: 'E_SOURCE_OPEN',
      message: 'snapshot disk: header X-Api-Key comes from the environment variable SNAP_TEST_KEY, which is not set',
      fix: "set SNAP_TEST_KEY in the daemon's environment (under systemd: Environment= or EnvironmentFile=)",
    })
  }
  t.same(server.requests, [])
})

t.test('a header from a file that cannot be read: refused, naming the file', async (t) => {
  const { dir, server } = await setUp(t)
  const missing = join(dir, 'no-token')
  await t.rejects(openHttpBackend(spec(server.url(), { headers: { Authorization: { file: missing } } }), { env: {}, logger: quiet }), {
    code: 'E_SOURCE_OPEN',
    message: `snapshot disk: header Authorization: cannot read ${missing} (ENOENT: no such file or directory, open '${missing}')`,
    fix: 'check the file and its permissions',
  })
  t.same(server.requests, [])
})

t.test('PEM files that cannot be read: refused, naming the option', async (t) => {
  const { dir, server } = await setUp(t)
  const folder = join(dir, 'certs')
  for (const [field, option] of [
    ['caFile', 'ca_file'],
    ['clientCertFile', 'client_cert_file'],
    ['clientKeyFile', 'client_key_file'],
  ] as const) {
    const path = join(folder, `${option}.pem`)
    await t.rejects(openHttpBackend(spec(server.url(), { [field]: path }), { env: {}, logger: quiet }), {
      code: 'E_SOURCE_OPEN',
      message: new RegExp(`^snapshot disk: ${option} ${path} cannot be read \\(ENOENT: `),
      fix: 'check the path and its permissions',
    })
  }
  t.same(server.requests, [])
})

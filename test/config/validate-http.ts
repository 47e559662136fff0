import t, { type Test } from 'tap'
import { refusesConfig } from '../fixtures/config-errors.js'
import { validateConfig } from '../../src/config/validate-config.js'
import { mountOptions } from '../fixtures/mount-options.js'

const context = { origin: 'snap.yaml', baseDir: '/etc/snapmount', defaults: mountOptions() }
const http = (fields: Record<string, unknown> = {}) => ({ mountpoint: '/mnt', snapshots: [{ type: 'http', url: 'https://cdn.example/images/base%20v2.img?sig=abc', ...fields }] })

const refuses = (t: Test, raw: unknown, field: string, problem: RegExp) => refusesConfig(t, raw, context, field, problem)

t.test('an http snapshot gets documented defaults and a name from its URL path', async (t) => {
  const [spec] = validateConfig(http(), context).snapshots
  t.strictSame(spec, {
    name: 'base v2.img',
    type: 'http',
    url: 'https://cdn.example/images/base%20v2.img?sig=abc',
    headers: {},
    caFile: undefined,
    clientCertFile: undefined,
    clientKeyFile: undefined,
    insecureSkipVerify: false,
    connections: 8,
    connectTimeoutMs: 3000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    maxAttempts: 5,
    readDeadlineMs: 8000,
  })
})

t.test('every field can be set; files are taken from the config folder', async (t) => {
  const [spec] = validateConfig(
    http({
      name: 'disk',
      headers: { Authorization: { env: 'TOKEN' }, 'X-Api-Key': { file: 'key.txt' }, 'X-Tenant': 'blue' },
      ca_file: 'ca.pem',
      client_cert_file: '/pki/client.pem',
      client_key_file: '/pki/client.key',
      insecure_skip_verify: true,
      connections: 16,
      connect_timeout_ms: 100,
      headers_timeout_ms: 200,
      body_timeout_ms: 300,
      max_attempts: 2,
      read_deadline_ms: 9999,
    }),
    context,
  ).snapshots
  t.match(spec, {
    name: 'disk',
    headers: { Authorization: { env: 'TOKEN' }, 'X-Api-Key': { file: '/etc/snapmount/key.txt' }, 'X-Tenant': { value: 'blue' } },
    caFile: '/etc/snapmount/ca.pem',
    clientCertFile: '/pki/client.pem',
    clientKeyFile: '/pki/client.key',
    insecureSkipVerify: true,
    connections: 16,
    readDeadlineMs: 9999,
  })
})

t.test('bad http fields are refused with the field named', async (t) => {
  refuses(t, http({ url: undefined }), 'snapshots[0].url', /missing/)
  refuses(t, http({ url: 'not a url' }), 'snapshots[0].url', /is not a URL/)
  refuses(t, http({ url: 'ftp://host/x.img' }), 'snapshots[0].url', /ftp: is not http: or https:/)
  refuses(t, http({ url: 'https://user:secret@host/x.img' }), 'snapshots[0].url', /user name or password/)
  refuses(t, http({ url: 'https://host/' }), 'snapshots[0].name', /is empty/)
  refuses(t, http({ path: '/x' }), 'snapshots[0].path', /unknown field/)
  refuses(t, http({ headers: { Authorization: 'Bearer abc' } }), 'snapshots[0].headers.Authorization', /holds a credential/)
  refuses(t, http({ headers: { cookie: 'a=b' } }), 'snapshots[0].headers.cookie', /holds a credential/)
  for (const name of ['X-Api-Key', 'X-Auth-Token', 'x-client-SECRET', 'Proxy-Authorization', 'X-Amz-Security-Token', 'X-Password']) {
    refuses(t, http({ headers: { [name]: 'plain' } }), `snapshots[0].headers.${name}`, /holds a credential in the config file/)
  }
  refuses(t, http({ url: 'https://user:SECRET@bad host/x.img?SECRET' }), 'snapshots[0].url', /^[^S]*an unparseable URL starting "https:\/\/bad" is not a URL$/)
  refuses(t, http({ headers: { 'Bad Name': 'x' } }), 'snapshots[0].headers.Bad Name', /not a valid header name/)
  refuses(t, http({ headers: { 'X-Key': { env: 'A', file: 'b' } } }), 'snapshots[0].headers.X-Key', /exactly one of env: or file:/)
  refuses(t, http({ headers: { 'X-Key': {} } }), 'snapshots[0].headers.X-Key', /exactly one of env: or file:/)
  refuses(t, http({ headers: { 'X-Key': { vault: 'x' } } }), 'snapshots[0].headers.X-Key.vault', /unknown field/)
  refuses(t, http({ headers: ['x'] }), 'snapshots[0].headers', /must be a mapping/)
  refuses(t, http({ client_cert_file: '/c.pem' }), 'snapshots[0].client_cert_file', /go together/)
  refuses(t, http({ insecure_skip_verify: 'yes' }), 'snapshots[0].insecure_skip_verify', /true or false/)
  refuses(t, http({ connections: 0 }), 'snapshots[0].connections', /from 1 to 256/)
  refuses(t, http({ max_attempts: 1.5 }), 'snapshots[0].max_attempts', /whole number/)
  refuses(t, http({ read_deadline_ms: 10_000 }), 'snapshots[0].read_deadline_ms', /from 10 to 9999/)
})

t.test('the read deadline follows read_timeout_ms', async (t) => {
  const raw = { ...http(), options: { read_timeout_ms: 2000 } }
  t.match(validateConfig(raw, context).snapshots[0], { readDeadlineMs: 1600 }, '80 % of it by default')
})

import t, { type Test } from 'tap'
import { refusesConfig } from '../fixtures/config-errors.js'
import { validateConfig } from '../../src/config/validate-config.js'
import { parseS3Url } from '../../src/config/validate-s3.js'
import { mountOptions } from '../fixtures/mount-options.js'

const context = { origin: 'snap.yaml', baseDir: '/etc/snapmount', defaults: mountOptions() }
const s3 = (fields: Record<string, unknown> = {}) => ({ mountpoint: '/mnt', snapshots: [{ type: 's3', url: 's3://fleet-images/golden/base.img', ...fields }] })

const refuses = (t: Test, raw: unknown, field: string, problem: RegExp) => refusesConfig(t, raw, context, field, problem)

t.test('s3://bucket/key, the key may hold slashes', async (t) => {
  t.strictSame(parseS3Url('s3://b/k'), { bucket: 'b', key: 'k' })
  t.strictSame(parseS3Url('s3://fleet/a/b/c.img'), { bucket: 'fleet', key: 'a/b/c.img' })
  for (const bad of ['s3://bucket', 's3://bucket/', 's3:///key', 'https://b/k']) t.type(parseS3Url(bad), 'string', `${bad} refused`)
})

t.test('an s3 snapshot gets documented defaults, credentials from the SDK chain', async (t) => {
  t.strictSame(validateConfig(s3(), context).snapshots[0], {
    name: 'base.img',
    type: 's3',
    bucket: 'fleet-images',
    key: 'golden/base.img',
    versionId: undefined,
    region: undefined,
    endpoint: undefined,
    forcePathStyle: false,
    profile: undefined,
    anonymous: false,
    connections: 64,
    connectTimeoutMs: 3000,
    requestTimeoutMs: 5000,
    maxAttempts: 5,
    readDeadlineMs: 8000,
  })
})

t.test('an endpoint means path style unless told otherwise', async (t) => {
  t.match(validateConfig(s3({ endpoint: 'http://127.0.0.1:9000' }), context).snapshots[0], { endpoint: 'http://127.0.0.1:9000', forcePathStyle: true })
  t.match(validateConfig(s3({ endpoint: 'https://r2.example', force_path_style: false }), context).snapshots[0], { forcePathStyle: false })
  t.match(
    validateConfig(s3({ region: 'eu-west-1', profile: 'images', version_id: 'v42', anonymous: true, connections: 8 }), context).snapshots[0],
    { region: 'eu-west-1', profile: 'images', versionId: 'v42', anonymous: true, connections: 8 },
  )
})

t.test('bad s3 fields are refused with the field named', async (t) => {
  refuses(t, s3({ url: undefined }), 'snapshots[0].url', /missing/)
  refuses(t, s3({ url: 's3://bucket-only' }), 'snapshots[0].url', /is not s3:\/\/bucket\/key/)
  refuses(t, s3({ endpoint: 'minio:9000' }), 'snapshots[0].endpoint', /not an http\(s\) URL/)
  refuses(t, s3({ endpoint: 'http://127.0.0.1:99999' }), 'snapshots[0].endpoint', /not an http\(s\) URL/)
  refuses(t, s3({ endpoint: 'http://exa mple' }), 'snapshots[0].endpoint', /not an http\(s\) URL/)
  refuses(t, s3({ endpoint: 'http://exa mple/?SECRET' }), 'snapshots[0].endpoint', /^[^S]*an unparseable URL starting "http:\/\/exa" is not an http\(s\) URL$/)
  refuses(t, s3({ endpoint: 'https://AKIAEXAMPLE:SECRET@minio:9000' }), 'snapshots[0].endpoint', /^[^S]*: carries a user name or password \(not shown here\)$/)
  refuses(t, s3({ endpoint: 'https://minio:9000/?X-Token=SECRET#SECRET' }), 'snapshots[0].endpoint', /^[^S]*https:\/\/minio:9000\/\?X-Token=REDACTED has a query or fragment$/)
  refuses(t, s3({ access_key_id: 'AKIA' }), 'snapshots[0].access_key_id', /unknown field/)
  refuses(t, s3({ anonymous: 'yes' }), 'snapshots[0].anonymous', /true or false/)
  refuses(t, s3({ region: '' }), 'snapshots[0].region', /non-empty string/)
  refuses(t, s3({ read_deadline_ms: 10_000 }), 'snapshots[0].read_deadline_ms', /from 10 to 9999/)
})

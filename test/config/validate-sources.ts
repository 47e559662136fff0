import t, { type Test } from 'tap'
import { refusesConfig } from '../fixtures/config-errors.js'
import { validateConfig } from '../../src/config/validate-config.js'
import { mountOptions } from '../fixtures/mount-options.js'
import type { HttpSnapshotSpec } from '../../src/config/config.js'

// Mirrors in the config: `urls:` on an http snapshot, and `sources:` mixing http and s3.

const context = { origin: 'snap.yaml', baseDir: '/etc/snapmount', defaults: mountOptions() }
const snapshot = (fields: Record<string, unknown>) => ({ mountpoint: '/mnt', snapshots: [fields] })
const refuses = (t: Test, raw: unknown, field: string, problem: RegExp) => refusesConfig(t, raw, context, field, problem)

const A = 'https://a.example/images/base.img'
const B = 'https://b.example/mirror/base.img'

t.test('urls: lists mirrors that share every other field; the spec is the first one', async (t) => {
  const [spec] = validateConfig(snapshot({ type: 'http', urls: [A, B], headers: { 'X-Tenant': 'blue' }, connections: 4, max_attempts: 2 }), context).snapshots
  t.match(spec, { name: 'base.img', type: 'http', url: A, connections: 4, maxAttempts: 2 })
  t.equal((spec as HttpSnapshotSpec).sources?.length, 2, 'two sources')
  t.match((spec as HttpSnapshotSpec).sources, [
    { type: 'http', url: A, headers: { 'X-Tenant': { value: 'blue' } }, connections: 4, maxAttempts: 2, readDeadlineMs: 8000 },
    { type: 'http', url: B, headers: { 'X-Tenant': { value: 'blue' } }, connections: 4, maxAttempts: 2, readDeadlineMs: 8000 },
  ])
  t.notOk('defaultName' in (spec as HttpSnapshotSpec).sources![0]!, 'a source carries no name of its own')
  const [single] = validateConfig(snapshot({ type: 'http', urls: [A] }), context).snapshots
  t.equal((single as HttpSnapshotSpec).url, A)
  t.notOk('sources' in single!, 'one URL in urls: is a plain http snapshot')
})

t.test('bad urls: are refused with the field named', async (t) => {
  refuses(t, snapshot({ type: 'http', url: A, urls: [B] }), 'snapshots[0].urls', /beside url:/)
  refuses(t, snapshot({ type: 'http', urls: [] }), 'snapshots[0].urls', /non-empty list/)
  refuses(t, snapshot({ type: 'http', urls: A }), 'snapshots[0].urls', /non-empty list/)
  refuses(t, snapshot({ type: 'http', urls: [A, 'ftp://c/x.img'] }), 'snapshots[0].urls[1]', /ftp: is not http: or https:/)
  refuses(t, snapshot({ type: 'http', urls: [A, 7] }), 'snapshots[0].urls[1]', /non-empty string/)
  refuses(t, snapshot({ type: 'http', urls: [A, B, A] }), 'snapshots[0].urls[2]', /urls\[0\] again/)
  refuses(t, snapshot({ type: 'http' }), 'snapshots[0].url', /missing/)
})

t.test('sources: mixes http and s3, each with its own fields; the retry budget is the snapshot\'s', async (t) => {
  const raw = snapshot({
    name: 'disk',
    max_attempts: 3,
    read_deadline_ms: 5000,
    sources: [
      { url: A, headers: { 'X-Key': { env: 'KEY' } }, ca_file: 'ca.pem' },
      { url: 's3://bucket/images/base.img', endpoint: 'http://127.0.0.1:9000', anonymous: true },
      { type: 's3', url: 's3://other/base.img', region: 'eu-west-1' },
      { type: 'http', url: B },
    ],
  })
  const [spec] = validateConfig(raw, context).snapshots
  t.match(spec, { name: 'disk', type: 'http', url: A, caFile: '/etc/snapmount/ca.pem', maxAttempts: 3, readDeadlineMs: 5000 })
  t.match((spec as HttpSnapshotSpec).sources, [
    { type: 'http', url: A, headers: { 'X-Key': { env: 'KEY' } }, maxAttempts: 3, readDeadlineMs: 5000 },
    { type: 's3', bucket: 'bucket', key: 'images/base.img', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, anonymous: true, maxAttempts: 3 },
    { type: 's3', bucket: 'other', key: 'base.img', region: 'eu-west-1', endpoint: undefined, readDeadlineMs: 5000 },
    { type: 'http', url: B, caFile: undefined },
  ])
  const [named] = validateConfig(snapshot({ sources: [{ url: 's3://bucket/x/y.img' }, { url: B }] }), context).snapshots
  t.match(named, { name: 'y.img', type: 's3', bucket: 'bucket', maxAttempts: 5, readDeadlineMs: 8000 }, 'named after the first source, default budget')
  const [lazy] = validateConfig(snapshot({ lazy: true, sources: [{ url: A }] }), context).snapshots
  t.match(lazy, { name: 'base.img', type: 'http', url: A, lazy: true })
  t.notOk('sources' in lazy!, 'one source is a plain snapshot')
})

t.test('bad sources: are refused with the field named', async (t) => {
  refuses(t, snapshot({ type: 'http', sources: [{ url: A }] }), 'snapshots[0].type', /beside sources:/)
  refuses(t, snapshot({ sources: [] }), 'snapshots[0].sources', /non-empty list/)
  refuses(t, snapshot({ sources: { url: A } }), 'snapshots[0].sources', /non-empty list/)
  refuses(t, snapshot({ sources: [{ url: A }], url: B }), 'snapshots[0].url', /unknown field/)
  refuses(t, snapshot({ sources: ['https://a/x.img'] }), 'snapshots[0].sources[0]', /must be a mapping/)
  refuses(t, snapshot({ sources: [{ url: A }, { url: B, name: 'b' }] }), 'snapshots[0].sources[1].name', /belongs to the snapshot/)
  refuses(t, snapshot({ sources: [{ url: A, max_attempts: 2 }] }), 'snapshots[0].sources[0].max_attempts', /belongs to the snapshot/)
  refuses(t, snapshot({ sources: [{ urls: [A, B] }] }), 'snapshots[0].sources[0].urls', /belongs to the snapshot/)
  refuses(t, snapshot({ sources: [{ type: 'file', path: '/x.img' }] }), 'snapshots[0].sources[0].type', /"file" cannot be a mirror/)
  refuses(t, snapshot({ sources: [{ url: A }, { url: 's3://b' }] }), 'snapshots[0].sources[1].url', /is not s3:\/\/bucket\/key/)
  refuses(t, snapshot({ sources: [{ url: A }, {}] }), 'snapshots[0].sources[1].url', /missing/)
  refuses(t, snapshot({ sources: [{ url: A }, { url: A, connections: 2 }] }), 'snapshots[0].sources[1]', /sources\[0\] again/)
  refuses(t, snapshot({ sources: [{ url: 's3://b/k' }, { url: 's3://b/k' }] }), 'snapshots[0].sources[1]', /sources\[0\] again/)
  refuses(t, snapshot({ sources: [{ url: A }], read_deadline_ms: 10_000 }), 'snapshots[0].read_deadline_ms', /from 10 to 9999/)
})

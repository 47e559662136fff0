import t, { type Test } from 'tap'
import { refusesConfig } from '../fixtures/config-errors.js'
import { validateConfig } from '../../src/config/validate-config.js'
import type { HttpSnapshotSpec, S3SnapshotSpec } from '../../src/config/config.js'
import { mountOptions } from '../fixtures/mount-options.js'

const context = { origin: 'snap.yaml', baseDir: '/etc/snapmount', defaults: mountOptions() }
const one = (snapshot: Record<string, unknown>) => ({ mountpoint: '/mnt', snapshots: [snapshot] })
const spec = (snapshot: Record<string, unknown>) => validateConfig(one(snapshot), context).snapshots[0]! as HttpSnapshotSpec | S3SnapshotSpec
const refuses = (t: Test, snapshot: Record<string, unknown>, field: string, problem: RegExp) => refusesConfig(t, one(snapshot), context, field, problem)
const http = { type: 'http', url: 'https://images.example/disk.img', headers: { 'X-Key': { env: 'KEY' } } }

t.test('a profile by path, relative to the config; none by default', async (t) => {
  t.strictSame(spec({ ...http, prefetch_profile: 'disk.profile.json' }).prefetchProfile, { path: '/etc/snapmount/disk.profile.json' })
  t.strictSame(spec({ ...http, prefetch_profile: '/var/lib/p.json' }).prefetchProfile, { path: '/var/lib/p.json' })
  t.equal(spec(http).prefetchProfile, undefined)
})

t.test("a profile URL beside the image is opened as a manifest's is", async (t) => {
  const beside = spec({ ...http, prefetch_profile: 'https://images.example/disk.img.profile' }).prefetchProfile as { source: HttpSnapshotSpec }
  t.match(beside.source, { name: 'profile', type: 'http', url: 'https://images.example/disk.img.profile', headers: { 'X-Key': { env: 'KEY' } } })
  const s3 = spec({ type: 's3', url: 's3://images/disk.img', region: 'eu-west-1', prefetch_profile: 's3://images/disk.img.profile' }).prefetchProfile as { source: S3SnapshotSpec }
  t.match(s3.source, { name: 'profile', type: 's3', bucket: 'images', key: 'disk.img.profile', region: 'eu-west-1' })
})

t.test('a bad prefetch_profile is refused with its field', async (t) => {
  refuses(t, { type: 'file', path: '/d.img', prefetch_profile: 'p.json' }, 'snapshots[0].prefetch_profile', /is for http and s3 snapshots, and d\.img is a local file one/)
  refuses(t, { ...http, prefetch_profile: '' }, 'snapshots[0].prefetch_profile', /./)
  refuses(t, { ...http, prefetch_profile: 7 }, 'snapshots[0].prefetch_profile', /./)
  refuses(t, { ...http, prefetch_profile: 'ftp://h/p.json' }, 'snapshots[0].prefetch_profile', /not an http\(s\):\/\/ or s3:\/\/ URL/)
})

import t, { type Test } from 'tap'
import { refusesConfig } from '../fixtures/config-errors.js'
import { validateConfig } from '../../src/config/validate-config.js'
import type { HttpSnapshotSpec, S3SnapshotSpec } from '../../src/config/config.js'
import { mountOptions } from '../fixtures/mount-options.js'

const context = { origin: 'snap.yaml', baseDir: '/etc/snapmount', defaults: mountOptions() }
const PIN = 'AB'.repeat(32)
const one = (snapshot: Record<string, unknown>) => ({ mountpoint: '/mnt', snapshots: [snapshot] })
const spec = (snapshot: Record<string, unknown>) => validateConfig(one(snapshot), context).snapshots[0]!
const refuses = (t: Test, snapshot: Record<string, unknown>, field: string, problem: RegExp) => refusesConfig(t, one(snapshot), context, field, problem)

t.test('a manifest by path: a local file, relative to the config, its SHA-256 lowercased', async (t) => {
  const local = spec({ type: 'file', path: 'disk.img', lazy: true, manifest: { path: 'disk.img.manifest', sha256: PIN } })
  t.strictSame(local.manifest, { source: { name: 'manifest', type: 'file', path: '/etc/snapmount/disk.img.manifest' }, sha256: 'ab'.repeat(32) })
  t.equal(local.lazy, true)
  t.equal(spec({ type: 'file', path: 'disk.img' }).manifest, undefined, 'none by default')
})

t.test("a manifest URL on an http snapshot's origin gets its headers and TLS files; on another origin none", async (t) => {
  const snapshot = { type: 'http', url: 'https://images.example/disk.img', headers: { 'X-Key': { env: 'KEY' } }, ca_file: 'ca.pem', connections: 4 }
  const same = spec({ ...snapshot, manifest: { url: 'https://images.example/disk.img.manifest', sha256: PIN } }).manifest!.source as HttpSnapshotSpec
  t.match(same, { name: 'manifest', type: 'http', url: 'https://images.example/disk.img.manifest', headers: { 'X-Key': { env: 'KEY' } }, caFile: '/etc/snapmount/ca.pem', connections: 4 })
  const other = spec({ ...snapshot, manifest: { url: 'https://elsewhere.example/disk.img.manifest', sha256: PIN } }).manifest!.source as HttpSnapshotSpec
  t.strictSame(other.headers, {})
  t.equal(other.caFile, undefined)
  const fromLocal = spec({ type: 'file', path: '/d.img', manifest: { url: 'http://h/d.manifest', sha256: PIN } }).manifest!.source
  t.match(fromLocal, { type: 'http', url: 'http://h/d.manifest', headers: {} })
})

t.test('an s3:// manifest URL on an s3 snapshot gets its store and region, not its version', async (t) => {
  const snapshot = { type: 's3', url: 's3://images/disk.img', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', version_id: 'v1' }
  const source = spec({ ...snapshot, manifest: { url: 's3://images/disk.img.manifest', sha256: PIN } }).manifest!.source as S3SnapshotSpec
  t.match(source, { name: 'manifest', type: 's3', bucket: 'images', key: 'disk.img.manifest', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', forcePathStyle: true, versionId: undefined })
  const plain = spec({ type: 'file', path: '/d.img', manifest: { url: 's3://b/d.manifest', sha256: PIN } }).manifest!.source as S3SnapshotSpec
  t.match(plain, { type: 's3', bucket: 'b', endpoint: undefined, region: undefined })
})

t.test('a bad manifest entry is refused with its field', async (t) => {
  const local = { type: 'file', path: '/d.img' }
  refuses(t, { ...local, manifest: 'd.manifest' }, 'snapshots[0].manifest', /must be a mapping/)
  refuses(t, { ...local, manifest: { path: 'm', sha256: PIN, size: 1 } }, 'snapshots[0].manifest.size', /unknown field/)
  refuses(t, { ...local, manifest: { path: 'm' } }, 'snapshots[0].manifest.sha256', /missing/)
  refuses(t, { ...local, manifest: { path: 'm', sha256: 'abc' } }, 'snapshots[0].manifest.sha256', /64 hexadecimal digits/)
  refuses(t, { ...local, manifest: { sha256: PIN } }, 'snapshots[0].manifest', /exactly one of path and url/)
  refuses(t, { ...local, manifest: { path: 'm', url: 'http://h/m', sha256: PIN } }, 'snapshots[0].manifest', /exactly one of path and url/)
  refuses(t, { ...local, manifest: { url: 'ftp://h/m', sha256: PIN } }, 'snapshots[0].manifest.url', /not an http\(s\):\/\/ or s3:\/\/ URL/)
  refuses(t, { ...local, manifest: { url: 'https://', sha256: PIN } }, 'snapshots[0].manifest.url.url', /./)
})

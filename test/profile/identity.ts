import t from 'tap'
import { profileFileName, profileIdentity } from '../../src/profile/identity.js'
import type { SnapshotSpec } from '../../src/config/config.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'

const http = { name: 'disk', type: 'http', url: 'http://h/disk.img' } as SnapshotSpec
const pinned = Object.assign(new MemoryBackend(Buffer.alloc(10)), { identity: () => ({ source: 'http://h/disk.img', size: 10, validator: '"v1"' }) })

t.test("a manifest's digest names the image first, then the source's validator; neither, no identity", async (t) => {
  const manifest = { source: { name: 'manifest', type: 'file', path: '/m' }, sha256: 'ab'.repeat(32) } as const
  t.strictSame(profileIdentity({ ...http, manifest } as SnapshotSpec, pinned), { bytes: 10, validator: `sha256:${'ab'.repeat(32)}` })
  t.strictSame(profileIdentity(http, pinned), { bytes: 10, validator: '"v1"' })
  t.equal(profileIdentity(http, new MemoryBackend(Buffer.alloc(10))), undefined)
  t.equal(profileIdentity(http, Object.assign(new MemoryBackend(Buffer.alloc(10)), { identity: () => undefined })), undefined)
})

t.test("a profile's file name is a digest of its identity, different for another size or validator", async (t) => {
  const name = profileFileName({ bytes: 10, validator: '"v1"' })
  t.match(name, /^[0-9a-f]{32}\.profile\.json$/)
  t.not(profileFileName({ bytes: 11, validator: '"v1"' }), name)
  t.not(profileFileName({ bytes: 10, validator: '"v2"' }), name)
})

import t from 'tap'
import { mkdir, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ProfileSpec } from '../../src/config/config.js'
import { encodeProfile, type BootProfile } from '../../src/profile/format.js'
import { MAX_PROFILE_BYTES, loadProfile, profileLabel } from '../../src/profile/load.js'
import { tempDir } from '../fixtures/temp-dir.js'

const image = { bytes: 1024 * 1024, validator: '"etag-1"' }
const profile: BootProfile = { identity: image, blockBytes: 128 * 1024, recordedAt: new Date('2026-12-01T10:00:00Z'), runs: [{ firstBlock: 0, blockCount: 2, atMs: 0 }, { firstBlock: 5, blockCount: 1, atMs: 12.5 }] }

function collecting() {
  const warnings: string[] = []
  return { warnings, context: { env: {}, logger: { info: () => {}, warn: (message: string) => warnings.push(message), error: () => {} } } }
}

t.test('a profile file that fits the image is loaded', async (t) => {
  const path = join(await tempDir(t), 'boot.profile.json')
  await writeFile(path, encodeProfile(profile))
  const { warnings, context } = collecting()
  const loaded = await loadProfile({ path }, image, 'disk', context)
  t.same(loaded, { profile, label: path })
  t.same(warnings, [])
})

t.test('an absent file is no profile, quietly: recording will create it', async (t) => {
  const { warnings, context } = collecting()
  t.equal(await loadProfile({ path: join(await tempDir(t), 'none.json') }, image, 'disk', context), undefined)
  t.same(warnings, [])
})

t.test('a profile beside the image is read through its backend, under the name its source describes', async (t) => {
  const path = join(await tempDir(t), 'boot.profile.json')
  await writeFile(path, encodeProfile(profile))
  const { warnings, context } = collecting()
  // A local file stands in for the URL here: the same openBackend call; test/integration/profile-replay.ts uses nginx.
  const spec = { source: { name: 'profile', type: 'file', path, url: 'http://h/boot.profile.json?token=secret' } } as unknown as ProfileSpec
  const loaded = await loadProfile(spec, image, 'disk', context)
  t.same(loaded?.profile, profile)
  t.equal(loaded?.label, 'http://h/boot.profile.json?token=REDACTED', 'shown as its URL, redacted')
  t.same(warnings, [])
})

t.test('every reason not to use a profile is a warning that names it, never a failure', async (t) => {
  const dir = await tempDir(t)
  const cases: Array<[string, () => Promise<ProfileSpec>, RegExp, typeof image | undefined]> = [
    ['another image', async () => spec(dir, 'other', encodeProfile({ ...profile, identity: { bytes: image.bytes, validator: '"etag-2"' } })), /disk: prefetch profile .*other not used: it was recorded from "etag-2", this image is "etag-1"; record it again/, image],
    ['another size', async () => spec(dir, 'size', encodeProfile({ ...profile, identity: { bytes: 2 * image.bytes, validator: image.validator } })), /recorded from an image of 2097152 bytes, this one has 1048576/, image],
    ['no identity to check', async () => spec(dir, 'fine', encodeProfile(profile)), /neither a manifest nor a strong validator/, undefined],
    ['broken JSON', async () => spec(dir, 'broken', '{"snapmount_profile": 1, '), /broken not used: .*not a valid snapmount boot profile: not JSON/, image],
    ['a folder, not a file', async () => {
      await mkdir(join(dir, 'folder'))
      return { path: join(dir, 'folder') }
    }, /folder not used: EISDIR/, image],
    ['a path through a file', async () => {
      await writeFile(join(dir, 'plain'), '')
      return { path: join(dir, 'plain', 'profile.json') }
    }, /not used: ENOTDIR/, image],
    ['too large', async () => {
      const path = join(dir, 'huge')
      await writeFile(path, '')
      await truncate(path, MAX_PROFILE_BYTES + 1)
      return { path }
    }, /huge not used: it is 16777217 bytes, more than any profile/, image],
    ['too large, beside the image', async () => {
      const path = join(dir, 'huge-remote')
      await writeFile(path, '')
      await truncate(path, MAX_PROFILE_BYTES + 1)
      return { source: { name: 'profile', type: 'file', path, url: 'http://h/huge-remote' } } as unknown as ProfileSpec
    }, /huge-remote not used: it is 16777217 bytes/, image],
    ['a source that cannot be opened', async () => ({ source: { name: 'profile', type: 'file', path: join(dir, 'gone'), url: 'http://h/gone' } }) as unknown as ProfileSpec, /disk: prefetch profile http:\/\/h\/gone not used: .*gone/, image],
  ]
  for (const [what, make, warning, identity] of cases) {
    const { warnings, context } = collecting()
    t.equal(await loadProfile(await make(), identity, 'disk', context), undefined, `${what}: not used`)
    t.equal(warnings.length, 1, `${what}: one warning`)
    t.match(warnings[0], warning, `${what}: says why`)
  }
})

async function spec(dir: string, name: string, text: string): Promise<ProfileSpec> {
  const path = join(dir, name)
  await writeFile(path, text)
  return { path }
}

t.test('a profile is shown as its path, its redacted URL, or its bucket and key', async (t) => {
  t.equal(profileLabel({ path: '/p/boot.json' }), '/p/boot.json')
  t.equal(profileLabel({ source: { type: 'http', url: 'https://u:secret@h/boot.json?sig=abc' } } as unknown as ProfileSpec), 'https://REDACTED:REDACTED@h/boot.json?sig=REDACTED')
  t.equal(profileLabel({ source: { type: 's3', bucket: 'b', key: 'images/boot.json' } } as unknown as ProfileSpec), 's3://b/images/boot.json')
})

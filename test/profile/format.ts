import t from 'tap'
import { encodeProfile, identityMismatch, parseProfile, profileBytes, type BootProfile } from '../../src/profile/format.js'

const profile: BootProfile = {
  identity: { bytes: 10 * 131072 + 5, validator: 'sha256:ab' },
  blockBytes: 131072,
  recordedAt: new Date('2026-12-02T11:00:00.000Z'),
  runs: [
    { firstBlock: 0, blockCount: 1, atMs: 0 },
    { firstBlock: 8, blockCount: 3, atMs: 12.25 },
  ],
}

t.test('a profile survives its file, one run per line, ms to a tenth', async (t) => {
  const text = encodeProfile(profile)
  t.match(text, /"snapmount_profile": 1,/)
  t.match(text, /\n {4}\[8,3,12\.3\]\n/)
  const back = parseProfile(text, 'p.json')
  t.same(back, { ...profile, runs: [profile.runs[0], { firstBlock: 8, blockCount: 3, atMs: 12.3 }] })
  t.equal(parseProfile(encodeProfile({ ...profile, runs: [] }), 'p').runs.length, 0, 'an empty profile too')
})

t.test('every bad field is named, with the fix', async (t) => {
  const good = JSON.parse(encodeProfile(profile)) as Record<string, unknown>
  const cases: Array<[unknown, RegExp]> = [
    ['{', /not JSON/],
    [[1], /not a JSON object/],
    [{ ...good, snapmount_profile: 2 }, /snapmount_profile is 2, this version reads 1/],
    [{ ...good, identity: { bytes: 1 } }, /identity must be/],
    [{ ...good, identity: { bytes: -1, validator: 'x' } }, /identity must be/],
    [{ ...good, identity: { bytes: 1, validator: '' } }, /identity must be/],
    [{ ...good, identity: 'x' }, /identity must be/],
    [{ ...good, block_bytes: 3000 }, /block_bytes must be a power of two/],
    [{ ...good, block_bytes: 0 }, /block_bytes must be a power of two/],
    [{ ...good, recorded_at: 'yesterday' }, /recorded_at must be an ISO date/],
    [{ ...good, recorded_at: 5 }, /recorded_at must be an ISO date/],
    [{ ...good, runs: {} }, /runs must be a list/],
    [{ ...good, runs: [[0, 1]] }, /run 0 must be/],
    [{ ...good, runs: [[0, 1, 0], 'x'] }, /run 1 must be/],
    [{ ...good, runs: [[0, 0, 0]] }, /run 0 must be/],
    [{ ...good, runs: [[0, 1, -1]] }, /run 0 must be/],
    [{ ...good, runs: [[0, 1, 'a']] }, /run 0 must be/],
    [{ ...good, runs: [[1.5, 1, 0]] }, /run 0 must be/],
    [{ ...good, runs: [[10, 2, 0]] }, /run 0 reaches past the image's 11 blocks/],
  ]
  for (const [value, message] of cases) {
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    t.throws(() => parseProfile(text, 'p.json'), { code: 'E_PROFILE_FORMAT', message: new RegExp(`^p\\.json: not a valid snapmount boot profile: ${message.source}`), fix: /snapmount profile record/ }, text)
  }
})

t.test('a profile fits only an image of its size and validator', async (t) => {
  t.equal(identityMismatch(profile, { bytes: profile.identity.bytes, validator: 'sha256:ab' }), undefined)
  t.match(identityMismatch(profile, { bytes: 5, validator: 'sha256:ab' }), /image of 1310725 bytes, this one has 5/)
  t.match(identityMismatch(profile, { bytes: profile.identity.bytes, validator: '"etag"' }), /recorded from sha256:ab, this image is "etag"/)
})

t.test("a profile's bytes count the last block short", async (t) => {
  t.equal(profileBytes(profile), 131072 + 2 * 131072 + 5)
})

import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { SNAPMOUNT, runCli } from '../fixtures/daemon.js'
import { startNginx } from '../fixtures/nginx.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { sha256 } from '../fixtures/test-data.js'
import { DEFAULT_HASH_ALGORITHM, decodeManifest, type HashAlgorithm } from '../../src/manifest/format.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { startCorruptingProxy } from '../../tools/corrupting-proxy.mjs'

const KiB = 1024
// Not a multiple of any block size: the last block is short. Over 4 MiB: several chunks are read at once.
const SIZE = 9 * 1024 * KiB + 5000

async function image(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t)
  const path = await makeRandomImage(dir, 'disk.img', SIZE, 7)
  return { dir, path, bytes: await readFile(path) }
}

/** Whether the manifest at `path` is the one `bytes` should have. */
async function describes(path: string, bytes: Buffer, blockBytes: number, algorithm: HashAlgorithm = DEFAULT_HASH_ALGORITHM): Promise<boolean> {
  const manifest = decodeManifest(await readFile(path))
  return manifest.algorithm === algorithm && manifest.blockBytes === blockBytes && manifest.imageBytes === bytes.length && manifest.digests.equals(blockDigestsOf(algorithm, bytes, blockBytes))
}

// The round trip for each algorithm: BLAKE3 by default, SHA-256 when asked.
for (const [algorithm, options] of [['blake3', []], ['sha256', ['--algorithm', 'sha256']]] as const) {
  t.test(`a local image, ${algorithm}: create writes the manifest and prints its SHA-256; verify checks it and names bad ranges`, async (t) => {
    const { dir, path, bytes } = await image(t)
    const output = join(dir, 'disk.manifest')
    const created = await runCli(['manifest', 'create', path, ...options, '--output', output])
    t.equal(created.code, 0, created.stderr)
    const pinned = sha256(await readFile(output))
    t.equal(created.stdout, `${pinned}  ${output}\n`, 'sha256sum format: pin this')
    t.match(created.stderr, new RegExp(`SHA-256 \\(pin this\\): ${pinned}`))
    t.match(created.stderr, /manifest .*disk\.img: 100\.0%/, 'a progress line')
    t.ok(await describes(output, bytes, 128 * KiB, algorithm), `${algorithm} digests of 128 KiB blocks`)

    const ok = await runCli(['manifest', 'verify', path, output, '--sha256', pinned])
    t.equal(ok.code, 0, ok.stderr)
    t.equal(ok.stdout, 'OK  73 blocks (9.0 MiB) match\n')

    // Damage block 3 and the short last block (72), and blocks 10 and 11 together.
    const damaged = Buffer.from(bytes)
    for (const offset of [3 * 128 * KiB + 17, SIZE - 1, 10 * 128 * KiB + 128 * KiB - 1, 11 * 128 * KiB]) damaged[offset]! ^= 1
    await writeFile(path, damaged)
    const bad = await runCli(['manifest', 'verify', path, output])
    t.equal(bad.code, 1, 'a mismatch exits 1')
    t.equal(
      bad.stdout,
      ['BAD  bytes 393216-524287 (block 3)', 'BAD  bytes 1310720-1572863 (blocks 10-11)', `BAD  bytes 9437184-${SIZE - 1} (block 72)`, ''].join('\n'),
    )
    t.match(bad.stderr, /4 of 73 blocks differ from the manifest, in 3 range\(s\)/)
  })
}

t.test('create writes to stdout without --output; --block-size and --algorithm choose the blocks', async (t) => {
  const { dir, path, bytes } = await image(t)
  const output = join(dir, 'stdout.manifest')
  await promisify(execFile)('sh', ['-c', `"${SNAPMOUNT}" manifest create "${path}" --block-size 64K --algorithm sha256 > "${output}"`])
  t.ok(await describes(output, bytes, 64 * KiB, 'sha256'))
  for (const size of ['4096', '1M', '4MiB']) {
    const result = await runCli(['manifest', 'create', path, '--block-size', size, '-o', join(dir, `m${size}`)])
    t.equal(result.code, 0, result.stderr)
  }
  t.ok(await describes(join(dir, 'm1M'), bytes, 1024 * KiB))
})

t.test('bad input exits 2 with the fix: a block size, a pinned digest, a manifest of another image', async (t) => {
  const { dir, path } = await image(t)
  for (const size of ['3K', '8M', '2k', 'big']) {
    const result = await runCli(['manifest', 'create', path, '--block-size', size])
    t.equal(result.code, 2, size)
    t.match(result.stderr, /is not a power of two from 4K to 4M; give e.g. --block-size 128K/)
  }
  const output = join(dir, 'disk.manifest')
  t.equal((await runCli(['manifest', 'create', path, '-o', output])).code, 0)
  const wrong = await runCli(['manifest', 'verify', path, output, '--sha256', 'ab'.repeat(32)])
  t.equal(wrong.code, 2)
  t.match(wrong.stderr, /the manifest's SHA-256 is [0-9a-f]{64}, not the pinned abab/)
  const other = await makeRandomImage(dir, 'other.img', SIZE + 1, 8)
  const mismatch = await runCli(['manifest', 'verify', other, output])
  t.equal(mismatch.code, 2)
  t.match(mismatch.stderr, new RegExp(`the manifest is for an image of ${SIZE} bytes, and this one has ${SIZE + 1}`))
  await writeFile(join(dir, 'junk'), 'not a manifest')
  const junk = await runCli(['manifest', 'verify', path, join(dir, 'junk')])
  t.equal(junk.code, 2)
  t.match(junk.stderr, /not a valid snapmount manifest: 14 bytes, shorter than the 32-byte header; make it again/)
  t.equal((await runCli(['manifest'])).code, 2, 'a subcommand is needed')
})

t.test('over HTTP (nginx): create from the URL, verify against a manifest nginx serves; a corrupting proxy is caught', async (t) => {
  const { dir, bytes } = await image(t)
  const nginx = await startNginx(t, dir)
  const output = join(dir, 'disk.manifest')
  const created = await runCli(['manifest', 'create', nginx.url('disk.img'), '-o', output])
  t.equal(created.code, 0, created.stderr)
  t.ok(await describes(output, bytes, 128 * KiB))
  const pinned = created.stdout.slice(0, 64)
  const ok = await runCli(['manifest', 'verify', nginx.url('disk.img'), nginx.url('disk.manifest'), '--sha256', pinned])
  t.equal(ok.code, 0, ok.stderr)

  // Responses covering byte 5 MiB + 1 get a flipped bit, headers and ETag untouched.
  const target = 5 * 1024 * KiB + 1
  const proxy = await startCorruptingProxy({ origin: nginx.origin, corrupt: ({ path, start, end }) => path === '/disk.img' && start !== undefined && end !== undefined && start <= target && target <= end })
  t.teardown(() => proxy.close())
  const bad = await runCli(['manifest', 'verify', proxy.url('/disk.img'), output])
  t.equal(bad.code, 1, bad.stderr)
  t.equal(proxy.flips.length, 1)
  const block = Math.floor(proxy.flips[0]!.offset / (128 * KiB))
  t.equal(bad.stdout, `BAD  bytes ${block * 128 * KiB}-${(block + 1) * 128 * KiB - 1} (block ${block})\n`)
})

t.test('over S3 (fauxqs): create from a snapshot of a config, by name', async (t) => {
  const { dir, path, bytes } = await image(t)
  const s3 = await startFauxS3(t)
  await s3.createBucket('images')
  await s3.uploadFile('images', 'golden/disk.img', path)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(config, ['mountpoint: /mnt', 'snapshots:', `  - { name: golden, type: s3, url: s3://images/golden/disk.img, endpoint: "${s3.endpoint}", region: ${s3.region} }`, ''].join('\n'))
  const output = join(dir, 'disk.manifest')
  const created = await runCli(['manifest', 'create', 'golden', '--config', config, '-o', output], { env: FAUX_S3_ENV })
  t.equal(created.code, 0, created.stderr)
  t.ok(await describes(output, bytes, 128 * KiB))
  const ok = await runCli(['manifest', 'verify', 'golden', output, '--config', config], { env: FAUX_S3_ENV })
  t.equal(ok.code, 0, ok.stderr)
  // A name the config does not have is a source of its own: a path here.
  const local = await runCli(['manifest', 'verify', path, output, '--config', config])
  t.equal(local.code, 0, local.stderr)
})

import t, { type Test } from 'tap'
import { constants } from 'node:fs'
import { mkdir, open, readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { runCli, startDaemon, until } from '../fixtures/daemon.js'
import { startNginx } from '../fixtures/nginx.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { sha256 } from '../fixtures/test-data.js'
import { DEFAULT_HASH_ALGORITHM, blockCountOf, encodeManifest, type HashAlgorithm } from '../../src/manifest/format.js'
import { blockDigestsOf } from '../../src/manifest/hash.js'
import { startCorruptingProxy } from '../../tools/corrupting-proxy.mjs'

/**
 * Snapshots with a manifest through real mounts: an HTTP image behind a proxy of our own that
 * flips bits in some range responses, status, headers and ETag untouched (what no If-Match can
 * catch), and the refusals at start.
 */

const KiB = 1024
const BLOCK = 128 * KiB
// 24 MiB and a ragged tail: the last block is short.
const SIZE = 24 * 1024 * KiB + 3333
const LAST = blockCountOf(SIZE, BLOCK) - 1
/** Damaged in every response that covers it: its reads must fail (EIO), and only its. */
const ALWAYS = 37
/** Damaged in the first response that covers each: retried, and served right. */
const ONCE = [3, 100, LAST]

async function setUp(t: Test, algorithm: HashAlgorithm = DEFAULT_HASH_ALGORITHM) {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.img', SIZE, 11)
  const bytes = await readFile(image)
  const manifest = encodeManifest({ algorithm, blockBytes: BLOCK, imageBytes: SIZE, blockCount: LAST + 1, digests: blockDigestsOf(algorithm, bytes, BLOCK) })
  await writeFile(join(dir, 'disk.img.manifest'), manifest)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  return { dir, image, bytes, pinned: sha256(manifest), mountpoint, config: join(dir, 'snapmount.yaml') }
}

function yaml(lines: string[]): string {
  return `${lines.join('\n')}\n`
}

/**
 * Reads each block of `path` on its own, in order (one handle, buffered or with `flags`); the blocks
 * whose read failed, and the bytes of the rest.
 */
async function readBlocks(path: string, flags: string | number = 'r'): Promise<{ failed: Array<{ block: number; code: string }>; bytes: Buffer }> {
  const handle = await open(path, flags)
  const bytes = Buffer.alloc(SIZE)
  const failed: Array<{ block: number; code: string }> = []
  try {
    for (let block = 0; block <= LAST; block++) {
      const start = block * BLOCK
      const end = Math.min(SIZE, start + BLOCK)
      try {
        for (let done = start; done < end; ) {
          const { bytesRead } = await handle.read(bytes, done, end - done, done)
          if (bytesRead === 0) throw new Error(`EOF at ${done}`)
          done += bytesRead
        }
      } catch (err) {
        failed.push({ block, code: (err as NodeJS.ErrnoException).code ?? String(err) })
      }
    }
  } finally {
    await handle.close()
  }
  return { failed, bytes }
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve(body))
    })
      .on('error', reject)
      .end()
  })
}

for (const algorithm of ['blake3', 'sha256'] as const) {
  t.test(`${algorithm}: bits flipped by a proxy under the right ETag: 0 wrong bytes served, each bad block logged, a block bad every time fails EIO`, async (t) => {
    const { dir, bytes, pinned, mountpoint, config } = await setUp(t, algorithm)
    const nginx = await startNginx(t, dir)
    const damagedOnce = new Set<number>()
    const proxy = await startCorruptingProxy({
      origin: nginx.origin,
      corrupt: ({ path, start, end }) => {
        if (path !== '/disk.img' || start === undefined || end === undefined) return false
        const covers = (block: number) => start <= block * BLOCK + 5 && block * BLOCK + 5 <= end
        if (covers(ALWAYS)) return ALWAYS * BLOCK + 5
        const once = ONCE.find((block) => covers(block) && !damagedOnce.has(block))
        if (once === undefined) return false
        damagedOnce.add(once)
        return once * BLOCK + 5
      },
      // Answers holding block ALWAYS are slow (3 fetches: ~1 s), so the reader catches up with
      // the readahead request that holds it, and waits on it for the blocks before it: those
      // reads must not fail with it.
      delayMs: ({ path, start, end }) => (path === '/disk.img' && start !== undefined && end !== undefined && start <= ALWAYS * BLOCK + 5 && ALWAYS * BLOCK + 5 <= end ? 300 : 0),
    })
    t.teardown(() => proxy.close())
    await writeFile(
      config,
      yaml([
        'mountpoint: mnt',
        `options: { metrics: { listen: "127.0.0.1:0" }, control_socket: ${join(dir, 'ctl.sock')} }`,
        'snapshots:',
        '  - name: disk.img',
        '    type: http',
        `    url: ${proxy.url('/disk.img')}`,
        `    manifest: { url: ${proxy.url('/disk.img.manifest')}, sha256: ${pinned} }`,
      ]),
    )
    const daemon = await startDaemon(t, mountpoint, ['--config', config])
    // O_DIRECT: each read reaches the daemon, and its error the reader (the kernel's page cache
    // would retry a failed readahead page with a read of its own).
    const { failed, bytes: read } = await readBlocks(join(mountpoint, 'disk.img'), constants.O_RDONLY | constants.O_DIRECT)
    t.same(failed, [{ block: ALWAYS, code: 'EIO' }], 'only the block bad every time fails, not the blocks before it in the same request')
    const wrong = (from: number, to: number) => {
      let count = 0
      for (let i = from; i < to; i++) if (read[i] !== bytes[i]) count++
      return count
    }
    t.equal(wrong(0, ALWAYS * BLOCK) + wrong((ALWAYS + 1) * BLOCK, SIZE), 0, '0 wrong bytes')
    t.same([...damagedOnce].sort((a, b) => a - b), ONCE, 'each once-block was damaged')

    const flipped = new Set(proxy.flips.map(({ offset }) => Math.floor(offset / BLOCK)))
    t.same([...flipped].sort((a, b) => a - b), [...ONCE, ALWAYS].sort((a, b) => a - b))
    const mismatchLine = (block: number) => new RegExp(`disk\\.img: block ${block} \\(bytes ${block * BLOCK}-\\d+\\) does not match the manifest: expected [0-9a-f]{64}, got [0-9a-f]{64}; fetching it again`)
    const failedLine = new RegExp(`error: .*disk\\.img: block ${ALWAYS} \\(bytes ${ALWAYS * BLOCK}-${(ALWAYS + 1) * BLOCK - 1}\\) does not match the manifest after 3 fetches: expected [0-9a-f]{64}, got [0-9a-f]{64}`)
    // A mismatch found by readahead may be logged after the reads are answered: wait for the
    // lines (a timeout leaves the matches below to say which is missing).
    await until(() => [...flipped].every((block) => mismatchLine(block).test(daemon.stderr())) && failedLine.test(daemon.stderr()), 'each bad block logged').catch(() => {})
    const log = daemon.stderr()
    for (const block of flipped) t.match(log, mismatchLine(block), `block ${block} logged`)
    t.match(log, failedLine)

    const url = /metrics on (http:\/\/\S+)/.exec(log)?.[1]
    t.ok(url, 'the metrics URL is logged')
    const metrics = await get(url!)
    const counter = (name: string) => Number(new RegExp(`^${name}\\{snapshot="disk\\.img"\\} (\\d+)$`, 'm').exec(metrics)?.[1])
    t.ok(counter('snapmount_manifest_mismatches_total') >= ONCE.length + 3, 'mismatches counted')
    t.ok(counter('snapmount_manifest_failed_blocks_total') >= 1, 'the block given up on counted')
    t.ok(counter('snapmount_manifest_blocks_verified_total') >= LAST, 'the blocks that passed counted')

    const verify = await runCli(['verify', 'disk.img', '--socket', join(dir, 'ctl.sock')])
    t.equal(verify.code, 1, verify.stderr)
    t.equal(verify.stdout, `BAD  bytes ${ALWAYS * BLOCK}-${(ALWAYS + 1) * BLOCK - 1} (block ${ALWAYS})\n`, 'snapmount verify names the bad range')
    t.match(verify.stderr, new RegExp(`disk\\.img: 1 of ${LAST + 1} blocks differ from the manifest, in 1 range\\(s\\)`))
    t.equal(await daemon.stop(), 0)
  })
}

t.test('a local snapshot with a manifest by path serves its exact bytes', async (t) => {
  const { dir, image, bytes, pinned, mountpoint, config } = await setUp(t)
  const socket = join(dir, 'ctl.sock')
  await writeFile(
    config,
    yaml([
      'mountpoint: mnt',
      `options: { control_socket: ${socket} }`,
      'snapshots:',
      `  - { name: disk.img, type: file, path: ${image}, manifest: { path: disk.img.manifest, sha256: ${pinned.toUpperCase()} } }`,
      `  - { name: plain.img, type: file, path: ${image} }`,
    ]),
  )
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  const { failed, bytes: read } = await readBlocks(join(mountpoint, 'disk.img'))
  t.same(failed, [])
  t.ok(read.equals(bytes))
  const verify = await runCli(['verify', 'disk.img', '--socket', socket])
  t.equal(verify.code, 0, verify.stderr)
  t.equal(verify.stdout, `OK  ${LAST + 1} blocks (24.0 MiB) match the manifest\n`)
  const plain = await runCli(['verify', 'plain.img', '--socket', socket])
  t.equal(plain.code, 2)
  t.match(plain.stderr, /plain\.img has no manifest to verify against; give --sha256/)
  t.equal(await daemon.stop(), 0)
})

t.test('a manifest whose SHA-256 is not the pinned one refuses the snapshot: exit 2, nothing mounted', async (t) => {
  const { image, mountpoint, config } = await setUp(t)
  const wrong = 'ab'.repeat(32)
  await writeFile(config, yaml(['mountpoint: mnt', 'snapshots:', `  - { name: disk.img, type: file, path: ${image}, manifest: { path: disk.img.manifest, sha256: ${wrong} } }`]))
  for (const command of ['mount', 'check']) {
    const result = await runCli([command, '--config', config])
    t.equal(result.code, 2, command)
    t.match(result.stderr, new RegExp(`disk\\.img: the manifest's SHA-256 is [0-9a-f]{64}, not the pinned ${wrong}; pin the digest snapmount manifest create printed`))
  }
  t.notOk((await readFile('/proc/self/mountinfo', 'utf8')).includes(mountpoint), 'nothing mounted')
})

t.test('a manifest made for an image of another size refuses the snapshot: exit 2', async (t) => {
  const { dir, pinned, mountpoint, config } = await setUp(t)
  const other = await makeRandomImage(dir, 'other.img', SIZE - 1, 12)
  await writeFile(config, yaml(['mountpoint: mnt', 'snapshots:', `  - { name: other.img, type: file, path: ${other}, manifest: { path: disk.img.manifest, sha256: ${pinned} } }`]))
  const result = await runCli(['mount', '--config', config])
  t.equal(result.code, 2)
  t.match(result.stderr, new RegExp(`other\\.img: the manifest is for an image of ${SIZE} bytes, and this one has ${SIZE - 1}; give the manifest made for this image`))
  t.notOk((await readFile('/proc/self/mountinfo', 'utf8')).includes(mountpoint))
})

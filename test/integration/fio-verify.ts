import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, open, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startDaemon } from '../fixtures/daemon.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { startNginx } from '../fixtures/nginx.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * fio's own verification through the mount, the way a storage engineer checks a block device:
 * fio writes a local file whose every 4 KiB holds a header (magic, its own offset, length) and
 * a crc32c of the block; snapmount serves that file from each backend; fio reads it back
 * through the mount with several jobs at once, O_DIRECT, random and sequential, mixed block
 * sizes, synchronous and queued (libaio), and checks every 4 KiB it reads. A byte changed, a
 * block read from the wrong offset or a short read fails the job. verify_only is not usable:
 * it replays a write job and so opens the file O_RDWR, which the mount refuses (EROFS).
 */
const run = promisify(execFile)

/** Crosses every backend's chunk and connection boundaries many times over. */
const SIZE = 32 * 1024 * 1024
/** Each 4 KiB carries its own header, so reads of any 4 KiB-aligned size can be verified. */
const VERIFY_INTERVAL = 4096

// The daemon inherits these; fauxqs accepts any credentials.
Object.assign(process.env, FAUX_S3_ENV)

/**
 * The read jobs, all at once. The sequential ones read every byte; the random ones visit each
 * block at most once (fio's random map), the small-block ones a quarter of the file each, as
 * every 4 KiB read is a request of its own to a remote store (~1,500 requests per backend).
 */
const JOBS = [
  { name: 'random-small', options: ['rw=randread', 'bssplit=4k/40:16k/30:64k/30', 'ioengine=libaio', 'iodepth=16', `io_size=${SIZE / 4}`], bytes: SIZE / 4 },
  { name: 'random-small-2', options: ['rw=randread', 'bssplit=4k/40:16k/30:64k/30', 'ioengine=libaio', 'iodepth=16', `io_size=${SIZE / 4}`, 'randseed=7'], bytes: SIZE / 4 },
  { name: 'random-large', options: ['rw=randread', 'bssplit=128k/50:1m/50', 'ioengine=psync'], bytes: SIZE },
  { name: 'sequential-mixed', options: ['rw=read', 'bssplit=8k/50:24k/30:192k/20', 'ioengine=libaio', 'iodepth=4'], bytes: SIZE },
  { name: 'sequential', options: ['rw=read', 'bs=1m', 'ioengine=psync'], bytes: SIZE },
]

function jobFile(file: string): string {
  const global = ['[global]', `filename=${file}`, 'direct=1', 'verify=crc32c', `verify_interval=${VERIFY_INTERVAL}`, 'verify_fatal=1']
  return [...global, ...JOBS.flatMap(({ name, options }) => ['', `[${name}]`, ...options]), ''].join('\n')
}

interface FioRun {
  code: number | null
  jobs: { jobname: string; error: number; read: { io_bytes: number } }[]
  /** fio's complaints (verify failures go to stderr). */
  stderr: string
  ms: number
}

async function fioVerify(dir: string, file: string): Promise<FioRun> {
  const jobs = join(dir, `${file.replace(/\W/g, '_')}.fio`)
  await writeFile(jobs, jobFile(file))
  const started = Date.now()
  let code: number | null = 0
  let stdout = ''
  let stderr = ''
  try {
    ;({ stdout, stderr } = await run('fio', ['--readonly', '--output-format=json', jobs], { cwd: dir, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }))
  } catch (err) {
    const failed = err as { code?: unknown; stdout?: string; stderr?: string }
    code = typeof failed.code === 'number' ? failed.code : null
    stdout = failed.stdout ?? ''
    stderr = failed.stderr ?? ''
  }
  // fio prints a line per failed job before the JSON document.
  const json = stdout.slice(stdout.indexOf('\n{') + 1)
  const report = json.startsWith('{') ? (JSON.parse(json) as { jobs: FioRun['jobs'] }).jobs : []
  return { code, jobs: report, stderr: stderr + stdout.slice(0, stdout.indexOf('\n{') + 1), ms: Date.now() - started }
}

function passes(t: Test, result: FioRun): void {
  const total = JOBS.reduce((sum, job) => sum + job.bytes, 0)
  t.comment(`fio read and verified ${total / 2 ** 20} MiB in ${result.ms} ms`)
  t.equal(result.code, 0, `fio exits 0 ${result.stderr}`)
  t.same(result.jobs.map((job) => job.jobname), JOBS.map((job) => job.name), `${JOBS.length} jobs ran`)
  t.same(result.jobs.filter((job) => job.error !== 0), [], 'none reports an error')
  // A random job may overshoot its io_size by its last block; a sequential one stops at EOF.
  t.same(
    result.jobs.filter((job, i) => job.read.io_bytes < JOBS[i]!.bytes || job.read.io_bytes > JOBS[i]!.bytes + 1024 * 1024),
    [],
    'each read and verified all it was meant to',
  )
  t.same(result.jobs.filter((job) => job.jobname.startsWith('sequential') && job.read.io_bytes !== SIZE), [], 'the sequential ones every byte')
  t.notMatch(result.stderr, /verify/, 'no verify failures')
}

t.test('fio verifies what it wrote, read through the mount from every backend', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const source = join(www, 'source.img')
  // verify_state_save=0: a writing job otherwise leaves local-source-0-verify.state in the cwd.
  const write = ['--name=source', `--filename=${source}`, '--rw=write', '--bs=1m', `--size=${SIZE}`, '--verify=crc32c', `--verify_interval=${VERIFY_INTERVAL}`]
  await run('fio', [...write, '--do_verify=0', '--verify_state_save=0', '--output-format=terse'], { cwd: dir })

  // Copies the check must reject: one byte changed, and two blocks swapped (each intact on its
  // own, so only the offset in its header gives it away, as with a read from the wrong place).
  const flipped = join(dir, 'flipped.img')
  await copyFile(source, flipped)
  await withFile(flipped, async (handle) => {
    const at = 20 * 1024 * 1024 + 777
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, at)
    byte[0] = byte[0]! ^ 0xff
    await handle.write(byte, 0, 1, at)
  })
  const swapped = join(dir, 'swapped.img')
  await copyFile(source, swapped)
  await withFile(swapped, async (handle) => {
    const [a, b] = [1000 * VERIFY_INTERVAL, 3000 * VERIFY_INTERVAL]
    const [blockA, blockB] = [Buffer.alloc(VERIFY_INTERVAL), Buffer.alloc(VERIFY_INTERVAL)]
    await handle.read(blockA, 0, VERIFY_INTERVAL, a)
    await handle.read(blockB, 0, VERIFY_INTERVAL, b)
    await handle.write(blockB, 0, VERIFY_INTERVAL, a)
    await handle.write(blockA, 0, VERIFY_INTERVAL, b)
  })

  const nginx = await startNginx(t, www)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await s3.uploadFile('snaps', 'source.img', source)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    [
      'mountpoint: mnt',
      'snapshots:',
      `  - { name: file.img, type: file, path: ${source} }`,
      `  - { name: mmap.img, type: mmap, path: ${source} }`,
      `  - { name: http.img, type: http, url: "${nginx.url('/source.img')}" }`,
      `  - { name: s3.img, type: s3, url: "s3://snaps/source.img", endpoint: "${s3.endpoint}", region: ${s3.region} }`,
      `  - { name: flipped.img, type: file, path: ${flipped} }`,
      `  - { name: swapped.img, type: file, path: ${swapped} }`,
      '',
    ].join('\n'),
  )
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, ['--config', config])
  t.teardown(() => daemon.stop())

  for (const name of ['file.img', 'mmap.img', 'http.img', 's3.img']) {
    t.test(name, async (t) => passes(t, await fioVerify(dir, join(mountpoint, name))))
  }

  t.test('a changed byte fails the check', async (t) => {
    const result = await fioVerify(dir, join(mountpoint, 'flipped.img'))
    t.not(result.code, 0, 'fio exits non-zero')
    t.match(result.stderr, /crc32c: verify failed at file .* offset 20971520, length 4096/, 'naming the 4 KiB block with the changed byte')
    t.ok(result.jobs.some((job) => job.error === 84), 'a job fails EILSEQ, fio\'s verify error')
  })

  t.test('a block in the wrong place fails the check', async (t) => {
    const result = await fioVerify(dir, join(mountpoint, 'swapped.img'))
    t.not(result.code, 0, 'fio exits non-zero')
    t.match(result.stderr, /verify: bad header offset/, 'on the offset in the block\'s header')
  })
})

async function withFile(path: string, change: (handle: FileHandle) => Promise<void>): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    await change(handle)
  } finally {
    await handle.close()
  }
}

import t from 'tap'
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DeleteObjectCommand } from '@aws-sdk/client-s3'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { makeRandomImage } from '../fixtures/images.js'
import { readPathSuite } from '../fixtures/read-path-suite.js'
import { ddRange, readRange } from '../fixtures/readers.js'
import { seededBytes } from '../fixtures/test-data.js'
import { tempDir } from '../fixtures/temp-dir.js'

/**
 * S3 snapshots through real mounts against fauxqs, an S3-protocol server in this process. It holds
 * no object over 4 GiB on Node 20 and checks no signatures: reads past 4 GiB and credential
 * failures are tested against Ceph's radosgw (test/s3/).
 */
const IMAGE_SIZE = 96 * 1024 * 1024 + 333

// The daemon is a child process and inherits these; fauxqs accepts any credentials.
Object.assign(process.env, FAUX_S3_ENV)

t.test('s3 snapshots through the mount', async (t) => {
  const dir = await tempDir(t)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  const image = await makeRandomImage(dir, 'disk.raw', IMAGE_SIZE, 21)
  await s3.uploadFile('snaps', 'golden/disk.raw', image)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    `mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: s3://snaps/golden/disk.raw\n    endpoint: ${s3.endpoint}\n    region: ${s3.region}\n`,
  )
  await mkdir(join(dir, 'mnt'))

  t.test('check shows size, ETag and endpoint', async (t) => {
    const result = await runCli(['check', '--config', config])
    t.equal(result.code, 0, result.stderr)
    t.match(result.stdout, new RegExp(`^disk\\.raw\\ts3\\t${IMAGE_SIZE}\\t.*\\ts3://snaps/golden/disk\\.raw; etag "[^"]+"; version none; ${s3.endpoint} us-east-1; \\d+ ms round trip\\treadable by uid \\d+ only [^\\n]*\\n$`))
  })

  t.test('reads', async (t) => {
    const daemon = await startDaemon(t, join(dir, 'mnt'), ['--config', config])
    t.teardown(() => daemon.stop())
    readPathSuite(t, { mounted: join(dir, 'mnt', 'disk.raw'), source: image, size: IMAGE_SIZE }, undefined)
  })
})

t.test('an object overwritten or deleted while mounted fails reads, never mixes versions', async (t) => {
  const dir = await tempDir(t)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  const before = seededBytes(1, 4 * 1024 * 1024)
  await s3.putObject('snaps', 'disk.raw', before)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: s3://snaps/disk.raw\n    endpoint: ${s3.endpoint}\n    region: us-east-1\n`)
  await mkdir(join(dir, 'mnt'))
  const daemon = await startDaemon(t, join(dir, 'mnt'), ['--config', config])
  t.teardown(() => daemon.stop())
  const mounted = join(dir, 'mnt', 'disk.raw')

  t.ok((await ddRange(mounted, 0, 65536, { direct: true })).equals(before.subarray(0, 65536)), 'the original bytes')
  await s3.putObject('snaps', 'disk.raw', seededBytes(2, 4 * 1024 * 1024))
  // The first read cached its 128 KiB block: that is still the pinned version's bytes.
  t.ok((await ddRange(mounted, 65536, 4096, { direct: true })).equals(before.subarray(65536, 65536 + 4096)), 'cached bytes stay those of the pinned version')
  await t.rejects(ddRange(mounted, 1024 * 1024, 65536, { direct: true }), /Input\/output error/, 'a read of anything else fails EIO')
  t.match(daemon.stderr(), /changed on the server since it was mounted/, 'and the log says why')
  await t.rejects(readRange(mounted, 1536 * 1024, 4096), { code: 'EIO' }, 'so does a buffered read')

  await s3.client.send(new DeleteObjectCommand({ Bucket: 'snaps', Key: 'disk.raw' }))
  await t.rejects(ddRange(mounted, 2 * 1024 * 1024, 4096, { direct: true }), /Input\/output error/, 'a deleted object fails EIO')
  t.equal((await stat(mounted)).size, 4 * 1024 * 1024, 'the mount itself still answers, with the size seen at start')
  t.same(await readdir(join(dir, 'mnt')), ['disk.raw'])
})

t.test('refusals at start name the missing bucket or key, or the unreachable endpoint', async (t) => {
  const dir = await tempDir(t)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await mkdir(join(dir, 'mnt'))
  const attempt = async (url: string, endpoint: string) => {
    const config = join(dir, 'c.yaml')
    await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: ${url}\n    endpoint: ${endpoint}\n    region: us-east-1\n    read_deadline_ms: 2000\n`)
    return runCli(['mount', '--config', config])
  }
  const noKey = await attempt('s3://snaps/missing.raw', s3.endpoint)
  t.equal(noKey.code, 2)
  t.match(noKey.stderr, /cannot open s3:\/\/snaps\/missing\.raw: bucket snaps has no object missing\.raw; check the key/)
  const noBucket = await attempt('s3://nobucket/disk.raw', s3.endpoint)
  t.equal(noBucket.code, 2)
  t.match(noBucket.stderr, /bucket nobucket does not exist; check the bucket name and the endpoint/)
  t.equal(noKey.stderr.split('\n').length + noBucket.stderr.split('\n').length, 4, 'one line each: a 404 is final')
  const unreachable = await attempt('s3://snaps/disk.raw', 'http://127.0.0.1:9')
  t.equal(unreachable.code, 2)
  t.match(unreachable.stderr, /endpoint http:\/\/127\.0\.0\.1:9 unreachable \(.*ECONNREFUSED/)
})

t.test('check with no region, or no credentials: one error line naming the fix, with no retries first', async (t) => {
  const dir = await tempDir(t)
  const s3 = await startFauxS3(t)
  await s3.createBucket('snaps')
  await s3.putObject('snaps', 'disk.raw', seededBytes(3, 4096))
  // A budget of many attempts: retried, these would take seconds and log a warning each.
  const budget = '    max_attempts: 10\n    read_deadline_ms: 9000\n'
  const config = async (region: string) => {
    const file = join(dir, `${region || 'no-region'}.yaml`)
    await writeFile(file, `mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: s3://snaps/disk.raw\n    endpoint: ${s3.endpoint}\n${region}${budget}`)
    return file
  }
  const noConfigFiles = { AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_PROFILE: undefined }
  const cases = [
    {
      what: 'no region',
      file: await config(''),
      env: { ...noConfigFiles, AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined },
      line: /^snapmount error: cannot open s3:\/\/snaps\/disk\.raw: no region; set region: in the config or AWS_REGION in the environment$/,
    },
    {
      what: 'no credentials',
      file: await config('    region: us-east-1\n'),
      env: { ...noConfigFiles, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined, AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined, AWS_WEB_IDENTITY_TOKEN_FILE: undefined },
      line: /^snapmount error: cannot open s3:\/\/snaps\/disk\.raw: no AWS credentials found \(.+\); give credentials the usual way \(environment, profile:, SSO, instance role\) or set anonymous: true$/,
    },
  ]
  for (const { what, file, env, line } of cases) {
    const started = Date.now()
    const result = await runCli(['check', '--config', file], { env })
    const elapsed = Date.now() - started
    t.equal(result.code, 2, `${what}: exit 2`)
    t.equal(result.stdout, '')
    const lines = result.stderr.trimEnd().split('\n')
    t.equal(lines.length, 1, `${what}: exactly one line: ${result.stderr}`)
    t.match(lines[0], line, `${what}: it names the fix`)
    t.comment(`${what}: refused in ${elapsed} ms, the process's start included`)
    t.ok(elapsed < 9000, `${what}: well within the read deadline of 9000 ms`)
  }
})

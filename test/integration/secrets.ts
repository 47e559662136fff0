import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { startFaultServer } from '../fixtures/fault-server.js'
import { readRange } from '../fixtures/readers.js'
import { tempMountpoint } from '../fixtures/temp-mountpoint.js'
import { seededBytes } from '../fixtures/test-data.js'

// Issue 14, item 7: no secret reaches a message, a log line, a metric or `status`, however it was
// given: a query value, a bare query key (`?TOKEN`), a fragment, user information in a URL or an
// S3 endpoint, a header whose name says it is a credential.

const KiB = 1024
const IMAGE = seededBytes(7_000_714, 512 * KiB + 77)
/** Every secret of these tests starts so: none may appear anywhere the user sees. */
const SECRET = /SeCrEt/

t.test('refusals never repeat the secret they refuse', async (t) => {
  const { dir, mountpoint } = await tempMountpoint(t)
  const refusal = async (args: string[], problem: RegExp, fix: RegExp) => {
    const result = await runCli(args)
    t.equal(result.code, 2, `exit 2: ${result.stderr}`)
    t.match(result.stderr, problem, 'names the problem')
    t.match(result.stderr, fix, 'gives the fix')
    t.notMatch(result.stderr + result.stdout, SECRET, 'no secret in what it prints')
  }
  // An URL that does not parse (a space in the host) with a secret in it: shown as scheme and host at most.
  await refusal(['mount', mountpoint, 'https://me:SeCrEt1@bad host/disk.img?sig=SeCrEt2&SeCrEt3#SeCrEt4'], /snapshots\[0\]\.url: an unparseable URL starting "https:\/\/bad" is not a URL/, /give a full URL/)
  await refusal(['mount', mountpoint, 'disk=ftp://me:SeCrEt1@host/disk.img?SeCrEt2'], /source 1 \("disk=ftp:\/\/REDACTED:REDACTED@host\/disk\.img\?REDACTED"\): unsupported scheme ftp:/, /use a path/)

  const config = join(dir, 'snapmount.yaml')
  // An S3 endpoint with user information: refused before any request, and not shown (today it was, in every error).
  await writeFile(config, 'mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: s3://bucket/disk.img\n    region: us-east-1\n    endpoint: http://AKIAEXAMPLE:SeCrEt5@127.0.0.1:9\n')
  await refusal(['check', '--config', config], /snapshots\[0\]\.endpoint: carries a user name or password \(not shown here\)/, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment/)
  // A manifest or profile URL with another scheme: refused, shown redacted (it was shown whole).
  for (const field of ['manifest: { url: "ftp://me:SeCrEt7@host/disk.img.manifest?SeCrEt8#SeCrEt9", sha256: "' + '0'.repeat(64) + '" }', 'prefetch_profile: "ftp://me:SeCrEt7@host/disk.json?sig=SeCrEt8"']) {
    await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: http\n    url: http://127.0.0.1:9/disk.img\n    ${field}\n`)
    await refusal(['check', '--config', config], /snapshots\[0\]\.(manifest\.url|prefetch_profile): ftp:\/\/REDACTED:REDACTED@host\/disk\.[a-z.]+\?(sig=)?REDACTED is not an http\(s\):\/\/ or s3:\/\/ URL/, /give/)
  }
  // A header named like a credential, with its value in the config: refused (only Authorization and Cookie were).
  for (const name of ['X-Api-Key', 'X-Auth-Token', 'X-Client-Secret']) {
    await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: http\n    url: http://127.0.0.1:9/disk.img\n    headers:\n      ${name}: SeCrEt6\n`)
    await refusal(['check', '--config', config], new RegExp(`snapshots\\[0\\]\\.headers\\.${name}: holds a credential in the config file`), new RegExp(`read it at start instead: ${name}: \\{ env: VARIABLE \\} or ${name}: \\{ file: /path \\}`))
  }
})

t.test('a running daemon shows no secret in check, status, its logs or its metrics', async (t) => {
  const { dir, mountpoint } = await tempMountpoint(t)
  const server = await startFaultServer(t, IMAGE)
  const socket = join(dir, 'control.sock')
  const config = join(dir, 'snapmount.json')
  // A presigned-style URL: a signature in a value, a token as a bare key, another in the fragment.
  const url = `${server.url('/images/disk.img')}?X-Signature=SeCrEt1&SeCrEt2#SeCrEt3`
  await writeFile(
    config,
    JSON.stringify({
      mountpoint,
      options: { metrics: { listen: '127.0.0.1:0' }, control_socket: socket },
      snapshots: [{ type: 'http', url, headers: { 'X-Api-Key': { env: 'SNAP_TEST_KEY' } }, max_attempts: 2, read_deadline_ms: 3000 }],
    }),
  )
  const env = { SNAP_TEST_KEY: 'SeCrEt4' }
  const check = await runCli(['check', '--config', config], { env })
  t.equal(check.code, 0, check.stderr)
  t.match(check.stdout, /^disk\.img\thttp\t\d+\t.*\thttp:\/\/127\.0\.0\.1:\d+\/images\/disk\.img\?X-Signature=REDACTED&REDACTED;/, 'check shows the URL redacted')

  for (const format of ['text', 'json']) {
    const daemon = await startDaemon(t, mountpoint, ['--config', config], { ...env, SNAPMOUNT_LOG_FORMAT: format })
    // Failed attempts are logged with the URL. (Whether the reader sees EIO depends on how the kernel
    // splits and retries the read; the log lines are what matter here.)
    server.plan({ kind: 'status', status: 503 }, { kind: 'status', status: 503 })
    await readRange(join(mountpoint, 'disk.img'), 0, 4096).catch(() => undefined)
    t.ok((await readRange(join(mountpoint, 'disk.img'), 0, IMAGE.length)).equals(IMAGE), `${format}: then it reads`)
    const status = await runCli(['status', '--socket', socket])
    const json = await runCli(['status', '--socket', socket, '--json'])
    t.equal(status.code, 0, status.stderr)
    t.match(status.stdout, /X-Signature=REDACTED&REDACTED/, 'status shows the URL redacted')
    const { metricsUrl } = JSON.parse(json.stdout) as { metricsUrl: string }
    const metrics = await (await fetch(metricsUrl)).text()
    t.match(metrics, /snapmount_(read_errors|backend_retries)_total\{snapshot="disk\.img"\} [1-9]/, 'metrics counted the failed attempts')
    t.equal(await daemon.stop(), 0)
    t.match(daemon.stderr(), /X-Signature=REDACTED&REDACTED/, `${format}: the log names the URL, redacted`)
    for (const [where, output] of [['log', daemon.stderr()], ['status', status.stdout + status.stderr], ['status --json', json.stdout], ['metrics', metrics]] as const) {
      t.notMatch(output, SECRET, `${format}: no secret in the ${where}`)
    }
  }
  t.ok(server.requests.some(({ headers }) => headers['x-api-key'] === 'SeCrEt4'), 'the header was sent, from the environment')
})

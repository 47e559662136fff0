import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, runCli, type CliResult } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempMountpoint } from '../fixtures/temp-mountpoint.js'

// Values an attacker or a typo can put in a config, a command line or a server's answer (issue 14,
// item 6): each is refused with exit 2 and one line naming the problem and the fix, never a stack
// trace, never a mount.

async function setUp(t: Test) {
  const { dir, mountpoint } = await tempMountpoint(t)
  return { dir, mountpoint, image: await makeRandomImage(dir, 'disk.raw', 64 * 1024) }
}

/** Exit 2, nothing on stdout, one error line with `problem` and `fix`, no stack, no raw control character, nothing mounted. */
async function refused(t: Test, result: CliResult, mountpoint: string, problem: RegExp, fix: RegExp): Promise<void> {
  t.equal(result.code, 2, 'exit 2: bad input')
  t.equal(result.stdout, '', 'nothing on stdout')
  t.match(result.stderr, /^snapmount error: [^\n]+; [^\n]+\n$/, `one error line: ${JSON.stringify(result.stderr)}`)
  t.match(result.stderr, problem, 'names the problem')
  t.match(result.stderr, fix, 'gives the fix')
  t.notMatch(result.stderr, /URIError|\n\s+at /, 'no stack trace')
  t.notMatch(result.stderr.slice(0, -1), /[\u0000-\u001f\u007f-\u009f]/, 'no control character reaches the terminal')
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
}

t.test('uid or gid starting with "-" is never handed to getent as an option (today "--" listed root first)', async (t) => {
  const { dir, image, mountpoint } = await setUp(t)
  for (const [field, value] of [['uid', '--'], ['uid', '-1'], ['gid', '-s'], ['gid', '--help']] as const) {
    const config = join(dir, 'snapmount.yaml')
    await writeFile(config, `mountpoint: mnt\noptions:\n  ${field}: "${value}"\nsnapshots:\n  - type: file\n    path: disk.raw\n`)
    const result = await runCli(['mount', '--config', config])
    await refused(t, result, mountpoint, new RegExp(`options\\.${field}: "${value}" starts with "-"`), /give the (user|group)'s name or its number/)
  }
  const flag = await runCli(['mount', mountpoint, image, '--uid=--'])
  await refused(t, flag, mountpoint, /command line: options\.uid: "--" starts with "-"/, /give the user's name or its number/)
  const control = await runCli(['mount', mountpoint, image, '--gid=kvm\u001b[2J'])
  await refused(t, control, mountpoint, /command line: options\.gid: "kvm\\u001b\[2J" contains a control character \(U\+001B\)/, /give a number or a group name/)
})

t.test('a malformed percent-escape in an http URL: a refusal, not a URIError stack (exit 1 today)', async (t) => {
  const { mountpoint } = await setUp(t)
  for (const path of ['disk%ZZ.img', 'disk%E0%A4%A.img', 'disk%']) {
    const result = await runCli(['mount', mountpoint, `http://127.0.0.1:9/images/${path}`])
    await refused(t, result, mountpoint, new RegExp(`source 1\\)?[^;]*url: its path ends in "${path}", which holds a malformed percent-escape|snapshots\\[0\\]\\.url: its path ends in`), /write a literal % as %25/)
  }
})

t.test('control characters in names are refused wherever the name comes from', async (t) => {
  const { dir, image, mountpoint } = await setUp(t)
  const config = join(dir, 'snapmount.yaml')
  const fromConfig: Array<[string, string]> = [
    ['"disk\\nsnapmount error: forged.img"', 'U\\+000A'],
    ['"disk\\e[31mred.img"', 'U\\+001B'],
    ['"disk\\x7f.img"', 'U\\+007F'],
    ['"disk\\x9b31m.img"', 'U\\+009B'],
    ['"disk\\u202Egmi.raw"', 'U\\+202E'],
  ]
  for (const [name, code] of fromConfig) {
    await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: file\n    path: disk.raw\n    name: ${name}\n`)
    const result = await runCli(['mount', '--config', config])
    await refused(t, result, mountpoint, new RegExp(`snapshots\\[0\\]\\.name: "disk.*" contains a control character \\(${code}\\)`), /give a plain file name/)
  }
  // From an URL's path (percent-decoded), and from an S3 key (taken as it is), given no name.
  for (const url of ['http://127.0.0.1:9/disk%0Aforged.img', 'http://127.0.0.1:9/disk%1B%5B31m.img', 's3://bucket/disk\u001b[31m.img']) {
    const result = await runCli(['mount', mountpoint, image, url])
    await refused(t, result, mountpoint, /command line: snapshots\[1\]\.(name|url): .*contains a control character \(U\+00(0A|1B)\)/, /give name:|without one/)
  }
  // From a local file's name, given no name: the file exists, its name is what is refused.
  const odd = join(dir, 'disk\u001b[31m.raw')
  await copyFile(image, odd)
  await refused(t, await runCli(['mount', mountpoint, odd]), mountpoint, /command line: snapshots\[0\]\.name: "disk\\u001b\[31m\.raw" contains a control character \(U\+001B\)/, /give name:/)
  // An S3 key is refused even with a plain name: it reaches the log and status as it is.
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: s3\n    name: disk.img\n    url: "s3://bucket/a\\e]0;title\\a/disk.img"\n`)
  await refused(t, await runCli(['mount', '--config', config]), mountpoint, /snapshots\[0\]\.url: s3:\/\/bucket\/a\\u001b\]0;title\\u0007\/disk\.img contains a control character \(U\+001B\)/, /copy the object/)
})

/** A server of our own that answers every request with `answer`. */
async function startServer(t: Test, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(answer)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  server.unref()
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const HUGE = '18014398509481985' // 2^54 + 1: a JavaScript number rounds it to 2^54, and Node's HTTP parser takes it (2^64 it would not)

t.test('an http server claiming a size past 2^53 - 1 in Content-Range: refused at once (taken, rounded, today)', async (t) => {
  const { dir, mountpoint } = await setUp(t)
  let requests = 0
  const origin = await startServer(t, (req, res) => {
    requests++
    if (req.method === 'HEAD') return res.writeHead(405).end()
    res.writeHead(206, { 'content-range': `bytes 0-0/${HUGE}`, 'content-length': '1', etag: '"v1"' }).end('x')
  })
  const config = join(dir, 'snapmount.yaml')
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: http\n    url: ${origin}/disk.img\n`)
  const result = await runCli(['check', '--config', config])
  await refused(t, result, mountpoint, new RegExp(`cannot open ${origin}/disk\\.img gives a size of ${HUGE} bytes in Content-Range, past the largest snapmount can serve exactly \\(9007199254740991\\)`), /a proxy may rewrite Content-Range/)
  t.equal(requests, 2, 'HEAD and one ranged GET: a size no retry changes is not retried')
})

t.test('an S3 store claiming a ContentLength past 2^53 - 1: refused', async (t) => {
  const { dir, mountpoint } = await setUp(t)
  const origin = await startServer(t, (req, res) => {
    res.writeHead(200, { 'content-length': HUGE, etag: '"v1"', 'last-modified': new Date(0).toUTCString() })
    res.end()
  })
  const config = join(dir, 'snapmount.yaml')
  await writeFile(config, `mountpoint: mnt\nsnapshots:\n  - type: s3\n    url: s3://bucket/disk.img\n    endpoint: ${origin}\n    region: us-east-1\n    anonymous: true\n`)
  const result = await runCli(['check', '--config', config])
  await refused(t, result, mountpoint, /cannot open s3:\/\/bucket\/disk\.img.*: the store gives a size of 18014398509481984 bytes, which is not a whole number of bytes snapmount can serve exactly/, /objects past 8 PiB are not supported/)
})

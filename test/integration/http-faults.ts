import t from 'tap'
import type { Test } from 'tap'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMounted, runCli, startDaemon, type Daemon } from '../fixtures/daemon.js'
import { startFaultServer, type Fault, type FaultServer, type RecordedRequest } from '../fixtures/fault-server.js'
import { ddRange, readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { seededBytes } from '../fixtures/test-data.js'

/**
 * HTTP faults through real mounts: a daemon child process per mount, reading from our
 * misbehaving server. Every read is O_DIRECT, one whole 128 KiB cache block never read before,
 * at least 1 MiB from any other read (so no readahead starts), so it reaches the daemon as exactly
 * one FUSE read (the kernel passes O_DIRECT reads of up to 1 MiB whole) and the backend as one
 * ranged GET (plus its retries): faults planned on the server are taken by the read that follows,
 * in order. Each case ends in the object's exact bytes or a clean EIO, and a good read afterwards
 * shows the mount still serves.
 *
 * Not covered here: a redirect from https to http must be refused, but the fault server speaks
 * plain HTTP only and the TLS nginx fixture cannot be told to redirect, so that case has no test
 * in this file.
 */

const KiB = 1024
const MiB = 1024 * KiB
/** One block of the default cache (cache_block_kib 128): one dd read of it is one FUSE read and one ranged GET. */
const BLOCK = 128 * KiB
/** 64 MiB with a ragged tail, so the last read is clamped at EOF; room for reads 1 MiB apart. */
const SIZE = 64 * MiB + 77_777
const OBJECT = seededBytes(20_240_611, SIZE)
const TAIL = { offset: Math.floor(SIZE / BLOCK) * BLOCK, length: SIZE % BLOCK }

// Small budgets keep the file fast; read_deadline_ms must stay under read_timeout_ms.
const READ_TIMEOUT_MS = 4000
const READ_DEADLINE_MS = 3000
const HEADERS_TIMEOUT_MS = 500
const BODY_TIMEOUT_MS = 500
const MAX_ATTEMPTS = 5
/** How long to wait for the daemon's log lines to come through the pipe after a read returns. */
const LOG_WAIT_MS = 2000

// The daemon child inherits these: the config reads its credentials from the environment.
const API_KEY = 'key-7f3a9c'
const TOKEN = 'Bearer token-51be02'
process.env.SNAP_KEY = API_KEY
process.env.SNAP_TOKEN = TOKEN

interface Mounted {
  server: FaultServer
  daemon: Daemon
  mountpoint: string
  /** The snapshot's file in the mount. */
  disk: string
}

/** Writes a config for one http snapshot named `disk` and returns its path and mountpoint. */
async function writeConfig(dir: string, name: string, url: string, credentials = false): Promise<{ file: string; mountpoint: string }> {
  const mountpoint = join(dir, name)
  await mkdir(mountpoint)
  const lines = [
    `mountpoint: ${mountpoint}`,
    'options:',
    `  read_timeout_ms: ${READ_TIMEOUT_MS}`,
    'snapshots:',
    '  - type: http',
    '    name: disk',
    `    url: ${url}`,
    `    read_deadline_ms: ${READ_DEADLINE_MS}`,
    `    headers_timeout_ms: ${HEADERS_TIMEOUT_MS}`,
    `    body_timeout_ms: ${BODY_TIMEOUT_MS}`,
    '    connect_timeout_ms: 500',
    `    max_attempts: ${MAX_ATTEMPTS}`,
    ...(credentials ? ['    headers:', '      X-Api-Key: { env: SNAP_KEY }', '      Authorization: { env: SNAP_TOKEN }'] : []),
  ]
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, `${lines.join('\n')}\n`)
  return { file, mountpoint }
}

/** A fault server serving `OBJECT` (after `setUp` has set its modes) and a daemon mounting it. */
async function mount(t: Test, options: { credentials?: boolean; setUp?: (server: FaultServer) => void } = {}): Promise<Mounted> {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, OBJECT)
  options.setUp?.(server)
  const { file, mountpoint } = await writeConfig(dir, 'mnt', server.url(), options.credentials)
  const daemon = await startDaemon(t, mountpoint, ['--config', file])
  return { server, daemon, mountpoint, disk: join(mountpoint, 'disk') }
}

interface Outcome {
  /** The bytes dd read, or undefined when it failed. */
  bytes: Buffer | undefined
  /** dd's stderr when it failed. */
  error: string | undefined
  ms: number
  /** What the server received while the read ran. */
  requests: RecordedRequest[]
  /** The daemon's log from the start of the read, once `pattern` shows in it or LOG_WAIT_MS has passed. */
  log(pattern: RegExp): Promise<string>
}

/** Plans `faults`, then reads one range with O_DIRECT in a dd child. */
async function readWith(m: Mounted, offset: number, length: number, ...faults: Fault[]): Promise<Outcome> {
  const requestMark = m.server.requests.length
  const logMark = m.daemon.stderr().length
  m.server.plan(...faults)
  const started = performance.now()
  let bytes: Buffer | undefined
  let error: string | undefined
  try {
    bytes = await ddRange(m.disk, offset, length, { direct: true })
  } catch (err) {
    const stderr = (err as { stderr?: Buffer | string }).stderr
    error = stderr === undefined || stderr.length === 0 ? String(err) : stderr.toString()
  }
  const ms = Math.round(performance.now() - started)
  return { bytes, error, ms, requests: m.server.requests.slice(requestMark), log: (pattern) => logSince(m.daemon, logMark, pattern) }
}

async function logSince(daemon: Daemon, mark: number, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + LOG_WAIT_MS
  while (!pattern.test(daemon.stderr().slice(mark)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  return daemon.stderr().slice(mark)
}

function expected(offset: number, length: number): Buffer {
  return OBJECT.subarray(offset, Math.min(offset + length, SIZE))
}

function gets(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((request) => request.method === 'GET')
}

/** The read returned exactly the object's bytes. */
function assertBytes(t: Test, outcome: Outcome, offset: number, length: number): void {
  t.equal(outcome.error, undefined, 'dd succeeded')
  t.ok(outcome.bytes?.equals(expected(offset, length)), `the object's bytes ${offset}+${length} (${outcome.ms} ms)`)
}

/** The read failed cleanly: dd got EIO and returned nothing. */
function assertEio(t: Test, outcome: Outcome): void {
  t.equal(outcome.bytes, undefined, 'no bytes returned')
  t.match(outcome.error, /Input\/output error/, `dd failed with EIO (${outcome.ms} ms)`)
}

/**
 * `count` GETs for the read, each for exactly this range; or, when the first one's body was cut
 * after `kept` bytes, the retries for only the rest of it.
 */
function assertGets(t: Test, outcome: Outcome, count: number, offset: number, length: number, kept = 0): void {
  const last = Math.min(offset + length, SIZE) - 1
  const range = `bytes=${offset}-${last}`
  const rest = `bytes=${offset + kept}-${last}`
  const seen = gets(outcome.requests)
  t.equal(seen.length, count, `${count} GET(s) for the read`)
  t.same(
    seen.map((request) => request.headers.range),
    seen.map((_, i) => (i === 0 ? range : rest)),
    kept === 0 ? `each for ${range}` : `the first for ${range}, the retries for ${rest}`,
  )
}

t.test('transient faults on one mount: each read recovers or fails cleanly, and the mount goes on', async (t) => {
  const m = await mount(t, { credentials: true })
  const other = await startFaultServer(t, OBJECT)
  let next = 0
  /** A range no earlier case has read: one full block each, 1 MiB apart (not a sequential stream). */
  const fresh = () => ({ offset: next++ * MiB, length: BLOCK })

  t.test('500, then 503, then success: the right bytes after two logged retries', async (t) => {
    const { offset, length } = fresh()
    const outcome = await readWith(m, offset, length, { kind: 'status', status: 500 }, { kind: 'status', status: 503 })
    assertBytes(t, outcome, offset, length)
    assertGets(t, outcome, 3, offset, length)
    const log = await outcome.log(/retry 2\//)
    t.match(log, /warn: GET \S+ bytes \d+-\d+: E_HTTP_STATUS: \S+ answered 500; retry 1\/4 in \d+ ms/)
    t.match(log, /warn: GET \S+ bytes \d+-\d+: E_HTTP_STATUS: \S+ answered 503; retry 2\/4 in \d+ ms/)
  })

  t.test('429 with Retry-After: 1 waits at least a second, then the right bytes', async (t) => {
    const { offset, length } = fresh()
    const outcome = await readWith(m, offset, length, { kind: 'status', status: 429, headers: { 'retry-after': '1' } })
    assertBytes(t, outcome, offset, length)
    assertGets(t, outcome, 2, offset, length)
    t.match(await outcome.log(/retry 1\//), /answered 429; retry 1\/4 in 1\d{3} ms/, 'the wait honours Retry-After')
    t.ok(outcome.ms >= 1000, `the read took at least 1 s (${outcome.ms} ms)`)
  })

  // The faults that cut a body send half of it first: the retry asks only for the other half.
  const HALF = BLOCK / 2
  const recoverable: Array<{ name: string; fault: Fault; logged: RegExp; atLeastMs?: number; kept?: number }> = [
    { name: 'a reset mid-body', fault: { kind: 'reset-mid-body' }, logged: /ECONNRESET.*retry 1\/4/, kept: HALF },
    // On a kept-alive connection this is also how a server's keep-alive timeout can look: sent again at once.
    { name: 'a reset before any response', fault: { kind: 'reset' }, logged: /ECONNRESET.*(retry 1\/4|sent again on a new one)/ },
    {
      name: 'a short body (clean close before Content-Length)',
      fault: { kind: 'short-body' },
      logged: /E_TRUNCATED_BODY.*retry 1\/4/,
      kept: HALF,
    },
    {
      name: `headers slower than headers_timeout_ms (${HEADERS_TIMEOUT_MS} ms)`,
      fault: { kind: 'slow-headers', ms: 3 * HEADERS_TIMEOUT_MS },
      logged: /E_HEADERS_TIMEOUT.*retry 1\/4/,
      atLeastMs: HEADERS_TIMEOUT_MS,
    },
    {
      name: `a body stalled longer than body_timeout_ms (${BODY_TIMEOUT_MS} ms)`,
      fault: { kind: 'stall-body', ms: 3 * BODY_TIMEOUT_MS },
      logged: /E_BODY_TIMEOUT.*retry 1\/4/,
      atLeastMs: BODY_TIMEOUT_MS,
      kept: HALF,
    },
  ]
  for (const { name, fault, logged, atLeastMs, kept } of recoverable) {
    t.test(`${name}: retried, the right bytes`, async (t) => {
      const { offset, length } = fresh()
      const outcome = await readWith(m, offset, length, fault)
      assertBytes(t, outcome, offset, length)
      assertGets(t, outcome, 2, offset, length, kept)
      t.match(await outcome.log(logged), logged, 'the retry is logged with its cause')
      if (kept !== undefined) t.match(await outcome.log(logged), new RegExp(`retry 1/4 in \\d+ ms, from byte ${offset + kept}\n`), 'and resumes after the bytes that came')
      if (atLeastMs !== undefined) t.ok(outcome.ms >= atLeastMs, `the read waited out the timeout (${outcome.ms} >= ${atLeastMs} ms)`)
    })
  }

  t.test('a 206 for another range: retried, the right bytes and never the shifted ones', async (t) => {
    const { offset, length } = fresh()
    const outcome = await readWith(m, offset, length, { kind: 'wrong-range' })
    assertBytes(t, outcome, offset, length)
    t.notOk(outcome.bytes?.equals(OBJECT.subarray(offset + 1, offset + 1 + length)), 'not the bytes one later')
    assertGets(t, outcome, 2, offset, length)
    const shifted = `bytes ${offset + 1}-${offset + length}/${SIZE}`
    t.match(await outcome.log(/retry 1\//), `not the requested bytes: Content-Range "${shifted}"`)
  })

  t.test('ranges ignored after open: EIO at once; ranges honoured again: the right bytes', async (t) => {
    const { offset, length } = fresh()
    m.server.setMode({ ignoreRanges: true })
    const refused = await readWith(m, offset, length)
    m.server.setMode({ ignoreRanges: false })
    assertEio(t, refused)
    assertGets(t, refused, 1, offset, length)
    const log = await refused.log(/error: read /)
    t.match(log, /error: read \/disk offset=\d+ length=\d+ failed \(errno 5\): .*the server does not support ranges/)
    t.notMatch(log, /retry/, 'a 200 to a Range request is not retried')
    const again = await readWith(m, offset, length)
    assertBytes(t, again, offset, length)
    assertGets(t, again, 1, offset, length)
  })

  t.test(`a fault outlasting max_attempts (${MAX_ATTEMPTS}): EIO within read_timeout_ms, then reads work`, async (t) => {
    const { offset, length } = fresh()
    const faults: Fault[] = Array.from({ length: MAX_ATTEMPTS + 1 }, () => ({ kind: 'status', status: 503 }))
    const outcome = await readWith(m, offset, length, ...faults)
    assertEio(t, outcome)
    assertGets(t, outcome, MAX_ATTEMPTS, offset, length)
    t.ok(outcome.ms < READ_TIMEOUT_MS + 1000, `failed before read_timeout_ms (${outcome.ms} ms)`)
    const log = await outcome.log(/error: read /)
    t.match(log, new RegExp(`error: read /disk .*failed after ${MAX_ATTEMPTS} attempt\\(s\\) in \\d+ ms: .*answered 503`), 'the backend gave up, not the read timeout')
    t.equal(log.match(/ retry \d+\/4 /g)?.length, MAX_ATTEMPTS - 1, 'retried max_attempts - 1 times')

    // Clear the one 503 still queued by taking it ourselves.
    const leftover = await fetch(m.server.url(), { headers: { range: 'bytes=0-0' } })
    await leftover.arrayBuffer()
    t.equal(leftover.status, 503, 'one planned 503 was left and is now taken')
    const again = await readWith(m, offset, length)
    assertBytes(t, again, offset, length)
    assertGets(t, again, 1, offset, length)
  })

  t.test('404 at read time: EIO at once, no retry; then reads work', async (t) => {
    const { offset, length } = fresh()
    const outcome = await readWith(m, offset, length, { kind: 'status', status: 404 })
    assertEio(t, outcome)
    assertGets(t, outcome, 1, offset, length)
    const log = await outcome.log(/error: read /)
    t.match(log, /error: read \/disk .*answered 404/)
    t.notMatch(log, /retry/)
    const again = await readWith(m, offset, length)
    assertBytes(t, again, offset, length)
  })

  t.test('a redirect to another path on the same origin: the right bytes, credentials on both requests', async (t) => {
    const { offset, length } = fresh()
    const outcome = await readWith(m, offset, length, { kind: 'redirect', location: '/elsewhere/disk.img' })
    assertBytes(t, outcome, offset, length)
    assertGets(t, outcome, 2, offset, length)
    t.same(
      gets(outcome.requests).map(({ path, headers }) => ({ path, key: headers['x-api-key'], auth: headers.authorization })),
      [
        { path: '/disk.img', key: API_KEY, auth: TOKEN },
        { path: '/elsewhere/disk.img', key: API_KEY, auth: TOKEN },
      ],
    )
  })

  t.test('a redirect to another origin: the right bytes, and no credentials sent there', async (t) => {
    const { offset, length } = fresh()
    const otherMark = other.requests.length
    const outcome = await readWith(m, offset, length, { kind: 'redirect', location: other.url('/mirror/disk.img') })
    assertBytes(t, outcome, offset, length)
    const [home, ...more] = gets(outcome.requests)
    t.same(more, [], 'one GET at home: the redirect')
    t.equal(home?.headers['x-api-key'], API_KEY, 'home got X-Api-Key')
    t.equal(home?.headers.authorization, TOKEN, 'home got Authorization')
    const away = other.requests.slice(otherMark)
    t.same(
      away.map(({ method, path, headers }) => ({ method, path, range: headers.range })),
      [{ method: 'GET', path: '/mirror/disk.img', range: `bytes=${offset}-${offset + length - 1}` }],
      'the other origin got the ranged GET',
    )
    t.notOk(
      away.some(({ headers }) => 'x-api-key' in headers || 'authorization' in headers),
      'and neither X-Api-Key nor Authorization',
    )
  })

  t.test('after all that: the tail reads right, and the daemon stops cleanly', async (t) => {
    const outcome = await readWith(m, TAIL.offset, TAIL.length)
    assertBytes(t, outcome, TAIL.offset, TAIL.length)
    assertGets(t, outcome, 1, TAIL.offset, TAIL.length)
    t.equal(await m.daemon.stop(), 0, 'exit 0')
  })
})

t.test('a server that ignores ranges from the start: mount refuses with exit 2 and says why', async (t) => {
  const dir = await tempDir(t)
  const server = await startFaultServer(t, OBJECT)
  server.setMode({ ignoreRanges: true })
  const { file, mountpoint } = await writeConfig(dir, 'mnt', server.url())
  const result = await runCli(['mount', '--config', file])
  t.equal(result.code, 2, 'exit 2: bad input')
  t.match(result.stderr, /answered a Range request with the whole object \(200\): the server does not support ranges/)
  t.notOk(await isMounted(mountpoint), 'nothing mounted')
  t.same(
    server.requests.map(({ method, headers }) => `${method} ${headers.range ?? ''}`.trim()),
    ['HEAD', 'GET bytes=0-0'],
    'one HEAD, one probe, no retries',
  )
})

t.test('the object replaced while mounted: EIO and a log line, never the new bytes', async (t) => {
  const m = await mount(t)
  const before = await readWith(m, 0, BLOCK)
  assertBytes(t, before, 0, BLOCK)
  const pinned = gets(before.requests)[0]?.headers['if-match']
  t.match(pinned, /^"[0-9a-f]+"$/, 'reads are pinned with If-Match')

  const replacement = seededBytes(99, SIZE)
  m.server.setObject(replacement)
  for (const offset of [3 * MiB, 9 * MiB]) {
    const outcome = await readWith(m, offset, BLOCK)
    assertEio(t, outcome)
    t.notOk(outcome.bytes?.equals(replacement.subarray(offset, offset + BLOCK)), 'not the new bytes')
    assertGets(t, outcome, 1, offset, BLOCK)
    t.equal(gets(outcome.requests)[0]?.headers['if-match'], pinned, 'still pinned to the version mounted')
    t.match(await outcome.log(/error: read /), /error: read \/disk .*the object at \S+ changed on the server since it was mounted/)
  }
  await t.rejects(readRange(m.disk, 5 * MiB + 100, 10_000), { code: 'EIO' }, 'a buffered read fails too')
  const cached = await readWith(m, 0, BLOCK)
  assertBytes(t, cached, 0, BLOCK)
  assertGets(t, cached, 0, 0, BLOCK)
  t.pass('a block cached before the change still gives the mounted version, without a request')

  m.server.setObject(OBJECT) // same bytes, same ETag: the mounted version is back
  const after = await readWith(m, 6 * MiB, BLOCK)
  assertBytes(t, after, 6 * MiB, BLOCK)
  t.equal(await m.daemon.stop(), 0)
})

t.test('a weak ETag and Last-Modified: reads pinned with If-Unmodified-Since', async (t) => {
  const m = await mount(t, { setUp: (server) => server.setMode({ etag: 'weak' }) })
  const head = await fetch(m.server.url(), { method: 'HEAD' })
  const lastModified = head.headers.get('last-modified')
  t.match(head.headers.get('etag'), /^W\//, 'the server sends a weak ETag')
  for (const { offset, length } of [{ offset: 2 * BLOCK, length: BLOCK }, TAIL]) {
    const outcome = await readWith(m, offset, length)
    assertBytes(t, outcome, offset, length)
    assertGets(t, outcome, 1, offset, length)
    const [request] = gets(outcome.requests)
    t.equal(request?.headers['if-unmodified-since'], lastModified, 'If-Unmodified-Since: the Last-Modified seen at open')
    t.notOk(request && 'if-match' in request.headers, 'no If-Match: a weak ETag never matches one')
  }
  t.notMatch(m.daemon.stderr(), /cannot be detected/, 'no warning that changes go unseen')

  m.server.setObject(seededBytes(98, SIZE))
  const changed = await readWith(m, 4 * BLOCK, BLOCK)
  assertEio(t, changed)
  t.match(await changed.log(/error: read /), /changed on the server since it was mounted/, 'a change is still caught')
  t.equal(await m.daemon.stop(), 0)
})

t.test('HEAD refused: mounts from the ranged GET probe alone and reads right', async (t) => {
  const m = await mount(t, { setUp: (server) => server.setMode({ refuseHead: true }) })
  t.same(
    m.server.requests.map(({ method, headers }) => `${method} ${headers.range ?? ''}`.trim()),
    ['HEAD', 'GET bytes=0-0'],
    'the HEAD (refused with 405), then the probe',
  )
  t.equal((await stat(m.disk)).size, SIZE, 'the size comes from the probe')
  for (const { offset, length } of [{ offset: 7 * BLOCK, length: BLOCK }, TAIL]) {
    const outcome = await readWith(m, offset, length)
    assertBytes(t, outcome, offset, length)
    assertGets(t, outcome, 1, offset, length)
  }
  t.equal(await m.daemon.stop(), 0)
})

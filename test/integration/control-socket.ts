import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { chmod, chown, mkdir, rm, symlink } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { runCli, SNAPMOUNT, type CliResult } from '../fixtures/daemon.js'
import { tempDir } from '../fixtures/temp-dir.js'

// Issue 14, item 10: the control socket of a user without XDG_RUNTIME_DIR lives in
// /tmp/snapmount-UID, a name anyone can take first. A folder there that is not the user's own
// (another's, a symlink, open to others) is refused, never used; and the client reports a reply
// that is not the protocol in one line, never with a stack trace.

/** A uid no one else on the test machine uses, for the user whose /tmp folder is taken. */
const VICTIM = 4243
const root = process.getuid?.() === 0

/** A fake daemon on `path` that answers every connection with `reply` and closes. */
async function fakeDaemon(t: Test, path: string, reply: (socket: Socket) => void): Promise<void> {
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => reply(socket))
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
}

/** Exit `code`, nothing on stdout, one error line matching `message`, no stack trace. */
function oneLine(t: Test, result: CliResult, code: number, message: RegExp): void {
  t.equal(result.code, code, `exit ${code}`)
  t.equal(result.stdout, '', 'nothing on stdout: nothing the other side said is shown as status')
  t.match(result.stderr, /^snapmount error: [^\n]+\n$/, `one error line: ${JSON.stringify(result.stderr.slice(0, 400))}`)
  t.match(result.stderr, message)
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
}

t.test('a reply that is not the protocol: one clear line and exit 1, not a crash', async (t) => {
  const dir = await tempDir(t)
  const replies: Array<[string, (socket: Socket) => void, RegExp]> = [
    ['not JSON', (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'), /the daemon on .* sent a line that is not JSON, not a snapmount reply \("HTTP\/1\.1 400 Bad Request\?"\); is it snapmount/],
    ['JSON, not a response', (s) => s.end('42\n'), /sent JSON that is not a response, not a snapmount reply \("42"\)/],
    ['an error without a message', (s) => s.end('{"type":"error"}\n'), /sent JSON that is not a response/],
    ['null', (s) => s.end('null\n'), /sent JSON that is not a response, not a snapmount reply \("null"\)/],
    ['truncated', (s) => s.end('{"type":"result","result":{"pid":'), /the daemon on .* closed the connection without an answer/],
    ['huge', (s) => s.end(Buffer.alloc(17 * 1024 * 1024, 'x')), /sent a line longer than 16777216 bytes; is it snapmount\?/],
  ]
  for (const [label, reply, message] of replies) {
    const path = join(dir, `${label.replaceAll(' ', '-')}.sock`)
    await fakeDaemon(t, path, reply)
    oneLine(t, await runCli(['status', '--socket', path]), 1, message)
  }
})

/** `snapmount ARGS` as `uid` with no XDG_RUNTIME_DIR, so its control folder is /tmp/snapmount-UID. */
function runAs(uid: number, args: string[]): Promise<CliResult> {
  const command = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'env', '-u', 'NODE_OPTIONS', '-u', 'XDG_RUNTIME_DIR', SNAPMOUNT, ...args]
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { timeout: 20_000, env: { ...process.env, SNAPMOUNT_LOG_FORMAT: 'text' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr })
    })
  })
}

t.test('a /tmp control folder another user made first: refused, the impostor never asked', { skip: !root && 'needs root (to be the other user)' }, async (t) => {
  const folder = `/tmp/snapmount-${VICTIM}`
  await rm(folder, { recursive: true, force: true })
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  let asked = 0
  const impostor = (socket: Socket) => {
    asked++
    socket.end(`${JSON.stringify({ type: 'result', result: { pid: 1, mountpoint: '/fake', startedAt: '', uptimeSeconds: 0, metricsUrl: null, cache: null, snapshots: [] } })}\n`)
  }

  // Made by root (the other user here), open to all, with a socket the victim may connect to.
  await mkdir(folder)
  await chmod(folder, 0o777)
  await fakeDaemon(t, join(folder, 'srv-disks.sock'), impostor)
  await chmod(join(folder, 'srv-disks.sock'), 0o666)
  oneLine(t, await runAs(VICTIM, ['status']), 2, new RegExp(`control folder ${folder} belongs to uid 0, not to uid ${VICTIM}; remove it \\(rm -r ${folder}\\) if it is not yours`))
  oneLine(t, await runAs(VICTIM, ['status', '/srv/disks']), 2, /belongs to uid 0/)

  // The victim's own, but open to others (who could swap the socket in it).
  await chown(folder, VICTIM, VICTIM)
  oneLine(t, await runAs(VICTIM, ['status']), 2, new RegExp(`control folder ${folder} has mode 0777: other users may enter it; chmod 700 ${folder}`))

  // A symlink to a folder of the victim's, 0700: still not followed.
  await rm(folder, { recursive: true })
  const elsewhere = await tempDir(t)
  await chown(elsewhere, VICTIM, VICTIM)
  await symlink(elsewhere, folder)
  oneLine(t, await runAs(VICTIM, ['status']), 2, new RegExp(`control folder ${folder} is a symlink, which snapmount does not follow`))
  t.equal(asked, 0, 'the impostor was never asked')

  // Its own folder, 0700: used as before (no daemon there: exit 1, "not running").
  await rm(folder)
  await mkdir(folder, { mode: 0o700 })
  await chown(folder, VICTIM, VICTIM)
  oneLine(t, await runAs(VICTIM, ['status']), 1, new RegExp(`no snapmount daemon is running \\(no control socket in ${folder}\\)`))
})

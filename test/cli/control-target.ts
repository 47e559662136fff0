import t from 'tap'
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { controlSocketFor, reportControlFailure, type ControlCommandContext } from '../../src/cli/control-target.js'
import { ControlUnavailableError, DaemonError } from '../../src/control/errors.js'
import { socketPathFor } from '../../src/control/socket-path.js'
import { mountOptions } from '../fixtures/mount-options.js'
import { tempDir } from '../fixtures/temp-dir.js'

/** A non-root caller: this process's user, or uid 1000 when that is root (it owns the runtime folders made here). */
const CALLER = process.getuid!() === 0 ? 1000 : process.getuid!()

/** A non-root caller whose runtime folder is `xdg`/snapmount, so no daemon of the host is seen. */
function context(xdg: string) {
  const errors: Array<[string, unknown]> = []
  const logger = { info: () => {}, warn: () => {}, error: (msg: string, fields?: unknown) => errors.push([msg, fields]) }
  const ctx: ControlCommandContext = {
    run: (work) => async () => void (await work()),
    logger,
    defaults: () => mountOptions(),
    uid: CALLER,
    env: { XDG_RUNTIME_DIR: xdg },
    stdout: { write: () => true },
    stderr: { write: () => true },
  }
  return { ctx, errors }
}

t.test('--socket, --config and --mountpoint name the socket, in that order', async (t) => {
  const dir = await tempDir(t)
  const { ctx } = context(dir)
  const runtime = join(dir, 'snapmount')
  t.equal(await controlSocketFor({ socket: 'rel/ctl.sock', config: 'ignored.yaml', mountpoint: '/ignored' }, ctx), resolve('rel/ctl.sock'), '--socket wins, made absolute')

  const withSocket = join(dir, 'with-socket.yaml')
  await writeFile(withSocket, 'mountpoint: /srv/snap\noptions:\n  control_socket: /var/run/own.sock\nsnapshots:\n  - { type: file, path: /x.img }\n')
  t.equal(await controlSocketFor({ config: withSocket, mountpoint: '/ignored' }, ctx), '/var/run/own.sock', "--config: the config's control_socket")
  const withoutSocket = join(dir, 'without-socket.yaml')
  await writeFile(withoutSocket, 'mountpoint: /srv/snap\nsnapshots:\n  - { type: file, path: /x.img }\n')
  t.equal(await controlSocketFor({ config: withoutSocket }, ctx), join(runtime, 'srv-snap.sock'), "--config without one: its mountpoint's socket in the runtime folder")
  await t.rejects(controlSocketFor({ config: join(dir, 'missing.yaml') }, ctx), { code: 'E_CONFIG' }, 'a config that does not load is bad input')

  t.equal(await controlSocketFor({ mountpoint: '/mnt/a b' }, ctx), join(runtime, 'mnt-a\\x20b.sock'), '--mountpoint: its socket in the runtime folder')
  t.equal(await controlSocketFor({ mountpoint: 'mnt' }, ctx), socketPathFor(resolve('mnt'), runtime), 'a relative mountpoint is made absolute first')
})

t.test('with no target: the only socket in the runtime folder, or why there is none', async (t) => {
  const dir = await tempDir(t)
  const { ctx } = context(dir)
  const runtime = join(dir, 'snapmount')
  await t.rejects(controlSocketFor({}, ctx), { code: 'E_CONTROL_UNAVAILABLE', message: `no snapmount daemon is running (no control socket in ${runtime})` }, 'no runtime folder at all')
  await mkdir(runtime, { mode: 0o700 })
  await chown(runtime, CALLER, CALLER)
  await writeFile(join(runtime, 'notes.txt'), '')
  await t.rejects(controlSocketFor({}, ctx), { code: 'E_CONTROL_UNAVAILABLE' }, 'only files that are not sockets')
  await writeFile(join(runtime, 'srv-b.sock'), '')
  t.equal(await controlSocketFor({}, ctx), join(runtime, 'srv-b.sock'), 'the one daemon on the host')
  await writeFile(join(runtime, 'srv-a.sock'), '')
  await t.rejects(
    controlSocketFor({}, ctx),
    { code: 'E_WHICH_DAEMON', message: `several daemons are running (srv-a.sock, srv-b.sock in ${runtime})`, fix: 'name one with --mountpoint, --config or --socket' },
    'several: the user has to choose',
  )
  await chmod(runtime, 0o755)
  await t.rejects(controlSocketFor({}, ctx), { code: 'E_CONTROL_DIR', message: `control folder ${runtime} has mode 0755: other users may enter it` }, 'a folder others may enter is not trusted')
})

t.test('a control failure becomes one log line and an exit code', async (t) => {
  const { ctx, errors } = context('/nonexistent')
  t.equal(reportControlFailure(new ControlUnavailableError('nobody home'), ctx.logger), 1, 'no daemon: 1')
  t.equal(reportControlFailure(new DaemonError('E_UNKNOWN_SNAPSHOT', 'no snapshot named "x"', 'use one of: a'), ctx.logger), 2, 'a refusal with a fix: 2')
  t.equal(reportControlFailure(new DaemonError('E_FAILED', 'disk on fire', undefined), ctx.logger), 1, 'a failure without one: 1')
  t.same(errors, [
    ['nobody home', { code: 'E_CONTROL_UNAVAILABLE' }],
    ['no snapshot named "x"; use one of: a', { code: 'E_UNKNOWN_SNAPSHOT' }],
    ['disk on fire', { code: 'E_FAILED' }],
  ])
  const other = new Error('not a control failure')
  t.throws(() => reportControlFailure(other, ctx.logger), other, 'anything else goes on to main, which reports it')
  t.equal(errors.length, 3, 'and is not logged here')
})

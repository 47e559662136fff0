import { readdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { Logger } from '../log.js'
import { InputError } from '../errors.js'
import type { MountOptions } from '../config/config.js'
import { loadConfig } from '../config/load-config.js'
import { checkControlDir, runtimeDir, socketPathFor } from '../control/socket-path.js'
import { resolveMountpoint } from '../fuse/mountpoint.js'
import { BadReplyError, ControlUnavailableError, DaemonError } from '../control/errors.js'
import { controlRequest } from '../control/client.js'
import type { ControlRequest } from '../control/protocol.js'
import { progress } from './progress.js'

/** How main() runs a command: `work` resolves to an exit code, or to nothing for 0. */
export type Runner = (work: () => Promise<void | number>) => () => Promise<void>

/** What the control commands need from main(): its runner, its log, the option defaults. */
export interface ControlCommandContext {
  run: Runner
  logger: Logger
  defaults: () => MountOptions
  /** The caller's uid and environment: they decide the runtime folder sockets are looked for in. */
  uid: number
  env: Record<string, string | undefined>
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown; readonly isTTY?: boolean | undefined; readonly columns?: number | undefined }
}

/** How a control command finds its daemon. */
export interface TargetArgs {
  socket?: string | undefined
  config?: string | undefined
  mountpoint?: string | undefined
}

class NoDaemonChosenError extends InputError {
  readonly code = 'E_WHICH_DAEMON'
}

/** The options every control command takes to name its daemon. */
export function withTargetOptions<T>(y: Argv<T>) {
  return y
    .option('mountpoint', { alias: 'm', type: 'string', describe: 'the mountpoint of the daemon to ask' })
    .option('config', { alias: 'c', type: 'string', describe: 'the config the daemon was started with (its mountpoint and control_socket)' })
    .option('socket', { type: 'string', describe: 'the control socket itself (default: derived from the mountpoint)' })
}

/** withTargetOptions and the snapshot a command is about, as the mount names it. */
export function withSnapshotName<T>(y: Argv<T>) {
  return withTargetOptions(y).positional('name', { type: 'string', describe: 'the snapshot, as named in the mount' })
}

/**
 * The control socket to talk to: --socket; else the one --config's daemon uses; else the one for
 * --mountpoint; else the only socket in the runtime folder (one daemon on the host, the usual case).
 */
export async function controlSocketFor(args: TargetArgs, context: ControlCommandContext): Promise<string> {
  const dir = runtimeDir(context.uid, context.env)
  if (args.socket !== undefined) return resolve(args.socket)
  const config = args.config === undefined ? undefined : await loadConfig(args.config, context.defaults())
  if (config?.options.controlSocket !== undefined) return config.options.controlSocket
  // A socket in the runtime folder is trusted only if the folder is the caller's own (not another
  // user's /tmp/snapmount-UID, made first to answer in the daemon's place).
  await checkControlDir(dir, context.uid)
  if (config !== undefined) return socketPathFor(await resolveMountpoint(config.mountpoint), dir)
  // Resolved as the daemon resolved its own: /var/run/disks finds the daemon of /run/disks.
  if (args.mountpoint !== undefined) return socketPathFor(await resolveMountpoint(resolve(args.mountpoint)), dir)
  const sockets = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.sock')).sort()
  if (sockets.length === 1) return join(dir, sockets[0]!)
  if (sockets.length === 0) throw new ControlUnavailableError(`no snapmount daemon is running (no control socket in ${dir})`)
  throw new NoDaemonChosenError(`several daemons are running (${sockets.join(', ')} in ${dir})`, 'name one with --mountpoint, --config or --socket')
}

/** A control failure as one log line and its exit code: 2 for a request the user can fix, else 1. */
export function reportControlFailure(err: unknown, logger: Logger): number {
  if (err instanceof ControlUnavailableError || err instanceof BadReplyError) {
    logger.error(err.message, { code: err.code })
    return 1
  }
  if (err instanceof DaemonError) {
    logger.error(err.fix ? `${err.message}; ${err.fix}` : err.message, { code: err.code })
    return err.fix ? 2 : 1
  }
  throw err
}

/** Sends a short request (status, profile) to the daemon; `show` gives what to print of its answer. */
export async function requestAndShow<T>(args: TargetArgs, context: ControlCommandContext, request: ControlRequest, show: (result: T) => string): Promise<number> {
  try {
    const result = (await controlRequest(await controlSocketFor(args, context), request)) as T
    context.stdout.write(show(result))
    return 0
  } catch (err) {
    return reportControlFailure(err, context.logger)
  }
}

/**
 * Sends a long request (warm, verify) to the daemon with a progress bar on stderr, finished before
 * anything else is written; `show` prints the result and gives the exit code.
 */
export async function requestWithProgress<T>(args: TargetArgs, context: ControlCommandContext, label: string, request: ControlRequest, show: (result: T) => number): Promise<number> {
  const bar = progress(context.stderr, label)
  try {
    const result = (await controlRequest(await controlSocketFor(args, context), request, bar.update)) as T
    bar.finish()
    return show(result)
  } catch (err) {
    bar.finish()
    return reportControlFailure(err, context.logger)
  }
}

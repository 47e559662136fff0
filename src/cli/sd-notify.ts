import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Logger } from '../log.js'

const run = promisify(execFile)

/**
 * Tells systemd that the service is ready (`Type=notify`): called once the mount is up, so units
 * ordered after snapmount (a hypervisor) start only when the snapshots can be opened.
 *
 * The protocol is one datagram on the unix socket named by NOTIFY_SOCKET, and Node has no unix
 * datagram sockets; the `sd-notify` package is a native addon. systemd's own `systemd-notify`
 * sends it for us: the unit says `NotifyAccess=all`, as the message comes from that child, and
 * systemd-notify (since systemd 246) waits until systemd has taken the message, so the child
 * cannot exit before systemd has tied it to the service's cgroup. Outside systemd (no
 * NOTIFY_SOCKET) nothing is sent.
 */
export async function notifyReady(env: Record<string, string | undefined>, status: string, logger: Logger): Promise<void> {
  await notify(env, ['--ready', `--status=${status}`], logger)
}

/** Updates the one-line status `systemctl status` shows (after a reload). */
export async function notifyStatus(env: Record<string, string | undefined>, status: string, logger: Logger): Promise<void> {
  await notify(env, [`--status=${status}`], logger)
}

async function notify(env: Record<string, string | undefined>, args: string[], logger: Logger): Promise<void> {
  if (!env.NOTIFY_SOCKET) return
  try {
    await run('systemd-notify', args, { env })
  } catch (err) {
    // systemd-notify says why on stderr ("Failed to notify init system: No such file or directory").
    // Only a missing systemd-notify has no stderr, and systemd, which sets NOTIFY_SOCKET, ships it.
    /* c8 ignore next */
    const why = (err as { stderr?: string }).stderr?.trim().replaceAll('\n', ' ') || (err as Error).message
    logger.warn(`could not tell systemd ${args.join(' ')} (systemd-notify: ${why}); under Type=notify a start then times out`)
  }
}

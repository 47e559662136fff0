import type { Argv } from 'yargs'
import type { Config } from '../config/config.js'
import type { OpenContext } from '../backend/open-context.js'
import type { SnapshotContext } from '../snapshots/open-snapshot.js'
import type { CacheStats } from '../cache/cache-stats.js'
import type { DiskCacheStats } from '../disk-cache/disk-cache.js'
import type { ObservabilityOptions } from '../config/config.js'
import { LOG_LEVELS } from '../log.js'
import { describe } from '../backend/errors.js'
import type { SnapmountMetrics } from '../metrics/metrics.js'
import type { MetricsServer } from '../metrics/server.js'
import { serveControl, type ControlServer } from '../control/server.js'
import { controlHandler, type ServedSnapshot } from '../control/handlers.js'
import { ownControlDir, runtimeDir, socketPathFor } from '../control/socket-path.js'

/** The defaults of the observability options: info logs, no metrics endpoint, the derived socket. */
export const OBSERVABILITY_DEFAULTS: ObservabilityOptions = { logLevel: 'info', metrics: undefined, controlSocket: undefined }

export interface ObservabilityArgs {
  'log-level'?: string | undefined
  'metrics-listen'?: string | undefined
  'metrics-allow-remote'?: boolean | undefined
  'control-socket'?: string | undefined
}

/** The command-line flags of the observability options (they override the config file's). */
export function withObservabilityOptions<T>(y: Argv<T>) {
  return y
    .option('log-level', { type: 'string', choices: LOG_LEVELS, describe: 'lowest level logged (default info)' })
    .option('metrics-listen', { type: 'string', describe: 'serve Prometheus metrics on HOST:PORT (default: off)' })
    .option('metrics-allow-remote', { type: 'boolean', describe: 'allow a --metrics-listen address that is not loopback' })
    .option('control-socket', { type: 'string', describe: 'control socket path (default: /run/snapmount/MOUNTPOINT.sock)' })
}

/** The flags given, as raw `options:` fields for the config's validation. */
export function observabilityFlags(args: ObservabilityArgs): Record<string, unknown> {
  const metrics = {
    ...(args['metrics-listen'] !== undefined && { listen: args['metrics-listen'] }),
    ...(args['metrics-allow-remote'] !== undefined && { allow_remote: args['metrics-allow-remote'] }),
  }
  return {
    ...(args['log-level'] !== undefined && { log_level: args['log-level'] }),
    ...(Object.keys(metrics).length > 0 && { metrics }),
    ...(args['control-socket'] !== undefined && { control_socket: args['control-socket'] }),
  }
}

/** The live file system, as far as observing it goes. */
export interface ServedFs {
  snapshots(): readonly ServedSnapshot[]
  /** Lazy snapshots listed but not open yet. */
  waiting(): readonly string[]
}

/** The daemon's metrics and control socket, set up around one mount. */
export interface Observability {
  /** Spread into the context every snapshot is opened with, at start and on reload. */
  readonly hooks: Pick<SnapshotContext, 'observe' | 'metering'>
  /**
   * Starts the metrics endpoint (when configured) and the control socket for the mounted `fs`.
   * A failure is logged and the daemon goes on serving: observability never takes disks away.
   */
  serve(fs: ServedFs, cache?: { stats(): CacheStats } | undefined, diskCache?: { stats(): DiskCacheStats } | undefined): Promise<void>
  close(): Promise<void>
}

/**
 * Every snapshot is metered (the metering layer, put on in src/snapshots/open-snapshot.ts: what
 * `status` shows); with `metrics` configured its reads and its remote requests also feed the
 * Prometheus series.
 */
export async function observability(config: Config, { env, logger }: Pick<OpenContext, 'env' | 'logger'>): Promise<Observability> {
  const { metrics: listen, controlSocket } = config.options
  // prom-client is loaded only when metrics are on: 12 MiB of the daemon's memory otherwise.
  const metrics: SnapmountMetrics | undefined = listen ? new (await import('../metrics/metrics.js')).SnapmountMetrics() : undefined
  const startedAt = new Date()
  let server: MetricsServer | undefined
  let control: ControlServer | undefined
  return {
    hooks: {
      observe: metrics && ((name: string) => metrics.remoteObserver(name)),
      metering: { observer: (name: string) => metrics?.readObserver(name) },
    },
    async serve(fs, cache, diskCache) {
      if (metrics && listen) {
        metrics.attach({ snapshots: () => fs.snapshots(), cache, diskCache })
        // With the metrics, not at start: node:http is a dozen of Node's own modules to compile.
        const { serveMetrics } = await import('../metrics/server.js')
        server = await serveMetrics(metrics, listen, logger).catch((err) => {
          logger.error(`metrics endpoint ${listen.host}:${listen.port} not started: ${describe(err)}; serving without it`, { code: 'E_METRICS_LISTEN' })
          return undefined
        })
      }
      const uid = process.getuid!()
      const dir = runtimeDir(uid, env)
      const path = controlSocket ?? socketPathFor(config.mountpoint, dir)
      const state = { snapshots: () => fs.snapshots(), waiting: () => fs.waiting(), cache, diskCache, mountpoint: config.mountpoint, startedAt, metricsUrl: server?.url ?? null }
      // The default folder may be /tmp/snapmount-UID, in a folder everyone may write: made here, or refused.
      const ready = controlSocket === undefined ? ownControlDir(dir, uid) : Promise.resolve()
      control = await ready.then(() => serveControl(path, controlHandler(state), logger)).catch((err) => {
        logger.error(`control socket ${path} not started: ${describe(err)}; snapmount status cannot reach this daemon`, { code: 'E_CONTROL_SOCKET' })
        return undefined
      })
    },
    async close() {
      await Promise.all([control?.close(), server?.close()])
    },
  }
}

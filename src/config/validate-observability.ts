import { isAbsolute } from 'node:path'
import { isIP } from 'node:net'
import { LOG_LEVELS, type LogLevel } from '../log.js'
import { asRecord, booleanField, type Fail } from './fields.js'
import type { MetricsOptions, ObservabilityOptions } from './config.js'

/** The options this module checks, beside the others in `options:`. */
export const OBSERVABILITY_FIELDS = ['log_level', 'metrics', 'control_socket'] as const
const METRICS_FIELDS = ['listen', 'allow_remote']

/** Checks `log_level`, `metrics` and `control_socket` of an `options` mapping; absent ones keep `defaults`. */
export function checkObservability(options: Record<string, unknown>, defaults: ObservabilityOptions, fail: Fail): ObservabilityOptions {
  const logLevel = options.log_level === undefined ? defaults.logLevel : options.log_level
  if (!(LOG_LEVELS as readonly unknown[]).includes(logLevel)) {
    throw fail('options.log_level', `must be one of ${LOG_LEVELS.join(', ')}`, 'write e.g. log_level: info')
  }
  const controlSocket = options.control_socket === undefined ? defaults.controlSocket : options.control_socket
  if (controlSocket !== undefined && (typeof controlSocket !== 'string' || !isAbsolute(controlSocket))) {
    throw fail('options.control_socket', 'must be an absolute path', 'write e.g. control_socket: /run/snapmount/disks.sock, or leave it out')
  }
  return { logLevel: logLevel as LogLevel, metrics: checkMetrics(options.metrics, defaults.metrics, fail), controlSocket }
}

/**
 * `metrics: { listen: HOST:PORT, allow_remote: false }`, or nothing (`false`, null) for off. The
 * endpoint has no authentication, so an address that is not loopback is refused unless
 * `allow_remote: true` says the operator means it (and has a firewall in front of it).
 */
function checkMetrics(raw: unknown, fallback: MetricsOptions | undefined, fail: Fail): MetricsOptions | undefined {
  if (raw === undefined) return fallback
  if (raw === null || raw === false) return undefined
  const metrics = asRecord(raw, 'options.metrics', fail)
  for (const key of Object.keys(metrics)) {
    if (!METRICS_FIELDS.includes(key)) throw fail(`options.metrics.${key}`, 'unknown field', `remove it (known fields: ${METRICS_FIELDS.join(', ')})`)
  }
  const allowRemote = booleanField(metrics.allow_remote, fallback?.allowRemote ?? false, 'options.metrics.allow_remote', fail)
  if (metrics.listen === undefined) throw fail('options.metrics.listen', 'missing', 'give the address to serve /metrics on, e.g. listen: 127.0.0.1:9464')
  const { host, port } = parseListen(metrics.listen, fail)
  if (!allowRemote && !isLoopback(host)) {
    throw fail(
      'options.metrics.listen',
      `${host} is not a loopback address, and the metrics endpoint has no authentication`,
      'listen on 127.0.0.1 or [::1] and scrape through a proxy, or set allow_remote: true (--metrics-allow-remote) behind a firewall',
    )
  }
  return { host, port, allowRemote }
}

/** HOST:PORT with an IP address (IPv6 in brackets) or `localhost` (taken as 127.0.0.1). */
function parseListen(raw: unknown, fail: Fail): { host: string; port: number } {
  const fix = 'write HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464'
  const match = typeof raw === 'string' ? /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw) : null
  if (!match) throw fail('options.metrics.listen', `${JSON.stringify(raw)} is not HOST:PORT`, fix)
  const host = match[1] ?? (match[2] === 'localhost' ? '127.0.0.1' : match[2]!)
  const port = Number(match[3])
  if (isIP(host) === 0 || (match[1] !== undefined && isIP(host) !== 6)) throw fail('options.metrics.listen', `${host} is not an IP address`, fix)
  if (port > 65535) throw fail('options.metrics.listen', `port ${port} is over 65535`, fix)
  return { host, port }
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback: reachable from this host only. */
export function isLoopback(host: string): boolean {
  const v4 = host.replace(/^::ffff:/i, '')
  return (isIP(v4) === 4 && v4.startsWith('127.')) || host === '::1'
}

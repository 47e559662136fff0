import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../log.js'
import { describe } from '../backend/errors.js'
import type { SnapmountMetrics } from './metrics.js'

/** Where the endpoint listens: validated by the config (loopback unless allowed otherwise). */
export interface MetricsListen {
  host: string
  /** 0 picks a free port, logged once listening. */
  port: number
}

/** A listening endpoint; `close()` stops it and drops open scrape connections. */
export interface MetricsServer {
  /** http://HOST:PORT/metrics, with the port actually bound. */
  readonly url: string
  close(): Promise<void>
}

export const METRICS_PATH = '/metrics'

/**
 * Serves `GET /metrics` in Prometheus' text format; anything else is 404. Rejects when the address
 * cannot be bound (in use, not local), so a daemon asked for metrics does not start without them.
 */
export async function serveMetrics(metrics: SnapmountMetrics, listen: MetricsListen, logger: Logger): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    // A server's requests always have a url (IncomingMessage leaves it undefined only on a client's responses).
    const path = request.url!.split('?')[0]
    if (path !== METRICS_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; scrape ${METRICS_PATH}\n`)
      return
    }
    metrics.scrape().then(
      ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType }).end(request.method === 'HEAD' ? undefined : body),
      /* c8 ignore next 4 -- prom-client's own collectors do not fail, and ours (the live snapshot
         list, the cache's counters) only read memory; this answer is for the day one does */
      (err) => {
        logger.error(`metrics scrape failed: ${describe(err)}`)
        response.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { address, port, family } = server.address() as AddressInfo
  const url = `http://${family === 'IPv6' ? `[${address}]` : address}:${port}${METRICS_PATH}`
  logger.info(`metrics on ${url}`, { metrics_url: url })
  return {
    url,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

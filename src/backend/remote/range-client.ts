import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { BackendClosedError } from '../errors.js'
import { RangeConnection, StaleConnectionError, type ConnectionTarget, type HeadInspector } from './range-connection.js'
import type { ResponseHead } from './response-head.js'
import type { BodyProgress } from './resumed-range.js'

export interface RangeClientOptions {
  /** The origin every request goes to (scheme, host, port). */
  origin: URL
  /** TLS options for an https origin (CAs, client certificate, verification). */
  tls: ConnectionOptions
  /**
   * Header fields sent with every request (credentials for this origin), asked for at each
   * request: a value read from a file changes when the file does. Formatted again only when
   * another object comes back.
   */
  headers: () => Readonly<Record<string, string>>
  /** Connections kept open at most; a request waits for a free one beyond that. */
  connections: number
  connectTimeoutMs: number
  headersTimeoutMs: number
  bodyTimeoutMs: number
  /** The snapshot's redacted URL, for error messages. */
  url: string
  /** Told when a request is sent again because its kept-alive connection had gone stale. */
  onResend?: ((cause: Error) => void) | undefined
}

/** CR, LF or NUL in a field would end it early and let a value forge other fields. */
const UNSAFE_FIELD = /[\r\n\0]/

/**
 * GET requests to one origin over a pool of kept-alive RangeConnections, each answer's body read
 * straight into the caller's buffer (see range-connection.ts for why). A request sent on a
 * connection the server had already closed is sent again on a new one, once per stale
 * connection, as browsers and undici do for idempotent requests.
 */
export class RangeClient {
  private readonly target: ConnectionTarget
  private readonly host: string
  /** `headers()` as last seen, and as request lines. */
  private fixed: { headers: Readonly<Record<string, string>>; lines: string }
  private readonly idle: RangeConnection[] = []
  private readonly open = new Set<RangeConnection>()
  private readonly waiting = new Set<() => void>()
  private closed = false

  constructor(private readonly options: RangeClientOptions) {
    const { origin } = options
    const https = origin.protocol === 'https:'
    const hostname = origin.hostname.replace(/^\[(.*)\]$/, '$1')
    this.host = origin.host
    // Formatted here too, so values that could forge fields are refused when the client is made.
    const headers = options.headers()
    this.fixed = { headers, lines: fields(headers) }
    this.target = {
      host: hostname,
      port: Number(origin.port || (https ? 443 : 80)),
      tls: https ? { ...options.tls, ...(isIP(hostname) === 0 && { servername: hostname }), ALPNProtocols: ['http/1.1'] } : undefined,
      url: options.url,
      connectTimeoutMs: options.connectTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
    }
  }

  /**
   * Sends `method` for `path` (with its query) with `headers` besides the fixed ones; see
   * HeadInspector for `inspect` (not asked for a HEAD, whose answer has no body). A failure after
   * the head was accepted tells `progress` how many body bytes are in `target`.
   */
  async request(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, target: Buffer, inspect: HeadInspector, signal: AbortSignal, progress?: BodyProgress): Promise<ResponseHead> {
    const requestHead = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\n${this.fixedFields()}${fields(headers)}\r\n`
    for (;;) {
      const connection = await this.acquire(signal)
      try {
        return await connection.send(requestHead, target, inspect, signal, method === 'HEAD', progress)
      } catch (err) {
        if (!(err instanceof StaleConnectionError)) throw err
        this.options.onResend?.(err.cause)
        // The server's keep-alive timeout closed the other idle connections too, most likely.
        this.dropIdle()
      } finally {
        this.release(connection)
      }
    }
  }

  close(): void {
    this.closed = true
    for (const connection of this.open) connection.destroy()
    this.open.clear()
    this.idle.length = 0
    for (const wake of this.waiting) wake()
  }

  private fixedFields(): string {
    const headers = this.options.headers()
    if (headers !== this.fixed.headers) this.fixed = { headers, lines: fields(headers) }
    return this.fixed.lines
  }

  private async acquire(signal: AbortSignal): Promise<RangeConnection> {
    for (;;) {
      if (this.closed) throw new BackendClosedError()
      signal.throwIfAborted()
      const idle = this.idle.pop()
      if (idle?.usable) return idle
      if (idle) {
        this.open.delete(idle)
        continue
      }
      if (this.open.size < this.options.connections) {
        const connection = new RangeConnection(this.target)
        this.open.add(connection)
        return connection
      }
      await this.released(signal)
    }
  }

  /** Resolves when a connection is released (or the client closed), rejects if `signal` fires first. */
  private released(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        this.waiting.delete(wake)
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        this.waiting.delete(wake)
        reject(signal.reason)
      }
      this.waiting.add(wake)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  private release(connection: RangeConnection): void {
    if (connection.usable && !this.closed) {
      this.idle.push(connection)
    } else {
      connection.destroy()
      this.open.delete(connection)
    }
    const [next] = this.waiting
    next?.()
  }

  private dropIdle(): void {
    for (const connection of this.idle) {
      connection.destroy()
      this.open.delete(connection)
    }
    this.idle.length = 0
  }
}

/** Whether `value` can be sent as a header field's value: nothing in it could end the field early. */
export function isSafeFieldValue(value: string): boolean {
  return !UNSAFE_FIELD.test(value)
}

/** Header fields as request lines; a name or value that could forge others is refused. */
function fields(headers: Readonly<Record<string, string>>): string {
  let lines = ''
  for (const [name, value] of Object.entries(headers)) {
    if (UNSAFE_FIELD.test(name) || !isSafeFieldValue(value) || name === '') throw new TypeError(`header ${JSON.stringify(name)} has a line break or NUL in it`)
    lines += `${name}: ${value}\r\n`
  }
  return lines
}

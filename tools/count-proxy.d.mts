/** What a CountProxy has seen since it started; take two and subtract for an interval. */
export interface CountProxyCounters {
  /** Connections accepted. */
  connections: number
  /** Bytes the target sent through the proxy (response headers and bodies). */
  bytesFromTarget: number
  /** Bytes the clients sent through the proxy (requests). */
  bytesToTarget: number
  /** Requests seen (header blocks on the clients' side). */
  requests: number
  /** Of which GETs. */
  gets: number
  /** Sum of the sizes of the closed ranges those GETs asked for (`Range: bytes=A-B`). */
  rangeBytesAsked: number
  /**
   * Requests so far on each connection, by connection number (1 for the first accepted): the
   * connections whose count changed between two readings are those the interval used.
   */
  requestsByConnection: Record<string, number>
}

export interface CountProxy {
  /** The proxy listens on 127.0.0.1:port. */
  port: number
  counters(): CountProxyCounters
  /** Stops listening and destroys every proxied connection. Idempotent. */
  close(): Promise<void>
}

/**
 * A transparent TCP proxy on 127.0.0.1 to `target` that counts bytes each way, connections, and
 * the requests of read-only HTTP clients (bodiless GETs and HEADs; a request with a body is
 * miscounted). It adds a hop through this process, no delay. The caller closes it.
 */
export declare function startCountProxy(target: { host: string; port: number }): Promise<CountProxy>

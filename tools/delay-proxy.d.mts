/** What the proxy has seen since it started; take two and subtract for an interval. */
export interface DelayProxyCounters {
  /** Connections accepted. */
  connections: number
  /** Bytes the target sent through the proxy (response headers and bodies). */
  bytesFromTarget: number
  /** Bytes the clients sent through the proxy (requests). */
  bytesToTarget: number
  /**
   * Requests seen, read as header blocks on the clients' side: right for the bodiless GETs and
   * HEADs of a read-only client; a request with a body (a PUT) is miscounted.
   */
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

export interface DelayProxy {
  /** The proxy listens on 127.0.0.1:port. */
  port: number
  /** What passed through since it started (bytes each way, connections, requests). */
  counters(): DelayProxyCounters
  /** Stops listening and destroys every proxied connection. Idempotent. */
  close(): Promise<void>
}

export interface DelayProxyOptions {
  /**
   * How early, in ms (0 to < 1), a chunk may leave. Node's timers tick in whole milliseconds of the
   * event loop's clock, so a timer often fires a fraction of a millisecond before a chunk is due;
   * with no slack that chunk waits one more tick, and each hop takes up to ~1 ms longer than
   * `oneWayDelayMs`. With 0.5, a 5 ms hop measured 5.1-5.5 ms (p10-p90), the bench's choice.
   * Default 0: a chunk never leaves early, so `oneWayDelayMs` is a lower bound tests can assert.
   */
  timerSlackMs?: number
  /**
   * Bytes one connection may have in flight each way, unacknowledged, as a TCP sender's window:
   * one connection then carries at most windowBytes / (2 × oneWayDelayMs). At least 64 KiB.
   * Default: no bound (only latency is added). The bench passes the kernel's largest send buffer
   * (net.ipv4.tcp_wmem's maximum), which is what bounds one of its connections on a real link.
   */
  windowBytes?: number
}

/**
 * A TCP proxy on 127.0.0.1 to `target` that makes loopback behave like a distant link: every
 * chunk, each way, arrives `oneWayDelayMs` after it was sent, so a request and its response cost
 * one round trip of 2 × oneWayDelayMs, and a new connection's first bytes one more (the handshake).
 * Bytes are never reordered; a FIN or a reset arrives after the bytes sent before it. It counts
 * what passes (DelayProxyCounters); with a delay of 0 it only counts.
 * Not a tap fixture (the benchmark uses it too): the caller closes it.
 */
export declare function startDelayProxy(
  target: { host: string; port: number },
  oneWayDelayMs: number,
  options?: DelayProxyOptions,
): Promise<DelayProxy>

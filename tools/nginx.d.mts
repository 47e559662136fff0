import type { NetnsCommands } from './delay-netns.mjs'

/** Debian's nginx (nginx-light). */
export declare const NGINX: string

export interface NginxTls {
  certFile: string
  keyFile: string
  /** When given, clients must present a certificate signed by this CA (ssl_verify_client on). */
  clientCaFile?: string
}

export interface NginxOptions {
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  tls?: NginxTls
  /**
   * Add `Accept-Ranges: bytes` to answers to requests that carry a Range header. nginx sends it
   * on 200s only; httpfs2 refuses a 206 without it (the benchmark needs this). Default false: what
   * nginx sends by itself.
   */
  acceptRangesOnPartial?: boolean
  /**
   * Name prefix of the temp dir under os.tmpdir() that holds the config, pid file, logs and temp
   * dirs. Default `snapmount-nginx-`. A caller that uses `clearStaleNginx` gives a prefix of its
   * own, so it never stops someone else's nginx.
   */
  prefix?: string
  /**
   * A network namespace to run nginx in (tools/delay-netns.mjs). It then listens on 127.0.0.1 in
   * that namespace: `origin` and `url()` are for processes inside it (started with the
   * namespace's spawn/run), and the host reaches it only through the namespace's forward().
   * Default: the caller's own namespace.
   */
  netns?: NetnsCommands
}

/** One request from the access log. */
export interface NginxRequest {
  /** The client's port: the same for every request on one connection, distinct among open ones. */
  clientPort: number
  status: number
  /** Body bytes sent. */
  bytes: number
}

/** A real nginx serving a directory on 127.0.0.1. */
export interface Nginx {
  port: number
  /** `http://127.0.0.1:PORT`, or `https://…` with TLS. */
  origin: string
  /** The URL of `path` (relative to the served root; a leading slash is optional). */
  url(path: string): string
  /**
   * The access log so far, a line per request: client port (one per connection), request line,
   * Range, If-Match, status, body bytes. Empty before the first request.
   */
  accessLog(): Promise<string>
  /** The access log parsed, oldest request first. */
  requests(): Promise<NginxRequest[]>
  /**
   * Freezes nginx (SIGSTOP to the master and its workers): it still accepts connections and
   * requests (the kernel does) and answers none, a hung server. `stop` thaws it first.
   */
  pause(): Promise<void>
  /** Thaws it (SIGCONT): the requests it took meanwhile are answered. */
  resume(): Promise<void>
  /** Stops nginx (SIGTERM, SIGKILL after 5 s), waits for it to exit, removes its temp dir. Idempotent. */
  stop(): Promise<void>
}

/**
 * Starts nginx in the foreground as a child process, serving `root` statically with ranges,
 * strong ETags and keep-alive, on a free 127.0.0.1 port. Resolves once nginx is listening; the
 * caller stops it.
 */
export declare function startNginx(root: string, options?: NginxOptions): Promise<Nginx>

export interface NginxSiteOptions {
  /** The site serves HTTPS: `origin` and `url()` say https. Default false. */
  https?: boolean
  /** As NginxOptions.prefix. */
  prefix?: string
  /** As NginxOptions.netns. */
  netns?: NetnsCommands
}

/**
 * Runs nginx with the `server` blocks (and other `http`-level directives) that `site(port, dir)`
 * returns, where `port` is the free 127.0.0.1 port to listen on and `dir` nginx's temp prefix
 * (for cache directories): for configs of our own such as deploy/nginx's caching tier. The
 * access log, temp paths and pid file are set as for `startNginx`.
 */
export declare function startNginxSite(site: (port: number, dir: string) => string, options?: NginxSiteOptions): Promise<Nginx>

/**
 * Stops any nginx left under a temp dir named `prefix*` by a process that died without stopping
 * it, and removes those dirs. Resolves to the dirs cleared.
 */
export declare function clearStaleNginx(prefix: string): Promise<string[]>

import type { ConnectionOptions } from 'node:tls'
import type { Dispatcher } from 'undici'
import type { HttpSnapshotSpec } from '../../config/config.js'
import type { ReadOptions, SourceIdentity } from '../storage-backend.js'
import { SourceOpenError, describe } from '../errors.js'
import { collectBody, discardBody } from '../remote/body.js'
import type { RemoteRetryOptions } from '../remote/retrying.js'
import { RemoteBackend } from '../remote/remote-backend.js'
import { readResuming, type BodyProgress } from '../remote/resumed-range.js'
import { assertContentRange, parseContentRange, parseUnsatisfiedRange } from '../remote/content-range.js'
import {
  BadResponseError,
  CredentialsRenewedError,
  HttpStatusError,
  ImpossibleSizeError,
  RangeIgnoredError,
  RedirectError,
  RemoteChangedError,
  RetriesExhaustedError,
  setupProblem,
} from '../remote/remote-errors.js'
import { redactUrl } from '../../redact.js'
import { RangeClient } from '../remote/range-client.js'
import { nodeTls } from '../../lazy-builtins.js'
import type { ResponseHead } from '../remote/response-head.js'
import { retryAfterMs } from '../remote/retry-policy.js'
import { usesProxy, type ProxySettings } from './proxy-rules.js'
import type { HeaderValues } from './header-values.js'

/**
 * Where the object is and how to reach it (the connection fields as documented on the config
 * type), with the header values and TLS files read, and the retry setup.
 */
export interface HttpBackendOptions
  extends Pick<HttpSnapshotSpec, 'url' | 'connections' | 'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs'>,
    RemoteRetryOptions {
  /**
   * Sent to the snapshot's own origin only; never across a redirect to another origin. Asked for
   * at each request (a value from a file follows the file); closed with the backend.
   */
  headers: HeaderValues
  tls: {
    /** PEM of the snapshot's own CAs (ca_file), trusted beside Node's bundled roots for its server. */
    ca?: string
    /**
     * PEM of NODE_EXTRA_CA_CERTS's CAs, when Node's default trust lacks them for this snapshot
     * (./extra-ca-certs.ts): trusted for its server and for an https proxy, as Node would.
     */
    extraCa?: string
    /** PEM client certificate and key, for servers that want mutual TLS. */
    cert?: string
    key?: string
    /** Skip certificate checks. Logged loudly at open. */
    insecureSkipVerify: boolean
  }
  /** Proxy settings as the environment gives them; '' for none. */
  proxy: ProxySettings
}

/** Redirects followed per request before giving up; browsers allow 20, a snapshot URL needs few. */
const MAX_REDIRECTS = 5
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/** undici, for what the direct path does not do (proxies, redirects, unframed bodies). */
interface GeneralClient {
  dispatcher: Dispatcher
  request: typeof import('undici').request
}

/** A redirect answer: its status and where it points. */
interface Hop {
  status: number
  location: string | undefined
}

/** How a response is tied to the version seen at open. */
type Validator = { kind: 'etag'; value: string } | { kind: 'last-modified'; value: string } | { kind: 'none' }

type Headers = Record<string, string>

/** What both clients are given for the server's TLS (tlsOptions). */
type ServerTls = Pick<ConnectionOptions, 'secureContext' | 'rejectUnauthorized'>

/**
 * Serves a snapshot over HTTP(S) with one ranged GET per read.
 *
 * At open it learns the size and a validator (a strong ETag, else Last-Modified) and checks the
 * server honours ranges. Every GET then carries `If-Match` (or `If-Unmodified-Since`) with that
 * validator and every answer is checked against it, so a replaced object fails reads instead of
 * mixing versions. Only a 206 whose Content-Range and body length are exactly the request's counts;
 * anything else is an error, never data. Network faults and 408/429/5xx are retried with backoff
 * inside the policy's per-read deadline (see ../remote/retrying.ts).
 */
export class HttpBackend extends RemoteBackend {
  private readonly redactedUrl: string
  private readonly origin: string
  /** The URL's path and query: what the direct path asks for. */
  private readonly path: string
  private validator: Validator = { kind: 'none' }
  private openLatencyMs = 0
  /**
   * The fast path (../remote/range-client.ts), used while `useDirect`: not behind a proxy, and off
   * for good once the URL redirects or sends a 206 not delimited by Content-Length. undici handles
   * those cases; it is loaded only then (`general`), as it alone adds ~20 MiB to the daemon's RSS.
   */
  private direct: RangeClient | undefined
  private useDirect = false
  private general: Promise<GeneralClient> | undefined
  /** tlsOptions, made once for both clients (see there). */
  private serverTls: ServerTls | undefined

  private constructor(private readonly options: HttpBackendOptions) {
    // Without Last-Modified, mtime is the time of open.
    super(options, new Date())
    const url = new URL(options.url)
    this.redactedUrl = redactUrl(url)
    this.origin = url.origin
    this.path = url.pathname + url.search
  }

  static async open(options: HttpBackendOptions): Promise<HttpBackend> {
    const backend = new HttpBackend(options)
    if (options.tls.insecureSkipVerify) {
      options.logger.warn(`TLS certificate checks are OFF for ${backend.redactedUrl} (insecure_skip_verify): anyone on the path can serve other bytes`)
    }
    try {
      backend.direct = buildRangeClient(options, backend.redactedUrl, () => backend.tls())
      backend.useDirect = backend.direct !== undefined
      await backend.learnObject()
    } catch (err) {
      await backend.close()
      throw openFailure(backend.redactedUrl, err)
    }
    return backend
  }

  /** For `snapmount check`: what was learnt at open. */
  describe(): string {
    const validator = this.validator.kind === 'none' ? 'no validator' : `${this.validator.kind} ${this.validator.value}`
    return `${this.redactedUrl}; ${validator}; ranges ok; ${this.openLatencyMs} ms round trip`
  }

  /**
   * The URL without secrets, the size and the strong ETag: undefined with only Last-Modified,
   * whose one-second resolution cannot tell two versions of an object apart.
   */
  identity(): SourceIdentity | undefined {
    if (this.validator.kind !== 'etag') return undefined
    return { source: this.redactedUrl, size: this.size, validator: this.validator.value }
  }

  /** The strong ETag reads are pinned to, if the server gave one: mirrors compare it (../mirrors/). */
  strongEtag(): string | undefined {
    return this.validator.kind === 'etag' ? this.validator.value : undefined
  }

  protected readRange(offset: number, length: number, options: ReadOptions | undefined): Promise<Buffer> {
    const what = `GET ${this.redactedUrl} bytes ${offset}-${offset + length - 1}`
    const target = options?.into ?? Buffer.allocUnsafe(length)
    // Without a validator nothing ties a retry's bytes to the version the cut body came from: such
    // a read asks for its whole range again, so one range is never two versions.
    const pinned = this.validator.kind !== 'none'
    const readPart = async (from: number, part: Buffer, progress: BodyProgress, signal: AbortSignal) => {
      const sent = this.options.headers.current()
      try {
        return await this.fetchRange(from, part, pinned ? progress : undefined, signal)
      } catch (err) {
        throw await this.renewedSince(sent, err)
      }
    }
    return readResuming(this.retrying, what, offset, target, readPart, options?.signal)
  }

  /**
   * A 401 or 403 may mean the credentials were rotated a moment ago, before the watch on their
   * file read them: the files are read again at once, and if a value changed since `sent`, the
   * refusal becomes one worth another attempt (with the new value). Anything else is as it was.
   */
  private async renewedSince(sent: Readonly<Record<string, string>>, err: unknown): Promise<unknown> {
    if (!(err instanceof HttpStatusError) || (err.status !== 401 && err.status !== 403)) return err
    await this.options.headers.reread()
    return this.options.headers.current() === sent ? err : new CredentialsRenewedError(err)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.options.headers.close()
    this.direct?.close()
    if (this.general) await (await this.general).dispatcher.destroy()
  }

  /** HEAD for size and validator, then a one-byte ranged GET that proves ranges work. */
  private async learnObject(): Promise<void> {
    const started = performance.now()
    const head = await this.retrying(`HEAD ${this.redactedUrl}`, (signal) => this.headObject(signal))
    const probe = await this.retrying(`GET ${this.redactedUrl} bytes 0-0`, (signal) => this.probeRange(signal))
    this.openLatencyMs = Math.round((performance.now() - started) / (head ? 2 : 1))
    const headers = head?.headers ?? probe.headers
    if (head?.size !== undefined && head.size !== probe.size) {
      throw new RemoteChangedError(this.redactedUrl, `HEAD said ${head.size} bytes, a ranged GET ${probe.size}`)
    }
    // A cache in front of the server (deploy/nginx's tier, a CDN) may hold an older version than
    // the server's HEAD describes: reads pinned to the HEAD's ETag would then all fail with 412.
    const [headEtag, probeEtag] = [head?.headers.etag, probe.headers.etag]
    if (headEtag !== undefined && probeEtag !== undefined && headEtag !== probeEtag) {
      throw new RemoteChangedError(this.redactedUrl, `HEAD said ETag ${headEtag}, a ranged GET ${probeEtag}`)
    }
    this.size = probe.size
    this.validator = validatorFrom(headers)
    const lastModified = Date.parse(headers['last-modified'] ?? '')
    if (!Number.isNaN(lastModified)) this.modified = new Date(lastModified)
    if (this.validator.kind === 'none') {
      this.options.logger.warn(`${this.redactedUrl} has no strong ETag and no Last-Modified: a change on the server cannot be detected`)
    }
  }

  /** Size and headers from HEAD, or undefined where HEAD is refused (GET-only presigned URLs). */
  private async headObject(signal: AbortSignal): Promise<{ headers: Headers; size: number | undefined } | undefined> {
    const { status, headers } = await this.ask('HEAD', {}, signal)
    if ([403, 405, 501].includes(status)) return undefined
    if (status !== 200) throw this.statusError(status, headers)
    const length = headers['content-length']
    return { headers, size: length === undefined ? undefined : Number(length) }
  }

  private async probeRange(signal: AbortSignal): Promise<{ size: number; headers: Headers }> {
    const { status, headers } = await this.ask('GET', { range: 'bytes=0-0', 'accept-encoding': 'identity' }, signal, 1)
    if (status === 416) {
      const total = parseUnsatisfiedRange(headers['content-range'], this.redactedUrl)
      if (total === 0) return { size: 0, headers }
    }
    if (status === 200) throw new RangeIgnoredError(this.redactedUrl)
    if (status !== 206) throw this.statusError(status, headers)
    const range = parseContentRange(headers['content-range'], this.redactedUrl)
    if (!range || range.first !== 0 || range.last !== 0 || range.total === undefined) {
      throw new BadResponseError(this.redactedUrl, `Content-Range ${JSON.stringify(headers['content-range'])} for bytes 0-0`)
    }
    return { size: range.total, headers }
  }

  /**
   * The status and headers of an answer: all that the requests at open need. Its body is read
   * (and dropped) where it is `bodyBytes` long, to keep the connection; else left unread.
   */
  private async ask(method: 'GET' | 'HEAD', headers: Headers, signal: AbortSignal, bodyBytes = 0): Promise<{ status: number; headers: Headers }> {
    let redirect: Hop | undefined
    if (this.useDirect) {
      const body = Buffer.alloc(bodyBytes)
      const head = await this.direct!.request(method, this.path, headers, body, (answer) => answer.contentLength === bodyBytes, signal)
      if (!REDIRECT_STATUSES.has(head.status)) return head
      redirect = { status: head.status, location: head.headers.location }
      this.leaveDirect(`a redirect (${head.status})`)
    }
    const { response } = await this.exchange(method, headers, signal, redirect)
    await response.body.dump()
    return { status: response.statusCode, headers: flatten(response.headers) }
  }

  /** Bytes `[offset, offset + target.length)` into `target`; `progress` as in ../remote/resumed-range.ts. */
  private async fetchRange(offset: number, target: Buffer, progress: BodyProgress | undefined, signal: AbortSignal): Promise<Buffer> {
    const { length } = target
    const last = offset + length - 1
    const headers = { range: `bytes=${offset}-${last}`, 'accept-encoding': 'identity', ...this.conditionHeaders() }
    let redirect: Hop | undefined
    if (this.useDirect) {
      const inspect = (head: ResponseHead) => {
        if (REDIRECT_STATUSES.has(head.status) || (head.status === 206 && head.contentLength === undefined)) return false
        this.checkRangeAnswer(head.status, head.headers, offset, last)
        if (head.contentLength !== length) throw new BadResponseError(this.redactedUrl, `Content-Length ${head.contentLength} for ${length} bytes`)
        return true
      }
      const head = await this.direct!.request('GET', this.path, headers, target, inspect, signal, progress)
      if (head.status === 206 && head.contentLength !== undefined) return target
      if (head.status !== 206) redirect = { status: head.status, location: head.headers.location }
      this.leaveDirect(head.status === 206 ? 'a 206 without Content-Length' : `a redirect (${head.status})`)
    }
    const { response } = await this.exchange('GET', headers, signal, redirect)
    try {
      this.checkRangeAnswer(response.statusCode, flatten(response.headers), offset, last)
      return await collectBody(response.body, length, this.redactedUrl, target, progress)
    } finally {
      discardBody(response.body)
    }
  }

  private leaveDirect(why: string): void {
    if (!this.useDirect) return
    this.useDirect = false
    this.options.logger.info(`${this.redactedUrl} answered with ${why}: its requests go through the general HTTP client from now on`)
  }

  /** Throws unless an answer is exactly the pinned version's bytes `offset`..`last` (both paths). */
  private checkRangeAnswer(status: number, answer: Headers, offset: number, last: number): void {
    if (status === 412) throw new RemoteChangedError(this.redactedUrl, 'the server says the pinned version is gone (412)')
    if (status === 416) throw new RemoteChangedError(this.redactedUrl, 'the range is past the end now (416)')
    if (status === 200) throw new RangeIgnoredError(this.redactedUrl)
    if (status !== 206) throw this.statusError(status, answer)
    this.checkSameVersion(answer)
    assertContentRange(answer['content-range'], offset, last, this.size, this.redactedUrl)
    const encoding = answer['content-encoding']
    if (encoding !== undefined && encoding !== 'identity') throw new BadResponseError(this.redactedUrl, `Content-Encoding ${encoding}`)
  }

  /**
   * Sends a request to the snapshot's URL, following redirects ourselves so credentials stay home.
   * `redirected` is a redirect the direct path already received for this request.
   */
  private async exchange(method: 'GET' | 'HEAD', headers: Headers, signal: AbortSignal, redirected?: Hop): Promise<{ response: Dispatcher.ResponseData; url: URL }> {
    const { dispatcher, request } = await this.generalClient()
    let url = new URL(this.options.url)
    let redirects = 0
    if (redirected) url = this.nextHop(url, redirected, redirects++)
    for (;;) {
      const ownOrigin = url.origin === this.origin
      const response = await request(url, {
        dispatcher,
        method,
        headers: ownOrigin ? { ...this.options.headers.current(), ...headers } : headers,
        signal,
      })
      if (!REDIRECT_STATUSES.has(response.statusCode)) return { response, url }
      await response.body.dump()
      url = this.nextHop(url, { status: response.statusCode, location: flatten(response.headers).location }, redirects++)
    }
    /* c8 ignore next -- the loop is left only by return or throw, but V8 counts its exit as code */
  }

  private tls(): ServerTls {
    return (this.serverTls ??= tlsOptions(this.options.tls))
  }

  private generalClient(): Promise<GeneralClient> {
    this.general ??= import('./undici.js').then((undici) => ({ dispatcher: buildDispatcher(undici, this.options, this.tls()), request: undici.request }))
    return this.general
  }

  /** Where a redirect leads, unless it is one too many, has no Location or leaves https. */
  private nextHop(from: URL, { status, location }: Hop, redirects: number): URL {
    if (location === undefined) throw new BadResponseError(this.redactedUrl, `${status} without a Location`)
    if (redirects >= MAX_REDIRECTS) throw new RedirectError(this.redactedUrl, `more than ${MAX_REDIRECTS} redirects`)
    const next = new URL(location, from)
    if (from.protocol === 'https:' && next.protocol !== 'https:') {
      throw new RedirectError(this.redactedUrl, `refusing a redirect from https to ${redactUrl(next)}`)
    }
    return next
  }

  private conditionHeaders(): Headers {
    switch (this.validator.kind) {
      case 'etag':
        return { 'if-match': this.validator.value }
      case 'last-modified':
        return { 'if-unmodified-since': this.validator.value }
      case 'none':
        return {}
    }
  }

  /** A server that ignores If-Match still shows its ETag: check it ourselves too. */
  private checkSameVersion(headers: Headers): void {
    const { kind } = this.validator
    if (kind === 'none') return
    const seen = headers[kind === 'etag' ? 'etag' : 'last-modified']
    if (seen !== undefined && seen !== this.validator.value) {
      throw new RemoteChangedError(this.redactedUrl, `${kind} was ${this.validator.value}, now ${seen}`)
    }
  }

  private statusError(status: number, headers: Headers): HttpStatusError {
    const retryAfter = retryAfterMs(headers['retry-after'], Date.now())
    return new HttpStatusError(status, this.redactedUrl, retryAfter)
  }
}

function buildDispatcher(undici: typeof import('./undici.js'), options: HttpBackendOptions, tls: ServerTls): Dispatcher {
  return new undici.EnvHttpProxyAgent({
    ...options.proxy,
    connections: options.connections,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    connect: { timeout: options.connectTimeoutMs, ...tls },
    // Through a proxy undici ignores `connect`: the proxy's connection takes proxyTls, and the
    // server's TLS inside the tunnel requestTls.
    requestTls: { timeout: options.connectTimeoutMs, ...tls },
    proxyTls: { timeout: options.connectTimeoutMs, ...proxyTlsOptions(options.tls) },
  })
}

/** The direct client, unless requests to the URL go through a proxy (undici's proxy agent handles those). */
function buildRangeClient(options: HttpBackendOptions, url: string, tls: () => ServerTls): RangeClient | undefined {
  const origin = new URL(options.url)
  if (usesProxy(origin, options.proxy)) return undefined
  return new RangeClient({
    origin,
    tls: origin.protocol === 'https:' ? tls() : {},
    headers: () => options.headers.current(),
    connections: options.connections,
    connectTimeoutMs: options.connectTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    url,
    onResend: (cause) => options.logger.warn(`GET ${url}: ${describe(cause)} on a kept-alive connection before any answer; sent again on a new one`),
  })
}

/**
 * The server's TLS. One secure context serves all the connections of both clients: naming CAs
 * makes Node parse every root again for each context it makes (Node's ~140 and
 * NODE_EXTRA_CA_CERTS's 144 took it ~70 ms at start here), which for each connection would cost
 * more than the connection.
 */
function tlsOptions({ ca, extraCa, cert, key, insecureSkipVerify }: HttpBackendOptions['tls']): ServerTls {
  const named = [extraCa, ca].filter((pem) => pem !== undefined)
  const secureContext =
    named.length === 0 && cert === undefined && key === undefined
      ? undefined
      : nodeTls().createSecureContext({
          // Naming CAs replaces Node's bundled roots; keep them.
          ...(named.length > 0 && { ca: [...nodeTls().rootCertificates, ...named] }),
          ...(cert !== undefined && { cert }),
          ...(key !== undefined && { key }),
        })
  return { ...(secureContext && { secureContext }), rejectUnauthorized: !insecureSkipVerify }
}

/** An https proxy's TLS: Node's default trust, not the snapshot's ca_file, which vouches for its server. */
function proxyTlsOptions({ extraCa }: HttpBackendOptions['tls']): Pick<ConnectionOptions, 'secureContext'> {
  return extraCa === undefined ? {} : { secureContext: nodeTls().createSecureContext({ ca: [...nodeTls().rootCertificates, extraCa] }) }
}

function validatorFrom(headers: Headers): Validator {
  const etag = headers.etag
  if (etag !== undefined && !etag.startsWith('W/')) return { kind: 'etag', value: etag }
  const lastModified = headers['last-modified']
  if (lastModified !== undefined) return { kind: 'last-modified', value: lastModified }
  return { kind: 'none' }
}

function flatten(headers: Record<string, string | string[] | undefined>): Headers {
  const flat: Headers = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  }
  return flat
}

/** Open failures become input errors: the daemon refuses to start and says why. */
function openFailure(url: string, err: unknown): SourceOpenError {
  const cause = err instanceof RetriesExhaustedError ? err.cause : err
  if (cause instanceof RangeIgnoredError) {
    return new SourceOpenError(cause.message, 'serve it from a server that supports Range requests (nginx, S3, most CDNs do)', { cause: err })
  }
  if (cause instanceof ImpossibleSizeError) {
    return new SourceOpenError(`cannot open ${cause.message}`, 'check what answers for it (a proxy may rewrite Content-Range); images past 8 PiB are not supported', { cause: err })
  }
  if (cause instanceof HttpStatusError) {
    const fix = cause.status === 404 ? 'check the URL' : cause.status === 401 || cause.status === 403 ? 'check the credentials in headers:' : 'check the URL and the server'
    return new SourceOpenError(`cannot open ${url}: the server answered ${cause.status}`, fix, { cause: err })
  }
  if (cause instanceof RemoteChangedError) {
    const fix = 'if a cache or CDN is in front of the server, purge the image there or wait until its copy expires; if the image is being replaced, mount once that is done'
    return new SourceOpenError(`cannot open ${url}: ${cause.message}`, fix, { cause: err })
  }
  if (setupProblem(cause) === 'certificate') {
    const { code } = cause as NodeJS.ErrnoException
    return new SourceOpenError(`cannot open ${url}: TLS certificate not trusted (${code})`, 'add the CA as ca_file, or fix the server certificate', { cause: err })
  }
  return new SourceOpenError(`cannot open ${url}: ${describe(cause)}`, 'check the URL, and that the server is up and reachable', { cause: err })
}

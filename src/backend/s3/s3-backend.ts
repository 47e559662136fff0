import type { Readable } from 'node:stream'
import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client, S3ServiceException, type GetObjectCommandInput } from '@aws-sdk/client-s3'
import type { S3SnapshotSpec } from '../../config/config.js'
import type { ReadOptions, SourceIdentity } from '../storage-backend.js'
import { SourceOpenError, describe } from '../errors.js'
import { collectBody, discardBody } from '../remote/body.js'
import type { RemoteRetryOptions } from '../remote/retrying.js'
import { RemoteBackend } from '../remote/remote-backend.js'
import { readResuming, type BodyProgress } from '../remote/resumed-range.js'
import { assertContentRange } from '../remote/content-range.js'
import { BadResponseError, HttpStatusError, RemoteChangedError, RetriesExhaustedError, isRetryable, setupProblem } from '../remote/remote-errors.js'
import { retryAfterMs } from '../remote/retry-policy.js'
import { RangeClient } from '../remote/range-client.js'
import type { ResponseHead } from '../remote/response-head.js'
import { GetObjectSigner } from './signed-request.js'

/** The direct client's fixed header fields: none, every GetObject is signed with its own. */
const NO_HEADERS = {}

/** Where the object is and how to reach it (documented on the config type), and the retry setup. */
export type S3BackendOptions = Omit<S3SnapshotSpec, 'name' | 'type' | 'maxAttempts' | 'readDeadlineMs'> & RemoteRetryOptions

/**
 * Serves one S3 object with a ranged GetObject per read, pinned to the object seen at open:
 * `IfMatch` with its ETag (and its version id when one was given), so an overwritten object fails
 * reads instead of mixing versions. The SDK makes one attempt per call; retries, backoff and the
 * per-read deadline are the same loop HTTP snapshots use (../remote/retrying.ts), which also
 * covers a body cut short after the headers arrived — something the SDK's own retries never see.
 */
export class S3Backend extends RemoteBackend {
  private readonly where: string
  private etag = ''
  private version: string | undefined
  private openLatencyMs = 0
  private region = ''
  /**
   * Sends GetObjects the SDK built and signed (signed-request.ts) and reads their bodies straight
   * into the cache's buffers, as HTTP snapshots do: the SDK's response handling (a stream per
   * body, a 64 KiB buffer per chunk) cost more CPU than everything else in a remote read.
   * Made for the origin the SDK's first request goes to.
   */
  private direct: RangeClient | undefined
  private readonly signer: GetObjectSigner

  private constructor(
    private readonly options: S3BackendOptions,
    private readonly client: S3Client,
  ) {
    super(options, new Date(0))
    this.where = `s3://${options.bucket}/${options.key}`
    this.signer = new GetObjectSigner(client)
  }

  static async open(options: S3BackendOptions): Promise<S3Backend> {
    const backend = new S3Backend(options, buildClient(options))
    try {
      await backend.learnObject()
    } catch (err) {
      const failure = await backend.openFailure(err)
      backend.client.destroy()
      throw failure
    }
    return backend
  }

  /** The store, bucket and key, the size, and the version id with the ETag (both strong). */
  identity(): SourceIdentity {
    /* c8 ignore next: tests reach only stores on loopback, never AWS itself */
    const store = this.options.endpoint ?? 'AWS'
    return { source: `${store} ${this.where}`, size: this.size, validator: `${this.version ?? ''} ${this.etag}` }
  }

  describe(): string {
    /* c8 ignore next: tests reach only stores on loopback, never AWS itself */
    const store = this.options.endpoint ?? 'AWS'
    return `${this.where}; etag ${this.etag}; version ${this.version ?? 'none'}; ${store} ${this.region}; ${this.openLatencyMs} ms round trip`
  }

  /** The ETag reads are pinned to: mirrors compare it with other S3 sources' (../mirrors/). */
  strongEtag(): string {
    return this.etag
  }

  protected readRange(offset: number, length: number, options: ReadOptions | undefined): Promise<Buffer> {
    const what = `GetObject ${this.where} bytes ${offset}-${offset + length - 1}`
    const target = options?.into ?? Buffer.allocUnsafe(length)
    return readResuming(this.retrying, what, offset, target, (from, part, progress, signal) => this.getRange(from, part, progress, signal), options?.signal)
  }

  /** Bytes `[offset, offset + target.length)` into `target`; `progress` as in ../remote/resumed-range.ts. */
  private async getRange(offset: number, target: Buffer, progress: BodyProgress, abortSignal: AbortSignal): Promise<Buffer> {
    const { length } = target
    const last = offset + length - 1
    const input = {
      Bucket: this.options.bucket,
      Key: this.options.key,
      Range: `bytes=${offset}-${last}`,
      IfMatch: this.etag,
      ...(this.version !== undefined && { VersionId: this.version }),
    }
    if (await this.readDirect(input, offset, target, progress, abortSignal)) return target
    const response = await this.call(() => this.client.send(new GetObjectCommand(input), { abortSignal }))
    const body = response.Body as unknown as Readable | undefined
    try {
      assertContentRange(response.ContentRange, offset, last, this.size, this.where)
      this.checkEtag(response.ETag)
      return await collectBody(body!, length, this.where, target, progress)
    } finally {
      discardBody(body)
    }
  }

  /**
   * One GetObject sent by the direct client: true once its body is in `target`, false when the
   * answer is not one it handles (a status whose S3 error code matters: the SDK asks again and types it).
   */
  private async readDirect(input: GetObjectCommandInput & { Range: string; IfMatch: string }, offset: number, target: Buffer, progress: BodyProgress, signal: AbortSignal): Promise<boolean> {
    const { length } = target
    const request = await this.signer.sign(input, signal)
    // The SDK resolves one endpoint per bucket; were it ever another, the store would refuse the
    // signature for the host we sent to, and the SDK would ask again below.
    this.direct ??= new RangeClient({
      origin: new URL(request.origin),
      tls: {},
      headers: () => NO_HEADERS,
      connections: this.options.connections,
      connectTimeoutMs: this.options.connectTimeoutMs,
      headersTimeoutMs: this.options.requestTimeoutMs,
      bodyTimeoutMs: this.options.requestTimeoutMs,
      url: this.where,
    })
    const last = offset + length - 1
    const inspect = ({ status, headers, contentLength }: ResponseHead) => {
      if (status === 412) throw new RemoteChangedError(this.where, 'the pinned ETag no longer matches (412)')
      if (status !== 206) {
        const error = new HttpStatusError(status, this.where, retryAfterMs(headers['retry-after'], Date.now()))
        if (isRetryable(error)) throw error
        return false
      }
      assertContentRange(headers['content-range'], offset, last, this.size, this.where)
      this.checkEtag(headers.etag)
      if (contentLength !== length) throw new BadResponseError(this.where, `Content-Length ${contentLength} for ${length} bytes`)
      return true
    }
    const head = await this.direct.request('GET', request.target, request.headers, target, inspect, signal, progress)
    return head.status === 206
  }

  /** A store that ignores IfMatch still shows the ETag: a new one is a new version. */
  private checkEtag(etag: string | undefined): void {
    if (etag !== undefined && etag !== this.etag) throw new RemoteChangedError(this.where, `ETag was ${this.etag}, now ${etag}`)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.direct?.close()
    this.client.destroy()
  }

  private async learnObject(): Promise<void> {
    const started = performance.now()
    const { bucket, key, versionId } = this.options
    const command = new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId !== undefined && { VersionId: versionId }) })
    const head = await this.retrying(`HeadObject ${this.where}`, (abortSignal) => this.call(() => this.client.send(command, { abortSignal })))
    this.openLatencyMs = Math.round(performance.now() - started)
    this.region = await this.client.config.region()
    if (head.ETag === undefined) {
      throw new SourceOpenError(`cannot open ${this.where}: the store gave no ETag, so reads could not be pinned to this version`, 'use a store that sends ETags (every S3 implementation should)')
    }
    if (!Number.isSafeInteger(head.ContentLength) || head.ContentLength! < 0) {
      // The SDK parses Content-Length into a float: 1e20 arrives rounded, and no offset near it is exact.
      throw new SourceOpenError(
        `cannot open ${this.where}: the store gives a size of ${head.ContentLength} bytes, which is not a whole number of bytes snapmount can serve exactly (at most ${Number.MAX_SAFE_INTEGER})`,
        'check what answers for the endpoint (a proxy may rewrite Content-Length); objects past 8 PiB are not supported',
      )
    }
    this.size = head.ContentLength!
    this.etag = head.ETag
    this.version = this.options.versionId ?? head.VersionId
    if (head.LastModified) this.modified = head.LastModified
  }

  /** Runs one SDK call, turning the store's error answers into our typed errors. */
  private async call<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send()
    } catch (err) {
      // An answer the SDK could not parse (a proxy's HTML 503) still carries its status.
      const answered = err as S3ServiceException & { $metadata: { clockSkewCorrected?: boolean } }
      const status = answered.$metadata?.httpStatusCode
      if (status === undefined) throw err
      // The range lies within the size seen at open, so a changed object answers 412 before any 416.
      if (status === 412) throw new RemoteChangedError(this.where, 'the pinned ETag no longer matches (412)')
      const retryAfter = retryAfterMs(answered.$response?.headers?.['retry-after'], Date.now())
      const store = { errorCode: answered.name, clockSkewCorrected: answered.$metadata.clockSkewCorrected }
      throw Object.assign(new HttpStatusError(status, this.where, retryAfter, store), { cause: err })
    }
  }

  /** A refusal to start that names the problem: missing bucket or key, denied, wrong region, unreachable. */
  private async openFailure(err: unknown): Promise<SourceOpenError> {
    if (err instanceof SourceOpenError) return err
    const cause = err instanceof RetriesExhaustedError ? err.cause : err
    const { bucket, key, endpoint, profile } = this.options
    const fail = (problem: string, fix: string) => new SourceOpenError(`cannot open ${this.where}: ${problem}`, fix, { cause: err })
    if (cause instanceof HttpStatusError) {
      if (cause.status === 301) {
        // AWS answers a request to the wrong region with 301 and names the right one in a header.
        const region = (cause.cause as S3ServiceException).$response?.headers?.['x-amz-bucket-region']
        if (!region) return fail('the bucket is in another region', "set region: to the bucket's region")
        return fail(`the bucket is in another region (${region})`, `set region: ${region}`)
      }
      if (cause.status === 404) {
        const bucketExists = await this.bucketExists()
        return bucketExists
          ? fail(`bucket ${bucket} has no object ${key}`, 'check the key (object keys are case-sensitive)')
          : fail(`bucket ${bucket} does not exist`, 'check the bucket name and the endpoint')
      }
      if (cause.status === 403 || cause.status === 401) {
        // HeadObject's error has no body, so no code; a one-byte GET's says which denial it is.
        const code = await this.errorCodeOfGet()
        return fail(`access denied (${cause.status}${code ? ` ${code}` : ''})`, `check the credentials${profile ? ` of profile ${profile}` : ''} and the bucket policy, or set anonymous: true for a public bucket`)
      }
      return fail(`the store answered ${cause.status}`, 'check the endpoint and try again')
    }
    // The client's own setup: final (remote-errors.ts), so this is the first and only report.
    switch (setupProblem(cause)) {
      case 'credentials':
        return fail(`no AWS credentials found (${describe(cause)})`, 'give credentials the usual way (environment, profile:, SSO, instance role) or set anonymous: true')
      case 'region':
        return /missing/.test(describe(cause))
          ? fail('no region', 'set region: in the config or AWS_REGION in the environment')
          : fail(`the region is not valid (${describe(cause)})`, 'set region: to a region name, e.g. eu-west-1')
      case 'certificate':
        return fail(`the store's TLS certificate is not trusted (${(cause as NodeJS.ErrnoException).code})`, "trust its CA with NODE_EXTRA_CA_CERTS=/path/ca.pem in the daemon's environment, or fix the store's certificate")
    }
    /* c8 ignore next: tests reach only stores on loopback, never AWS itself */
    const store = endpoint === undefined ? 'S3' : `endpoint ${endpoint}`
    return fail(`${store} unreachable (${describe(cause)})`, 'check the endpoint and the network')
  }

  /** The S3 error code a small GET of the object gets, for a diagnosis HEAD cannot give. */
  private async errorCodeOfGet(): Promise<string | undefined> {
    try {
      const reply = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.options.key, Range: 'bytes=0-0' }))
      discardBody(reply.Body as unknown as Parameters<typeof discardBody>[0])
      return undefined
    } catch (err) {
      return (err as Error).name
    }
  }

  private async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }))
      return true
    } catch (err) {
      return (err as S3ServiceException).$metadata?.httpStatusCode !== 404
    }
  }
}

function buildClient(options: S3BackendOptions): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: options.connections }
  return new S3Client({
    ...(options.region !== undefined && { region: options.region }),
    ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
    ...(options.profile !== undefined && { profile: options.profile }),
    forcePathStyle: options.forcePathStyle,
    // One attempt per call: the retry loop above owns retries and the deadline.
    maxAttempts: 1,
    // Stores without the newest checksum features (older MinIO, Ceph, R2) reject what they do not know.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: options.connectTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
    },
    // Anonymous: fixed empty credentials so the chain is never asked, and a signer that signs nothing.
    ...(options.anonymous && { credentials: { accessKeyId: '', secretAccessKey: '' }, signer: { sign: async (request: unknown) => request } as never }),
  })
}

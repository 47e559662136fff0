import type { S3Client } from '@aws-sdk/client-s3'
import type { NetnsCommands } from './delay-netns.mjs'
import type { UploadOptions } from './s3-upload.mjs'

export declare const CEPH_MON: string
export declare const CEPH_OSD: string
export declare const RADOSGW: string

export interface Credentials {
  accessKeyId: string
  secretAccessKey: string
}

export interface RadosgwOptions {
  /**
   * Name prefix of the temp dir under os.tmpdir() that holds the cluster's config, state, logs
   * and sockets. Default `snapmount-radosgw-`. A caller that uses `clearStaleRadosgw` gives a
   * prefix of its own, so it never kills someone else's cluster.
   */
  prefix?: string
  /**
   * The compressor radosgw applies to object data on its default placement target, or 'none'.
   * Default 'lz4': sparse test images then take little of memstore and upload twice as fast.
   * Incompressible data gains nothing from it (the benchmark turns it off).
   */
  compression?: string
  /**
   * A network namespace to run the cluster in (tools/delay-netns.mjs): its daemons and tools run
   * there, talking over its loopback. `endpoint` is then the gateway's address inside it, for
   * processes started there; `client`, `createBucket` and `uploadFile` reach the gateway through
   * the namespace's forward() (a relay inside it, so they pass its delay too). Default: the
   * caller's own namespace.
   */
  netns?: NetnsCommands
}

/** radosgw's `rgw` performance counters (`ceph daemon client.rgw perf dump`), the fields used here. */
export interface RadosgwPerfCounters {
  /** GetObject and HeadObject requests. */
  get: number
  /**
   * Sum over GetObjects of the range asked for, less one per request (Ceph 16 counts end - start
   * of an inclusive range), counted when a request starts: not the bytes sent, which are fewer
   * when the client hangs up early.
   */
  get_b: number
  put: number
  put_b: number
  req: number
  failed_req: number
  [counter: string]: unknown
}

/** A real S3 server on 127.0.0.1, and a user allowed to use it. */
export interface Radosgw {
  /**
   * `http://127.0.0.1:PORT` (path-style addressing: buckets are not subdomains); inside the
   * namespace when started in one.
   */
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  /** A client for this gateway as this user, destroyed by stop(). */
  client: S3Client
  /** The temp dir with everything the cluster writes; removed by stop(). */
  dir: string
  createBucket(name: string): Promise<void>
  /**
   * Uploads a file streamed from disk (multipart past 64 MiB) and resolves with its ETag; parts
   * outside `dataExtents`, if given, are copied from zeros on the server (see s3-upload.d.mts).
   */
  uploadFile(bucket: string, key: string, path: string, options?: UploadOptions): Promise<string>
  /** The gateway's request counters, read from its admin socket. */
  perfCounters(): Promise<RadosgwPerfCounters>
  /** The gateway's log so far (a line per request at Ceph's default debug level). */
  gatewayLog(): Promise<string>
  /** Destroys the client, kills the daemons (SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>
}

/**
 * An S3 client for `server`: path-style, one attempt per call, checksums only where S3 requires
 * them (Ceph 16 refuses the SDK's default aws-chunked uploads with 411).
 */
export declare function s3Client(server: { endpoint: string; region: string }, credentials: Credentials): S3Client

/**
 * Starts a one-node Ceph cluster (monitor, memstore OSD, radosgw; Debian's packages) in the
 * foreground as child processes, everything under a temp dir, with a user with fresh random
 * keys; resolves once a signed request as that user succeeds (~1.3 s on 2 cores). The caller
 * stops it.
 */
export declare function startRadosgw(options?: RadosgwOptions): Promise<Radosgw>

/**
 * Kills what a process that died without stop() left running under temp dirs named `prefix*`
 * and removes those dirs. Resolves to the dirs cleared.
 */
export declare function clearStaleRadosgw(prefix: string): Promise<string[]>

/** The body bytes radosgw sent in answer to GETs and HEADs, from its log (`Radosgw.gatewayLog()`). */
export declare function bytesSentFromLog(log: string): number

import type { LogLevel } from '../log.js'

/** What a snapmount process serves: validated, with every default filled in. */
export interface Config {
  /** Absolute path of the directory the snapshots appear in. */
  mountpoint: string
  options: MountOptions
  snapshots: SnapshotSpec[]
}

export interface MountOptions extends ObservabilityOptions {
  /**
   * Let users other than the daemon's into the mount (FUSE's `allow_other`), as a hypervisor
   * running under its own account must. File modes still apply (the kernel checks them). Non-root
   * daemons need `user_allow_other` in /etc/fuse.conf for it. Default (undefined): on exactly when
   * `uid`, `gid` and `umask` let a user other than the daemon's read (src/fuse/access.ts).
   */
  allowOther: boolean | undefined
  /**
   * Owner shown on every file (a number, or a user name looked up when the daemon starts), so a
   * hypervisor's user can read with `umask` taking the rest away. Default: the daemon's own.
   */
  uid?: number | string | undefined
  /** Group shown on every file (a number or a group name), e.g. `kvm`. Default: the daemon's own. */
  gid?: number | string | undefined
  /**
   * Permission bits removed from the read-only modes (files 0444, the root 0555), as a umask:
   * 0o027 lets the owner and the group read and nobody else. Written in octal in a string
   * (`umask: "0027"`): YAML reads 0027 unquoted as twenty-seven. Default 0o077 (owner-only: a
   * disk image holds its guest's secrets), or 0o027 when `gid` is given.
   */
  umask?: number | undefined
  /**
   * Milliseconds one read may wait for its source before the reader gets EIO. Bounded below
   * fuse-native's 15 s operation timeout so the answer is always ours. Default 10 000.
   */
  readTimeoutMs: number
  /**
   * Bound on the bytes of the block cache remote snapshots share (`cache_size_mib`). Default
   * 1 GiB: a boot's working set and several streams' readahead fit, and it is small beside the
   * guests' memory on a hypervisor host. Local snapshots use the kernel's page cache instead.
   */
  cacheBytes: number
  /**
   * Cache block size (`cache_block_kib`): the least a remote read fetches. Default 128 KiB, so a
   * 4 KiB random read costs one small request; the kernel's larger reads (up to 1 MiB) span
   * several blocks and fetch their missing ones in one request.
   */
  blockBytes: number
  /**
   * The disk cache's directory (`cache_dir`, an absolute path): remote snapshots' blocks are kept
   * there across restarts, below the block cache. Off (undefined) by default.
   */
  cacheDir: string | undefined
  /**
   * Bound on the disk cache's bytes (`disk_cache_size_gib`). Default 10 GiB: several guests'
   * boot working sets (a few hundred MiB each) and room for the data they read after.
   */
  diskCacheBytes: number
}

/** How the daemon reports on itself: `log_level`, `metrics` and `control_socket` under `options:`. */
export interface ObservabilityOptions {
  /** The least severe log lines written. Default `info`. */
  logLevel: LogLevel
  /** Where the Prometheus endpoint listens; off (undefined) by default. */
  metrics: MetricsOptions | undefined
  /** Path of the control socket `snapmount status` talks to; default: derived from the mountpoint. */
  controlSocket: string | undefined
}

/** The metrics endpoint's address; loopback unless `allowRemote` says otherwise. */
export interface MetricsOptions {
  host: string
  port: number
  /** Allow an address that is not loopback (the endpoint has no authentication). */
  allowRemote: boolean
}

export const SNAPSHOT_TYPES = ['file', 'mmap', 'http', 's3'] as const
export type SnapshotType = (typeof SNAPSHOT_TYPES)[number]

/** One snapshot: the file name it gets in the mount and where its bytes come from. */
export type SnapshotSpec = LocalSnapshotSpec | HttpSnapshotSpec | S3SnapshotSpec

export interface LocalSnapshotSpec {
  name: string
  /** List it even when its source cannot be opened at start; see `lazy` in the README. */
  lazy?: boolean | undefined
  type: 'file' | 'mmap'
  /** Check every block against this manifest (docs/manifest.md); none by default. */
  manifest?: ManifestSpec | undefined
  /** Absolute path of the local image. */
  path: string
}

/**
 * A snapshot's integrity manifest: where it is read from at open, as a snapshot's source is (a
 * local file; an http(s) URL with the snapshot's headers and TLS files when on its origin; an S3
 * object with the snapshot's store, region and credentials), and the SHA-256 it must have.
 */
export interface ManifestSpec {
  source: LocalSnapshotSpec | HttpSnapshotSpec | S3SnapshotSpec
  /** 64 lowercase hex digits: the manifest file's SHA-256, as `snapmount manifest create` printed it. */
  sha256: string
}

/**
 * A remote snapshot's boot profile (docs/profile.md, src/profile/): a local file, prefetched at a
 * cold start when it exists and recorded on the first start when it does not; or a URL beside the
 * image (opened as a manifest URL is), only ever read.
 */
export type ProfileSpec = { path: string } | { source: HttpSnapshotSpec | S3SnapshotSpec }

/** A value that may be secret: given in the config, or read from the environment or a file at open. */
export type SecretSource = { value: string } | { env: string } | { file: string }

/** How hard a remote snapshot (http, s3) tries to answer one read: `max_attempts`, `read_deadline_ms`. */
export interface RetryBudget {
  /** Attempts per read, the first included. Default 5. */
  maxAttempts: number
  /** Budget of one read, retries included; below read_timeout_ms. Default 80 % of it. */
  readDeadlineMs: number
}

/**
 * Mirrors: where a snapshot lists several sources (`urls:` on an http snapshot, or `sources:`),
 * every one of them, in the config's order (src/backend/mirrors/). The spec's own source fields
 * are then those of the first. Absent for a snapshot with one source.
 */
export interface Mirrored {
  sources?: RemoteSourceSpec[] | undefined
}

/** One source of a mirrored snapshot: the source fields of an http or s3 snapshot. */
export type RemoteSourceSpec = Omit<HttpSnapshotSpec, 'name' | 'lazy' | 'sources'> | Omit<S3SnapshotSpec, 'name' | 'lazy' | 'sources'>

export interface HttpSnapshotSpec extends RetryBudget, Mirrored {
  name: string
  lazy?: boolean | undefined
  type: 'http'
  /** Check every block against this manifest (docs/manifest.md); none by default. */
  manifest?: ManifestSpec | undefined
  /** Prefetch what a boot reads, recorded once (docs/profile.md); none by default. */
  prefetchProfile?: ProfileSpec | undefined
  /** http:// or https:// URL of the image. */
  url: string
  /** Extra request headers (auth tokens, API keys), sent to the URL's own origin only. */
  headers: Record<string, SecretSource>
  /** Absolute paths of PEM files: extra CAs, and a client certificate and key for mutual TLS. */
  caFile: string | undefined
  clientCertFile: string | undefined
  clientKeyFile: string | undefined
  /** Skip TLS certificate checks; logged loudly. Default false. */
  insecureSkipVerify: boolean
  /** Keep-alive connections to the origin, i.e. ranges in flight at once. Default 8. */
  connections: number
  /** Default 3000. */
  connectTimeoutMs: number
  /** Longest wait for response headers. Default 5000. */
  headersTimeoutMs: number
  /** Longest silence within a body. Default 5000. */
  bodyTimeoutMs: number
}

export interface S3SnapshotSpec extends RetryBudget, Mirrored {
  name: string
  lazy?: boolean | undefined
  type: 's3'
  /** Check every block against this manifest (docs/manifest.md); none by default. */
  manifest?: ManifestSpec | undefined
  /** Prefetch what a boot reads, recorded once (docs/profile.md); none by default. */
  prefetchProfile?: ProfileSpec | undefined
  bucket: string
  key: string
  /** Pin this object version; default: the version current at start, pinned by its ETag. */
  versionId: string | undefined
  /** Default: the SDK's (AWS_REGION, then the profile's config). */
  region: string | undefined
  /** An S3-compatible store's URL (MinIO, Ceph RGW, R2); default AWS. */
  endpoint: string | undefined
  /** Bucket in the path, not the host name. Default: true with an endpoint, false for AWS. */
  forcePathStyle: boolean
  /** Shared-config profile for the SDK's credential chain. Default: the SDK's (AWS_PROFILE). */
  profile: string | undefined
  /** Unsigned requests for public buckets. Default false. */
  anonymous: boolean
  /** Sockets for ranges in flight. Default 64. */
  connections: number
  /** Default 3000. */
  connectTimeoutMs: number
  /** Longest wait for a response or within one. Default 5000. */
  requestTimeoutMs: number
}

export const READ_TIMEOUT_MS = { default: 10_000, min: 100, max: 14_000 } as const
/** The cache must hold a few streams' readahead windows (64 MiB each at most); 1 TiB is a typo guard. */
export const CACHE_SIZE_MIB = { default: 1024, min: 64, max: 1024 * 1024 } as const
/** A GiB at least (a working set or two), 64 TiB at most (a typo guard). */
export const DISK_CACHE_SIZE_GIB = { default: 10, min: 1, max: 64 * 1024 } as const
/**
 * The block cache's default size when the disk cache is on, in MiB: it then only needs to hold
 * what is being read and read ahead now, since the working set is on local disk and comes back at
 * local-disk speed. Ten mounts on a host so take 2.5 GiB, not 10.
 */
export const CACHE_SIZE_WITH_DISK_MIB = 256
/** Powers of two from a page to the largest ranged request snapmount makes (4 MiB). */
export const CACHE_BLOCK_KIB = { default: 128, min: 4, max: 4096 } as const

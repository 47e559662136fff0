// Types only (no results.mjs): the shape of one run's results, the object run.mjs writes to
// bench/results/*.json and that targets.mjs and report.mjs read. bench/README.md describes each field.

import type { FleetResults } from './fleet-report.mjs'
import type { FailoverResults } from './failover-report.mjs'
import type { ReadSummary } from './boot-trace.mjs'

/** What a read cost in CPU (lib/cpu.mjs cpuUse); undefined where it could not be read. */
export interface CpuUse {
  /** The daemon's (and its descendants') user + system seconds during the read and its settling. */
  daemonSeconds?: number | undefined
  daemonSecondsPerGiB?: number | undefined
  /**
   * The system (kernel) part of daemonSeconds: socket and FUSE copies, page faults. It grows with
   * the machine's memory traffic (an S3 server copying the same bytes beside the daemon); the
   * rest, the daemon's own code, does not. Not printed; in the JSON since 2026-12-02.
   */
  daemonSystemSeconds?: number | undefined
  daemonSystemSecondsPerGiB?: number | undefined
  /** The bench process's own CPU (the proxy runs there), same interval. */
  proxySeconds?: number | undefined
  proxySecondsPerGiB?: number | undefined
  /** The machine's idle (and iowait) share of all CPU time during the read, 0..1. */
  idleShare?: number | undefined
}

/** A random-read figure: fio's for a mount, the rate loop's for a raw client. */
export interface RandResult {
  iops: number
  p50Ms?: number | undefined
  p99Ms?: number | undefined
}

export interface RemoteRand extends RandResult {
  bytesRead: number
  fetched: number
  kibPerRead?: number | undefined
  askedKibPerRead?: number | undefined
  getsPerRead: number
}

export interface RemoteMount {
  mountMs: number
  peakRssMiB?: number | undefined
  slicesOk: boolean
  exits: (number | string | null)[]
  cleanExit: boolean
  ok: boolean
  seq1: { mbps: number; bytesRead: number; fetched: number; fetchPerByte: number; gets: number; connections: number; cpu?: CpuUse }
  seq4: { mbps: number; bytesRead: number; fetched: number; fetchPerByte: number; cpu?: CpuUse }
  warm: { mbps: number; bytesRead: number; fetched: number; cpu?: CpuUse }
  rand1: RemoteRand
  rand8: RemoteRand
}

/** One mount's start times (daemons.mjs measureStarts). */
export interface StartResult {
  title: string
  /** Spawn to mounted, one per fresh daemon, in ms. */
  ms: number[]
  medianMs: number
  exits: (number | string | null)[]
  cleanExit: boolean
}

export interface Starts {
  mounts: Record<string, StartResult>
  /** Mounts whose start could not be measured, and why. */
  notes: string[]
}

export interface RemoteCondition {
  key: string
  proto: 'http' | 's3'
  title: string
  /** The server's name (and version), for the table's title. */
  server: string
  rttMs: number
  raw: {
    seqDirect: number
    seq1: number
    /** The proxy's CPU seconds per GiB while the one raw stream went through it. */
    seq1ProxyCpuPerGiB?: number
    seq4: number
    seq8: number
    rand1: RandResult
    rand8: RandResult
  }
  mounts: Record<string, RemoteMount>
  notes: string[]
  seconds: number
  loadBefore: number
  loadAfter: number
  /** Only at 0 ms. */
  starts?: Starts
  /** Issue 20's bit-flipping rows: HTTP at 0 ms, in runs with the manifest mount. */
  corruption?: Corruption
}

/** The whole image read through a proxy that flips a bit in `flipShare` of the range responses. */
export interface Corruption {
  flipShare: number
  without: CorruptionRow
  with: CorruptionRow
}

export interface CorruptionRow {
  bytesRead: number
  /** Bytes read that differ from the source. */
  wrongBytes: number
  /** 1 MiB reads that failed (EIO). */
  failedReads: number
  /** Range responses through the proxy during the read, and of them those flipped. */
  responses: number
  flips: number
  /** Blocks (128 KiB) a flip landed in, and of them those the daemon logged as not matching. */
  flippedBlocks: number
  loggedBlocks: number
  exit: number | string | null
}

/** One mount over kernel TCP (parts/kernel-tcp.mjs): one cold daemon, one sequential reader. */
export interface KernelMount {
  mountMs: number
  seq1: { mbps: number; bytesRead: number; cpu?: CpuUse }
  peakRssMiB?: number | undefined
  sliceOk: boolean
  exit: number | string | null
  cleanExit: boolean
  ok: boolean
}

/** The part http-kernel: no mounts, and a note, when the machine could not make the namespace. */
export interface KernelCondition {
  key: string
  proto: 'http'
  title: string
  server: string
  rttMs: number
  /** The namespace's TCP settings (dotted name -> value), as tools/delay-netns.mjs set them. */
  sysctls: Record<string, string>
  /** One curl stream of the whole image from inside the namespace, MB/s. */
  raw: { seq1?: number }
  mounts: Record<string, KernelMount>
  notes: string[]
  seconds: number
  loadBefore: number
  loadAfter: number
}

export interface LocalMount {
  seqCold: number
  seqWarm: number
  seqColdCpu?: CpuUse
  seqWarmCpu?: CpuUse
  rand1: RandResult
  rand8: RandResult
  shaCached: boolean
  shaDirect: boolean
  mountMs: number
  peakRssMiB?: number | undefined
  exit: number | string | null
  ok: boolean
}

export interface LocalResults {
  source: { sha: string; seq: number; rand1: RandResult; rand8: RandResult; rand1Direct?: RandResult; rand8Direct?: RandResult }
  mounts: Record<string, LocalMount>
  qemuNote?: string | undefined
  starts?: Starts
  seconds?: number
}

export interface RssResults {
  cacheMiB: number
  mbps: number
  bytesRead: number
  fetchPerByte: number
  cpu?: CpuUse
  peakRssMiB?: number | undefined
  peakWithCheckMiB?: number | undefined
  sliceOk: boolean
  exit: number | string | null
  ok: boolean
}

/** One cold boot (bench/parts/boot.mjs). */
export interface BootRun {
  /** From QEMU's start to the guest's ready marker. */
  readyMs: number
  /** What the guest had read when it wrote the marker (QMP block statistics); undefined if QEMU was gone. */
  guestBytes: number | undefined
  guestReads: number | undefined
  /** Bytes the server sent during the boot (nginx's access log, radosgw's); undefined for a local source. */
  serverBytes: number | undefined
  failedUnits: number
  /** The 1-min load average when the boot began. */
  load: number
  /** Rows with a boot profile: the daemon's `status` after the boot (cache lookups, the prefetch's report). */
  stats?: BootProfileStats
}

/** What a boot with a profile left in the daemon's status (issue 19). */
export interface BootProfileStats {
  cacheHits: number | undefined
  cacheMisses: number | undefined
  prefetch: { prefetchedBytes: number; hitBytes: number; wastedBytes: number; state: string } | undefined
}

/** One way of serving the guest's image. */
export interface BootRow {
  title: string
  /** floor: QEMU on the file; snapmount; peer: another way users boot a remote image. */
  group: 'floor' | 'snapmount' | 'peer'
  proto: 'local' | 'http' | 's3'
  rttMs: number
  runs: BootRun[]
  /** Medians over the runs; medianMs undefined when none succeeded. */
  medianMs?: number
  guestBytes?: number
  serverBytes?: number
  /** Why it was not measured (not installed), or why a peer's run failed or hung. */
  note?: string
}

export interface BootResults {
  accel: 'kvm' | 'tcg'
  accelReason: string
  /** The guest image's path. */
  image: string
  cache: 'none' | 'default'
  overlay: 'snapshot' | 'readonly'
  /** Boots per row. */
  runs: number
  /** By key: local, snapmount-file, snapmount-http-0ms, snapmount-s3-10ms, qemu-curl, ... in the order run. */
  rows: Record<string, BootRow>
  /** The local file's first boot's reads, summarised (bench/lib/boot-trace.mjs). */
  trace?: ReadSummary
  notes: string[]
  load: { before: number; after: number }
}

export interface Target {
  scope: string
  target: string
  value: number | undefined
  limit: number | undefined
  /** undefined: not measured in this run (n/a). */
  pass: boolean | undefined
  detail: string
}

export interface BenchResults {
  schema: 1
  startedAt: string
  quick: boolean
  parts: string[]
  host: string
  /** Whether free page reporting was paused for the run (bench/lib/page-reporting.mjs); absent in runs before it. */
  hostMemory?: string
  settings: { fioSeconds: number; seqSeconds: number; rawRateSeconds: number; rttMs: number; rssCacheMiB: number; seqDaemons: number; startRuns: number; bootRuns?: number }
  peers: Record<string, string>
  /** Absent when only the boot part ran (it does not read the 1 GiB image). */
  sourceSeq: number
  local?: LocalResults
  remote?: Record<string, RemoteCondition>
  /** The sequential read over kernel TCP (part http-kernel). */
  kernelTcp?: { http: KernelCondition }
  rss?: RssResults
  fleet?: FleetResults
  failover?: FailoverResults
  boot?: BootResults
  targets?: Target[]
  seconds?: number
  load?: { before: number; after: number }
  ok?: boolean
}

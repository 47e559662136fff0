// Types only (no results.mjs): the shape of one run's results, the object run.mjs writes to
// bench/results/*.json and that targets.mjs and report.mjs read. bench/README.md describes each field.

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
  seq1: { mbps: number; bytesRead: number; fetched: number; fetchPerByte: number; gets: number; connections: number }
  seq4: { mbps: number; bytesRead: number; fetched: number; fetchPerByte: number }
  warm: { mbps: number; bytesRead: number; fetched: number }
  rand1: RemoteRand
  rand8: RemoteRand
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
}

export interface LocalMount {
  seqCold: number
  seqWarm: number
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
  seconds?: number
}

export interface RssResults {
  cacheMiB: number
  mbps: number
  bytesRead: number
  fetchPerByte: number
  peakRssMiB?: number | undefined
  peakWithCheckMiB?: number | undefined
  sliceOk: boolean
  exit: number | string | null
  ok: boolean
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
  settings: { fioSeconds: number; seqSeconds: number; rawRateSeconds: number; rttMs: number; rssCacheMiB: number; seqDaemons: number }
  peers: Record<string, string>
  sourceSeq: number
  local?: LocalResults
  remote?: Record<string, RemoteCondition>
  rss?: RssResults
  targets?: Target[]
  seconds?: number
  load?: { before: number; after: number }
  ok?: boolean
}

import type { Target } from './results.mjs'

/** One read of checked-reads.mjs: kind ('s' sequential, 'r' random), start (epoch ms), ms, wrong bytes, error. */
export type CheckedRead = [kind: 's' | 'r', at: number, ms: number, wrong: number, error: string | null]

export interface FailoverRow {
  run: string
  reads: number
  errors: number
  firstError: string | undefined
  wrongBytes: number
  seqSeconds: number
  randomP50Ms: number | undefined
  randomP99Ms: number | undefined
  seqP50Ms: number | undefined
  seqP99Ms: number | undefined
  maxMs: number
  /** Only for a run with a stop. */
  stoppedAfterSeconds?: number
  failoverMs?: number | undefined
  stopToAnswerMs?: number | undefined
  requestToAnswerMs?: number | undefined
  longestAfterStopMs?: number
  mirrorRequests?: number[]
}

export interface BootRow {
  run: string
  readySeconds: number
  failedUnits: number
  guestBytes: number | undefined
  /** The daemon's error lines: reads it failed. */
  errors: number
  stoppedAfterSeconds?: number
  failoverMs?: number | undefined
  stopToAnswerMs?: number | undefined
  requestToAnswerMs?: number | undefined
}

export interface PooledLatency {
  reads: number
  randomP99Ms: number | undefined
  seqP99Ms: number | undefined
}

export interface FailoverResults {
  rttMs: number
  imageBytes: number
  mirrors: number
  randomReaders: number
  rows: FailoverRow[]
  /** The p99s of every run's reads of one kind pooled. */
  pooled: { undisturbed: PooledLatency; stopped: PooledLatency }
  /** The guest's boots through the mirrors, or why there were none. */
  boots?: { accel?: string; note?: string; rows: BootRow[] }
}

export declare const FAILOVER_LIMIT_MS: number
export declare const FAILOVER_P99_LIMIT: number
export declare function failoverRow(run: string, reads: CheckedRead[], options?: { stoppedAt?: number | undefined; log?: string; from?: string | undefined }): FailoverRow
export declare function pooledLatency(reads: CheckedRead[]): PooledLatency
export declare function bootRow(run: string, boot: { readyMs: number; startedAt: number; failedUnitCount: number; guestRead?: { bytes: number } | undefined }, options?: { stoppedAt?: number | undefined; log?: string; from?: string | undefined }): BootRow
export declare function bootReport(boots: { rows: BootRow[] }): string
export declare function failoverAfter(log: string, stoppedAt: number, from?: string): { failoverMs: number | undefined; stopToAnswerMs: number | undefined; requestToAnswerMs: number | undefined }
export declare function failoverLine(log: string, stoppedAt: number, from?: string): { at: number; failoverMs: number | undefined } | undefined
export declare function failoverReport(failover: FailoverResults): string
export declare function failoverSection(failover: FailoverResults): string
export declare function failoverTargets(failover: FailoverResults | undefined): Target[]

import type { Target } from './results.mjs'

export interface FleetRow {
  tier: boolean
  /** The tier's slice size when the run compared sizes (--fleet-slices); absent: the shipped config's. */
  slice?: string
  daemons: number
  bytesOk: boolean
  originBytes: number
  originRequests: number
  p50Seconds: number
  p99Seconds: number
  maxSeconds: number
}

export interface FleetResults {
  rttMs: number
  reads: number
  read: number
  unique: number
  rows: FleetRow[]
}

export declare const STORM_ORIGIN_LIMIT: number
export declare const STORM_P99_LIMIT: number
export declare function fleetReport(fleet: FleetResults): string
export declare function fleetSection(fleet: FleetResults): string
export declare function fleetTargets(fleet: FleetResults | undefined): Target[]

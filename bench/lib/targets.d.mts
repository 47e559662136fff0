import type { BenchResults, Target } from './results.mjs'

/** Issue 17's limits on the daemon's CPU seconds per GiB of a sequential read, per protocol. */
export declare const CPU_LIMITS: { http: number; s3: number }
/** Issue 17's limit on start to mounted, in ms. */
export declare const START_LIMIT_MS: number

/** Every target of issues 5 and 17 as PASS, FAIL or n/a, from one run's results. */
export declare function evaluateTargets(results: BenchResults): Target[]
/** Issue 16's limits on a cold boot at RTT_MS: x local file, x best peer, server bytes x guest bytes. */
export declare const BOOT_LIMITS: { overLocal: number; overBestPeer: number; bytesOverGuest: number }

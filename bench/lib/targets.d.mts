import type { BenchResults, Target } from './results.mjs'

/** Issue 17's limits on the daemon's CPU seconds per GiB of a sequential read, per protocol. */
export declare const CPU_LIMITS: { http: number; s3: number }
/** Issue 17's limit on start to mounted, in ms. */
export declare const START_LIMIT_MS: number

/** Issue 20: the least sequential ratio with a manifest, and the most it may add to a random read's p50 (ms). */
export declare const MANIFEST_SEQ_RATIO: number
export declare const MANIFEST_P50_SLACK_MS: number

/** Every target of issues 5, 17 and 20 as PASS, FAIL or n/a, from one run's results. */
export declare function evaluateTargets(results: BenchResults): Target[]
/** Issue 16's limits on a cold boot at RTT_MS: x local file, x best peer, server bytes x guest bytes. */
export declare const BOOT_LIMITS: { overLocal: number; overBestPeer: number; bytesOverGuest: number }

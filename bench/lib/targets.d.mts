import type { BenchResults, Target } from './results.mjs'

/** Every target of issue 5 as PASS, FAIL or n/a, from one run's results. */
export declare function evaluateTargets(results: BenchResults): Target[]

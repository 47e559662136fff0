export interface TraceRead {
  ms: number
  offset: number
  length: number
}
export interface Run {
  firstBlock: number
  blockCount: number
  atMs: number
}
export declare const PROFILE_BLOCK_BYTES: number
export declare function runsFromReads(reads: TraceRead[], blockBytes?: number): Run[]
export declare function randomRuns(runs: Run[], imageBytes: number, seed: number, blockBytes?: number): Run[]
export declare function validatorFromLog(log: string): string | undefined

export declare function median(values: ReadonlyArray<number | undefined>): number | undefined
export declare function max(values: ReadonlyArray<number | undefined>): number | undefined
export declare function min(values: ReadonlyArray<number | undefined>): number | undefined
/** The nearest-rank `p`th percentile (0-100] of the defined values; undefined if none. */
export declare function percentile(values: ReadonlyArray<number | undefined>, p: number): number | undefined

type Maybe = number | undefined

export declare function fmt(value: Maybe): string
export declare function fmtMs(value: Maybe): string
export declare function fmtAmp(value: Maybe): string
export declare function fmtKib(value: Maybe): string
export declare function fmtCount(value: Maybe): string
export declare function fmtCpu(value: Maybe): string
export declare function fmtShare(value: Maybe): string
export declare function okOr(ok: boolean | undefined): string
export declare function latency(r: { p50Ms?: Maybe; p99Ms?: Maybe } | undefined): string
/** Rows of cells (the first the header) as a markdown table, columns padded to their widest cell. */
export declare function table(rows: string[][]): string

/** One read of the guest's disk: ms from QEMU's start, offset and length in bytes. */
export interface TraceRead {
  ms: number
  offset: number
  length: number
}

/** A histogram bucket: reads of at most `upTo` bytes (and more than the bucket before's). */
export interface SizeClass {
  upTo: number
  reads: number
  bytes: number
}

export interface ReadSummary {
  reads: number
  bytes: number
  /** Bytes of the image covered, each once. */
  distinctBytes: number
  /** Reads that started where the one before ended. */
  sequential: number
  /** The last read's `ms`. */
  lastMs: number
  sizes: SizeClass[]
  /** Bytes read per 64th of the image, by where each read starts. */
  spread: number[]
  imageBytes: number
}

/** The trace file's text: `header` lines as '# …' comments, then `MS OFFSET LENGTH` per read. */
export declare function formatTrace(reads: readonly TraceRead[], header?: readonly string[]): string
/** The reads of a trace file; throws on a line that is neither a comment nor a read. */
export declare function parseTrace(text: string): TraceRead[]
export declare function summarizeReads(reads: readonly TraceRead[], imageBytes: number): ReadSummary
/** The summary as printed lines (totals, size histogram, spread strip). */
export declare function formatSummary(summary: ReadSummary): string[]

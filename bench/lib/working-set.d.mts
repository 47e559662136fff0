export interface Read {
  offset: number
  length: number
}

/** The reads of a boot, in order: seeded, 4 KiB-aligned, within the first `spanBytes` of an image. */
export declare function bootWorkingSet(spanBytes: number, seed?: number): Read[]
/** Bytes read, and bytes of the image touched at least once (4 KiB pages). */
export declare function workingSetBytes(reads: readonly Read[]): { read: number; unique: number }
/** fio's version 2 iolog replaying `reads` on `path`. */
export declare function fioIolog(path: string, reads: readonly Read[]): string
export declare const WORKING_SET_SPAN_BYTES: number

/**
 * What the block cache has done since the daemon started, for metrics and `snapmount status`.
 * Counters only grow; `bytesInUse` and `capacityBytes` are levels.
 */
export interface CacheStats {
  /** Reads (or parts of reads) answered from cached blocks. */
  hits: number
  /** Blocks a read needed that were not cached and had to be fetched. */
  misses: number
  /** Extents (the blocks one fetch brought, the unit of eviction) dropped to stay under the bound. */
  evictions: number
  /** Bytes of blocks held now (fully fetched and validated). */
  bytesInUse: number
  /** Bytes set aside for fetches in flight. */
  bytesReserved: number
  /** The hard bound on bytesInUse plus bytesReserved. */
  capacityBytes: number
  /** Fetch buffers held outside the cache's buffer arena (it had no free run long enough). */
  bytesApart: number
  /** Requests sent to the source, and the bytes they brought (demand and readahead). */
  fetches: number
  fetchedBytes: number
  /** Of fetchedBytes, how many were fetched ahead of any read (readahead). */
  readaheadBytes: number
}

/**
 * Every metric snapmount exports, in one place (mountpoint-s3's `metrics/defs.rs`): the name, its
 * labels and the help text Prometheus shows. The README's metrics table lists the same series.
 *
 * Per snapshot (label `snapshot`): what readers of the mount asked for and got, measured above
 * the cache, so a cache hit counts as a fast read; with a manifest, the blocks checked against it.
 * Per backend (label `snapshot`, HTTP and S3
 * only): every request attempt the backend made to its server, retries included. Cache: the
 * shared block cache's own counters, read when scraped; disk cache: likewise, with cache_dir set.
 * Per mirror (labels `snapshot` and `source`, snapshots with several sources only): each source's
 * state and counts, read when scraped. Per snapshot with a boot profile (prefetch_profile): what
 * it prefetched and what of that was read, read when scraped.
 */
export const METRICS = {
  snapshotInfo: { name: 'snapmount_snapshot_info', help: 'Always 1 for each mounted snapshot; labels name its backend type' },
  snapshotSize: { name: 'snapmount_snapshot_size_bytes', help: 'Size of each mounted snapshot in bytes' },
  reads: { name: 'snapmount_reads_total', help: 'Reads of a snapshot that finished, successful or not' },
  readBytes: { name: 'snapmount_read_bytes_total', help: 'Bytes returned by successful reads of a snapshot' },
  readErrors: { name: 'snapmount_read_errors_total', help: 'Reads of a snapshot that failed (the reader got EIO)' },
  readDuration: { name: 'snapmount_read_duration_seconds', help: 'Time one read of a snapshot took, failed ones included' },
  readsInFlight: { name: 'snapmount_reads_in_flight', help: 'Reads of a snapshot started and not yet finished' },
  backendRequests: { name: 'snapmount_backend_requests_total', help: 'Request attempts a remote backend made (HEAD, ranged GET, GetObject), by result' },
  backendBytes: { name: 'snapmount_backend_bytes_total', help: 'Body bytes remote backend requests delivered' },
  backendDuration: { name: 'snapmount_backend_request_duration_seconds', help: 'Time one remote request attempt took' },
  backendRetries: { name: 'snapmount_backend_retries_total', help: 'Failed remote request attempts that were retried' },
  mirrorUp: { name: 'snapmount_mirror_up', help: 'Per source of a mirrored snapshot: 1 while healthy, 0 while failing (out of use until a probe read succeeds)' },
  mirrorLatency: { name: 'snapmount_mirror_latency_seconds', help: 'Per source of a mirrored snapshot: the moving average (EWMA) of its request latency that ranks it' },
  mirrorRequests: { name: 'snapmount_mirror_requests_total', help: 'Per source of a mirrored snapshot: requests it answered (ok) or failed (error)' },
  mirrorHedgesLost: { name: 'snapmount_mirror_hedges_lost_total', help: 'Per source of a mirrored snapshot: requests another source answered first (it was slow)' },
  mirrorBadBlocks: { name: 'snapmount_mirror_bad_blocks_total', help: 'Per source of a mirrored snapshot with a manifest: blocks it sent that failed their digest (asked from another source)' },
  cacheHits: { name: 'snapmount_cache_hits_total', help: 'Reads (or parts of reads) the block cache answered' },
  cacheMisses: { name: 'snapmount_cache_misses_total', help: 'Blocks a read needed that the cache had to fetch' },
  cacheEvictions: { name: 'snapmount_cache_evictions_total', help: 'Extents (the blocks one request fetched, evicted together) the cache dropped to stay under its bound' },
  cacheBytes: { name: 'snapmount_cache_bytes', help: 'Bytes of blocks the cache holds now' },
  cacheCapacity: { name: 'snapmount_cache_capacity_bytes', help: 'The hard bound on snapmount_cache_bytes' },
  cacheFetchedBytes: { name: 'snapmount_cache_fetched_bytes_total', help: 'Bytes the cache fetched from sources, readahead included' },
  cacheReadaheadBytes: { name: 'snapmount_cache_readahead_bytes_total', help: 'Of the fetched bytes, those fetched ahead of any read' },
  diskHits: { name: 'snapmount_disk_cache_hits_total', help: 'Blocks read from the disk cache that passed their check' },
  diskMisses: { name: 'snapmount_disk_cache_misses_total', help: 'Blocks a read needed that were not in the disk cache (fetched from the source)' },
  diskVerifyFailures: { name: 'snapmount_disk_cache_verify_failures_total', help: 'Blocks read from the disk cache that failed their check (torn, truncated, zeroed, edited): dropped and fetched again' },
  diskEvictions: { name: 'snapmount_disk_cache_evictions_total', help: 'Blocks the disk cache removed to stay under its bound' },
  diskWrittenBytes: { name: 'snapmount_disk_cache_written_bytes_total', help: 'Bytes of blocks written to the disk cache' },
  diskWriteErrors: { name: 'snapmount_disk_cache_write_errors_total', help: 'Disk cache writes or index commits that failed (ENOSPC, EACCES, EIO); the blocks stay uncached' },
  diskBytes: { name: 'snapmount_disk_cache_bytes', help: 'Bytes of block files in the disk cache now' },
  diskCapacity: { name: 'snapmount_disk_cache_capacity_bytes', help: 'The bound on snapmount_disk_cache_bytes (disk_cache_size_gib)' },
  blocksVerified: { name: 'snapmount_manifest_blocks_verified_total', help: 'Blocks fetched, checked against the snapshot\'s manifest and passed on' },
  blockMismatches: { name: 'snapmount_manifest_mismatches_total', help: 'Fetches of a block whose digest did not match the manifest, retried ones included' },
  prefetchedBytes: { name: 'snapmount_prefetch_bytes_total', help: 'Bytes a snapshot\'s boot profile prefetched into the block cache' },
  prefetchHits: { name: 'snapmount_prefetch_hit_blocks_total', help: 'Prefetched blocks that readers then read' },
  prefetchHitBytes: { name: 'snapmount_prefetch_hit_bytes_total', help: 'Bytes of the prefetched blocks readers then read' },
  prefetchWastedBytes: { name: 'snapmount_prefetch_wasted_bytes', help: 'Prefetched bytes no reader has read: evicted unread, or still waiting in the cache' },
  prefetchEvictedBytes: { name: 'snapmount_prefetch_evicted_bytes', help: 'Of the wasted bytes, those evicted before any reader got to them' },
  prefetchFailures: { name: 'snapmount_prefetch_failures_total', help: 'Prefetches that failed (skipped; readers never see them)' },
  prefetchProfileAge: { name: 'snapmount_prefetch_profile_age_seconds', help: 'Seconds since the boot profile in use was recorded' },
  blockFailures: { name: 'snapmount_manifest_failed_blocks_total', help: 'Blocks that matched the manifest on no attempt: the reads that needed them failed (EIO)' },
} as const

/** Label names, shared by the series that carry them. */
export const LABELS = { snapshot: 'snapshot', type: 'type', result: 'result', source: 'source' } as const

/**
 * Read latency buckets in seconds: from a page-cache-cold local read (~100 µs) to a remote read
 * that used its whole retry budget (read_timeout_ms is at most 14 s).
 */
export const READ_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15]

/** Remote request buckets in seconds: one loopback round trip (~0.5 ms) to a request's timeout. */
export const REQUEST_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

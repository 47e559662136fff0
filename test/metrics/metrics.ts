import t from 'tap'
import { request } from 'node:http'
import { SnapmountMetrics } from '../../src/metrics/metrics.js'
import { serveMetrics } from '../../src/metrics/server.js'
import { MeteredBackend } from '../../src/metrics/metered-backend.js'
import { METRICS } from '../../src/metrics/names.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import type { CacheStats } from '../../src/cache/cache-stats.js'

const quiet = { info: () => {}, warn: () => {}, error: () => {} }

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode!, type: String(response.headers['content-type']), body }))
    })
      .on('error', reject)
      .end()
  })
}

t.test('the series: reads and remote requests as they happen, snapshots and the cache when scraped', async (t) => {
  const metrics = new SnapmountMetrics()
  const metered = new MeteredBackend(new MemoryBackend(Buffer.alloc(100)), 'http', metrics.readObserver('disk'))
  const plain = { name: 'other', backend: new MemoryBackend(Buffer.alloc(7)) }
  metrics.attach({ snapshots: () => [{ name: 'disk', backend: metered }, plain] })

  await metered.readExact(0, 10)
  await t.rejects(metered.readExact(95, 10))
  const remote = metrics.remoteObserver('disk')
  remote.request({ durationMs: 3, bytes: 10, failed: false })
  remote.request({ durationMs: 5, bytes: 0, failed: true })
  remote.retry()

  const server = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 }, quiet)
  t.teardown(() => server.close())
  const { status, type, body } = await get(server.url)
  t.equal(status, 200)
  t.match(type, /^text\/plain/)
  t.match(body, /^snapmount_snapshot_info\{snapshot="disk",type="http"\} 1$/m)
  t.match(body, /^snapmount_snapshot_info\{snapshot="other",type="unknown"\} 1$/m)
  t.match(body, /^snapmount_snapshot_size_bytes\{snapshot="other"\} 7$/m)
  t.match(body, /^snapmount_reads_total\{snapshot="disk"\} 2$/m)
  t.match(body, /^snapmount_read_bytes_total\{snapshot="disk"\} 10$/m)
  t.match(body, /^snapmount_read_errors_total\{snapshot="disk"\} 1$/m)
  t.match(body, /^snapmount_read_duration_seconds_count\{snapshot="disk"\} 2$/m)
  t.match(body, /^snapmount_reads_in_flight\{snapshot="disk"\} 0$/m)
  t.match(body, /^snapmount_backend_requests_total\{snapshot="disk",result="ok"\} 1$/m)
  t.match(body, /^snapmount_backend_requests_total\{snapshot="disk",result="error"\} 1$/m)
  t.match(body, /^snapmount_backend_bytes_total\{snapshot="disk"\} 10$/m)
  t.match(body, /^snapmount_backend_request_duration_seconds_count\{snapshot="disk"\} 2$/m)
  t.match(body, /^snapmount_backend_retries_total\{snapshot="disk"\} 1$/m)
  t.match(body, /^process_cpu_seconds_total /m, "Node's process series beside ours")
  t.notMatch(body, /^snapmount_cache_hits_total \d/m, 'no cache, no cache series')

  const stats: CacheStats = { hits: 5, misses: 2, evictions: 1, bytesInUse: 4096, bytesReserved: 0, capacityBytes: 1 << 20, fetches: 3, fetchedBytes: 8192, readaheadBytes: 4096, bytesApart: 0 }
  metrics.attach({ snapshots: () => [], cache: { stats: () => stats } })
  const withCache = (await get(server.url)).body
  for (const [metric, value] of [[METRICS.cacheHits, 5], [METRICS.cacheMisses, 2], [METRICS.cacheEvictions, 1], [METRICS.cacheBytes, 4096], [METRICS.cacheCapacity, 1 << 20], [METRICS.cacheFetchedBytes, 8192], [METRICS.cacheReadaheadBytes, 4096]] as const) {
    t.match(withCache, new RegExp(`^${metric.name} ${value}$`, 'm'), metric.name)
  }
  t.notMatch(withCache, /snapmount_snapshot_info\{/, 'a snapshot gone from the list is gone from the info series')
  metrics.attach({ snapshots: () => [] })
  t.match((await get(server.url)).body, /^snapmount_cache_hits_total 0$/m, 'a cache gone reads as zeros')

  t.equal((await get(server.url, 'HEAD')).status, 200, 'HEAD works')
  t.equal((await get(server.url.replace('/metrics', '/'))).status, 404, 'other paths are not found')
  t.equal((await get(server.url, 'POST')).status, 404, 'other methods neither')
})

t.test('scraped before the file system is attached: the series, with no snapshots in them', async (t) => {
  const { body } = await new SnapmountMetrics().scrape()
  t.match(body, /^# TYPE snapmount_snapshot_info gauge$/m, 'the series are declared')
  t.notMatch(body, /^snapmount_snapshot_(info|size_bytes)\{/m, 'but list no snapshot')
  t.notMatch(body, /^snapmount_cache_/m, 'and no cache')
})

t.test('an address that cannot be bound rejects', async (t) => {
  const metrics = new SnapmountMetrics()
  const first = await serveMetrics(metrics, { host: '127.0.0.1', port: 0 }, quiet)
  t.teardown(() => first.close())
  const port = Number(new URL(first.url).port)
  await t.rejects(serveMetrics(metrics, { host: '127.0.0.1', port }, quiet), { code: 'EADDRINUSE' })
  const v6 = await serveMetrics(metrics, { host: '::1', port: 0 }, quiet).catch(() => undefined)
  if (v6) {
    t.match(v6.url, /^http:\/\/\[::1\]:\d+\/metrics$/, 'IPv6 addresses in brackets')
    await v6.close()
  }
})

t.test("a snapshot's manifest counts (its verifying layer's inspect) are copied when scraped", async (t) => {
  const metrics = new SnapmountMetrics()
  const integrity = { verifiedBlocks: 40, mismatches: 3, failedBlocks: 1 }
  const verified = { name: 'disk', backend: { length: 100, inspect: () => ({ integrity }) } }
  metrics.attach({ snapshots: () => [verified, { name: 'plain', backend: new MemoryBackend(Buffer.alloc(7)) }] })
  const { body } = await metrics.scrape()
  t.match(body, /^snapmount_manifest_blocks_verified_total\{snapshot="disk"\} 40$/m)
  t.match(body, /^snapmount_manifest_mismatches_total\{snapshot="disk"\} 3$/m)
  t.match(body, /^snapmount_manifest_failed_blocks_total\{snapshot="disk"\} 1$/m)
  t.notMatch(body, /snapmount_manifest_mismatches_total\{snapshot="plain"\}/, 'no manifest, no series')
})

t.test('mirrors: each source of a mirrored snapshot, read from inspect() when scraped', async (t) => {
  const metrics = new SnapmountMetrics()
  const mirrored = {
    length: 100,
    inspect: () => ({
      mirrors: [
        { source: 'http://a/d.img', state: 'healthy' as const, latencyMs: 2.5, errorRate: 0, requests: 7, errors: 1, hedgesLost: 2, badBlocks: 4 },
        { source: 's3://b/d.img', state: 'failing' as const, latencyMs: null, errorRate: 1, requests: 0, errors: 3, hedgesLost: 0, badBlocks: 0 },
      ],
    }),
  }
  metrics.attach({ snapshots: () => [{ name: 'disk', backend: mirrored }, { name: 'plain', backend: new MemoryBackend(Buffer.alloc(1)) }] })
  const { body } = await metrics.scrape()
  t.match(body, /^snapmount_mirror_up\{snapshot="disk",source="http:\/\/a\/d.img"\} 1$/m)
  t.match(body, /^snapmount_mirror_up\{snapshot="disk",source="s3:\/\/b\/d.img"\} 0$/m)
  t.match(body, /^snapmount_mirror_latency_seconds\{snapshot="disk",source="http:\/\/a\/d.img"\} 0.0025$/m)
  t.notMatch(body, /^snapmount_mirror_latency_seconds\{snapshot="disk",source="s3/m, 'no latency before a sample')
  t.match(body, /^snapmount_mirror_requests_total\{snapshot="disk",source="http:\/\/a\/d.img",result="ok"\} 7$/m)
  t.match(body, /^snapmount_mirror_requests_total\{snapshot="disk",source="s3:\/\/b\/d.img",result="error"\} 3$/m)
  t.match(body, /^snapmount_mirror_hedges_lost_total\{snapshot="disk",source="http:\/\/a\/d.img"\} 2$/m)
  t.match(body, /^snapmount_mirror_bad_blocks_total\{snapshot="disk",source="http:\/\/a\/d.img"\} 4$/m)
  t.notMatch(body, /snapshot="plain",source=/, 'a snapshot with one source has no mirror series')
})

t.test("prefetch: each boot profile's prefetch, read from inspect() when scraped", async (t) => {
  const metrics = new SnapmountMetrics()
  const prefetch = { state: 'done' as const, profile: '/p.json', profileBytes: 900, prefetchedBytes: 800, hitBlocks: 6, hitBytes: 600, wastedBytes: 200, evictedBytes: 50, ageSeconds: 3600, failures: 1 }
  const loading = { ...prefetch, state: 'loading' as const, prefetchedBytes: 0, ageSeconds: null }
  metrics.attach({ snapshots: () => [
    { name: 'disk', backend: { length: 100, inspect: () => ({ prefetch }) } },
    { name: 'early', backend: { length: 100, inspect: () => ({ prefetch: loading }) } },
    { name: 'plain', backend: new MemoryBackend(Buffer.alloc(1)) },
  ] })
  const { body } = await metrics.scrape()
  t.match(body, /^snapmount_prefetch_bytes_total\{snapshot="disk"\} 800$/m)
  t.match(body, /^snapmount_prefetch_hit_blocks_total\{snapshot="disk"\} 6$/m)
  t.match(body, /^snapmount_prefetch_hit_bytes_total\{snapshot="disk"\} 600$/m)
  t.match(body, /^snapmount_prefetch_wasted_bytes\{snapshot="disk"\} 200$/m)
  t.match(body, /^snapmount_prefetch_evicted_bytes\{snapshot="disk"\} 50$/m)
  t.match(body, /^snapmount_prefetch_failures_total\{snapshot="disk"\} 1$/m)
  t.match(body, /^snapmount_prefetch_profile_age_seconds\{snapshot="disk"\} 3600$/m)
  t.match(body, /^snapmount_prefetch_bytes_total\{snapshot="early"\} 0$/m)
  t.notMatch(body, /snapmount_prefetch_profile_age_seconds\{snapshot="early"\}/, 'no age before the profile is loaded')
  t.notMatch(body, /snapshot="plain"\}.*\n?.*prefetch|snapmount_prefetch_[a-z_]+\{snapshot="plain"\}/, 'no profile, no series')
})

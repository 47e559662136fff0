// The bench's fixed sizes and bounds (module constants: they never change within a run) and the
// settings read from the environment once, in run.mjs, and passed down (benchSettings).

import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root: bin/snapmount, dist/ and bench/results/ are found from it. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')
export const RESULTS_DIR = join(ROOT, 'bench/results')
export const SNAPMOUNT = join(ROOT, 'bin/snapmount')
/** /var/tmp survives reboots and is on disk, not tmpfs: the cached images are reused across runs. */
export const DEFAULT_BENCH_DIR = '/var/tmp/snapmount-bench'
/** 1 GiB: a sequential read from page cache lasts long enough (~0.1 s+) for the clocks to mean something. */
export const IMAGE_BYTES = 2 ** 30
/**
 * The rss part's image: the same keystream continued to 4 GiB (its first GiB is the 1 GiB image's
 * bytes). Real bytes, not a sparse file, so the server and the daemon do their real work.
 */
export const BIG_IMAGE_BYTES = 4 * 2 ** 30
/** The key of snapmount with an integrity manifest (issue 20) among a remote condition's mounts. */
export const MANIFEST_KEY = 'snapmount-manifest'
/** File name of the image inside each snapmount mount. */
export const NAME = 'img'
/** A daemon that has not said "mounted" or exited by then is reported as hung. */
export const DAEMON_TIMEOUT_MS = 15_000
/**
 * A daemon's work (reads and checks; ~15 s at most for the slowest peer) longer than this means a
 * hung mount: QEMU 7.2's curl driver, straight to nginx on loopback, sometimes never answers a
 * read (fio stuck in D state for minutes). The daemon is killed, which fails the reads stuck in
 * the kernel, and the mount is reported as not measured. The rss part gives its read longer.
 */
export const WORK_TIMEOUT_MS = 60_000
/** The source's buffered sequential read is short and noisy: the median of this many is reported. */
export const SOURCE_SEQ_RUNS = 3
/** The configured round trip of the distant condition, and the targets' RTT. */
export const RTT_MS = 10
/**
 * The proxy may release a chunk this much before it is due: Node's timers tick in whole ms and
 * often fire a fraction early, and without slack each hop would wait a whole extra tick. Measured
 * here: 5 ms asked, 5.1-5.5 ms given (p10-p90).
 */
export const PROXY_TIMER_SLACK_MS = 0.5
/**
 * What one proxied connection may have in flight each way (tools/delay-proxy.mjs's windowBytes):
 * a real 10 ms link carries one TCP stream at window / RTT, and without this bound one stream
 * through the proxy ran at ~0.9-1.2 GB/s. Calibrated on the measurement of one curl stream
 * over a real 10 ms link on these machines (netem): ~310 MB/s, i.e. ~3.1 MB in flight. It agrees
 * with the kernel: a sender keeps at most its send buffer in flight (net.ipv4.tcp_wmem's maximum,
 * 4 MiB here), and Linux refills that buffer only once a third of it is free.
 */
export const PROXY_WINDOW_BYTES = 3 * 1024 * 1024
/** The rss part's daemon runs with this cache bound: the target is this plus 100 MiB. */
export const RSS_CACHE_MIB = 256
export const RSS_SLACK_MIB = 100
/** Readers in the "4 readers" sequential row, each on its own quarter of the image. */
export const SEQ_READERS = 4
/** nginx's temp dirs: the bench's own prefix, so clearing a killed run's nginx touches no test's. */
export const NGINX_PREFIX = 'snapmount-bench-nginx-'
/** The bench's own temp prefixes, so clearing a killed run's leftovers touches no test's. */
export const RADOSGW_PREFIX = 'snapmount-bench-radosgw-'
export const TEMP_PREFIX = 'snapmount-bench-s3-'
/** The kernel-TCP part's network namespace (tools/delay-netns.mjs), cleared when a killed run left it. */
export const NETNS_PREFIX = 'snapmount-bench-netns-'

/**
 * What the environment decides, read once at the edge (run.mjs) and passed down:
 * SNAPMOUNT_BENCH_QUICK=1 halves every timed measurement (for iterating, not for quoting);
 * SNAPMOUNT_BENCH_DIR moves the images and mountpoints.
 */
export function benchSettings(env) {
  const quick = env.SNAPMOUNT_BENCH_QUICK === '1'
  const benchDir = env.SNAPMOUNT_BENCH_DIR ?? DEFAULT_BENCH_DIR
  return Object.freeze({
    quick,
    benchDir,
    /** The name says how the bytes were made, so a change of generator never reuses a stale image. */
    imagePath: join(benchDir, 'image-1GiB-aes128ctr-v1.raw'),
    bigImagePath: join(benchDir, 'image-4GiB-aes128ctr-v1.raw'),
    /** Per fio random-read run: 4 s is >300 reads even at 10 ms with one reader, enough for a p99. */
    fioSeconds: quick ? 2 : 4,
    /**
     * A sequential read stops at the end of its bytes or after this long: at 10 ms a slow peer
     * (~10-25 MB/s) would otherwise take a minute per GiB. What it read is what the rows report.
     */
    seqSeconds: quick ? 3 : 6,
    /** The raw clients' 4 KiB rate loops. */
    rawRateSeconds: quick ? 2 : 3,
    /** Cold daemons per local backend for the sequential reads; each costs ~0.3 s to start plus two reads. */
    seqDaemons: quick ? 1 : 3,
    /** Daemons started and stopped, nothing read, per mount for the start table: its median and spread. */
    startRuns: quick ? 3 : 7,
  })
}

/**
 * The environment of every child: the caller's, without proxy settings. The remote parts'
 * traffic must go straight to 127.0.0.1, and snapmount, curl and rclone would honour an http_proxy.
 */
export function withoutProxyVariables(env) {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)))
}

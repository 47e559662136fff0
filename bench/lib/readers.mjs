// The readers every measurement runs against a mount or a source file, each a child process (fio,
// dd, sha256sum): an access from this process would tie the numbers to its event loop.

import { createHash } from 'node:crypto'

/** fio on one file, psync, its JSON's read side (group_reporting: all jobs together). */
async function fio(procs, path, args) {
  const { stdout } = await procs.run('fio', [
    '--name=bench',
    `--filename=${path}`,
    '--readonly',
    '--ioengine=psync',
    // fio's default invalidate=1 drops the file's page cache before each job, which would turn a
    // warm measurement into a cold one and cool the source for later mounts.
    '--invalidate=0',
    // No POSIX_FADV_SEQUENTIAL/RANDOM hint: the kernel's readahead as a plain reader (dd, QEMU) gets it.
    '--fadvise_hint=0',
    '--group_reporting',
    '--output-format=json',
    ...args,
  ])
  // fio may print notices before the JSON document.
  const report = JSON.parse(stdout.slice(stdout.indexOf('{')))
  const job = report.jobs?.[0]
  if (!job || job.error) throw new Error(`fio reported error ${job?.error} for ${path}`)
  return job.read
}

/**
 * A buffered sequential read in 1 MiB reads by `jobs` readers, reader i from i × bytesEach for
 * bytesEach bytes, stopping early after `seconds` if given: bytes read and aggregate MB/s (10^6 B/s).
 */
export async function fioSeq(procs, path, { jobs = 1, bytesEach, seconds }) {
  const read = await fio(procs, path, [
    '--rw=read',
    '--bs=1M',
    '--direct=0',
    `--size=${bytesEach}`,
    `--offset_increment=${bytesEach}`,
    `--numjobs=${jobs}`,
    ...(seconds ? [`--runtime=${seconds}`] : []),
  ])
  return { bytes: read.io_bytes, mbps: read.bw_bytes / 1e6 }
}

/**
 * 4 KiB random reads at 4 KiB-aligned offsets by `jobs` readers (each its own descriptor) for
 * `seconds`: IOPS, bytes read, and fio's completion-latency percentiles in ms.
 */
export async function fioRand(procs, path, { jobs, direct = true, seconds }) {
  const read = await fio(procs, path, [
    '--rw=randread',
    '--bs=4k',
    `--direct=${direct ? 1 : 0}`,
    // No map of blocks already read: random offsets stay random and fio's own overhead stays low.
    '--norandommap',
    '--time_based',
    `--runtime=${seconds}`,
    `--numjobs=${jobs}`,
  ])
  const percentile = read.clat_ns?.percentile ?? {}
  const ms = (key) => (percentile[key] === undefined ? undefined : percentile[key] / 1e6)
  return { iops: read.iops, bytes: read.io_bytes, p50Ms: ms('50.000000'), p99Ms: ms('99.000000') }
}

/** sha256 of a file as sha256sum reads it (buffered: through the page cache). */
export async function sha256File(procs, path) {
  const { stdout } = await procs.run('sha256sum', ['--binary', path])
  return stdout.split(' ')[0]
}

/** sha256 of a file read with O_DIRECT, so every byte comes from the daemon, not the page cache. */
export function sha256Direct(procs, path) {
  return new Promise((resolve, reject) => {
    procs.refuseIfStopping('dd')
    const dd = procs.spawnTool('dd', [`if=${path}`, 'bs=1M', 'iflag=direct', 'status=none'])
    const hash = createHash('sha256')
    let stderr = ''
    dd.stdout.on('data', (chunk) => hash.update(chunk))
    dd.stderr.on('data', (chunk) => (stderr += chunk))
    dd.on('error', reject)
    dd.on('close', (code) => (code === 0 ? resolve(hash.digest('hex')) : reject(new Error(`dd iflag=direct ${path}: ${stderr.trim()}`))))
  })
}

// A throw-away Ceph cluster serving S3 on loopback, for the tests (test/fixtures/radosgw.ts wraps
// it with tap's teardown) and the benchmark's S3 part (bench/run.mjs). Plain JavaScript so the
// bench runs it as is; the types are in radosgw.d.mts.
//
// One monitor, one OSD on memstore (objects in RAM, nothing on disk) and a radosgw, all from
// Debian's packages (radosgw, ceph-mon, ceph-osd; 16.2 on Debian 12). No ceph-mgr: the monitor
// creates pools and placement groups without one, and nothing here needs the mgr's statistics.
//
// A real S3 implementation, unlike an in-process fake: it checks SigV4 signatures (wrong keys get
// 403), answers If-Match with 412, and stores objects past 4 GiB (radosgw stripes them into
// 4 MiB RADOS objects, so 64-bit offsets are exercised end to end).

import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3'
import { freePort } from './free-port.mjs'
import { uploadFile } from './s3-upload.mjs'

export const CEPH_MON = '/usr/bin/ceph-mon'
export const CEPH_OSD = '/usr/bin/ceph-osd'
export const RADOSGW = '/usr/bin/radosgw'
const MONMAPTOOL = '/usr/bin/monmaptool'
const CEPH = '/usr/bin/ceph'
const RADOSGW_ADMIN = '/usr/bin/radosgw-admin'

/** radosgw ignores the region but SigV4 signs it; any name will do. */
const REGION = 'us-east-1'
const DEFAULT_PREFIX = 'snapmount-radosgw-'
/**
 * Measured at 1.1–1.4 s from nothing to a signed ListBuckets on a 2-core machine (13 s with
 * Ceph's default one-second Paxos batching: see paxos_propose_interval below); a minute leaves
 * room for a machine busy with other tests.
 */
const START_WAIT_MS = 60_000
/**
 * Free ports come from binding port 0 and closing it; another process can take one before the
 * monitor or the gateway binds it. Rare, so a few attempts are plenty.
 */
const START_ATTEMPTS = 3
/**
 * What memstore may hold before the OSD calls itself full and refuses writes (ENOSPC). Memory
 * use is about twice what is stored (measured: a 5 GiB object took the OSD to 10 GiB RSS), so
 * this bounds the OSD near 8 GiB of this machine's 24. A sparse image costs little of it: the
 * gateway compresses each 4 MiB chunk before it reaches the OSD (see the compression option).
 */
const MEMSTORE_BYTES = 4 * 2 ** 30
/**
 * radosgw compresses object data on its default placement target with lz4 unless told otherwise.
 * A sparse 5 GiB image is mostly zeros, which shrink ~250:1: the OSD then holds ~80 MB instead
 * of 10 GiB, and the upload is twice as fast (measured: 13–20 s against 43–47 s). Clients cannot
 * tell: ETags are the MD5s of the data as sent, and ranges are cut from the decompressed data.
 */
const DEFAULT_COMPRESSION = 'lz4'

// Should the process exit without stop() (an uncaught error, a test without teardown), the
// daemons must not outlive it; they hold nothing worth a clean shutdown.
const running = new Set()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * The body bytes the gateway sent, from its log (`gatewayLog()`): at Ceph's default level the
 * beast frontend logs each request with its status and bytes sent, `"GET /bucket/key HTTP/1.1" 206
 * 131072`. GETs and HEADs only: the answers to reads.
 */
export function bytesSentFromLog(log) {
  let sent = 0
  for (const match of log.matchAll(/"(?:GET|HEAD) [^"]*" \d{3} (\d+)/g)) sent += Number(match[1])
  return sent
}

/**
 * An S3 client for `server`: path-style, one attempt per call (a test should see the first
 * failure, and a streamed body cannot be sent twice), and checksums only where S3 requires them,
 * since the SDK's default aws-chunked uploads with trailing checksums postdate Ceph 16 (411).
 */
export function s3Client(server, credentials) {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    credentials,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Set, so that AWS_USE_FIPS_ENDPOINT or a profile cannot turn them on: with a custom
    // endpoint the SDK refuses either.
    useFipsEndpoint: false,
    useDualstackEndpoint: false,
  })
}

/**
 * Starts the cluster's daemons in the foreground as child processes, with all their state, logs
 * and sockets in a temp dir (nothing under /etc/ceph, /var/lib/ceph or /var/log/ceph), creates
 * a user with fresh random keys, and resolves once a signed request as that user succeeds.
 * `stop()` kills the daemons and removes the temp dir. See radosgw.d.mts for the options.
 */
export async function startRadosgw(options = {}) {
  const { prefix = DEFAULT_PREFIX, compression = DEFAULT_COMPRESSION, netns } = options
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const daemons = []
  const killAll = () => Promise.all(daemons.map((daemon) => daemon.kill()))
  const deadline = Date.now() + START_WAIT_MS
  const credentials = {
    accessKeyId: `SNAPMOUNT${randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(20).toString('hex'),
  }

  let cluster
  try {
    cluster = await retryLostPortRace(async (attempt) => {
      const clusterDir = join(dir, `attempt-${attempt}`)
      try {
        return { dir: clusterDir, ...(await startCluster(clusterDir, daemons, deadline, credentials, compression, netns)) }
      } catch (err) {
        // A fresh cluster, not just a fresh gateway: a gateway that died leaves its watches on
        // the cluster's control objects, and the next one's first bucket then waits 20 s on them.
        await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()))
        throw err
      }
    })
  } catch (err) {
    await killAll()
    await rm(dir, { recursive: true, force: true })
    throw err
  }

  const { endpoint } = cluster
  const client = s3Client({ endpoint: cluster.clientEndpoint, region: REGION }, credentials)
  let stopped
  return {
    endpoint,
    region: REGION,
    ...credentials,
    client,
    dir,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }))
    },
    uploadFile: (bucket, key, path, options) => uploadFile(client, bucket, key, path, options),
    perfCounters: () => adminCommand(join(cluster.dir, 'run', 'client.rgw.asok'), { prefix: 'perf dump', logger: 'rgw' }).then((dump) => dump.rgw),
    gatewayLog: () => readFile(join(cluster.dir, 'log', 'client.rgw.log'), 'utf8').catch(() => ''),
    stop: () =>
      (stopped ??= (async () => {
        client.destroy()
        await cluster.relay?.close()
        // The daemons go before their files.
        await killAll()
        await rm(dir, { recursive: true, force: true })
      })()),
  }
}

/**
 * Kills every process whose command line names a temp dir `prefix*` (the Ceph daemons and tools
 * a SIGKILLed caller left running: each is given `-c DIR/.../ceph.conf`), then removes those
 * dirs. Returns the dirs cleared. Give a prefix only this caller uses.
 */
export async function clearStaleRadosgw(prefix) {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new TypeError('clearStaleRadosgw: a temp prefix is required')
  const dirs = (await readdir(tmpdir())).filter((name) => name.startsWith(prefix)).map((name) => join(tmpdir(), name))
  if (dirs.length === 0) return []
  const killed = []
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (pid !== process.pid && dirs.some((dir) => cmdline.includes(`${dir}/`))) {
      try {
        process.kill(pid, 'SIGKILL')
        killed.push(pid)
      } catch {
        // Gone meanwhile.
      }
    }
  }
  // A SIGKILLed process is gone within milliseconds; its /proc entry, once reaped, with it.
  for (let waited = 0; waited < 5_000 && (await Promise.all(killed.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')))).some(Boolean); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  return dirs
}

/**
 * Starts the monitor, the OSD and the gateway with all their files in `dir`, inside `netns` when
 * given; resolves with the gateway's endpoint, the endpoint this process reaches it at (through a
 * relay of the namespace's, then also returned) and that relay.
 */
async function startCluster(dir, daemons, deadline, credentials, compression, netns) {
  const fsid = randomUUID()
  const monPort = await freePort()
  const conf = join(dir, 'ceph.conf')
  for (const sub of ['mon', 'osd', 'run', 'crash', 'rgw', 'log']) await mkdir(join(dir, sub), { recursive: true })
  await writeFile(conf, cephConf(dir, fsid, monPort))
  const log = (name) => join(dir, 'log', `${name}.log`)

  const monmap = join(dir, 'monmap')
  await run(MONMAPTOOL, ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap], daemons, deadline, netns)
  await run(CEPH_MON, ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap], daemons, deadline, netns)
  daemons.push(new Daemon('ceph-mon', CEPH_MON, ['-c', conf, '-i', 'a', '-f'], log('mon.a'), netns))

  // `osd new` waits for the monitor to form its one-member quorum, then registers the OSD.
  const osdUuid = randomUUID()
  const id = (await run(CEPH, ['-c', conf, 'osd', 'new', osdUuid], daemons, deadline, netns)).trim()
  await run(CEPH_OSD, ['-c', conf, '-i', id, '--mkfs', '--osd-uuid', osdUuid], daemons, deadline, netns)
  daemons.push(new Daemon('ceph-osd', CEPH_OSD, ['-c', conf, '-i', id, '-f'], log(`osd.${id}`), netns))

  // The first radosgw-admin call waits for the OSD to boot, then creates the gateway's pools and
  // its default zone. The placement is set before the gateway starts, which reads it once.
  const admin = (args) => run(RADOSGW_ADMIN, ['-c', conf, ...args], daemons, deadline, netns)
  await admin(['user', 'create', '--uid=snapmount', '--display-name=snapmount', `--access-key=${credentials.accessKeyId}`, `--secret-key=${credentials.secretAccessKey}`])
  if (compression !== 'none') {
    await admin(['zone', 'placement', 'modify', '--rgw-zone=default', '--placement-id=default-placement', `--compression=${compression}`])
  }

  const port = await freePort()
  const gateway = new Daemon('radosgw', RADOSGW, ['-c', conf, '-n', 'client.rgw', '-f', `--rgw_frontends=beast endpoint=127.0.0.1:${port} tcp_nodelay=1`], log('client.rgw'), netns)
  daemons.push(gateway)
  const endpoint = `http://127.0.0.1:${port}`
  // In a namespace the gateway's 127.0.0.1 is not ours: this process reaches it through a relay.
  const relay = netns ? await netns.forward(port) : undefined
  const clientEndpoint = relay ? `http://127.0.0.1:${relay.port}` : endpoint
  const client = s3Client({ endpoint: clientEndpoint, region: REGION }, credentials)
  try {
    await waitFor(daemons, deadline, 'radosgw to answer a signed request', async () => {
      try {
        await client.send(new ListBucketsCommand({}))
        return true
      } catch (err) {
        // Refused until the gateway listens (a relay into a namespace turns that into a reset).
        if (err.code === 'ECONNREFUSED' || (relay && err.code === 'ECONNRESET')) return false
        // Anything else is a real failure (403: no such user), unless it came from whoever took
        // the port first, in which case the gateway is about to exit failing to bind it.
        await Promise.race([gateway.exited, new Promise((resolve) => setTimeout(resolve, 2_000))])
        if (!gateway.alive) throw new Error(await gateway.exitReport())
        throw err
      }
    })
  } catch (err) {
    await relay?.close()
    throw err
  } finally {
    client.destroy()
  }
  return { endpoint, clientEndpoint, relay }
}

/**
 * One ceph.conf for every daemon and tool. Each path points into the temp dir; without that,
 * Ceph's defaults write under /var/log/ceph, /var/lib/ceph and /var/run/ceph.
 */
function cephConf(dir, fsid, monPort) {
  return `[global]
fsid = ${fsid}
# Named explicitly: without mon_host the tools look for monitors in DNS.
mon_host = v2:127.0.0.1:${monPort}
public_network = 127.0.0.1/32
ms_bind_msgr1 = false
ms_bind_ipv6 = false
# Fail at once on a port taken since freePort() (the default retries three times, 5 s apart).
ms_bind_retry_count = 1
# A throw-away cluster on loopback: no cephx between daemons, and no encryption on the wire
# (the clients' default mode list would otherwise fail to agree with a cluster without cephx).
# S3 clients still sign every request: SigV4 is radosgw's, not cephx's.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_client_mode = crc
ms_cluster_mode = crc
ms_service_mode = crc
# The monitor batches changes for a second by default; the gateway's first start creates its
# pools one after another, each waiting for a batch: 13 s to ready instead of ~1.2 s.
paxos_propose_interval = 0.05
# A host disk that is nearly full is not this cluster's business (below 5% the monitor stops).
mon_data_avail_warn = 1
mon_data_avail_crit = 0
# One OSD: one copy of everything, and few placement groups (radosgw makes 7 pools).
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = ${MEMSTORE_BYTES}
mon_data = ${dir}/mon
osd_data = ${dir}/osd
run_dir = ${dir}/run
admin_socket = ${dir}/run/$name.asok
pid_file = ${dir}/run/$name.pid
crash_dir = ${dir}/crash
log_file = ${dir}/log/$name.log
mon_cluster_log_file = ${dir}/log/cluster.log
# The tools wait this long for the monitor (default 5 minutes); START_WAIT_MS bounds us anyway.
client_mount_timeout = 30

[client.rgw]
rgw_data = ${dir}/rgw
rgw_enable_apis = s3
# Beast's default is 512 threads, each with its own stack; a test needs a few.
rgw_thread_pool_size = 32
`
}

/**
 * One command on a Ceph daemon's admin socket, the protocol `ceph daemon` speaks: the command as
 * JSON and a NUL; the answer is a 32-bit big-endian length and that many bytes of JSON.
 */
function adminCommand(socketPath, command) {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath)
    const chunks = []
    socket.on('connect', () => socket.write(`${JSON.stringify(command)}\0`))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const reply = Buffer.concat(chunks)
      const length = reply.length >= 4 ? reply.readUInt32BE(0) : -1
      if (length < 0 || reply.length < 4 + length) return reject(new Error(`${socketPath}: a short answer to ${JSON.stringify(command)} (${reply.length} bytes)`))
      try {
        resolve(JSON.parse(reply.subarray(4, 4 + length).toString('utf8')))
      } catch (err) {
        reject(new Error(`${socketPath}: ${JSON.stringify(command)} answered ${reply.subarray(4, 4 + Math.min(length, 200)).toString()}`, { cause: err }))
      }
    })
  })
}

/** A daemon in the foreground, its stderr kept, killed outright at stop. */
class Daemon {
  #stderr = ''
  #gone = false

  constructor(name, command, args, logFile, netns) {
    this.name = name
    this.logFile = logFile
    // In a namespace, nsenter execs the daemon in place: the child's pid and signals are its own.
    this.child = (netns?.spawn ?? spawn)(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: cephEnv() })
    this.child.stderr.setEncoding('utf8').on('data', (chunk) => (this.#stderr = (this.#stderr + chunk).slice(-16_384)))
    running.add(this.child)
    this.exited = new Promise((resolve) => {
      const gone = () => {
        this.#gone = true
        running.delete(this.child)
        resolve()
      }
      this.child.once('exit', gone)
      // A spawn that failed (ENOENT: a package missing) emits only this.
      this.child.once('error', (err) => {
        this.#stderr += `${err.message}\n`
        gone()
      })
    })
  }

  get alive() {
    return !this.#gone
  }

  /**
   * SIGKILL: SIGTERM costs each daemon ~2 s of orderly shutdown (measured), and nothing in a
   * throw-away cluster needs one.
   */
  async kill() {
    if (this.alive) this.child.kill('SIGKILL')
    await this.exited
  }

  /** What it said: stderr and the end of its log file. */
  async report() {
    const log = await readFile(this.logFile, 'utf8').catch(() => '')
    const tail = log.split('\n').slice(-30).join('\n')
    return `${this.name} stderr:\n${this.#stderr}\n${this.name} log (${this.logFile}), last lines:\n${tail}`
  }

  async exitReport() {
    return `${this.name} exited (${this.child.exitCode ?? this.child.signalCode}):\n${await this.report()}`
  }
}

/** Runs a tool to completion and resolves with its stdout; fails if a daemon dies meanwhile. */
async function run(command, args, daemons, deadline, netns) {
  const child = (netns?.spawn ?? spawn)(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cephEnv() })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve(code))
  }).finally(() => running.delete(child))
  exited.catch(() => {}) // observed below; this only keeps a spawn error from going unhandled meanwhile
  const what = [command, ...args].join(' ')
  try {
    const code = await waitFor(daemons, deadline, what, () => (child.exitCode === null && child.signalCode === null ? false : exited))
    if (code !== 0) throw new Error(`${what} exited (${code ?? child.signalCode}):\n${stderr}${stdout}`)
    return stdout
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited.catch(() => {})
  }
}

/**
 * Polls `ready` until it yields something other than false. Throws with the daemons' logs as
 * soon as one of them exits or the deadline passes, even while a `ready` call hangs: a request
 * to whoever took the gateway's port first may never be answered.
 */
async function waitFor(daemons, deadline, what, ready) {
  let timer
  const giveUp = new Promise((_, reject) => {
    void Promise.race(daemons.map((daemon) => daemon.exited.then(() => daemon))).then(async (dead) =>
      reject(new Error(`waiting for ${what}: ${await dead.exitReport()}`)),
    )
    timer = setTimeout(async () => {
      const reports = await Promise.all(daemons.map((daemon) => daemon.report()))
      reject(new Error(`gave up waiting for ${what} after ${START_WAIT_MS} ms:\n${reports.join('\n')}`))
    }, Math.max(0, deadline - Date.now()))
  })
  giveUp.catch(() => {}) // raced below; this only keeps it from counting as unhandled meanwhile
  try {
    for (;;) {
      const value = await Promise.race([ready(), giveUp])
      if (value !== false) return value
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), giveUp])
    }
  } finally {
    clearTimeout(timer)
  }
}

async function retryLostPortRace(start) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt)
    } catch (err) {
      const lostPortRace = err instanceof Error && /Address already in use/.test(err.message)
      if (!lostPortRace || attempt === START_ATTEMPTS) throw err
    }
  }
}

/** The environment less Ceph's own variables (CEPH_ARGS, CEPH_CONF, …), which would override ours. */
function cephEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('CEPH_')))
}

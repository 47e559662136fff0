// A network namespace of our own whose loopback is a distant link: every packet on it is held
// for half the round trip asked for, in the kernel's own path, so TCP's windows, slow start and
// slow start after idle behave as they would across a WAN. For the benchmark's kernel-TCP delay
// condition (issue 17) and the tests (test/tools/delay-netns.ts). This kernel has no sch_netem;
// tools/delay-proxy.mjs delays in user space and gives every connection its full window at once.
// Plain JavaScript so the bench runs it as is; the types are in delay-netns.d.mts.
//
// How: `ip netns add` makes the namespace; one iptables rule (and its ip6tables twin) sends every
// packet arriving on its loopback to NFQUEUE 0, where tools/nfqueue-delay (a small C program,
// built here on first use) accepts each one `rttMs / 2` after it came, in order. A loopback packet
// passes PREROUTING once, on its way in, so each direction is held once: a round trip is held
// twice, rttMs in all (test/tools/delay-netns.ts measures it). PREROUTING rather than OUTPUT: on
// the way out a held packet would still count against its sender's socket (sk_wmem_alloc, which
// TCP Small Queues bound), as a packet in a local queue does; by PREROUTING loopback has let go of
// it, and it is in flight, as on a wire. In the raw table: the first hook, before conntrack.
//
// Order: loopback hands each packet to the receive backlog of the CPU that sent it, and a flow's
// packets are sent from more than one (a server's sendfile, and the sends that each ACK released
// by our verdicts sets off): two backlogs can pass them on out of order, which TCP takes for loss.
// Measured without a fix: ~20 reorderings and ~200 needless retransmissions per GiB at 10 ms, and
// a window cut. So the namespace's loopback steers every packet to one CPU's backlog (RPS), in
// the order sent; that CPU only queues them, the rest of their path runs in our verdicts.
//
// Inside, TCP is set up as on a stock Linux host rather than inherited from this one: slow start
// after idle on, the kernel's default buffers, a 1500-byte MTU (TCP counts its window in segments:
// loopback's 64 KiB ones would make each step of slow start 45 times larger), and cubic where the
// host lets a namespace choose it, else reno. See DEFAULT_SYSCTLS and congestionControl().
//
// Commands run inside through `nsenter --net` (not `ip netns exec`, which also makes a mount
// namespace of its own: a FUSE mount made inside would be invisible outside), so a daemon inside
// talks over the delayed loopback while its mount is the host's.

import { execFile, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readlinkSync, statSync } from 'node:fs'
import { access, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { terminate } from './terminate.mjs'

export const IP = '/usr/sbin/ip'
export const IPTABLES = '/usr/sbin/iptables'
export const IP6TABLES = '/usr/sbin/ip6tables'
export const NSENTER = '/usr/bin/nsenter'
const UNSHARE = '/usr/bin/unshare'
const GCC = '/usr/bin/gcc'

const SOURCE = fileURLToPath(new URL('nfqueue-delay/nfqueue-delay.c', import.meta.url))
/** Built on first use, never committed (.gitignore). */
const PROGRAM = fileURLToPath(new URL('nfqueue-delay/build/nfqueue-delay', import.meta.url))
const RELAY = fileURLToPath(new URL('netns-relay.mjs', import.meta.url))
const NETNS_DIR = '/run/netns'
const DEFAULT_PREFIX = 'snapmount-netns-'
/** Queue numbers belong to a namespace: ours is the only user of queue 0 in it. */
const QUEUE = 0
const RULE = ['-t', 'raw', '-A', 'PREROUTING', '-i', 'lo', '-j', 'NFQUEUE', '--queue-num', String(QUEUE)]
/** Loopback's MTU inside: an Ethernet path's, so a segment is ~1448 bytes as across a WAN. */
const DEFAULT_MTU = 1500
/**
 * TCP inside, as a stock Linux host has it. A new namespace inherits the host's congestion control
 * and buffer sizes (here bbr, and 32 MiB receive buffers), and the compiled default of the rest.
 * - tcp_slow_start_after_idle 1: the kernel's default, kept by most hosts (issue 17): a connection
 *   idle for longer than its retransmission timeout starts again from its initial window.
 * - tcp_rmem, tcp_wmem: the kernel's defaults on a machine with more than ~1 GiB of memory; the
 *   maximum bounds what one connection has in flight, hence one stream's speed at a distance.
 */
const DEFAULT_SYSCTLS = {
  'net.ipv4.tcp_slow_start_after_idle': '1',
  'net.ipv4.tcp_rmem': '4096 131072 6291456',
  'net.ipv4.tcp_wmem': '4096 16384 4194304',
}
/** The program binds its queue in milliseconds; 10 s means something is wrong. */
const START_WAIT_MS = 10_000
/** SIGTERM makes the program (or a relay) exit at once, the program accepting what it holds; after this it is killed. */
const EXIT_WAIT_MS = 2_000
/** The most a round trip may be: beyond this an argument is a unit mistake. */
const MAX_RTT_MS = 10_000

/** The machine cannot make the namespace (not root, a command or the kernel's NFQUEUE missing). */
export class DelayNetnsUnavailableError extends Error {
  code = 'DELAY_NETNS_UNAVAILABLE'
}

// Should the process exit without stop() (an uncaught error, a test without teardown), nothing
// may outlive it: a namespace whose processes are gone stays only as its /run/netns name.
const live = new Map()
process.once('exit', () => {
  for (const [name, kill] of live) {
    kill()
    killProcessesInSync(name)
    spawnSync(IP, ['netns', 'delete', name], { stdio: 'ignore' })
  }
})

/**
 * Makes the namespace and starts delaying; resolves once every packet on its loopback is held.
 * On any failure, whatever was made is removed before the error is thrown. See delay-netns.d.mts.
 */
export async function startDelayNetns(options) {
  const { rttMs, prefix = DEFAULT_PREFIX, mtu = DEFAULT_MTU, sysctls = {} } = options ?? {}
  if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > MAX_RTT_MS) throw new RangeError(`rttMs must be from 0 to ${MAX_RTT_MS}, got ${rttMs}`)
  if (!Number.isInteger(mtu) || mtu < 1280) throw new RangeError(`mtu must be a whole number >= 1280 (IPv6's minimum), got ${mtu}`)
  await checkAvailable()
  const program = await buildProgram()
  // The creator's pid in the name tells clearStaleDelayNetns whose namespace it is .
  const name = `${prefix}${process.pid}-${randomBytes(4).toString('hex')}`
  const path = join(NETNS_DIR, name)
  const wrap = (command, args = []) => [NSENTER, [`--net=${path}`, '--', command, ...args]]
  // What start made, undone in reverse by stop() or a failed start: every step runs, and the
  // first failure is what stop() reports.
  const undo = []
  const unwind = async () => {
    const failures = []
    for (const step of undo.splice(0).reverse()) await step().catch((err) => failures.push(err))
    return failures
  }
  let delayer
  let settings
  try {
    await exec(IP, ['netns', 'add', name])
    live.set(name, () => delayer?.kill('SIGKILL'))
    undo.push(async () => {
      await killProcessesIn(name)
      await exec(IP, ['netns', 'delete', name])
      live.delete(name)
    })
    await exec(IP, ['-n', name, 'link', 'set', 'lo', 'mtu', String(mtu), 'up'])
    await steerToOneCpu(wrap)
    settings = { 'net.ipv4.tcp_congestion_control': await congestionControl(), ...DEFAULT_SYSCTLS, ...stringValues(sysctls) }
    await writeSysctls(wrap, settings)
    settings = await readSysctls(wrap, Object.keys(settings))

    const oneWayUs = Math.round(rttMs * 500)
    delayer = await startDelayer(wrap(program, [String(QUEUE), String(oneWayUs)]))
    undo.push(() => delayer.stop())
    for (const iptables of [IPTABLES, IP6TABLES]) {
      await addRule(wrap, iptables)
      undo.push(() => exec(...wrap(iptables, RULE.map((arg) => (arg === '-A' ? '-D' : arg)))))
    }
  } catch (err) {
    await unwind()
    throw err
  }

  const forwards = new Set()
  let stopped
  return {
    name,
    path,
    address: '127.0.0.1',
    rttMs,
    mtu,
    sysctls: settings,
    pid: delayer.pid,
    wrap,
    spawn: (command, args = [], spawnOptions = {}) => spawn(...wrap(command, args), spawnOptions),
    run: (command, args = [], runOptions = {}) => exec(...wrap(command, args), runOptions),
    async forward(port) {
      const relay = await startRelay(wrap, port)
      forwards.add(relay)
      return {
        port: relay.port,
        close: async () => {
          forwards.delete(relay)
          await relay.close()
        },
      }
    },
    stats: () => delayer.stats(),
    stop: () =>
      (stopped ??= (async () => {
        await Promise.all([...forwards].map((relay) => relay.close()))
        const [failure] = await unwind()
        if (failure) throw failure
      })()),
  }
}

/**
 * Removes the namespaces named `prefix*` whose creator (its pid is in the name) is gone: kills
 * what still runs in each, then deletes it. Returns the names removed. A namespace whose creator
 * still runs is left alone, so parallel callers sharing a prefix do not clear each other's.
 */
export async function clearStaleDelayNetns(prefix) {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new TypeError('clearStaleDelayNetns: a name prefix is required')
  const cleared = []
  for (const name of await readdir(NETNS_DIR).catch(() => [])) {
    // Only names this module makes with this prefix: another prefix that starts with it is not ours.
    const creator = name.startsWith(prefix) && /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length))?.[1]
    if (!creator || (await isAlive(Number(creator)))) continue
    await killProcessesIn(name)
    await exec(IP, ['netns', 'delete', name])
    cleared.push(name)
  }
  return cleared
}

/**
 * Pids of the processes in namespace `name` (by its inode, as /proc/PID/ns/net shows it). Empty
 * when the namespace is gone.
 */
export async function processesIn(name) {
  const inode = await stat(join(NETNS_DIR, name)).then(
    (found) => found.ino,
    () => undefined,
  )
  return inode === undefined ? [] : pidsInNamespace(inode)
}

async function checkAvailable() {
  if (process.getuid?.() !== 0) throw new DelayNetnsUnavailableError('a delaying network namespace needs root (ip netns, iptables, an NFQUEUE)')
  for (const [command, fix] of [
    [IP, 'install iproute2'],
    [NSENTER, 'install util-linux'],
    [IPTABLES, 'install iptables (scripts/setup)'],
    [IP6TABLES, 'install iptables (scripts/setup)'],
  ]) {
    await access(command).catch(() => {
      throw new DelayNetnsUnavailableError(`${command} is missing: ${fix}`)
    })
  }
}

/**
 * Builds tools/nfqueue-delay if its binary is missing or older than its source. Several processes
 * may build at once (tap runs test files in parallel): each compiles to a name of its own and
 * renames it into place.
 */
async function buildProgram() {
  const [source, built] = await Promise.all([stat(SOURCE), stat(PROGRAM).catch(() => undefined)])
  if (built && built.mtimeMs >= source.mtimeMs) return PROGRAM
  for (const [file, fix] of [
    [GCC, 'install gcc'],
    ['/usr/include/libnetfilter_queue/libnetfilter_queue.h', 'install libnetfilter-queue-dev (scripts/setup)'],
    ['/usr/include/libmnl/libmnl.h', 'install libmnl-dev (scripts/setup)'],
  ]) {
    await access(file).catch(() => {
      throw new DelayNetnsUnavailableError(`${file} is missing, needed to build ${SOURCE}: ${fix}`)
    })
  }
  await mkdir(dirname(PROGRAM), { recursive: true })
  const temp = `${PROGRAM}.${process.pid}.tmp`
  try {
    await exec(GCC, ['-O2', '-Wall', '-Wextra', '-o', temp, SOURCE, '-lnetfilter_queue', '-lmnl'])
    await rename(temp, PROGRAM)
  } finally {
    await rm(temp, { force: true })
  }
  return PROGRAM
}

/**
 * The kernel's default congestion control, cubic, where a namespace may choose it: outside the
 * host's namespace only the algorithms in net.ipv4.tcp_allowed_congestion_control may be made the
 * default (a host set to bbr, as this one, allows "reno bbr"). Else reno, which every namespace
 * may choose: cubic's slow start and restart after idle, and no loss here for their congestion
 * avoidance to differ on. Not bbr: it ignores tcp_slow_start_after_idle.
 */
async function congestionControl() {
  const allowed = (await readFile('/proc/sys/net/ipv4/tcp_allowed_congestion_control', 'utf8')).trim().split(/\s+/)
  return allowed.includes('cubic') ? 'cubic' : 'reno'
}

/**
 * Sets the namespace's loopback to hand every packet it receives to CPU 0's backlog (RPS), so
 * packets enter the queue in the order they were sent (see the file's comment). The setting lives
 * in sysfs, which shows the namespace of whoever mounted it: a sysfs of this namespace is mounted
 * in a private mount namespace that ends with the command.
 */
async function steerToOneCpu(wrap) {
  const script = 'mount -t sysfs sysfs /sys && echo 1 > /sys/class/net/lo/queues/rx-0/rps_cpus'
  try {
    await exec(...wrap(UNSHARE, ['--mount', '--propagation', 'private', '/bin/sh', '-c', script]))
  } catch (err) {
    throw new DelayNetnsUnavailableError(`cannot steer the namespace's loopback to one CPU (a kernel without CONFIG_RPS?): ${err.message}`)
  }
}

/** Writes each sysctl (dotted name -> value) inside the namespace: /proc/sys/net is per namespace. */
async function writeSysctls(wrap, settings) {
  const pairs = Object.entries(settings).flatMap(([key, value]) => [sysctlPath(key), value])
  const script = 'while [ $# -gt 0 ]; do printf "%s\\n" "$2" > "$1" || { echo "cannot set $1 to $2" >&2; exit 1; }; shift 2; done'
  await exec(...wrap('/bin/sh', ['-c', script, 'sh', ...pairs]))
}

async function readSysctls(wrap, keys) {
  const { stdout } = await exec(...wrap('/bin/sh', ['-c', 'for file; do tr -s "\\t" " " < "$file"; done', 'sh', ...keys.map(sysctlPath)]))
  const values = stdout.trimEnd().split('\n')
  return Object.fromEntries(keys.map((key, i) => [key, values[i]]))
}

function sysctlPath(key) {
  if (!/^net\.[\w.-]+$/.test(key)) throw new RangeError(`sysctls: only net.* settings belong to a namespace, got ${key}`)
  return `/proc/sys/${key.replaceAll('.', '/')}`
}

function stringValues(sysctls) {
  return Object.fromEntries(Object.entries(sysctls).map(([key, value]) => [key, String(value)]))
}

async function addRule(wrap, iptables) {
  try {
    await exec(...wrap(iptables, RULE))
  } catch (err) {
    // iptables-nft and iptables-legacy word it differently; both name the missing extension.
    if (/NFQUEUE|No chain\/target\/match|Extension .* not supported|Could not fetch rule set/i.test(err.message)) {
      throw new DelayNetnsUnavailableError(`this kernel cannot queue packets to user space (${iptables} -j NFQUEUE failed): ${err.message}`)
    }
    throw err
  }
}

/**
 * Starts the delaying program (`command` already wrapped to run inside); resolves once it has
 * bound its queue, with its pid, stats() and an idempotent stop().
 */
async function startDelayer([command, args]) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr = (stderr + chunk).slice(-16_384)))
  const exited = new Promise((resolve) => {
    child.once('exit', resolve)
    child.once('error', (err) => resolve((stderr += `${err.message}\n`)))
  })
  const alive = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined
  const report = () => `nfqueue-delay exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`
  let stopping
  const stop = () => (stopping ??= terminate(child, exited, EXIT_WAIT_MS))
  const deadline = Date.now() + START_WAIT_MS
  while (!stdout.startsWith('ready\n')) {
    if (!alive()) {
      await exited
      throw new Error(report())
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`nfqueue-delay did not bind its queue within ${START_WAIT_MS} ms: ${stderr.trim()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return {
    pid: child.pid,
    kill: (signal) => alive() && child.kill(signal),
    stop,
    async stats() {
      if (!alive()) throw new Error(report())
      return queueStats(child.pid)
    },
  }
}

/**
 * The queue's counters as the kernel keeps them, the namespace's TCP retransmissions and the
 * program's CPU time, all read through /proc/PID of the program (its net/ is its namespace's).
 */
async function queueStats(pid) {
  const [queues, snmp, stat] = await Promise.all(
    ['net/netfilter/nfnetlink_queue', 'net/snmp', 'stat'].map((file) => readFile(`/proc/${pid}/${file}`, 'utf8')),
  )
  // queue number, peer portid, queue total, copy mode, copy range, dropped, user dropped, id sequence, 1
  const queue = queues
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .find((fields) => fields[0] === QUEUE)
  const [header, values] = snmp.split('\n').filter((line) => line.startsWith('Tcp:'))
  const retransmitted = Number(values.split(' ')[header.split(' ').indexOf('RetransSegs')])
  // utime and stime, fields 14 and 15, after the parenthesised command name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    packets: queue?.[7] ?? 0,
    held: queue?.[2] ?? 0,
    dropped: queue?.[5] ?? 0,
    userDropped: queue?.[6] ?? 0,
    retransmittedSegments: retransmitted,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
  }
}

/**
 * A listener on the host's 127.0.0.1 whose connections reach 127.0.0.1:`port` in the namespace:
 * the listening socket is made here and handed to a relay started inside (tools/netns-relay.mjs).
 * A socket keeps the namespace it was made in, so the relay accepts host connections and opens
 * its own inside. Resolves with the host port and close().
 */
async function startRelay(wrap, port) {
  const server = createServer()
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const hostPort = server.address().port
  const child = spawn(...wrap(process.execPath, [RELAY, String(port)]), { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve) => child.once('exit', resolve).once('error', resolve))
  try {
    await new Promise((resolve, reject) => {
      child.once('message', resolve)
      void exited.then(() => reject(new Error(`the relay to port ${port} exited before listening: ${stderr.trim()}`)))
      child.send('listen', server)
    })
  } finally {
    // The relay holds the listening socket now; nothing connected before this returned.
    server.close()
  }
  let closed
  return {
    port: hostPort,
    close: () => (closed ??= terminate(child, exited, EXIT_WAIT_MS)),
  }
}

/** utime and stime in /proc/PID/stat are in these (USER_HZ, 100 on Linux whatever the kernel's HZ). */
const CLOCK_TICKS = 100

/** SIGKILLs every process in namespace `name`, and waits for them to be gone. */
async function killProcessesIn(name) {
  const pids = await processesIn(name)
  for (const pid of pids) signal(pid, 'SIGKILL')
  for (let waited = 0; waited < 5_000 && (await Promise.all(pids.map(isAlive))).some(Boolean); waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The same, synchronously, for the exit handler. */
function killProcessesInSync(name) {
  let inode
  try {
    inode = statSync(join(NETNS_DIR, name)).ino
  } catch {
    return
  }
  for (const pid of pidsInNamespace(inode)) signal(pid, 'SIGKILL')
}

function pidsInNamespace(inode) {
  const wanted = `net:[${inode}]`
  const pids = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === wanted) pids.push(Number(entry))
    } catch {
      // Gone meanwhile, or a process we may not inspect (not one of ours, then).
    }
  }
  return pids
}

function signal(pid, name) {
  try {
    process.kill(pid, name)
  } catch {
    // Gone meanwhile.
  }
}

async function isAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** execFile as a promise of { stdout, stderr }; a failure's message has the command and its stderr. */
function exec(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 * 2 ** 20, ...options }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr })
      const why = `${err.code ?? err.signal}`
      reject(new Error(`${[command, ...args].join(' ')} failed (${why}): ${String(stderr).trim() || err.message}`, { cause: err }))
    })
  })
}

// What a read costs in CPU (issue 17): the daemon's user + system time and the machine's idle
// share, from /proc, and this process's own time (the proxy runs here) kept apart from them.
//
// A process's /proc/PID/stat counts all its threads, live and exited, and (cutime, cstime) the
// children it has waited for; children still running are found by walking /proc's parent links, so
// a daemon that forks (or a wrapper that spawns one) is counted whole. Times are in clock ticks
// (USER_HZ, `getconf CLK_TCK`: 100 on Linux x86): a 10 ms grain, fine against the seconds per GiB
// measured here.

import { readdir, readFile } from 'node:fs/promises'

/**
 * One line of /proc/PID/stat: the parent's pid and the CPU ticks of the process (all its threads)
 * plus the children it has reaped, all of them and the system (kernel) part alone. The command
 * name (field 2) may hold spaces and parentheses, so the fields are counted from its last ')'.
 */
export function parseProcessStat(line) {
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const field = (n) => Number(fields[n - 3])
  return { ppid: field(4), ticks: field(14) + field(15) + field(16) + field(17), systemTicks: field(15) + field(17) }
}

/**
 * The machine's CPU ticks from /proc/stat's first line (all CPUs): `idle` counts idle and iowait,
 * `total` those plus user, nice, system, irq, softirq and steal (guest time is inside user).
 */
export function parseMachineStat(text) {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = text.split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  return { idle: idle + iowait, total: user + nice + system + idle + iowait + irq + softirq + steal }
}

/**
 * CPU ticks of `pid` and every live descendant (`stats`: pid -> parsed /proc/PID/stat), `which`
 * of them (all, or the system part); undefined if `pid` is gone.
 */
export function treeTicks(pid, stats, which = 'ticks') {
  if (!stats.has(pid)) return undefined
  const children = new Map()
  for (const [child, { ppid }] of stats) children.set(ppid, [...(children.get(ppid) ?? []), child])
  let ticks = 0
  for (const queue = [pid]; queue.length; ) {
    const next = queue.pop()
    ticks += stats.get(next)[which]
    queue.push(...(children.get(next) ?? []))
  }
  return ticks
}

async function processStats() {
  const stats = new Map()
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    // A process may exit between the listing and the read.
    const line = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined)
    if (line) stats.set(Number(name), parseProcessStat(line))
  }
  return stats
}

async function machineStat() {
  return parseMachineStat(await readFile('/proc/stat', 'utf8'))
}

/** A reading of the clocks cpuUse compares: the daemon's ticks (`pid` and its descendants; undefined once it is gone) and the machine's. */
export async function sampleCpu(pid) {
  const [stats, machine] = await Promise.all([processStats(), machineStat()])
  return { daemonTicks: treeTicks(pid, stats), daemonSystemTicks: treeTicks(pid, stats, 'systemTicks'), machine }
}

/** This process's CPU time so far, user + system, in µs. */
export function ownMicros() {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * What a read of `bytes` cost between readings `before` and `after` (sampleCpu; `after` taken
 * once the traffic it caused had settled): the daemon's CPU seconds and seconds per GiB (and the
 * system part of them: the kernel's copies and page faults for it, which grow with the machine's
 * memory traffic while the daemon's own code, the rest, does not), this
 * process's (`ownMicros` meanwhile: the proxy's) likewise, and the machine's idle share (0..1)
 * between `before` and `readEnd` (/proc/stat when the reader finished: the settling after it
 * would count as idle).
 */
export function cpuUse({ before, readEnd, after, ownMicros, bytes, ticksPerSecond }) {
  const perGiB = (seconds) => (seconds === undefined || !bytes ? undefined : seconds / (bytes / 2 ** 30))
  const seconds = (field) => (before[field] === undefined || after[field] === undefined ? undefined : (after[field] - before[field]) / ticksPerSecond)
  const daemonSeconds = seconds('daemonTicks')
  const daemonSystemSeconds = seconds('daemonSystemTicks')
  const proxySeconds = ownMicros / 1e6
  const machineTicks = readEnd.total - before.machine.total
  return {
    daemonSeconds,
    daemonSecondsPerGiB: perGiB(daemonSeconds),
    daemonSystemSeconds,
    daemonSystemSecondsPerGiB: perGiB(daemonSystemSeconds),
    proxySeconds,
    proxySecondsPerGiB: perGiB(proxySeconds),
    idleShare: machineTicks > 0 ? (readEnd.idle - before.machine.idle) / machineTicks : undefined,
  }
}

/**
 * Runs `work()` (resolving to { bytes, ... }) and adds `cpu`: what it cost the daemon `pid`, this
 * process and the machine (cpuUse). `settle()`, if given, runs after the work and before the last
 * reading, so bytes still arriving (readahead) are charged to the read that caused them. This
 * process's time is read inside the /proc readings, so their own cost (a walk of /proc) stays out.
 */
export async function withCpu(pid, ticksPerSecond, work, settle = async () => {}) {
  const before = await sampleCpu(pid)
  const ownBefore = ownMicros()
  const result = await work()
  const readEnd = await machineStat()
  await settle()
  const own = ownMicros() - ownBefore
  const after = await sampleCpu(pid)
  return { ...result, cpu: cpuUse({ before, readEnd, after, ownMicros: own, bytes: result.bytes, ticksPerSecond }) }
}

/** USER_HZ, the unit of /proc's CPU times. */
export async function clockTicksPerSecond(procs) {
  return Number((await procs.run('getconf', ['CLK_TCK'])).stdout.trim())
}

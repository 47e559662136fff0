// The bench's CPU accounting (bench/lib/cpu.mjs): parsing /proc, summing a process tree, turning
// two readings into seconds per GiB and an idle share. Pure functions: no process is read.
import t from 'tap'
import { cpuUse, parseMachineStat, parseProcessStat, treeTicks, type CpuSample } from '../../bench/lib/cpu.mjs'

const GIB = 2 ** 30

/** A /proc/PID/stat line with the given command name, parent and times (ticks). */
function statLine(pid: number, comm: string, ppid: number, [utime, stime, cutime, cstime]: number[]): string {
  // Fields 3 to 13: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt.
  return `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 1200 0 3 0 ${utime} ${stime} ${cutime} ${cstime} 20 0 17 0 60112 3133440 358 18446744073709551615`
}

t.test('a process line: parent and utime + stime + cutime + cstime, whatever the command name holds', async (t) => {
  t.same(parseProcessStat(statLine(42, 'node', 7, [150, 40, 3, 2])), { ppid: 7, ticks: 195, systemTicks: 42 })
  t.same(parseProcessStat(statLine(43, 'a) b (c', 42, [1, 2, 0, 0])), { ppid: 42, ticks: 3, systemTicks: 2 }, 'spaces and parentheses in the name')
  t.same(parseProcessStat(`${statLine(44, 'rclone', 1, [10, 5, 0, 0])}\n`), { ppid: 1, ticks: 15, systemTicks: 5 }, 'the trailing newline /proc gives')
})

t.test("the machine's line: idle and iowait are idle, steal is not", async (t) => {
  const text = 'cpu  49474 10 17284 44987 2356 7 376 6245 100 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\n'
  // Guest time (100) is already inside user: not counted twice.
  t.same(parseMachineStat(text), { idle: 44987 + 2356, total: 49474 + 10 + 17284 + 44987 + 2356 + 7 + 376 + 6245 })
})

t.test('a tree counts the process and every live descendant, nothing else', async (t) => {
  const stats = new Map([
    [1, { ppid: 0, ticks: 1000 }],
    [10, { ppid: 1, ticks: 100 }], // the daemon
    [11, { ppid: 10, ticks: 20 }], // its child
    [12, { ppid: 11, ticks: 3 }], // its grandchild
    [13, { ppid: 10, ticks: 4 }],
    [20, { ppid: 1, ticks: 500 }], // a sibling: not the daemon's
  ])
  t.equal(treeTicks(10, stats), 127)
  t.equal(treeTicks(12, stats), 3, 'a leaf alone')
  t.equal(treeTicks(99, stats), undefined, 'a process that is gone')
  const split = new Map([
    [10, { ppid: 1, ticks: 100, systemTicks: 60 }],
    [11, { ppid: 10, ticks: 20, systemTicks: 5 }],
  ])
  t.equal(treeTicks(10, split, 'systemTicks'), 65, 'the system part alone')
})

function sample(daemonTicks: number | undefined, idle: number, total: number, daemonSystemTicks?: number): CpuSample {
  return { daemonTicks, daemonSystemTicks, machine: { idle, total } }
}

t.test('two readings become seconds, seconds per GiB and an idle share of the read alone', async (t) => {
  const use = cpuUse({
    before: sample(1000, 5000, 10_000, 600),
    // The read took 400 ticks of machine time, 100 of them idle.
    readEnd: { idle: 5100, total: 10_400 },
    // Settling added daemon ticks (readahead still arriving) and idle machine time.
    after: sample(1188, 5300, 10_700, 700),
    ownMicros: 500_000,
    bytes: 2 * GIB,
    ticksPerSecond: 100,
  })
  t.equal(use.daemonSeconds, 1.88)
  t.equal(use.daemonSecondsPerGiB, 0.94)
  t.equal(use.daemonSystemSeconds, 1, 'the kernel part of them')
  t.equal(use.daemonSystemSecondsPerGiB, 0.5)
  t.equal(use.proxySeconds, 0.5)
  t.equal(use.proxySecondsPerGiB, 0.25)
  t.equal(use.idleShare, 0.25, 'idle over the read, not over the settling after it')
})

t.test('a daemon gone before a reading, nothing read, or no tick elapsed: undefined, not a number', async (t) => {
  const gone = cpuUse({ before: sample(1000, 0, 0), readEnd: { idle: 0, total: 0 }, after: sample(undefined, 0, 0), ownMicros: 1000, bytes: GIB, ticksPerSecond: 100 })
  t.equal(gone.daemonSeconds, undefined)
  t.equal(gone.daemonSecondsPerGiB, undefined)
  t.equal(gone.daemonSystemSeconds, undefined)
  t.equal(gone.idleShare, undefined, 'no machine tick between the readings')
  t.equal(gone.proxySeconds, 0.001)
  const nothingRead = cpuUse({ before: sample(10, 0, 0), readEnd: { idle: 1, total: 2 }, after: sample(20, 1, 2), ownMicros: 0, bytes: 0, ticksPerSecond: 100 })
  t.equal(nothingRead.daemonSeconds, 0.1)
  t.equal(nothingRead.daemonSecondsPerGiB, undefined)
  t.equal(nothingRead.proxySecondsPerGiB, undefined)
})

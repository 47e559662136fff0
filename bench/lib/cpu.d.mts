import type { CpuUse } from './results.mjs'

export interface ProcessStat {
  ppid: number
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number
  /** stime + cstime: the kernel's part. */
  systemTicks: number
}

export interface MachineStat {
  /** idle + iowait ticks, all CPUs. */
  idle: number
  /** every tick, all CPUs. */
  total: number
}

export interface CpuSample {
  daemonTicks: number | undefined
  daemonSystemTicks?: number | undefined
  machine: MachineStat
}

export declare function parseProcessStat(line: string): ProcessStat
export declare function parseMachineStat(text: string): MachineStat
export declare function treeTicks(pid: number, stats: Map<number, Pick<ProcessStat, 'ppid' | 'ticks'> & Partial<ProcessStat>>, which?: 'ticks' | 'systemTicks'): number | undefined
/** This process's CPU time so far, user + system, in µs. */
export declare function ownMicros(): number
export declare function sampleCpu(pid: number): Promise<CpuSample>
export declare function cpuUse(readings: { before: CpuSample; readEnd: MachineStat; after: CpuSample; ownMicros: number; bytes: number; ticksPerSecond: number }): CpuUse
export declare function withCpu<T extends { bytes: number }>(pid: number, ticksPerSecond: number, work: () => Promise<T>, settle?: () => Promise<unknown>): Promise<T & { cpu: CpuUse }>
export declare function clockTicksPerSecond(procs: { run(command: string, args: string[]): Promise<{ stdout: string }> }): Promise<number>

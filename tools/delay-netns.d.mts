import type { ChildProcess, ExecFileOptions, SpawnOptions } from 'node:child_process'

export declare const IP: string
export declare const IPTABLES: string
export declare const IP6TABLES: string
export declare const NSENTER: string

/**
 * The machine cannot make a delaying namespace: not root, a command missing (ip, nsenter,
 * iptables, gcc or the libnetfilter-queue headers to build tools/nfqueue-delay), or a kernel
 * without the NFQUEUE target. The message names what is missing and how to get it.
 */
export declare class DelayNetnsUnavailableError extends Error {
  code: 'DELAY_NETNS_UNAVAILABLE'
}

export interface DelayNetnsOptions {
  /**
   * The round trip added to every exchange on the namespace's loopback, in ms (0 to 10,000):
   * each packet is held rttMs / 2, and a request and its answer pass once each way. A busy
   * machine adds its scheduling latency on top (~0.2-1 ms per round trip measured here under a
   * load of 5 on 2 cores); the delay is never shorter than asked. 0 still passes every packet
   * through the queue, to measure what the queue itself costs.
   */
  rttMs: number
  /**
   * Name prefix of the namespace, followed by the creator's pid and a random suffix. Default
   * `snapmount-netns-`. A caller that uses `clearStaleDelayNetns` gives a prefix of its own.
   */
  prefix?: string
  /**
   * The loopback's MTU inside. Default 1500, an Ethernet path's: TCP then sends ~1448-byte segments
   * and counts its window in them, as across a real network (ten initial segments are 14 KiB; at
   * loopback's own 65536 they are 640 KiB, and every step of slow start 45 times larger). Measured
   * here, one new connection's first 2 MiB took the same at either (115-140 ms at 10 ms RTT): the
   * receiver's initial window (~64 KiB, grown each round trip) bound it first. Packets still pass
   * the queue as loopback GSO packets of up to 64 KiB, so a smaller MTU costs the queue little.
   */
  mtu?: number
  /**
   * net.* sysctls to set inside, by dotted name, over the defaults: tcp_slow_start_after_idle 1;
   * tcp_rmem "4096 131072 6291456" and tcp_wmem "4096 16384 4194304" (the kernel's own defaults:
   * a new namespace would inherit this host's, here 32 MiB receive buffers); and
   * tcp_congestion_control cubic where the host lets a namespace choose it (its
   * net.ipv4.tcp_allowed_congestion_control lists it), else reno (the same slow start and restart
   * after idle). A host set to bbr, as this one, allows only reno and bbr in a namespace, and bbr
   * ignores tcp_slow_start_after_idle. E.g. `{ 'net.ipv4.tcp_slow_start_after_idle': 0 }`.
   */
  sysctls?: Record<string, string | number>
}

/** What the kernel counted for the namespace's queue, and what its delaying program cost. */
export interface DelayNetnsStats {
  /** Packets queued since the start (the kernel's id sequence). */
  packets: number
  /** Packets held now. */
  held: number
  /** Packets dropped because the queue was full (0 unless far beyond 10 Gbit/s at 10 ms). */
  dropped: number
  /** Packets dropped because the program's socket buffer was full (as rare). */
  userDropped: number
  /** TCP segments retransmitted in the namespace (a loss, or a stall longer than a timeout). */
  retransmittedSegments: number
  /**
   * CPU seconds (user + system) of the delaying program. Its system time includes the kernel's
   * own receive processing of each packet it releases (TCP runs in the verdict's system call),
   * which softirqs would do without the queue.
   */
  cpuSeconds: number
}

/** A listener on the host's 127.0.0.1 relayed to a port inside the namespace. */
export interface NetnsForward {
  /** Connect to 127.0.0.1:port on the host to reach the namespace's 127.0.0.1:(the port asked for). */
  port: number
  /** Stops the relay; connections through it end. Idempotent. */
  close(): Promise<void>
}

/** How tools/nginx.mjs and tools/radosgw.mjs start their processes in a namespace. */
export interface NetnsCommands {
  /** Starts `command` in the namespace, as child_process.spawn would here. */
  spawn(command: string, args?: readonly string[], options?: SpawnOptions): ChildProcess
  /** A host port relayed to `port` in the namespace (for this process's own clients). */
  forward(port: number): Promise<NetnsForward>
}

/** A network namespace whose loopback delays every packet; see startDelayNetns. */
export interface DelayNetns extends NetnsCommands {
  /** Its name, as `ip netns` lists it. */
  name: string
  /** `/run/netns/NAME`, what `nsenter --net=` takes. */
  path: string
  /** The address servers inside listen on and clients inside connect to: `127.0.0.1`. */
  address: string
  rttMs: number
  mtu: number
  /** The sysctls set inside (dotted name -> value as read back). */
  sysctls: Record<string, string>
  /** The delaying program's pid. */
  pid: number
  /**
   * `command args` wrapped to run in the namespace: `nsenter --net=PATH -- command args`. nsenter
   * enters the network namespace only, then execs the command in place (same pid): its FUSE
   * mounts are the host's, and its files are too.
   */
  wrap(command: string, args?: readonly string[]): [string, string[]]
  /** Runs `command` in the namespace to completion; rejects, with its stderr, unless it exits 0. */
  run(command: string, args?: readonly string[], options?: ExecFileOptions): Promise<{ stdout: string; stderr: string }>
  /** The kernel's queue counters and the program's CPU time; rejects if the program has died. */
  stats(): Promise<DelayNetnsStats>
  /**
   * Closes the relays, deletes the rules (from then on packets pass undelayed), stops the program
   * (it accepts what it holds), kills whatever still runs in the namespace and deletes it.
   * Idempotent. Stop your daemons inside first: a FUSE daemon killed here leaves its mount dead.
   */
  stop(): Promise<void>
}

/**
 * Makes a network namespace of its own whose loopback delays every packet (NFQUEUE and
 * tools/nfqueue-delay, built on first use), with TCP set up as on a stock host; resolves once
 * the delay is in place. Throws DelayNetnsUnavailableError when the machine cannot; removes
 * whatever it made on any failure. Needs root. The caller stops it.
 */
export declare function startDelayNetns(options: DelayNetnsOptions): Promise<DelayNetns>

/**
 * Removes the namespaces named `prefix*` that a process which died without stop() left behind
 * (their creator's pid, in the name, is gone), killing what still runs in them. Resolves to the
 * names removed.
 */
export declare function clearStaleDelayNetns(prefix: string): Promise<string[]>

/** The pids of the processes in namespace `name` (none once it is gone). */
export declare function processesIn(name: string): Promise<number[]>

/** Debian's qemu-system-x86_64. */
export declare const QEMU: string
/** scripts/build-guest-image, which builds and caches the guest's image. */
export declare const BUILD_SCRIPT: string
/** What the guest writes on its serial console once multi-user.target is reached. */
export declare const READY_MARKER: string
/** How long a build of the image may take before it is stopped. */
export declare const BUILD_TIMEOUT_MS: number
/** The default limit from QEMU's start to the marker, per accelerator. */
export declare const BOOT_TIMEOUT_MS: { kvm: number; tcg: number }

export type Accel = 'kvm' | 'tcg'

export interface AccelChoice {
  /** undefined: QEMU is missing, nothing can boot the guest. */
  accel: Accel | undefined
  /** Why, in words for a skip reason or a log line. */
  reason: string
}

export interface BootOptions {
  accel: Accel
  /** `none`: cache=none (O_DIRECT: every guest read reaches the file). `default`: QEMU's (writeback, through the page cache). Default `default`. */
  cache?: 'default' | 'none'
  /**
   * `snapshot` (default): snapshot=on, a temporary qcow2 overlay takes the guest's writes and the
   * raw image is opened read-only. `readonly`: readonly=on, the guest sees a read-only disk. The
   * guest never writes (its root stays read-only), so both boot it.
   */
  overlay?: 'snapshot' | 'readonly'
  /** Guest RAM. Default 512. */
  memoryMiB?: number
  /** From QEMU's start to the marker; default BOOT_TIMEOUT_MS[accel]. */
  timeoutMs?: number
  /**
   * The drive's source as QEMU -drive properties, instead of `file=DISK`: e.g. QEMU's own HTTP
   * client, `['file.driver=http', 'file.url=URL']` (commas in values doubled by the caller).
   */
  driveFile?: string[]
  /** Runs QEMU through another command, e.g. a network namespace's `wrap` (tools/delay-netns.mjs). */
  wrap?: (command: string, args: string[]) => [string, string[]]
  /** Trace the drive's reads (QEMU's blk_co_preadv event) and give them as `GuestBoot.reads`. */
  traceReads?: boolean
}

/** One read of the guest's drive as it reached the image. */
export interface TracedRead {
  /** From QEMU's start to the read's submission, in ms (a tenth's precision). */
  ms: number
  offset: number
  length: number
}

export interface GuestBoot {
  accel: Accel
  /** When QEMU was spawned, epoch ms. */
  startedAt: number
  /** From spawning QEMU to the marker on the console. */
  readyMs: number
  /** From spawning QEMU to its exit (the guest powers off after the marker). */
  exitMs: number
  /** QEMU's exit code: 0 when the guest powered off; null if it was killed for not doing so. */
  code: number | null
  signal: NodeJS.Signals | null
  /** Units that had failed in the guest when the marker was written, as it reported them. */
  failedUnitCount: number
  failedUnits: string[]
  /**
   * What the guest had read from its disk when it wrote the marker (QEMU's block statistics):
   * bytes and read requests. Undefined if QEMU could not be asked (it was already gone).
   */
  guestRead: { bytes: number; operations: number } | undefined
  /** With `traceReads`: the reads that reached the image before the marker, in order. */
  reads?: TracedRead[]
  /** Everything the guest wrote on its serial console. */
  console: string
  /** QEMU's own messages. */
  stderr: string
}

/** The image's path, whether built or not (nothing is built). */
export declare function guestImagePath(): Promise<string>

/**
 * The image's path, building it first if absent (minutes): `onBuild(path)` is called before the
 * build starts. Rejects with the build's output if it fails or outlasts `timeoutMs`
 * (default BUILD_TIMEOUT_MS).
 */
export declare function ensureGuestImage(options?: { onBuild?: (path: string) => void; timeoutMs?: number }): Promise<string>

/** Where chooseAccel looks; each defaults to this machine's. */
export interface AccelHost {
  /** Default QEMU. */
  qemu?: string
  /** Default /dev/kvm. */
  kvmDevice?: string
  /** The loaded modules, one entry each (kvm_intel, kvm_amd, kvm_pvm). Default /sys/module. */
  modules?: string
}

/**
 * KVM when /dev/kvm opens read-write and KVM is kvm_intel or kvm_amd, TCG otherwise (the reason
 * names kvm_pvm where that is the KVM), nothing without QEMU; SNAPMOUNT_GUEST_ACCEL=kvm|tcg in
 * `env` forces one.
 */
export declare function chooseAccel(env?: NodeJS.ProcessEnv, host?: AccelHost): Promise<AccelChoice>

/**
 * QEMU's arguments for booting the guest from `disk` (a path: a local file or a mounted snapshot),
 * with a QMP server on the unix socket `qmpSocket` when given.
 */
export declare function qemuArgs(disk: string, options: BootOptions, qmpSocket?: string, traceFile?: string): string[]

/**
 * The reads in QEMU's trace `text` (-msg timestamp=on, event blk_co_preadv) of the drive most
 * read, submitted at most `readyMs` after `startedAt` (epoch ms), with `ms` from `startedAt`.
 */
export declare function parseReadTrace(text: string, startedAt: number, readyMs: number): TracedRead[]

/**
 * Boots the guest from `disk`; resolves once it printed its marker and QEMU exited. Rejects with
 * the console's tail and QEMU's stderr if QEMU exits or `timeoutMs` passes first (QEMU is killed),
 * or a second after the guest's kernel panics (the error's `guestPanic` is then true). The error's
 * `console` is everything the guest wrote.
 */
export declare function bootGuest(disk: string, options: BootOptions): Promise<GuestBoot>

/** The last `lines` lines of `text` (default 40). */
export declare function tail(text: string, lines?: number): string

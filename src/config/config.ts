/** What a snapmount process serves: validated, with every default filled in. */
export interface Config {
  /** Absolute path of the directory the snapshots appear in. */
  mountpoint: string
  options: MountOptions
  snapshots: SnapshotSpec[]
}

export interface MountOptions {
  /**
   * Let users other than the daemon's read the mount (FUSE's `allow_other`), as a hypervisor
   * running under its own account must. File modes (0444) still apply. Non-root daemons need
   * `user_allow_other` in /etc/fuse.conf for it. Default: on when running as root.
   */
  allowOther: boolean
  /**
   * Milliseconds one read may wait for its source before the reader gets EIO. Bounded below
   * fuse-native's 15 s operation timeout so the answer is always ours. Default 10 000.
   */
  readTimeoutMs: number
}

export const SNAPSHOT_TYPES = ['file', 'mmap'] as const
export type SnapshotType = (typeof SNAPSHOT_TYPES)[number]

/** One snapshot: the file name it gets in the mount and where its bytes come from. */
export interface SnapshotSpec {
  name: string
  type: SnapshotType
  /** Absolute path of the local image (types `file` and `mmap`). */
  path: string
}

export const READ_TIMEOUT_MS = { default: 10_000, min: 100, max: 14_000 } as const

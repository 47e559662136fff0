/** The part of fuse-native 2.2.6 (vendor/fuse-native: built on libfuse 3) snapmount uses; it ships no types. */
declare module 'fuse-native' {
  type Callback = (result: number, ...values: unknown[]) => void

  interface FuseOptions {
    /** Mounts read-only (`-o ro`): the patched binding's option (vendor/fuse-native/SNAPMOUNT.md). */
    readOnly?: boolean
    allowOther?: boolean
    defaultPermissions?: boolean
    kernelCache?: boolean
    autoCache?: boolean
    fsname?: string
    subtype?: string
    attrTimeout?: number
    entryTimeout?: number
    debug?: boolean
    /** Milliseconds before an unanswered operation is answered ETIMEDOUT; per-op, `false` disables. */
    timeout?: number | false | Record<string, number | false>
  }

  class Fuse {
    constructor(mountpoint: string, ops: Record<string, (...args: any[]) => void>, options?: FuseOptions)
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void
  }
  export = Fuse
}

import { constants } from 'node:os'

const { errno } = constants

/**
 * The one place where snapmount's typed errors become errno values for the kernel. Anything not
 * listed (a source read failure, a short source, a timeout, a bug) is EIO: the reader learns the
 * read failed, and the log line beside it says why.
 */
const ERRNO_BY_CODE: Readonly<Record<string, number>> = {
  E_NOT_FOUND: errno.ENOENT,
  E_READ_ONLY: errno.EROFS,
  E_NOT_A_DIRECTORY: errno.ENOTDIR,
  E_IS_A_DIRECTORY: errno.EISDIR,
  // The file is there but cannot be opened right now: a transient refusal, not a missing name
  // (ENOENT would tell a hypervisor its disk is gone, and some tools cache that answer).
  E_SHUTTING_DOWN: errno.EBUSY,
  E_BAD_HANDLE: errno.EBADF,
  // A source that changed since it was mounted (a new validator or ETag, a 412, another size; a
  // changed local file later) is EIO, where mountpoint-s3 answers ESTALE. A hypervisor turns every
  // errno into the same I/O error for its guest, so ESTALE would tell the guest nothing more; and
  // ESTALE makes the kernel's VFS and NFS-aware tools look the path up again and retry, which here
  // reaches the same pinned version and fails again. Operators tell it apart by its log line
  // (code E_REMOTE_CHANGED); the metrics count it with the other failed reads. Listed, though EIO
  // is the default, so that the choice is made here and pinned by a test.
  E_REMOTE_CHANGED: errno.EIO,
  // A local source changed since it was opened (source-pin.ts): the same answer, for the same reasons.
  E_SOURCE_CHANGED: errno.EIO,
}

/** A positive errno for `err`; fuse-native wants it negated. */
export function errnoFor(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code
  return (typeof code === 'string' && ERRNO_BY_CODE[code]) || errno.EIO
}

/** Answers to ordinary probing (a lookup of a name that is not there) that deserve no log line. */
export function isRoutine(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'E_NOT_FOUND' || code === 'E_NOT_A_DIRECTORY' || code === 'E_IS_A_DIRECTORY'
}

import { setTimeout as sleep } from 'node:timers/promises'
import type { SnapshotSpec } from '../config/config.js'
import { openSnapshot, type SnapshotContext } from '../snapshots/open-snapshot.js'
import type { StorageBackend } from '../backend/storage-backend.js'
import type { PendingSnapshot, Snapshot } from '../fuse/snapshot-fs.js'

/**
 * A lazy snapshot whose source does not open is tried again after this long, then after twice
 * as long each time up to the maximum: a source back within seconds is readable within seconds,
 * and one down for hours costs one attempt (and one log line) a minute.
 */
const LAZY_RETRY_FIRST_MS = 1000
const LAZY_RETRY_MAX_MS = 60_000

/**
 * Opens every snapshot, all at once, each inside its layers (src/snapshots/open-snapshot.ts). If
 * any fails, the ones already open are closed before the error goes up: a refused start leaves
 * nothing open behind it.
 */
export async function openSnapshots(specs: SnapshotSpec[], context: SnapshotContext): Promise<Snapshot[]> {
  return (await openAll(specs, context, false)) as Snapshot[]
}

/**
 * Opens the snapshots to serve: like `openSnapshots`, except that a `lazy: true` snapshot whose
 * source cannot be opened is returned pending, listed but unreadable, while its open is retried
 * in the background with backoff, each failure logged.
 */
export async function openForServing(specs: SnapshotSpec[], context: SnapshotContext): Promise<Array<Snapshot | PendingSnapshot>> {
  return openAll(specs, context, true)
}

async function openAll(specs: SnapshotSpec[], context: SnapshotContext, allowLazy: boolean): Promise<Array<Snapshot | PendingSnapshot>> {
  const results = await Promise.allSettled(specs.map((spec) => openSnapshot(spec, context)))
  const failure = results.find((result, index) => result.status === 'rejected' && !(allowLazy && specs[index]!.lazy))
  if (failure) {
    await Promise.allSettled(results.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
    throw (failure as PromiseRejectedResult).reason
  }
  return results.map((result, index) => {
    const spec = specs[index]!
    if (result.status === 'fulfilled') return { name: spec.name, spec, backend: result.value }
    context.logger.warn(`${spec.name}: source cannot be opened: ${message(result.reason)}; listed anyway (lazy), unreadable (EIO) until it answers, retried in the background`)
    return openLazily(spec, context)
  })
}

/**
 * Retries opening `spec` until it opens or `cancel()` is called; the first attempt has failed.
 * Once cancelled, `ready` rejects, and a backend an attempt under way opens after all is closed:
 * a cancelled snapshot never hands one out.
 */
function openLazily(spec: SnapshotSpec, context: SnapshotContext): PendingSnapshot {
  const abort = new AbortController()
  const ready = (async (): Promise<StorageBackend> => {
    let delay = LAZY_RETRY_FIRST_MS
    for (let attempt = 2; ; attempt++) {
      await sleep(delay, undefined, { signal: abort.signal })
      let backend: StorageBackend
      try {
        backend = await openSnapshot(spec, context)
      } catch (err) {
        delay = Math.min(delay * 2, LAZY_RETRY_MAX_MS)
        context.logger.warn(`${spec.name}: source still cannot be opened (attempt ${attempt}): ${message(err)}; next attempt in ${delay / 1000} s`)
        continue
      }
      if (abort.signal.aborted) {
        await backend.close()
        throw abort.signal.reason
      }
      context.logger.info(`${spec.name}: source opened on attempt ${attempt}; now readable`)
      return backend
      // The loop ends only by returning the backend or by cancel() rejecting: its way out at the
      // bottom is never taken.
      /* c8 ignore start */
    }
  })()
  /* c8 ignore stop */
  return { name: spec.name, spec, ready, cancel: () => abort.abort() }
}

/**
 * Closes snapshots nobody will serve (what a reload abandoned by a stop opened): their backends,
 * and the retries of lazy ones, once those have let go.
 */
export async function closeSnapshots(snapshots: ReadonlyArray<Snapshot | PendingSnapshot>): Promise<void> {
  await Promise.allSettled(
    snapshots.map((snapshot) => {
      if ('backend' in snapshot) return snapshot.backend.close()
      snapshot.cancel()
      // Rejects once cancelled; nobody else waits for it.
      return snapshot.ready.catch(() => undefined)
    }),
  )
}

function message(err: unknown): string {
  return (err as Error).message
}

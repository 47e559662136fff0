import type { SnapshotSpec } from '../config/config.js'
import { openBackend, type OpenContext } from '../backend/open-backend.js'
import type { Snapshot } from '../fuse/snapshot-fs.js'

/**
 * Opens every snapshot's backend, all at once. If any fails, the ones already open are closed
 * before the error goes up: a refused start leaves nothing open behind it.
 */
export async function openSnapshots(specs: SnapshotSpec[], context: OpenContext): Promise<Snapshot[]> {
  const results = await Promise.allSettled(specs.map((spec) => openBackend(spec, context)))
  const failure = results.find((result) => result.status === 'rejected')
  if (failure) {
    await Promise.allSettled(results.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)))
    throw failure.reason
  }
  return results.map((result, index) => ({
    name: specs[index]!.name,
    spec: specs[index]!,
    backend: (result as PromiseFulfilledResult<Snapshot['backend']>).value,
  }))
}

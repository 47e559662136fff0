import type { SnapshotSpec } from '../config/config.js'
import type { OpenContext } from './open-context.js'
import type { StorageBackend } from './storage-backend.js'
import { FileBackend } from './file-backend.js'
import { MmapBackend } from './mmap-backend.js'
import type { LocalSourceOptions } from './local-source.js'
import { openHttpBackend } from './http/open-http.js'
import { remoteRetryPolicy } from './remote/retry-policy.js'

/**
 * Opens the backend a validated snapshot spec names, as it is: no cache, no metering (the layers
 * around it are put on where snapshots are opened, src/snapshots/open-snapshot.ts).
 */
export async function openBackend(spec: SnapshotSpec, context: OpenContext): Promise<StorageBackend> {
  switch (spec.type) {
    case 'file':
      return FileBackend.open(spec.path, localOptions(spec.name, context))
    case 'mmap':
      return MmapBackend.open(spec.path, localOptions(spec.name, context))
    case 'http':
      return openHttpBackend(spec, context)
    case 's3': {
      // Loaded only when a snapshot needs it: the AWS SDK is a quarter of the daemon's memory.
      const { S3Backend } = await import('./s3/s3-backend.js')
      return S3Backend.open({ ...spec, retry: remoteRetryPolicy(spec), logger: context.logger, observer: context.observe?.(spec.name) })
    }
  }
}

/** A local source's open deadline, and the one log line its change gets (source-pin.ts). */
function localOptions(name: string, { openTimeoutMs, logger }: OpenContext): LocalSourceOptions {
  return {
    timeoutMs: openTimeoutMs,
    onChanged: (change) => logger.error(`${name}: ${change.message}; until then its reads fail (EIO)`, { snapshot: name, code: change.code }),
  }
}

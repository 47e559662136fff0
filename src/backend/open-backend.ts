import type { SnapshotSpec } from '../config/config.js'
import type { OpenContext } from './open-context.js'
import type { StorageBackend } from './storage-backend.js'
import { FileBackend } from './file-backend.js'
import type { LocalSourceOptions } from './local-source.js'
import { remoteRetryPolicy } from './remote/retry-policy.js'
import { openMirrors } from './mirrors/open-mirrors.js'

/**
 * Opens the backend a validated snapshot spec names, as it is: no cache, no metering (the layers
 * around it are put on where snapshots are opened, src/snapshots/open-snapshot.ts).
 */
export async function openBackend(spec: SnapshotSpec, context: OpenContext): Promise<StorageBackend> {
  if ((spec.type === 'http' || spec.type === 's3') && spec.sources) {
    return openMirrors({ ...spec, sources: spec.sources }, { logger: context.logger, openSource: (source) => openBackend(source, context) })
  }
  // Each backend but the plain file is loaded when a snapshot needs it: a daemon is started per
  // mount, often per VM, and start to mounted is a target (issue 17). mmap-io is a native addon;
  // the HTTP backend brings node:tls.
  switch (spec.type) {
    case 'file':
      return FileBackend.open(spec.path, localOptions(spec.name, context))
    case 'mmap': {
      const { MmapBackend } = await import('./mmap-backend.js')
      return MmapBackend.open(spec.path, localOptions(spec.name, context))
    }
    case 'http': {
      const { openHttpBackend } = await import('./http/open-http.js')
      return openHttpBackend(spec, context)
    }
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

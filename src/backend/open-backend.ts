import type { SnapshotSpec } from '../config/config.js'
import type { StorageBackend } from './storage-backend.js'
import { FileBackend } from './file-backend.js'
import { MmapBackend } from './mmap-backend.js'
import { openHttpBackend, type OpenContext } from './http/open-http.js'
import { remoteRetryPolicy } from './remote/retry-policy.js'
import { CachingBackend } from '../cache/caching-backend.js'

export type { OpenContext }

/** Opens the backend a validated snapshot spec names. */
export async function openBackend(spec: SnapshotSpec, context: OpenContext): Promise<StorageBackend> {
  switch (spec.type) {
    case 'file':
      return FileBackend.open(spec.path)
    case 'mmap':
      return MmapBackend.open(spec.path)
    case 'http':
      return cached(await openHttpBackend(spec, context), spec.connections, context)
    case 's3': {
      // Loaded only when a snapshot needs it: the AWS SDK is a quarter of the daemon's memory.
      const { S3Backend } = await import('./s3/s3-backend.js')
      const backend = await S3Backend.open({ ...spec, retry: remoteRetryPolicy(spec), logger: context.logger, observer: context.observe?.(spec.name) })
      return cached(backend, spec.connections, context)
    }
  }
}

/** Remote snapshots read through the shared block cache; local ones rely on the kernel's page cache. */
function cached(backend: StorageBackend, connections: number, { cache }: OpenContext): StorageBackend {
  return cache ? new CachingBackend(backend, cache, { connections }) : backend
}

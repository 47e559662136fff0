import type { SnapshotSpec } from '../config/config.js'
import type { StorageBackend } from './storage-backend.js'
import { FileBackend } from './file-backend.js'
import { MmapBackend } from './mmap-backend.js'
import { openHttpBackend, type OpenContext } from './http/open-http.js'
import { remoteRetryPolicy } from './remote/retry-policy.js'
import { S3Backend } from './s3/s3-backend.js'

export type { OpenContext }

/** Opens the backend a validated snapshot spec names. */
export async function openBackend(spec: SnapshotSpec, context: OpenContext): Promise<StorageBackend> {
  switch (spec.type) {
    case 'file':
      return FileBackend.open(spec.path)
    case 'mmap':
      return MmapBackend.open(spec.path)
    case 'http':
      return openHttpBackend(spec, context)
    case 's3':
      return S3Backend.open({ ...spec, retry: remoteRetryPolicy(spec), logger: context.logger, observer: context.observe?.(spec.name) })
  }
}

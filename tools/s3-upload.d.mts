import type { S3Client } from '@aws-sdk/client-s3'

/** Multipart part size: 64 MiB (10,000 parts make 625 GiB). */
export declare const PART_BYTES: number
/** Parts uploaded at once. */
export declare const PARTS_IN_FLIGHT: number

/**
 * Uploads the file at `path` as `key`, streamed from disk, and resolves with the object's ETag:
 * one PutObject up to PART_BYTES (the ETag is then the MD5 of the bytes), a multipart upload past
 * it (aborted if a part fails). `client` must be built with `requestChecksumCalculation:
 * 'WHEN_REQUIRED'` (see s3Client in radosgw.d.mts): Ceph 16 refuses aws-chunked bodies with 411.
 */
export declare function uploadFile(client: S3Client, bucket: string, key: string, path: string): Promise<string>

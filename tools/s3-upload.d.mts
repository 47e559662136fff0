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
export declare function uploadFile(client: S3Client, bucket: string, key: string, path: string, options?: UploadOptions): Promise<string>

export interface UploadOptions {
  /**
   * Where the file may hold other than zeros (a sparse image's data). A part outside all of them
   * is not read nor sent: it is copied on the server from an object of zeros uploaded once and
   * deleted at the end, which gives the same object and ETag. Wrong extents upload wrong bytes.
   */
  dataExtents?: ReadonlyArray<{ offset: number; length: number }>
}

// Uploads a file from disk to an S3 server, for the tests (test/fixtures/s3-upload.ts re-exports
// it) and the benchmark's S3 part (through tools/radosgw.mjs). Plain JavaScript so the bench runs
// it as is; the types are in s3-upload.d.mts.

import { randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'

/**
 * 64 MiB parts: S3 allows at most 10,000 parts, so files up to 625 GiB fit, and a 5 GiB image
 * goes up in 81 requests rather than thousands. Parts are streamed from disk, never buffered.
 */
export const PART_BYTES = 64 * 1024 * 1024
/**
 * Parts in flight at once. Measured against radosgw on 2 cores with a 5 GiB sparse file: 2, 4
 * and 8 all took 15–20 s (the gateway's MD5 of each part is the bottleneck); 4 is the middle.
 */
export const PARTS_IN_FLIGHT = 4

/**
 * Uploads the file at `path` as `key` and resolves with the object's ETag. A file of at most one
 * part goes up as one PutObject (its ETag is then the MD5 of the bytes); a larger one as a
 * multipart upload, aborted if any part fails so the server keeps no orphaned parts.
 *
 * Bodies are file streams with an explicit length, so memory stays at a few MiB per part in
 * flight whatever the file's size. The client must be built with
 * `requestChecksumCalculation: 'WHEN_REQUIRED'`: the SDK's default sends a streamed body as
 * aws-chunked with a trailing checksum, which servers that predate it (Ceph 16) refuse with 411.
 *
 * `dataExtents`, if given, are where the file may hold other than zeros (a sparse image's data):
 * a part outside all of them is not read nor sent but copied on the server (UploadPartCopy) from
 * one object of zeros uploaded first and deleted at the end. The object and its ETag are the same
 * (a part's ETag is the MD5 of its bytes either way). Reading a hole costs as much as reading data
 * (the page cache fills with zeros): the 5 GiB sparse image of the radosgw tests went up in
 * 26-28 s, 15 CPU-s of them this process's, and goes up in 11 s with 0.6 CPU-s so (both measured
 * at load 5-11).
 */
export async function uploadFile(client, bucket, key, path, { dataExtents } = {}) {
  const { size } = await stat(path)
  if (size <= PART_BYTES) {
    const { ETag } = await sendStreamed(0, size, (body) =>
      client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size })),
    )
    return required(ETag, `PutObject ${key}`)
  }

  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
  const uploadId = required(UploadId, `CreateMultipartUpload ${key}`, 'UploadId')
  const count = Math.ceil(size / PART_BYTES)
  const etags = []
  /** The object zero parts are copied from, uploaded at the first one and deleted at the end. */
  const zeroKey = `snapmount-upload-zeros-${randomUUID()}`
  let zeroObject
  try {
    let next = 0
    let failed = false
    const worker = async () => {
      while (!failed && next < count) {
        const index = next++
        const start = index * PART_BYTES
        const end = Math.min(size, start + PART_BYTES)
        try {
          if (dataExtents && !dataExtents.some(({ offset, length }) => offset < end && start < offset + length)) {
            await (zeroObject ??= client.send(new PutObjectCommand({ Bucket: bucket, Key: zeroKey, Body: Buffer.alloc(PART_BYTES), ContentLength: PART_BYTES })))
            const { CopyPartResult } = await client.send(
              new UploadPartCopyCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: index + 1,
                CopySource: `${bucket}/${zeroKey}`,
                CopySourceRange: `bytes=0-${end - start - 1}`,
              }),
            )
            etags[index] = required(CopyPartResult?.ETag, `UploadPartCopy ${index + 1} of ${key}`)
            continue
          }
          const { ETag } = await sendStreamed(start, end, (body) =>
            client.send(
              new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: index + 1, Body: body, ContentLength: end - start }),
            ),
          )
          etags[index] = required(ETag, `UploadPart ${index + 1} of ${key}`)
        } catch (err) {
          failed = true
          throw err
        }
      }
    }
    // Settled, not Promise.all: the abort below must not overtake parts still in flight.
    const workers = await Promise.allSettled(Array.from({ length: Math.min(PARTS_IN_FLIGHT, count) }, worker))
    for (const result of workers) if (result.status === 'rejected') throw result.reason
    const { ETag } = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((etag, index) => ({ ETag: etag, PartNumber: index + 1 })) },
      }),
    )
    if (ETag) return ETag
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => {})
    throw err
  } finally {
    if (zeroObject) await zeroObject.then(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: zeroKey }))).catch(() => {})
  }
  // Ceph 16's radosgw answers CompleteMultipartUpload with an empty <ETag></ETag> (fixed in
  // later releases); the object has its ETag all the same.
  const { ETag } = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  return required(ETag, `HeadObject ${key}`)

  function sendStreamed(start, end, send) {
    // createReadStream's `end` is inclusive: an empty range has to be an empty buffer.
    if (end === start) return send(Buffer.alloc(0))
    const body = createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 })
    // A stream the SDK never read (the request failed first) would hold its file descriptor open.
    return send(body).finally(() => body.destroy())
  }
}

function required(value, what, field = 'ETag') {
  if (!value) throw new Error(`${what}: the response has no ${field}`)
  return value
}

import type { HttpSnapshotSpec, RemoteSourceSpec, S3SnapshotSpec, SnapshotSpec } from '../../config/config.js'
import type { StorageBackend } from '../storage-backend.js'
import { SourceOpenError, describe } from '../errors.js'
import { redactUrl } from '../../redact.js'
import { RetriesExhaustedError } from '../remote/remote-errors.js'
import { backoffDelay, remoteRetryPolicy } from '../remote/retry-policy.js'
import type { Logger } from '../../log.js'
import { MirrorBackend } from './mirror-backend.js'

/** Bytes of each sampled block compared between sources whose ETags cannot be compared. */
const SAMPLE_BYTES = 64 * 1024
/** The first and last blocks (headers, partition tables, backup GPT) and two chosen at random. */
const RANDOM_SAMPLES = 2

/** A backend that can say which strong ETag its reads are pinned to (HTTP and S3 do). */
interface Pinned {
  strongEtag(): string | undefined
}

export interface OpenMirrorsOptions {
  logger: Logger
  /** Opens one source as a snapshot of its own (open-backend.ts's openBackend). */
  openSource(spec: SnapshotSpec): Promise<StorageBackend>
  random?: () => number
}

/** How a source is named in status, logs and messages. */
export function sourceLabel(source: RemoteSourceSpec): string {
  return source.type === 'http' ? redactUrl(source.url) : `s3://${source.bucket}/${source.key}`
}

/**
 * Opens every source of a mirrored snapshot, checks they hold the same image, and serves them as
 * one backend (mirror-backend.ts). A source that cannot be opened refuses the start, as a single
 * source would: it cannot be checked against the others (`lazy: true` retries it later).
 *
 * The same image: the same size; and the same strong ETag among the sources of one kind (HTTP
 * servers, S3 stores) that all give one, since one kind computes it alike from the same bytes
 * (nginx from size and mtime, S3 from content). Sources whose ETags say nothing of each other (an
 * HTTP server and a store; a server with Last-Modified only) are compared by their bytes instead,
 * in SAMPLE_BYTES blocks: the first, the last and RANDOM_SAMPLES at random (a different draw on
 * each host). Sampling catches another image, not a damaged block: with a manifest, every block
 * is checked against its digest as it is read (the verifying layer above, through `sourceSet`).
 * With a manifest (pinned by its SHA-256, it names the image) another ETag is not a refusal by
 * itself: copies made apart (another mtime, so another ETag from a static server) are the same
 * image to it, so such a source is compared by its sampled bytes instead, and refused only if they
 * differ. Sources with the same ETag are not sampled, with a manifest or without: a copy damaged
 * under the right ETag is the verifying layer's to route around, block by block.
 */
export async function openMirrors(spec: (HttpSnapshotSpec | S3SnapshotSpec) & { sources: RemoteSourceSpec[] }, options: OpenMirrorsOptions): Promise<MirrorBackend> {
  const { sources } = spec
  const labels = sources.map(sourceLabel)
  const random = options.random ?? Math.random
  const opened = await Promise.allSettled(sources.map((source) => openTimed({ ...source, name: spec.name, maxAttempts: 1 }, spec.maxAttempts, options.openSource, random)))
  const backends = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value.backend] : []))
  try {
    const failure = opened.find((result) => result.status === 'rejected')
    if (failure) throw failure.reason
    await checkSameImage(spec.name, sources, backends, labels, random, spec.manifest !== undefined)
  } catch (err) {
    await Promise.all(backends.map((backend) => backend.close()))
    throw err
  }
  return new MirrorBackend({
    name: spec.name,
    sources: backends,
    labels,
    retry: remoteRetryPolicy(spec),
    logger: options.logger,
    // The open was a HEAD and a one-byte GET: half of it is one request's round trip.
    initialLatencyMs: opened.map((result) => (result as PromiseFulfilledResult<{ ms: number }>).value.ms / 2),
    random,
  })
}

/**
 * Opens one source, each request a single attempt (the mirror's loop retries reads across
 * sources); the open itself is tried up to `maxAttempts` times while its failure is one a retry
 * could cure, as a single source's open would be.
 */
async function openTimed(spec: SnapshotSpec, maxAttempts: number, open: OpenMirrorsOptions['openSource'], random: () => number): Promise<{ backend: StorageBackend; ms: number }> {
  const policy = remoteRetryPolicy({ maxAttempts, readDeadlineMs: Infinity })
  for (let attempt = 1; ; attempt++) {
    const started = performance.now()
    try {
      const backend = await open(spec)
      return { backend, ms: performance.now() - started }
    } catch (err) {
      // The open's own loop gives up with RetriesExhaustedError on what a retry could cure.
      const retryable = err instanceof SourceOpenError && err.cause instanceof RetriesExhaustedError
      if (!retryable || attempt >= maxAttempts) throw err
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(policy, attempt, random)))
    }
  }
  /* c8 ignore next -- the loop is left only by return or throw, but V8 counts its exit as code */
}

async function checkSameImage(name: string, specs: RemoteSourceSpec[], backends: StorageBackend[], labels: string[], random: () => number, manifest: boolean): Promise<void> {
  const refuse = (other: number, problem: string, fix: string) =>
    new SourceOpenError(`snapshot ${name}: ${labels[0]} and ${labels[other]} are not the same image: ${problem}`, fix)
  const size = backends[0]!.length
  backends.forEach((backend, index) => {
    if (backend.length !== size) {
      throw refuse(index, `${labels[0]} is ${size} bytes, ${labels[index]} is ${backend.length} bytes`, 'serve one image from every source of the snapshot')
    }
  })
  const etags = backends.map((backend) => (backend as Partial<Pinned>).strongEtag?.())
  // Compared with the first source of the same kind that has one; a differing ETag is another image.
  const checkedByEtag = new Set<number>()
  etags.forEach((etag, index) => {
    const first = etags.findIndex((other, at) => other !== undefined && specs[at]!.type === specs[index]!.type)
    if (etag === undefined || first === index) return
    if (etags[first] !== etag) {
      // With a manifest: a copy made apart until its sampled bytes (below) say otherwise.
      if (manifest) return
      throw new SourceOpenError(
        `snapshot ${name}: ${labels[first]} and ${labels[index]} are not the same image: ETag ${etags[first]} and ${etag}`,
        'serve one image from every source (copies that keep the mtime, e.g. rsync -t, keep the ETag of a static server the same)',
      )
    }
    if (first === 0) checkedByEtag.add(index)
  })
  const unchecked = backends.map((_, index) => index).filter((index) => index > 0 && !checkedByEtag.has(index))
  if (unchecked.length === 0) return
  const samples = sampleRanges(size, random)
  const read = (index: number, [offset, length]: [number, number]) =>
    backends[index]!.readExact(offset, length).catch((cause: unknown) => {
      throw new SourceOpenError(`snapshot ${name}: cannot read bytes ${offset}-${offset + length - 1} of ${labels[index]} to compare the mirrors: ${describe(cause)}`, 'check that every source is up and serves the image', { cause })
    })
  const reference = await Promise.all(samples.map((range) => read(0, range)))
  for (const index of unchecked) {
    const bytes = await Promise.all(samples.map((range) => read(index, range)))
    const differs = bytes.findIndex((block, at) => !block.equals(reference[at]!))
    if (differs >= 0) {
      const [offset, length] = samples[differs]!
      throw refuse(index, `bytes ${offset}-${offset + length - 1} differ`, 'serve one image from every source of the snapshot')
    }
  }
}

/** [offset, length] of the blocks compared: the first, the last and a few at random, none twice. */
function sampleRanges(size: number, random: () => number): Array<[number, number]> {
  if (size === 0) return []
  const length = Math.min(SAMPLE_BYTES, size)
  const offsets = [0, size - length, ...Array.from({ length: RANDOM_SAMPLES }, () => Math.floor(random() * (size - length + 1)))]
  return [...new Set(offsets)].map((offset) => [offset, length])
}

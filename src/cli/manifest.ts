import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import type { Argv, CommandModule } from 'yargs'
import type { Logger } from '../log.js'
import { InputError } from '../errors.js'
import type { MountOptions, SnapshotSpec } from '../config/config.js'
import { loadConfig } from '../config/load-config.js'
import { validateConfig } from '../config/validate-config.js'
import { parseSource } from '../config/parse-source.js'
import { openBackend } from '../backend/open-backend.js'
import type { StorageBackend } from '../backend/storage-backend.js'
import { DEFAULT_HASH_ALGORITHM, HASH_ALGORITHMS, MANIFEST_BLOCK_BYTES, blockCountOf, encodeManifest, isManifestBlockSize, manifestSha256, type HashAlgorithm, type Manifest } from '../manifest/format.js'
import { HashPool } from '../manifest/hash-pool.js'
import { checkManifest, readManifestBytes } from '../manifest/load.js'
import { badRanges, describeRange, digestImage } from '../manifest/scan.js'
import type { Runner } from './control-target.js'
import { commandGroup } from './command-group.js'
import { formatSize } from './format.js'
import { progress, type ProgressStream } from './progress.js'

/** What the manifest commands need from main(). */
export interface ManifestCommandContext {
  run: Runner
  logger: Logger
  defaults: () => MountOptions
  env: Record<string, string | undefined>
  stdout: { write(data: string | Uint8Array): unknown }
  stderr: ProgressStream
}

interface SourceArgs {
  config?: string | undefined
}

interface CreateArgs extends SourceArgs {
  source?: string | undefined
  'block-size'?: string | undefined
  output?: string | undefined
  algorithm?: string | undefined
}

interface VerifyArgs extends SourceArgs {
  source?: string | undefined
  manifest?: string | undefined
  sha256?: string | undefined
}

class ManifestUsageError extends InputError {
  readonly code = 'E_USAGE'
}

const SOURCE_HELP = 'an image: PATH, file:///PATH, http(s)://URL, s3://BUCKET/KEY, or a snapshot name of --config'

/** `snapmount manifest create|verify`: integrity manifests of images (docs/manifest.md). */
export function manifestCommand(context: ManifestCommandContext): CommandModule {
  const subcommands = [createCommand(context), verifyCommand(context)] as never[]
  return commandGroup('manifest <command>', 'create or check an integrity manifest (a digest per block) of an image', subcommands, 'give a command: create or verify')
}

function withSourceOptions<T>(y: Argv<T>) {
  return y.option('config', { alias: 'c', type: 'string', describe: 'a config whose snapshot names (and their headers, endpoints, TLS files) SOURCE may use' })
}

function createCommand(context: ManifestCommandContext): CommandModule<object, CreateArgs> {
  return {
    command: 'create <source>',
    describe: 'hash every block of an image and write its manifest; prints the manifest\'s SHA-256 to pin',
    builder: (y) =>
      withSourceOptions(y)
        .positional('source', { type: 'string', describe: SOURCE_HELP })
        .option('block-size', { type: 'string', describe: `bytes per block, a power of two from 4K to 4M (default ${MANIFEST_BLOCK_BYTES.default / 1024}K: the cache block)` })
        .option('algorithm', { type: 'string', choices: Object.keys(HASH_ALGORITHMS), describe: `block digest (default ${DEFAULT_HASH_ALGORITHM}; sha256 for standard tools)` })
        .option('output', { alias: 'o', type: 'string', describe: 'write the manifest to this file (default: stdout)' })
        .example('$0 manifest create https://images.example.com/base.img -o base.img.manifest', 'prints "SHA256  base.img.manifest"') as never,
    handler: (args) =>
      context.run(async () => {
        const blockBytes = parseBlockSize(args['block-size'])
        const algorithm = (args.algorithm ?? DEFAULT_HASH_ALGORITHM) as HashAlgorithm
        const manifest = await withSource(args.source!, args, context, async (backend, pool) => {
          const digests = await hashWithProgress(backend, { algorithm, blockBytes, pool }, context, `manifest ${args.source}`)
          return { algorithm, blockBytes, imageBytes: backend.length, blockCount: blockCountOf(backend.length, blockBytes), digests } satisfies Manifest
        })
        const bytes = encodeManifest(manifest)
        const sha256 = manifestSha256(bytes)
        if (args.output !== undefined) {
          await writeFile(args.output, bytes)
          context.stdout.write(`${sha256}  ${args.output}\n`)
        } else {
          context.stdout.write(bytes)
        }
        context.logger.info(`manifest of ${args.source}: ${manifest.blockCount} ${algorithm} digests of ${formatSize(blockBytes)} blocks; its SHA-256 (pin this): ${sha256}`)
      })(),
  }
}

function verifyCommand(context: ManifestCommandContext): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <source> <manifest>',
    describe: 'check every block of an image against a manifest; names the ranges that differ (exit 1)',
    builder: (y) =>
      withSourceOptions(y)
        .positional('source', { type: 'string', describe: SOURCE_HELP })
        .positional('manifest', { type: 'string', describe: 'the manifest: PATH, http(s)://URL or s3://BUCKET/KEY' })
        .option('sha256', { type: 'string', describe: "the manifest's pinned SHA-256: refuse (exit 2) a manifest with another" })
        .example('$0 manifest verify base.img base.img.manifest --sha256 HEX', 'check a local image') as never,
    handler: (args) =>
      context.run(async () => {
        const manifestSpec = await specFor(args.manifest!, args, context)
        return withSource(args.source!, args, context, async (backend, pool) => {
          const label = `manifest ${args.manifest}`
          const manifest = checkManifest(await readManifestBytes(manifestSpec, context, label), { sha256: args.sha256, imageBytes: backend.length, label })
          const digests = await hashWithProgress(backend, { algorithm: manifest.algorithm, blockBytes: manifest.blockBytes, pool }, context, `verify ${args.source}`)
          const bad = badRanges(manifest, digests)
          for (const range of bad) context.stdout.write(`BAD  ${describeRange(range)}\n`)
          if (bad.length > 0) {
            const blocks = bad.reduce((sum, range) => sum + range.lastBlock - range.firstBlock + 1, 0)
            context.logger.error(`${args.source}: ${blocks} of ${manifest.blockCount} blocks differ from the manifest, in ${bad.length} range(s)`, { code: 'E_BLOCK_DIGEST' })
            return 1
          }
          context.stdout.write(`OK  ${manifest.blockCount} blocks (${formatSize(manifest.imageBytes)}) match\n`)
          return 0
        })
      })(),
  }
}

/** `--block-size`: bytes, or with K/KiB or M/MiB. */
function parseBlockSize(text: string | undefined): number {
  if (text === undefined) return MANIFEST_BLOCK_BYTES.default
  const match = /^(\d+)\s*(k|kib|m|mib)?$/i.exec(text.trim())
  const unit = match?.[2]?.[0]?.toLowerCase()
  const bytes = match ? Number(match[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1) : NaN
  if (!isManifestBlockSize(bytes)) throw new ManifestUsageError(`--block-size ${text} is not a power of two from 4K to 4M`, 'give e.g. --block-size 128K')
  return bytes
}

/**
 * The spec of a source given on the command line: a snapshot of --config by that name (with its
 * headers, endpoint, TLS files), else the source parsed and validated as `mount` does.
 */
async function specFor(source: string, args: SourceArgs, context: ManifestCommandContext): Promise<SnapshotSpec> {
  if (args.config !== undefined) {
    const named = (await loadConfig(args.config, context.defaults())).snapshots.find((spec) => spec.name === source)
    if (named) return named
  }
  // The mountpoint is needed by the validation only; nothing is mounted.
  const raw = { mountpoint: '/', snapshots: [parseSource(source, 1)] }
  return validateConfig(raw, { origin: 'command line', baseDir: process.cwd(), defaults: context.defaults() }).snapshots[0]!
}

/** Opens `source` as it is (no cache) with a hash pool of a thread per CPU, and closes both after `work`. */
async function withSource<T>(source: string, args: SourceArgs, context: ManifestCommandContext, work: (backend: StorageBackend, pool: HashPool) => Promise<T>): Promise<T> {
  const backend = await openBackend(await specFor(source, args, context), { env: context.env, logger: context.logger })
  const pool = new HashPool(availableParallelism())
  try {
    return await work(backend, pool)
  } finally {
    await Promise.allSettled([backend.close(), pool.close()])
  }
}

async function hashWithProgress(backend: StorageBackend, options: { algorithm: HashAlgorithm; blockBytes: number; pool: HashPool }, context: ManifestCommandContext, label: string): Promise<Buffer> {
  const bar = progress(context.stderr, label)
  try {
    return await digestImage(backend, { ...options, progress: bar.update })
  } finally {
    bar.finish()
  }
}

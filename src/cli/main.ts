import { createRequire } from 'node:module'
import { inspect } from 'node:util'
import { resolve } from 'node:path'
import yargs, { type Argv } from 'yargs'
import { InputError } from '../errors.js'
import { atLevel, logFormatFrom, stderrLogger, type Logger } from '../log.js'
import type { Config, MountOptions } from '../config/config.js'
import { CACHE_BLOCK_KIB, CACHE_SIZE_MIB, CACHE_SIZE_WITH_DISK_MIB, DISK_CACHE_SIZE_GIB, READ_TIMEOUT_MS } from '../config/config.js'
import { loadConfig } from '../config/load-config.js'
import { validateConfig, validateOptions } from '../config/validate-config.js'
import { parseSource } from '../config/parse-source.js'
import { ConfigError } from '../config/config-error.js'
import { openSnapshots } from './open-snapshots.js'
import type { OpenContext } from '../backend/open-context.js'
import { runMount } from './run-mount.js'
import { resolveMountpoint } from '../fuse/mountpoint.js'
import { accessInWords, resolveOwnership } from '../fuse/access.js'
import { formatSize } from './format.js'
import { OBSERVABILITY_DEFAULTS, observabilityFlags, withObservabilityOptions, type ObservabilityArgs } from './observability.js'
import { statusCommand } from './status.js'
import { warmCommand } from './warm.js'
import { verifyCommand } from './verify.js'
import { manifestCommand } from './manifest.js'
import { profileCommand } from './profile.js'

/** Exit codes: 0 done, 1 failed while running, 2 bad input (nothing was mounted). */
export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const

class UsageError extends InputError {
  readonly code = 'E_USAGE'
}

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

interface CommonArgs extends ObservabilityArgs {
  config?: string | undefined
  'allow-other'?: boolean | undefined
  uid?: string | undefined
  gid?: string | undefined
  umask?: string | undefined
  'read-timeout-ms'?: number | undefined
  'cache-size-mib'?: number | undefined
  'cache-block-kib'?: number | undefined
  'cache-dir'?: string | undefined
  'disk-cache-size-gib'?: number | undefined
}

/** Parses `argv`, runs the command and resolves to the process exit code. */
export async function main(argv: string[], logger: Logger = stderrLogger({ format: logFormatFrom(process.env.SNAPMOUNT_LOG_FORMAT) })): Promise<number> {
  let exitCode: number = EXIT.ok
  const run = (work: () => Promise<void | number>) => async () => {
    try {
      const code = await work()
      if (code !== undefined) exitCode = code
    } catch (err) {
      exitCode = reportFailure(err, logger)
    }
  }
  const control = { run, logger, defaults: defaultOptions, uid: process.getuid!(), env: process.env, stdout: process.stdout, stderr: process.stderr }

  const parser = yargs(argv)
    .scriptName('snapmount')
    .usage('$0 <command>\n\nServe raw disk images as read-only files in a FUSE mount.')
    .command(
      'mount [mountpoint] [sources..]',
      'mount snapshots and serve them until SIGINT/SIGTERM',
      (y) =>
        withCommonOptions(y)
          .positional('mountpoint', { type: 'string', describe: 'empty directory to mount on (or mountpoint: in --config)' })
          .positional('sources', {
            type: 'string',
            array: true,
            default: [],
            describe: '[name=]PATH | [name=]file:///PATH | [name=]mmap:///PATH | [name=]http(s)://URL | [name=]s3://BUCKET/KEY',
          })
          .example('$0 mount /mnt/snap /var/lib/images/base.img', 'serve one image as /mnt/snap/base.img')
          .example('$0 mount /mnt/snap disk=mmap:///srv/vm.raw', 'serve vm.raw as /mnt/snap/disk via mmap')
          .example('$0 mount --config /etc/snapmount.yaml', 'serve what the config lists'),
      (args) =>
        run(async () => {
          const config = await configFrom(args, args.mountpoint, args.sources)
          await runMount(config, { env: process.env, logger: atLevel(logger, config.options.logLevel) }, () => configFrom(args, args.mountpoint, args.sources))
        })(),
    )
    .command(
      'check',
      'validate a config and open every source, without mounting',
      (y) => withCommonOptions(y).demandOption('config').example('$0 check --config /etc/snapmount.yaml', ''),
      (args) => run(async () => checkConfig(await configFrom(args, undefined, []), { env: process.env, logger }))(),
    )
    .example('$0 mount /mnt/snap /var/lib/images/base.img', 'serve one image as /mnt/snap/base.img')
    .example('$0 check --config /etc/snapmount.yaml', 'validate a config and open its sources')
    .command(statusCommand(control))
    .command(warmCommand(control))
    .command(verifyCommand(control))
    .command(manifestCommand(control))
    .command(profileCommand(control))
    .demandCommand(1, 'give a command: mount, check, status, warm, verify, manifest or profile')
    // Without this, an unknown --some-flag is reported twice, as some-flag and someFlag.
    .parserConfiguration({ 'camel-case-expansion': false })
    // Our own words are English whatever LANG says; yargs would translate only its headings
    // ("Commands:"), and only unbundled: the bundle (scripts/bundle.mjs) has no locale files.
    .detectLocale(false)
    .strict()
    .version(version)
    .help()
    .alias('h', 'help')
    // yargs renders a command's whole help as it starts the command's handler (kept for a failure
    // it would print it with; ours never do). Word-wrapping it measures every word's width: 50-60
    // ms on the way to "mounted", a quarter of the daemon's start. Wrapped only when shown.
    .wrap(argv.includes('--help') || argv.includes('-h') ? 100 : null)
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new UsageError(message, 'see snapmount --help')
    })

  try {
    await parser.parseAsync()
  } catch (err) {
    return reportFailure(err, logger)
  }
  return exitCode
}

function withCommonOptions<T>(y: Argv<T>) {
  return withObservabilityOptions(y)
    .option('config', { alias: 'c', type: 'string', describe: 'YAML or JSON config file' })
    .option('allow-other', { type: 'boolean', describe: 'let other users into the mount (default: on when uid, gid and umask let others read)' })
    .option('uid', { type: 'string', describe: 'owner shown on the files: a number or a user name (default: the daemon\'s)' })
    .option('gid', { type: 'string', describe: 'group shown on the files: a number or a group name (default: the daemon\'s)' })
    .option('umask', { type: 'string', describe: 'octal bits taken from the 0444 file modes, e.g. 0027 (default 0077: owner-only; 0027 with --gid)' })
    .option('read-timeout-ms', {
      type: 'number',
      describe: `answer EIO when a source read takes longer (default ${READ_TIMEOUT_MS.default})`,
    })
    .option('cache-size-mib', { type: 'number', describe: `block cache of remote snapshots, MiB (default ${CACHE_SIZE_MIB.default}; ${CACHE_SIZE_WITH_DISK_MIB} with a disk cache)` })
    .option('cache-block-kib', { type: 'number', describe: `cache block size, KiB, a power of two (default ${CACHE_BLOCK_KIB.default})` })
    .option('cache-dir', { type: 'string', describe: 'keep remote snapshots\' blocks in this directory across restarts (default: no disk cache)' })
    .option('disk-cache-size-gib', { type: 'number', describe: `bound on the disk cache, GiB (default ${DISK_CACHE_SIZE_GIB.default})` })
}

/**
 * Builds the config from --config or from the command line, through the same validation, with
 * the mountpoint's symlinks resolved (at start and at each reload alike).
 */
async function configFrom(args: CommonArgs, mountpoint: string | undefined, sources: string[]): Promise<Config> {
  const config = await validatedConfig(args, mountpoint, sources)
  return { ...config, mountpoint: await resolveMountpoint(config.mountpoint) }
}

async function validatedConfig(args: CommonArgs, mountpoint: string | undefined, sources: string[]): Promise<Config> {
  const origin = 'command line'
  const flags = {
    ...(args['allow-other'] !== undefined && { allow_other: args['allow-other'] }),
    ...(args.uid !== undefined && { uid: args.uid }),
    ...(args.gid !== undefined && { gid: args.gid }),
    ...(args.umask !== undefined && { umask: args.umask }),
    ...(args['read-timeout-ms'] !== undefined && { read_timeout_ms: args['read-timeout-ms'] }),
    ...observabilityFlags(args),
    ...(args['cache-size-mib'] !== undefined && { cache_size_mib: args['cache-size-mib'] }),
    ...(args['cache-block-kib'] !== undefined && { cache_block_kib: args['cache-block-kib'] }),
    ...(args['cache-dir'] !== undefined && { cache_dir: resolve(args['cache-dir']) }),
    ...(args['disk-cache-size-gib'] !== undefined && { disk_cache_size_gib: args['disk-cache-size-gib'] }),
  }
  if (args.config !== undefined) {
    if (mountpoint !== undefined || sources.length > 0) {
      const fix = 'the config file names the mountpoint and the snapshots; remove the extra arguments'
      throw new ConfigError(origin, 'arguments', `${[mountpoint, ...sources].join(' ')} given together with --config`, fix)
    }
    const fromFile = await loadConfig(args.config, defaultOptions())
    return { ...fromFile, options: validateOptions(flags, fromFile.options, origin) }
  }
  if (mountpoint === undefined) {
    throw new UsageError('no mountpoint given', 'write snapmount mount MOUNTPOINT SOURCE.. or use --config')
  }
  if (sources.length === 0) {
    throw new UsageError('no sources given', 'name at least one image: snapmount mount MOUNTPOINT /path/to/image')
  }
  const snapshots = sources.map((source, index) => parseSource(source, index + 1))
  const raw = { mountpoint, options: flags, snapshots }
  return validateConfig(raw, { origin, baseDir: process.cwd(), defaults: defaultOptions() })
}

function defaultOptions(): MountOptions {
  return {
    ...OBSERVABILITY_DEFAULTS,
    allowOther: undefined,
    readTimeoutMs: READ_TIMEOUT_MS.default,
    cacheBytes: CACHE_SIZE_MIB.default * 1024 * 1024,
    blockBytes: CACHE_BLOCK_KIB.default * 1024,
    cacheDir: undefined,
    diskCacheBytes: DISK_CACHE_SIZE_GIB.default * 1024 ** 3,
  }
}

/** One line per snapshot: name, type, exact size, size for people, where it comes from, and who may read it. */
async function checkConfig(config: Config, context: OpenContext): Promise<void> {
  const daemon = { uid: process.getuid!(), gid: process.getgid!() }
  const access = accessInWords(config.options, await resolveOwnership(config.options, daemon), daemon.uid)
  const snapshots = await openSnapshots(config.snapshots, { ...context, openTimeoutMs: config.options.readTimeoutMs })
  try {
    for (const [index, { name, backend }] of snapshots.entries()) {
      const spec = config.snapshots[index]!
      // Both remote backends describe themselves and local specs have a path: the '' is for a
      // remote backend that one day does not, and no test can build one.
      /* c8 ignore next */
      const source = backend.describe?.() ?? ('path' in spec ? spec.path : '')
      process.stdout.write(`${name}\t${spec.type}\t${backend.length}\t${formatSize(backend.length)}\t${source}\t${access}\n`)
    }
  } finally {
    await Promise.allSettled(snapshots.map(({ backend }) => backend.close()))
  }
}

/** One line for the user; exit 2 for input they can fix, 1 for anything else. */
function reportFailure(err: unknown, logger: Logger): number {
  if (err instanceof InputError) {
    logger.error(`${err.message}; ${err.fix}`)
    return EXIT.badInput
  }
  logger.error(inspect(err))
  return EXIT.failed
}

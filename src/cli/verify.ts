import type { CommandModule } from 'yargs'
import type { VerifyResult } from '../control/protocol.js'
import { formatSize } from './format.js'
import { requestWithProgress, withTargetOptions, type ControlCommandContext, type TargetArgs } from './control-target.js'

interface VerifyArgs extends TargetArgs {
  name?: string | undefined
  sha256?: string | undefined
}

/**
 * `snapmount verify NAME --sha256 HEX`: the daemon hashes the snapshot through its backend (what
 * readers get, cache and all) and streams progress back. Exit 0 on a match, 1 on a mismatch or a
 * failed read, 2 for a request that cannot be right (an unknown name, a malformed digest).
 */
export function verifyCommand(context: ControlCommandContext): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <name>',
    describe: 'hash a snapshot through the running daemon and compare it with a SHA-256 digest',
    builder: (y) =>
      withTargetOptions(y)
        .positional('name', { type: 'string', describe: 'the snapshot, as named in the mount' })
        .option('sha256', { type: 'string', demandOption: true, describe: 'the expected digest, 64 hex digits (as sha256sum prints it)' })
        .example('$0 verify base.img --sha256 $(cut -d" " -f1 base.img.sha256)', 'check base.img against its published digest') as never,
    handler: (args) =>
      context.run(async () => {
        const request = { op: 'verify' as const, name: args.name!, sha256: args.sha256! }
        return requestWithProgress(args, context, `verify ${args.name}`, request, (result: VerifyResult) => {
          context.stdout.write(`${result.sha256}  ${result.name}\n`)
          if (!result.match) {
            context.logger.error(`${result.name}: SHA-256 mismatch: got ${result.sha256}, expected ${result.expected}`, { code: 'E_DIGEST_MISMATCH', snapshot: result.name })
            return 1
          }
          context.logger.info(`${result.name}: SHA-256 matches (${formatSize(result.bytes)} in ${result.seconds.toFixed(1)} s)`)
          return 0
        })
      })(),
  }
}

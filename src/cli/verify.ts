import type { CommandModule } from 'yargs'
import type { BlocksVerifyResult, VerifyResult } from '../control/protocol.js'
import { describeRange } from '../manifest/scan.js'
import { formatSize } from './format.js'
import { requestWithProgress, withSnapshotName, type ControlCommandContext, type TargetArgs } from './control-target.js'

interface VerifyArgs extends TargetArgs {
  name?: string | undefined
  sha256?: string | undefined
}

/**
 * `snapmount verify NAME [--sha256 HEX]`: the daemon reads the snapshot through its backend (what
 * readers get, cache and all) and streams progress back. With `--sha256` it hashes the whole
 * image; without, it checks each block against the snapshot's manifest and prints the ranges that
 * differ. Exit 0 on a match, 1 on a mismatch or a failed read, 2 for a request that cannot be
 * right (an unknown name, a malformed digest, no digest and no manifest).
 */
export function verifyCommand(context: ControlCommandContext): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <name>',
    describe: "check a snapshot through the running daemon: against its manifest, block by block, or a SHA-256 of the whole",
    builder: (y) =>
      withSnapshotName(y)
        .option('sha256', { type: 'string', describe: 'the expected digest of the whole image, 64 hex digits (as sha256sum prints it); default: check against the manifest' })
        .example('$0 verify base.img', "check every block of base.img against its manifest")
        .example('$0 verify base.img --sha256 $(cut -d" " -f1 base.img.sha256)', 'check base.img against its published digest') as never,
    handler: (args) =>
      context.run(async () => {
        const name = args.name!
        if (args.sha256 === undefined) {
          return requestWithProgress(args, context, `verify ${name}`, { op: 'verify', name }, (result: BlocksVerifyResult) => {
            for (const range of result.badRanges) context.stdout.write(`BAD  ${describeRange(range)}\n`)
            if (!result.match) {
              const blocks = result.badRanges.reduce((sum, range) => sum + range.lastBlock - range.firstBlock + 1, 0)
              context.logger.error(`${name}: ${blocks} of ${result.blocks} blocks differ from the manifest, in ${result.badRanges.length} range(s)`, { code: 'E_BLOCK_DIGEST', snapshot: name })
              return 1
            }
            context.stdout.write(`OK  ${result.blocks} blocks (${formatSize(result.bytes)}) match the manifest\n`)
            return 0
          })
        }
        const request = { op: 'verify' as const, name, sha256: args.sha256 }
        return requestWithProgress(args, context, `verify ${name}`, request, (result: VerifyResult) => {
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

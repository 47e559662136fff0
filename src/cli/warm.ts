import type { CommandModule } from 'yargs'
import type { WarmResult } from '../control/protocol.js'
import { formatSize } from './format.js'
import { requestWithProgress, withSnapshotName, type ControlCommandContext, type TargetArgs } from './control-target.js'

interface WarmArgs extends TargetArgs {
  name?: string | undefined
  offset?: number | undefined
  length?: number | undefined
}

/** `snapmount warm NAME [--offset N] [--length N]`: read a snapshot (or a range) into the daemon's cache. */
export function warmCommand(context: ControlCommandContext): CommandModule<object, WarmArgs> {
  return {
    command: 'warm <name>',
    describe: "prefetch a snapshot, or a byte range of it, into the running daemon's cache",
    builder: (y) =>
      withSnapshotName(y)
        .option('offset', { type: 'number', describe: 'first byte (default 0)' })
        .option('length', { type: 'number', describe: 'bytes to read (default: to the end)' })
        .example('$0 warm base.img', 'read all of base.img through its backend')
        .example('$0 warm base.img --offset 0 --length 1073741824', 'only its first GiB') as never,
    handler: (args) =>
      context.run(async () => {
        const request = { op: 'warm' as const, name: args.name!, offset: args.offset, length: args.length }
        return requestWithProgress(args, context, `warm ${args.name}`, request, (result: WarmResult) => {
          context.stdout.write(`warmed ${result.name}: ${formatSize(result.length)} from offset ${result.offset} in ${result.seconds.toFixed(1)} s\n`)
          return 0
        })
      })(),
  }
}

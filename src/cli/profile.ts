import { resolve } from 'node:path'
import type { CommandModule } from 'yargs'
import type { ControlRequest, ProfileRecordResult, ProfileWritten } from '../control/protocol.js'
import { PROFILE_IDLE_MS } from '../profile/recording-backend.js'
import { commandGroup } from './command-group.js'
import { formatSize } from './format.js'
import { requestAndShow, withSnapshotName, type ControlCommandContext, type TargetArgs } from './control-target.js'

interface ProfileArgs extends TargetArgs {
  name?: string | undefined
  output?: string | undefined
}

/** `snapmount profile record|stop NAME`: boot profiles of a running daemon's snapshots (docs/profile.md). */
export function profileCommand(context: ControlCommandContext): CommandModule {
  const subcommands = [recordCommand(context), stopCommand(context)] as never[]
  return commandGroup('profile <command>', 'record which blocks a boot reads (a boot profile), for later cold starts to prefetch', subcommands, 'give a command: record or stop')
}

function recordCommand(context: ControlCommandContext): CommandModule<object, ProfileArgs> {
  return {
    command: 'record <name>',
    describe: 'start recording the blocks a snapshot\'s readers read, in order, from its next read',
    builder: (y) =>
      withSnapshotName(y)
        .option('output', { alias: 'o', type: 'string', describe: 'write the profile to this file (default: its prefetch_profile path, else the disk cache\'s place for it)' })
        .example('$0 profile record base.img -o base.img.profile.json', 'then boot a VM from it') as never,
    handler: (args) =>
      control(args, context, { op: 'profile-record', name: args.name!, output: args.output === undefined ? undefined : resolve(args.output) }, ({ name, path }: ProfileRecordResult) =>
        `recording ${name}'s boot profile to ${path}; written at snapmount profile stop ${name}, once no new block is read for ${PROFILE_IDLE_MS / 1000} s, or at unmount\n`,
      ),
  }
}

function stopCommand(context: ControlCommandContext): CommandModule<object, ProfileArgs> {
  return {
    command: 'stop <name>',
    describe: 'stop recording a snapshot\'s boot profile and write it',
    builder: (y) => withSnapshotName(y) as never,
    handler: (args) => control(args, context, { op: 'profile-stop', name: args.name! }, describeWritten),
  }
}

/** One line: where, and what it holds. */
export function describeWritten({ name, path, runs, blocks, bytes, spanMs, full }: ProfileWritten): string {
  const bound = full ? ' (it reached its bound: the reads after it are not in it)' : ''
  return `wrote ${name}'s boot profile to ${path}: ${runs} runs, ${blocks} blocks, ${formatSize(bytes)}, read over ${(spanMs / 1000).toFixed(1)} s${bound}\n`
}

function control<T>(args: TargetArgs, context: ControlCommandContext, request: ControlRequest, show: (result: T) => string): Promise<void> {
  return context.run(() => requestAndShow(args, context, request, show))()
}

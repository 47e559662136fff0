import type { CommandModule } from 'yargs'

/**
 * A command made of subcommands (`manifest create|verify`, `profile record|stop`): one of them
 * must be given, and `demand` says which there are when none is.
 */
export function commandGroup(command: string, describe: string, subcommands: readonly CommandModule[], demand: string): CommandModule {
  return {
    command,
    describe,
    builder: (y) => subcommands.reduce((argv, subcommand) => argv.command(subcommand), y).demandCommand(1, demand),
    // yargs runs a subcommand's handler instead, and demandCommand refuses none: never called.
    /* c8 ignore next */
    handler: () => {},
  }
}

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { YAMLParseError } from 'yaml'
import type { MountOptions, Config } from './config.js'
import { ConfigError } from './config-error.js'
import { validateConfig } from './validate-config.js'

/**
 * Reads a YAML or JSON config file (JSON is YAML, so one parser serves both) and validates it.
 * Relative paths inside it are taken from the file's own folder, so a config means the same
 * whatever directory the daemon is started from.
 */
export async function loadConfig(file: string, defaults: MountOptions): Promise<Config> {
  const path = resolve(file)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code
    const problem = code === 'ENOENT' ? 'config file does not exist' : `config file cannot be read (${code})`
    throw new ConfigError(file, '', problem, 'check the --config path')
  }
  // Loaded here, not at start: a mount from the command line has no config file to parse, and
  // the YAML parser is ~40 modules (start to mounted is a target: issue 17).
  const { parse } = await import('./yaml-parser.js')
  let raw: unknown
  try {
    raw = parse(text)
  } catch (err) {
    // The parser's first line ends with its own position and a colon before a code excerpt.
    const { message, linePos } = err as YAMLParseError
    const problem = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace(/:$/, '')
    throw new ConfigError(file, `line ${linePos?.[0].line ?? '?'}`, problem, 'fix the YAML/JSON syntax')
  }
  return validateConfig(raw, { origin: file, baseDir: dirname(path), defaults })
}

/** Levels from the most to the least detailed; a logger at one level drops the ones before it. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * How lines are written: `text` for people (`snapmount info: message key=value`), `json` for
 * machines (one object per line: `time`, `level`, `msg`, then the fields).
 */
export const LOG_FORMATS = ['text', 'json'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

/**
 * The context of one event (snapshot, offset, length, cause, attempts...), kept apart from the
 * message so machines need not parse it. Values are plain scalars; callers pass redacted URLs and
 * never a header value or a query string. `undefined` fields are left out.
 */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>

/**
 * Where snapmount's log lines go. The CLI writes them to stderr; tests may collect them. `fields`
 * is optional everywhere, so a logger that only keeps messages (`{ info, warn, error }`) is one.
 */
export interface Logger {
  /** Detail for diagnosis, dropped unless the level is `debug`; optional for collecting loggers. */
  debug?(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

/** Where a stderr logger writes: process.stderr, or anything that looks like it (tests). */
export interface LogStream {
  write(text: string): unknown
  readonly isTTY?: boolean | undefined
}

export interface StderrLoggerOptions {
  /**
   * `auto` (the default) writes `text` when the stream is a terminal and `json` when it is not:
   * a person at a terminal reads lines, while journald, a file or a log shipper gets JSON.
   */
  format?: LogFormat | 'auto' | undefined
  /** Lines below this level are dropped. Default `info`. */
  level?: LogLevel | undefined
  /** Default process.stderr (written synchronously when it is a pipe or a file). */
  stream?: LogStream | undefined
  /** The clock for JSON's `time`; injected by tests. */
  now?: (() => Date) | undefined
}

/**
 * One line per event, level first. Text lines carry no timestamp (under systemd the journal adds
 * one, and at a terminal the order is what matters); JSON lines do, since they are meant to be
 * shipped elsewhere.
 */
export function stderrLogger(options: StderrLoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr
  const format = options.format === undefined || options.format === 'auto' ? (stream.isTTY ? 'text' : 'json') : options.format
  const now = options.now ?? (() => new Date())
  const write = (level: LogLevel) => (message: string, fields: LogFields = {}) => {
    stream.write(format === 'json' ? jsonLine(now(), level, message, fields) : textLine(level, message, fields))
  }
  const logger: Logger = { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }
  return atLevel(logger, options.level ?? 'info')
}

/** `logger` without the lines below `level`: how the log_level option applies once the config is read. */
export function atLevel(logger: Logger, level: LogLevel): Logger {
  const least = LOG_LEVELS.indexOf(level)
  const pass = (at: LogLevel, method: ((message: string, fields?: LogFields) => void) | undefined) =>
    LOG_LEVELS.indexOf(at) >= least && method ? method.bind(logger) : () => {}
  return { debug: pass('debug', logger.debug), info: pass('info', logger.info), warn: pass('warn', logger.warn), error: pass('error', logger.error) }
}

/**
 * What a log line says about a failure: its `code`, its message as `cause` (which names the
 * lower-level failure it wraps), and the
 * number of `attempts` when a retry loop gave up (RetriesExhaustedError, anywhere in the chain).
 * Messages are built from redacted URLs by the errors themselves, so nothing secret enters here.
 */
export function errorFields(err: unknown): LogFields {
  let attempts: number | undefined
  for (let link: unknown = err, depth = 0; link instanceof Error && depth < 8; link = link.cause, depth++) {
    const counted = (link as { attempts?: unknown }).attempts
    if (attempts === undefined && typeof counted === 'number') attempts = counted
  }
  const code = (err as { code?: unknown } | null)?.code
  const cause = err instanceof Error ? err.message : String(err)
  return { code: typeof code === 'string' ? code : undefined, cause, attempts }
}

/** A log format named in the environment (SNAPMOUNT_LOG_FORMAT), or `auto` when unset or unknown. */
export function logFormatFrom(value: string | undefined): LogFormat | 'auto' {
  return (LOG_FORMATS as readonly string[]).includes(value ?? '') ? (value as LogFormat) : 'auto'
}

function jsonLine(time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  const { time: _t, level: _l, msg: _m, ...rest } = fields
  return `${JSON.stringify({ time: time.toISOString(), level, msg, ...rest })}\n`
}

/**
 * A text line says each fact once: a field the message already holds (as `key=value`, or a string
 * value word for word, like a cause the message ends with) is not repeated after it.
 */
function textLine(level: LogLevel, message: string, fields: LogFields): string {
  const pairs = Object.entries(fields)
    .filter(([key, value]) => value !== undefined && !message.includes(`${key}=${textValue(value)}`))
    .filter(([, value]) => typeof value !== 'string' || !message.includes(value))
    .map(([key, value]) => ` ${key}=${textValue(value)}`)
  return `snapmount ${level}: ${message}${pairs.join('')}\n`
}

/** Plain words stay bare; anything with spaces, quotes or `=` is JSON-quoted so lines stay one line. */
function textValue(value: string | number | boolean | null | undefined): string {
  const text = String(value)
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

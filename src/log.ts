/** Where snapmount's log lines go. The CLI writes them to stderr; tests may collect them. */
export interface Logger {
  info(message: string): void
  warn(message: string): void
  error(message: string): void
}

/**
 * One line per event on stderr, level first. No timestamps: under systemd the journal adds
 * them, and in a terminal the order is what matters.
 */
export function stderrLogger(): Logger {
  const write = (level: string) => (message: string) => {
    process.stderr.write(`snapmount ${level}: ${message}\n`)
  }
  return { info: write('info'), warn: write('warn'), error: write('error') }
}

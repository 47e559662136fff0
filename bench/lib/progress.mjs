/** A progress line on stderr (the tables go to stdout). */
export function progress(message) {
  process.stderr.write(`bench: ${message}\n`)
}

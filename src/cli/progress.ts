import { formatSize } from './format.js'

/** Where progress goes: process.stderr, or anything that looks like it (tests). */
export interface ProgressStream {
  write(text: string): unknown
  readonly isTTY?: boolean | undefined
  readonly columns?: number | undefined
}

export interface Progress {
  update(done: number, total: number): void
  /** Ends the bar's line (a terminal) or writes the last line (otherwise). */
  finish(): void
}

/** A terminal bar is redrawn at most this often; more is flicker, not information. */
const REDRAW_MS = 100
/** Without a terminal (a log, a CI job), one plain line this often is enough to show it moves. */
const LINE_EVERY_MS = 2000
const BAR_WIDTH = 30

/**
 * Progress of a long read (warm, verify) on `stream`: on a terminal a bar redrawn in place with
 * percent, bytes, rate and ETA; otherwise a plain line every two seconds and one at the end, so
 * logs stay readable. A few lines of our own rather than a dependency: that is all it needs.
 */
export function progress(stream: ProgressStream, label: string, now: () => number = Date.now): Progress {
  const started = now()
  let shown = -Infinity
  let last: { done: number; total: number } | undefined
  let drawn: typeof last
  const line = (done: number, total: number) => {
    const seconds = Math.max((now() - started) / 1000, 1e-3)
    const rate = done / seconds
    const percent = total === 0 ? 100 : (100 * done) / total
    const eta = rate > 0 ? (total - done) / rate : Infinity
    return { percent, rate, eta, sizes: `${formatSize(done)} / ${formatSize(total)}` }
  }
  const draw = (final: boolean) => {
    // A plain line already written for this state is not written again at the end.
    if (!last || (final && !stream.isTTY && drawn === last)) return
    drawn = last
    const { percent, rate, eta, sizes } = line(last.done, last.total)
    if (stream.isTTY) {
      const filled = Math.round((BAR_WIDTH * percent) / 100)
      const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`
      const text = `${label} [${bar}] ${percent.toFixed(1)}%  ${sizes}  ${formatSize(rate)}/s  ETA ${formatDuration(eta)}`
      stream.write(`\r${text.slice(0, (stream.columns ?? 200) - 1)}\x1b[K${final ? '\n' : ''}`)
    } else {
      stream.write(`${label}: ${percent.toFixed(1)}% (${sizes}) at ${formatSize(rate)}/s, ETA ${formatDuration(eta)}\n`)
    }
  }
  return {
    update(done, total) {
      last = { done, total }
      const at = now()
      if (at - shown < (stream.isTTY ? REDRAW_MS : LINE_EVERY_MS)) return
      shown = at
      draw(false)
    },
    finish() {
      draw(true)
    },
  }
}

/** 75 -> "1:15", 3725 -> "1:02:05"; "?" before there is a rate. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const whole = Math.ceil(seconds)
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60]
  const pad = (n: number) => String(n).padStart(2, '0')
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`
}

// The failover part's numbers, table and issue 21's failover targets: pure functions of what its
// runs recorded (the reader's reads, the daemon's log, the moment a mirror was stopped), tested
// without running anything.

import { fmtMs, table } from './format.mjs'
import { percentile } from './stats.mjs'

/** Issue 21: from the stop to the first read answered by another mirror. */
export const FAILOVER_LIMIT_MS = 1000
/** Issue 21: p99 read latency with a mirror stopped, at most this times the undisturbed run's. */
export const FAILOVER_P99_LIMIT = 2

/**
 * One run's row from checked-reads.mjs's reads ([kind, start epoch ms, ms, wrong bytes, error])
 * and, for a run with a stop, `stoppedAt` (epoch ms) and the daemon's JSON log.
 */
export function failoverRow(run, reads, { stoppedAt, log = '', from } = {}) {
  const ms = (kind) => reads.filter((read) => read[0] === kind).map((read) => read[2])
  const seq = reads.filter((read) => read[0] === 's')
  const row = {
    run,
    reads: reads.length,
    errors: reads.filter((read) => read[4] !== null).length,
    firstError: reads.find((read) => read[4] !== null)?.[4],
    wrongBytes: reads.reduce((sum, read) => sum + read[3], 0),
    seqSeconds: seq.length === 0 ? 0 : (Math.max(...seq.map((read) => read[1] + read[2])) - Math.min(...seq.map((read) => read[1]))) / 1000,
    randomP50Ms: percentile(ms('r'), 50),
    randomP99Ms: percentile(ms('r'), 99),
    seqP50Ms: percentile(ms('s'), 50),
    seqP99Ms: percentile(ms('s'), 99),
    maxMs: Math.max(0, ...reads.map((read) => read[2])),
  }
  if (stoppedAt === undefined) return row
  return {
    ...row,
    stoppedAfterSeconds: (stoppedAt - Math.min(...reads.map((read) => read[1]))) / 1000,
    ...failoverAfter(log, stoppedAt, from),
    // Reads the stop caught in flight, and any read after it: the longest is what a reader felt.
    longestAfterStopMs: Math.max(0, ...reads.filter((read) => read[1] + read[2] >= stoppedAt).map((read) => read[2])),
  }
}

/**
 * The p99s of every run of one kind pooled (three runs: the 30th slowest of ~3,000 reads of each
 * kind rather than one run's 10th of ~1,000, steadier on a loaded machine).
 */
export function pooledLatency(reads) {
  const ms = (kind) => reads.filter((read) => read[0] === kind).map((read) => read[2])
  return { reads: reads.length, randomP99Ms: percentile(ms('r'), 99), seqP99Ms: percentile(ms('s'), 99) }
}

/**
 * One boot's row from bootGuest's result and, for a boot with a stop, `stoppedAt` (epoch ms);
 * `log` is the daemon's JSON log: its error lines are reads it failed (one line each).
 */
export function bootRow(run, boot, { stoppedAt, log = '', from } = {}) {
  const lines = log.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
  const row = {
    run,
    readySeconds: boot.readyMs / 1000,
    failedUnits: boot.failedUnitCount,
    guestBytes: boot.guestRead?.bytes,
    errors: lines.filter((line) => line.level === 'error').length,
  }
  if (stoppedAt === undefined) return row
  return { ...row, stoppedAfterSeconds: (stoppedAt - boot.startedAt) / 1000, ...failoverAfter(log, stoppedAt, from) }
}

/**
 * The failover after a stop at `stoppedAt`, from the daemon's first "reads failed over" line after
 * it: from the stop to that answer (`stopToAnswerMs`: the daemon's clock and this one are the
 * host's, the same epoch), and from the request that found mirror 0 failing to that answer
 * (`requestToAnswerMs`, the line's failoverMs). The failover is the smaller: the first when a read
 * was in flight at the stop; the second when nothing asked the mirrors for a while after it (a
 * boot reading from the cache), whose wait is not the failover's.
 */
export function failoverAfter(log, stoppedAt, from) {
  const line = failoverLine(log, stoppedAt, from)
  if (!line) return { failoverMs: undefined, stopToAnswerMs: undefined, requestToAnswerMs: undefined }
  const stopToAnswerMs = line.at - stoppedAt
  return { failoverMs: Math.min(stopToAnswerMs, line.failoverMs ?? Infinity), stopToAnswerMs, requestToAnswerMs: line.failoverMs }
}

/**
 * The daemon's first "reads failed over" line logged at or after `stoppedAt`, from the mirror
 * `from` when given (another mirror's failover, a healthy one that stalled for a moment, is not
 * the stop's): when, and its failoverMs.
 */
export function failoverLine(log, stoppedAt, from) {
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue
    const entry = JSON.parse(line)
    const at = Date.parse(entry.time)
    if (entry.msg.includes(from === undefined ? 'reads failed over from ' : `reads failed over from ${from} `) && at >= stoppedAt) return { at, failoverMs: entry.failoverMs }
  }
  return undefined
}

export function failoverReport(failover) {
  const rows = [['run', 'reads', 'errors', 'wrong bytes', 'full read s', 'random p50 / p99 ms', 'seq p50 / p99 ms', 'max ms', 'failover ms', 'longest read after stop ms']]
  for (const r of failover.rows) {
    rows.push([
      r.run,
      String(r.reads),
      String(r.errors),
      String(r.wrongBytes),
      r.seqSeconds.toFixed(2),
      `${fmtMs(r.randomP50Ms)} / ${fmtMs(r.randomP99Ms)}`,
      `${fmtMs(r.seqP50Ms)} / ${fmtMs(r.seqP99Ms)}`,
      fmtMs(r.maxMs),
      r.stoppedAfterSeconds === undefined ? '-' : fmtMs(r.failoverMs),
      r.stoppedAfterSeconds === undefined ? '-' : fmtMs(r.longestAfterStopMs),
    ])
  }
  return table(rows)
}

export function bootReport(boots) {
  const rows = [['boot', 'ready s', 'guest read MiB', 'failed units', 'read errors', 'mirror 0 stopped at s', 'failover ms']]
  for (const r of boots.rows) {
    const stopped = r.stoppedAfterSeconds !== undefined
    rows.push([r.run, r.readySeconds.toFixed(1), r.guestBytes === undefined ? 'n/a' : (r.guestBytes / 2 ** 20).toFixed(1), String(r.failedUnits), String(r.errors), stopped ? r.stoppedAfterSeconds.toFixed(1) : '-', stopped ? (r.failoverMs === undefined ? 'no failover' : fmtMs(r.failoverMs)) : '-'])
  }
  return table(rows)
}

export function failoverSection(failover) {
  const boots = failover.boots
  const bootText = !boots ? '' : boots.note ? `\nGuest boots through the mirrors: ${boots.note}\n` : `\nThe Linux guest booted (${boots.accel}, cache=none) through the same three mirrors, undisturbed and with mirror 0 stopped early in the boot\n\n${bootReport(boots)}\n`
  return (
    `\nFailover: three nginx mirrors of the ${failover.imageBytes / 2 ** 30} GiB image, kernel TCP at ${failover.rttMs} ms RTT; a full sequential read (1 MiB) ` +
    `and ${failover.randomReaders} random readers (128 KiB), O_DIRECT, every byte compared with the source; mirror 0 (the one in use) stopped (SIGTERM) halfway; pairs of runs, each with fresh mirrors and daemon\n\n${failoverReport(failover)}\n` +
    `\np99 of every run's reads pooled, undisturbed / mirror 0 stopped: random 128 KiB ${fmtMs(failover.pooled.undisturbed.randomP99Ms)} / ${fmtMs(failover.pooled.stopped.randomP99Ms)} ms, ` +
    `sequential 1 MiB ${fmtMs(failover.pooled.undisturbed.seqP99Ms)} / ${fmtMs(failover.pooled.stopped.seqP99Ms)} ms\n` +
    bootText
  )
}

/**
 * Issue 21's failover targets: for each run with a stop, 0 read errors, 0 wrong bytes, the
 * failover within FAILOVER_LIMIT_MS; and the p99 latency of the stopped runs' reads pooled
 * (random and sequential apart) at most FAILOVER_P99_LIMIT times the undisturbed runs' pooled
 * (one run's p99 on a loaded 2-core machine moves by 2x between runs).
 */
export function failoverTargets(failover) {
  const scope = 'failover'
  if (!failover) return [{ scope, target: 'failover targets', value: undefined, limit: undefined, pass: undefined, detail: 'part failover not run' }]
  const { undisturbed, stopped } = failover.pooled
  const p99 = (kind, value, base) => ({ scope, target: `mirror 0 stopped: ${kind} p99 <= ${FAILOVER_P99_LIMIT}x undisturbed (runs pooled)`, value, limit: FAILOVER_P99_LIMIT * base, pass: value <= FAILOVER_P99_LIMIT * base, detail: `${fmtMs(value)} vs ${FAILOVER_P99_LIMIT} x ${fmtMs(base)} ms` })
  return failover.rows
    .filter((r) => r.stoppedAfterSeconds !== undefined)
    .flatMap((r) => [
      { scope, target: `${r.run}: 0 read errors`, value: r.errors, limit: 0, pass: r.errors === 0, detail: r.firstError ?? `${r.errors} of ${r.reads}` },
      { scope, target: `${r.run}: 0 wrong bytes`, value: r.wrongBytes, limit: 0, pass: r.wrongBytes === 0, detail: `${r.wrongBytes} bytes` },
      {
        scope,
        target: `${r.run}: failover < ${FAILOVER_LIMIT_MS} ms`,
        value: r.failoverMs,
        limit: FAILOVER_LIMIT_MS,
        pass: r.failoverMs === undefined ? false : r.failoverMs < FAILOVER_LIMIT_MS,
        detail: r.failoverMs === undefined ? 'the daemon logged no failover after the stop' : `${fmtMs(r.stopToAnswerMs)} ms from the stop, ${fmtMs(r.requestToAnswerMs)} ms from the request that found it failing`,
      },
    ])
    .concat([p99('random 128 KiB', stopped.randomP99Ms, undisturbed.randomP99Ms), p99('sequential 1 MiB', stopped.seqP99Ms, undisturbed.seqP99Ms)])
    .concat(bootTargets(failover.boots))
}

/**
 * The boot with a stop: it booted with 0 read errors and no failed unit; its failover, if a read
 * needed a mirror after the stop (a boot may have read all it needs by then), within the limit.
 */
function bootTargets(boots) {
  const scope = 'failover'
  const stopped = boots?.rows.find((r) => r.stoppedAfterSeconds !== undefined)
  if (!stopped) return []
  return [
    { scope, target: `${stopped.run}: booted, 0 read errors`, value: stopped.errors, limit: 0, pass: stopped.errors === 0 && stopped.failedUnits === 0, detail: `${stopped.errors} read errors, ${stopped.failedUnits} failed units, ready in ${stopped.readySeconds.toFixed(1)} s` },
    {
      scope,
      target: `${stopped.run}: failover < ${FAILOVER_LIMIT_MS} ms`,
      value: stopped.failoverMs,
      limit: FAILOVER_LIMIT_MS,
      pass: stopped.failoverMs === undefined ? undefined : stopped.failoverMs < FAILOVER_LIMIT_MS,
      detail: stopped.failoverMs === undefined ? 'no read reached the mirrors after the stop' : `${fmtMs(stopped.stopToAnswerMs)} ms from the stop, ${fmtMs(stopped.requestToAnswerMs)} ms from the request that found it failing`,
    },
  ]
}

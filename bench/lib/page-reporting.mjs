// Free page reporting, paused while the bench measures. These machines are VMs whose balloon
// driver reports free memory to the host, which then drops it: the next first touch of such a page
// stalls the vCPU while the host backs it again, and that shows in the guest as a slow memcpy in
// whichever process touched it. Measured here: writing 2 GiB to tmpfs took 3.4-5.7 s of system time
// with reporting on, 0.9-1.1 s with it paused. For the daemon that process is itself, copying a
// FUSE reply into the reader's fresh page-cache pages, so its CPU per GiB swung with the machine's
// memory churn (radosgw's most), not with its own work. A hypervisor host, where snapmount runs,
// keeps its memory backed; so does this VM with reporting paused. The order above every buddy
// order (the kernel command line's own value here) reports nothing; the old value comes back at
// the end, and the report says which way the run was made.
//
// Pausing keeps backed only what is freed from then on: pages reported before stay unbacked, and
// the first read after radosgw's start still took 4.06 CPU-s/GiB against 0.95 and 1.13 for the
// next two (cpu-probe --s3). So a child then touches WARM_BYTES and exits, once: the free memory
// the run allocates from is backed (the same probe: 0.88, 0.94, 1.04). That touch took 20 s here
// the first time (2.5 s/GiB of re-backing), 5 s when repeated.

import { spawn } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { freemem } from 'node:os'

const ORDER_PATH = '/sys/module/page_reporting/parameters/page_reporting_order'
/**
 * The order a run paused from, and the run's pid, while it is paused: a run killed with SIGKILL
 * (no handler runs) leaves the order paused, and the next run puts back this one instead of
 * taking the paused order for the machine's own. Under /run, which a reboot empties as it resets
 * the order.
 */
const STATE_PATH = '/run/snapmount-bench-page-reporting'
/** MAX_PAGE_ORDER is 10 on x86-64: no free block is of order 11, so none is reported. */
const PAUSED_ORDER = '11'
/**
 * Memory touched once after pausing: more than a part holds at once (the 1 GiB image and the
 * reader's copy in the page cache, a daemon's 1 GiB cache, radosgw's), never more than half of
 * what is free.
 */
const WARM_BYTES = 8 * 2 ** 30

/** The order to put back while reporting is paused here, else undefined. */
let pausedFrom

/**
 * Pauses free page reporting when the machine has it and lets it be set (root), then touches
 * WARM_BYTES once: returns what the report says about it. `keep` leaves it as it is. The old order
 * comes back with `restoreFreePageReporting`, which a signal handler installed before this call
 * may run at any moment, the touch included.
 */
export async function pauseFreePageReporting({ keep = false } = {}) {
  const current = await readFile(ORDER_PATH, 'utf8').then((text) => text.trim(), () => undefined)
  if (current === undefined) return 'no free page reporting (host memory stays backed)'
  const pauser = current === PAUSED_ORDER ? await pausingRun() : undefined
  const left = pauser && !pauser.alive ? pauser.order : undefined
  const was = left ?? current
  if (keep) return `free page reporting left at order ${current} (--keep-page-reporting)`
  if (was === PAUSED_ORDER) return `free page reporting left at order ${current} (reports nothing${pauser?.alive ? `: paused by the run with pid ${pauser.pid}, which puts it back at its end` : ''})`
  try {
    await writeFile(ORDER_PATH, `${PAUSED_ORDER}\n`)
    await writeFile(STATE_PATH, `${was} ${process.pid}\n`)
  } catch (err) {
    return `free page reporting on (order ${was}): cannot pause it (${err.code ?? err.message}); CPU rows include the host's re-backing of reported pages`
  }
  pausedFrom = was
  const warmed = Math.min(WARM_BYTES, Math.floor(freemem() / 2))
  await touchOnce(warmed)
  const killed = left === undefined ? '' : `, as a killed run left it`
  return `free page reporting paused for the run (order ${was} -> ${PAUSED_ORDER}${killed}, put back after; ${(warmed / 2 ** 30).toFixed(1)} GiB touched once)`
}

/**
 * The run that paused reporting, from STATE_PATH: the order it paused from, its pid, and whether
 * it is still running (a live run puts the order back itself; a killed one left it paused).
 * undefined when no run says it paused it.
 */
async function pausingRun() {
  const state = await readFile(STATE_PATH, 'utf8').catch(() => undefined)
  const [order, pid] = state?.trim().split(' ') ?? []
  if (!order || !pid) return undefined
  return { order, pid: Number(pid), alive: isAlive(Number(pid)) }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/** Puts back the order `pauseFreePageReporting` changed, if it did; at most once. */
export async function restoreFreePageReporting() {
  if (pausedFrom === undefined) return
  const was = pausedFrom
  pausedFrom = undefined
  await writeFile(ORDER_PATH, `${was}\n`).catch(() => {})
  await rm(STATE_PATH, { force: true })
}

/** A child writes `bytes` of memory and exits: its pages go back to the free lists backed. */
function touchOnce(bytes) {
  const chunk = 256 * 2 ** 20
  const script = `const held = []; for (let left = ${bytes}; left > 0; left -= ${chunk}) held.push(Buffer.alloc(Math.min(left, ${chunk}), 1))`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' })
    child.on('error', reject)
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`touching ${bytes} bytes of memory failed (${signal ?? `exit ${code}`})`))))
  })
}

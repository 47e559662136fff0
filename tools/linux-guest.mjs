// The Debian guest the tests (test/fixtures/linux-guest.ts) and the benchmark boot from a mounted
// snapshot: where its image is (scripts/build-guest-image builds and caches it), which accelerator
// can run it here, and the one way to boot it: QEMU's command, the wait for the guest's ready
// marker on its serial console, the kill on timeout. Plain JavaScript so the bench runs it as is;
// the types are in linux-guest.d.mts.

import { execFile, spawn } from 'node:child_process'
import { access, constants, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Debian's qemu-system-x86 (scripts/setup installs it). */
export const QEMU = '/usr/bin/qemu-system-x86_64'

export const BUILD_SCRIPT = fileURLToPath(new URL('../scripts/build-guest-image', import.meta.url))

/** What the guest's snapmount-ready.service writes on ttyS0 once multi-user.target is reached. */
export const READY_MARKER = 'SNAPMOUNT-GUEST-READY'
/** The marker's line: the number of failed units, then their names. */
const READY_LINE = /SNAPMOUNT-GUEST-READY failed-units=(\d+)([^\r\n]*)\r?\n/

/** The build takes 70 to 150 s here (mostly mmdebstrap's downloads); a slow mirror gets several times that. */
export const BUILD_TIMEOUT_MS = 15 * 60_000

/**
 * From QEMU's start to the marker: KVM takes seconds. TCG, which translates every instruction of
 * the kernel and of systemd, took 20 to 40 s on 2 cores busy with others' work (load 4 to 7),
 * up to 82 s at load 10 to 18; 300 s lets a machine slower still through.
 */
export const BOOT_TIMEOUT_MS = { kvm: 60_000, tcg: 300_000 }

/** After the marker the guest stops its units and powers off: seconds, more under TCG. */
const POWEROFF_WAIT_MS = { kvm: 20_000, tcg: 90_000 }

/**
 * A kernel panic on the console. Under TCG on a loaded host the guest's kernel sometimes panics at
 * its first instants ("IO-APIC + timer doesn't work": its timer check timed out), before it has read
 * anything but itself: callers that measure may boot again (`guestPanic` on the error).
 */
const PANIC_LINE = /Kernel panic - not syncing:[^\r\n]*/
/** From the panic's line to QEMU's kill: the backtrace that follows it, for the error. */
const PANIC_GRACE_MS = 1_000

/** Lines of the console a failure reports. */
const CONSOLE_TAIL_LINES = 40

/** The guest's disk, as QEMU's block statistics name it. */
const DRIVE_ID = 'guest'

/**
 * QEMU's trace event for every read of the guest's drive, as the block layer hands it to the
 * image (after virtio-blk merged adjacent requests): what reaches the file, one line per read.
 */
const READ_TRACE_EVENT = 'blk_co_preadv'
/** `PID@SECONDS.MICROS:blk_co_preadv blk 0x… bs 0x… offset N bytes N flags 0x…` (with -msg timestamp=on). */
const READ_TRACE_LINE = /^\d+@(\d+)\.(\d{6}):blk_co_preadv blk (\S+) bs \S+ offset (\d+) bytes (\d+)/

/** QMP answers in milliseconds; the guest is powering off meanwhile, so this is not waited for long. */
const QMP_TIMEOUT_MS = 5_000

/** The image's path, built or not (`build-guest-image --path`: a hash, no build). */
export async function guestImagePath() {
  return (await run(BUILD_SCRIPT, ['--path'], 30_000)).stdout.trim()
}

/**
 * The image's path, built first if absent: `onBuild(path)` is called before a build starts (it
 * takes minutes), and the build's output is in the error should it fail.
 */
export async function ensureGuestImage({ onBuild, timeoutMs = BUILD_TIMEOUT_MS } = {}) {
  const path = await guestImagePath()
  if (await exists(path)) return path
  onBuild?.(path)
  const built = (await run(BUILD_SCRIPT, [], timeoutMs)).stdout.trim()
  if (built !== path) throw new Error(`${BUILD_SCRIPT} built ${built}, not ${path}`)
  return path
}

/**
 * Which accelerator boots the guest here, and why. KVM when /dev/kvm opens read-write and the
 * kernel's KVM is the hardware one (kvm_intel or kvm_amd): a KVM that is something else, such as
 * kvm_pvm (a nested hypervisor that runs only guest kernels built for it), lets QEMU start, and
 * Debian's kernel then never gets past decompressing itself. TCG otherwise, if QEMU is there;
 * neither when it is not. SNAPMOUNT_GUEST_ACCEL=kvm or tcg overrides the choice. The second
 * argument names the files looked at (tests point them into a temp dir): QEMU, the KVM device and
 * the kernel's modules dir.
 */
export async function chooseAccel(env = process.env, { qemu = QEMU, kvmDevice = '/dev/kvm', modules = '/sys/module' } = {}) {
  if (!(await exists(qemu, constants.X_OK))) return { accel: undefined, reason: `${qemu} is missing (apt-get install qemu-system-x86)` }
  const forced = env.SNAPMOUNT_GUEST_ACCEL
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `SNAPMOUNT_GUEST_ACCEL=${forced}` }
  if (forced) throw new Error(`SNAPMOUNT_GUEST_ACCEL is '${forced}'; use kvm, tcg or leave it unset`)
  try {
    await (await open(kvmDevice, 'r+')).close()
  } catch (err) {
    return { accel: 'tcg', reason: `${kvmDevice} cannot be opened (${err.code}): TCG` }
  }
  const hardware = await Promise.all(['kvm_intel', 'kvm_amd'].map((name) => exists(join(modules, name))))
  if (!hardware.includes(true)) {
    const pvm = (await exists(join(modules, 'kvm_pvm'))) ? 'kvm_pvm, which runs only guest kernels built for it' : 'neither kvm_intel nor kvm_amd'
    return { accel: 'tcg', reason: `${kvmDevice} opens, but this KVM is ${pvm}: TCG` }
  }
  return { accel: 'kvm', reason: `${kvmDevice} opens and KVM is the hardware one` }
}

/**
 * QEMU's arguments for booting `disk` (see linux-guest.d.mts), with QMP on `qmpSocket` and the
 * reads traced to `traceFile` if given.
 */
export function qemuArgs(disk, { accel, cache = 'default', overlay = 'snapshot', memoryMiB = 512, driveFile }, qmpSocket, traceFile) {
  if (accel !== 'kvm' && accel !== 'tcg') throw new TypeError(`accel must be kvm or tcg, not ${accel}`)
  if (cache !== 'default' && cache !== 'none') throw new TypeError(`cache must be default or none, not ${cache}`)
  if (overlay !== 'snapshot' && overlay !== 'readonly') throw new TypeError(`overlay must be snapshot or readonly, not ${overlay}`)
  // QEMU's -drive takes commas in a path doubled.
  const file = driveFile ?? [`file=${disk.replaceAll(',', ',,')}`]
  const drive = [`id=${DRIVE_ID}`, ...file, 'format=raw', 'if=virtio', overlay === 'snapshot' ? 'snapshot=on' : 'readonly=on']
  if (cache === 'none') drive.push('cache=none')
  return [
    '-nodefaults', // no VGA, no NIC (so no iPXE ROM), no default serial or monitor
    '-no-user-config',
    '-machine', `pc,accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(memoryMiB),
    '-display', 'none',
    '-monitor', 'none',
    ...(qmpSocket ? ['-qmp', `unix:${qmpSocket},server=on,wait=off`] : []),
    // Wall-clock timestamps on each trace line: the reads' times from QEMU's start.
    ...(traceFile ? ['-msg', 'timestamp=on', '-trace', `enable=${READ_TRACE_EVENT},file=${traceFile.replaceAll(',', ',,')}`] : []),
    '-serial', 'stdio',
    '-no-reboot', // a guest that reboots (a kernel panic) ends QEMU instead of booting again
    '-drive', drive.join(','),
  ]
}

/**
 * Boots the guest from `disk` and resolves once it has printed its ready marker and QEMU has
 * exited (the guest powers off; QEMU is killed if it does not within a while). Rejects, with the
 * console's tail and QEMU's stderr, when QEMU exits or the time runs out before the marker; QEMU
 * is killed then.
 */
export async function bootGuest(disk, options) {
  const dir = await mkdtemp(join(tmpdir(), 'snapmount-guest-'))
  try {
    const traceFile = options.traceReads ? join(dir, 'reads.trace') : undefined
    const boot = await runGuest(disk, options, join(dir, 'qmp.sock'), traceFile)
    if (traceFile) boot.reads = parseReadTrace(await readFile(traceFile, 'utf8'), boot.startedAt, boot.readyMs)
    return boot
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function runGuest(disk, options, qmpSocket, traceFile) {
  const args = qemuArgs(disk, options, qmpSocket, traceFile)
  const { accel, timeoutMs = BOOT_TIMEOUT_MS[accel] } = options
  return new Promise((resolve, reject) => {
    const startedAt = Date.now()
    const started = performance.now()
    const [command, argv] = options.wrap ? options.wrap(QEMU, args) : [QEMU, args]
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let console = ''
    let stderr = ''
    let ready
    let readyMs
    let failure
    let poweroffTimer
    let guestRead
    const bootTimer = setTimeout(() => {
      failure = `no ${READY_MARKER} within ${timeoutMs} ms (${accel}); QEMU killed`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      console += chunk
      if (ready) return
      const panic = !failure && PANIC_LINE.exec(console)
      if (panic) {
        // A panicked kernel waits forever (-no-reboot, panic=0): end it now, a moment after its
        // backtrace is written, instead of at the time limit.
        failure = `the guest's kernel panicked: ${panic[0].trim()}`
        setTimeout(() => child.kill('SIGKILL'), PANIC_GRACE_MS)
        return
      }
      ready = READY_LINE.exec(console) ?? undefined
      if (!ready) return
      readyMs = performance.now() - started
      clearTimeout(bootTimer)
      poweroffTimer = setTimeout(() => child.kill('SIGKILL'), POWEROFF_WAIT_MS[accel])
      // Now, before the shutdown reads more. A guest that is gone already leaves it unknown.
      guestRead = queryGuestReads(qmpSocket).catch(() => undefined)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
    child.once('error', (err) => (failure ??= `${QEMU} did not start: ${err.message}`))
    // 'close', not 'exit': everything QEMU wrote has been read by then.
    child.once('close', async (code, signal) => {
      clearTimeout(bootTimer)
      clearTimeout(poweroffTimer)
      if (!ready) {
        const why = failure ?? `QEMU exited (${code ?? signal}) before ${READY_MARKER}`
        const err = new Error(`${why}\n${QEMU} ${args.join(' ')}\n--- console, last ${CONSOLE_TAIL_LINES} lines ---\n${tail(console)}\n--- QEMU's stderr ---\n${stderr}`)
        err.console = console
        if (PANIC_LINE.test(console)) err.guestPanic = true
        reject(err)
        return
      }
      resolve({
        accel,
        startedAt,
        readyMs,
        exitMs: performance.now() - started,
        code,
        signal,
        failedUnitCount: Number(ready[1]),
        failedUnits: ready[2].trim().split(/\s+/).filter(Boolean),
        guestRead: await guestRead,
        console,
        stderr,
      })
    })
  })
}

/**
 * What the guest has read from its disk so far: QEMU's block statistics of the drive (QMP
 * query-blockstats), the reads as the guest issued them, before any cache below.
 */
function queryGuestReads(socket) {
  return new Promise((resolve, reject) => {
    const connection = createConnection(socket)
    const timer = setTimeout(() => connection.destroy(new Error(`QMP did not answer within ${QMP_TIMEOUT_MS} ms`)), QMP_TIMEOUT_MS)
    let buffered = ''
    connection.setEncoding('utf8').on('data', (chunk) => {
      buffered += chunk
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const message = JSON.parse(buffered.slice(0, end))
        buffered = buffered.slice(end + 1)
        // The greeting, then one answer per command in order; events come in between.
        if (message.QMP) connection.write('{"execute":"qmp_capabilities"}\n{"execute":"query-blockstats"}\n')
        else if (message.error) connection.destroy(new Error(`QMP: ${message.error.desc}`))
        else if (Array.isArray(message.return)) {
          const stats = message.return.find((device) => device.device === DRIVE_ID)?.stats
          if (stats) resolve({ bytes: stats.rd_bytes, operations: stats.rd_operations })
          else reject(new Error(`QMP: no block statistics for ${DRIVE_ID}`))
          connection.end()
        }
      }
    })
    connection.once('error', reject)
    connection.once('close', () => {
      clearTimeout(timer)
      reject(new Error('QMP closed before answering'))
    })
  })
}

/**
 * The guest's reads from QEMU's trace (`READ_TRACE_LINE`), in the order issued: `ms` from QEMU's
 * start (`startedAt`, epoch ms) to the read's submission, then offset and length in bytes. Only the
 * drive the most reads went to (the guest's; there is one), and only reads before `readyMs`: the
 * boot's, not the shutdown's.
 */
export function parseReadTrace(text, startedAt, readyMs) {
  const lines = text.split('\n').map((line) => READ_TRACE_LINE.exec(line)).filter(Boolean)
  const perDrive = new Map()
  for (const line of lines) perDrive.set(line[3], (perDrive.get(line[3]) ?? 0) + 1)
  const drive = [...perDrive].sort((a, b) => b[1] - a[1])[0]?.[0]
  const reads = []
  for (const [, seconds, micros, blk, offset, bytes] of lines) {
    const ms = Number(seconds) * 1000 + Number(micros) / 1000 - startedAt
    if (blk === drive && ms <= readyMs) reads.push({ ms: Math.max(0, Math.round(ms * 10) / 10), offset: Number(offset), length: Number(bytes) })
  }
  return reads
}

/** The last lines of `text`. */
export function tail(text, lines = CONSOLE_TAIL_LINES) {
  return text.split('\n').slice(-lines).join('\n')
}

async function exists(path, mode = constants.F_OK) {
  return access(path, mode).then(
    () => true,
    () => false,
  )
}

function run(file, args, timeout) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, killSignal: 'SIGTERM', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed (${err.code ?? err.signal}):\n${stderr}`))
      else resolve({ stdout, stderr })
    })
  })
}

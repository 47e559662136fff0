// Where the CPU goes in the fleet part's storm (issue 21): N daemons replay the boot's reads at
// once through the caching tier at 10 ms over kernel TCP, as `npm run bench -- fleet` does, and
// every process's CPU seconds over the replay are summed by program (/proc/PID/stat): the
// daemons, the tier's and origin's nginx, the namespace's packet delayer, fio. `--cpu-prof DIR`
// runs one of the daemons under V8's sampling profiler and prints its functions with the most
// self time. Not part of `npm test` or of `npm run bench`; run it under the bench lock.
//
//   node bench/storm-cpu.mjs [--daemons N] [--cpu-prof DIR] [--top N] [--origin] [-- daemon args]

import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { startDelayNetns } from '../tools/delay-netns.mjs'
import { startFleetCache } from '../tools/fleet-cache.mjs'
import { startNginx } from '../tools/nginx.mjs'
import { inNetns, startDaemon } from './lib/daemons.mjs'
import { SourceImage } from './lib/images.mjs'
import { BenchProcesses } from './lib/processes.mjs'
import { IMAGE_BYTES, NAME, ROOT, RTT_MS, SNAPMOUNT, benchSettings, withoutProxyVariables } from './lib/settings.mjs'
import { WORKING_SET_SPAN_BYTES, bootWorkingSet, fioIolog } from './lib/working-set.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { daemons: { type: 'string', default: '8' }, 'cpu-prof': { type: 'string' }, top: { type: 'string', default: '20' }, origin: { type: 'boolean', default: false } },
})
const daemons = Number(values.daemons)
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
const settings = benchSettings(process.env)
const procs = new BenchProcesses(withoutProxyVariables(process.env))
const ctx = { settings, procs }

/** CPU ticks (user + system) of every process, by pid: [comm, ticks, its network namespace]. */
async function allTicks() {
  const ticks = new Map()
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
    if (!stat) continue
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const net = await readlink(`/proc/${pid}/ns/net`).catch(() => '')
    ticks.set(pid, [comm, Number(fields[11]) + Number(fields[12]), net])
  }
  return ticks
}

/** This process's waited-for children's CPU ticks (fio, once each replay has ended). */
async function childTicks() {
  const stat = await readFile('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[13]) + Number(fields[14])
}

async function main() {
  const image = new SourceImage(procs, settings.imagePath, IMAGE_BYTES)
  await image.ensure()
  const dir = await mkdtemp(join(tmpdir(), 'snapmount-storm-cpu-'))
  const netns = procs.addService(await startDelayNetns({ rttMs: RTT_MS, prefix: 'snapmount-storm-cpu-' }))
  try {
    const origin = procs.addService(await startNginx(settings.benchDir, { netns, prefix: 'snapmount-storm-cpu-nginx-' }))
    const cache = values.origin ? undefined : procs.addService(await startFleetCache(`127.0.0.1:${origin.port}`, { netns, prefix: 'snapmount-storm-cpu-cache-' }))
    const url = (cache ?? origin).url(basename(image.path))
    const profDir = values['cpu-prof']
    // bin/snapmount's own Node flags and environment; node refuses --cpu-prof in NODE_OPTIONS, so
    // the profiled daemon runs node itself with them (as cpu-probe.mjs does).
    const script = await readFile(SNAPMOUNT, 'utf8')
    const flags = /exec node (.*?) "\$\(dirname/.exec(script)[1].split(' ')
    const env = { ...procs.env }
    for (const [, name, value] of script.matchAll(/: "\$\{(\w+):=([^}]*)\}"/g)) env[name] ??= value
    const started = []
    for (let i = 0; i < daemons; i++) {
      const prof = i === 0 && profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []
      const mount = inNetns({ key: 'storm-cpu', title: 'snapmount (storm)', env, command: (mnt) => [process.execPath, ...flags, ...prof, join(ROOT, 'dist/cli/bin.js'), 'mount', mnt, `${NAME}=${url}`, ...positionals] }, netns)
      started.push(await startDaemon(ctx, mount))
    }
    const reads = bootWorkingSet(WORKING_SET_SPAN_BYTES)
    const daemonPids = new Set(started.map((d) => String(d.child.pid)))
    const netnsLink = `net:[${(await stat(netns.path)).ino}]`
    const before = await allTicks()
    const childrenBefore = await childTicks()
    const machineBefore = (await readFile('/proc/stat', 'utf8')).split('\n')[0]
    const began = performance.now()
    const seconds = await Promise.all(started.map(async (daemon, i) => {
      const iolog = join(dir, `boot-${i}.iolog`)
      await writeFile(iolog, fioIolog(join(daemon.mnt, NAME), reads))
      const t0 = performance.now()
      await procs.run('fio', ['--name=boot', `--read_iolog=${iolog}`, '--replay_no_stall=1', '--direct=1', '--ioengine=psync', '--output=/dev/null'])
      return (performance.now() - t0) / 1000
    }))
    const wall = (performance.now() - began) / 1000
    const after = await allTicks()
    const machineAfter = (await readFile('/proc/stat', 'utf8')).split('\n')[0]
    const busy = (line) => { const f = line.split(/\s+/).slice(1).map(Number); return [f.reduce((a, b) => a + b, 0), f[3] + f[4]] }
    const [t0, i0] = busy(machineBefore)
    const [t1, i1] = busy(machineAfter)
    const byProgram = new Map([['fio (the readers)', (await childTicks()) - childrenBefore]])
    for (const [pid, [comm, ticks, net]] of after) {
      const delta = ticks - (before.get(pid)?.[1] ?? 0)
      if (delta <= 0) continue
      const name = daemonPids.has(pid) ? 'snapmount daemons' : net === netnsLink ? `${comm} (in the namespace)` : 'elsewhere on the machine'
      byProgram.set(name, (byProgram.get(name) ?? 0) + delta)
    }
    const machineBusy = (t1 - t0 - (i1 - i0)) / ticksPerSecond
    seconds.sort((a, b) => a - b)
    console.log(`storm: ${daemons} daemon(s) ${cache ? 'through the tier' : 'straight to the origin'}, ${reads.length} reads each; wall ${wall.toFixed(1)} s, per daemon p50 ${seconds[Math.floor(seconds.length / 2)].toFixed(1)} s, max ${seconds.at(-1).toFixed(1)} s; machine busy ${machineBusy.toFixed(1)} CPU-s; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
    const rows = [...byProgram].sort((a, b) => b[1] - a[1]).slice(0, 12)
    for (const [name, ticks] of rows) console.log(`  ${(ticks / ticksPerSecond).toFixed(2).padStart(7)} CPU-s  ${name}${name === 'snapmount daemons' ? ` (${(ticks / ticksPerSecond / daemons).toFixed(2)} per daemon)` : ''}`)
    console.log('  (the kernel\'s softirq work, loopback TCP among it, counts to whichever process it interrupted)')
    for (const daemon of started) await daemon.stop()
    if (profDir) {
      const file = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile')).sort().at(-1)
      const profile = JSON.parse(await readFile(join(profDir, file), 'utf8'))
      const counts = new Map()
      const byId = new Map(profile.nodes.map((node) => [node.id, node]))
      for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1)
      const perSample = (profile.endTime - profile.startTime) / profile.samples.length
      const self = new Map()
      for (const [id, count] of counts) {
        const { functionName, url, lineNumber } = byId.get(id).callFrame
        const name = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim()
        self.set(name, (self.get(name) ?? 0) + count)
      }
      console.log(`daemon 0's profile (${file}): self time`)
      for (const [name, count] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`  ${((count * perSample) / 1000).toFixed(0).padStart(6)} ms  ${name}`)
    }
  } finally {
    await procs.cleanup()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()

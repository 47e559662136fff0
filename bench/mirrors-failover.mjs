#!/usr/bin/env node
// Failover of a mirrored snapshot (issue 21): read latency with three nginx mirrors undisturbed,
// and with the mirror in use stopped in the middle of the reads, or (--corrupt) made to damage
// every answer under the right ETag, with a manifest, or (--hang) frozen so that it takes requests
// and answers none.
//
//   npm run build && flock /tmp/snapmount-bench.lock node bench/mirrors-failover.mjs [--rtt MS] [--seconds S] [--corrupt | --hang]
//
// Each run: a fresh image on the three mirrors (one directory, so one ETag), a fresh daemon with
// `urls:` listing them, READERS readers of random 128 KiB blocks plus one sequential reader of
// 1 MiB reads, every read O_DIRECT (so it reaches the daemon) and checked against the image. The
// "killed" run stops mirror 0 (SIGTERM: nginx's fast shutdown cuts its connections) at a third of
// the run. With --rtt, nginx and the daemon run in a network namespace whose loopback delays
// every packet (tools/delay-netns.mjs: real kernel TCP at that round trip). With --corrupt (on
// loopback only) the snapshot has a manifest, mirror 0 is reached through
// tools/corrupting-proxy.mjs in both runs, and in the disturbed one the proxy starts flipping a
// bit in every ranged answer at a third of the run. With --hang, mirror 0 is frozen (SIGSTOP: the
// kernel still accepts its connections and requests, nginx answers none) at a third of the run;
// the table adds the daemon's failover time and whether it marked the mirror failing (stalled).
// Prints a table; not part of `npm test`. Needs
// root and /dev/fuse. Run it under the bench lock.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startNginx } from '../tools/nginx.mjs'
import { startDelayNetns } from '../tools/delay-netns.mjs'
import { startCorruptingProxy } from '../tools/corrupting-proxy.mjs'
import { blockCountOf, encodeManifest } from '../dist/manifest/format.js'
import { blockDigestsOf, digestOf } from '../dist/manifest/hash.js'

const SNAPMOUNT = fileURLToPath(new URL('../bin/snapmount', import.meta.url))
const MiB = 1024 * 1024
const BLOCK = 128 * 1024
/** Larger than the daemon's cache (64 MiB here) would be slow to write; random reads rarely repeat a block of it. */
const IMAGE_BYTES = 256 * MiB
const READERS = 4

const { values } = parseArgs({ options: { rtt: { type: 'string', default: '0' }, seconds: { type: 'string', default: '6' }, corrupt: { type: 'boolean', default: false }, hang: { type: 'boolean', default: false } } })
const rttMs = Number(values.rtt)
const seconds = Number(values.seconds)
const corrupt = values.corrupt
const hang = values.hang
if (corrupt && rttMs > 0) throw new Error('--corrupt runs on loopback only: the proxy is not in the delaying namespace')
if (corrupt && hang) throw new Error('one of --corrupt and --hang')
const disturbance = corrupt ? 'mirror 0 damages every answer from 1/3' : hang ? 'mirror 0 hangs at 1/3' : 'mirror 0 stopped at 1/3'

const dir = await mkdtemp(join(tmpdir(), 'snapmount-mirrors-bench-'))
const image = randomBytes(IMAGE_BYTES)
await mkdir(join(dir, 'www'))
await writeFile(join(dir, 'www', 'disk.img'), image)
const manifest = corrupt ? encodeManifest({ algorithm: 'sha256', blockBytes: BLOCK, imageBytes: IMAGE_BYTES, blockCount: blockCountOf(IMAGE_BYTES, BLOCK), digests: blockDigestsOf('sha256', image, BLOCK) }) : undefined
if (manifest) await writeFile(join(dir, 'disk.manifest'), manifest)
const netns = rttMs > 0 ? await startDelayNetns({ rttMs, prefix: 'snapmount-mirrors-bench-' }) : undefined

try {
  const rows = []
  for (const kill of [false, true]) rows.push({ kill, ...(await run(kill)) })
  const [l1, l5] = loadavg()
  console.log(`\nmirrors failover, 3 nginx mirrors${corrupt ? ' and a manifest' : ''}, ${rttMs} ms RTT${netns ? ' (kernel TCP, delay-netns)' : ' (loopback)'}, ${seconds} s per run, ${READERS} random readers (128 KiB) + 1 sequential (1 MiB), O_DIRECT; load ${l1.toFixed(1)} / ${l5.toFixed(1)} (1 / 5 min)`)
  console.log(`| run | reads | errors | wrong bytes | p50 ms | p99 ms | max ms | longest read around the kill |${corrupt ? ' bits flipped | bad blocks logged |' : ''}${hang ? ' failover ms | marked failing |' : ''}`)
  console.log(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${corrupt ? ' ---: | ---: |' : ''}${hang ? ' ---: | --- |' : ''}`)
  for (const row of rows) {
    const extra = corrupt ? ` ${row.flips} | ${row.logged} |` : hang ? ` ${row.failoverMs ?? '-'} | ${row.kill ? (row.stalled ? 'yes (stalled)' : 'no') : '-'} |` : ''
    console.log(`| ${row.kill ? disturbance : 'undisturbed'} | ${row.reads} | ${row.errors} | ${row.wrong} | ${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ${row.max.toFixed(1)} | ${row.kill ? `${row.around.toFixed(1)} ms` : '-'} |${extra}`)
  }
  console.log(`p99 ratio (killed / undisturbed): ${(rows[1].p99 / rows[0].p99).toFixed(2)}`)
} finally {
  await netns?.stop()
  await rm(dir, { recursive: true, force: true })
}

/** One run: fresh mirrors and daemon, the readers for `seconds`, mirror 0 stopped at a third if `kill`. */
async function run(kill) {
  const mirrors = await Promise.all([0, 1, 2].map(() => startNginx(join(dir, 'www'), { ...(netns && { netns }), prefix: 'snapmount-mirrors-bench-nginx-' })))
  // --corrupt: mirror 0 through the proxy, which passes answers on untouched until told otherwise.
  const proxy = corrupt ? await startCorruptingProxy({ origin: mirrors[0].origin, corrupt: () => false }) : undefined
  const urls = mirrors.map((m, index) => (index === 0 && proxy ? proxy.url('/disk.img') : m.url('disk.img')))
  const mnt = join(dir, `mnt-${kill ? 'kill' : 'calm'}`)
  await mkdir(mnt, { recursive: true })
  const config = join(dir, `${kill}.yaml`)
  const pinned = manifest ? `    manifest: { path: ${join(dir, 'disk.manifest')}, sha256: ${digestOf('sha256', manifest).toString('hex')} }\n` : ''
  // A small cache, so the run reads from the mirrors rather than from memory.
  await writeFile(config, `mountpoint: ${mnt}\noptions:\n  cache_size_mib: 64\nsnapshots:\n  - type: http\n    name: disk\n    urls:\n${urls.map((url) => `      - ${url}\n`).join('')}${pinned}`)
  const [command, args] = netns ? netns.wrap(SNAPMOUNT, ['mount', '--config', config]) : [SNAPMOUNT, ['mount', '--config', config]]
  const daemon = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SNAPMOUNT_LOG_FORMAT: 'text' } })
  let stderr = ''
  daemon.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve) => daemon.once('exit', resolve))
  try {
    const deadline = Date.now() + 20_000
    while (!/ info: mounted /.test(stderr)) {
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not mount:\n${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const reads = []
    let errors = 0
    let wrong = 0
    const started = performance.now()
    const end = started + seconds * 1000
    let killedAt = Infinity
    const killer = kill && setTimeout(() => {
      killedAt = performance.now()
      if (proxy) proxy.setCorrupt(({ start, end }) => start !== undefined && end !== undefined && start !== end)
      else if (hang) void mirrors[0].pause()
      else void mirrors[0].stop()
    }, (seconds * 1000) / 3)
    const reader = async (next) => {
      const handle = await open(join(mnt, 'disk'), constants.O_RDONLY | constants.O_DIRECT)
      try {
        while (performance.now() < end) {
          const [offset, length] = next()
          const bytes = Buffer.alloc(length)
          const at = performance.now()
          try {
            const { bytesRead } = await handle.read(bytes, 0, length, offset)
            if (bytesRead !== length || !bytes.equals(image.subarray(offset, offset + length))) wrong++
          } catch {
            errors++
          }
          reads.push([at, performance.now() - at])
        }
      } finally {
        await handle.close()
      }
    }
    let sequential = 0
    await Promise.all([
      ...Array.from({ length: READERS }, () => reader(() => [BLOCK * Math.floor(Math.random() * (IMAGE_BYTES / BLOCK)), BLOCK])),
      reader(() => {
        const offset = sequential
        sequential = (sequential + MiB) % IMAGE_BYTES
        return [offset, MiB]
      }),
    ])
    clearTimeout(killer)
    const sorted = reads.map(([, ms]) => ms).sort((a, b) => a - b)
    const pick = (p) => sorted[Math.ceil(p * sorted.length) - 1] ?? 0
    const around = Math.max(0, ...reads.filter(([at, ms]) => at + ms >= killedAt - 1000).map(([, ms]) => ms))
    const logged = (stderr.match(/does not match the manifest from /g) ?? []).length
    const failoverMs = /reads failed over from \S+ to \S+, answered ([\d.]+) ms after/.exec(stderr)?.[1]
    const stalled = / is failing \(\d+ requests in a row unanswered past its hedge delay .*\(stalled\)\)/.test(stderr)
    // The daemon's word on its mirrors, for a run whose failover needs explaining.
    if (hang && kill) console.error(stderr.split('\n').filter((line) => / mirror | failed over /.test(line)).join('\n'))
    return { reads: reads.length, errors, wrong, p50: pick(0.5), p99: pick(0.99), max: sorted.at(-1) ?? 0, around, flips: proxy?.flips.length ?? 0, logged, failoverMs, stalled }
  } finally {
    daemon.kill('SIGTERM')
    await exited
    await proxy?.close()
    await Promise.all(mirrors.map((m) => m.stop()))
  }
}

// The least CPU a first pass into the disk cache can add (issue 18), measured alone: see
// lib/disk-cache-floor.mjs. The disk-cache part of the bench measures it too, beside its first
// passes; this runs it on its own, several times, with each run's numbers.
//
//   node bench/disk-cache-floor.mjs [--dir DIR] [--runs N]
//
// DIR (default: the bench's directory, where the bench's disk cache lives) must take O_DIRECT.
// Not part of `npm test`. Run it under `flock /tmp/snapmount-bench.lock` on a shared machine.

import { parseArgs } from 'node:util'
import { measureDiskCacheFloor } from './lib/disk-cache-floor.mjs'
import { benchSettings } from './lib/settings.mjs'

const { values } = parseArgs({ options: { dir: { type: 'string' }, runs: { type: 'string', default: '3' } } })
const dir = values.dir ?? benchSettings(process.env).benchDir
console.log(`1 GiB into a directory under ${dir}, ${values.runs} runs each; CPU seconds per GiB (user + system)`)
const floor = await measureDiskCacheFloor(dir, { runs: Number(values.runs) })
for (const { title, passes } of Object.values(floor)) {
  const cpu = passes.map(({ user, system }) => (user + system).toFixed(3)).join(', ')
  const split = passes.map(({ user, system }) => `${user.toFixed(3)}/${system.toFixed(3)}`).join(', ')
  const rate = passes.map(({ seconds }) => Math.round(2 ** 30 / 1e6 / seconds)).join(', ')
  console.log(`${title.padEnd(32)} ${cpu}   (user/system ${split}; MB/s ${rate})`)
}

// What the boot profile's recording layer (src/profile/recording-backend.ts, outermost) costs a
// cache hit, the read it adds most to (issue 19): `readNow` of a cached 128 KiB block through the
// metering layer alone, with the recording layer idle over it, and with it recording. In-process,
// no FUSE: the FUSE round trip a real read pays is ~20-50 us, so tens of ns are what matter here.
// Best of 9 rounds of 1e6 reads each (the machine may be shared). Not part of `npm test` or of
// `npm run bench`; run `npm run build` first, and on a shared machine under
// `flock /tmp/snapmount-bench.lock`.
//
//   node bench/recording-layer.mjs

import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import { BlockCache } from '../dist/cache/block-cache.js'
import { CachingBackend } from '../dist/cache/caching-backend.js'
import { MeteredBackend } from '../dist/metrics/metered-backend.js'
import { ProfileRecordingBackend } from '../dist/profile/recording-backend.js'

const BLOCK = 128 * 1024
const BLOCKS = 256
const READS = 1_000_000
const ROUNDS = 9

const bytes = Buffer.alloc(BLOCK * BLOCKS, 3)
const memory = { length: bytes.length, mtime: new Date(), async readExact(offset, length) { return bytes.subarray(offset, offset + length) }, async close() {} }
const cache = new BlockCache({ capacityBytes: 2 * bytes.length, blockBytes: BLOCK })
const caching = new CachingBackend(memory, cache, { connections: 4 })
// Read three times, one stream each, so every block is in the cache's main queue, not read-once.
for (let round = 0; round < 3; round++) for (let block = 0; block < BLOCKS; block++) await caching.readExact(block * BLOCK, BLOCK, { stream: block })
const metered = new MeteredBackend(caching, 'http')
const quiet = { info() {}, warn() {}, error() {} }
const identity = { bytes: bytes.length, validator: 'v' }
const output = join(tmpdir(), `snapmount-recording-layer-${process.pid}.json`)
const idle = new ProfileRecordingBackend(metered, { name: 'idle', identity, blockBytes: BLOCK, logger: quiet })
const recording = new ProfileRecordingBackend(metered, { name: 'recording', identity, blockBytes: BLOCK, logger: quiet, defaultPath: output })
recording.startRecording()

function nsPerRead(backend) {
  const started = process.hrtime.bigint()
  let hits = 0
  for (let i = 0; i < READS; i++) if (backend.readNow(((i * 7) % BLOCKS) * BLOCK, BLOCK)) hits++
  if (hits < READS * 0.99) throw new Error(`only ${hits} of ${READS} reads were cache hits`)
  return Number(process.hrtime.bigint() - started) / READS
}

const best = { metered: Infinity, idle: Infinity, recording: Infinity }
for (let round = 0; round < ROUNDS; round++) {
  best.metered = Math.min(best.metered, nsPerRead(metered))
  best.idle = Math.min(best.idle, nsPerRead(idle))
  best.recording = Math.min(best.recording, nsPerRead(recording))
}
await recording.stopRecording()
await rm(output, { force: true })
console.log(`readNow of a cached 128 KiB block, best of ${ROUNDS} x ${READS} (load ${loadavg()[0].toFixed(1)}):`)
console.log(`  metering alone            ${best.metered.toFixed(0)} ns`)
console.log(`  + recording layer, idle   ${best.idle.toFixed(0)} ns`)
console.log(`  + recording layer, on     ${best.recording.toFixed(0)} ns`)

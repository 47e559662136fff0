#!/usr/bin/env node
// The failover part's reader, run as a child process (an access to a mount from the bench's own
// process would tie the numbers to its event loop): one sequential reader of the whole image in
// 1 MiB reads, and RANDOM_READERS readers of random 128 KiB blocks for as long as it runs, every
// read O_DIRECT (so it reaches the daemon) and compared byte for byte with the source image.
//
//   node bench/lib/checked-reads.mjs MOUNTED_FILE SOURCE_FILE [MARK]
//
// With MARK (a fraction), the line `mark` goes to stderr once the sequential reader has read that
// share of the image: the bench stops a mirror then, at the same point of every run whatever its speed.
// Prints one JSON document: each read as [kind, start (epoch ms), duration ms, wrong bytes,
// error or null], kind 's' (sequential) or 'r' (random). Epoch times, so the bench can set them
// beside the moment it stopped a mirror and beside the daemon's JSON log lines.

import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

const MiB = 2 ** 20
const SEQ_BYTES = MiB
const RANDOM_BYTES = 128 * 1024
/** Random readers beside the sequential one: a latency probe that does not wait on a long run of reads. */
const RANDOM_READERS = 2

const [mounted, sourcePath, mark] = process.argv.slice(2)
const source = await open(sourcePath, constants.O_RDONLY)
const { size } = await source.stat()
const reads = []
let done = false

/** Reads [offset, offset + length) from `handle`, timed, and compares it with the source. */
async function checked(handle, kind, offset, length) {
  const bytes = Buffer.alloc(length)
  const expected = Buffer.alloc(length)
  const at = Date.now()
  const started = performance.now()
  let error = null
  let bytesRead = 0
  try {
    ;({ bytesRead } = await handle.read(bytes, 0, length, offset))
  } catch (err) {
    error = String(err)
  }
  const ms = performance.now() - started
  await source.read(expected, 0, length, offset)
  let wrong = 0
  if (!error && !bytes.equals(expected)) for (let i = 0; i < length; i++) wrong += i >= bytesRead || bytes[i] !== expected[i] ? 1 : 0
  reads.push([kind, at, ms, wrong, error])
}

async function sequential() {
  const handle = await open(mounted, constants.O_RDONLY | constants.O_DIRECT)
  try {
    let marked = mark === undefined
    for (let offset = 0; offset < size; offset += SEQ_BYTES) {
      if (!marked && offset >= Number(mark) * size) {
        marked = true
        process.stderr.write('mark\n')
      }
      await checked(handle, 's', offset, Math.min(SEQ_BYTES, size - offset))
    }
  } finally {
    done = true
    await handle.close()
  }
}

async function random() {
  const handle = await open(mounted, constants.O_RDONLY | constants.O_DIRECT)
  const blocks = Math.floor(size / RANDOM_BYTES)
  try {
    while (!done) await checked(handle, 'r', RANDOM_BYTES * Math.floor(Math.random() * blocks), RANDOM_BYTES)
  } finally {
    await handle.close()
  }
}

try {
  await Promise.all([sequential(), ...Array.from({ length: RANDOM_READERS }, random)])
} finally {
  await source.close()
}
process.stdout.write(JSON.stringify({ size, reads }))

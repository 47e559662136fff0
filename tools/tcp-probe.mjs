#!/usr/bin/env node
// Measures what a link does to TCP, from inside the namespace it runs in (tools/delay-netns.mjs
// starts it there with spawn/run): the tests check the delay condition with it, and a benchmark
// can check its condition before it trusts a number. Both ends run in this one process, on
// 127.0.0.1; each command prints one line of JSON on stdout.
//
//   tcp-probe.mjs rtt [EXCHANGES]          connect time, then 1-byte request/response round trips
//   tcp-probe.mjs idle BYTES IDLE_MS        on one connection, BYTES answered with the window open
//                                           and again after IDLE_MS of silence (twice)
//   tcp-probe.mjs get URL FILE              an HTTP GET's body into FILE: bytes, ms, MB/s
//
// Times are in ms, from performance.now().

import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { get } from 'node:http'
import { createServer, connect } from 'node:net'
import { pipeline } from 'node:stream/promises'

/** Answers on one connection to open its window before `idle` measures (each BYTES long). */
const WARMUP_ANSWERS = 8
/**
 * The last answers of the warm-up that `openMs` is the fastest of, and the pauses `afterIdleMs`
 * is the fastest answer after: one slow turn of a busy machine does not count.
 */
const OPEN_SAMPLES = 3
const IDLE_SAMPLES = 2

const [command, ...args] = process.argv.slice(2)
const commands = { rtt, idle, get: download }
if (!(command in commands)) {
  process.stderr.write('usage: tcp-probe.mjs rtt [EXCHANGES] | idle BYTES IDLE_MS | get URL FILE\n')
  process.exit(2)
}
process.stdout.write(`${JSON.stringify(await commands[command](...args))}\n`)

/** Connect time (SYN and SYN-ACK: one round trip) and `exchanges` 1-byte echo round trips. */
async function rtt(exchanges = '5') {
  const server = await listen((socket) => socket.on('data', (data) => socket.write(data)))
  try {
    const started = performance.now()
    const socket = await open(server)
    const connectMs = performance.now() - started
    const roundTripsMs = []
    for (let i = 0; i < Number(exchanges); i++) {
      const sent = performance.now()
      await exchange(socket, 1)
      roundTripsMs.push(performance.now() - sent)
    }
    socket.destroy()
    return { connectMs, roundTripsMs }
  } finally {
    server.close()
  }
}

/**
 * One connection whose server answers each 1-byte request with `bytes` bytes: WARMUP_ANSWERS
 * answers back to back open its window, and the fastest of the last OPEN_SAMPLES of them is
 * `openMs`; then IDLE_SAMPLES times, an answer after `idleMs` of silence, the fastest of which is
 * `afterIdleMs`. With
 * net.ipv4.tcp_slow_start_after_idle at 1, a sender idle for longer than its retransmission
 * timeout starts again from a small window (not under bbr, which ignores that setting), and the
 * answer after the pause takes more round trips.
 */
async function idle(bytes, idleMs) {
  const answer = Buffer.alloc(Number(bytes), 0x5a)
  const server = await listen((socket) => socket.on('data', () => socket.write(answer)))
  try {
    const socket = await open(server)
    const timed = async () => {
      const started = performance.now()
      await exchange(socket, answer.length)
      return performance.now() - started
    }
    const warmup = []
    for (let i = 0; i < WARMUP_ANSWERS; i++) warmup.push(await timed())
    const openMs = Math.min(...warmup.slice(-OPEN_SAMPLES))
    const afterIdle = []
    for (let i = 0; i < IDLE_SAMPLES; i++) {
      await new Promise((resolve) => setTimeout(resolve, Number(idleMs)))
      afterIdle.push(await timed())
    }
    const afterIdleMs = Math.min(...afterIdle)
    socket.destroy()
    return { bytes: answer.length, openMs, afterIdleMs }
  } finally {
    server.close()
  }
}

/** GETs `url` into `file`; fails on any status but 200. */
async function download(url, file) {
  const started = performance.now()
  const response = await new Promise((resolve, reject) => get(url, resolve).once('error', reject))
  if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode}`)
  let bytes = 0
  response.on('data', (chunk) => (bytes += chunk.length))
  await pipeline(response, createWriteStream(file))
  const ms = performance.now() - started
  return { bytes, ms, megabytesPerSecond: bytes / 1e3 / ms }
}

async function listen(onConnection) {
  const server = createServer(onConnection)
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  return server
}

async function open(server) {
  const socket = connect(server.address().port, '127.0.0.1')
  socket.setNoDelay(true)
  await once(socket, 'connect')
  return socket
}

/** Sends one byte and resolves once `bytes` have come back. */
function exchange(socket, bytes) {
  return new Promise((resolve, reject) => {
    let received = 0
    const onData = (chunk) => {
      received += chunk.length
      if (received < bytes) return
      socket.off('data', onData).off('error', reject)
      resolve()
    }
    socket.on('data', onData).once('error', reject)
    socket.write('x')
  })
}

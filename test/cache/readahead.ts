import t from 'tap'
import { INITIAL_WINDOW_BYTES, MAX_READAHEAD_REQUEST_BYTES, ReadaheadTracker, STREAM_IDLE_MS } from '../../src/cache/readahead.js'
import { seededRandom } from '../fixtures/test-data.js'

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB
const READ = 128 * KIB

function tracker(length = GIB, maxWindowBytes = 64 * MIB) {
  return new ReadaheadTracker({ length, blockBytes: READ, maxWindowBytes })
}

t.test('random reads get no readahead, each its own stream', async (t) => {
  const readahead = tracker(10 * GIB)
  const random = seededRandom(5)
  const streams = new Set<number>()
  let ahead = 0
  for (let i = 0; i < 1000; i++) {
    const offset = Math.floor(random() * (10 * GIB - 4096) / 4096) * 4096
    const access = readahead.observe(offset, 4096, 1)
    streams.add(access.stream)
    ahead += access.ahead.length
  }
  t.ok(streams.size > 990, `${streams.size} streams for 1000 random reads`)
  t.ok(ahead <= 10 * INITIAL_WINDOW_BYTES, `random reads fetched ${ahead} bytes ahead in all`)
})

t.test('a sequential stream reads ahead from its third read on and its window doubles with each window read, to the cap', async (t) => {
  const readahead = tracker(GIB, 8 * MIB)
  const first = readahead.observe(0, READ, 1)
  t.equal(first.ahead.length, 0, 'one read is not a stream yet')
  const second = readahead.observe(READ, READ, 1)
  t.equal(second.stream, first.stream)
  t.equal(second.ahead.length, 0, 'nor are two')
  const third = readahead.observe(2 * READ, READ, 1)
  t.equal(third.ahead.offset, 3 * READ)
  t.equal(third.ahead.offset + third.ahead.length, 3 * READ + INITIAL_WINDOW_BYTES, 'the initial window past the reader')
  let fetchedUntil = third.ahead.offset + third.ahead.length
  let offset = 3 * READ
  const windows: number[] = []
  let readWhenCapped = Infinity
  for (let i = 0; i < 200; i++, offset += READ) {
    const { ahead } = readahead.observe(offset, READ, 1)
    if (ahead.length === 0) continue
    t.equal(ahead.offset, fetchedUntil, 'each top-up continues where the last one ended: no gap, no overlap')
    fetchedUntil = ahead.offset + ahead.length
    windows.push(fetchedUntil - (offset + READ))
    if (windows.at(-1) === 8 * MIB) readWhenCapped = Math.min(readWhenCapped, offset + READ)
    t.ok(ahead.requestBytes >= READ && ahead.requestBytes <= MAX_READAHEAD_REQUEST_BYTES)
    t.equal(ahead.length % ahead.requestBytes, 0, 'whole requests only, so fetches come in few sizes')
  }
  t.equal(Math.max(...windows), 8 * MIB, 'the window reaches the cap and stays there')
  // Each window's bytes read double it: 0.5 + 1 + 2 + 4 MiB after the three that started the stream,
  // then a top-up in whole 2 MiB requests.
  t.ok(readWhenCapped <= 3 * READ + 7.5 * MIB + 2 * MIB, `once the reader has read the windows before it (${readWhenCapped / MIB} MiB)`)
})

t.test('small reads near each other get a small window, which grows only as they read it', async (t) => {
  // A guest's file system reading neighbouring metadata: 4 KiB reads 64 KiB apart, forward. They
  // continue one stream, but read a sixteenth of what they pass over. Doubling the window on every
  // read fetched 64 MiB for these 2 MiB; the boot trace's replay (boot-trace-replay.ts) is the real case.
  const readahead = tracker(GIB, 64 * MIB)
  let ahead = 0
  let widest = 0
  let stream: number | undefined
  for (let i = 0; i < 32; i++) {
    const access = readahead.observe(i * 64 * KIB, 4 * KIB, 1)
    if (i > 0) t.equal(access.stream, stream, `read ${i} continues the stream`)
    stream = access.stream
    ahead += access.ahead.length
    if (access.ahead.length > 0) widest = Math.max(widest, access.ahead.offset + access.ahead.length - (i * 64 * KIB + 4 * KIB))
  }
  t.ok(widest <= 2 * READ, `the window stays within two blocks of the reader (${widest / KIB} KiB)`)
  t.ok(ahead <= 32 * 64 * KIB + 2 * READ, `what was fetched ahead is about what the reads pass over (${ahead / KIB} KiB)`)
})

t.test('nothing is fetched past the end of the snapshot', async (t) => {
  const size = 3 * MIB + 100
  const readahead = tracker(size)
  let end = 0
  for (let offset = 0; offset < size; offset += READ) {
    const { ahead } = readahead.observe(offset, Math.min(READ, size - offset), 1)
    if (ahead.length > 0) end = Math.max(end, ahead.offset + ahead.length)
    t.ok(ahead.offset + ahead.length <= size)
  }
  t.equal(end, size, 'readahead runs to the last byte')
})

t.test('interleaved readers of different regions are each detected', async (t) => {
  const readahead = tracker(4 * GIB, 4 * MIB)
  const starts = [0, GIB, 2 * GIB, 3 * GIB]
  const streams = new Map<number, Set<number>>()
  const aheadBytes = new Map<number, number>()
  for (let step = 0; step < 50; step++) {
    for (const start of starts) {
      const access = readahead.observe(start + step * READ, READ, step % 3)
      if (!streams.has(start)) streams.set(start, new Set())
      streams.get(start)!.add(access.stream)
      aheadBytes.set(start, (aheadBytes.get(start) ?? 0) + access.ahead.length)
    }
  }
  for (const start of starts) {
    t.equal(streams.get(start)!.size, 1, `region at ${start / GIB} GiB is one stream`)
    t.ok(aheadBytes.get(start)! >= 4 * MIB, 'and reads ahead')
  }
})

t.test('reads arriving a little out of order still continue their stream', async (t) => {
  const readahead = tracker()
  const order = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9]
  const streams = new Set(order.map((i) => readahead.observe(i * READ, READ, 1).stream))
  t.equal(streams.size, 1)
})

t.test('a read inside what was fetched ahead continues the stream, however far ahead', async (t) => {
  const readahead = tracker(GIB, 64 * MIB)
  let offset = 0
  let stream = 0
  // 25 MiB read: the window has grown to 16 MiB, fetched ahead of the reader.
  for (; offset < 200 * READ; offset += READ) stream = readahead.observe(offset, READ, 1).stream
  t.equal(readahead.observe(offset + 12 * MIB, READ, 2).stream, stream)
})

t.test('the table keeps the most recently used streams', async (t) => {
  const readahead = tracker(100 * GIB)
  const first = readahead.observe(0, READ, 1)
  for (let i = 1; i <= 16; i++) readahead.observe(i * GIB, READ, 1)
  const back = readahead.observe(READ, READ, 1)
  t.not(back.stream, first.stream, 'the oldest stream was forgotten')
})

t.test('equally near streams: the reader\'s own handle wins', async (t) => {
  // Two streams ending at 128 KiB and 640 KiB: a read at 384 KiB is 256 KiB from each.
  for (const handle of [1, 2]) {
    const readahead = tracker()
    const first = readahead.observe(0, READ, 1)
    const second = readahead.observe(512 * KIB, READ, 2)
    t.not(first.stream, second.stream)
    t.equal(readahead.observe(384 * KIB, READ, handle).stream, handle === 1 ? first.stream : second.stream)
  }
})

t.test('a stream idle for a while is forgotten: a read where it stopped starts afresh', async (t) => {
  let now = 0
  const readahead = new ReadaheadTracker({ length: GIB, blockBytes: READ, maxWindowBytes: 8 * MIB, now: () => now })
  let stream = 0
  for (let offset = 0; offset < 10 * READ; offset += READ, now += 5) stream = readahead.observe(offset, READ, 1).stream
  const soon = readahead.observe(10 * READ, READ, 1)
  t.equal(soon.stream, stream, 'within the idle time: the same stream')
  now += STREAM_IDLE_MS + 1
  const late = readahead.observe(11 * READ, READ, 1)
  t.not(late.stream, stream, 'after it: a new stream')
  t.equal(late.ahead.length, 0, 'with no readahead until it proves sequential again')
})

t.test('an established stream takes reads from as far back as its window', async (t) => {
  // The kernel keeps a dozen reads in flight and libfuse's threads hand them over in any order.
  const readahead = tracker(GIB, 8 * MIB)
  let offset = 0
  let stream = 0
  for (; offset < 64 * READ; offset += READ) stream = readahead.observe(offset, READ, 1).stream
  t.equal(readahead.observe(offset - 3 * MIB, READ, 1).stream, stream, '3 MiB behind: the same stream')
  t.not(readahead.observe(offset - 9 * MIB, READ, 1).stream, stream, 'further back than the window: another')
})

t.test('a reader whose first reads came out of order becomes one stream, and its fetches do not overlap', async (t) => {
  const readahead = tracker(GIB, 8 * MIB)
  // The fifth block arrives before the second: two young streams, which then meet.
  const order = [0, 4, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
  const ids = order.map((block) => readahead.observe(block * READ, READ, 1))
  t.not(ids[1]!.stream, ids[0]!.stream, 'the early read started a stream of its own')
  const fetched: Array<[number, number]> = []
  let stream = 0
  for (let block = 13; block < 200; block++) {
    const access = readahead.observe(block * READ, READ, 1)
    if (block > 13) t.equal(access.stream, stream, `block ${block}: the one stream`)
    stream = access.stream
    if (access.ahead.length > 0) fetched.push([access.ahead.offset, access.ahead.offset + access.ahead.length])
  }
  for (const access of ids) if (access.ahead.length > 0) fetched.push([access.ahead.offset, access.ahead.offset + access.ahead.length])
  fetched.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < fetched.length; i++) t.ok(fetched[i]![0] >= fetched[i - 1]![1], `range ${i} starts after the previous one ended`)
})

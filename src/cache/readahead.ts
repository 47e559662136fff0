/**
 * Sequential-stream detection and readahead sizing for one snapshot (one file).
 *
 * The kernel hands the daemon reads of at most 1 MiB with a few in flight; QEMU issues its
 * guest's reads from many threads at once; several guests may read one image. So streams are
 * tracked per file, in a small table (like Linux's per-file readahead state, or ZFS's zfetch
 * streams), not per handle: a read belongs to a stream when it starts near where the stream has
 * got to. The FUSE handle is only a tie-break when two streams are equally near.
 *
 * - A read that matches no stream starts a new one (replacing the least recently used) and gets
 *   no readahead: a 4 KiB random read costs one block. Streams idle for `STREAM_IDLE_MS` match
 *   nothing.
 * - A read continues a stream when it starts near the stream's end: within `YOUNG_SLACK_BYTES`
 *   while the stream is young (no readahead yet), within `MATCH_SLACK_BYTES` of its end or inside
 *   what was fetched ahead for it once it is established. Readahead starts at the second read
 *   that continues a stream (three reads in a row) with a window of four such reads (at least a
 *   block, at most `INITIAL_WINDOW_BYTES`), and the window doubles each time the stream's reads
 *   have asked for a whole window's bytes since it last grew, up to `maxWindowBytes`. Growth so
 *   follows what the reader consumes, as Linux's does (its window grows when the reader reaches
 *   the previous window): a real stream reaches full speed within a few round trips, since its
 *   rate grows with its window, while a guest's small reads that only land near each other
 *   (neighbouring metadata, small files) keep a window of a block or two. Doubling on every read
 *   instead made a boot fetch 7.8 times the 52 MiB it read (test/cache/boot-trace-replay.ts).
 * - The window is the distance the stream's fetches run ahead of its reader. Whenever the reader
 *   has moved on enough that a whole request's worth is missing, that much more is asked for, in
 *   requests of a quarter of the window (so several run in parallel: one TCP stream's rate times
 *   four or more), at least one block and at most `MAX_READAHEAD_REQUEST_BYTES`. Only whole
 *   requests are asked for, so a long stream's fetches all have one size.
 */

export interface ReadaheadOptions {
  /** The snapshot's size: nothing is fetched past it. */
  length: number
  blockBytes: number
  /** Largest readahead window; bounded by the cache so readahead cannot flush it. */
  maxWindowBytes: number
  /** Milliseconds, monotonic; injected by tests. Default performance.now. */
  now?: () => number
}

/** What one read means for its stream. */
export interface Access {
  /** The stream's id; a new one for a read that starts a stream. */
  stream: number
  /** Bytes to fetch ahead of the reader now, in requests of `requestBytes`; none if `length` is 0. */
  ahead: { offset: number; length: number; requestBytes: number }
}

interface Stream {
  id: number
  handle: number | undefined
  /** Where the reader has got to: the end of its furthest read. */
  next: number
  /** Sequential reads seen after the first. */
  sequentialReads: number
  window: number
  /** Bytes the stream's reads asked for since its window last grew (or was set): it grows at a window's worth. */
  readSinceGrowth: number
  /** Everything below this has been asked for (or is cached). */
  fetchedUntil: number
  lastUsed: number
  /** When it was last read (ms). */
  lastReadAt: number
}

/**
 * How far from a young stream's end a read may start and still continue it: two reads either way
 * of a reader whose reads are 128 KiB (a Linux guest's own readahead, through QEMU), as reads in
 * flight may arrive swapped. (A 1 MiB read, the kernel's largest, that arrives after the next one
 * starts a stream of its own, which idles out; its bytes are read on demand and the stream it
 * belonged to goes on.) A random read lands this close to one of 16 streams in a 1 GiB image
 * 0.8 % of the time, and must do so twice in a row on the same stream to start readahead.
 */
const YOUNG_SLACK_BYTES = 256 * 1024
/**
 * The same for an established stream: reads issued in order by several threads (QEMU's pool,
 * a guest's deep queue) arrive several requests out of order. 1 MiB is eight of a guest's
 * 128 KiB requests, or one of the kernel's largest reads.
 */
const MATCH_SLACK_BYTES = 1024 * 1024
/** Reads that must continue a stream before it reads ahead (the one that started it not counted). */
const CONFIRMING_READS = 2
/**
 * A stream nobody has read for this long is forgotten: a sequential reader asks every few
 * milliseconds, while a random read that happens to land where an old scan stopped must not set
 * off that scan's readahead. A reader that only paused starts again with three reads in a row.
 */
export const STREAM_IDLE_MS = 250
/** Streams tracked per file: more than the readers a file usually has at once (QEMU's queues, a few guests). */
const MAX_STREAMS = 16
/** The largest first window: half of one of the kernel's largest reads, small enough to waste little if the guess is wrong. */
export const INITIAL_WINDOW_BYTES = 512 * 1024
/**
 * The first window in reads of the size of the one that confirmed the stream (at least a block,
 * at most INITIAL_WINDOW_BYTES): Linux starts at four times a small request too. Three 4 KiB reads
 * in a row are a small file or neighbouring metadata as often as the start of a scan: they get a
 * block ahead, not half a megabyte. A stream of the kernel's 128 KiB reads gets the full 512 KiB.
 */
const INITIAL_WINDOW_READS = 4
/** Ranges in flight per window: parallel requests are what beats one TCP stream's rate. */
const REQUESTS_PER_WINDOW = 4
/** Largest ranged request: big enough to amortise a round trip, small enough to retry cheaply. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024
/**
 * Largest readahead request, once a stream's window has grown past four times MAX_REQUEST_BYTES
 * (a stream that stayed sequential for tens of MiB): half the requests per GiB, and so half the
 * daemon's work per request (building, sending, parsing the head, scheduling, caching: a fifth of
 * its CPU on a sequential read, measured with perf), and each connection carries a longer burst,
 * which keeps a kernel TCP window open. A retry re-fetches at most this much.
 */
export const MAX_READAHEAD_REQUEST_BYTES = 8 * 1024 * 1024

export class ReadaheadTracker {
  private readonly streams: Stream[] = []
  private nextId = 1
  private clock = 0
  private readonly now: () => number

  constructor(private readonly options: ReadaheadOptions) {
    this.now = options.now ?? (() => performance.now())
  }

  /** Records a read of `[offset, offset + length)` and says what to fetch ahead of it. */
  observe(offset: number, length: number, handle: number | undefined): Access {
    const end = offset + length
    const now = this.now()
    const stream = this.match(offset, handle, now)
    if (!stream) return this.start(offset, end, handle, now)
    stream.lastUsed = ++this.clock
    stream.lastReadAt = now
    stream.handle = handle
    stream.next = Math.max(stream.next, end)
    this.absorbOthers(stream)
    stream.sequentialReads++
    stream.readSinceGrowth += length
    if (stream.sequentialReads < CONFIRMING_READS) return { stream: stream.id, ahead: { offset: end, length: 0, requestBytes: 0 } }
    if (stream.sequentialReads === CONFIRMING_READS) {
      stream.window = Math.min(INITIAL_WINDOW_BYTES, Math.max(this.options.blockBytes, INITIAL_WINDOW_READS * length))
      stream.readSinceGrowth = 0
    } else if (stream.readSinceGrowth >= stream.window) {
      stream.window = Math.min(this.options.maxWindowBytes, stream.window * 2)
      stream.readSinceGrowth = 0
    }
    return { stream: stream.id, ahead: this.ahead(stream) }
  }

  private match(offset: number, handle: number | undefined, now: number): Stream | undefined {
    let best: Stream | undefined
    let bestDistance = Infinity
    for (const stream of this.streams) {
      if (now - stream.lastReadAt > STREAM_IDLE_MS || !reaches(stream, offset)) continue
      // Inside the fetched-ahead range counts as no distance at all.
      const distance = offset >= stream.next && offset <= stream.fetchedUntil ? 0 : Math.abs(offset - stream.next)
      const better = distance < bestDistance || (distance === bestDistance && stream.handle === handle)
      if (better) [best, bestDistance] = [stream, distance]
    }
    return best
  }

  /**
   * Forgets the other streams whose reader is where `stream`'s is: one reader whose first reads
   * came out of order starts two streams, which would then share its reads and split its fetches.
   */
  private absorbOthers(stream: Stream): void {
    for (let i = this.streams.length - 1; i >= 0; i--) {
      const other = this.streams[i]!
      if (other === stream || !reaches(stream, other.next)) continue
      stream.fetchedUntil = Math.max(stream.fetchedUntil, other.fetchedUntil)
      this.streams.splice(i, 1)
    }
  }

  private start(offset: number, end: number, handle: number | undefined, now: number): Access {
    const stream: Stream = { id: this.nextId++, handle, next: end, sequentialReads: 0, window: 0, readSinceGrowth: 0, fetchedUntil: end, lastUsed: ++this.clock, lastReadAt: now }
    if (this.streams.length >= MAX_STREAMS) {
      const oldest = this.streams.reduce((a, b) => (a.lastUsed <= b.lastUsed ? a : b))
      this.streams.splice(this.streams.indexOf(oldest), 1)
    }
    this.streams.push(stream)
    return { stream: stream.id, ahead: { offset, length: 0, requestBytes: 0 } }
  }

  /** Tops the stream's fetches up to `window` past its reader, in whole requests. */
  private ahead(stream: Stream): Access['ahead'] {
    const { blockBytes, length: size } = this.options
    const requestBytes = Math.min(MAX_READAHEAD_REQUEST_BYTES, Math.max(blockBytes, stream.window / REQUESTS_PER_WINDOW))
    const from = Math.max(stream.fetchedUntil, stream.next)
    const target = Math.min(size, stream.next + stream.window)
    // Whole requests only (or the rest of the file): no dribble of tiny ranges, and fetches of a
    // few sizes, which the cache's buffer pool can recycle (odd sizes made it allocate anew).
    const length = target === size ? size - from : Math.floor((target - from) / requestBytes) * requestBytes
    if (length <= 0) return { offset: from, length: 0, requestBytes }
    stream.fetchedUntil = from + length
    return { offset: from, length, requestBytes }
  }
}

/**
 * Whether a read at `offset` continues `stream`: from a little behind its furthest read (as far
 * back as its window once established: the kernel's own readahead keeps a dozen requests in
 * flight, which libfuse's threads hand over in any order, more than 1 MiB apart; measured, one dd
 * became five streams) to a little past what was fetched for it.
 */
function reaches(stream: Stream, offset: number): boolean {
  const young = stream.window === 0
  const behind = young ? YOUNG_SLACK_BYTES : Math.max(MATCH_SLACK_BYTES, stream.window)
  const ahead = young ? YOUNG_SLACK_BYTES : MATCH_SLACK_BYTES
  return offset >= stream.next - behind && offset <= Math.max(stream.next, stream.fetchedUntil) + ahead
}

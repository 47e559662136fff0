/** S3-FIFO's small queue share: new blocks must prove themselves in 10 % of the cache. */
const SMALL_QUEUE_SHARE = 0.1
/** S3-FIFO's frequency cap: a block survives at most this many passes of the main queue. */
const MAX_FREQUENCY = 3

interface Entry {
  bytes: number
  frequency: number
  queue: 'small' | 'main'
}

/**
 * The disk cache's eviction order: S3-FIFO (Yang et al., SOSP 2023), as the memory cache uses
 * (src/cache/block-cache.ts), for the same reason: a scan (a backup, a `dd` of a whole image)
 * must not flush the working set. New blocks enter a small FIFO (10 % of the bytes); when it is
 * over its share its oldest block is dropped, its key kept as a ghost, unless it was read again
 * meanwhile, which moves it to the main FIFO. A block stored again while a ghost goes straight to
 * main. Main evicts its oldest block but gives one more pass per re-read (up to 3). A hit here is
 * already a re-reference: the memory cache above answers a reader's repeated reads, so the disk
 * cache only sees a block again once the memory cache has let it go.
 *
 * Only the bytes are bounded here; the caller evicts (`victim`) until what it adds fits. At a
 * restart the queues are rebuilt from the index in insertion order, every block in main (which
 * blocks had proved themselves is not stored): a scan after the restart still only passes
 * through small.
 */
export class S3Fifo<K> {
  private readonly entries = new Map<K, Entry>()
  /** Insertion-ordered: the first key is the oldest. */
  private readonly small = new Set<K>()
  private readonly main = new Set<K>()
  private readonly ghosts = new Set<K>()
  private smallBytes = 0
  private totalBytes = 0

  constructor(
    private readonly capacityBytes: number,
    /** How many ghosts are kept: as many blocks as the cache holds. */
    private readonly ghostLimit: number,
  ) {}

  get bytes(): number {
    return this.totalBytes
  }

  /** Adds `key`, to main when `main` (a restart) or a ghost, else to small. */
  add(key: K, bytes: number, main = false): void {
    this.delete(key)
    const queue = main || this.ghosts.delete(key) ? 'main' : 'small'
    this.entries.set(key, { bytes, frequency: 0, queue })
    this[queue].add(key)
    if (queue === 'small') this.smallBytes += bytes
    this.totalBytes += bytes
  }

  /** A read of `key` found it: one more pass before eviction. */
  hit(key: K): void {
    const entry = this.entries.get(key)
    if (entry) entry.frequency = Math.min(MAX_FREQUENCY, entry.frequency + 1)
  }

  /** Forgets `key` (a block dropped for failing its check). */
  delete(key: K): void {
    const entry = this.entries.get(key)
    if (!entry) return
    this.entries.delete(key)
    this[entry.queue].delete(key)
    if (entry.queue === 'small') this.smallBytes -= entry.bytes
    this.totalBytes -= entry.bytes
  }

  /** Takes the next block to evict out of the queues and returns its key; undefined when empty. */
  victim(): K | undefined {
    for (;;) {
      const fromSmall = this.small.size > 0 && (this.smallBytes > this.capacityBytes * SMALL_QUEUE_SHARE || this.main.size === 0)
      const queue = fromSmall ? this.small : this.main
      const key = first(queue)
      if (key === undefined) return undefined
      const entry = this.entries.get(key)!
      if (entry.frequency > 0) {
        // Re-read: small promotes it to main, main gives it one more pass.
        queue.delete(key)
        if (fromSmall) {
          this.smallBytes -= entry.bytes
          entry.queue = 'main'
          entry.frequency = 0
        } else {
          entry.frequency--
        }
        this.main.add(key)
        continue
      }
      this.delete(key)
      if (fromSmall) this.remember(key)
      return key
    }
  }

  private remember(key: K): void {
    this.ghosts.add(key)
    if (this.ghosts.size > this.ghostLimit) this.ghosts.delete(first(this.ghosts)!)
  }
}

function first<K>(set: Set<K>): K | undefined {
  for (const key of set) return key
  return undefined
}

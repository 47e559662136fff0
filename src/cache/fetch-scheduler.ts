/** A unit of work for the scheduler: started once a slot is free, given up by `abort`. */
export interface Job {
  readonly run: () => Promise<void>
  priority: 'demand' | 'readahead'
}

/**
 * Bounds the requests in flight to one source and lets demand reads go first: a guest waiting
 * on a block must never queue behind megabytes of readahead. Jobs start at once while slots are
 * free; readahead may use all but `reservedForDemand` of them, so a demand read always finds a
 * free slot unless other demand reads hold them all. Queued jobs start demand first, oldest first.
 */
export class FetchScheduler {
  private running = 0
  private readonly queued = { demand: new Set<Job>(), readahead: new Set<Job>() }

  constructor(
    private readonly slots: number,
    private readonly reservedForDemand: number,
  ) {}

  /** Starts `job` now if its priority allows, or queues it. */
  submit(job: Job): void {
    this.queued[job.priority].add(job)
    this.startQueued()
  }

  /** A queued readahead job a reader now waits for moves to the demand queue. */
  promote(job: Job): void {
    if (job.priority === 'demand') return
    job.priority = 'demand'
    if (this.queued.readahead.delete(job)) this.submit(job)
  }

  /** Drops `job` if it has not started; true if it was still queued. */
  cancel(job: Job): boolean {
    return this.queued[job.priority].delete(job)
  }

  private startQueued(): void {
    for (;;) {
      const job = this.next()
      if (!job) return
      this.queued[job.priority].delete(job)
      this.running++
      void job.run().finally(() => {
        this.running--
        this.startQueued()
      })
    }
  }

  private next(): Job | undefined {
    if (this.running >= this.slots) return undefined
    const demand = first(this.queued.demand)
    if (demand) return demand
    if (this.running >= this.slots - this.reservedForDemand) return undefined
    return first(this.queued.readahead)
  }
}

function first<T>(set: Set<T>): T | undefined {
  return set.values().next().value
}

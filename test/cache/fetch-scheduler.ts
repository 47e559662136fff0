import t from 'tap'
import { FetchScheduler, type Job } from '../../src/cache/fetch-scheduler.js'
import { settle } from '../fixtures/recording-backend.js'

/** Jobs that run until the test finishes them, logging the order they started in. */
function jobs() {
  const started: string[] = []
  const finishers = new Map<string, () => void>()
  const make = (name: string, priority: Job['priority']): Job => ({
    priority,
    run: () => {
      started.push(name)
      return new Promise<void>((resolve) => finishers.set(name, resolve))
    },
  })
  const finish = async (name: string) => {
    finishers.get(name)!()
    await settle()
  }
  return { started, make, finish }
}

t.test('no more than the slots run at once, and readahead leaves the reserve free', async (t) => {
  const scheduler = new FetchScheduler(4, 1)
  const { started, make, finish } = jobs()
  for (const name of ['r1', 'r2', 'r3', 'r4']) scheduler.submit(make(name, 'readahead'))
  t.same(started, ['r1', 'r2', 'r3'], 'readahead takes 3 of 4 slots')
  scheduler.submit(make('d1', 'demand'))
  t.same(started, ['r1', 'r2', 'r3', 'd1'], 'a demand read takes the reserved slot at once')
  scheduler.submit(make('d2', 'demand'))
  t.equal(started.length, 4, 'all slots busy')
  await finish('r1')
  t.same(started.slice(4), ['d2'], 'demand goes first when a slot frees')
  await finish('r2')
  t.same(started.slice(5), [], 'readahead waits while only the reserve is free')
  await finish('r3')
  t.same(started.slice(5), ['r4'])
})

t.test('promote moves a queued readahead job ahead; cancel drops a queued job', async (t) => {
  const scheduler = new FetchScheduler(2, 1)
  const { started, make, finish } = jobs()
  scheduler.submit(make('d1', 'demand'))
  scheduler.submit(make('d2', 'demand'))
  const r1 = make('r1', 'readahead')
  const r2 = make('r2', 'readahead')
  const d3 = make('d3', 'demand')
  scheduler.submit(r1)
  scheduler.submit(r2)
  scheduler.submit(d3)
  scheduler.promote(r2)
  scheduler.promote(d3)
  t.equal(r2.priority, 'demand')
  t.ok(scheduler.cancel(d3))
  t.notOk(scheduler.cancel(d3), 'gone already')
  await finish('d1')
  t.same(started, ['d1', 'd2', 'r2'], 'the promoted job ran before the older readahead job')
  await finish('d2')
  await finish('r2')
  t.same(started, ['d1', 'd2', 'r2', 'r1'])
  const running = make('x', 'readahead')
  scheduler.promote(running)
  t.equal(running.priority, 'demand', 'promoting a job not queued only marks it')
})

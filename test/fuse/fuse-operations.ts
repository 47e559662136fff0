import t from 'tap'
import { constants } from 'node:os'
import { fuseOperations } from '../../src/fuse/fuse-mount.js'
import { SnapshotFs } from '../../src/fuse/snapshot-fs.js'
import { MemoryBackend } from '../fixtures/memory-backend.js'
import { ramp } from '../fixtures/test-data.js'

const { errno } = constants

/** Calls a callback-style operation and resolves with what it answered. */
function call(op: (...args: any[]) => void, ...args: unknown[]): Promise<unknown[]> {
  return new Promise((resolve) => op(...args, (...answer: unknown[]) => resolve(answer)))
}

function setUp() {
  const lines: string[] = []
  const logger = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`), error: (m: string) => lines.push(`error ${m}`) }
  const fs = new SnapshotFs([{ name: 'disk', backend: new MemoryBackend(ramp(0, 1000)) }], { uid: 0, gid: 0, readTimeoutMs: 1000, mountedAt: new Date(0) })
  return { ops: fuseOperations(fs, logger), lines }
}

t.test('successful operations answer 0 and their value', async (t) => {
  const { ops, lines } = setUp()
  t.same(await call(ops.readdir, '/'), [0, ['disk']])
  const [result, attributes] = await call(ops.getattr, '/disk')
  t.equal(result, 0)
  t.match(attributes, { size: 1000 })
  t.same(await call(ops.open, '/disk', 0), [0, 0])
  const target = Buffer.alloc(10)
  t.same(await call(ops.read, '/disk', 0, target, 10, 990), [10])
  t.ok(target.equals(ramp(990, 10)))
  t.match(await call(ops.statfs, '/'), [0, { namemax: 255 }])
  t.same(lines, [], 'nothing logged')
})

t.test('failures answer a negative errno; only the unusual ones are logged, once each', async (t) => {
  const { ops, lines } = setUp()
  t.same(await call(ops.getattr, '/missing'), [-errno.ENOENT])
  t.same(await call(ops.readdir, '/disk'), [-errno.ENOTDIR])
  t.same(await call(ops.open, '/disk', 2), [-errno.EROFS])
  t.same(await call(ops.read, '/missing', 0, Buffer.alloc(1), 1, 0), [-errno.ENOENT])
  t.same(lines, ['error open /disk flags=0o2 failed (errno 30): /disk is a read-only snapshot'])
})

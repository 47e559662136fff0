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
  const [opened, handle] = await call(ops.open, '/disk', 0)
  t.equal(opened, 0)
  t.ok(Number.isInteger(handle) && (handle as number) > 0, 'a file handle')
  const target = Buffer.alloc(10)
  t.same(await call(ops.read, '/disk', handle, target, 10, 990), [10])
  t.ok(target.equals(ramp(990, 10)))
  t.same(await call(ops.release, '/disk', handle), [0])
  t.match(await call(ops.statfs, '/'), [0, { namemax: 255 }])
  t.same(lines, [], 'nothing logged')
})

t.test('failures answer a negative errno; only the unusual ones are logged, once each', async (t) => {
  const { ops, lines } = setUp()
  t.same(await call(ops.getattr, '/missing'), [-errno.ENOENT])
  t.same(await call(ops.readdir, '/disk'), [-errno.ENOTDIR])
  t.same(await call(ops.open, '/disk', 2), [-errno.EROFS])
  t.same(await call(ops.read, '/disk', 7, Buffer.alloc(1), 1, 0), [-errno.EBADF])
  t.same(await call(ops.release, '/disk', 7), [-errno.EBADF])
  t.same(lines, [
    'error open /disk flags=0o2 failed (errno 30): /disk is a read-only snapshot',
    'error read /disk offset=0 length=1 failed (errno 9): file handle 7 is not open',
    'error release /disk failed (errno 9): file handle 7 is not open',
  ])
})

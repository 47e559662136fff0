import t from 'tap'
import { constants } from 'node:os'
import { errnoFor, isRoutine } from '../../src/fuse/errno.js'
import { NotFoundError, ReadOnlyError, ReadTimeoutError } from '../../src/fuse/fs-errors.js'
import { OutOfRangeError, PartialReadError, SourceReadError } from '../../src/backend/errors.js'
import { RemoteChangedError } from '../../src/backend/remote/remote-errors.js'
import { SourceChangedError } from '../../src/backend/source-pin.js'

const { errno } = constants

t.test('each typed error has one errno', async (t) => {
  t.equal(errnoFor(new NotFoundError('/x')), errno.ENOENT)
  t.equal(errnoFor(new ReadOnlyError('/x')), errno.EROFS)
  t.equal(errnoFor(new ReadTimeoutError(0, 1, 10)), errno.EIO)
  t.equal(errnoFor(new SourceReadError(0, 1, new Error('boom'))), errno.EIO)
  t.equal(errnoFor(new PartialReadError(0, 10, 5)), errno.EIO)
  t.equal(errnoFor(new OutOfRangeError(0, 10, 5)), errno.EIO)
  t.equal(errnoFor(new TypeError('a bug')), errno.EIO, 'a bug is EIO, not a crash')
  t.equal(errnoFor(undefined), errno.EIO)
})

t.test('a source changed since it was mounted is EIO, not ESTALE (the reason is in errno.ts)', async (t) => {
  const changed = new RemoteChangedError('https://h/disk.img', 'etag was "v1", now "v2"')
  t.equal(changed.code, 'E_REMOTE_CHANGED')
  t.equal(errnoFor(changed), errno.EIO)
  t.not(errnoFor(changed), errno.ESTALE)
  t.notOk(isRoutine(changed), 'and it is logged')
  const local = new SourceChangedError('/images/disk.raw', 'size 4096 -> 0 bytes')
  t.equal(local.code, 'E_SOURCE_CHANGED')
  t.equal(errnoFor(local), errno.EIO, 'a changed local source too')
  t.notOk(isRoutine(local))
})

t.test('only lookups of missing names go unlogged', async (t) => {
  t.ok(isRoutine(new NotFoundError('/x')))
  t.notOk(isRoutine(new ReadOnlyError('/x')))
  t.notOk(isRoutine(new ReadTimeoutError(0, 1, 10)))
  t.notOk(isRoutine(null))
})

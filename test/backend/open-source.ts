import t, { type Test } from 'tap'
import Fuse from 'fuse-native'
import { mkdir } from 'node:fs/promises'
import { constants } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { openBackend } from '../../src/backend/open-backend.js'
import { tempDir } from '../fixtures/temp-dir.js'

const REFUSALS = ['EACCES', 'EPERM', 'EIO'] as const
const context = { env: {}, logger: { info() {}, warn() {}, error() {} } }

/**
 * Mounts a FUSE file system of our own whose files are named for the errno their open() fails
 * with. Permission errors cannot be had from a mode-0000 file when the tests run as root (root
 * reads it anyway); a file system that refuses the open itself gives them to root too.
 */
async function mountRefusingFs(t: Test): Promise<string> {
  const mountpoint = join(await tempDir(t), 'mnt')
  await mkdir(mountpoint)
  const now = new Date()
  const attributes = (mode: number) => ({ mode, nlink: 1, uid: 0, gid: 0, size: 4096, atime: now, mtime: now, ctime: now })
  const refusal = (path: string) => REFUSALS.find((name) => path === `/${name}`)
  const fuse = new Fuse(mountpoint, {
    getattr(path: string, cb: (result: number, attributes?: object) => void) {
      if (path === '/') cb(0, attributes(0o40555))
      else if (refusal(path)) cb(0, attributes(0o100444))
      else cb(-constants.errno.ENOENT)
    },
    readdir(_path: string, cb: (result: number, names?: string[]) => void) {
      cb(0, [...REFUSALS])
    },
    open(path: string, _flags: number, cb: (result: number) => void) {
      cb(-constants.errno[refusal(path)!])
    },
  })
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())))
  t.teardown(() => new Promise<void>((resolve) => fuse.unmount(() => resolve())))
  return mountpoint
}

t.test('a source the system refuses to open: the reason and the fix', async (t) => {
  const mountpoint = await mountRefusingFs(t)
  for (const type of ['file', 'mmap'] as const) {
    for (const code of ['EACCES', 'EPERM'] as const) {
      const path = join(mountpoint, code)
      await t.rejects(
        openBackend({ name: 'x', type, path }, context),
        { code: 'E_SOURCE_OPEN', message: `source ${path} is not readable (${code})`, fix: 'grant read permission to the user running snapmount', cause: { code } },
        `${type}: ${code}`,
      )
    }
    const path = join(mountpoint, 'EIO')
    await t.rejects(
      openBackend({ name: 'x', type, path }, context),
      { code: 'E_SOURCE_OPEN', message: `cannot open source ${path}: EIO: `, fix: 'check the path', cause: { code: 'EIO' } },
      `${type}: EIO`,
    )
  }
})

t.test('anything but a regular file is refused by its stat, before an open could block on it', async (t) => {
  const dir = await tempDir(t)
  const run = promisify(execFile)
  await run('mkfifo', [join(dir, 'fifo')])
  // A block device node of our own: only stat'ed, never opened (the tests run as root).
  await run('mknod', [join(dir, 'block'), 'b', '7', '0'])
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(join(dir, 'socket'), resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const kinds = { [dir]: 'a directory', [join(dir, 'fifo')]: 'a FIFO', [join(dir, 'block')]: 'a block device', '/dev/null': 'a character device', [join(dir, 'socket')]: 'a socket' }
  for (const [path, kind] of Object.entries(kinds)) {
    for (const type of ['file', 'mmap'] as const) {
      await t.rejects(
        openBackend({ name: 'x', type, path }, { ...context, openTimeoutMs: 1000 }),
        { code: 'E_SOURCE_OPEN', message: `source ${path} is not a regular file (${kind})`, fix: /FIFOs and sockets are not supported/ },
        `${type}: ${kind}`,
      )
    }
  }
})

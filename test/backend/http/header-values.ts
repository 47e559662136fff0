import t, { type Test } from 'tap'
import { rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { openHeaderValues } from '../../../src/backend/http/header-values.js'
import { tempDir } from '../../fixtures/temp-dir.js'

/**
 * Header values read from files follow the files: real files in a temp folder, real inotify
 * watches. Each wait is for the log line the change produces, never a fixed sleep.
 */

/** A logger whose lines can be waited for. */
function watchedLog() {
  const lines: string[] = []
  const waiters: Array<{ pattern: RegExp; from: number; resolve: () => void }> = []
  const add = (line: string) => {
    lines.push(line)
    for (const waiter of [...waiters]) {
      if (lines.slice(waiter.from).some((seen) => waiter.pattern.test(seen))) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  }
  return {
    lines,
    logger: { info: (m: string) => add(`info: ${m}`), warn: (m: string) => add(`warn: ${m}`), error: (m: string) => add(`error: ${m}`) },
    /** Resolves at the first line matching `pattern` logged from now on. */
    next: (pattern: RegExp) => new Promise<void>((resolve) => waiters.push({ pattern, from: lines.length, resolve })),
  }
}

/** A reload hub like the daemon's: `fire()` is a SIGHUP. */
function reloads() {
  const listeners = new Set<() => void>()
  return {
    listeners,
    onReload: (listener: () => void) => (listeners.add(listener), () => void listeners.delete(listener)),
    fire: () => listeners.forEach((listener) => listener()),
  }
}

async function setUp(t: Test) {
  const dir = await tempDir(t)
  const token = join(dir, 'token')
  await writeFile(token, 'Bearer one\n')
  const log = watchedLog()
  const hub = reloads()
  const values = await openHeaderValues('disk', { Authorization: { file: token }, 'X-Tenant': { value: 'blue' }, 'X-Key': { env: 'KEY' } }, { env: { KEY: 'k1' }, logger: log.logger, onReload: hub.onReload })
  t.teardown(() => values.close())
  return { dir, token, log, hub, values }
}

const CHANGED = /^info: snapshot disk: header Authorization read again from .*token: a new value is sent from now on$/

t.test('values from the config, the environment and a file; the same object while nothing changes', async (t) => {
  const { values, hub } = await setUp(t)
  const first = values.current()
  t.same(first, { Authorization: 'Bearer one', 'X-Tenant': 'blue', 'X-Key': 'k1' }, "the file's trailing newline is not part of the value")
  await values.reread()
  t.equal(values.current(), first, 'read again, unchanged: the same object (the client formats it once)')
  t.equal(hub.listeners.size, 1, 'it listens for reloads')
  values.close()
  t.equal(hub.listeners.size, 0, 'and stops when closed')
})

t.test('a file replaced by a rename (editors, mv, rotation tools) is read again', async (t) => {
  const { dir, token, log, values } = await setUp(t)
  const changed = log.next(CHANGED)
  await writeFile(join(dir, 'token.new'), 'Bearer two\n')
  await rename(join(dir, 'token.new'), token)
  await changed
  t.equal(values.current().Authorization, 'Bearer two')
  t.equal(values.current()['X-Tenant'], 'blue', 'the other values stay')
})

t.test('a file rewritten in place is read again', async (t) => {
  const { token, log, values } = await setUp(t)
  const changed = log.next(CHANGED)
  await writeFile(token, 'Bearer three\n')
  await changed
  t.equal(values.current().Authorization, 'Bearer three')
})

t.test('a file missing, empty or broken for a while keeps the value read before, with one warning', async (t) => {
  const { dir, token, log, values } = await setUp(t)
  let warned = log.next(/^warn: /)
  await unlink(token)
  await warned
  t.match(log.lines.at(-1), /^warn: snapshot disk: header Authorization: .*token cannot be read now \(ENOENT: no such file or directory, open '.*token'\); still sending the value read before$/)
  t.equal(values.current().Authorization, 'Bearer one', 'the old value is kept')
  // Another change in the folder, and a reload, while the file is still missing: no second warning.
  await writeFile(join(dir, 'unrelated'), 'x')
  await values.reread()
  t.equal(log.lines.filter((line) => line.startsWith('warn:')).length, 1, 'warned once')

  const back = log.next(CHANGED)
  await writeFile(token, 'Bearer four\n')
  await back
  t.equal(values.current().Authorization, 'Bearer four', 'the new value once it is back')

  for (const [content, why] of [['', 'it is empty'], ['Bearer five\nx-evil: 1\n', 'it has a line break or NUL inside']] as const) {
    const before = values.current().Authorization
    warned = log.next(/^warn: /)
    await writeFile(token, content)
    await warned
    t.match(log.lines.at(-1), new RegExp(`cannot be read now \\(${why}\\); still sending the value read before$`))
    t.equal(values.current().Authorization, before, `${why}: the value read before is kept`)
    const fixed = log.next(CHANGED)
    await writeFile(token, `Bearer ${why}\n`)
    await fixed
  }
})

t.test('a reload (SIGHUP) reads the files at once, without waiting for the watch', async (t) => {
  const { token, hub, values } = await setUp(t)
  await writeFile(token, 'Bearer six\n')
  hub.fire()
  // Joins the pass the reload started, or runs right after it: well before the watch's settling time.
  await values.reread()
  t.equal(values.current().Authorization, 'Bearer six')
})

t.test('refused at open: an unset or empty variable, a missing or empty file', async (t) => {
  const dir = await tempDir(t)
  const { logger } = watchedLog()
  for (const env of [{}, { KEY: '' }]) {
    await t.rejects(openHeaderValues('disk', { 'X-Key': { env: 'KEY' } }, { env, logger }), {
      code: 'E_SOURCE_OPEN',
      message: 'snapshot disk: header X-Key comes from the environment variable KEY, which is not set',
    })
  }
  const missing = join(dir, 'missing')
  await t.rejects(openHeaderValues('disk', { Authorization: { file: missing } }, { env: {}, logger }), {
    code: 'E_SOURCE_OPEN',
    message: `snapshot disk: header Authorization: cannot read ${missing} (ENOENT: no such file or directory, open '${missing}')`,
    fix: 'check the file and its permissions',
  })
  const empty = join(dir, 'empty')
  await writeFile(empty, '\n')
  await t.rejects(openHeaderValues('disk', { Authorization: { file: empty } }, { env: {}, logger }), { message: `snapshot disk: header Authorization: cannot read ${empty} (it is empty)` })
})

t.test('without files, or without reloads (check), nothing is followed', async (t) => {
  const hub = reloads()
  const plain = await openHeaderValues('disk', { 'X-Tenant': { value: 'blue' } }, { env: {}, logger: watchedLog().logger, onReload: hub.onReload })
  t.equal(hub.listeners.size, 0, 'no reload listener without a file')
  plain.close()
  const dir = await tempDir(t)
  await writeFile(join(dir, 'token'), 'Bearer x')
  const once = await openHeaderValues('disk', { Authorization: { file: join(dir, 'token') } }, { env: {}, logger: watchedLog().logger })
  t.same(once.current(), { Authorization: 'Bearer x' }, 'a file without a trailing newline is read whole')
  once.close()
})

import t from 'tap'
import { atLevel, errorFields, logFormatFrom, stderrLogger, type Logger, type LogStream } from '../src/log.js'
import { RetriesExhaustedError } from '../src/backend/remote/remote-errors.js'

function collect(isTTY: boolean | undefined): LogStream & { lines: string[] } {
  const lines: string[] = []
  return { isTTY, lines, write: (text: string) => lines.push(text) }
}

const now = () => new Date('2025-01-02T03:04:05.678Z')

t.test('text on a terminal: level first, fields after the message, each fact once', async (t) => {
  const stream = collect(true)
  const logger = stderrLogger({ stream, now })
  logger.info('mounted /mnt/snap', { snapshots: 2, mode: 'read only', empty: '', gone: undefined })
  logger.error('read /disk offset=0 length=4096 failed (errno 5): boom', { snapshot: 'disk', offset: 0, length: 4096, errno: 5, cause: 'boom', attempts: 3, q: 'a"b=c' })
  logger.debug!('not shown at info')
  t.same(stream.lines, [
    'snapmount info: mounted /mnt/snap snapshots=2 mode="read only"\n',
    'snapmount error: read /disk offset=0 length=4096 failed (errno 5): boom errno=5 attempts=3 q="a\\"b=c"\n',
  ])
})

t.test('JSON off a terminal: time, level, msg, then the fields; reserved names are not overwritten', async (t) => {
  const stream = collect(undefined)
  const logger = stderrLogger({ stream, now, level: 'debug' })
  logger.debug!('detail', { level: 'fake', msg: 'fake', time: 'fake', n: 1, ok: true, none: null })
  logger.warn('careful')
  t.same(stream.lines.map((line) => JSON.parse(line)), [
    { time: '2025-01-02T03:04:05.678Z', level: 'debug', msg: 'detail', n: 1, ok: true, none: null },
    { time: '2025-01-02T03:04:05.678Z', level: 'warn', msg: 'careful' },
  ])
})

t.test('a format given wins over the terminal test; the default stream is stderr', async (t) => {
  const json = collect(true)
  stderrLogger({ stream: json, format: 'json', now }).info('x')
  t.match(json.lines[0], /^\{"time"/)
  const text = collect(false)
  stderrLogger({ stream: text, format: 'text' }).info('x')
  t.equal(text.lines[0], 'snapmount info: x\n')
  t.type(stderrLogger().info, 'function')
})

t.test('atLevel drops lines below its level and tolerates loggers without debug', async (t) => {
  const lines: string[] = []
  const plain: Logger = { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) }
  const warn = atLevel(plain, 'warn')
  warn.debug!('d')
  warn.info('i')
  warn.warn('w')
  warn.error('e')
  atLevel(plain, 'debug').debug!('no debug method: dropped')
  t.same(lines, ['warn w', 'error e'])
})

t.test('errorFields: code, cause and the attempts of a retry loop anywhere in the chain', async (t) => {
  const exhausted = new RetriesExhaustedError('GET /disk', 4, 1200, new Error('503'))
  const wrapped = new Error('read failed', { cause: exhausted })
  t.same(errorFields(exhausted), { code: 'E_RETRIES_EXHAUSTED', cause: exhausted.message, attempts: 4 })
  t.same(errorFields(wrapped), { code: undefined, cause: 'read failed', attempts: 4 })
  t.same(errorFields('plain'), { code: undefined, cause: 'plain', attempts: undefined })
  const looped = new Error('loop')
  looped.cause = looped
  t.same(errorFields(looped), { code: undefined, cause: 'loop', attempts: undefined }, 'a cyclic chain ends')
})

t.test('logFormatFrom: text or json, anything else auto', async (t) => {
  t.equal(logFormatFrom('json'), 'json')
  t.equal(logFormatFrom('text'), 'text')
  t.equal(logFormatFrom(undefined), 'auto')
  t.equal(logFormatFrom('yaml'), 'auto')
})

import t, { type Test } from 'tap'
import { ConfigError } from '../../src/config/config-error.js'
import { parseSource } from '../../src/config/parse-source.js'

t.test('a plain path is a file source with no name of its own', async (t) => {
  const parsed = parseSource('/var/lib/images/base.img', 1)
  t.strictSame(parsed, { type: 'file', path: '/var/lib/images/base.img' })
  t.notOk('name' in parsed, 'no name key at all, so validation picks the default')
  t.strictSame(parseSource('images/base.img', 1), { type: 'file', path: 'images/base.img' }, 'relative paths are left for validation to resolve')
})

t.test('name=path names the snapshot', async (t) => {
  t.strictSame(parseSource('base=/var/lib/images/base.img', 1), { name: 'base', type: 'file', path: '/var/lib/images/base.img' })
  t.strictSame(parseSource('base=images/x.img', 1), { name: 'base', type: 'file', path: 'images/x.img' })
  t.strictSame(parseSource('a=b=c', 1), { name: 'a', type: 'file', path: 'b=c' }, 'only the first = splits')
})

t.test('file:// and mmap:// URLs choose the backend', async (t) => {
  t.strictSame(parseSource('file:///srv/vm.raw', 1), { type: 'file', path: '/srv/vm.raw' })
  t.strictSame(parseSource('mmap:///srv/vm.raw', 1), { type: 'mmap', path: '/srv/vm.raw' })
  t.strictSame(parseSource('disk=mmap:///srv/vm.raw', 1), { name: 'disk', type: 'mmap', path: '/srv/vm.raw' })
  t.strictSame(parseSource('disk=file:///srv/vm.raw', 1), { name: 'disk', type: 'file', path: '/srv/vm.raw' })
  t.strictSame(parseSource('MMAP:///srv/vm.raw', 1), { type: 'mmap', path: '/srv/vm.raw' }, 'schemes are case-insensitive')
  t.strictSame(parseSource('file://localhost/srv/vm.raw', 1), { type: 'file', path: '/srv/vm.raw' }, 'localhost is local')
})

t.test('text before = is a name only without / or :', async (t) => {
  t.strictSame(parseSource('/data/a=b.img', 1), { type: 'file', path: '/data/a=b.img' })
  t.strictSame(parseSource('data/a=b.img', 1), { type: 'file', path: 'data/a=b.img' })
  t.strictSame(parseSource('mmap:///data/a=b.img', 1), { type: 'mmap', path: '/data/a=b.img' })
  t.strictSame(parseSource('=x.img', 1), { type: 'file', path: '=x.img' }, 'a leading = is part of the path')
})

t.test('percent-encoding in a URL is decoded; in a plain path it is not', async (t) => {
  t.strictSame(parseSource('file:///data/my%20disk.img', 1), { type: 'file', path: '/data/my disk.img' })
  t.strictSame(parseSource('mmap:///data/%C3%A9t%C3%A9.raw', 1), { type: 'mmap', path: '/data/été.raw' })
  t.strictSame(parseSource('file:///data/100%25.img', 1), { type: 'file', path: '/data/100%.img' })
  t.strictSame(parseSource('/data/my%20disk.img', 1), { type: 'file', path: '/data/my%20disk.img' })
})

/** `argument` must be refused with a ConfigError naming the command line and the source's position. */
function refuses(t: Test, argument: string, position: number, problem: RegExp, shown = argument): ConfigError | undefined {
  let thrown: unknown
  try {
    parseSource(argument, position)
  } catch (err) {
    thrown = err
  }
  if (!(thrown instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${argument}`, { found: thrown })
    return undefined
  }
  t.equal(thrown.code, 'E_CONFIG')
  t.equal(thrown.origin, 'command line')
  t.equal(thrown.field, `source ${position} (${JSON.stringify(shown)})`, 'names the source by position and text')
  t.ok(thrown.message.startsWith(`command line: source ${position} `), thrown.message)
  t.match(thrown.message, problem)
  t.match(thrown.fix, /\S/, 'has a fix')
  return thrown
}

t.test('unsupported schemes are refused, naming the scheme', async (t) => {
  for (const [argument, scheme] of [
    ['gs://bucket/base.img', 'gs:'],
    ['GS://bucket/base.img', 'gs:'],
    ['foo://x', 'foo:'],
    ['disk=nbd://host/export', 'nbd:'],
  ] as const) {
    t.test(argument, async (t) => {
      const err = refuses(t, argument, 3, new RegExp(`unsupported scheme ${scheme}`), argument.replace('GS:', 'gs:'))
      t.match(err?.fix, /file:\/\/\/path, mmap:\/\/\/path, an http\(s\):\/\/ URL or s3:\/\/bucket\/key/)
    })
  }
})

t.test('a refused URL is shown redacted: no user information, query values, bare keys or fragment', async (t) => {
  refuses(t, 'disk=ftp://me:SECRET1@host/x.img?sig=SECRET2&SECRET3#SECRET4', 1, /unsupported scheme ftp:/, 'disk=ftp://REDACTED:REDACTED@host/x.img?sig=REDACTED&REDACTED')
  refuses(t, 'nbd://me:SECRET1@bad host/x?SECRET2', 2, /unsupported scheme nbd:/, 'an unparseable URL starting "nbd://bad"')
})

t.test('s3 URLs are s3 snapshots, named or not', async (t) => {
  t.strictSame(parseSource('s3://snaps/golden/disk.img', 1), { type: 's3', url: 's3://snaps/golden/disk.img' })
  t.strictSame(parseSource('disk=S3://snaps/x', 1), { name: 'disk', type: 's3', url: 'S3://snaps/x' })
})

t.test('http and https URLs are http snapshots, named or not', async (t) => {
  t.strictSame(parseSource('https://example.com/images/base.img', 1), { type: 'http', url: 'https://example.com/images/base.img' })
  t.strictSame(parseSource('HTTP://example.com/x?sig=1', 1), { type: 'http', url: 'HTTP://example.com/x?sig=1' })
  t.strictSame(parseSource('disk=http://example.com/base.img', 1), { name: 'disk', type: 'http', url: 'http://example.com/base.img' })
})

t.test('a URL that is not a local file is refused', async (t) => {
  refuses(t, 'file://otherhost/srv/vm.raw', 1, /not a local file URL/)
  refuses(t, 'mmap:///srv/a%2Fb.raw', 2, /not a local file URL/)
})

t.test('name= with nothing after it is refused', async (t) => {
  const err = refuses(t, 'base=', 2, /no source after the name/)
  t.match(err?.fix, /name=\/path/)
})

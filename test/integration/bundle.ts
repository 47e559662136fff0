import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { runCli, SNAPMOUNT, startDaemon, type CliResult } from '../fixtures/daemon.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { makeRandomImage } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { sha256 } from '../fixtures/test-data.js'

/**
 * tap's coverage (@tapjs/processinfo, loaded into every child by NODE_OPTIONS) would record the
 * bundle too, mapped back approximately, and count the packages bundled in as files to cover; '0'
 * turns it off in these children.
 */
const WITHOUT_COVERAGE = { _TAPJS_PROCESSINFO_COVERAGE_: '0' }
/**
 * bin/snapmount runs the daemon bundled by scripts/bundle.mjs (dist/bundle/), except in the tests
 * (SNAPMOUNT_UNBUNDLED, from package.json's tap test-env) and under c8 (NODE_V8_COVERAGE), where it
 * runs the modules tsc emitted: bin/snapmount says why. These tests run the bundle as users do,
 * with both empty: every backend's chunk, the external packages it requires from node_modules (the
 * native addons, the AWS SDK), the disk cache's, and the hash worker beside it.
 */
const BUNDLE_ENV = { NODE_V8_COVERAGE: '', SNAPMOUNT_UNBUNDLED: '', ...FAUX_S3_ENV, ...WITHOUT_COVERAGE }
const SIZE = 3 * 1024 * 1024 + 4321

/**
 * Runs the bundle as users run it, which under tap takes more: @tapjs/processinfo also turns
 * source maps on, and with them on the bundle's entry requires its daemon instead of running it
 * from its code cache (scripts/bundle-entry.cjs). tap puts its hook back into any NODE_OPTIONS a
 * child is given; `env -u` takes it out after the spawn.
 */
function runAsUsersDo(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('env', ['-u', 'NODE_OPTIONS', SNAPMOUNT, ...args], { timeout: 20_000, env: { ...process.env, ...BUNDLE_ENV, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr })
    })
  })
}

t.test('the bundle mounts local (file, mmap), HTTP (direct and redirected) and S3 snapshots, reads them exactly through the disk cache and serves metrics', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', SIZE, 5)
  const bytes = await readFile(image)
  const nginx = await startNginx(t, dir)
  // Every request redirected to nginx: the HTTP backend leaves its own client for undici's, the
  // bundle's largest chunk.
  const redirector = createServer((_, res) => res.writeHead(302, { location: nginx.url('/disk.raw') }).end())
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => redirector.close(() => resolve())))
  const redirecting = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/disk.raw`
  const s3 = await startFauxS3(t)
  await s3.createBucket('images')
  await s3.uploadFile('images', 'disk.raw', image)
  const config = join(dir, 'snapmount.yaml')
  await writeFile(
    config,
    [
      'mountpoint: mnt',
      'snapshots:',
      `  - { name: local, type: file, path: ${image} }`,
      `  - { name: mapped, type: mmap, path: ${image} }`,
      `  - { name: web, type: http, url: "${nginx.url('/disk.raw')}" }`,
      `  - { name: redirected, type: http, url: "${redirecting}" }`,
      `  - { name: bucket, type: s3, url: s3://images/disk.raw, endpoint: "${s3.endpoint}", region: ${s3.region} }`,
      '',
    ].join('\n'),
  )
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, ['--config', config, '--metrics-listen', '127.0.0.1:0', '--cache-dir', join(dir, 'cache')], BUNDLE_ENV)
  const cmdline = (await readFile(`/proc/${daemon.process.pid}/cmdline`, 'utf8')).split('\0')
  t.ok(cmdline.some((arg) => arg.endsWith('/dist/bundle/bin.js')), `runs the bundle: ${cmdline.join(' ')}`)
  for (const name of ['local', 'mapped', 'web', 'redirected', 'bucket']) {
    t.equal(sha256(await readFile(join(mountpoint, name))), sha256(bytes), `${name}: every byte`)
  }
  t.notMatch(daemon.stderr(), /disk cache off/, 'the disk cache chunk and better-sqlite3 load')
  const metricsUrl = /metrics on (http:\S+)/.exec(daemon.stderr())?.[1]
  t.ok(metricsUrl, 'serves metrics')
  t.match(await (await fetch(metricsUrl!)).text(), /^snapmount_/m, 'the metrics chunk and prom-client load')
  t.equal(await daemon.stop(), 0)
  // The daemon ran with tap's source maps; `check` opens the same sources from the code cache.
  const checked = await runAsUsersDo(['check', '--config', config], { NODE_DEBUG: 'snapmount' })
  t.equal(checked.code, 0, checked.stderr)
  t.match(checked.stderr, /code cache accepted/)
  t.equal(checked.stdout.trim().split('\n').length, 5, `every source opens: ${checked.stdout}`)
})

t.test('the bundle hashes a manifest in its worker threads', async (t) => {
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', SIZE, 6)
  const output = join(dir, 'disk.manifest')
  const created = await runCli(['manifest', 'create', image, '--output', output], { env: BUNDLE_ENV })
  t.equal(created.code, 0, created.stderr)
  const verified = await runCli(['manifest', 'verify', image, output], { env: BUNDLE_ENV })
  t.equal(verified.code, 0, verified.stderr)
  t.equal(verified.stdout, 'OK  25 blocks (3.0 MiB) match\n')
})

t.test("the bundle's help is the modules' help, word for word (its string-width takes a fast path)", async (t) => {
  const modules = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url))
  for (const args of [['--help'], ['mount', '--help'], ['manifest', 'create', '--help']]) {
    const bundled = await runCli(args, { env: BUNDLE_ENV })
    t.equal(bundled.code, 0, bundled.stderr)
    const { stdout } = await promisify(execFile)(process.execPath, [modules, ...args])
    t.equal(bundled.stdout, stdout, args.join(' '))
  }
})

t.test('a bundle older than the modules tsc emitted is not run: bin/snapmount runs the modules', async (t) => {
  const modules = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url))
  const bundle = fileURLToPath(new URL('../../dist/bundle/bin.js', import.meta.url))
  // The entry node runs, printed by a module imported before it.
  const env = { ...BUNDLE_ENV, NODE_OPTIONS: '--import=data:text/javascript,console.error(process.argv[1])' }
  const entry = async () => (await runCli(['--version'], { env })).stderr.trim().split('\n').at(-1)
  t.equal(await entry(), bundle, 'a fresh build runs the bundle')
  const saved = await stat(modules)
  t.teardown(() => utimes(modules, saved.atime, saved.mtime))
  // As `tsc -p .` run alone, after the bundle was made, leaves them.
  await utimes(modules, saved.atime, new Date((await stat(bundle)).mtime.getTime() + 10_000))
  t.equal(await entry(), modules, 'tsc ran after the bundle: the modules run')
})

t.test("the bundle runs its daemon from the code cache the build recorded, unless that is older than the daemon", async (t) => {
  const said = async () => (await runAsUsersDo(['--version'], { NODE_DEBUG: 'snapmount' })).stderr
  t.match(await said(), /code cache accepted/, 'V8 takes the cache made through bin/snapmount')
  const daemon = fileURLToPath(new URL('../../dist/bundle/daemon.js', import.meta.url))
  const cache = `${daemon}.cache`
  const saved = await stat(cache)
  t.teardown(() => utimes(cache, saved.atime, saved.mtime))
  // As a daemon.js rebuilt without its cache would leave it: V8 would check only its length.
  await utimes(cache, saved.atime, new Date((await stat(daemon)).mtime.getTime() - 10_000))
  t.match(await said(), /code cache not offered/)
})

t.test("with source maps on, the bundle's stack traces name the TypeScript sources", async (t) => {
  const dir = await tempDir(t)
  // A failure inside main(), whose stack Node prints: the daemon's first call of process.getuid.
  const failing = join(dir, 'failing-getuid.cjs')
  await writeFile(failing, "process.getuid = () => { throw new Error('no uid here') }\n")
  const { code, stderr } = await runCli(['--version'], { env: { ...BUNDLE_ENV, NODE_OPTIONS: `--enable-source-maps --require=${failing}` } })
  t.not(code, 0)
  t.match(stderr, /no uid here/)
  t.match(stderr, /at main \(\S*\/src\/cli\/main\.ts:\d+:\d+\)/, 'the frame in main() is mapped to main.ts')
})

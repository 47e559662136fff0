import t from 'tap'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, startDaemon } from '../fixtures/daemon.js'
import { makeCertificates } from '../fixtures/certificates.js'
import { GiB, LARGE_IMAGE_SIZE, makeLargeSparseImage, makeRandomImage } from '../fixtures/images.js'
import { startNginx } from '../fixtures/nginx.js'
import { readPathSuite } from '../fixtures/read-path-suite.js'
import { readRange } from '../fixtures/readers.js'
import { tempDir } from '../fixtures/temp-dir.js'

/** A real web server on loopback: Debian's nginx, serving a 1 GiB image and a sparse one past 4 GiB. */
const IMAGE_SIZE = GiB

t.test('http snapshots served by nginx, through the mount', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const image = await makeRandomImage(www, 'disk.raw', IMAGE_SIZE, 7)
  const large = await makeLargeSparseImage(www)
  const nginx = await startNginx(t, www)
  const mountpoint = join(dir, 'mnt')
  await mkdir(mountpoint)
  const daemon = await startDaemon(t, mountpoint, [mountpoint, nginx.url('/disk.raw'), `large=${nginx.url('/large.img')}`])
  t.teardown(() => daemon.stop())
  readPathSuite(
    t,
    { mounted: join(mountpoint, 'disk.raw'), source: image, size: IMAGE_SIZE },
    { mounted: join(mountpoint, 'large'), source: large, size: LARGE_IMAGE_SIZE },
  )

  t.test('every GET was ranged and pinned to the ETag seen at open', async (t) => {
    const gets = (await nginx.accessLog()).split('\n').filter((line) => line.includes('"GET '))
    // At open, one unpinned one-byte GET per snapshot proves ranges work; every read after is pinned.
    // nginx logs an absent header as "-" and writes the quotes of an ETag as \x22.
    const probes = gets.filter((line) => line.includes('range="bytes=0-0" if_match="-"'))
    t.equal(probes.length, 2, 'one range probe per snapshot')
    const reads = gets.filter((line) => !probes.includes(line))
    t.ok(reads.length > 100, `${reads.length} reads`)
    t.same(reads.filter((line) => !/range="bytes=\d+-\d+" if_match="\\x22[^"]+\\x22"/.test(line)), [], 'each with Range and If-Match')
  })
})

t.test('https: extra CA, mutual TLS, and refusals that say why', async (t) => {
  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const image = await makeRandomImage(www, 'disk.raw', 3 * 1024 * 1024 + 5, 8)
  const certificates = await makeCertificates(dir)
  const tls = await startNginx(t, www, { tls: { certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile } })
  const mutual = await startNginx(t, www, {
    tls: { certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile, clientCaFile: certificates.caFile },
  })
  const config = async (name: string, snapshot: string) => {
    const file = join(dir, `${name}.yaml`)
    await mkdir(join(dir, name))
    await writeFile(file, `mountpoint: ${name}\nsnapshots:\n  - type: http\n    name: disk\n${snapshot}`)
    return { file, mountpoint: join(dir, name) }
  }

  t.test('a server certificate from an unknown CA is refused at start', async (t) => {
    const { file } = await config('untrusted', `    url: ${tls.url('/disk.raw')}\n`)
    const result = await runCli(['mount', '--config', file])
    t.equal(result.code, 2)
    t.match(result.stderr, /TLS certificate not trusted .*; add the CA as ca_file/)
    t.equal(result.stderr.trimEnd().split('\n').length, 1, 'in one line: no retry can make the certificate trusted')
  })

  t.test('with ca_file it mounts and reads exact bytes', async (t) => {
    const { file, mountpoint } = await config('trusted', `    url: ${tls.url('/disk.raw')}\n    ca_file: ${certificates.caFile}\n`)
    const daemon = await startDaemon(t, mountpoint, ['--config', file])
    t.ok((await readRange(join(mountpoint, 'disk'), 0, 3 * 1024 * 1024 + 5)).equals(await readRange(image, 0, 3 * 1024 * 1024 + 5)))
    t.equal(await daemon.stop(), 0)
  })

  t.test('NODE_EXTRA_CA_CERTS is trusted; Node is left to read it only where a config or S3 may need it', async (t) => {
    const env = { NODE_EXTRA_CA_CERTS: certificates.caFile }
    const environment = async (pid: number | undefined) => (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')
    const commandLine = join(dir, 'extra-ca')
    await mkdir(commandLine)
    const deferred = await startDaemon(t, commandLine, [commandLine, `disk=${tls.url('/disk.raw')}`], env)
    t.ok((await readRange(join(commandLine, 'disk'), 0, 65536)).equals(await readRange(image, 0, 65536)), 'a source on the command line: exact bytes')
    const deferredEnvironment = await environment(deferred.process.pid)
    t.ok(deferredEnvironment.includes(`SNAPMOUNT_DEFERRED_EXTRA_CA_CERTS=${certificates.caFile}`), 'handed to the daemon under its own name')
    t.notOk(deferredEnvironment.some((line) => line.startsWith('NODE_EXTRA_CA_CERTS=')), 'so Node did not parse it at start')
    t.equal(await deferred.stop(), 0)

    const { file, mountpoint } = await config('extra-ca-config', `    url: ${tls.url('/disk.raw')}\n`)
    const kept = await startDaemon(t, mountpoint, ['--config', file], env)
    t.ok((await readRange(join(mountpoint, 'disk'), 0, 65536)).equals(await readRange(image, 0, 65536)), 'from a config: exact bytes')
    const keptEnvironment = await environment(kept.process.pid)
    t.ok(keptEnvironment.includes(`NODE_EXTRA_CA_CERTS=${certificates.caFile}`), "a config may name an S3 source, whose SDK needs Node's own trust: left to Node")
    t.notOk(keptEnvironment.some((line) => line.startsWith('SNAPMOUNT_DEFERRED_EXTRA_CA_CERTS=')))
    t.equal(await kept.stop(), 0)
  })

  t.test('insecure_skip_verify mounts, and says so loudly', async (t) => {
    const { file, mountpoint } = await config('insecure', `    url: ${tls.url('/disk.raw')}\n    insecure_skip_verify: true\n`)
    const daemon = await startDaemon(t, mountpoint, ['--config', file])
    t.match(daemon.stderr(), /warn: TLS certificate checks are OFF for https:\/\/127\.0\.0\.1:\d+\/disk\.raw/)
    t.ok((await readRange(join(mountpoint, 'disk'), 1000, 5000)).equals(await readRange(image, 1000, 5000)))
    t.equal(await daemon.stop(), 0)
  })

  t.test('a server that wants a client certificate: refused without one, served with one', async (t) => {
    const without = await config('no-client-cert', `    url: ${mutual.url('/disk.raw')}\n    ca_file: ${certificates.caFile}\n`)
    const refused = await runCli(['mount', '--config', without.file])
    t.equal(refused.code, 2)
    t.match(refused.stderr, /the server answered 400/)
    const withCert = await config(
      'client-cert',
      `    url: ${mutual.url('/disk.raw')}\n    ca_file: ${certificates.caFile}\n    client_cert_file: ${certificates.clientCertFile}\n    client_key_file: ${certificates.clientKeyFile}\n`,
    )
    const daemon = await startDaemon(t, withCert.mountpoint, ['--config', withCert.file])
    t.ok((await readRange(join(withCert.mountpoint, 'disk'), 0, 65536)).equals(await readRange(image, 0, 65536)))
    t.equal(await daemon.stop(), 0)
  })
})

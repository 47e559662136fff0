// nginx on 127.0.0.1 for the benchmark's HTTP part: the bench's small equivalent of
// test/fixtures/nginx.ts (which is TypeScript and tied to tap). Debian's nginx, in the foreground
// as a child process, with everything it writes (pid, logs, temp dirs) under a temp prefix.

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const NGINX = '/usr/sbin/nginx'

/** nginx writes its pid file only after binding; it takes milliseconds, 10 s means it is stuck. */
const START_WAIT_MS = 10_000
/** SIGTERM is nginx's fast shutdown; a master still alive after this is killed. */
const EXIT_WAIT_MS = 5_000
const PREFIX = 'snapmount-bench-nginx-'

// Should the bench die without its cleanup (an uncaught error), nginx must not outlive it.
// SIGTERM, not SIGKILL: a killed master would leave its worker running.
const running = new Set()
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM')
})

/**
 * Serves `root` on a free loopback port; resolves once nginx listens. The access log has one short
 * line per request (status, body bytes, connection), so the bench can count the GETs a reader
 * caused and the connections they came on.
 * `stop()` is idempotent, waits for nginx to exit and removes the temp prefix.
 */
export async function startNginx(root) {
  const dir = await mkdtemp(join(tmpdir(), PREFIX))
  const port = await freePort()
  const configFile = join(dir, 'nginx.conf')
  const pidFile = join(dir, 'nginx.pid')
  const errorLog = join(dir, 'error.log')
  const accessLog = join(dir, 'access.log')
  await writeFile(configFile, config(dir, root, port))
  const child = spawn(NGINX, ['-p', dir, '-e', errorLog, '-c', configFile, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  running.add(child)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  const exited = new Promise((resolve) => child.once('close', resolve)).then(() => running.delete(child))
  const alive = () => child.exitCode === null && child.signalCode === null
  let stopped
  const stop = () =>
    (stopped ??= (async () => {
      if (alive()) child.kill('SIGTERM')
      const timer = setTimeout(() => alive() && child.kill('SIGKILL'), EXIT_WAIT_MS)
      await exited
      clearTimeout(timer)
      await rm(dir, { recursive: true, force: true })
    })())

  const log = async () => `${stderr}${await readFile(errorLog, 'utf8').catch(() => '')}`
  const deadline = Date.now() + START_WAIT_MS
  while (!(await readFile(pidFile, 'utf8').catch(() => '')).startsWith(`${child.pid}\n`)) {
    if (!alive() || Date.now() > deadline) {
      const why = alive() ? `did not start within ${START_WAIT_MS} ms` : `exited (${child.exitCode ?? child.signalCode})`
      const text = await log()
      await stop()
      throw new Error(`nginx ${why}:\n${text}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}/${path}`,
    /** Every request served so far, oldest first: { status, bytes, connection } (nginx's serial number). */
    async requests() {
      const lines = (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter(Boolean)
      return lines.map((line) => {
        const [status, bytes, connection] = line.split(' ').map(Number)
        return { status, bytes, connection }
      })
    },
    stop,
  }
}

/**
 * Stops an nginx a SIGKILLed bench left behind (its master's command line names its temp prefix,
 * so no other nginx is touched) and removes the prefix. Returns the prefixes cleared.
 */
export async function clearStaleNginx() {
  const cleared = []
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue
    const dir = join(tmpdir(), name)
    const pid = Number.parseInt(await readFile(join(dir, 'nginx.pid'), 'utf8').catch(() => ''), 10)
    const cmdline = Number.isInteger(pid) ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : ''
    if (cmdline.includes(dir)) {
      process.kill(pid, 'SIGTERM')
      for (let waited = 0; waited < EXIT_WAIT_MS && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')); waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    await rm(dir, { recursive: true, force: true })
    cleared.push(dir)
  }
  return cleared
}

function config(dir, root, port) {
  // As root, workers would otherwise run as nobody, who may not read the bench dir.
  const user = process.getuid?.() === 0 ? 'user root;' : ''
  return `
${user}
# One worker, like the tests: on loopback the clients (one Node process each) run out first.
worker_processes 1;
pid ${quote(join(dir, 'nginx.pid'))};
error_log ${quote(join(dir, 'error.log'))} warn;
events {
  worker_connections 1024;
}
http {
  log_format short '$status $body_bytes_sent $connection';
  access_log ${quote(join(dir, 'access.log'))} short;
  client_body_temp_path ${quote(join(dir, 'client_body'))};
  proxy_temp_path ${quote(join(dir, 'proxy'))};
  fastcgi_temp_path ${quote(join(dir, 'fastcgi'))};
  uwsgi_temp_path ${quote(join(dir, 'uwsgi'))};
  scgi_temp_path ${quote(join(dir, 'scgi'))};
  default_type application/octet-stream;
  sendfile on;
  tcp_nodelay on;
  etag on;
  keepalive_timeout 60s;
  # The default (1000) would close a connection every 1000 range reads: a benchmark artefact.
  keepalive_requests 1000000;
  # nginx sends Accept-Ranges on 200s only; httpfs2 refuses a 206 without it (snapmount does not
  # look). Keyed on the request's Range: add_header runs before nginx turns a 200 into a 206.
  map $http_range $accept_ranges {
    '' '';
    default bytes;
  }
  add_header Accept-Ranges $accept_ranges;
  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    root ${quote(root)};
  }
}
`
}

/** A port free a moment ago; another process could take it first, which nginx reports at start. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function quote(value) {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`
}

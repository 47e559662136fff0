// A real nginx on 127.0.0.1, for the tests (test/fixtures/nginx.ts wraps it with tap's teardown)
// and for the benchmark's HTTP part (bench/run.mjs). Plain JavaScript so the bench runs it as is;
// the types are in nginx.d.mts.
//
// Debian's nginx runs in the foreground as a child process, serving a directory statically:
// ranges, strong ETags and keep-alive as a production static server would. Everything it writes
// (config, pid file, logs, temp dirs) stays under a temp prefix, so it never touches /var/log,
// /run or /var/lib.

import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { freePort } from './free-port.mjs'
import { terminate } from './terminate.mjs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Debian's nginx (nginx-light). */
export const NGINX = '/usr/sbin/nginx'

/** nginx writes its pid file only after binding; it takes milliseconds, 10 s means it is stuck. */
const START_WAIT_MS = 10_000
/** SIGTERM is nginx's fast shutdown; a master still alive after this is killed. */
const EXIT_WAIT_MS = 5_000
/**
 * A free port is found by binding port 0 and closing it; another process can take it before
 * nginx binds it. Rare, so a few attempts are plenty.
 */
const START_ATTEMPTS = 3
const DEFAULT_PREFIX = 'snapmount-nginx-'

// Should the process exit without stopping nginx (an uncaught error, a test without teardown),
// nginx must not outlive it. SIGTERM, not SIGKILL: a killed master would leave its worker running.
const running = new Set()
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM')
})

/**
 * Serves `root` on a free 127.0.0.1 port; resolves once nginx listens. See nginx.d.mts for the
 * options and the returned handle. `stop()` is idempotent, waits for nginx to exit and removes
 * the temp prefix.
 */
export function startNginx(root, options = {}) {
  const { tls, acceptRangesOnPartial = false } = options
  return startNginxSite((port) => staticSite(root, port, { tls, acceptRangesOnPartial }), { ...options, https: Boolean(tls) })
}

/**
 * Runs nginx with the `server` blocks (and other `http`-level directives) that `site(port, dir)`
 * returns, inside the same temp prefix, logs and temp paths as `startNginx`: for configs of our
 * own such as deploy/nginx's caching tier. Same handle as `startNginx`.
 */
export async function startNginxSite(site, options = {}) {
  const { https = false, prefix = DEFAULT_PREFIX, netns } = options
  const dir = await mkdtemp(join(tmpdir(), prefix))
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      try {
        const { stop: stopped, freeze } = await run(dir, config(dir, site(port, dir)), netns)
        const origin = `${https ? 'https' : 'http'}://127.0.0.1:${port}`
        const accessLog = () => readFile(join(dir, 'access.log'), 'utf8').catch(() => '')
        let removed
        return {
          port,
          origin,
          url: (path) => new URL(path.replace(/^\/*/, '/'), origin).href,
          accessLog,
          async requests() {
            return (await accessLog())
              .split('\n')
              .filter(Boolean)
              .map((line) => {
                // The fields around the quoted request line never contain spaces.
                const fields = line.split(' ')
                return { clientPort: Number(fields[0]), status: Number(fields.at(-2)), bytes: Number(fields.at(-1)) }
              })
          },
          pause: () => freeze(true),
          resume: () => freeze(false),
          stop: () =>
            (removed ??= (async () => {
              await stopped()
              await rm(dir, { recursive: true, force: true })
            })()),
        }
      } catch (err) {
        const lostPortRace = err instanceof Error && /Address already in use/.test(err.message)
        if (!lostPortRace || attempt === START_ATTEMPTS) throw err
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/**
 * Stops an nginx that a SIGKILLed process left behind under `prefix` (its master's command line
 * names its temp prefix, so no other nginx is touched) and removes the prefix. Returns the
 * directories cleared. Give a prefix only this caller uses: every nginx under it is stopped.
 */
export async function clearStaleNginx(prefix) {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new TypeError('clearStaleNginx: a temp prefix is required')
  const cleared = []
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(prefix)) continue
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

/** A static server of `root`: ranges, strong ETags, keep-alive. */
function staticSite(root, port, { tls, acceptRangesOnPartial }) {
  const ssl = tls
    ? [
        `ssl_certificate ${quote(tls.certFile)};`,
        `ssl_certificate_key ${quote(tls.keyFile)};`,
        ...(tls.clientCaFile ? [`ssl_client_certificate ${quote(tls.clientCaFile)};`, 'ssl_verify_client on;'] : []),
      ]
    : []
  // nginx sends Accept-Ranges on 200s only; httpfs2 refuses a 206 without it (snapmount does not
  // look). Keyed on the request's Range: add_header runs before nginx turns a 200 into a 206.
  const acceptRanges = acceptRangesOnPartial
    ? `map $http_range $accept_ranges {
    '' '';
    default bytes;
  }
  add_header Accept-Ranges $accept_ranges;`
    : ''
  return `${acceptRanges}
  server {
    listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
    server_name localhost;
    root ${quote(root)};
    ${ssl.join('\n    ')}
  }`
}

/** nginx's main config around `site`: everything it writes stays under `dir`. */
function config(dir, site) {
  // As root, workers would otherwise run as nobody, who may not read a root-only temp dir.
  const user = process.getuid?.() === 0 ? 'user root;' : ''
  return `
${user}
# One worker: enough for loopback tests, and on loopback the bench's clients run out first.
worker_processes 1;
pid ${quote(join(dir, 'nginx.pid'))};
error_log ${quote(join(dir, 'error.log'))} warn;
events {
  worker_connections 1024;
}
http {
  # The client port tells connections apart: one per open connection.
  log_format ranges '$remote_port "$request" range="$http_range" if_match="$http_if_match" $status $body_bytes_sent';
  access_log ${quote(join(dir, 'access.log'))} ranges;
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
  ${site}
}
`
}

/**
 * Starts nginx with `text` as its config, inside `netns` when given; resolves once it listens, to
 * a function that stops it and one that freezes (SIGSTOP) or thaws (SIGCONT) it.
 */
async function run(dir, text, netns) {
  const configFile = join(dir, 'nginx.conf')
  const pidFile = join(dir, 'nginx.pid')
  const errorLog = join(dir, 'error.log')
  await writeFile(configFile, text)
  // -e: the error log for messages before the config is read (the built-in default may be a
  // path under /var/log on other builds); -p: relative paths resolve in the temp dir.
  const args = ['-p', dir, '-e', errorLog, '-c', configFile, '-g', 'daemon off;']
  // nsenter execs nginx in place: the child's pid stays nginx's, as the pid file check expects.
  const child = (netns?.spawn ?? spawn)(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  running.add(child)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk))
  // 'exit', not 'close': a worker that outlived a SIGKILLed master would hold stderr open.
  const exited = new Promise((resolve) => child.once('exit', resolve)).then(() => running.delete(child))
  const closed = new Promise((resolve) => child.once('close', resolve))
  const alive = () => child.exitCode === null && child.signalCode === null
  let stopping
  let frozen = false
  /**
   * SIGSTOP (or SIGCONT) to the master and its workers, which /proc lists as its children. Frozen,
   * nginx still completes TCP handshakes and takes requests (the kernel does, into the listen
   * backlog and socket buffers) and answers nothing: a hung server.
   */
  const freeze = async (on) => {
    frozen = on
    const workers = (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number)
    for (const pid of [child.pid, ...workers]) {
      try {
        process.kill(pid, on ? 'SIGSTOP' : 'SIGCONT')
      } catch {
        // already gone: nothing to freeze or thaw
      }
    }
  }
  // SIGTERM is nginx's fast shutdown: open keep-alive connections are not waited for. A frozen
  // nginx is thawed first, so it can shut down rather than wait for the SIGKILL.
  const stop = () => (stopping ??= (frozen ? freeze(false) : Promise.resolve()).then(() => terminate(child, exited, EXIT_WAIT_MS)))

  const log = async () => `${stderr}${await readFile(errorLog, 'utf8').catch(() => '')}`
  const deadline = Date.now() + START_WAIT_MS
  // nginx writes its pid file only after it has bound its listening sockets; a connect alone
  // could reach whoever else holds the port.
  while (!(await readFile(pidFile, 'utf8').catch(() => '')).startsWith(`${child.pid}\n`)) {
    if (!alive()) {
      // Before its pid file there are no workers: stderr closes with the master.
      await closed
      throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}) before listening:\n${await log()}`)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`nginx did not start within ${START_WAIT_MS} ms:\n${await log()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return { stop, freeze }
}

/** nginx's quoting: temp paths have no quotes, but may one day have spaces. */
function quote(value) {
  return `"${value.replace(/(["\\])/g, '\\$1')}"`
}

// The HTTP parts: the image from nginx, at 0 ms and at RTT_MS, through snapmount, httpfs2,
// rclone mount and QEMU's curl driver with a FUSE export, beside curl and an undici client.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { NGINX, startNginx } from '../../tools/nginx.mjs'
import { qemuMount, versionOf } from '../lib/peers.mjs'
import { progress } from '../lib/progress.mjs'
import { IMAGE_BYTES, NAME, NGINX_PREFIX, ROOT, SNAPMOUNT, TEMP_PREFIX } from '../lib/settings.mjs'
import { DELAYS, measureCondition, measureRaw } from './remote.mjs'
import { makeManifest, manifestMount, measureCorruption } from './manifest.mjs'

const HTTP_CLIENT = join(ROOT, 'bench/http-client.mjs')

/**
 * The HTTP mounts of one URL: snapmount with its defaults, then with `manifest` when given (issue
 * 20), and each peer present.
 */
export function httpMounts(origin, file, peers, dir, manifest) {
  const url = `${origin}/${file}`
  const mounts = [{ key: 'snapmount', title: 'snapmount', command: (mnt) => [SNAPMOUNT, 'mount', mnt, `${NAME}=${url}`] }, ...(manifest ? [manifestMount(url, manifest, dir)] : [])]
  if (peers.httpfs2.path) {
    mounts.push({
      key: 'httpfs2',
      title: 'httpfs2',
      file,
      listedWhenMounted: true,
      // -f: stay a child we can signal; -c: its messages go to our pipe instead of /dev/console.
      command: (mnt) => [peers.httpfs2.path, '-f', '-c', '/dev/stderr', url, mnt],
    })
  }
  if (peers.rclone.path) {
    mounts.push({
      key: 'rclone',
      title: 'rclone mount',
      file,
      listedWhenMounted: true,
      sigtermExit: 143,
      // An empty config: everything is on the command line. --cache-dir: with the cache off nothing is kept there.
      command: (mnt) => [peers.rclone.path, 'mount', ':http:', mnt, '--http-url', `${origin}/`, '--read-only', '--config', join(dir, 'rclone-empty.conf'), '--cache-dir', join(dir, 'rclone-cache')],
    })
  }
  if (peers.qemu.path && peers.qemuCurl) mounts.push(qemuMount('qemu', 'QEMU curl + FUSE export', `driver=http,url=${url}`, peers.qemu))
  return mounts
}

/** `streams` curl GETs at once, each of its own slice of `bytes`: the aggregate MB/s. */
async function curlSeq(procs, url, streams, bytes = IMAGE_BYTES) {
  const each = bytes / streams
  const started = performance.now()
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const { stdout } = await procs.run('curl', ['--silent', '--show-error', '--fail', '--noproxy', '*', '--output', '/dev/null', '--range', `${i * each}-${(i + 1) * each - 1}`, '--write-out', '%{size_download}', url])
      if (Number(stdout.trim()) !== each) throw new Error(`curl ${url} slice ${i}: ${stdout.trim()} bytes, expected ${each}`)
    }),
  )
  return bytes / ((performance.now() - started) / 1000) / 1e6
}

/** The plain clients: curl streams straight to nginx and through the proxy, 4 KiB ranged GETs (bench/http-client.mjs) through it. */
function measureRawHttp(ctx, directUrl, url, title) {
  const { procs } = ctx
  return measureRaw(ctx, { label: `HTTP ${title}`, stream: 'curl', request: 'GETs' }, {
    seqDirect: () => curlSeq(procs, directUrl, 1),
    seq: (streams) => curlSeq(procs, url, streams),
    rate: async (clients, seconds) => JSON.parse((await procs.run('node', [HTTP_CLIENT, 'rate', url, String(clients), String(seconds)])).stdout),
  })
}

/** rclone's http backend lists a directory from its HTML index: this one, in `dir`, links the image `file` only. */
export function writeIndex(dir, file) {
  return writeFile(join(dir, 'index.html'), `<!doctype html>\n<html><body><a href="${file}">${file}</a></body></html>\n`)
}

/** nginx's version, for the tables' title lines. */
export function nginxVersion(procs) {
  // nginx prints its version on stderr: "nginx version: nginx/1.22.1".
  return versionOf(procs, NGINX, ['-v'], /nginx\/(\S+)/)
}

/** Both HTTP conditions (or those in `which`): nginx once, a proxy per condition. */
export async function measureHttp(ctx, peers, which) {
  const { procs, image, settings } = ctx
  /** The image as nginx serves it (root: the bench's dir); httpfs2 and rclone name their file after it. */
  const file = basename(image.path)
  await writeIndex(settings.benchDir, file)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = procs.addService({ stop: () => rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'rclone-empty.conf'), '')
  // Accept-Ranges on 206s: httpfs2 fails every read without it.
  const nginx = procs.addService(await startNginx(settings.benchDir, { acceptRangesOnPartial: true, prefix: NGINX_PREFIX }))
  const results = {}
  try {
    const server = `nginx ${await nginxVersion(procs)}`
    const manifest = await makeManifest(procs, image.path, dir)
    await image.warm()
    for (const delay of DELAYS) {
      if (!which.includes(`http-${delay.suffix}`)) continue
      const condition = await measureCondition(ctx, {
        proto: 'http',
        server,
        delay,
        port: nginx.port,
        notes: [],
        rawClient: (origin) => {
          progress(`HTTP ${delay.title}: ${origin}/${file}`)
          return measureRawHttp(ctx, `${nginx.origin}/${file}`, `${origin}/${file}`, delay.title)
        },
        mountsOf: (origin) => httpMounts(origin, file, peers, dir, manifest),
      })
      if (delay.oneWayDelayMs === 0) condition.corruption = await measureCorruption(ctx, { origin: nginx.origin, file, manifest, dir })
      results[condition.key] = condition
    }
  } finally {
    await procs.stopService(nginx)
    await procs.stopService(temp)
  }
  return results
}

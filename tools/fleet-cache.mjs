// The fleet's caching tier as shipped (deploy/nginx/snapmount-cache.conf), run on loopback in
// front of an origin, for the tests and the fleet benchmark. Plain JavaScript so the bench runs it
// as is; the types are in fleet-cache.d.mts.
//
// The shipped file is used, not a copy: only the three site-specific values its header tells an
// installer to set are replaced (origin, port, cache directory), each of which must appear exactly
// once, so a test of the tier always tests the config users install.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNginxSite } from './nginx.mjs'

/** The config users install. */
export const FLEET_CACHE_CONF = fileURLToPath(new URL('../deploy/nginx/snapmount-cache.conf', import.meta.url))

/** The `slice` directive of the shipped config: one line, `slice SIZE;`. */
const SLICE_LINE = /^(\s*)slice (\S+);$/gm

/** The shipped config's slice size as nginx reads it (`1m`, `256k`). */
export async function shippedSlice() {
  return sliceLine(await readFile(FLEET_CACHE_CONF, 'utf8'))[2]
}

/**
 * Starts the tier on a free 127.0.0.1 port in front of `originHostPort` (`127.0.0.1:PORT`);
 * resolves once it listens, to the handle of tools/nginx.mjs (its access log is the tier's).
 * `options.slice` (nginx's size syntax, `256k`) replaces the shipped slice size: the fleet bench
 * compares sizes with it; tests use the config as shipped.
 */
export async function startFleetCache(originHostPort, { slice, ...options } = {}) {
  const text = await readFile(FLEET_CACHE_CONF, 'utf8')
  const [line, indent] = sliceLine(text)
  return startNginxSite(
    (port, dir) =>
      [
        ['proxy_cache_path /var/cache/nginx/snapmount ', `proxy_cache_path ${join(dir, 'cache')} `],
        ['listen 8080;', `listen 127.0.0.1:${port};`],
        ['server origin.example:80;', `server ${originHostPort};`],
        ...(slice ? [[line, `${indent}slice ${slice};`]] : []),
      ].reduce((config, [from, to]) => replaceOnce(config, from, to), text),
    { prefix: 'snapmount-fleet-cache-', ...options },
  )
}

function sliceLine(text) {
  const lines = [...text.matchAll(SLICE_LINE)]
  if (lines.length !== 1) throw new Error(`${FLEET_CACHE_CONF}: expected one "slice SIZE;" line, found ${lines.length}; update tools/fleet-cache.mjs with the config`)
  return lines[0]
}

function replaceOnce(text, from, to) {
  const at = text.indexOf(from)
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`${FLEET_CACHE_CONF}: expected "${from}" exactly once; update tools/fleet-cache.mjs with the config`)
  }
  return text.slice(0, at) + to + text.slice(at + from.length)
}

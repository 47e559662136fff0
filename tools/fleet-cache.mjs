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

/**
 * Starts the tier on a free 127.0.0.1 port in front of `originHostPort` (`127.0.0.1:PORT`);
 * resolves once it listens, to the handle of tools/nginx.mjs (its access log is the tier's).
 */
export async function startFleetCache(originHostPort, options = {}) {
  const text = await readFile(FLEET_CACHE_CONF, 'utf8')
  return startNginxSite(
    (port, dir) =>
      [
        ['proxy_cache_path /var/cache/nginx/snapmount ', `proxy_cache_path ${join(dir, 'cache')} `],
        ['listen 8080;', `listen 127.0.0.1:${port};`],
        ['server origin.example:80;', `server ${originHostPort};`],
      ].reduce((config, [from, to]) => replaceOnce(config, from, to), text),
    { prefix: 'snapmount-fleet-cache-', ...options },
  )
}

function replaceOnce(text, from, to) {
  const at = text.indexOf(from)
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`${FLEET_CACHE_CONF}: expected "${from}" exactly once; update tools/fleet-cache.mjs with the config`)
  }
  return text.slice(0, at) + to + text.slice(at + from.length)
}

import type { Nginx, NginxSiteOptions } from './nginx.mjs'

/** deploy/nginx/snapmount-cache.conf, the caching tier's config as users install it. */
export declare const FLEET_CACHE_CONF: string

/**
 * Runs the shipped caching tier with nginx on a free 127.0.0.1 port in front of
 * `originHostPort` (`127.0.0.1:PORT`), its cache in nginx's temp dir. Throws if the shipped
 * config no longer has the site-specific lines this replaces. The caller stops it.
 */
export declare function startFleetCache(originHostPort: string, options?: NginxSiteOptions & { slice?: string }): Promise<Nginx>

/** The shipped config's `slice` size, as written there (`1m`, `256k`). */
export declare function shippedSlice(): Promise<string>

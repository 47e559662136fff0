// A transparent TCP proxy on 127.0.0.1 that counts what passes, for the benchmark (bench/run.mjs):
// placed between a mount's daemon and its server, it tells how many bytes the server sent the
// daemon, on how many connections, in how many requests. It is tools/delay-proxy.mjs with no
// delay: bytes are forwarded as they arrive (with back-pressure), never held, and counted there.
// Plain JavaScript so the bench runs it as is; the types are in count-proxy.d.mts.
//
// Requests are counted by reading the client's side as a sequence of header blocks (a request
// line, headers, an empty line), which holds for the bodiless GETs and HEADs of a read-only
// client; a request with a body (a PUT) would be miscounted, so uploads should not go through it.

import { startDelayProxy } from './delay-proxy.mjs'

/** Starts the proxy to `target`; resolves to { port, counters(), close() } once it listens. */
export function startCountProxy(target) {
  return startDelayProxy(target, 0)
}

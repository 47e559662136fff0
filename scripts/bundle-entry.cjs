// The bundle's entry: scripts/bundle.mjs copies this file to dist/bundle/bin.js. It runs the
// daemon, daemon.js beside it, from the V8 code cache the build made for it.
//
// Node 20 keeps nothing compiled between runs (no module compile cache): each start parsed the
// daemon's ~480 KB again, then compiled each function as it first ran. A vm.Script takes V8's
// code cache instead: the bytecode of every function a `snapmount --version` run compiled (every
// module's top level, yargs' setup), recorded by the build in daemon.js.cache, is read in place of
// that work.
//
// V8 checks the cache against its own version and flags (bin/snapmount's) and rejects it if they
// differ; the daemon then compiles as if there were none. It checks the source only by its length,
// so a cache older than daemon.js is not offered; and the cache by no checksum (a file damaged in
// place stops the start with a V8 fatal error, as a damaged daemon.js would fail it).
// `NODE_DEBUG=snapmount` tells which happened.
'use strict'
const { readFileSync, statSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')
const { debuglog } = require('node:util')
const vm = require('node:vm')

const daemonPath = join(__dirname, 'daemon.js')
const cachePath = join(__dirname, 'daemon.js.cache')

/** The cache if there is one at least as new as daemon.js. */
function readCodeCache() {
  const cache = statSync(cachePath, { throwIfNoEntry: false })
  return cache && cache.mtimeMs >= statSync(daemonPath).mtimeMs ? readFileSync(cachePath) : undefined
}

function runFromCodeCache() {
  // The build's own run (scripts/bundle.mjs) compiles afresh and records what it compiled as it exits.
  const making = process.env.SNAPMOUNT_MAKE_CODE_CACHE === '1'
  const cachedData = making ? undefined : readCodeCache()
  // Node's CommonJS wrapper, on the source's first line so that lines keep their numbers.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(daemonPath, 'utf8')}\n})`
  const script = new vm.Script(wrapped, { filename: daemonPath, cachedData })
  debuglog('snapmount')('code cache %s', cachedData === undefined ? 'not offered' : script.cachedDataRejected ? 'rejected' : 'accepted')
  if (making) process.once('exit', () => writeFileSync(cachePath, script.createCachedData()))
  const daemon = { exports: {} }
  script.runInThisContext()(daemon.exports, require('node:module').createRequire(daemonPath), daemon, daemonPath, __dirname)
}

// Node maps the stack traces of what its own loader compiles (daemon.js.map, chained to the
// TypeScript), not those of a vm.Script: with source maps on, the daemon is required as usual.
if (process.sourceMapsEnabled) require(daemonPath)
else runFromCodeCache()

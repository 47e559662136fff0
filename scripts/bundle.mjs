#!/usr/bin/env node
// Bundles the compiled daemon (dist/, from `tsc -p .`) into dist/bundle/, which bin/snapmount
// runs. Node's ES module loader resolves, reads and compiles each module on its own: the daemon's
// ~80 modules and yargs' ~40 took about a third of its start (issue 17: 270 -> 190 CPU-ms from
// spawn to "mounted" for a local snapshot). One file loads in one read and one compile.
//
// What is dynamically imported (the HTTP and S3 backends, yaml, metrics) stays in chunks of its
// own, loaded only by a config that uses it. The native addons and the AWS SDK stay outside,
// required from node_modules (EXTERNAL, requireExternals below). The hash worker is an entry of
// its own, beside the chunks, where src/manifest/hash-pool.ts looks for it. The source map chains
// to dist's maps and so to src/*.ts: stack traces and the tests' coverage of the daemon name the
// TypeScript sources.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Packages left out of the bundle: the native addons (their loaders find their .node files
 * relative to themselves) and the AWS SDK (only an S3 snapshot loads it, and it is most of
 * node_modules).
 */
const EXTERNAL = /^(fuse-native|mmap-io|better-sqlite3|@node-rs\/crc32|@aws-sdk\/|@smithy\/)/

/**
 * The external packages are all CommonJS, and loaded with `require`, not `import`. Node 20's ES
 * module loader runs a CommonJS module, and every module it requires in turn, through its own
 * translator and cjs-module-lexer (to find names to export): importing fuse-native, better-sqlite3
 * and @node-rs/crc32 cost 90 CPU-ms against 20 ms required. Each import of one becomes a small
 * CommonJS module `module.exports = require(...)`, which esbuild bundles with its usual interop
 * (a default import is module.exports, as in Node) and whose `require` stays a call at run time.
 */
const requireExternals = {
  name: 'require-externals',
  setup(build) {
    build.onResolve({ filter: EXTERNAL }, (args) =>
      args.kind === 'require-call' ? { path: args.path, external: true } : { path: args.path, namespace: 'require-external' },
    )
    build.onLoad({ filter: /.*/, namespace: 'require-external' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)})`, loader: 'js' }))
  },
}
const outdir = `${root}dist/bundle`

await rm(outdir, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli/bin.js', 'dist/manifest/hash-worker.js'],
  outdir,
  // bin.js and hash-worker.js, and the chunks beside them: hash-pool.ts finds the worker as
  // ./hash-worker.js next to whichever file its own code ended up in.
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  sourcesContent: false,
  plugins: [requireExternals],
  // CommonJS packages bundled in (undici, yaml) require Node's built-ins, and the externals are
  // required: an ES module has no `require` of its own, and esbuild's stand-in throws without one.
  banner: { js: "import { createRequire as snapmountCreateRequire } from 'node:module'\nconst require = snapmountCreateRequire(import.meta.url)" },
  logLevel: 'warning',
})

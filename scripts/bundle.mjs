#!/usr/bin/env node
// Bundles the compiled daemon (dist/, from `tsc -p .`) into dist/bundle/, which bin/snapmount
// runs. Node's ES module loader resolves, reads and compiles each module on its own: the daemon's
// ~80 modules and yargs' ~40 took about a third of its start (issue 17: 270 -> 190 CPU-ms from
// spawn to "mounted" for a local snapshot). One file loads in one read and one compile.
//
// What is dynamically imported (the HTTP and S3 backends, yaml, metrics) stays in chunks of its
// own, loaded only by a config that uses it. Left outside the bundle, loaded from node_modules:
// the native addons (their loaders find their .node files relative to themselves) and the AWS SDK
// (only an S3 snapshot loads it, and it is most of node_modules). The hash worker is an entry of
// its own, beside the chunks, where src/manifest/hash-pool.ts looks for it. The source map chains
// to dist's maps and so to src/*.ts: stack traces and the tests' coverage of the daemon name the
// TypeScript sources.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
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
  external: ['fuse-native', 'mmap-io', 'better-sqlite3', '@node-rs/crc32', '@aws-sdk/*', '@smithy/*'],
  // CommonJS packages bundled in (undici, yaml) require Node's built-ins; an ES module has no
  // `require` of its own, and esbuild's stand-in throws without one.
  banner: { js: "import { createRequire as snapmountCreateRequire } from 'node:module'\nconst require = snapmountCreateRequire(import.meta.url)" },
  logLevel: 'warning',
})

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
import { readFile, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Packages left out of the bundle: the native addons (their loaders find their .node files
 * relative to themselves) and the AWS SDK (only an S3 snapshot loads it, and it is most of
 * node_modules).
 */
const EXTERNAL = /^(fuse-native|mmap-io|better-sqlite3|xxh3-c|@node-rs\/|@aws-sdk\/|@smithy\/)/

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

/**
 * yargs lays out the mount command's help as the command starts (it keeps it for a failure, and
 * ours never print it), measuring each string with string-width. Its copy under cliui (7.x) sends
 * every string through an Intl.Segmenter, built as it loads (7.6 CPU-ms of ICU data alone), and
 * the help's strings are all printable ASCII, whose width is their length. Bundled, each import
 * of string-width gets that fast path first (as string-width 8 itself has), and builds the
 * segmenter only on first use. The build fails if string-width no longer has the line made lazy,
 * so an upgrade is looked at rather than silently slower.
 */
const asciiStringWidth = {
  name: 'ascii-string-width',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined
      const real = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: 'real' })
      return { path: real.path, namespace: 'ascii-string-width' }
    })
    build.onLoad({ filter: /.*/, namespace: 'ascii-string-width' }, (args) => ({
      contents: `import stringWidth from ${JSON.stringify(args.path)}\nexport default (text, options) => (typeof text === 'string' && /^[\\x20-\\x7e]*$/.test(text) ? text.length : stringWidth(text, options))\n`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }))
    build.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const eager = 'const segmenter = new Intl.Segmenter();'
      if (!source.includes(eager)) throw new Error(`${args.path}: no "${eager}" to make lazy (scripts/bundle.mjs)`)
      const lazy = 'let madeSegmenter; const segmenter = { segment: (text) => (madeSegmenter ??= new Intl.Segmenter()).segment(text) };'
      return { contents: source.replace(eager, lazy), loader: 'js' }
    })
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
  // Node 20's V8 has the RegExp v flag and Unicode property escapes, which esbuild does not assume
  // for node20: it would turn string-width's /^\p{RGI_Emoji}$/v into a `new RegExp` compiled as
  // the bundle loads (~5 CPU-ms each start), where a literal is compiled on first use (never, on a
  // mount's start).
  supported: { 'regexp-set-notation': true, 'regexp-unicode-property-escapes': true },
  sourcemap: 'linked',
  sourcesContent: false,
  plugins: [requireExternals, asciiStringWidth],
  // CommonJS packages bundled in (undici, yaml) require Node's built-ins, and the externals are
  // required: an ES module has no `require` of its own, and esbuild's stand-in throws without one.
  banner: { js: "import { createRequire as snapmountCreateRequire } from 'node:module'\nconst require = snapmountCreateRequire(import.meta.url)" },
  logLevel: 'warning',
})

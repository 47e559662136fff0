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
//
// esbuild splits code into chunks only as ES modules; every file is then made CommonJS, for two
// reasons. Node 20 has a code cache only for scripts: the entry, bin.js (scripts/bundle-entry.cjs),
// runs the daemon, daemon.js, as a vm.Script from the cache this build records, and a script's
// require() reaches the chunks where its import() would need a loader Node 20 lacks. And Node's
// ES module loader costs more than its CommonJS one: resolving each chunk, reading it through
// the thread pool, and building each built-in module's namespace, which runs every lazy getter
// (node:crypto's loads webcrypto). A local mount's start: 171 -> 135 CPU-ms (see the commit).
import { build } from 'esbuild'
import { execFile } from 'node:child_process'
import { copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

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
/** The chunks as esbuild makes them, ES modules, before they are made CommonJS; then removed. */
const esmdir = `${root}dist/bundle-esm`
/**
 * Node 20's V8 has the RegExp v flag and Unicode property escapes, which esbuild does not assume
 * for node20: it would turn string-width's /^\p{RGI_Emoji}$/v into a `new RegExp` compiled as the
 * bundle loads (~5 CPU-ms each start), where a literal is compiled on first use (never, on a
 * mount's start). import() is made a require() in a promise: as lazy, and no ES module loader.
 */
const supported = { 'regexp-set-notation': true, 'regexp-unicode-property-escapes': true, 'dynamic-import': false }

await rm(outdir, { recursive: true, force: true })
await rm(esmdir, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: [{ in: 'dist/cli/bin.js', out: 'daemon' }, 'dist/manifest/hash-worker.js'],
  outdir: esmdir,
  // daemon.js and hash-worker.js, and the chunks beside them: hash-pool.ts finds the worker as
  // ./hash-worker.js next to whichever file its own code ended up in.
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  supported: { ...supported, 'dynamic-import': true },
  sourcemap: 'linked',
  sourcesContent: false,
  plugins: [requireExternals, asciiStringWidth],
  logLevel: 'warning',
})

// Each ES module as CommonJS, under the same name; what it imports stays outside (the other
// chunks, Node's built-ins, the external packages). Strict, as the module was: the banner says so
// before esbuild's own "use strict", which would otherwise be no directive. import.meta is the
// file's own. The source maps chain to the first build's, and so to src/*.ts.
await build({
  absWorkingDir: root,
  entryPoints: (await readdir(esmdir)).filter((file) => file.endsWith('.js')).map((file) => `${esmdir}/${file}`),
  outdir,
  entryNames: '[name]',
  bundle: true,
  packages: 'external',
  external: ['./*'],
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  supported,
  sourcemap: 'linked',
  sourcesContent: false,
  banner: { js: "'use strict'\nconst snapmountImportMeta = { url: require('node:url').pathToFileURL(__filename).href }" },
  define: { 'import.meta': 'snapmountImportMeta' },
  logLevel: 'warning',
})
await rm(esmdir, { recursive: true })
await writeFile(`${outdir}/package.json`, '{ "type": "commonjs" }\n')
await copyFile(`${root}scripts/bundle-entry.cjs`, `${outdir}/bin.js`)

// The code cache (scripts/bundle-entry.cjs): what a `--version` run compiles, run as users run it,
// through bin/snapmount, as V8 rejects a cache made under other flags. Without the caller's
// NODE_OPTIONS (V8 flags among them), and the bundle run, not the modules.
await promisify(execFile)(`${root}bin/snapmount`, ['--version'], {
  env: { ...process.env, NODE_OPTIONS: '', NODE_V8_COVERAGE: '', SNAPMOUNT_UNBUNDLED: '', SNAPMOUNT_MAKE_CODE_CACHE: '1' },
})

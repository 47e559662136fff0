// The YAML parser, on its own so that load-config imports it only for a config file. A module of
// ours in between, not `import('yaml')` itself: yaml is CommonJS, and bundled (scripts/bundle.mjs)
// a dynamic import of it would see only a default export; a static import of a name is bundled
// with its interop.
export { parse } from 'yaml'

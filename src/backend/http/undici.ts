// What the HTTP backend's general client takes from undici, on its own so that it is loaded only
// when that client is first needed (a proxy or a redirect). A module of ours in between, not
// `import('undici')` itself: undici is CommonJS, and bundled (scripts/bundle.mjs) a dynamic import
// of it would see only a default export; a static import of names is bundled with its interop.
export { EnvHttpProxyAgent, request } from 'undici'

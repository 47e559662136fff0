// Every test may cover any of snapmount's own modules (integration tests reach them through the
// daemon they spawn); vendored code (vendor/fuse-native, vendor/mmap-io, vendor/blake3,
// vendor/xxh3) is not ours to cover.
import { readdirSync } from 'node:fs'

const ownModules = readdirSync('src', { recursive: true })
  .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
  .map((file) => `src/${file}`)

export default () => ownModules

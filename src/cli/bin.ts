import { main } from './main.js'

// Exit explicitly: fuse-native's native thread can outlive a mount that was taken away by hand
// and would keep the process alive. stderr is a pipe or a file here, written synchronously.
// No top-level await: the bundle runs this module as CommonJS (scripts/bundle.mjs), which has none.
void main(process.argv.slice(2)).then((code) => process.exit(code))

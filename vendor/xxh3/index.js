'use strict'
// The addon node-gyp built at install (binding.gyp; see SNAPMOUNT.md). Named one by one so that
// ES modules can import them by name.
const addon = require('./build/Release/xxh3.node')
exports.pieceDigests = addon.pieceDigests
exports.piecesMatch = addon.piecesMatch

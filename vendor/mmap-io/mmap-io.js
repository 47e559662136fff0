module.exports = require("./dist/mmap-io")

{
  "targets": [{
    "target_name": "fuse",
    "include_dirs": [
      "<!(node -e \"require('napi-macros')\")",
      "/usr/include/fuse3"
    ],
    "libraries": [
      "-lfuse3"
    ],
    "sources": [
      "fuse-native.c"
    ],
    "cflags": [
      "-g",
      "-O3",
      "-Wall"
    ]
  }]
}

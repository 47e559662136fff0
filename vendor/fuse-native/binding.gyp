{
  "targets": [{
    "target_name": "fuse",
    "include_dirs": [
      "<!(node -e \"require('napi-macros')\")",
      "<!@(pkg-config --cflags-only-I fuse3 | sed 's/-I//g')"
    ],
    "libraries": [
      "<!@(pkg-config --libs fuse3)"
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

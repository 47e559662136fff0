{
  "targets": [{
    "target_name": "xxh3",
    "sources": ["src/addon.c"],
    "include_dirs": ["xxhash"],
    "cflags": ["-O3"],
    "conditions": [
      # xxh_x86dispatch.c is compiled for the baseline x86-64 (SSE2), as upstream asks, and builds
      # its AVX2 and AVX-512 variants with target attributes; it picks one at load (cpuid).
      ["target_arch=='x64'", {
        "sources": ["xxhash/xxh_x86dispatch.c"],
        "defines": ["SNAPMOUNT_XXH_X86_DISPATCH"]
      }, {
        "sources": ["xxhash/xxhash.c"]
      }]
    ]
  }]
}

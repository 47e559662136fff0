{
  "targets": [{
    "target_name": "blake3",
    "sources": ["src/addon.c", "c/blake3.c", "c/blake3_dispatch.c", "c/blake3_portable.c"],
    "include_dirs": ["c"],
    "cflags": ["-O3"],
    "conditions": [
      ["target_arch=='x64' and OS!='win'", {
        "sources": ["c/blake3_sse2_x86-64_unix.S", "c/blake3_sse41_x86-64_unix.S", "c/blake3_avx2_x86-64_unix.S", "c/blake3_avx512_x86-64_unix.S"]
      }],
      ["target_arch=='x64' and OS=='win'", {
        "defines": ["BLAKE3_NO_SSE2", "BLAKE3_NO_SSE41", "BLAKE3_NO_AVX2", "BLAKE3_NO_AVX512"]
      }],
      ["target_arch=='arm64'", {
        "sources": ["c/blake3_neon.c"]
      }]
    ]
  }]
}

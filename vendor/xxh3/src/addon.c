// snapmount's binding of xxHash's XXH3-64 (../xxhash, upstream 0.8.3 unchanged). Two calls, both on
// the calling thread, both hashing every piece of a buffer in one call (the disk cache's check of a
// 128 KiB block is one call, not eight), reading the bytes where they are: a Uint8Array's data
// pointer comes from napi_get_typedarray_info, which gives it for views of a SharedArrayBuffer too
// (the daemon's block buffers are views of a shared WebAssembly.Memory; napi_get_arraybuffer_info
// refuses those).
//   pieceDigests(data, pieceBytes): Buffer       XXH3_64bits (seed 0) of each pieceBytes of data
//                                                (the last piece may be shorter), 8 bytes each,
//                                                big-endian, back to back
//   piecesMatch(data, pieceBytes, stored, firstPiece): boolean
//                                                whether those digests equal stored's from piece
//                                                firstPiece on (false if stored is too short);
//                                                allocates nothing
// On x64, xxh_x86dispatch.h turns XXH3_64bits into XXH3_64bits_dispatch, which runs the widest of
// SSE2, AVX2 and AVX-512 the CPU has (chosen once, at load); elsewhere xxhash.c's build for the
// target (NEON on arm64).
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#ifdef SNAPMOUNT_XXH_X86_DISPATCH
#include "xxh_x86dispatch.h"
#else
#include "xxhash.h"
#endif

#define DIGEST_BYTES 8
// Arguments arrive as JS numbers: integers up to 2^53 are exact, and 8 × 2^53 still fits a uint64_t.
#define MAX_SAFE_INTEGER 9007199254740991.0

#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "xxh3: a Node-API call failed");          \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

// The bytes of `value`, which must be a Uint8Array (a Buffer is one).
static bool bytes_of(napi_env env, napi_value value, const uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return false;
  napi_typedarray_type type;
  void *pointer = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  *data = pointer;
  return true;
}

// `value` as an integer of at least `least`: a number, integral and exact (not 1.5, NaN or 2^60).
static bool integer_of(napi_env env, napi_value value, double least, uint64_t *out) {
  napi_valuetype type;
  double number = 0;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) return false;
  if (napi_get_value_double(env, value, &number) != napi_ok) return false;
  if (!(number >= least && number <= MAX_SAFE_INTEGER) || (double)(uint64_t)number != number) return false;
  *out = (uint64_t)number;
  return true;
}

static uint64_t pieces_of(size_t length, uint64_t piece) {
  return length / piece + (length % piece != 0);
}

static uint64_t piece_digest(const uint8_t *data, size_t length, uint64_t piece, uint64_t index) {
  size_t start = (size_t)(index * piece);
  size_t size = length - start < piece ? length - start : (size_t)piece;
  return XXH3_64bits(data + start, size);
}

// Stored digests are big-endian (XXH64's canonical form), whatever the host's byte order.
static void store_big_endian(uint64_t digest, uint8_t *out) {
  for (int byte = DIGEST_BYTES - 1; byte >= 0; byte--, digest >>= 8) out[byte] = (uint8_t)digest;
}

static uint64_t load_big_endian(const uint8_t *in) {
  uint64_t digest = 0;
  for (int byte = 0; byte < DIGEST_BYTES; byte++) digest = digest << 8 | in[byte];
  return digest;
}

static napi_value piece_digests(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  const uint8_t *data = NULL;
  size_t length = 0;
  uint64_t piece = 0;
  if (argc < 1 || !bytes_of(env, args[0], &data, &length)) {
    napi_throw_type_error(env, NULL, "xxh3.pieceDigests: data must be a Uint8Array");
    return NULL;
  }
  if (argc < 2 || !integer_of(env, args[1], 1, &piece)) {
    napi_throw_type_error(env, NULL, "xxh3.pieceDigests: pieceBytes must be a positive integer");
    return NULL;
  }
  uint64_t count = pieces_of(length, piece);
  if (count > SIZE_MAX / DIGEST_BYTES) {  // only where size_t is 32 bits
    napi_throw_range_error(env, NULL, "xxh3.pieceDigests: too many pieces");
    return NULL;
  }
  napi_value result;
  void *out = NULL;
  CHECK(env, napi_create_buffer(env, (size_t)count * DIGEST_BYTES, &out, &result));
  for (uint64_t index = 0; index < count; index++) {
    store_big_endian(piece_digest(data, length, piece, index), (uint8_t *)out + index * DIGEST_BYTES);
  }
  return result;
}

static napi_value pieces_match(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  const uint8_t *data = NULL, *stored = NULL;
  size_t length = 0, stored_length = 0;
  uint64_t piece = 0, first = 0;
  if (argc < 1 || !bytes_of(env, args[0], &data, &length)) {
    napi_throw_type_error(env, NULL, "xxh3.piecesMatch: data must be a Uint8Array");
    return NULL;
  }
  if (argc < 2 || !integer_of(env, args[1], 1, &piece)) {
    napi_throw_type_error(env, NULL, "xxh3.piecesMatch: pieceBytes must be a positive integer");
    return NULL;
  }
  if (argc < 3 || !bytes_of(env, args[2], &stored, &stored_length)) {
    napi_throw_type_error(env, NULL, "xxh3.piecesMatch: stored must be a Uint8Array");
    return NULL;
  }
  if (argc < 4 || !integer_of(env, args[3], 0, &first)) {
    napi_throw_type_error(env, NULL, "xxh3.piecesMatch: firstPiece must be a non-negative integer");
    return NULL;
  }
  uint64_t count = pieces_of(length, piece);
  bool match = (first + count) * DIGEST_BYTES <= stored_length;
  for (uint64_t index = 0; match && index < count; index++) {
    match = piece_digest(data, length, piece, index) == load_big_endian(stored + (first + index) * DIGEST_BYTES);
  }
  napi_value result;
  CHECK(env, napi_get_boolean(env, match, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "pieceDigests", NAPI_AUTO_LENGTH, piece_digests, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "pieceDigests", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "piecesMatch", NAPI_AUTO_LENGTH, pieces_match, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "piecesMatch", fn) != napi_ok) return NULL;
  return exports;
}

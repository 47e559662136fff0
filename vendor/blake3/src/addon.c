// snapmount's binding of the official BLAKE3 C implementation (../c, upstream 1.8.6 unchanged).
// Two calls, both on the calling thread, both reading the bytes where they are: a Uint8Array's data
// pointer comes from napi_get_typedarray_info, which gives it for views of a SharedArrayBuffer too
// (napi_get_arraybuffer_info refuses a SharedArrayBuffer, and node-addon-api's
// TypedArray::ArrayBuffer().Data() then yields NULL: why @c4312/blake3-native crashes on them).
//   digest(data: Uint8Array): Buffer                      the 32-byte BLAKE3 of data
//   blockDigests(data: Uint8Array, blockBytes): Buffer    one digest per blockBytes of data (the
//                                                         last block may be short), back to back
#include <node_api.h>
#include <stdint.h>
#include "blake3.h"

#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "blake3: a Node-API call failed");        \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

// The bytes of args[0], which must be a Uint8Array (a Buffer is one).
static int bytes_of(napi_env env, napi_value value, const uint8_t **data, size_t *length) {
  bool is_typedarray = false;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray) return 0;
  napi_typedarray_type type;
  void *pointer = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &pointer, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = pointer;
  return 1;
}

static void hash_into(const uint8_t *data, size_t length, uint8_t *out) {
  blake3_hasher hasher;
  blake3_hasher_init(&hasher);
  blake3_hasher_update(&hasher, data, length);
  blake3_hasher_finalize(&hasher, out, BLAKE3_OUT_LEN);
}

static napi_value digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  const uint8_t *data = NULL;
  size_t length = 0;
  if (argc < 1 || !bytes_of(env, args[0], &data, &length)) {
    napi_throw_type_error(env, NULL, "blake3.digest: data must be a Uint8Array");
    return NULL;
  }
  napi_value result;
  void *out = NULL;
  CHECK(env, napi_create_buffer(env, BLAKE3_OUT_LEN, &out, &result));
  hash_into(data, length, out);
  return result;
}

static napi_value block_digests(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  const uint8_t *data = NULL;
  size_t length = 0;
  if (argc < 2 || !bytes_of(env, args[0], &data, &length)) {
    napi_throw_type_error(env, NULL, "blake3.blockDigests: data must be a Uint8Array");
    return NULL;
  }
  int64_t block = 0;
  if (napi_get_value_int64(env, args[1], &block) != napi_ok || block < 1) {
    napi_throw_range_error(env, NULL, "blake3.blockDigests: blockBytes must be a positive integer");
    return NULL;
  }
  size_t count = length / (size_t)block + (length % (size_t)block != 0);
  napi_value result;
  void *out = NULL;
  CHECK(env, napi_create_buffer(env, count * BLAKE3_OUT_LEN, &out, &result));
  for (size_t index = 0; index < count; index++) {
    size_t start = index * (size_t)block;
    size_t size = length - start < (size_t)block ? length - start : (size_t)block;
    hash_into(data + start, size, (uint8_t *)out + index * BLAKE3_OUT_LEN);
  }
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "digest", NAPI_AUTO_LENGTH, digest, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "digest", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "blockDigests", NAPI_AUTO_LENGTH, block_digests, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "blockDigests", fn) != napi_ok) return NULL;
  return exports;
}

/*
 * SHA-256 whose updates can run on libuv's thread pool, so that hashing a download does not
 * take the JavaScript thread: Node's own crypto hashes only on the calling thread, and a worker
 * would need every chunk copied to it.
 *   sha256New() -> handle
 *   sha256Update(handle, buf)                    on the calling thread
 *   sha256UpdateAsync(handle, bufs[], cb(err))   on the pool, the buffers hashed in order;
 *                                                the buffers are kept alive until cb runs
 *   sha256Digest(handle) -> hex string           finishes the hash (the handle is spent)
 * Contract: one update at a time per handle; sha256Update, sha256UpdateAsync and sha256Digest
 * throw (EBUSY) while an async update is in flight, and after sha256Digest (EINVAL).
 * OpenSSL is Node's own (its symbols are exported by the node binary).
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  EVP_MD_CTX *md;
  int busy;
  int done;
} hasher_t;

typedef struct {
  napi_async_work work;
  hasher_t *h;
  napi_ref keep;  /* [handle, bufs] kept alive while the pool hashes */
  napi_ref cb;
  size_t n;
  const unsigned char **ptrs;
  size_t *lens;
  int failed;
} job_t;

static void hasher_free(napi_env env, void *data, void *hint) {
  hasher_t *h = data;
  EVP_MD_CTX_free(h->md);
  free(h);
}

static napi_value throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static hasher_t *usable(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) { throw_code(env, "EINVAL", "sha256: not a hash handle"); return NULL; }
  hasher_t *h = p;
  if (h->busy) { throw_code(env, "EBUSY", "sha256: an update is in flight"); return NULL; }
  if (h->done) { throw_code(env, "EINVAL", "sha256: the hash was already finished"); return NULL; }
  return h;
}

static napi_value js_new(napi_env env, napi_callback_info info) {
  hasher_t *h = calloc(1, sizeof *h);
  if (!h) return throw_code(env, "ENOMEM", "sha256: out of memory");
  h->md = EVP_MD_CTX_new();
  if (!h->md || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(h->md);
    free(h);
    return throw_code(env, "EIO", "sha256: OpenSSL could not start a SHA-256 hash");
  }
  napi_value ext;
  napi_create_external(env, h, hasher_free, NULL, &ext);
  return ext;
}

static napi_value js_update(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_code(env, "EINVAL", "sha256Update(handle, buffer)");
  hasher_t *h = usable(env, argv[0]);
  if (!h) return NULL;
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_code(env, "EINVAL", "sha256Update: expected a Buffer");
  if (EVP_DigestUpdate(h->md, data, len) != 1) return throw_code(env, "EIO", "sha256Update: OpenSSL failed");
  return NULL;
}

static void job_execute(napi_env env, void *data) {
  job_t *j = data;
  for (size_t i = 0; i < j->n && !j->failed; i++) {
    if (EVP_DigestUpdate(j->h->md, j->ptrs[i], j->lens[i]) != 1) j->failed = 1;
  }
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  j->h->busy = 0;
  napi_value cb, global, arg;
  napi_get_reference_value(env, j->cb, &cb);
  napi_get_global(env, &global);
  if (j->failed || status != napi_ok) {
    napi_value msg, code;
    napi_create_string_utf8(env, status == napi_cancelled ? "sha256UpdateAsync: cancelled" : "sha256UpdateAsync: OpenSSL failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &arg);
  } else {
    napi_get_null(env, &arg);
  }
  napi_delete_reference(env, j->keep);
  napi_delete_reference(env, j->cb);
  napi_delete_async_work(env, j->work);
  free(j->ptrs);
  free(j->lens);
  free(j);
  napi_call_function(env, global, cb, 1, &arg, NULL);
}

static napi_value js_update_async(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_code(env, "EINVAL", "sha256UpdateAsync(handle, buffers, callback)");
  hasher_t *h = usable(env, argv[0]);
  if (!h) return NULL;
  uint32_t n;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) return throw_code(env, "EINVAL", "sha256UpdateAsync: expected an array of Buffers");
  job_t *j = calloc(1, sizeof *j);
  if (!j) return throw_code(env, "ENOMEM", "sha256: out of memory");
  j->ptrs = calloc(n ? n : 1, sizeof *j->ptrs);
  j->lens = calloc(n ? n : 1, sizeof *j->lens);
  if (!j->ptrs || !j->lens) { free(j->ptrs); free(j->lens); free(j); return throw_code(env, "ENOMEM", "sha256: out of memory"); }
  j->h = h;
  j->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value b; void *data; size_t len;
    napi_get_element(env, argv[1], i, &b);
    if (napi_get_buffer_info(env, b, &data, &len) != napi_ok) {
      free(j->ptrs); free(j->lens); free(j);
      return throw_code(env, "EINVAL", "sha256UpdateAsync: expected an array of Buffers");
    }
    j->ptrs[i] = data;
    j->lens[i] = len;
  }
  napi_value keep, name;
  napi_create_array_with_length(env, 2, &keep);
  napi_set_element(env, keep, 0, argv[0]);
  napi_set_element(env, keep, 1, argv[1]);
  napi_create_reference(env, keep, 1, &j->keep);
  napi_create_reference(env, argv[2], 1, &j->cb);
  napi_create_string_utf8(env, "kiln:sha256", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
  h->busy = 1;
  napi_queue_async_work(env, j->work);
  return NULL;
}

static napi_value js_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return throw_code(env, "EINVAL", "sha256Digest(handle)");
  hasher_t *h = usable(env, argv[0]);
  if (!h) return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  h->done = 1;
  if (EVP_DigestFinal_ex(h->md, md, &len) != 1) return throw_code(env, "EIO", "sha256Digest: OpenSSL failed");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  static const char digits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  napi_value out;
  napi_create_string_latin1(env, hex, 2 * len, &out);
  return out;
}

void register_sha256(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"sha256New", NULL, js_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256Update", NULL, js_update, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256UpdateAsync", NULL, js_update_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256Digest", NULL, js_digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

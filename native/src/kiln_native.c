/*
 * kiln_native: the few syscalls Node cannot make.
 *   mknod(path, mode, major, minor)          device nodes and overlay whiteouts (char 0/0)
 *   lsetxattr(path, name, value: Buffer)     opaque dirs (trusted.overlay.opaque), PAX xattrs
 *   lgetxattr(path, name) -> Buffer | null   null when the attribute is absent
 *   llistxattr(path) -> string[]
 *   mount(source, target, fstype, flags, data) / umount2(target, flags)
 *   flock(fd, operation) -> boolean         false when LOCK_NB was given and the lock is held
 * and, from sha256.c, a SHA-256 that can hash on libuv's thread pool (sha256New, …).
 * Every failure throws an Error whose .code is the errno name (e.g. "EPERM") and whose
 * .syscall and .path say what failed, like Node's own fs errors.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/mount.h>
#include <sys/file.h>

#define MAXARGS 6

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EACCES: return "EACCES";
    case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR"; case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC"; case EROFS: return "EROFS"; case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA"; case EBUSY: return "EBUSY"; case ERANGE: return "ERANGE";
    case ELOOP: return "ELOOP"; case ENAMETOOLONG: return "ENAMETOOLONG"; case E2BIG: return "E2BIG";
    case EIO: return "EIO"; case ENODEV: return "ENODEV"; case EISDIR: return "EISDIR";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[4200];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_name(e), strerror(e), syscall, path ? path : "");
  napi_value m, code, err, sc, p;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &err);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p);
    napi_set_named_property(env, err, "path", p);
  }
  napi_value en;
  napi_create_int32(env, -e, &en);
  napi_set_named_property(env, err, "errno", en);
  napi_throw(env, err);
  return NULL;
}

/* Copies a JS string argument into a malloc'd buffer; NULL (with a pending exception) on error. */
static char *get_str(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string argument");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number argument");
    return -1;
  }
  return 0;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) { napi_throw_type_error(env, NULL, "mknod(path, mode, major, minor)"); return NULL; }
  uint32_t mode, maj, min;
  if (get_u32(env, argv[1], &mode) || get_u32(env, argv[2], &maj) || get_u32(env, argv[3], &min)) return NULL;
  char *path = get_str(env, argv[0]);
  if (!path) return NULL;
  if (mknod(path, (mode_t)mode, makedev(maj, min)) != 0) {
    int e = errno; throw_errno(env, e, "mknod", path); free(path); return NULL;
  }
  free(path);
  return NULL;
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) { napi_throw_type_error(env, NULL, "lsetxattr(path, name, value)"); return NULL; }
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "lsetxattr: value must be a Buffer"); return NULL;
  }
  char *path = get_str(env, argv[0]);
  if (!path) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) { free(path); return NULL; }
  if (lsetxattr(path, name, data, len, 0) != 0) {
    int e = errno; throw_errno(env, e, "lsetxattr", path);
  }
  free(name); free(path);
  return NULL;
}

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) { napi_throw_type_error(env, NULL, "lgetxattr(path, name)"); return NULL; }
  char *path = get_str(env, argv[0]);
  if (!path) return NULL;
  char *name = get_str(env, argv[1]);
  if (!name) { free(path); return NULL; }
  napi_value result = NULL;
  for (;;) {
    ssize_t n = lgetxattr(path, name, NULL, 0);
    if (n < 0) {
      int e = errno;
      if (e == ENODATA || e == ENOTSUP) napi_get_null(env, &result);
      else throw_errno(env, e, "lgetxattr", path);
      break;
    }
    void *buf; napi_value b;
    napi_create_buffer(env, (size_t)n, &buf, &b);
    ssize_t m = n ? lgetxattr(path, name, buf, (size_t)n) : 0;
    if (m < 0 && errno == ERANGE) continue; /* grew between the two calls */
    if (m < 0) { int e = errno; throw_errno(env, e, "lgetxattr", path); break; }
    if (m < n) { napi_value sub; napi_create_buffer_copy(env, (size_t)m, buf, NULL, &sub); b = sub; }
    result = b;
    break;
  }
  free(name); free(path);
  return result;
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, NULL, "llistxattr(path)"); return NULL; }
  char *path = get_str(env, argv[0]);
  if (!path) return NULL;
  napi_value arr = NULL;
  for (;;) {
    ssize_t n = llistxattr(path, NULL, 0);
    if (n < 0) {
      int e = errno;
      if (e == ENOTSUP) { napi_create_array(env, &arr); } else throw_errno(env, e, "llistxattr", path);
      break;
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) { napi_throw_error(env, NULL, "out of memory"); break; }
    ssize_t m = n ? llistxattr(path, buf, (size_t)n) : 0;
    if (m < 0 && errno == ERANGE) { free(buf); continue; }
    if (m < 0) { int e = errno; free(buf); throw_errno(env, e, "llistxattr", path); break; }
    napi_create_array(env, &arr);
    uint32_t idx = 0;
    for (ssize_t off = 0; off < m;) {
      size_t l = strnlen(buf + off, (size_t)(m - off));
      napi_value s;
      napi_create_string_utf8(env, buf + off, l, &s);
      napi_set_element(env, arr, idx++, s);
      off += (ssize_t)l + 1;
    }
    free(buf);
    break;
  }
  free(path);
  return arr;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5; napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) { napi_throw_type_error(env, NULL, "mount(source, target, fstype, flags, data)"); return NULL; }
  uint32_t flags;
  if (get_u32(env, argv[3], &flags)) return NULL;
  char *src = get_str(env, argv[0]); if (!src) return NULL;
  char *tgt = get_str(env, argv[1]); if (!tgt) { free(src); return NULL; }
  char *fst = get_str(env, argv[2]); if (!fst) { free(src); free(tgt); return NULL; }
  char *data = get_str(env, argv[4]); if (!data) { free(src); free(tgt); free(fst); return NULL; }
  if (mount(src, tgt, fst, flags, data) != 0) { int e = errno; throw_errno(env, e, "mount", tgt); }
  free(src); free(tgt); free(fst); free(data);
  return NULL;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) { napi_throw_type_error(env, NULL, "umount2(target, flags)"); return NULL; }
  uint32_t flags;
  if (get_u32(env, argv[1], &flags)) return NULL;
  char *tgt = get_str(env, argv[0]); if (!tgt) return NULL;
  if (umount2(tgt, (int)flags) != 0) { int e = errno; throw_errno(env, e, "umount2", tgt); }
  free(tgt);
  return NULL;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) { napi_throw_type_error(env, NULL, "flock(fd, operation)"); return NULL; }
  int32_t fd, op;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &op) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock: expected numbers"); return NULL;
  }
  napi_value result;
  int r;
  do { r = flock(fd, op); } while (r != 0 && errno == EINTR);
  if (r != 0) {
    if (errno == EWOULDBLOCK) { napi_get_boolean(env, false, &result); return result; }
    int e = errno; return throw_errno(env, e, "flock", NULL);
  }
  napi_get_boolean(env, true, &result);
  return result;
}

void register_sha256(napi_env env, napi_value exports);
void register_seqpacket(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  register_sha256(env, exports);
  register_seqpacket(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

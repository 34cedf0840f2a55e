/*
 * SOCK_SEQPACKET unix sockets, which Node cannot use: conmon's attach socket is one
 * (src/container/attach.ts). Node's net.Socket refuses such an fd, and a libuv stream handle
 * forced onto one loses packets: libuv takes a read shorter than its buffer plus POLLHUP for
 * end-of-stream, while every SEQPACKET read is "short" and packets may still be queued.
 * So reading and writing are done here, packet by packet, driven by a libuv poll handle.
 *
 *   seqpacketConnect(path) -> fd
 *     `path` is the socket file itself, of any length: it is opened O_PATH and the connection
 *     goes to "/proc/self/fd/<that fd>", so sun_path's 108 bytes never limit it (podman's way).
 *     The fd is connected, non-blocking and close-on-exec; the caller owns it (fs.closeSync).
 *   seqpacketRecv(fd) -> Buffer | null | undefined
 *     one packet; null at end-of-file (the peer closed or shut down its writing and every
 *     packet was read); undefined when none is queued (EAGAIN).
 *   seqpacketSend(fd, buf) -> boolean
 *     sends `buf` as one packet (never empty: EINVAL); false when the socket is full (EAGAIN).
 *   seqpacketShutdown(fd, how)                 shutdown(2); how 0 = RD, 1 = WR, 2 = RDWR
 *   seqpacketWatch(fd, cb(events, err?)) -> watcher
 *     a libuv poll handle on fd, initially idle; cb runs on the loop with events 1 (readable)
 *     and/or 2 (writable), or with err = libuv's error name. Keeps the loop alive while it
 *     watches something.
 *   seqpacketWatchSet(watcher, events)         what to watch: 0, 1, 2 or 3
 *   seqpacketWatchClose(watcher)               stops for good (idempotent); close the fd after
 * Failures throw an Error whose .code is the errno name (ENOENT: no socket there;
 * ECONNREFUSED: nobody listens any more, e.g. conmon exited; EPROTOTYPE: not a SEQPACKET
 * socket; EAGAIN: the listener's backlog is full; EPIPE: the peer is gone), with .syscall
 * (and .path for connect), like kiln_native.c's errors.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PACKET 65536

static napi_value throw_sys(napi_env env, int e, const char *syscall, const char *path) {
  const char *name = strerrorname_np(e);
  if (!name) name = "EUNKNOWN";
  char msg[4200];
  snprintf(msg, sizeof msg, "%s: %s, %s%s%s%s", name, strerror(e), syscall, path ? " '" : "", path ? path : "", path ? "'" : "");
  napi_value m, code, err, sc, p, en;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &err);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p);
    napi_set_named_property(env, err, "path", p);
  }
  napi_create_int32(env, -e, &en);
  napi_set_named_property(env, err, "errno", en);
  napi_throw(env, err);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out, const char *usage) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return 0;
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t len;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "seqpacketConnect(path: string)");
    return NULL;
  }
  char *path = malloc(len + 1);
  if (!path) { napi_throw_error(env, "ENOMEM", "seqpacketConnect: out of memory"); return NULL; }
  napi_get_value_string_utf8(env, argv[0], path, len + 1, &len);

  napi_value result = NULL;
  int pfd = open(path, O_PATH | O_CLOEXEC);
  if (pfd < 0) { throw_sys(env, errno, "open", path); free(path); return NULL; }
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    int e = errno; close(pfd); throw_sys(env, e, "socket", path); free(path); return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d", pfd);
  int r;
  do { r = connect(s, (struct sockaddr *)&addr, sizeof addr); } while (r != 0 && errno == EINTR);
  int e = errno;
  close(pfd);
  if (r != 0) {
    close(s);
    throw_sys(env, e, "connect", path);
  } else {
    napi_create_int32(env, s, &result);
  }
  free(path);
  return result;
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || arg_int(env, argv[0], &fd, "seqpacketRecv(fd)")) return NULL;
  static _Thread_local char buf[MAX_PACKET]; /* per JS thread (main or worker) */
  ssize_t n;
  do { n = recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC); } while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) { napi_get_undefined(env, &result); return result; }
    return throw_sys(env, errno, "recv", NULL);
  }
  if (n == 0) { napi_get_null(env, &result); return result; }
  if ((size_t)n > sizeof buf) return throw_sys(env, EMSGSIZE, "recv", NULL);
  napi_create_buffer_copy(env, (size_t)n, buf, NULL, &result);
  return result;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 2 || arg_int(env, argv[0], &fd, "seqpacketSend(fd, buffer)")) return NULL;
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "seqpacketSend: expected a Buffer"); return NULL;
  }
  if (len == 0) return throw_sys(env, EINVAL, "send", NULL); /* the peer would read end-of-file */
  ssize_t n;
  do { n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
  napi_value result;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) { napi_get_boolean(env, false, &result); return result; }
    return throw_sys(env, errno, "send", NULL);
  }
  if ((size_t)n != len) return throw_sys(env, EIO, "send", NULL); /* packets go whole or not at all */
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, how;
  if (argc < 2 || arg_int(env, argv[0], &fd, "seqpacketShutdown(fd, how)") || arg_int(env, argv[1], &how, "seqpacketShutdown(fd, how)")) return NULL;
  if (shutdown(fd, how) != 0 && errno != ENOTCONN) return throw_sys(env, errno, "shutdown", NULL);
  return NULL;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_ref self; /* keeps the JS handle (and so this struct) alive until closed */
  napi_async_context ctx;
  int closed;
  int finalized;
  int uv_closed;
} watch_t;

static void on_uv_closed(uv_handle_t *h) {
  watch_t *w = h->data;
  w->uv_closed = 1;
  if (w->finalized) free(w);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  watch_t *w = data;
  w->finalized = 1;
  if (w->uv_closed) free(w);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  watch_t *w = h->data;
  if (w->closed) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, argv[2];
  napi_get_reference_value(env, w->cb, &cb);
  napi_get_global(env, &recv); /* napi_make_callback wants an object as `this` */
  napi_create_int32(env, status < 0 ? 0 : events & (UV_READABLE | UV_WRITABLE), &argv[0]);
  if (status < 0) napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &argv[1]);
  else napi_get_undefined(env, &argv[1]);
  if (napi_make_callback(env, w->ctx, recv, cb, 2, argv, NULL) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

static watch_t *get_watch(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) { napi_throw_type_error(env, "EINVAL", "not a seqpacket watcher"); return NULL; }
  return p;
}

static napi_value js_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || arg_int(env, argv[0], &fd, "seqpacketWatch(fd, cb)")) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "seqpacketWatch(fd, cb)"); return NULL; }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) { napi_throw_error(env, "EIO", "seqpacketWatch: no event loop"); return NULL; }
  watch_t *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, "ENOMEM", "seqpacketWatch: out of memory"); return NULL; }
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    free(w);
    return throw_sys(env, -r, "uv_poll_init", NULL);
  }
  w->poll.data = w;
  w->env = env;
  napi_value ext, name;
  napi_create_string_utf8(env, "kiln:seqpacket", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, NULL, name, &w->ctx) != napi_ok) {
    uv_close((uv_handle_t *)&w->poll, on_uv_closed);
    w->finalized = 1; /* freed by on_uv_closed */
    napi_throw_error(env, "EIO", "seqpacketWatch: napi_async_init failed");
    return NULL;
  }
  napi_create_external(env, w, on_finalize, NULL, &ext);
  napi_create_reference(env, argv[1], 1, &w->cb);
  napi_create_reference(env, ext, 1, &w->self);
  return ext;
}

static napi_value js_watch_set(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t events;
  if (argc < 2 || arg_int(env, argv[1], &events, "seqpacketWatchSet(watcher, events)")) return NULL;
  watch_t *w = get_watch(env, argv[0]);
  if (!w) return NULL;
  if (w->closed) { napi_throw_error(env, "EBADF", "seqpacketWatchSet: the watcher is closed"); return NULL; }
  events &= UV_READABLE | UV_WRITABLE;
  int r = events ? uv_poll_start(&w->poll, events, on_poll) : uv_poll_stop(&w->poll);
  if (r < 0) return throw_sys(env, -r, "uv_poll_start", NULL);
  return NULL;
}

static napi_value js_watch_close(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, NULL, "seqpacketWatchClose(watcher)"); return NULL; }
  watch_t *w = get_watch(env, argv[0]);
  if (!w || w->closed) return NULL;
  w->closed = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_uv_closed);
  napi_async_destroy(env, w->ctx);
  napi_delete_reference(env, w->cb);
  napi_delete_reference(env, w->self);
  return NULL;
}

void register_seqpacket(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"seqpacketConnect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketRecv", NULL, js_recv, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketSend", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketShutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketWatch", NULL, js_watch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketWatchSet", NULL, js_watch_set, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seqpacketWatchClose", NULL, js_watch_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

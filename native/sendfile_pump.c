/*
 * bootherd native helper: boot file bodies sent with sendfile(2) from a
 * thread of their own.
 *
 * Why: a 64 MiB initrd to 100 nodes at once is 6.4 GiB of bytes. Through a
 * Node stream (or a Buffer held in memory) every byte is copied from user
 * space into the socket by the event loop's one thread, at twice nginx's
 * CPU for less throughput (docs/http.md#benchmark). sendfile(2) hands page-cache pages
 * to TCP without a copy through user space, and doing it on this thread
 * keeps the event loop free for the API, DHCP and the rest.
 *
 * The socket stays Node's: JavaScript writes the response head through
 * Node, waits until it has reached the kernel, then hands the body here.
 * The helper works on dup(2)s of the socket and the file, so a descriptor
 * number JavaScript closes and reuses is never written to; JavaScript
 * cancels a transfer whose connection it closes, and only then does the
 * last reference to the connection go.
 *
 * JavaScript interface (declared in src/net/native.ts, used by src/net/sendfile-pump.ts):
 *   create(onDone, stallMs) -> handle   starts the thread.
 *     onDone(id, errno, sent): a transfer ended: errno 0 = all bytes sent,
 *     ETIMEDOUT = the peer took nothing for stallMs, ECANCELED = cancelled,
 *     EIO = the file ended before the range did; sent = bytes sent.
 *   send(handle, id, socketFd, fileFd, offset, length) -> 0 or errno (dup)
 *   cancel(handle, id)
 *   keepAlive(handle, on)   whether the pump keeps Node's event loop alive
 *     (JavaScript turns it on while transfers are in flight).
 *   close(handle)   ends every transfer (ECANCELED) and the thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)
/* Bytes per sendfile call: large enough to fill a socket buffer in one call,
 * small enough that one fast peer does not keep the others waiting long. */
#define CHUNK (4u << 20)
#define MAX_EVENTS 64

typedef struct transfer {
  uint32_t id;
  int sock;
  int file;
  off_t offset;
  uint64_t left;
  uint64_t sent;
  int64_t last_progress_ms;
  int cancel;
  int err; /* how it ended, once finished */
  struct transfer *next; /* in the pump's list of live transfers */
} transfer;

typedef struct pump {
  pthread_t thread;
  pthread_mutex_t lock;
  int epoll;
  int wake; /* eventfd: new transfers, cancels, close */
  transfer *incoming; /* handed over by JavaScript, guarded by lock */
  transfer *live;     /* owned by the thread */
  int closing;        /* guarded by lock */
  int64_t stall_ms;
  napi_threadsafe_function on_done;
} pump;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Ends a transfer: off the epoll set and the live list, descriptors closed,
 * and the transfer itself goes to JavaScript as the report (call_done frees
 * it), so telling JavaScript needs no allocation that could fail.
 */
static void finish(pump *p, transfer *t, int err) {
  epoll_ctl(p->epoll, EPOLL_CTL_DEL, t->sock, NULL);
  transfer **at = &p->live;
  while (*at && *at != t) at = &(*at)->next;
  if (*at) *at = t->next;
  close(t->sock);
  close(t->file);
  t->err = err;
  if (napi_call_threadsafe_function(p->on_done, t, napi_tsfn_blocking) != napi_ok) free(t);
}

/* Sends until the socket is full (EAGAIN: epoll says when it drains), the range is done, or an error. */
static void pump_one(pump *p, transfer *t) {
  while (t->left > 0) {
    size_t want = t->left < CHUNK ? (size_t)t->left : CHUNK;
    ssize_t n = sendfile(t->sock, t->file, &t->offset, want);
    if (n > 0) {
      t->left -= (uint64_t)n;
      t->sent += (uint64_t)n;
      t->last_progress_ms = now_ms();
      continue;
    }
    if (n == 0) { finish(p, t, EIO); return; } /* the file is shorter than when it was stat'ed */
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return;
    finish(p, t, errno);
    return;
  }
  finish(p, t, 0);
}

static void *run(void *arg) {
  pump *p = arg;
  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(p->epoll, events, MAX_EVENTS, 1000);
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) continue; /* the wake eventfd; handled below */
      pump_one(p, events[i].data.ptr);
    }
    /* Hand-overs from JavaScript: new transfers start at once (the socket is usually writable). */
    uint64_t ignored;
    if (read(p->wake, &ignored, sizeof ignored) < 0 && errno != EAGAIN) { /* nothing to do */ }
    pthread_mutex_lock(&p->lock);
    transfer *incoming = NULL; /* reversed into arrival order: a cancel comes after its transfer */
    for (transfer *t = p->incoming, *next; t; t = next) { next = t->next; t->next = incoming; incoming = t; }
    p->incoming = NULL;
    int closing = p->closing;
    pthread_mutex_unlock(&p->lock);
    while (incoming) {
      transfer *t = incoming;
      incoming = t->next;
      if (t->cancel) { /* a cancel for a live transfer, not a new one */
        for (transfer *l = p->live; l; l = l->next) if (l->id == t->id) { finish(p, l, ECANCELED); break; }
        free(t);
        continue;
      }
      t->next = p->live;
      p->live = t;
      struct epoll_event ev = { .events = EPOLLOUT | EPOLLET, .data.ptr = t };
      if (epoll_ctl(p->epoll, EPOLL_CTL_ADD, t->sock, &ev) != 0) { finish(p, t, errno); continue; }
      pump_one(p, t);
    }
    int64_t now = now_ms();
    for (transfer *t = p->live, *next; t; t = next) {
      next = t->next;
      if (closing) finish(p, t, ECANCELED);
      else if (now - t->last_progress_ms > p->stall_ms) finish(p, t, ETIMEDOUT);
    }
    if (closing) break;
  }
  napi_release_threadsafe_function(p->on_done, napi_tsfn_release);
  return NULL;
}

static void call_done(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  transfer *t = data;
  if (env && js_cb) {
    napi_value args[3], undefined;
    napi_get_undefined(env, &undefined);
    napi_create_uint32(env, t->id, &args[0]);
    napi_create_int32(env, t->err, &args[1]);
    napi_create_double(env, (double)t->sent, &args[2]);
    napi_call_function(env, undefined, js_cb, 3, args, NULL);
  }
  free(t);
}

/* Asks the thread to end every transfer and stop; it acts on its next wake-up. */
static void request_stop(pump *p) {
  pthread_mutex_lock(&p->lock);
  p->closing = 1;
  pthread_mutex_unlock(&p->lock);
  uint64_t one = 1;
  (void)!write(p->wake, &one, sizeof one);
}

static void finalize_pump(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  pump *p = data;
  request_stop(p);
  pthread_join(p->thread, NULL);
  close(p->epoll);
  close(p->wake);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* Reads a call's `n` arguments into argv; returns the pump in argv[0], or NULL with an exception pending. */
static pump *pump_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) { napi_throw_type_error(env, NULL, "missing arguments"); return NULL; }
  if (napi_unwrap(env, argv[0], &p) != napi_ok || p == NULL) { napi_throw_type_error(env, NULL, "not a sendfile pump"); return NULL; }
  return p;
}

static void hand_over(pump *p, transfer *t) {
  pthread_mutex_lock(&p->lock);
  t->next = p->incoming;
  p->incoming = t;
  pthread_mutex_unlock(&p->lock);
  uint64_t one = 1;
  (void)!write(p->wake, &one, sizeof one);
}

static napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t stall_ms = 0;
  CHECK(napi_get_value_int64(env, argv[1], &stall_ms));
  pump *p = calloc(1, sizeof *p);
  if (!p) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  p->stall_ms = stall_ms > 0 ? stall_ms : INT64_MAX / 2;
  pthread_mutex_init(&p->lock, NULL);
  p->epoll = epoll_create1(EPOLL_CLOEXEC);
  p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  if (p->epoll < 0 || p->wake < 0 || epoll_ctl(p->epoll, EPOLL_CTL_ADD, p->wake, &ev) != 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  CHECK(napi_create_string_utf8(env, "bootherd sendfile pump", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_done, &p->on_done));
  /* An idle pump must not keep Node alive; JavaScript refs it while transfers run (keepAlive). */
  CHECK(napi_unref_threadsafe_function(env, p->on_done));
  if (pthread_create(&p->thread, NULL, run, p) != 0) { napi_throw_error(env, NULL, "cannot start the sendfile thread"); return NULL; }
  CHECK(napi_create_object(env, &handle));
  CHECK(napi_wrap(env, handle, p, finalize_pump, NULL, NULL));
  return handle;
}

static napi_value send_file(napi_env env, napi_callback_info info) {
  napi_value argv[6], result;
  pump *p = pump_call(env, info, 6, argv);
  if (!p) return NULL;
  uint32_t id;
  int32_t sock, file;
  int64_t offset, length;
  CHECK(napi_get_value_uint32(env, argv[1], &id));
  CHECK(napi_get_value_int32(env, argv[2], &sock));
  CHECK(napi_get_value_int32(env, argv[3], &file));
  CHECK(napi_get_value_int64(env, argv[4], &offset));
  CHECK(napi_get_value_int64(env, argv[5], &length));
  transfer *t = calloc(1, sizeof *t);
  if (!t) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  t->id = id;
  t->offset = offset;
  t->left = (uint64_t)length;
  t->last_progress_ms = now_ms();
  t->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  t->file = t->sock >= 0 ? fcntl(file, F_DUPFD_CLOEXEC, 0) : -1;
  int err = 0;
  if (t->sock < 0 || t->file < 0) {
    err = errno;
    if (t->sock >= 0) close(t->sock);
    free(t);
  } else {
    hand_over(p, t);
  }
  CHECK(napi_create_int32(env, err, &result));
  return result;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  pump *p = pump_call(env, info, 2, argv);
  if (!p) return NULL;
  transfer *t = calloc(1, sizeof *t);
  if (!t) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  CHECK(napi_get_value_uint32(env, argv[1], &t->id));
  t->cancel = 1;
  hand_over(p, t);
  return NULL;
}

static napi_value keep_alive(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  pump *p = pump_call(env, info, 2, argv);
  if (!p) return NULL;
  bool on = false;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  CHECK(on ? napi_ref_threadsafe_function(env, p->on_done) : napi_unref_threadsafe_function(env, p->on_done));
  return NULL;
}

static napi_value close_pump(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  pump *p = pump_call(env, info, 1, argv);
  if (p) request_stop(p);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "create", NULL, create, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, send_file, NULL, NULL, NULL, napi_default, NULL },
    { "cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL },
    { "keepAlive", NULL, keep_alive, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, close_pump, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

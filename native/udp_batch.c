/*
 * bootherd native helper: batched UDP I/O for services that must handle many
 * small datagrams per second (DNS, DHCP, and TFTP's transfer sockets).
 *
 * Why: through Node's dgram module every datagram costs a trip into
 * JavaScript with a fresh Buffer and a fresh address object, and a send
 * costs another, most of a busy server's CPU (docs/dns.md has the
 * measurements). Here one readiness event reads up to `slots`
 * datagrams with recvmmsg(2) into memory JavaScript sees as one Buffer, makes
 * ONE call into JavaScript for the whole batch, and sends the replies it
 * wrote with one sendmmsg(2). All protocol work stays in JavaScript; this
 * file only moves bytes.
 *
 * JavaScript interface (declared in src/net/native.ts, used by src/net/udp-batch.ts):
 *   open(fd, slots, slotSize, recvBufferSize, sendBufferSize, peerErrors, stampOffset)
 *       -> { handle, rx, rxMeta, rxStamps, tx, txMeta, port }
 *     rx/tx: ArrayBuffer of slots*slotSize bytes; rxMeta/txMeta: ArrayBuffer of
 *     slots*4 uint32: [length, IPv4 address, port, flags] per slot (rx flags 1 =
 *     datagram truncated to the slot; tx flags 1 = stamp it, below).
 *     peerErrors: set IP_RECVERR, so that an ICMP error (port unreachable: a
 *     peer is gone) about a datagram we sent is reported with the peer's
 *     address; an unconnected socket otherwise never hears of them.
 *     rxStamps: slots*2 float64, the kernel's receive time of each datagram
 *     (seconds, nanoseconds; 0 when the kernel gave none).
 *     stampOffset >= 0 (NTP): the socket asks the kernel for receive times
 *     (SO_TIMESTAMPNS), and a tx slot flagged 1 gets the current time as a
 *     64-bit NTP timestamp written at that offset immediately before its own
 *     sendmsg(2) — as late as a transmit timestamp can be taken, as chronyd
 *     takes it. Such a socket sends every datagram with a sendmsg of its
 *     own, so no reply waits in a sendmmsg behind the others with a stale stamp.
 *     port: the bound port (the kernel's choice for port 0).
 *   start(handle, onBatch, onPeerError?)  onBatch(received) returns how many
 *     tx slots to send; onPeerError(address, port, errno) hears of each ICMP
 *     error (with peerErrors).
 *   sendSlots(handle, count)  sends tx slots 0..count-1 with sendmmsg now (replies
 *     that were not ready when their request's batch was read, e.g. a DHCP ACK
 *     that waited for its lease to reach the disk).
 *   sendParts(handle, buffers, address, port, segmentSize) -> 0 or errno: the
 *     buffers, in order, as one sendmsg(2) without copying; with segmentSize > 0
 *     a UDP_SEGMENT control message (UDP GSO, Linux 4.18) has the kernel cut
 *     them into datagrams of segmentSize bytes (a TFTP window in one call).
 *   close(handle, callback)
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <linux/errqueue.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <stdint.h>
#include "ntp_stamp.h"

/* Batches read per readiness event before yielding to the event loop (fairness to other handles). */
#define MAX_ROUNDS 8
/* Buffers one sendParts call takes: a GSO send carries at most 64 segments of a header and a payload each. */
#define MAX_PARTS 256

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int slots;
  int slot_size;
  int started;
  int closed;
  int peer_errors;
  unsigned char *rx, *tx;
  uint32_t *rx_meta, *tx_meta;
  struct mmsghdr *rx_msgs, *tx_msgs;
  struct iovec *rx_iov, *tx_iov;
  struct sockaddr_in *rx_addr, *tx_addr;
  double *rx_stamps;
  unsigned char *rx_control; /* per slot, room for one SCM_TIMESTAMPNS */
  int stamp_offset;          /* -1: no timestamps */
  napi_ref buffers[5];
  napi_ref callback;
  napi_ref error_callback;
  napi_ref close_callback;
  napi_async_context async;
} batch_t;

static void teardown(void *arg);

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static napi_value make_buffer(napi_env env, batch_t *b, int index, size_t size, void **data) {
  napi_value ab;
  if (napi_create_arraybuffer(env, size, data, &ab) != napi_ok) return NULL;
  memset(*data, 0, size);
  if (napi_create_reference(env, ab, 1, &b->buffers[index]) != napi_ok) return NULL;
  return ab;
}

#define CONTROL_SIZE CMSG_SPACE(sizeof(struct timespec))

static void free_batch(batch_t *b) {
  free(b->rx_control);
  free(b->rx_msgs); free(b->tx_msgs); free(b->rx_iov); free(b->tx_iov); free(b->rx_addr); free(b->tx_addr);
  free(b);
}

static void release_refs(batch_t *b) {
  for (int i = 0; i < 5; i++) if (b->buffers[i]) { napi_delete_reference(b->env, b->buffers[i]); b->buffers[i] = NULL; }
  if (b->callback) { napi_delete_reference(b->env, b->callback); b->callback = NULL; }
  if (b->error_callback) { napi_delete_reference(b->env, b->error_callback); b->error_callback = NULL; }
  if (b->async) { napi_async_destroy(b->env, b->async); b->async = NULL; }
}

static napi_value batch_open(napi_env env, napi_callback_info info) {
  size_t argc = 7; napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd, slots, slot_size, rcvbuf, sndbuf, stamp_offset;
  bool peer_errors = false;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &slots) != napi_ok ||
      napi_get_value_int32(env, argv[2], &slot_size) != napi_ok || napi_get_value_int32(env, argv[3], &rcvbuf) != napi_ok ||
      napi_get_value_int32(env, argv[4], &sndbuf) != napi_ok || napi_get_value_bool(env, argv[5], &peer_errors) != napi_ok ||
      napi_get_value_int32(env, argv[6], &stamp_offset) != napi_ok ||
      fd < 0 || slots < 1 || slots > 1024 || slot_size < 512 || slot_size > 65536 || stamp_offset > slot_size - 8) {
    napi_throw_type_error(env, NULL, "open(fd, slots 1-1024, slotSize 512-65536, recvBufferSize, sendBufferSize, peerErrors, stampOffset < slotSize - 8)");
    return NULL;
  }
  /* SO_RCVBUFFORCE/SO_SNDBUFFORCE (root or CAP_NET_ADMIN) go past
     net.core.[rw]mem_max, which is often 208 KiB-4 MiB: a burst of thousands
     of DHCP DISCOVERs or NTP requests must queue, not overflow. Without the
     privilege, the plain options, capped; best effort either way. */
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  int one = 1;
  if (peer_errors && setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one) < 0) peer_errors = false;
  if (stamp_offset >= 0 && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
    napi_throw_error(env, NULL, "setsockopt(SO_TIMESTAMPNS) failed"); return NULL;
  }

  batch_t *b = calloc(1, sizeof *b);
  b->env = env; b->fd = fd; b->slots = slots; b->slot_size = slot_size; b->peer_errors = peer_errors;
  b->stamp_offset = stamp_offset < 0 ? -1 : stamp_offset;
  if (b->stamp_offset >= 0) b->rx_control = calloc(slots, CONTROL_SIZE);
  b->rx_msgs = calloc(slots, sizeof *b->rx_msgs); b->tx_msgs = calloc(slots, sizeof *b->tx_msgs);
  b->rx_iov = calloc(slots, sizeof *b->rx_iov); b->tx_iov = calloc(slots, sizeof *b->tx_iov);
  b->rx_addr = calloc(slots, sizeof *b->rx_addr); b->tx_addr = calloc(slots, sizeof *b->tx_addr);

  napi_value result, rx, tx, rx_meta, tx_meta, rx_stamps, handle;
  rx = make_buffer(env, b, 0, (size_t)slots * slot_size, (void **)&b->rx);
  tx = make_buffer(env, b, 1, (size_t)slots * slot_size, (void **)&b->tx);
  rx_meta = make_buffer(env, b, 2, (size_t)slots * 4 * sizeof(uint32_t), (void **)&b->rx_meta);
  tx_meta = make_buffer(env, b, 3, (size_t)slots * 4 * sizeof(uint32_t), (void **)&b->tx_meta);
  rx_stamps = make_buffer(env, b, 4, (size_t)slots * 2 * sizeof(double), (void **)&b->rx_stamps);
  if (!rx || !tx || !rx_meta || !tx_meta || !rx_stamps || (b->stamp_offset >= 0 && !b->rx_control)) { release_refs(b); free_batch(b); napi_throw_error(env, NULL, "out of memory"); return NULL; }

  for (int i = 0; i < slots; i++) {
    b->rx_iov[i].iov_base = b->rx + (size_t)i * slot_size;
    b->rx_msgs[i].msg_hdr.msg_iov = &b->rx_iov[i];
    b->rx_msgs[i].msg_hdr.msg_iovlen = 1;
    b->rx_msgs[i].msg_hdr.msg_name = &b->rx_addr[i];
    if (b->rx_control) b->rx_msgs[i].msg_hdr.msg_control = b->rx_control + (size_t)i * CONTROL_SIZE;
    b->tx_iov[i].iov_base = b->tx + (size_t)i * slot_size;
    b->tx_msgs[i].msg_hdr.msg_iov = &b->tx_iov[i];
    b->tx_msgs[i].msg_hdr.msg_iovlen = 1;
    b->tx_msgs[i].msg_hdr.msg_name = &b->tx_addr[i];
    b->tx_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
  }

  CHECK(napi_create_external(env, b, NULL, NULL, &handle));
  CHECK(napi_create_object(env, &result));
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "rx", rx);
  napi_set_named_property(env, result, "tx", tx);
  napi_set_named_property(env, result, "rxMeta", rx_meta);
  napi_set_named_property(env, result, "txMeta", tx_meta);
  napi_set_named_property(env, result, "rxStamps", rx_stamps);
  /* The bound port: the kernel's choice for port 0 (a TFTP transfer socket's transfer ID). */
  struct sockaddr_in local; socklen_t local_len = sizeof local;
  memset(&local, 0, sizeof local);
  getsockname(fd, (struct sockaddr *)&local, &local_len);
  napi_value port;
  CHECK(napi_create_uint32(env, ntohs(local.sin_port), &port));
  napi_set_named_property(env, result, "port", port);
  return result;
}

static batch_t *get_batch(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) { napi_throw_type_error(env, NULL, "not a batch handle"); return NULL; }
  return p;
}

/*
 * With IP_RECVERR, the first send after an ICMP error fails with that error
 * (the socket's pending error, cleared by the failure), though it is about
 * another peer: a send failing so is tried once more.
 */
static int peer_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN;
}

/* Sends tx slots [0, count); a slot the kernel will not take now (EAGAIN) is dropped, as a full queue would. */
static void send_batch(batch_t *b, int count) {
  for (int i = 0; i < count; i++) {
    uint32_t *m = b->tx_meta + (size_t)i * 4;
    b->tx_iov[i].iov_len = m[0] > (uint32_t)b->slot_size ? (size_t)b->slot_size : m[0];
    b->tx_addr[i].sin_family = AF_INET;
    b->tx_addr[i].sin_addr.s_addr = htonl(m[1]);
    b->tx_addr[i].sin_port = htons((uint16_t)m[2]);
  }
  if (b->stamp_offset >= 0) {
    for (int i = 0; i < count; i++) {
      if (b->tx_meta[(size_t)i * 4 + 3] & 1) write_ntp_now(b->tx + (size_t)i * b->slot_size + b->stamp_offset, 0);
      while (sendmsg(b->fd, &b->tx_msgs[i].msg_hdr, MSG_DONTWAIT) < 0 && errno == EINTR) {}
    }
    return;
  }
  int done = 0, retried = -1;
  while (done < count) {
    int n = sendmmsg(b->fd, b->tx_msgs + done, (unsigned)(count - done), MSG_DONTWAIT);
    if (n > 0) { done += n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && peer_error(errno) && retried != done) { retried = done; continue; }
    done++; /* skip the datagram that failed (EAGAIN, unreachable) and go on with the rest */
  }
}

/*
 * Reads the socket's error queue (IP_RECVERR): for each ICMP error, the
 * destination of the datagram that caused it and the error go to
 * onPeerError. Errors of local origin (EMSGSIZE, ...) are dropped: the send
 * that caused them already returned them.
 */
static void drain_errors(batch_t *b, napi_env env, napi_value resource) {
  napi_value callback = NULL;
  if (b->error_callback) napi_get_reference_value(env, b->error_callback, &callback);
  for (int i = 0; i < 1024 && !b->closed; i++) {
    unsigned char data[64];
    char control[512];
    struct sockaddr_in to;
    struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
    struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    if (recvmsg(b->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) continue;
      struct sock_extended_err *ee = (struct sock_extended_err *)CMSG_DATA(c);
      if (ee->ee_origin != SO_EE_ORIGIN_ICMP || !callback || msg.msg_namelen < sizeof to) continue;
      napi_value argv[3];
      napi_create_uint32(env, ntohl(to.sin_addr.s_addr), &argv[0]);
      napi_create_uint32(env, ntohs(to.sin_port), &argv[1]);
      napi_create_int32(env, (int32_t)ee->ee_errno, &argv[2]);
      if (napi_make_callback(env, b->async, resource, callback, 3, argv, NULL) != napi_ok) {
        napi_value err;
        if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
        return;
      }
    }
  }
  /* The pending socket error that came with the ICMP message: cleared, so the next read or send does not fail with it. */
  int err = 0; socklen_t len = sizeof err;
  getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  batch_t *b = handle->data;
  if (b->closed) return;
  /* libuv stops a poll handle on POLLERR and reports UV_EBADF; with IP_RECVERR that is a queued ICMP error, not a dead socket. */
  if (status < 0 && !b->peer_errors) return;
  napi_env env = b->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource;
  napi_get_reference_value(env, b->callback, &callback);
  napi_get_global(env, &resource);
  if (status < 0) {
    drain_errors(b, env, resource);
    if (!b->closed) uv_poll_start(&b->poll, UV_READABLE, on_readable);
  }
  for (int round = 0; round < MAX_ROUNDS && !b->closed; round++) {
    for (int i = 0; i < b->slots; i++) {
      b->rx_iov[i].iov_len = (size_t)b->slot_size;
      b->rx_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
      b->rx_msgs[i].msg_hdr.msg_flags = 0;
      if (b->rx_control) b->rx_msgs[i].msg_hdr.msg_controllen = CONTROL_SIZE;
    }
    int n = recvmmsg(b->fd, b->rx_msgs, (unsigned)b->slots, MSG_DONTWAIT, NULL);
    if (n < 0 && b->peer_errors && errno != EAGAIN && errno != EINTR) { drain_errors(b, env, resource); continue; }
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      uint32_t *m = b->rx_meta + (size_t)i * 4;
      m[0] = b->rx_msgs[i].msg_len;
      m[1] = ntohl(b->rx_addr[i].sin_addr.s_addr);
      m[2] = ntohs(b->rx_addr[i].sin_port);
      m[3] = (b->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
      double *st = b->rx_stamps + (size_t)i * 2;
      st[0] = 0; st[1] = 0;
      if (b->rx_control) {
        struct msghdr *h = &b->rx_msgs[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            st[0] = (double)ts.tv_sec; st[1] = (double)ts.tv_nsec;
          }
        }
      }
    }
    napi_value argv[1], ret;
    napi_create_int32(env, n, &argv[0]);
    if (napi_make_callback(env, b->async, resource, callback, 1, argv, &ret) != napi_ok) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
      break;
    }
    int32_t count = 0;
    if (napi_get_value_int32(env, ret, &count) == napi_ok && count > 0 && !b->closed) send_batch(b, count > b->slots ? b->slots : count);
    if (n < b->slots) break;
  }
  napi_close_handle_scope(env, scope);
}

static napi_value batch_start(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc >= 2 ? get_batch(env, argv[0]) : NULL;
  if (!b) return NULL;
  if (b->started || b->closed) { napi_throw_error(env, NULL, "batch socket already started or closed"); return NULL; }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_create_reference(env, argv[1], 1, &b->callback));
  napi_valuetype on_error_type = napi_undefined;
  if (argc == 3) napi_typeof(env, argv[2], &on_error_type);
  if (on_error_type == napi_function) CHECK(napi_create_reference(env, argv[2], 1, &b->error_callback));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "UdpBatch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &b->async));
  if (uv_poll_init_socket(loop, &b->poll, b->fd) != 0) { napi_throw_error(env, NULL, "uv_poll_init_socket failed"); return NULL; }
  b->poll.data = b;
  uv_poll_start(&b->poll, UV_READABLE, on_readable);
  b->started = 1;
  napi_add_env_cleanup_hook(env, teardown, b);
  return NULL;
}

static napi_value batch_send_parts(napi_env env, napi_callback_info info) {
  size_t argc = 5; napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc == 5 ? get_batch(env, argv[0]) : NULL;
  if (!b) return NULL;
  uint32_t addr, port, count;
  int32_t segment;
  bool is_array = false;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &count) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &addr) != napi_ok || napi_get_value_uint32(env, argv[3], &port) != napi_ok ||
      napi_get_value_int32(env, argv[4], &segment) != napi_ok || count > MAX_PARTS || segment < 0 || segment > 65535) {
    napi_throw_type_error(env, NULL, "sendParts(handle, buffers (at most 256), address, port, segmentSize 0-65535)"); return NULL;
  }
  struct iovec iov[MAX_PARTS];
  for (uint32_t i = 0; i < count; i++) {
    napi_value part;
    if (napi_get_element(env, argv[1], i, &part) != napi_ok || napi_get_buffer_info(env, part, &iov[i].iov_base, &iov[i].iov_len) != napi_ok) {
      napi_throw_type_error(env, NULL, "sendParts: every part must be a Buffer"); return NULL;
    }
  }
  int err = 0;
  if (b->closed) err = EBADF;
  else {
    struct sockaddr_in sa; memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET; sa.sin_addr.s_addr = htonl(addr); sa.sin_port = htons((uint16_t)port);
    union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_name = &sa, .msg_namelen = sizeof sa, .msg_iov = iov, .msg_iovlen = count };
    if (segment > 0) {
      memset(&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = IPPROTO_UDP; c->cmsg_type = UDP_SEGMENT; c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)segment;
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
    /* Tried twice when it fails with a peer's error (see peer_error). */
    for (int attempt = 0; attempt < 2; attempt++) {
      err = sendmsg(b->fd, &msg, MSG_DONTWAIT) < 0 ? errno : 0;
      if (!peer_error(err)) break;
    }
  }
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value batch_send_slots(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc == 2 ? get_batch(env, argv[0]) : NULL;
  if (!b) return NULL;
  int32_t count;
  if (napi_get_value_int32(env, argv[1], &count) != napi_ok) { napi_throw_type_error(env, NULL, "sendSlots(handle, count)"); return NULL; }
  if (count > 0 && !b->closed) send_batch(b, count > b->slots ? b->slots : count);
  return NULL;
}

/* The environment is going away (a worker thread terminated) without close(): release the socket, nothing else. */
static void on_closed_at_teardown(uv_handle_t *handle) {
  batch_t *b = handle->data;
  close(b->fd);
  free_batch(b);
}

static void teardown(void *arg) {
  batch_t *b = arg;
  if (b->closed) return;
  b->closed = 1;
  uv_poll_stop(&b->poll);
  uv_close((uv_handle_t *)&b->poll, on_closed_at_teardown);
}

static void on_closed(uv_handle_t *handle) {
  batch_t *b = handle->data;
  napi_env env = b->env;
  close(b->fd);
  napi_ref cb_ref = b->close_callback;
  release_refs(b);
  free_batch(b);
  if (cb_ref) {
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb, global;
    napi_get_reference_value(env, cb_ref, &cb);
    napi_get_global(env, &global);
    napi_delete_reference(env, cb_ref);
    napi_call_function(env, global, cb, 0, NULL, NULL);
    napi_close_handle_scope(env, scope);
  }
}

static napi_value batch_close(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc >= 1 ? get_batch(env, argv[0]) : NULL;
  if (!b) return NULL;
  if (b->closed) return NULL;
  b->closed = 1;
  if (argc == 2) napi_create_reference(env, argv[1], 1, &b->close_callback);
  if (b->started) {
    napi_remove_env_cleanup_hook(env, teardown, b);
    uv_poll_stop(&b->poll);
    uv_close((uv_handle_t *)&b->poll, on_closed);
  } else {
    b->poll.data = b;
    on_closed((uv_handle_t *)&b->poll);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, batch_open, NULL, NULL, NULL, napi_default, NULL },
    { "start", NULL, batch_start, NULL, NULL, NULL, napi_default, NULL },
    { "sendSlots", NULL, batch_send_slots, NULL, NULL, NULL, napi_default, NULL },
    { "sendParts", NULL, batch_send_parts, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, batch_close, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

/*
 * bootherd native helper: open a UDP socket with options Node's dgram module
 * cannot set, and hand its file descriptor to dgram (`socket.bind({ fd })`)
 * or to the batch reader (udp_batch.c).
 *
 * Why: a DHCP server must receive broadcasts (so it binds 0.0.0.0:67) yet must
 * never answer on an interface the cluster file does not name. Linux offers
 * SO_BINDTODEVICE for exactly this; Node exposes no setsockopt. The same
 * socket(2)/setsockopt(2)/bind(2) path also sets SO_REUSEPORT (workers)
 * and SO_TIMESTAMPNS (NTP). (UDP GSO for TFTP windows lives in udp_batch.c,
 * as a per-send UDP_SEGMENT control message.) Two
 * calls go further than setup, both for NTP: reading the kernel's receive
 * stamp of the last datagram, and a sendto(2) that writes the transmit
 * timestamp immediately before sending. Packet logic stays in TypeScript.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <time.h>
#include "ntp_stamp.h"

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, err == EADDRINUSE ? "EADDRINUSE" : (err == EACCES || err == EPERM) ? "EACCES" : "ESOCKET", msg);
  return NULL;
}

static int get_string_prop(napi_env env, napi_value obj, const char *key, char *out, size_t outlen) {
  bool has = false;
  napi_value v; napi_valuetype t; size_t len;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) return 0;
  if (napi_get_value_string_utf8(env, v, out, outlen, &len) != napi_ok) return 0;
  return 1;
}

static int get_int_prop(napi_env env, napi_value obj, const char *key, int32_t *out) {
  bool has = false; napi_value v;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int get_bool_prop(napi_env env, napi_value obj, const char *key) {
  bool has = false, b = false; napi_value v;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  return b;
}

/* openUdp4({ address, port, device?, broadcast?, reuseAddr?, reusePort?, rxTimestamps? }) -> fd */
static napi_value open_udp4(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, NULL, "openUdp4(options) needs an options object"); return NULL; }

  char address[64] = "0.0.0.0", device[IFNAMSIZ + 1] = "";
  int32_t port = 0;
  get_string_prop(env, argv[0], "address", address, sizeof address);
  get_string_prop(env, argv[0], "device", device, sizeof device);
  if (!get_int_prop(env, argv[0], "port", &port) || port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "openUdp4: port must be an integer 0..65535"); return NULL;
  }

  struct sockaddr_in sa; memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET; sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "openUdp4: address is not an IPv4 address"); return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(env, "socket", errno);
  int one = 1;
  if (get_bool_prop(env, argv[0], "reuseAddr") && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    int e = errno; close(fd); return fail(env, "setsockopt(SO_REUSEADDR)", e);
  }
  if (get_bool_prop(env, argv[0], "reusePort") && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int e = errno; close(fd); return fail(env, "setsockopt(SO_REUSEPORT)", e);
  }
  if (get_bool_prop(env, argv[0], "broadcast") && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
    int e = errno; close(fd); return fail(env, "setsockopt(SO_BROADCAST)", e);
  }
  if (device[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)strlen(device)) < 0) {
    int e = errno; close(fd); return fail(env, "setsockopt(SO_BINDTODEVICE)", e);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno; close(fd); return fail(env, "bind", e);
  }
  if (get_bool_prop(env, argv[0], "rxTimestamps")) {
    /* The first SIOCGSTAMPNS switches on kernel receive timestamps for the
       socket (it fails with ENOENT: nothing received yet). */
    struct timespec ts;
    (void)ioctl(fd, SIOCGSTAMPNS, &ts);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

/*
 * rxTimestamp(fd, out: Float64Array) -> boolean
 * The kernel's receive time (CLOCK_REALTIME) of the datagram last read from
 * the socket, via SIOCGSTAMPNS: out[0] = seconds, out[1] = nanoseconds.
 * Why: an NTP server's receive timestamp must be taken when the datagram
 * arrived, not when the event loop got round to it (tens to hundreds of
 * microseconds later); chronyd uses the same kernel timestamps.
 */
static napi_value rx_timestamp(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  napi_typedarray_type type; size_t length = 0; void *data = NULL;
  napi_value result;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || length < 2) {
    napi_throw_type_error(env, NULL, "rxTimestamp(fd, Float64Array(2))"); return NULL;
  }
  struct timespec ts;
  bool ok = ioctl(fd, SIOCGSTAMPNS, &ts) == 0;
  if (ok) { ((double *)data)[0] = (double)ts.tv_sec; ((double *)data)[1] = (double)ts.tv_nsec; }
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * sendStamped(fd, buffer, length, address, port, stampOffset, keepBits) -> bytes sent or -errno
 * Writes the current CLOCK_REALTIME as a 64-bit NTP timestamp at
 * buffer[stampOffset] and sends the first `length` bytes to address:port at
 * once (MSG_DONTWAIT: a full send buffer returns -EAGAIN, nothing is queued).
 * The lowest `keepBits` bits of the fraction already in the buffer are kept
 * (an NTP client's random noise below its precision).
 * Why: an NTP transmit timestamp must be taken as late as possible; through
 * dgram.send tens of microseconds pass between any timestamp JavaScript can
 * write and the sendto(2). chronyd stamps right before sendmsg the same way.
 */
static napi_value send_stamped(napi_env env, napi_callback_info info) {
  size_t argc = 7; napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1, length = 0, port = 0, offset = 0, keep = 0;
  void *data = NULL; size_t size = 0;
  char address[64];
  size_t alen = 0;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &size) != napi_ok ||
      napi_get_value_int32(env, argv[2], &length) != napi_ok ||
      napi_get_value_string_latin1(env, argv[3], address, sizeof address, &alen) != napi_ok ||
      napi_get_value_int32(env, argv[4], &port) != napi_ok ||
      napi_get_value_int32(env, argv[5], &offset) != napi_ok ||
      napi_get_value_int32(env, argv[6], &keep) != napi_ok ||
      length < 0 || (size_t)length > size || offset < 0 || (size_t)offset + 8 > size || port < 0 || port > 65535 || keep < 0 || keep > 32) {
    napi_throw_type_error(env, NULL, "sendStamped(fd, buffer, length, address, port, stampOffset, keepBits)"); return NULL;
  }
  struct sockaddr_in sa; memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET; sa.sin_port = htons((uint16_t)port);
  napi_value result;
  if (inet_pton(AF_INET, address, &sa.sin_addr) != 1) { napi_create_int32(env, -EINVAL, &result); return result; }
  unsigned char *b = (unsigned char *)data + offset;
  write_ntp_now(b, keep == 32 ? 0xffffffffu : ((1u << keep) - 1u));
  ssize_t n = sendto(fd, data, (size_t)length, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa);
  napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "openUdp4", NAPI_AUTO_LENGTH, open_udp4, NULL, &fn);
  napi_set_named_property(env, exports, "openUdp4", fn);
  napi_create_function(env, "rxTimestamp", NAPI_AUTO_LENGTH, rx_timestamp, NULL, &fn);
  napi_set_named_property(env, exports, "rxTimestamp", fn);
  napi_create_function(env, "sendStamped", NAPI_AUTO_LENGTH, send_stamped, NULL, &fn);
  napi_set_named_property(env, exports, "sendStamped", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

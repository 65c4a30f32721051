/*
 * bootherd native helper: open a UDP socket with options Node's dgram module
 * cannot set, and hand its file descriptor to dgram (`socket.bind({ fd })`).
 *
 * Why: a DHCP server must receive broadcasts (so it binds 0.0.0.0:67) yet must
 * never answer on an interface the cluster file does not name. Linux offers
 * SO_BINDTODEVICE for exactly this; Node exposes no setsockopt, so this file
 * does the socket(2)/setsockopt(2)/bind(2) and nothing else. All packet I/O
 * stays in JavaScript.
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

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

/* openUdp4({ address, port, device?, broadcast?, reuseAddr?, reusePort?, gsoSize? }) -> fd */
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
  /* UDP GSO: one send of several equal datagrams (a TFTP window) is cut into gsoSize-byte datagrams by the kernel. */
  int32_t gso = 0;
  if (get_int_prop(env, argv[0], "gsoSize", &gso) && gso > 0 && setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof gso) < 0) {
    int e = errno; close(fd); return fail(env, "setsockopt(UDP_SEGMENT)", e);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno; close(fd); return fail(env, "bind", e);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "openUdp4", NAPI_AUTO_LENGTH, open_udp4, NULL, &fn);
  napi_set_named_property(env, exports, "openUdp4", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

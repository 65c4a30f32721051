/*
 * sd_notify(3) without libsystemd: one datagram to the AF_UNIX socket that
 * systemd names in $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace). Node has no AF_UNIX datagram sockets, and `systemd-notify`
 * would send from another PID, which systemd cannot always attribute to the
 * unit once it has exited (NotifyAccess=all races); this sends from
 * bootherd's own PID, so the unit keeps NotifyAccess=main.
 *
 * notify(socket, message) -> 0, or -errno.
 */
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t plen = 0;
  char msg[4096];
  size_t mlen = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], sa.sun_path, sizeof sa.sun_path, &plen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &mlen) != napi_ok || plen == 0 || plen >= sizeof sa.sun_path - 1) {
    napi_create_int32(env, -EINVAL, &result);
    return result;
  }
  if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { napi_create_int32(env, -errno, &result); return result; }
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = n < 0 ? errno : 0;
  close(fd);
  napi_create_int32(env, -err, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "notify", NAPI_AUTO_LENGTH, notify, NULL, &fn);
  napi_set_named_property(env, exports, "notify", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

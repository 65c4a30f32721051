/*
 * DHCP load generator for bench/dhcp: N simulated clients, each with its own
 * MAC, doing DISCOVER -> OFFER -> REQUEST (options 50 + 54) -> ACK, at a
 * target rate of new clients per second (token bucket) or as fast as a
 * window of outstanding exchanges allows. Written in C with one socket and
 * recvmmsg/sendmmsg batches because perfdhcp saturates its core near 7,000
 * DORA/s here; it reports its own CPU time so a saturated generator shows.
 *
 * Modes (-M):
 *   relay      acts as a relay agent: sends from GIADDR:67 to SERVER:67 with
 *              giaddr set, the server answers to GIADDR:67. One socket serves
 *              any number of MACs without broadcast. -s A,B,C forwards every
 *              message to each server, as a relay agent configured with
 *              several servers does (ISC dhcrelay, most switches).
 *   broadcast  clients on the server's own segment: sends from 0.0.0.0:68 to
 *              255.255.255.255:67 with the broadcast flag (bound to -i IFACE),
 *              the server broadcasts its replies to port 68.
 *   respond    a trivial relayed-mode server on SERVER:67 (OFFER/ACK with an
 *              address derived from the MAC), to measure the generator alone.
 *
 * Every reply is checked: xid, chaddr, message type, yiaddr inside the pool
 * (-P), ACK address equal to the offered one; and a table by address holds
 * the MAC each address was ACKed to, so an address ACKed to two different
 * MACs during the run is counted (duplicate_acks). An exchange unanswered
 * after -t ms is retransmitted up to -R times, then counted as a drop.
 *
 *   dhcp-loadgen -M relay -s SERVER[,SERVER...] -g GIADDR -P LO-HI [-n CLIENTS] [-r RATE]
 *                [-T SECONDS] [-w WINDOW] [-t TIMEOUT_MS] [-R RETRIES]
 *                [-b RCVBUF_BYTES] [-S SEED]
 *   dhcp-loadgen -M broadcast -i IFACE -P LO-HI ...
 *   dhcp-loadgen -M respond -s ADDR -P LO-HI [-T SECONDS] [-b RCVBUF_BYTES]
 *
 * -r 0 means as fast as possible (bounded by -w outstanding exchanges).
 * Starting stops after -n clients or -T seconds, whichever comes first.
 * Prints one JSON object with the results.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 300      /* BOOTP minimum size: what every client sends */
#define RXBUF 1500

enum { IDLE, DISCOVERING, REQUESTING, BOUND, FAILED };
enum { DHCPDISCOVER = 1, DHCPOFFER = 2, DHCPREQUEST = 3, DHCPACK = 5, DHCPNAK = 6 };

struct client {
  uint8_t state;
  uint8_t tries;      /* sends of the current message */
  uint32_t seq;       /* bumped on every send; a timer entry for an older seq is stale */
  uint32_t offered;   /* yiaddr of the OFFER (host order) */
  uint32_t server_id; /* option 54 of the OFFER (network order) */
  double started;
};

struct timer { uint32_t client, seq; double deadline; };

static struct client *clients;
static struct timer *timers;
static size_t timer_head, timer_tail, timer_cap;
static uint32_t *owner;   /* by pool offset: client index + 1 the address was ACKed to */
static float *latency;    /* DORA ms of each bound client */
static uint32_t pool_lo, pool_hi, xid_base, n_clients, seed;
static int mode_broadcast;
static struct in_addr giaddr, server_addr;
static double timeout_ms = 2000;
static int retries;

static struct {
  long sent, discovers, requests, offers, acks, naks, drops, duplicate_acks, duplicate_replies, bad_replies, retransmits, bound;
} c;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) { perror(what); exit(1); }

static void mac_of(uint32_t i, uint8_t *mac) {
  mac[0] = 0x02; mac[1] = seed & 0xff; /* locally administered */
  mac[2] = i >> 24; mac[3] = i >> 16; mac[4] = i >> 8; mac[5] = i;
}

/* ---- outgoing batch ---- */

static int fd;
static uint8_t out_buf[BATCH][PKT];
static struct iovec out_iov[BATCH];
static struct mmsghdr out_msg[BATCH];
static struct sockaddr_in out_to[BATCH];
static int out_n;

static void flush(void) {
  int off = 0;
  while (off < out_n) {
    int r = sendmmsg(fd, out_msg + off, out_n - off, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) { struct pollfd p = { fd, POLLOUT, 0 }; poll(&p, 1, 10); continue; }
      die("sendmmsg");
    }
    off += r;
  }
  c.sent += out_n;
  out_n = 0;
}

static uint8_t *next_out(const struct sockaddr_in *to) {
  if (out_n == BATCH) flush();
  out_to[out_n] = *to;
  out_iov[out_n].iov_base = out_buf[out_n];
  out_iov[out_n].iov_len = PKT;
  memset(&out_msg[out_n].msg_hdr, 0, sizeof out_msg[out_n].msg_hdr);
  out_msg[out_n].msg_hdr.msg_name = &out_to[out_n];
  out_msg[out_n].msg_hdr.msg_namelen = sizeof out_to[out_n];
  out_msg[out_n].msg_hdr.msg_iov = &out_iov[out_n];
  out_msg[out_n].msg_hdr.msg_iovlen = 1;
  uint8_t *p = out_buf[out_n++];
  memset(p, 0, PKT);
  return p;
}

#define MAX_SERVERS 8
static struct sockaddr_in to_server[MAX_SERVERS];
static int n_servers = 1;

static void push_timer(uint32_t i) {
  if (timer_tail - timer_head == timer_cap) { fprintf(stderr, "dhcp-loadgen: timer ring full\n"); exit(1); }
  timers[timer_tail % timer_cap] = (struct timer){ i, clients[i].seq, now_ms() + timeout_ms };
  timer_tail++;
}

static void send_message(uint32_t i, int type) {
  struct client *cl = &clients[i];
  uint8_t *p = next_out(&to_server[0]);
  p[0] = 1; p[1] = 1; p[2] = 6; p[3] = mode_broadcast ? 0 : 1;
  uint32_t xid = htonl(xid_base + i);
  memcpy(p + 4, &xid, 4);
  if (mode_broadcast) { p[10] = 0x80; } /* flags: broadcast */
  else memcpy(p + 24, &giaddr, 4);
  mac_of(i, p + 28);
  p[236] = 99; p[237] = 130; p[238] = 83; p[239] = 99;
  uint8_t *o = p + 240;
  *o++ = 53; *o++ = 1; *o++ = (uint8_t)type;
  *o++ = 61; *o++ = 7; *o++ = 1; mac_of(i, o); o += 6;
  if (type == DHCPREQUEST) {
    uint32_t want = htonl(cl->offered);
    *o++ = 50; *o++ = 4; memcpy(o, &want, 4); o += 4;
    *o++ = 54; *o++ = 4; memcpy(o, &cl->server_id, 4); o += 4;
  }
  *o++ = 55; *o++ = 4; *o++ = 1; *o++ = 3; *o++ = 6; *o++ = 51;
  *o++ = 255;
  for (int k = 1; k < n_servers; k++) memcpy(next_out(&to_server[k]), p, PKT);
  cl->seq++;
  if (type == DHCPDISCOVER) c.discovers++; else c.requests++;
  push_timer(i);
}

/* ---- replies ---- */

static void on_reply(const uint8_t *p, size_t len) {
  if (len < 244 || p[0] != 2 || p[236] != 99 || p[237] != 130 || p[238] != 83 || p[239] != 99) { c.bad_replies++; return; }
  uint32_t xid; memcpy(&xid, p + 4, 4);
  uint32_t i = ntohl(xid) - xid_base;
  if (i >= n_clients) { c.bad_replies++; return; }
  uint8_t mac[6]; mac_of(i, mac);
  if (memcmp(p + 28, mac, 6) != 0) { c.bad_replies++; return; }
  int type = 0; uint32_t sid = 0;
  for (size_t k = 240; k < len && p[k] != 255;) {
    if (p[k] == 0) { k++; continue; }
    if (k + 1 >= len || k + 2 + p[k + 1] > len) break;
    if (p[k] == 53 && p[k + 1] == 1) type = p[k + 2];
    if (p[k] == 54 && p[k + 1] == 4) memcpy(&sid, p + k + 2, 4);
    k += 2 + p[k + 1];
  }
  uint32_t yi; memcpy(&yi, p + 16, 4); yi = ntohl(yi);
  struct client *cl = &clients[i];
  if (type == DHCPNAK) {
    if (cl->state != REQUESTING) { c.duplicate_replies++; return; }
    c.naks++; cl->state = FAILED; return;
  }
  if (type == DHCPOFFER) {
    if (cl->state != DISCOVERING) { c.duplicate_replies++; return; }
    if (yi < pool_lo || yi > pool_hi || !sid) { c.bad_replies++; return; }
    c.offers++;
    cl->offered = yi; cl->server_id = sid; cl->state = REQUESTING; cl->tries = 1;
    send_message(i, DHCPREQUEST);
    return;
  }
  if (type == DHCPACK) {
    if (cl->state != REQUESTING) { c.duplicate_replies++; return; }
    if (yi != cl->offered) { c.bad_replies++; return; }
    c.acks++;
    uint32_t *o = &owner[yi - pool_lo];
    if (*o && *o != i + 1) c.duplicate_acks++;
    *o = i + 1;
    cl->state = BOUND;
    latency[c.bound++] = (float)(now_ms() - cl->started);
    return;
  }
  c.bad_replies++;
}

static void expire_timers(double now) {
  while (timer_head != timer_tail && timers[timer_head % timer_cap].deadline <= now) {
    struct timer t = timers[timer_head % timer_cap];
    timer_head++;
    struct client *cl = &clients[t.client];
    if (cl->seq != t.seq || (cl->state != DISCOVERING && cl->state != REQUESTING)) continue;
    if (cl->tries <= retries) {
      cl->tries++; c.retransmits++;
      send_message(t.client, cl->state == DISCOVERING ? DHCPDISCOVER : DHCPREQUEST);
    } else {
      cl->state = FAILED; c.drops++;
    }
  }
}

static long udp_rcvbuf_errors(void) {
  /* Per network namespace: the generator's own. */
  FILE *f = fopen("/proc/net/snmp", "r");
  if (!f) return -1;
  char head[1024], vals[1024];
  long result = -1;
  while (fgets(head, sizeof head, f) && fgets(vals, sizeof vals, f)) {
    if (strncmp(head, "Udp:", 4) != 0) continue;
    char *hs, *vs, *h = strtok_r(head, " \n", &hs), *v = strtok_r(vals, " \n", &vs);
    while (h && v) {
      if (strcmp(h, "RcvbufErrors") == 0) { result = atol(v); break; }
      h = strtok_r(NULL, " \n", &hs); v = strtok_r(NULL, " \n", &vs);
    }
    break;
  }
  fclose(f);
  return result;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static int open_socket(const char *bind_addr, int port, const char *iface, int rcvbuf) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (s < 0) die("socket");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (iface) {
    setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, iface, strlen(iface)) < 0) die("SO_BINDTODEVICE");
  }
  if (rcvbuf > 0) {
    /* The kernel doubles what it is asked for (bookkeeping): ask half, so the effective size is the one given. */
    int half = rcvbuf / 2;
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof half) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &half, sizeof half);
  }
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (bind_addr && inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) { fprintf(stderr, "dhcp-loadgen: bad address %s\n", bind_addr); exit(2); }
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  return s;
}

static struct mmsghdr in_msg[BATCH];
static struct iovec in_iov[BATCH];
static uint8_t in_buf[BATCH][RXBUF];
static struct sockaddr_in in_from[BATCH];

static int receive(void) {
  for (int k = 0; k < BATCH; k++) {
    in_iov[k] = (struct iovec){ in_buf[k], RXBUF };
    memset(&in_msg[k].msg_hdr, 0, sizeof in_msg[k].msg_hdr);
    in_msg[k].msg_hdr.msg_iov = &in_iov[k];
    in_msg[k].msg_hdr.msg_iovlen = 1;
    in_msg[k].msg_hdr.msg_name = &in_from[k];
    in_msg[k].msg_hdr.msg_namelen = sizeof in_from[k];
  }
  int r = recvmmsg(fd, in_msg, BATCH, MSG_DONTWAIT, NULL);
  if (r < 0) { if (errno == EAGAIN || errno == EINTR) return 0; die("recvmmsg"); }
  return r;
}

/* A server answering relayed requests from the MAC alone: address = pool_lo + low bytes of the MAC. */
static int respond(double seconds) {
  uint32_t size = pool_hi - pool_lo + 1;
  long answered = 0;
  double end = now_ms() + seconds * 1e3;
  while (now_ms() < end) {
    struct pollfd pf = { fd, POLLIN, 0 };
    if (poll(&pf, 1, 100) <= 0) continue;
    int r;
    while ((r = receive()) > 0) {
      for (int k = 0; k < r; k++) {
        const uint8_t *q = in_buf[k];
        size_t len = in_msg[k].msg_len;
        if (len < 244 || q[0] != 1) continue;
        int type = 0;
        for (size_t j = 240; j + 2 < len && q[j] != 255; j += (q[j] ? 2 + q[j + 1] : 1)) if (q[j] == 53) type = q[j + 2];
        if (type != DHCPDISCOVER && type != DHCPREQUEST) continue;
        uint32_t gi; memcpy(&gi, q + 24, 4);
        if (!gi) continue;
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = gi };
        uint8_t *p = next_out(&to);
        memcpy(p, q, 240);
        p[0] = 2;
        uint32_t idx = ((uint32_t)q[28 + 3] << 16) | ((uint32_t)q[28 + 4] << 8) | q[28 + 5];
        uint32_t yi = htonl(pool_lo + idx % size);
        memcpy(p + 16, &yi, 4);
        uint8_t *o = p + 240;
        *o++ = 53; *o++ = 1; *o++ = type == DHCPDISCOVER ? DHCPOFFER : DHCPACK;
        *o++ = 54; *o++ = 4; memcpy(o, &server_addr, 4); o += 4;
        *o++ = 51; *o++ = 4; *o++ = 0; *o++ = 0; *o++ = 0x0e; *o++ = 0x10;
        *o++ = 255;
        answered++;
      }
      flush();
    }
  }
  printf("{\"answered\":%ld}\n", answered);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = "relay", *server = NULL, *gi = NULL, *iface = NULL, *pool = NULL;
  double rate = 1000, seconds = 10;
  long n = 1000000, window = 0;
  int rcvbuf = 0, opt;
  seed = (uint32_t)getpid();
  while ((opt = getopt(argc, argv, "M:s:g:i:P:n:r:T:w:t:R:b:S:")) != -1) {
    switch (opt) {
      case 'M': mode = optarg; break;
      case 's': server = optarg; break;
      case 'g': gi = optarg; break;
      case 'i': iface = optarg; break;
      case 'P': pool = optarg; break;
      case 'n': n = atol(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'T': seconds = atof(optarg); break;
      case 'w': window = atol(optarg); break;
      case 't': timeout_ms = atof(optarg); break;
      case 'R': retries = atoi(optarg); break;
      case 'b': rcvbuf = atoi(optarg); break;
      case 'S': seed = (uint32_t)atol(optarg); break;
      default:
        fprintf(stderr, "usage: dhcp-loadgen -M relay|broadcast|respond -s SERVER[,SERVER...] [-g GIADDR] [-i IFACE] -P LO-HI [-n N] [-r RATE] [-T S] [-w WINDOW] [-t MS] [-R RETRIES] [-b RCVBUF] [-S SEED]\n");
        return 2;
    }
  }
  char lo[32], hi[32];
  struct in_addr a;
  if (!pool || sscanf(pool, "%31[0-9.]-%31[0-9.]", lo, hi) != 2 || inet_pton(AF_INET, lo, &a) != 1) { fprintf(stderr, "dhcp-loadgen: -P LO-HI (the server's pool) is required\n"); return 2; }
  pool_lo = ntohl(a.s_addr);
  if (inet_pton(AF_INET, hi, &a) != 1 || ntohl(a.s_addr) < pool_lo) { fprintf(stderr, "dhcp-loadgen: bad pool end %s\n", hi); return 2; }
  pool_hi = ntohl(a.s_addr);

  if (strcmp(mode, "respond") == 0) {
    if (!server || inet_pton(AF_INET, server, &server_addr) != 1) { fprintf(stderr, "dhcp-loadgen: -s ADDR to answer on is required\n"); return 2; }
    fd = open_socket(server, 67, NULL, rcvbuf);
    return respond(seconds);
  }
  mode_broadcast = strcmp(mode, "broadcast") == 0;
  if (!mode_broadcast && strcmp(mode, "relay") != 0) { fprintf(stderr, "dhcp-loadgen: -M relay, broadcast or respond\n"); return 2; }
  for (int k = 0; k < MAX_SERVERS; k++) { to_server[k].sin_family = AF_INET; to_server[k].sin_port = htons(67); }
  if (mode_broadcast) {
    if (!iface) { fprintf(stderr, "dhcp-loadgen: broadcast mode needs -i IFACE\n"); return 2; }
    to_server[0].sin_addr.s_addr = htonl(INADDR_BROADCAST);
    fd = open_socket(NULL, 68, iface, rcvbuf);
  } else {
    if (!server) { fprintf(stderr, "dhcp-loadgen: -s SERVER[,SERVER...] is required\n"); return 2; }
    char list[256]; snprintf(list, sizeof list, "%s", server);
    n_servers = 0;
    for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      if (n_servers == MAX_SERVERS || inet_pton(AF_INET, tok, &to_server[n_servers].sin_addr) != 1) { fprintf(stderr, "dhcp-loadgen: -s: up to %d IPv4 addresses, comma-separated, not %s\n", MAX_SERVERS, tok); return 2; }
      n_servers++;
    }
    if (!gi || inet_pton(AF_INET, gi, &giaddr) != 1) { fprintf(stderr, "dhcp-loadgen: relay mode needs -g GIADDR (an address of this host)\n"); return 2; }
    fd = open_socket(gi, 67, NULL, rcvbuf);
  }
  if (n < 1 || n > 0xffffff) { fprintf(stderr, "dhcp-loadgen: -n between 1 and 16777215\n"); return 2; }
  if (rate <= 0 && window <= 0) window = 1000;
  n_clients = (uint32_t)n;
  clients = calloc(n, sizeof *clients);
  latency = calloc(n, sizeof *latency);
  owner = calloc((size_t)(pool_hi - pool_lo) + 1, sizeof *owner);
  timer_cap = (size_t)n * 2 * (retries + 1) + 1;
  timers = malloc(timer_cap * sizeof *timers);
  if (!clients || !latency || !owner || !timers) die("calloc");
  srandom(seed);
  xid_base = (uint32_t)random() & 0xff000000u;

  for (int k = 0; k < BATCH; k++) {
    in_iov[k] = (struct iovec){ in_buf[k], RXBUF };
  }
  int eff = 0; socklen_t el = sizeof eff;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &eff, &el);
  long rcvbuf_errors_before = udp_rcvbuf_errors();
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);

  double start = now_ms(), last_ack = start, stop_starting = start + seconds * 1e3, tokens = 1;
  double last = start, burst = rate > 0 ? (rate / 100 > BATCH ? rate / 100 : BATCH) : 0;
  uint32_t next = 0;
  long outstanding = 0;
  double started_until = start;
  for (;;) {
    double now = now_ms();
    if (rate > 0) { tokens += (now - last) * rate / 1e3; if (tokens > burst) tokens = burst; }
    last = now;
    while (next < n_clients && now < stop_starting && (rate > 0 ? tokens >= 1 : 1)) {
      if (window > 0 && outstanding >= window) break;
      clients[next].state = DISCOVERING; clients[next].tries = 1; clients[next].started = now;
      send_message(next, DHCPDISCOVER);
      next++; tokens -= 1; started_until = now;
      if (window > 0) outstanding++;
      if (out_n == BATCH) break; /* let replies in between batches */
    }
    flush();
    long bound_before = c.bound, failed_before = c.drops + c.naks;
    int got = receive();
    for (int k = 0; k < got; k++) on_reply(in_buf[k], in_msg[k].msg_len);
    if (c.bound > bound_before) last_ack = now_ms();
    expire_timers(now_ms());
    flush();
    if (window > 0) outstanding -= (c.bound - bound_before) + (c.drops + c.naks - failed_before);
    long finished = c.bound + c.drops + c.naks;
    if ((next == n_clients || now >= stop_starting) && finished >= (long)next) break;
    if (got == 0) {
      /* Sleep until a reply comes, or the next client is due (at most 1 ms). */
      struct pollfd pf = { fd, POLLIN, 0 };
      double wait_ms = (rate > 0 && next < n_clients && now < stop_starting) ? (tokens < 1 ? (1 - tokens) * 1e3 / rate : 0) : 1;
      if (wait_ms > 1) wait_ms = 1;
      struct timespec ts = { 0, (long)(wait_ms * 1e6) };
      ppoll(&pf, 1, &ts, NULL);
    }
  }
  double end = now_ms();
  getrusage(RUSAGE_SELF, &ru1);
  long rcvbuf_errors_after = udp_rcvbuf_errors();
  qsort(latency, c.bound, sizeof *latency, cmp_float);
  double p50 = c.bound ? latency[c.bound / 2] : 0, p99 = c.bound ? latency[(c.bound * 99) / 100 < c.bound ? (c.bound * 99) / 100 : c.bound - 1] : 0;
  double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e3 + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e3
             + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e3 + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e3;
  double offer_s = (started_until - start) / 1e3, wall_s = (end - start) / 1e3, ack_s = (last_ack - start) / 1e3;
  printf("{\"mode\":\"%s\",\"clients\":%u,\"sent\":%ld,\"discovers\":%ld,\"requests\":%ld,\"retransmits\":%ld,\"offers\":%ld,\"acks\":%ld,\"naks\":%ld,"
         "\"drops\":%ld,\"drop_pct\":%.3f,\"duplicate_acks\":%ld,\"duplicate_replies\":%ld,\"bad_replies\":%ld,"
         "\"target_rate\":%.0f,\"offered_rate\":%.1f,\"rate\":%.1f,\"wall_s\":%.3f,\"last_ack_s\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
         "\"cpu_ms\":%.1f,\"rcvbuf\":%d,\"rcvbuf_errors\":%ld}\n",
         mode, next, c.sent, c.discovers, c.requests, c.retransmits, c.offers, c.acks, c.naks,
         c.drops, next ? 100.0 * (next - c.bound) / next : 0.0, c.duplicate_acks, c.duplicate_replies, c.bad_replies,
         rate, offer_s > 0 ? next / offer_s : 0, ack_s > 0 ? c.bound / ack_s : 0, wall_s, ack_s, p50, p99,
         cpu, eff, rcvbuf_errors_before >= 0 && rcvbuf_errors_after >= 0 ? rcvbuf_errors_after - rcvbuf_errors_before : -1);
  return 0;
}

/*
 * TFTP load generator for bench/tftp: N independent read sessions at once,
 * each with its own UDP socket (its own transfer ID), as N booting nodes
 * would be. Written in C with one epoll loop so that the generator is not
 * what limits the measurement (it reports its own CPU time next to the
 * results; see run.ts).
 *
 * Each session behaves like iPXE's TFTP client: it sends an RRQ (with
 * blksize, tsize and, when asked, windowsize), acknowledges every block in
 * lockstep (windowsize 1) or every window (RFC 7440), re-acknowledges a
 * duplicate block in lockstep, acknowledges the last in-order block once
 * when it sees a gap in a window, and on silence re-sends its last packet
 * after 250 ms, doubling up to 10 s. Every received block is compared with
 * the expected file (loaded into memory), so a wrong byte is a failure.
 *
 *   tftp-loadgen -s ADDR [-p PORT] -r REMOTE -l LOCAL [-n N] [-b BLKSIZE]
 *                [-w WINDOWSIZE] [-T TOTAL_SECONDS] [-B BIND_ADDR]
 *
 * Prints one JSON object with the results.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIN_TIMEOUT_MS 250.0
#define MAX_TIMEOUT_MS 10000.0

enum { WAITING, RUNNING, DONE, FAILED };

struct session {
  int fd;
  int state;
  struct sockaddr_in peer; /* the server's transfer ID, once it answered */
  int have_peer;
  uint64_t expected;       /* next block, counted from 1 (not wrapped) */
  int in_window;           /* blocks received in the current window */
  int gap_acked;           /* acknowledged a gap in this window already */
  int blksize, windowsize; /* as granted */
  double start, end, last_send, rto;
  unsigned char last[600];
  size_t last_len;
  int retransmits;
  long data_packets;       /* DATA packets received, duplicates and out-of-order ones included */
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const unsigned char *file_data;
static size_t file_size;
static const char *first_error;

static void send_last(struct session *s, const struct sockaddr_in *to) {
  sendto(s->fd, s->last, s->last_len, 0, (const struct sockaddr *)to, sizeof *to);
  s->last_send = now_ms();
}

static void send_ack(struct session *s, uint64_t block) {
  s->last[0] = 0; s->last[1] = 4;
  s->last[2] = (block >> 8) & 0xff; s->last[3] = block & 0xff;
  s->last_len = 4;
  send_last(s, &s->peer);
}

static void fail(struct session *s, const char *why) {
  if (s->state == DONE || s->state == FAILED) return;
  s->state = FAILED;
  s->end = now_ms();
  if (!first_error) first_error = why;
  close(s->fd);
}

static void finish(struct session *s) {
  s->state = DONE;
  s->end = now_ms();
  close(s->fd);
}

static void on_packet(struct session *s, const unsigned char *p, ssize_t n, const struct sockaddr_in *from) {
  if (n < 4) return;
  int op = (p[0] << 8) | p[1];
  if (!s->have_peer) { s->peer = *from; s->have_peer = 1; }
  else if (from->sin_port != s->peer.sin_port) return; /* not our transfer ID */
  if (op == 5) { fail(s, "ERROR packet from the server"); return; }
  if (op == 6) {
    if (s->state != WAITING) return;
    /* OACK: name\0value\0 pairs; options left out keep their RFC 1350 values */
    s->blksize = 512; s->windowsize = 1;
    const char *q = (const char *)p + 2, *end = (const char *)p + n;
    while (q < end) {
      const char *name = q; q += strnlen(q, end - q) + 1; if (q >= end) break;
      const char *val = q; q += strnlen(q, end - q) + 1;
      if (!strcasecmp(name, "blksize")) s->blksize = atoi(val);
      else if (!strcasecmp(name, "windowsize")) s->windowsize = atoi(val);
    }
    s->state = RUNNING;
    s->rto = MIN_TIMEOUT_MS;
    send_ack(s, 0);
    return;
  }
  if (op != 3) return;
  if (s->state == WAITING) { s->state = RUNNING; s->blksize = 512; s->windowsize = 1; } /* no OACK: RFC 1350 */
  if (s->state != RUNNING) return;
  unsigned block = (p[2] << 8) | p[3];
  size_t len = n - 4;
  s->data_packets++;
  if (block == (s->expected & 0xffff)) {
    size_t off = (s->expected - 1) * (size_t)s->blksize;
    if (off + len > file_size || memcmp(file_data + off, p + 4, len) != 0 || (len < (size_t)s->blksize && off + len != file_size)) {
      fail(s, "received bytes differ from the file");
      return;
    }
    s->expected++;
    s->in_window++;
    s->rto = MIN_TIMEOUT_MS;
    if (len < (size_t)s->blksize) { send_ack(s, block); finish(s); return; }
    if (s->in_window >= s->windowsize) { send_ack(s, block); s->in_window = 0; s->gap_acked = 0; }
    return;
  }
  if (s->windowsize == 1) {
    /* Lockstep: a duplicate block is acknowledged again (RFC 1350 behaviour). */
    send_ack(s, s->expected - 1);
    return;
  }
  /* Window: a block ahead means one was lost; say where we are, once. */
  unsigned ahead = (block - (unsigned)(s->expected & 0xffff)) & 0xffff;
  if (ahead < 0x8000 && !s->gap_acked) {
    send_ack(s, s->expected - 1);
    s->gap_acked = 1;
    s->in_window = 0;
  }
}

int main(int argc, char **argv) {
  const char *server = NULL, *remote = NULL, *local = NULL, *bind_addr = NULL;
  int port = 69, n = 1, blksize = 1432, windowsize = 1, total_s = 120, opt;
  while ((opt = getopt(argc, argv, "s:p:r:l:n:b:w:T:B:")) != -1) {
    switch (opt) {
      case 's': server = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'r': remote = optarg; break;
      case 'l': local = optarg; break;
      case 'n': n = atoi(optarg); break;
      case 'b': blksize = atoi(optarg); break;
      case 'w': windowsize = atoi(optarg); break;
      case 'T': total_s = atoi(optarg); break;
      case 'B': bind_addr = optarg; break;
      default: fprintf(stderr, "usage: tftp-loadgen -s ADDR -r REMOTE -l LOCAL [-p PORT] [-n N] [-b BLKSIZE] [-w WINDOW] [-T SECONDS] [-B BIND]\n"); return 2;
    }
  }
  if (!server || !remote || !local || n < 1) { fprintf(stderr, "tftp-loadgen: -s, -r and -l are required\n"); return 2; }

  int lf = open(local, O_RDONLY);
  struct stat st;
  if (lf < 0 || fstat(lf, &st) < 0) { perror(local); return 2; }
  file_size = st.st_size;
  unsigned char *buf = malloc(file_size + 1);
  for (size_t got = 0; got < file_size;) { ssize_t r = read(lf, buf + got, file_size - got); if (r <= 0) { perror("read"); return 2; } got += r; }
  close(lf);
  file_data = buf;

  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, server, &to.sin_addr);
  struct sockaddr_in me = { .sin_family = AF_INET };
  if (bind_addr) inet_pton(AF_INET, bind_addr, &me.sin_addr);

  /* The request every session sends. */
  unsigned char rrq[600];
  size_t rrq_len = 2;
  rrq[0] = 0; rrq[1] = 1;
  char opts[128];
  int ol = snprintf(opts, sizeof opts, "octet%cblksize%c%d%ctsize%c0%c", 0, 0, blksize, 0, 0, 0);
  if (windowsize > 1) ol += snprintf(opts + ol, sizeof opts - ol, "windowsize%c%d%c", 0, windowsize, 0);
  memcpy(rrq + rrq_len, remote, strlen(remote) + 1); rrq_len += strlen(remote) + 1;
  memcpy(rrq + rrq_len, opts, ol); rrq_len += ol;

  int ep = epoll_create1(0);
  struct session *ss = calloc(n, sizeof *ss);
  int rcvbuf = 4 << 20;
  for (int i = 0; i < n; i++) {
    struct session *s = &ss[i];
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) { perror("socket"); return 2; }
    /* Room for whole windows: the client must not be what drops packets. */
    if (windowsize > 1) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    if (bind(s->fd, (struct sockaddr *)&me, sizeof me) < 0) { perror("bind"); return 2; }
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    s->expected = 1;
    s->rto = MIN_TIMEOUT_MS;
    memcpy(s->last, rrq, rrq_len);
    s->last_len = rrq_len;
  }
  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  double t0 = now_ms();
  for (int i = 0; i < n; i++) { ss[i].start = now_ms(); send_last(&ss[i], &to); }

  int left = n;
  struct epoll_event evs[256];
  unsigned char pkt[70000];
  double deadline = t0 + total_s * 1e3, last_scan = t0;
  while (left > 0) {
    int k = epoll_wait(ep, evs, 256, 10);
    for (int e = 0; e < k; e++) {
      struct session *s = &ss[evs[e].data.u32];
      for (;;) {
        if (s->state == DONE || s->state == FAILED) break;
        struct sockaddr_in from; socklen_t fl = sizeof from;
        ssize_t r = recvfrom(s->fd, pkt, sizeof pkt, 0, (struct sockaddr *)&from, &fl);
        if (r < 0) break;
        on_packet(s, pkt, r, &from);
        /* Lockstep: one DATA is all a session can have pending, and epoll is
         * level-triggered, so a second recvfrom would only return EAGAIN: a
         * wasted syscall per block, charged to the generator. */
        if (s->windowsize <= 1) break;
      }
    }
    double t = now_ms();
    if (t - last_scan >= 10 || k == 0) {
      last_scan = t;
      left = 0;
      for (int i = 0; i < n; i++) {
        struct session *s = &ss[i];
        if (s->state == DONE || s->state == FAILED) continue;
        if (t > deadline) { fail(s, "did not finish within the time limit"); continue; }
        left++;
        if (t - s->last_send >= s->rto) {
          s->retransmits++;
          s->rto = s->rto * 2 > MAX_TIMEOUT_MS ? MAX_TIMEOUT_MS : s->rto * 2;
          send_last(s, s->have_peer ? &s->peer : &to);
        }
      }
    }
  }
  double wall = now_ms() - t0;
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);

  double *d = calloc(n, sizeof *d);
  int ok = 0, retransmits = 0, granted_blk = 0, granted_win = 0;
  long data_packets = 0;
  for (int i = 0; i < n; i++) {
    retransmits += ss[i].retransmits;
    data_packets += ss[i].data_packets;
    if (ss[i].state != DONE) continue;
    d[ok++] = ss[i].end - ss[i].start;
    granted_blk = ss[i].blksize; granted_win = ss[i].windowsize;
  }
  for (int i = 1; i < ok; i++) for (int j = i; j > 0 && d[j - 1] > d[j]; j--) { double x = d[j]; d[j] = d[j - 1]; d[j - 1] = x; }
  double p50 = ok ? d[(ok - 1) / 2] : 0, p99 = ok ? d[(int)((ok - 1) * 0.99)] : 0, max = ok ? d[ok - 1] : 0;
  double user = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e3 + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e3;
  double sys = (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e3 + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e3;
  printf("{\"sessions\":%d,\"ok\":%d,\"failed\":%d,\"wall_ms\":%.1f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
         "\"retransmits\":%d,\"data_packets\":%ld,\"bytes\":%zu,\"blksize\":%d,\"windowsize\":%d,\"cpu_ms\":%.1f,\"error\":%s%s%s}\n",
         n, ok, n - ok, wall, p50, p99, max, retransmits, data_packets, file_size, granted_blk, granted_win, user + sys,
         first_error ? "\"" : "", first_error ? first_error : "null", first_error ? "\"" : "");
  return ok == n ? 0 : 1;
}

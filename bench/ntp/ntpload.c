/*
 * ntpload: an open-loop NTP client load generator for bench/ntp.
 *
 *   ntpload SERVER PORT RATE SECONDS [SOCKETS]
 *
 * Sends NTPv4 client requests to SERVER:PORT at RATE per second for SECONDS,
 * paced in 1 ms slices (sendmmsg), from SOCKETS sockets (distinct source
 * ports, default 8, so SO_REUSEPORT servers can spread the load), and counts
 * the replies whose origin timestamp matches a request it sent (recvmmsg).
 * Waits 500 ms for stragglers, then prints one line:
 *   sent=N received=N loss=PCT rate=ACHIEVED_PER_S cpu=PCT_OF_ONE_CORE
 * cpu is the generator's own CPU time over the wall time: near 100 means the
 * generator, not the server, was the limit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
#define MAX_SOCKETS 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static uint64_t sent = 0, received = 0;
static uint32_t session;

static void drain(int fd) {
  static unsigned char bufs[BATCH][128];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (;;) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      unsigned char *b = bufs[i];
      if (msgs[i].msg_len < 48 || (b[0] & 7) != 4) continue;
      uint32_t tag; memcpy(&tag, b + 24, 4); /* origin seconds = our session tag */
      if (tag == session) received++;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: ntpload SERVER PORT RATE SECONDS [SOCKETS]\n"); return 2; }
  struct sockaddr_in to; memset(&to, 0, sizeof to);
  to.sin_family = AF_INET; to.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  double rate = atof(argv[3]), seconds = atof(argv[4]);
  int nsock = argc > 5 ? atoi(argv[5]) : 8;
  if (nsock < 1 || nsock > MAX_SOCKETS) nsock = 8;
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  session = (uint32_t)rand();

  int fds[MAX_SOCKETS];
  struct pollfd pfds[MAX_SOCKETS];
  for (int i = 0; i < nsock; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 8 << 20;
    setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (connect(fds[i], (struct sockaddr *)&to, sizeof to) < 0) { perror("connect"); return 1; }
    pfds[i].fd = fds[i]; pfds[i].events = POLLIN;
  }

  /* One request template; the origin check uses the transmit seconds field as a session tag. */
  unsigned char req[BATCH][48];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    memset(req[i], 0, 48);
    req[i][0] = 0x23; /* LI 0, VN 4, mode 3 */
    req[i][2] = 6;
    memcpy(req[i] + 40, &session, 4);
    iov[i].iov_base = req[i]; iov[i].iov_len = 48;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
  }

  double start = now_s(), cpu0 = cpu_s();
  double end = start + seconds;
  uint64_t due = 0;
  int next = 0;
  uint32_t seq = 0;
  for (;;) {
    double t = now_s();
    if (t >= end) break;
    uint64_t target = (uint64_t)((t - start) * rate);
    while (due < target) {
      int want = (int)(target - due > BATCH ? BATCH : target - due);
      for (int i = 0; i < want; i++) { seq++; memcpy(req[i] + 44, &seq, 4); }
      int n = sendmmsg(fds[next], msgs, (unsigned)want, MSG_DONTWAIT);
      next = (next + 1) % nsock;
      if (n <= 0) { due += want; continue; } /* counted as sent and lost: the generator never waits */
      sent += (uint64_t)n; due += (uint64_t)want;
      if (n < want) break;
    }
    int r = poll(pfds, (nfds_t)nsock, 1);
    if (r > 0) for (int i = 0; i < nsock; i++) if (pfds[i].revents & POLLIN) drain(fds[i]);
  }
  double wall = now_s() - start, cpu = cpu_s() - cpu0;
  double stop = now_s() + 0.5;
  while (now_s() < stop) {
    int r = poll(pfds, (nfds_t)nsock, 10);
    if (r > 0) for (int i = 0; i < nsock; i++) if (pfds[i].revents & POLLIN) drain(fds[i]);
  }
  uint64_t attempted = due;
  double loss = attempted ? 100.0 * (double)(attempted - (received > attempted ? attempted : received)) / (double)attempted : 0;
  printf("sent=%llu attempted=%llu received=%llu loss=%.4f rate=%.0f cpu=%.0f\n",
         (unsigned long long)sent, (unsigned long long)attempted, (unsigned long long)received, loss, received / wall, 100.0 * cpu / wall);
  return 0;
}

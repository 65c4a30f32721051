/*
 * The system time as a 64-bit NTP timestamp, written where a reply's
 * transmit timestamp goes, by the two helpers that send NTP (udp_socket.c:
 * the upstream poller's requests; udp_batch.c: the server's replies).
 */
#ifndef BOOTHERD_NTP_STAMP_H
#define BOOTHERD_NTP_STAMP_H
#include <stdint.h>
#include <time.h>

/* Seconds from the NTP era (1900) to the Unix epoch (1970). */
#define NTP_UNIX_OFFSET 2208988800ULL

/*
 * Writes CLOCK_REALTIME at p as seconds since 1900 and a 32-bit fraction,
 * big-endian. The lowest bits of the fraction set in keep_mask are kept from
 * what p already holds (a client's random noise below its precision).
 */
static inline void write_ntp_now(unsigned char *p, uint32_t keep_mask) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint32_t sec = (uint32_t)((uint64_t)ts.tv_sec + NTP_UNIX_OFFSET);
  uint32_t frac = (uint32_t)(((uint64_t)ts.tv_nsec << 32) / 1000000000ULL);
  uint32_t old = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
  frac = (frac & ~keep_mask) | (old & keep_mask);
  p[0] = sec >> 24; p[1] = sec >> 16; p[2] = sec >> 8; p[3] = sec;
  p[4] = frac >> 24; p[5] = frac >> 16; p[6] = frac >> 8; p[7] = frac;
}

#endif

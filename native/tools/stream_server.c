/*
 * stream_server.c — the C ceiling of turbocoap's RFC 8323 server: an epoll TCP server over
 * the connection driver (native/driver/stream.c, tcs_*) in which C plays JavaScript's part:
 * every batch of REQUEST records is answered at once with RESPOND records (2.05, a 15-byte
 * payload, as bench/lib/server-turbocoap-stream.mjs). What the addon adds on top of this
 * (libuv, the N-API crossing per batch, the JS handler) is the host's cost: compare
 * `bench/tcp.mjs` figures with this one's under the same coap-bench load.
 *
 *   make -C native bench-stream        (builds native/out/stream-server)
 *   native/out/stream-server PORT [MAX_CONNS]
 *   build/Release/coap-bench -c 64 -k 4 -d 5 coap+tcp://127.0.0.1:PORT/time
 *
 * One read (64 KiB) per readable connection per wake-up, the batch answered after the reads
 * of a wake-up, then one write per connection with output. Prints its CPU per request on
 * SIGTERM/SIGINT. Not a product: no TLS, IPv4 loopback, for measurements.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"

#define TXW (1u << 16)
#define TXB (1u << 20)
#define MAX_FD 65536u

static volatile sig_atomic_t stop;
static void on_sig(int s) {
  (void)s;
  stop = 1;
}
static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static tcs_stream *S;
static uint32_t tw[TXW], nw;
static uint8_t tb[TXB];
static uint32_t nb;
static uint64_t answered;
static const char PAYLOAD[] = "Hello, turbocoap"; /* 15 bytes + NUL: 15 sent */

/* C in JavaScript's place: answer every REQUEST of the batch. */
static void on_batch(void) {
  const tcb_rx *b = tcs_batch(S);
  uint32_t p = 0;
  while (p < b->word_used) {
    const uint32_t *r = b->words + p;
    if (r[TCB_RX_KIND] == TC_EV_REQUEST && nw + TCB_TX_RESPOND_WORDS <= TXW && nb + 16 <= TXB) {
      uint32_t *t = tw + nw;
      memset(t, 0, TCB_TX_RESPOND_WORDS * 4u);
      t[TCB_TX_RESPOND_KIND] = TCB_TX_RESPOND;
      t[TCB_TX_RESPOND_ID] = r[TCB_RX_ID];
      t[TCB_TX_RESPOND_CODE] = 0x45;
      memcpy(tb + nb, PAYLOAD, 15);
      t[TCB_TX_RESPOND_PAYLOAD_OFF] = nb;
      t[TCB_TX_RESPOND_PAYLOAD_LEN] = 15;
      nb += 16;
      nw += TCB_TX_RESPOND_WORDS;
      answered++;
    }
    p += TCB_RX_WORDS + 3u * r[TCB_RX_OPT_COUNT];
  }
  tcs_delivered(S);
}

static void write_out(int ep) {
  uint32_t id;
  int a;
  while ((a = tcs_next_out(S, &id)) != TCS_OUT_NONE) {
    if (a == TCS_OUT_CLOSE) {
      epoll_ctl(ep, EPOLL_CTL_DEL, (int)id, NULL);
      close((int)id);
      tcs_close(S, now_ms(), id);
      continue;
    }
    for (;;) {
      uint32_t len;
      const uint8_t *p = tcs_out(S, id, &len);
      if (p == NULL || len == 0) break;
      ssize_t w = send((int)id, p, len, MSG_NOSIGNAL);
      if (w <= 0) break; /* EAGAIN: the next wake-up retries (level-triggered EPOLLOUT not used: a ceiling) */
      if (tcs_written(S, id, (uint32_t)w) != TCS_WRITE) break;
    }
  }
}

static void flush_tx(int ep) {
  while (nw > 0) {
    int rc = tcs_flush(S, now_ms(), tw, nw, tb, nb);
    if (rc == TCS_WRITE) {
      write_out(ep);
      continue;
    }
    nw = nb = 0;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: stream-server PORT [MAX_CONNS]\n");
    return 2;
  }
  uint32_t port = (uint32_t)atoi(argv[1]), maxc = argc > 2 ? (uint32_t)atoi(argv[2]) : 4000u;
  tc_conn_config cc;
  tc_conn_config_default(&cc);
  cc.out_bytes = 16384; /* as ts/transport/stream-endpoint.ts's server defaults */
  cc.max_requests = 64;
  cc.max_exchanges = 65535u / maxc < 16u ? 65535u / maxc : 16u;
  tc_srv_config sc;
  tc_srv_config_default(&sc);
  sc.max_in_progress = maxc * cc.max_exchanges;
  tcs_limits lim = {.max_conns = maxc, .max_per_host = maxc, .rx_words = 1u << 15, .rx_bytes = 256u * 1024u};
  uint8_t seed[TCA_SEED_BYTES] = {1, 2, 3};
  int err = 0;
  S = tcs_create(&cc, &sc, &lim, seed, sizeof seed, &err);
  if (!S) {
    fprintf(stderr, "tcs_create: %d\n", err);
    return 1;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 511) != 0) {
    perror("listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  signal(SIGTERM, on_sig);
  signal(SIGINT, on_sig);
  printf("ready %u\n", port);
  fflush(stdout);
  static uint8_t buf[65536];
  static struct epoll_event evs[256];
  while (!stop) {
    uint64_t dl = tcs_deadline(S), t = now_ms();
    int timeout = dl == UINT64_MAX ? 1000 : dl <= t ? 0 : (int)(dl - t < 1000 ? dl - t : 1000);
    int n = epoll_wait(ep, evs, 256, timeout);
    t = now_ms();
    for (int k = 0; k < n; k++) {
      int fd = (int)evs[k].data.u32;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          uint8_t a[7] = {4, 0, 0, 127, 0, 0, 1};
          a[1] = (uint8_t)((uint32_t)c >> 8); /* any unique port: the fd */
          a[2] = (uint8_t)c;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if ((uint32_t)c >= MAX_FD || tcs_open(S, t, (uint32_t)c, a, 7) < 0) {
            close(c);
            continue;
          }
          struct epoll_event ce = {.events = EPOLLIN, .data.u32 = (uint32_t)c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        tcs_close(S, t, (uint32_t)fd);
        continue;
      }
      uint32_t off = 0;
      while (off < (uint32_t)r) {
        uint32_t used = 0;
        int rc = tcs_recv(S, t, (uint32_t)fd, buf + off, (uint32_t)r - off, &used);
        off += used;
        if (rc == TCS_DELIVER) {
          on_batch();
          flush_tx(ep);
        } else if (rc == TCS_PAUSE) {
          write_out(ep);
        } else if (rc < 0) {
          break;
        }
        if (rc == TCS_DONE || rc == TCS_WRITE) break;
      }
    }
    if (tcs_batch(S)->count) on_batch();
    flush_tx(ep);
    if (tcs_deadline(S) <= now_ms()) {
      while (tcs_timer(S, now_ms()) == TCS_DELIVER) on_batch();
      flush_tx(ep);
    }
    write_out(ep);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  printf("answered %llu, cpu %.3f s (user %.3f), %.2f us per request, memory %zu bytes\n", (unsigned long long)answered, cpu,
         (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6, answered ? cpu * 1e6 / (double)answered : 0.0,
         tcs_memory(S));
  tcs_destroy(S);
  return 0;
}

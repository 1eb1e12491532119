/*
 * coap-bench — a CoAP-over-UDP load generator (Linux).
 *
 *   coap-bench [options] coap://HOST:PORT/path?query
 *
 * Single thread, epoll + non-blocking connected UDP sockets, recvmmsg/sendmmsg
 * batches, no allocation per request. Requests are encoded once per socket with
 * tc_encode() into a template; each send patches only the 12-byte header
 * (Message ID + 8-byte token) kept in the request's slot, and the rest of the
 * template goes out through a second iovec. Where the kernel allows it, each
 * socket's requests (all the same size) leave in UDP GSO groups: one sendmsg, cut
 * into datagrams by the kernel (UDP_SEGMENT); otherwise sendmmsg batches.
 * Responses are parsed with tc_decode().
 *
 * Reliability follows RFC 7252: CON requests are retransmitted with the same
 * Message ID after ACK_TIMEOUT (random in [2 s, 3 s]) with exponential backoff,
 * at most MAX_RETRANSMIT (4) times; NON requests are re-issued as new requests
 * after a timeout and counted as lost. A Message ID is never reused from the
 * same source endpoint: each socket uses sequential MIDs and is retired (drained,
 * closed and replaced by a fresh socket on a new ephemeral port) before it would
 * send a 65537th request. A fresh socket whose port was used by this run within
 * EXCHANGE_LIFETIME (247 s) is rejected.
 *
 * Measurement: requests issued before the warm-up ends are not counted. A request
 * is "measured" if it was issued inside the measured window; it counts as
 * completed when any response (any code) arrives before the window ends.
 *
 * Two more modes have their own loops (see their sections): --block2 SIZE, block-wise
 * downloads (RFC 7959) by -c clients on a socket each, every block checked; and
 * --observe N, N observers (RFC 7641) whose notifications are counted and ACKed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "turbocoap.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux >= 4.18; older libc headers lack it */
#endif

/* ------------------------------------------------------------------ limits */

#define MAX_SLOTS 65535u          /* -c bound: slot index lives in 16 token bits */
#define MAX_SHARES 1024u          /* -k bound */
#define GENERATIONS 8u            /* sockets per share at once: 1 active + 7 draining */
#define MAX_URI_OPTS 128u         /* Uri-Path + Uri-Query segments */
#define MAX_TEMPLATE 65507u       /* largest UDP payload */
#define HDR_LEN 12u               /* 4-byte header + 8-byte token */
#define TOKEN_LEN 8u
#define STAGE 64u                 /* sendmmsg batch per socket */
#define GSO_SEGS 64u              /* requests per UDP GSO send */
#define GSO_BYTES 60000u          /* bytes per UDP GSO send */
#define RBATCH 64u                /* recvmmsg batch */
#define RBUF_SIZE 65536u          /* per received datagram: no truncation */
#define RECV_ROUNDS 8             /* recvmmsg calls per socket per wakeup */
#define DECODE_OPTS 256u
#define RCVBUF_BYTES (4 * 1024 * 1024)
#define OBS_RCVBUF_BYTES (16 * 1024 * 1024) /* --observe: bursts of notifications */
#define SNDBUF_BYTES (1 * 1024 * 1024)
#define PORT_HISTORY 8192u
#define PORT_TRIES 32

/* RFC 7252 §4.8 transmission parameters */
#define ACK_TIMEOUT_MS 2000u
#define ACK_RANDOM_EXTRA_MS 1000u /* ACK_TIMEOUT * (ACK_RANDOM_FACTOR - 1) */
#define MAX_RETRANSMIT 4u
#define MAX_TRANSMIT_WAIT_MS 93000u
#define EXCHANGE_LIFETIME_NS (247LL * 1000000000LL)

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* ---------------------------------------------------------------- histogram */

/* Log-linear: values < 128 µs exact; above, 64 sub-buckets per power of two
 * (relative error < 1.6 %). Covers up to 2^47 µs. */
#define H_SUB_BITS 6
#define H_LINEAR 128u
#define H_BUCKETS (H_LINEAR + 41u * 64u)

typedef struct hist {
  uint64_t count, sum, max, min;
  uint64_t b[H_BUCKETS];
} hist;

static unsigned hist_index(uint64_t v) {
  if (v < H_LINEAR) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
  unsigned shift = msb - H_SUB_BITS;                 /* >= 1 */
  unsigned m = (unsigned)(v >> shift);               /* 64..127 */
  unsigned idx = H_LINEAR + (shift - 1u) * 64u + (m - 64u);
  return idx < H_BUCKETS ? idx : H_BUCKETS - 1u;
}

/* Highest value that falls in bucket idx. */
static uint64_t hist_upper(unsigned idx) {
  if (idx < H_LINEAR) return idx;
  unsigned shift = (idx - H_LINEAR) / 64u + 1u;
  uint64_t m = (idx - H_LINEAR) % 64u + 64u;
  return ((m + 1u) << shift) - 1u;
}

static void hist_add(hist *h, uint64_t v) {
  h->b[hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
  if (v < h->min) h->min = v;
}

/* Percentile given in basis points (9990 = p99.9). */
static uint64_t hist_pct(const hist *h, uint64_t bp) {
  if (h->count == 0) return 0;
  uint64_t rank = (h->count / 10000u) * bp + ((h->count % 10000u) * bp + 9999u) / 10000u;
  if (rank < 1) rank = 1;
  uint64_t cum = 0;
  for (unsigned i = 0; i < H_BUCKETS; i++) {
    cum += h->b[i];
    if (cum >= rank) {
      uint64_t v = hist_upper(i);
      if (v > h->max) v = h->max;
      if (v < h->min) v = h->min;
      return v;
    }
  }
  return h->max;
}

/* ------------------------------------------------------------------- state */

enum mode { M_REQUESTS = 0, M_BLOCK2 = 1, M_OBSERVE = 2 };
enum slot_state { S_IDLE = 0, S_CON = 1, S_SEP = 2, S_NON = 3 };
enum sock_state { K_FREE = 0, K_ACTIVE = 1, K_DRAINING = 2 };

typedef struct slot {
  uint8_t hdr[HDR_LEN]; /* ver/type/tkl, code, MID, token: patched per request */
  uint8_t state;        /* slot_state */
  uint8_t retx;         /* retransmissions of the current request */
  uint8_t measured;     /* issued inside the measured window */
  uint16_t mid;
  int32_t sock;         /* pool index the current request went out on */
  uint32_t rto_ms;      /* current retransmission timeout */
  uint64_t token;       /* as it lies in hdr[4..12) (native byte order) */
  int64_t t_sent;       /* first transmission (ns, CLOCK_MONOTONIC) */
  int64_t t_deadline;   /* next timer */
  int64_t t_giveup;     /* -t give-up (INT64_MAX if none) */
} slot;

typedef struct share {
  slot *slots;
  uint32_t nslots;
  int32_t active; /* pool index issuing new requests, or -1 */
} share;

typedef struct sock {
  int fd;
  int state;      /* sock_state */
  uint32_t share;
  uint32_t issued;   /* MIDs consumed */
  uint16_t next_mid;
  uint32_t inflight;
  uint16_t *mid_slot; /* 65536 entries: MID -> slot index in the share */
  uint8_t *tmpl;      /* encoded request template (MAX_TEMPLATE bytes allocated lazily) */
  size_t tlen;
  uint32_t nstage;
  int dirty;
  struct mmsghdr msgs[STAGE];
  struct iovec iov[STAGE][2];
  uint8_t ctl[STAGE][4]; /* empty ACK / RST bytes */
  uint32_t gso_max;      /* requests per GSO send; 0 = GSO off on this socket */
  uint32_t ngso;         /* requests in the GSO group */
  struct iovec giov[2 * GSO_SEGS];
} sock;

typedef struct stats {
  uint64_t issued, completed, c2, c4, c5, cother, rst, retx, timeouts, lost;
  uint64_t unmatched, malformed, unexpected, send_errors, icmp_errors;
} stats;

static struct {
  /* configuration */
  int mode; /* M_REQUESTS, M_BLOCK2, M_OBSERVE */
  uint32_t conns, nsocks, retire_after;
  uint32_t observers; /* --observe N */
  double reg_time;    /* --observe: registration phase bound (--reg-time) */
  int rcvbuf_want;
  double duration, warmup;
  uint64_t count; /* 0 = unlimited */
  int non, json, gso;
  uint32_t method;
  int64_t timeout_ms; /* 0 = RFC defaults */
  const char *url;
  const char *payload;
  long content_format; /* -1 = none */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  /* request source bytes */
  uint8_t src[MAX_TEMPLATE + TOKEN_LEN];
  tc_opt opts[MAX_URI_OPTS + 2];
  uint32_t nopts;
  tc_msg req;
  uint8_t ack_tmpl[4], rst_tmpl[4];
  /* runtime */
  int ep;
  share shares[MAX_SHARES];
  sock *pool;
  uint32_t npool;
  int32_t dirty[MAX_SHARES * GENERATIONS];
  uint32_t ndirty;
  uint64_t key, seq, rng;
  int64_t now, t_start, t_measure, t_end, t_last;
  int measuring, issuing;
  uint64_t inflight, measured_inflight, measured_issued;
  int64_t next_timer;
  uint64_t retired;
  uint16_t ports[PORT_HISTORY];
  int64_t port_time[PORT_HISTORY];
  uint32_t nports;
  int rcvbuf_actual;
  double cpu_at_measure, cpu_used; /* this process's user+system CPU seconds */
  stats st;
  hist h;
} G;

static struct mmsghdr rmsgs[RBATCH];
static struct iovec riov[RBATCH];
static uint8_t (*rbufs)[RBUF_SIZE];
static tc_opt dopts[DECODE_OPTS];
static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static inline int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void start_measuring(void) {
  G.measuring = 1;
  G.cpu_at_measure = cpu_seconds();
}

static inline uint64_t rng_next(void) { /* splitmix64 */
  uint64_t z = (G.rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "coap-bench: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

/* ------------------------------------------------------------------ sending */

static void mark_dirty(int32_t k) {
  sock *S = &G.pool[k];
  if (!S->dirty) {
    S->dirty = 1;
    G.dirty[G.ndirty++] = k;
  }
}

static void send_singles(sock *S) {
  uint32_t n = S->nstage, off = 0;
  int tries = 0;
  while (off < n) {
    int r = sendmmsg(S->fd, S->msgs + off, n - off, 0);
    if (r > 0) {
      off += (uint32_t)r;
      continue;
    }
    if (++tries > 64) { /* give up on the rest: CON requests retransmit, NON ones time out */
      G.st.send_errors += n - off;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      struct pollfd p = {.fd = S->fd, .events = POLLOUT};
      (void)poll(&p, 1, 1);
      continue;
    }
    if (errno == ECONNREFUSED) { /* pending ICMP error, now cleared */
      G.st.icmp_errors++;
      continue;
    }
    G.st.send_errors++; /* this datagram fails; skip it */
    off++;
  }
  S->nstage = 0;
}

static void stage(int32_t k, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Send the staged GSO group as individual datagrams. */
static void send_group_as_singles(sock *S) {
  uint32_t n = S->ngso;
  S->ngso = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (S->nstage == STAGE) send_singles(S);
    uint32_t j = S->nstage++;
    S->iov[j][0] = S->giov[2 * i];
    S->iov[j][1] = S->giov[2 * i + 1];
    memset(&S->msgs[j].msg_hdr, 0, sizeof S->msgs[j].msg_hdr);
    S->msgs[j].msg_hdr.msg_iov = S->iov[j];
    S->msgs[j].msg_hdr.msg_iovlen = S->iov[j][1].iov_len ? 2 : 1;
  }
  send_singles(S);
}

/* GSO refused on this path: turn it off on every socket (groups already staged
 * elsewhere are split by flush_sock), send this group as singles. */
static void gso_fallback(sock *S) {
  G.gso = 0;
  for (uint32_t k = 0; k < G.npool; k++) {
    sock *T = &G.pool[k];
    if (T->state == K_FREE || !T->gso_max) continue;
    int z = 0;
    (void)setsockopt(T->fd, IPPROTO_UDP, UDP_SEGMENT, &z, sizeof z);
    T->gso_max = 0;
  }
  send_group_as_singles(S);
}

static void send_gso(sock *S) {
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = S->giov;
  mh.msg_iovlen = 2 * (size_t)S->ngso;
  for (int tries = 0;; tries++) {
    if (sendmsg(S->fd, &mh, 0) >= 0) break;
    if (tries >= 64) {
      G.st.send_errors += S->ngso;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      struct pollfd p = {.fd = S->fd, .events = POLLOUT};
      (void)poll(&p, 1, 1);
      continue;
    }
    if (errno == ECONNREFUSED) {
      G.st.icmp_errors++;
      continue;
    }
    if (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == EMSGSIZE) {
      gso_fallback(S);
      return;
    }
    G.st.send_errors += S->ngso;
    break;
  }
  S->ngso = 0;
}

static void flush_sock(sock *S) {
  if (S->nstage) send_singles(S);
  if (S->ngso > 1 && S->gso_max) send_gso(S);
  else if (S->ngso) send_group_as_singles(S);
}

static void stage(int32_t k, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  sock *S = &G.pool[k];
  if (S->nstage == STAGE) send_singles(S);
  uint32_t i = S->nstage++;
  S->iov[i][0].iov_base = (void *)a;
  S->iov[i][0].iov_len = alen;
  S->iov[i][1].iov_base = (void *)b;
  S->iov[i][1].iov_len = blen;
  memset(&S->msgs[i].msg_hdr, 0, sizeof S->msgs[i].msg_hdr);
  S->msgs[i].msg_hdr.msg_iov = S->iov[i];
  S->msgs[i].msg_hdr.msg_iovlen = blen ? 2 : 1;
  mark_dirty(k);
}

/* An empty ACK or RST (tmpl) carrying mid, written to d. */
static void ctl_put(uint8_t d[4], const uint8_t tmpl[4], uint32_t mid) {
  memcpy(d, tmpl, 4);
  d[2] = (uint8_t)(mid >> 8);
  d[3] = (uint8_t)mid;
}

/* Empty ACK (or RST) carrying mid, from socket k. */
static void stage_ctl(int32_t k, const uint8_t tmpl[4], uint32_t mid) {
  sock *S = &G.pool[k];
  if (S->nstage == STAGE) send_singles(S);
  uint8_t *c = S->ctl[S->nstage];
  ctl_put(c, tmpl, mid);
  stage(k, c, 4, NULL, 0);
}

static void stage_request(slot *s) {
  sock *S = &G.pool[s->sock];
  if (!S->gso_max) {
    stage(s->sock, s->hdr, HDR_LEN, S->tmpl + HDR_LEN, S->tlen - HDR_LEN);
    return;
  }
  /* UDP GSO: every request is exactly tlen bytes, so a group of them goes out in
   * one send and the kernel cuts it into datagrams of UDP_SEGMENT = tlen bytes. */
  if (S->ngso == S->gso_max) {
    if (S->nstage) send_singles(S);
    send_gso(S);
  }
  uint32_t i = S->ngso++;
  S->giov[2 * i].iov_base = s->hdr;
  S->giov[2 * i].iov_len = HDR_LEN;
  S->giov[2 * i + 1].iov_base = S->tmpl + HDR_LEN;
  S->giov[2 * i + 1].iov_len = S->tlen - HDR_LEN; /* may be 0: an empty iovec is fine */
  mark_dirty(s->sock);
}

/* ------------------------------------------------------------------ sockets */

static int port_recently_used(uint16_t port) {
  uint32_t n = G.nports < PORT_HISTORY ? G.nports : PORT_HISTORY;
  for (uint32_t i = 0; i < n; i++)
    if (G.ports[i] == port && G.now - G.port_time[i] < EXCHANGE_LIFETIME_NS) return 1;
  return 0;
}

static uint16_t sock_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int new_fd(void) {
  int fd = socket(G.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int v = G.rcvbuf_want;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  v = SNDBUF_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
  socklen_t vl = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0) G.rcvbuf_actual = v;
  if (connect(fd, (struct sockaddr *)&G.addr, G.addrlen) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A new connected socket on a port not used by this run within EXCHANGE_LIFETIME,
 * or -1. */
static int fresh_fd(void) {
  int rejected[PORT_TRIES], nrej = 0, fd = -1;
  for (int t = 0; t < PORT_TRIES; t++) {
    fd = new_fd();
    if (fd < 0) break;
    uint16_t port = sock_port(fd);
    if (!port_recently_used(port)) break;
    rejected[nrej++] = fd; /* keep it open so the kernel picks another port */
    fd = -1;
  }
  for (int i = 0; i < nrej; i++) close(rejected[i]);
  return fd;
}

/* A fresh_fd watched by epoll with tag (the pool or client index), or -1. */
static int watched_fd(uint32_t tag) {
  int fd = fresh_fd();
  if (fd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
  if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Close a watched_fd and set *fd to -1; its port is remembered so that fresh_fd avoids it
 * for EXCHANGE_LIFETIME. */
static void close_fd(int *fd) {
  G.ports[G.nports % PORT_HISTORY] = sock_port(*fd);
  G.port_time[G.nports % PORT_HISTORY] = G.now;
  G.nports++;
  epoll_ctl(G.ep, EPOLL_CTL_DEL, *fd, NULL);
  close(*fd);
  *fd = -1;
}

/* Open a socket for share sh on a port not used by this run within
 * EXCHANGE_LIFETIME. Returns the pool index or -1. */
static int32_t open_sock(uint32_t sh) {
  int32_t k = -1;
  for (uint32_t i = 0; i < G.npool; i++)
    if (G.pool[i].state == K_FREE) {
      k = (int32_t)i;
      break;
    }
  if (k < 0) return -1;
  sock *S = &G.pool[k];
  if (!S->mid_slot) {
    S->mid_slot = calloc(65536, sizeof *S->mid_slot);
    S->tmpl = malloc(MAX_TEMPLATE);
    if (!S->mid_slot || !S->tmpl) return -1;
  }
  int fd = watched_fd((uint32_t)k);
  if (fd < 0) return -1;
  /* Encode this socket's request template: MID 0, token placeholder. */
  G.req.message_id = 0;
  int n = tc_encode(S->tmpl, MAX_TEMPLATE, TC_UDP, &G.req, G.opts, G.src);
  if (n < (int)HDR_LEN) {
    fprintf(stderr, "coap-bench: tc_encode failed: %s\n", tc_error_name(n));
    exit(2);
  }
  S->fd = fd;
  S->state = K_ACTIVE;
  S->share = sh;
  S->issued = 0;
  S->next_mid = (uint16_t)rng_next(); /* RFC 7252 §4.4: randomised initial MID */
  S->inflight = 0;
  S->tlen = (size_t)n;
  S->nstage = 0;
  S->ngso = 0;
  S->gso_max = 0;
  if (G.gso) {
    uint32_t segs = GSO_BYTES / (uint32_t)n;
    if (segs > GSO_SEGS) segs = GSO_SEGS;
    int sz = n;
    if (segs >= 2 && setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &sz, sizeof sz) == 0) S->gso_max = segs;
  }
  return k;
}

static void close_sock(int32_t k) {
  sock *S = &G.pool[k];
  close_fd(&S->fd);
  S->state = K_FREE;
}

/* ------------------------------------------- timers and receiving, every mode */

/* Set a timer's deadline to t (and the run's next timer if t is earlier). */
static void timer_at(int64_t *deadline, int64_t t) {
  *deadline = t;
  if (t < G.next_timer) G.next_timer = t;
}

/* A CON's first transmission (RFC 7252 §4.2): a random first timeout in *rto_ms and the -t
 * give-up time in *giveup (INT64_MAX if none). Returns the first deadline. */
static int64_t con_start(uint32_t *rto_ms, int64_t *giveup) {
  *giveup = G.timeout_ms ? G.now + G.timeout_ms * NS_PER_MS : INT64_MAX;
  *rto_ms = ACK_TIMEOUT_MS + (uint32_t)(rng_next() % (ACK_RANDOM_EXTRA_MS + 1));
  int64_t t = G.now + (int64_t)*rto_ms * NS_PER_MS;
  return t < *giveup ? t : *giveup;
}

/* A CON whose timer is due: with a retransmission left before the give-up time, count it,
 * double the timeout, set *deadline and return 1; else 0 (give up). */
static int con_retry(uint8_t *retx, uint32_t *rto_ms, int64_t *deadline, int64_t giveup) {
  if (*retx >= MAX_RETRANSMIT || G.now >= giveup) return 0;
  (*retx)++;
  *rto_ms *= 2;
  int64_t t = G.now + (int64_t)*rto_ms * NS_PER_MS;
  *deadline = t < giveup ? t : giveup;
  return 1;
}

/* After an empty ACK: the deadline for the separate response. */
static int64_t sep_deadline(int64_t giveup) {
  return giveup != INT64_MAX ? giveup : G.now + (int64_t)MAX_TRANSMIT_WAIT_MS * NS_PER_MS;
}

/* Decode a received datagram into *m, options in dopts. Returns the option count, or a
 * negative TC_E_* (counted as malformed). */
static int decode_in(const uint8_t *buf, size_t len, tc_msg *m) {
  int r = tc_decode(buf, len, TC_UDP, m, dopts, DECODE_OPTS);
  if (r < 0) G.st.malformed++;
  return r;
}

/* One recvmmsg on fd into rbufs/rmsgs. Returns the datagram count (G.now read after it),
 * 0 after a pending ICMP error (counted; read again), or -1: nothing waiting (EAGAIN, ...). */
static int recv_batch(int fd) {
  int n = recvmmsg(fd, rmsgs, RBATCH, MSG_DONTWAIT, NULL);
  if (n < 0) {
    if (errno != ECONNREFUSED) return -1;
    G.st.icmp_errors++;
    return 0;
  }
  G.now = mono_ns();
  return n;
}

/* ----------------------------------------------------------------- requests */

/* Issue a new request from slot idx of share sh (or leave it idle). */
static void issue(uint32_t sh, uint32_t idx) {
  share *H = &G.shares[sh];
  slot *s = &H->slots[idx];
  s->state = S_IDLE;
  if (!G.issuing) return;
  if (G.measuring && G.count && G.measured_issued >= G.count) return;
  int32_t k = H->active;
  if (k < 0) return;
  sock *S = &G.pool[k];
  if (S->issued >= G.retire_after) { /* MIDs would wrap: retire this socket */
    S->state = K_DRAINING;
    G.retired++;
    k = H->active = open_sock(sh);
    if (k < 0) return; /* slot stays idle until a draining socket closes */
    S = &G.pool[k];
  }
  uint16_t mid = S->next_mid++;
  S->issued++;
  S->inflight++;
  S->mid_slot[mid] = (uint16_t)idx;
  uint64_t tok = G.key ^ ((++G.seq << 16) | idx);
  s->hdr[2] = (uint8_t)(mid >> 8);
  s->hdr[3] = (uint8_t)mid;
  memcpy(s->hdr + 4, &tok, TOKEN_LEN);
  s->token = tok;
  s->mid = mid;
  s->sock = k;
  s->retx = 0;
  s->measured = (uint8_t)G.measuring;
  s->t_sent = G.now;
  s->state = G.non ? S_NON : S_CON;
  int64_t t = con_start(&s->rto_ms, &s->t_giveup);
  if (G.non && G.timeout_ms) t = s->t_giveup;
  timer_at(&s->t_deadline, t);
  G.inflight++;
  G.st.issued++;
  if (s->measured) {
    G.measured_issued++;
    G.measured_inflight++;
  }
  stage_request(s);
}

/* The current request of slot s (in share sh) ends. */
static void finish(uint32_t sh, slot *s) {
  G.pool[s->sock].inflight--;
  G.inflight--;
  if (s->measured) G.measured_inflight--;
  issue(sh, (uint32_t)(s - G.shares[sh].slots));
}

static void complete(uint32_t sh, slot *s, uint32_t code) {
  if (s->measured) {
    G.st.completed++;
    uint32_t cls = code >> 5;
    if (cls == 2) G.st.c2++;
    else if (cls == 4) G.st.c4++;
    else if (cls == 5) G.st.c5++;
    else G.st.cother++;
    hist_add(&G.h, (uint64_t)(G.now - s->t_sent) / 1000u);
    G.t_last = G.now;
  }
  finish(sh, s);
}

static slot *by_mid(int32_t k, uint32_t mid) {
  sock *S = &G.pool[k];
  share *H = &G.shares[S->share];
  uint32_t idx = S->mid_slot[mid];
  if (idx >= H->nslots) return NULL;
  slot *s = &H->slots[idx];
  if (s->state == S_IDLE || s->sock != k || s->mid != mid) return NULL;
  return s;
}

static slot *by_token(int32_t k, const uint8_t *tok, uint32_t len) {
  if (len != TOKEN_LEN) return NULL;
  sock *S = &G.pool[k];
  share *H = &G.shares[S->share];
  uint64_t t;
  memcpy(&t, tok, TOKEN_LEN);
  uint32_t idx = (uint32_t)((t ^ G.key) & 0xffffu);
  if (idx >= H->nslots) return NULL;
  slot *s = &H->slots[idx];
  if (s->state == S_IDLE || s->sock != k || s->token != t) return NULL;
  return s;
}

static void on_datagram(int32_t k, const uint8_t *buf, size_t len) {
  tc_msg m;
  if (decode_in(buf, len, &m) < 0) return;
  uint32_t sh = G.pool[k].share;
  slot *s;
  switch (m.type) {
  case TC_ACK:
  case TC_RST:
    s = by_mid(k, m.message_id);
    if (!s) {
      G.st.unmatched++;
      return;
    }
    if (m.type == TC_RST) {
      if (s->measured) G.st.rst++;
      finish(sh, s);
    } else if (m.code == 0) { /* empty ACK: a separate response follows */
      if (s->state == S_CON) {
        s->state = S_SEP;
        timer_at(&s->t_deadline, sep_deadline(s->t_giveup));
      }
    } else if (s->state == S_CON && m.token_length == TOKEN_LEN &&
               memcmp(buf + m.token_offset, s->hdr + 4, TOKEN_LEN) == 0) {
      complete(sh, s, m.code); /* piggybacked response */
    } else {
      G.st.unmatched++;
    }
    return;
  default: /* CON or NON */
    if (m.code == 0 || (m.code >> 5) == 0) { /* ping or a request to us: reject */
      if (m.code != 0) G.st.unexpected++;
      if (m.type == TC_CON) stage_ctl(k, G.rst_tmpl, m.message_id);
      return;
    }
    /* ACK every CON response, also duplicates whose first ACK was lost */
    if (m.type == TC_CON) stage_ctl(k, G.ack_tmpl, m.message_id);
    s = by_token(k, buf + m.token_offset, m.token_length);
    if (s) complete(sh, s, m.code); /* separate response (or NON response) */
    else G.st.unmatched++;
    return;
  }
}

static void recv_sock(int32_t k) {
  for (int round = 0; round < RECV_ROUNDS; round++) {
    sock *S = &G.pool[k];
    if (S->state == K_FREE) return;
    int n = recv_batch(S->fd);
    if (n < 0) return;
    if (n == 0) continue;
    for (int i = 0; i < n; i++) {
      on_datagram(k, rbufs[i], rmsgs[i].msg_len);
      rmsgs[i].msg_hdr.msg_flags = 0;
    }
    if ((unsigned)n < RBATCH) return;
  }
}

/* Walk every busy slot: fire due timers, recompute the next one. */
static void run_timers(void) {
  int64_t next = INT64_MAX;
  G.next_timer = INT64_MAX;
  for (uint32_t sh = 0; sh < G.nsocks; sh++) {
    share *H = &G.shares[sh];
    for (uint32_t i = 0; i < H->nslots; i++) {
      slot *s = &H->slots[i];
      if (s->state == S_IDLE) continue;
      if (s->t_deadline <= G.now) {
        if (s->state == S_CON && con_retry(&s->retx, &s->rto_ms, &s->t_deadline, s->t_giveup)) {
          if (s->measured) G.st.retx++;
          stage_request(s); /* same MID, same token */
        } else {
          if (s->measured) {
            if (s->state == S_NON) G.st.lost++;
            else G.st.timeouts++;
          }
          finish(sh, s); /* re-issues: a new MID and token */
        }
      }
      if (s->state != S_IDLE && s->t_deadline < next) next = s->t_deadline;
    }
  }
  if (next < G.next_timer) G.next_timer = next;
}

/* Send what is staged; close drained sockets and restart shares left without one. */
static void flush_all(void) {
  for (uint32_t i = 0; i < G.ndirty; i++) {
    sock *S = &G.pool[G.dirty[i]];
    S->dirty = 0;
    if (S->state != K_FREE) flush_sock(S);
    S->nstage = 0;
    S->ngso = 0;
  }
  G.ndirty = 0;
  if (G.retired == 0) return;
  for (uint32_t k = 0; k < G.npool; k++) {
    sock *S = &G.pool[k];
    if (S->state != K_DRAINING || S->inflight) continue;
    uint32_t sh = S->share;
    close_sock((int32_t)k);
    share *H = &G.shares[sh];
    if (H->active < 0 && (H->active = open_sock(sh)) >= 0) {
      for (uint32_t i = 0; i < H->nslots; i++)
        if (H->slots[i].state == S_IDLE) issue(sh, i);
      flush_all(); /* bounded: at most one level deeper per closed socket */
      return;
    }
  }
}

/* -------------------------------------------------------------- arguments */

static void usage(FILE *f) {
  fprintf(f,
          "usage: coap-bench [options] coap://HOST[:PORT]/path?query\n"
          "  HOST is an IPv4 literal, an IPv6 literal in brackets, or a name\n"
          "  -c N        outstanding requests in total (default 64, max %u)\n"
          "  -k K        sockets, requests spread evenly (default 4, max %u)\n"
          "  -d SECONDS  measured duration (default 10)\n"
          "  -n COUNT    stop after COUNT measured requests (whichever of -d/-n first)\n"
          "  -w SECONDS  warm-up, not counted (default 1)\n"
          "  -N          send NON requests instead of CON\n"
          "  -m METHOD   get|post|put|delete|fetch|patch|ipatch (default get)\n"
          "  -p TEXT     request payload\n"
          "  -f FORMAT   Content-Format number for the payload (default none)\n"
          "  -t MS       per-request give-up timeout in milliseconds\n"
          "  --json      one JSON object on stdout instead of the table\n"
          "  --no-gso    send one datagram per syscall slot instead of UDP GSO batches\n"
          "  --block2 SIZE  block-wise downloads (RFC 7959): each of the -c clients, on its own\n"
          "              socket, GETs the whole body with Block2 (blocks of SIZE = 16..1024),\n"
          "              again and again until -n downloads or -d seconds\n"
          "  --verify    --block2: check that body byte i is i %% 251\n"
          "  --observe N register N observers (GET Observe 0) over -k sockets, -c at a time,\n"
          "              then count notifications over -d seconds after -w warm-up\n"
          "  --reg-time SECONDS  --observe: registrations still open then fail (default 60)\n"
          "  -h, --help  this help\n",
          MAX_SLOTS, MAX_SHARES);
}

static double parse_double(const char *s, const char *what, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) die("invalid %s", what);
  return v;
}

static uint64_t parse_uint(const char *s, const char *what, uint64_t lo, uint64_t hi) {
  char *end;
  errno = 0;
  if (*s == '-' || *s == '+') die("invalid %s", what);
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) die("invalid %s", what);
  return v;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t g_srclen;

/* Append a percent-decoded segment [p, p+n) as option `number`. */
static void add_opt(uint32_t number, const char *p, size_t n, int decode) {
  if (G.nopts >= MAX_URI_OPTS) die("too many path/query segments in %s", G.url);
  size_t start = g_srclen;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (decode && c == '%') {
      int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
      if (hi < 0 || lo < 0) die("bad percent-encoding in %s", G.url);
      c = hi * 16 + lo;
      i += 2;
    }
    if (g_srclen >= sizeof G.src - TOKEN_LEN) die("request too large: %s", G.url);
    G.src[g_srclen++] = (uint8_t)c;
  }
  if (g_srclen - start > 255) die("path or query segment longer than 255 bytes in %s", G.url);
  G.opts[G.nopts].number = number;
  G.opts[G.nopts].offset = (uint32_t)start;
  G.opts[G.nopts].length = (uint32_t)(g_srclen - start);
  G.nopts++;
}

static void parse_url(const char *url) {
  if (strncmp(url, "coap://", 7) != 0) die("URL must start with coap:// : %s", url);
  const char *p = url + 7;
  char host[256];
  const char *hend;
  size_t hl;
  int v6 = 0;
  if (*p == '[') {
    hend = strchr(p, ']');
    if (!hend) die("unterminated [IPv6] host in %s", url);
    hl = (size_t)(hend - p - 1);
    if (hl == 0 || hl >= sizeof host) die("bad host in %s", url);
    memcpy(host, p + 1, hl);
    host[hl] = 0;
    hend++;
    v6 = 1;
  } else {
    hend = p + strcspn(p, ":/?#");
    hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof host) die("bad host in %s", url);
    memcpy(host, p, hl);
    host[hl] = 0;
  }
  if (v6) { /* zone id: fe80::1%25eth0 */
    char *z = strstr(host, "%25");
    if (z) memmove(z + 1, z + 3, strlen(z + 3) + 1);
  }
  const char *q = hend;
  char port[8] = "5683";
  if (*q == ':') {
    q++;
    size_t pl = strcspn(q, "/?#");
    if (pl == 0 || pl >= sizeof port) die("bad port in %s", url);
    memcpy(port, q, pl);
    port[pl] = 0;
    parse_uint(port, "port", 1, 65535);
    q += pl;
  }
  if (*q == '#') die("fragment not allowed in a CoAP URI: %s", url);
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  int numeric = getaddrinfo(host, port, &hints, &ai) == 0;
  if (!numeric) {
    if (v6) die("bad IPv6 literal in %s", url);
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) die("cannot resolve host in %s", url);
  }
  memcpy(&G.addr, ai->ai_addr, ai->ai_addrlen);
  G.addrlen = ai->ai_addrlen;
  freeaddrinfo(ai);
  g_srclen = TOKEN_LEN; /* src[0..8): token placeholder */
  if (!numeric) add_opt(3, host, strlen(host), 0); /* Uri-Host */
  /* RFC 7252 §6.4: path segments after the leading '/', empty ones kept, "/" alone none */
  const char *path = q, *pe = q + strcspn(q, "?#");
  if (*path == '/' && pe - path > 1) {
    const char *seg = path + 1;
    for (;;) {
      const char *e = seg;
      while (e < pe && *e != '/') e++;
      add_opt(11, seg, (size_t)(e - seg), 1);
      if (e >= pe) break;
      seg = e + 1;
    }
  }
  if (*pe == '?') {
    const char *seg = pe + 1, *qe = seg + strcspn(seg, "#");
    if (*qe == '#') die("fragment not allowed in a CoAP URI: %s", url);
    while (seg < qe) {
      const char *e = seg;
      while (e < qe && *e != '&') e++;
      add_opt(15, seg, (size_t)(e - seg), 1);
      seg = e + 1;
    }
  } else if (*pe == '#') {
    die("fragment not allowed in a CoAP URI: %s", url);
  }
}

static const char *method_names[] = {NULL, "GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "iPATCH"};

static void build_request(void) {
  memset(G.src, 0, TOKEN_LEN);
  if (G.content_format >= 0) {
    size_t start = g_srclen;
    uint32_t cf = (uint32_t)G.content_format; /* uint: minimal big-endian bytes */
    if (cf > 0xff) G.src[g_srclen++] = (uint8_t)(cf >> 8);
    if (cf > 0) G.src[g_srclen++] = (uint8_t)cf;
    G.opts[G.nopts].number = 12;
    G.opts[G.nopts].offset = (uint32_t)start;
    G.opts[G.nopts].length = (uint32_t)(g_srclen - start);
    G.nopts++;
  }
  size_t plen = G.payload ? strlen(G.payload) : 0;
  if (plen > sizeof G.src - g_srclen) die("payload too large%s", "");
  memset(&G.req, 0, sizeof G.req);
  G.req.type = G.non ? TC_NON : TC_CON;
  G.req.code = G.method;
  G.req.token_offset = 0;
  G.req.token_length = TOKEN_LEN;
  G.req.option_count = G.nopts;
  if (plen) {
    memcpy(G.src + g_srclen, G.payload, plen);
    G.req.payload_offset = (uint32_t)g_srclen;
    G.req.payload_length = (uint32_t)plen;
  }
  /* Check the template layout once: fixed header then the 8-byte token. */
  static uint8_t probe[MAX_TEMPLATE];
  int n = tc_encode(probe, sizeof probe, TC_UDP, &G.req, G.opts, G.src);
  if (n == TC_E_BUFFER_TOO_SMALL) die("request larger than a UDP datagram%s", "");
  if (n < 0) {
    fprintf(stderr, "coap-bench: cannot encode the request: %s\n", tc_error_name(n));
    exit(2);
  }
  tc_msg m;
  int r = tc_decode(probe, (size_t)n, TC_UDP, &m, dopts, DECODE_OPTS);
  if (r < 0 || m.token_offset != 4 || m.token_length != TOKEN_LEN || m.code != G.method) {
    fprintf(stderr, "coap-bench: encoder self-check failed (%s)\n", r < 0 ? tc_error_name(r) : "layout");
    exit(2);
  }
  /* empty ACK and RST templates */
  tc_msg e;
  memset(&e, 0, sizeof e);
  e.type = TC_ACK;
  if (tc_encode(G.ack_tmpl, 4, TC_UDP, &e, NULL, NULL) != 4) die("encoder failed on empty ACK%s", "");
  e.type = TC_RST;
  if (tc_encode(G.rst_tmpl, 4, TC_UDP, &e, NULL, NULL) != 4) die("encoder failed on RST%s", "");
}

/* -------------------------------------------------- shared by --block2 and --observe */

#define OPT_ETAG 4u
#define OPT_OBSERVE 6u
#define OPT_BLOCK2 23u
#define OPT_SIZE2 28u
#define CODE_GET 1u
#define OPT_ECHO 252u /* RFC 9175 */
#define CODE_UNAUTHORIZED 0x81u /* 4.01: with Echo, the server's amplification challenge */
#define ECHO_MAX 40u            /* RFC 9175 §2.2.1: Echo values are 1..40 bytes */
#define ECHO_TRIES 2u           /* Echo challenges answered per request */
#define ECHO_EXTRA (3u + ECHO_MAX) /* bytes an Echo option adds after Block2/Observe */
#define OBS_SEQ_HALF (1u << 23) /* RFC 7641 §3.4 */
#define OBS_STALE_NS (128LL * NS_PER_S)

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

/* Minimal big-endian bytes of an option uint value. Returns the length (0..4). */
static uint32_t uint_put(uint32_t v, uint8_t out[4]) {
  uint32_t n = v > 0xffffffu ? 4u : v > 0xffffu ? 3u : v > 0xffu ? 2u : v ? 1u : 0u;
  for (uint32_t i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8u * (n - 1u - i)));
  return n;
}

static uint32_t uint_get(const uint8_t *p, uint32_t len) {
  uint32_t v = 0;
  for (uint32_t i = 0; i < len; i++) v = v << 8 | p[i];
  return v;
}

/* Encode a CON GET of the URL with token tok, Message ID mid, one more option
 * (xnum, xval[0..xlen)) and, when elen > 0, an Echo option (echo[0..elen), elen <=
 * ECHO_MAX). Returns the length or a negative TC_E_*. */
static int encode_get(uint8_t *out, size_t cap, uint32_t mid, uint64_t tok, uint32_t xnum,
                      const uint8_t *xval, uint32_t xlen, const uint8_t *echo, uint32_t elen) {
  tc_opt o[MAX_URI_OPTS + 4];
  if (xlen > 4u || elen > ECHO_MAX || g_srclen + 4u + ECHO_MAX > sizeof G.src) return TC_E_INVALID;
  memcpy(o, G.opts, G.nopts * sizeof *o);
  memcpy(G.src, &tok, TOKEN_LEN);
  if (xlen) memcpy(G.src + g_srclen, xval, xlen);
  o[G.nopts].number = xnum;
  o[G.nopts].offset = (uint32_t)g_srclen;
  o[G.nopts].length = xlen;
  uint32_t nopt = G.nopts + 1u;
  if (elen) { /* tc_encode sorts: Echo (252) lands after Uri-Path, Block2, ... */
    memcpy(G.src + g_srclen + 4u, echo, elen);
    o[nopt].number = OPT_ECHO;
    o[nopt].offset = (uint32_t)g_srclen + 4u;
    o[nopt].length = elen;
    nopt++;
  }
  tc_msg m;
  memset(&m, 0, sizeof m);
  m.type = TC_CON;
  m.code = CODE_GET;
  m.message_id = mid;
  m.token_length = TOKEN_LEN;
  m.option_count = nopt;
  return tc_encode(out, cap, TC_UDP, &m, o, G.src);
}

/* If the response m (options in dopts) is a 4.01 carrying an Echo option of 1..40 bytes
 * (RFC 9175 §2.4: the server asks us to prove we receive at this address), copies
 * the value to echo and returns its length; otherwise 0. */
static uint32_t echo_challenge(const uint8_t *buf, const tc_msg *m, int nopt, uint8_t echo[ECHO_MAX]) {
  if (m->code != CODE_UNAUTHORIZED) return 0;
  for (int k = 0; k < nopt; k++)
    if (dopts[k].number == OPT_ECHO) {
      uint32_t len = dopts[k].length;
      if (len == 0 || len > ECHO_MAX) return 0;
      memcpy(echo, buf + dopts[k].offset, len);
      return len;
    }
  return 0;
}

/* Send one datagram on fd, riding out a full send buffer. Returns 0 or -1 (counted). */
static int send_one(int fd, const uint8_t *p, size_t len) {
  for (int tries = 0; tries < 64; tries++) {
    if (send(fd, p, len, 0) >= 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      (void)poll(&pf, 1, 1);
      continue;
    }
    if (errno == ECONNREFUSED) { /* a pending ICMP error, now cleared */
      G.st.icmp_errors++;
      continue;
    }
    break;
  }
  G.st.send_errors++;
  return -1;
}

/* The time window: warm-up from t0, then the measured seconds. */
static void set_window(int64_t t0) {
  G.t_measure = t0 + (int64_t)(G.warmup * 1e9);
  G.t_end = G.t_measure + (int64_t)(G.duration * 1e9);
}

static double window_elapsed(int ended_by_count) {
  double e;
  if (!G.measuring) e = 0;
  else if (ended_by_count) e = (double)(G.t_last - G.t_measure) / 1e9;
  else if (G.now >= G.t_end) e = G.duration;
  else e = (double)(G.now - G.t_measure) / 1e9; /* interrupted */
  return e < 0 ? 0 : e;
}

/* Start the measured window once the warm-up is over. */
static void measure_if_due(void) {
  if (!G.measuring && G.now >= G.t_measure) start_measuring();
}

/* The top of a loop of the requests and --block2 modes: read the clock, start the window when
 * due. Returns 1 when the run is over (*ended_by_count set when -n was reached). */
static int window_over(int *ended_by_count) {
  G.now = mono_ns();
  measure_if_due();
  if (G.now >= G.t_end) return 1;
  if (G.measuring && G.count && G.measured_issued >= G.count && G.measured_inflight == 0) {
    *ended_by_count = 1;
    return 1;
  }
  return 0;
}

/* The next wake-up: the end of the window, the end of the warm-up or the next timer. */
static int64_t window_wake(void) {
  int64_t wake = G.t_end;
  if (!G.measuring && G.t_measure < wake) wake = G.t_measure;
  if (G.next_timer < wake) wake = G.next_timer;
  return wake;
}

/* Wait for socket events until wake (INT64_MAX: no bound), then read the clock. Returns the
 * event count (0 if interrupted) or -1 after an epoll error (reported). */
static int wait_events(struct epoll_event *evs, int cap, int64_t wake) {
  int timeout = -1;
  if (wake != INT64_MAX) {
    int64_t wait_ns = wake - G.now;
    timeout = wait_ns <= 0 ? 0 : (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
  }
  int n = epoll_wait(G.ep, evs, cap, timeout);
  if (n < 0 && errno != EINTR) {
    perror("coap-bench: epoll_wait");
    return -1;
  }
  G.now = mono_ns();
  return n < 0 ? 0 : n;
}

static void json_url(void) {
  putchar('"');
  for (const char *c = G.url; *c; c++) {
    if (*c == '"' || *c == '\\') printf("\\%c", *c);
    else if ((unsigned char)*c < 0x20) printf("\\u%04x", *c);
    else putchar(*c);
  }
  putchar('"');
}

/* ------------------------------------------------------------- --block2 SIZE */

/*
 * Every client has its own socket (so the server sees -c distinct peers) and downloads
 * the resource block by block (RFC 7959 §2.4), one CON GET at a time: Block2 NUM 0 at the
 * SZX of SIZE, then NUM + 1 until a block comes with M = 0. A smaller SZX chosen by the
 * server is followed. Checked on every block: a 2.xx code, the block's offset (NUM x
 * size = bytes so far), full-size blocks while M = 1, the same ETag (or none) as block 0,
 * Size2 against the total, and with --verify the content (byte i = i % 251). Every body
 * must have the length of the first. A failed download restarts from block 0.
 */

#define MAX_BCLIENTS 4096u

enum bstate { B_IDLE = 0, B_CON = 1, B_SEP = 2 };

typedef struct bclient {
  int fd;
  uint8_t state;    /* bstate */
  uint8_t retx;
  uint8_t measured; /* this download started inside the measured window */
  uint8_t done_one; /* finished a download: counts for the first round */
  uint8_t etag_len; /* ETag of block 0 (0 = none), 0xff before block 0 */
  uint8_t etag[8];
  uint16_t mid, next_mid;
  uint32_t issued;  /* Message IDs used on this socket */
  uint32_t num, szx;
  uint32_t rto_ms;
  uint32_t size2; /* Size2 seen in this download, 0 = none */
  uint32_t req_len;
  uint8_t echo_len;   /* > 0: the next request carries echo (answering a 4.01 challenge) */
  uint8_t echo_tries; /* challenges answered for the current block */
  uint8_t echo[ECHO_MAX];
  uint64_t token;
  uint64_t got; /* body bytes received in this download */
  int64_t t_start, t_deadline, t_giveup;
  uint8_t *req; /* the request in flight, kept for retransmissions */
} bclient;

static struct {
  bclient *c;
  uint32_t n, szx0, req_cap, min_szx, first_left;
  int verify;
  uint64_t body_len; /* length of the first complete body; UINT64_MAX until then */
  uint64_t downloads, bytes, requests, failed, no_block2, retired, echo_challenges;
  uint64_t window_bytes; /* checked body bytes received inside the measured window */
  uint64_t e_code, e_etag, e_length, e_block, e_content;
  int etag_seen;
  int64_t first_round_ns; /* -1 until every client completed a download */
} B;

static int b_open(uint32_t i) {
  bclient *c = &B.c[i];
  int fd = watched_fd(i);
  if (fd < 0) return -1;
  c->fd = fd;
  c->issued = 0;
  c->next_mid = (uint16_t)rng_next();
  return 0;
}

/* Move client i to a fresh socket before its Message IDs would wrap (see -c retirement). */
static void b_retire(uint32_t i) {
  bclient *c = &B.c[i];
  close_fd(&c->fd);
  B.retired++;
  if (b_open(i) != 0) die("cannot open a UDP socket to %s", G.url);
}

/* Send the request for block c->num at c->szx. */
static void b_request(uint32_t i) {
  bclient *c = &B.c[i];
  if (c->issued >= G.retire_after) b_retire(i); /* blocks are addressed by NUM: any peer may ask */
  uint16_t mid = c->next_mid++;
  c->issued++;
  uint64_t tok = G.key ^ ((++G.seq << 16) | i);
  uint8_t v[4];
  uint32_t vl = uint_put(c->num << 4 | c->szx, v);
  int n = encode_get(c->req, B.req_cap, mid, tok, OPT_BLOCK2, v, vl, c->echo, c->echo_len);
  if (n < 0) {
    fprintf(stderr, "coap-bench: cannot encode a block request: %s\n", tc_error_name(n));
    exit(2);
  }
  c->req_len = (uint32_t)n;
  c->mid = mid;
  c->token = tok;
  c->retx = 0;
  c->state = B_CON;
  timer_at(&c->t_deadline, con_start(&c->rto_ms, &c->t_giveup));
  B.requests++;
  (void)send_one(c->fd, c->req, c->req_len); /* a failed send is retransmitted */
}

/* Start client i's next download, or leave it idle when the run is over. */
static void b_start(uint32_t i) {
  bclient *c = &B.c[i];
  c->state = B_IDLE;
  if (G.now >= G.t_end) return;
  if (G.measuring && G.count && G.measured_issued >= G.count) return;
  if (B.body_len != UINT64_MAX && c->issued > 0) { /* retire between downloads, not inside one */
    uint32_t size = tc_szx_size(B.min_szx);
    uint64_t blocks = B.body_len ? (B.body_len + size - 1u) / size : 1u;
    if (c->issued + blocks > G.retire_after) b_retire(i);
  }
  c->num = 0;
  c->szx = B.szx0;
  c->got = 0;
  c->etag_len = 0xff;
  c->size2 = 0;
  c->echo_len = 0;
  c->echo_tries = 0;
  c->t_start = G.now;
  c->measured = (uint8_t)G.measuring;
  G.inflight++;
  if (c->measured) {
    G.measured_issued++;
    G.measured_inflight++;
  }
  b_request(i);
}

/* Client i's download ends (ok: the whole body arrived and passed the checks). */
static void b_end(uint32_t i, int ok) {
  bclient *c = &B.c[i];
  G.inflight--;
  if (c->measured) G.measured_inflight--;
  if (ok) {
    if (!c->done_one) {
      c->done_one = 1;
      if (--B.first_left == 0) B.first_round_ns = G.now - G.t_start;
    }
    if (c->measured && G.now < G.t_end) {
      B.downloads++;
      B.bytes += c->got;
      hist_add(&G.h, (uint64_t)(G.now - c->t_start) / 1000u);
      G.t_last = G.now;
    }
  } else {
    B.failed++;
  }
  b_start(i);
}

/* A response (piggybacked or separate) to client i's block request. */
static void b_response(uint32_t i, const uint8_t *buf, const tc_msg *m, int nopt) {
  bclient *c = &B.c[i];
  if ((m->code >> 5) != 2) {
    if (m->code == CODE_UNAUTHORIZED && c->echo_tries < ECHO_TRIES) {
      uint32_t elen = echo_challenge(buf, m, nopt, c->echo);
      if (elen) { /* ask for the same block again (new MID and token) with the Echo */
        c->echo_len = (uint8_t)elen;
        c->echo_tries++;
        B.echo_challenges++;
        b_request(i);
        return;
      }
    }
    B.e_code++;
    b_end(i, 0);
    return;
  }
  c->echo_len = 0; /* the server answered: this socket is verified, the Echo is spent */
  c->echo_tries = 0;
  int have_block = 0, have_etag = 0;
  uint32_t bv = 0, size2 = 0, elen = 0;
  const uint8_t *etag = NULL;
  for (int k = 0; k < nopt; k++) {
    const tc_opt *o = &dopts[k];
    if (o->number == OPT_BLOCK2 && !have_block) {
      if (o->length > 3) {
        B.e_block++;
        b_end(i, 0);
        return;
      }
      have_block = 1;
      bv = uint_get(buf + o->offset, o->length);
    } else if (o->number == OPT_ETAG && !have_etag) {
      have_etag = 1;
      etag = buf + o->offset;
      elen = o->length > 8 ? 8 : o->length;
    } else if (o->number == OPT_SIZE2 && o->length <= 4) {
      size2 = uint_get(buf + o->offset, o->length);
    }
  }
  const uint8_t *p = buf + m->payload_offset;
  uint32_t plen = m->payload_length;
  uint32_t more = 0, szx = c->szx;
  uint64_t off = 0;
  if (have_block) {
    szx = bv & 7u;
    more = (bv >> 3) & 1u;
    off = (uint64_t)(bv >> 4) << (szx + 4u);
    uint32_t size = tc_szx_size(szx);
    if (szx == 7u || szx > c->szx || off != c->got || plen > size || (more && plen != size)) {
      B.e_block++;
      b_end(i, 0);
      return;
    }
  } else if (c->num != 0) { /* Block2 vanished in the middle of a body */
    B.e_block++;
    b_end(i, 0);
    return;
  } else {
    B.no_block2++; /* the whole body in one response */
  }
  if (c->etag_len == 0xff) {
    c->etag_len = (uint8_t)(have_etag ? elen : 0u);
    if (have_etag) memcpy(c->etag, etag, elen), B.etag_seen = 1;
  } else if ((uint32_t)have_etag != (c->etag_len != 0) || (have_etag && (elen != c->etag_len || memcmp(etag, c->etag, elen) != 0))) {
    B.e_etag++;
    b_end(i, 0);
    return;
  }
  if (size2) {
    if (c->size2 && c->size2 != size2) {
      B.e_length++;
      b_end(i, 0);
      return;
    }
    c->size2 = size2;
  }
  if (B.verify) {
    uint32_t r = (uint32_t)(off % 251u);
    for (uint32_t j = 0; j < plen; j++) {
      if (p[j] != r) {
        B.e_content++;
        b_end(i, 0);
        return;
      }
      if (++r == 251u) r = 0;
    }
  }
  c->got += plen;
  if (G.measuring && G.now < G.t_end) B.window_bytes += plen;
  if (szx < B.min_szx) B.min_szx = szx;
  if (more) {
    c->num = (bv >> 4) + 1u;
    c->szx = szx;
    if (c->num > 0xfffffu) { /* NUM is 20 bits */
      B.e_block++;
      b_end(i, 0);
      return;
    }
    b_request(i);
    return;
  }
  if ((c->size2 && c->got != c->size2) || (B.body_len != UINT64_MAX && c->got != B.body_len)) {
    B.e_length++;
    b_end(i, 0);
    return;
  }
  if (B.body_len == UINT64_MAX) B.body_len = c->got;
  b_end(i, 1);
}

static void b_ctl(bclient *c, const uint8_t tmpl[4], uint32_t mid) {
  uint8_t d[4];
  ctl_put(d, tmpl, mid);
  (void)send_one(c->fd, d, 4);
}

static void b_datagram(uint32_t i, const uint8_t *buf, size_t len) {
  tc_msg m;
  int r = decode_in(buf, len, &m);
  if (r < 0) return;
  bclient *c = &B.c[i];
  int tok_ok = m.token_length == TOKEN_LEN && memcmp(buf + m.token_offset, &c->token, TOKEN_LEN) == 0;
  if (m.type == TC_ACK || m.type == TC_RST) {
    if (c->state != B_CON || m.message_id != c->mid) {
      G.st.unmatched++;
    } else if (m.type == TC_RST) {
      G.st.rst++;
      b_end(i, 0);
    } else if (m.code == 0) { /* empty ACK: a separate response follows */
      c->state = B_SEP;
      timer_at(&c->t_deadline, sep_deadline(c->t_giveup));
    } else if (tok_ok) {
      b_response(i, buf, &m, r);
    } else {
      G.st.unmatched++;
    }
    return;
  }
  if ((m.code >> 5) == 0) { /* a ping or a request to us */
    if (m.code != 0) G.st.unexpected++;
    if (m.type == TC_CON) b_ctl(c, G.rst_tmpl, m.message_id);
    return;
  }
  if (m.type == TC_CON) b_ctl(c, G.ack_tmpl, m.message_id);
  if (c->state != B_IDLE && tok_ok) b_response(i, buf, &m, r);
  else G.st.unmatched++;
}

static void b_recv(uint32_t i) {
  for (int round = 0; round < RECV_ROUNDS; round++) {
    bclient *c = &B.c[i];
    int fd = c->fd;
    int n = recv_batch(fd);
    if (n < 0) return;
    if (n == 0) continue;
    for (int j = 0; j < n && c->fd == fd; j++) /* stop if the client moved to a new socket */
      b_datagram(i, rbufs[j], rmsgs[j].msg_len);
    if ((unsigned)n < RBATCH || c->fd != fd) return;
  }
}

static void b_timers(void) {
  int64_t next = INT64_MAX;
  G.next_timer = INT64_MAX;
  for (uint32_t i = 0; i < B.n; i++) {
    bclient *c = &B.c[i];
    if (c->state != B_IDLE && c->t_deadline <= G.now) {
      if (c->state == B_CON && con_retry(&c->retx, &c->rto_ms, &c->t_deadline, c->t_giveup)) {
        G.st.retx++;
        (void)send_one(c->fd, c->req, c->req_len); /* same MID, same token */
      } else {
        G.st.timeouts++;
        b_end(i, 0);
      }
    }
    if (c->state != B_IDLE && c->t_deadline < next) next = c->t_deadline;
  }
  if (next < G.next_timer) G.next_timer = next;
}

static void b_print(double elapsed) {
  const hist *h = &G.h;
  uint64_t errors = B.e_code + B.e_etag + B.e_length + B.e_block + B.e_content + G.st.rst + G.st.timeouts;
  double first = B.first_round_ns < 0 ? -1.0 : (double)B.first_round_ns / 1e9;
  double dps = elapsed > 0 ? (double)B.downloads / elapsed : 0.0;
  double bps = elapsed > 0 ? (double)B.window_bytes / elapsed : 0.0;
  uint32_t used = B.min_szx == 7u ? 0u : tc_szx_size(B.min_szx);
  if (G.json) {
    printf("{\"mode\":\"block2\",\"url\":");
    json_url();
    printf(",\"clients\":%u,\"block_size\":%u,\"block_size_used\":%u,\"verify\":%s,\"warmup_s\":%.3f,"
           "\"elapsed_s\":%.6f,\"downloads\":%" PRIu64 ",\"downloads_per_s\":%.2f,\"body_bytes\":%" PRIu64
           ",\"window_bytes\":%" PRIu64 ",\"bytes_per_s\":%.1f,\"body_length\":%" PRId64 ",\"etag\":%s,\"first_round_s\":",
           B.n, tc_szx_size(B.szx0), used, B.verify ? "true" : "false", G.warmup, elapsed, B.downloads, dps,
           B.bytes, B.window_bytes, bps, B.body_len == UINT64_MAX ? (int64_t)-1 : (int64_t)B.body_len,
           B.etag_seen ? "true" : "false");
    if (first < 0) printf("null");
    else printf("%.6f", first);
    printf(",\"first_round_done\":%u,\"download_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,"
           "\"mean\":%.3f},\"block_requests\":%" PRIu64 ",\"retransmissions\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"failed_downloads\":%" PRIu64 ",\"error_kinds\":{\"code\":%" PRIu64
           ",\"etag\":%" PRIu64 ",\"length\":%" PRIu64 ",\"block\":%" PRIu64 ",\"content\":%" PRIu64
           ",\"rst\":%" PRIu64 ",\"timeouts\":%" PRIu64 "},\"no_block2\":%" PRIu64 ",\"unmatched\":%" PRIu64
           ",\"malformed\":%" PRIu64 ",\"unexpected\":%" PRIu64 ",\"send_errors\":%" PRIu64
           ",\"icmp_errors\":%" PRIu64 ",\"sockets_retired\":%" PRIu64 ",\"echo_challenges\":%" PRIu64
           ",\"cpu_s\":%.3f}\n",
           B.n - B.first_left, (double)hist_pct(h, 5000) / 1e3, (double)hist_pct(h, 9000) / 1e3,
           (double)hist_pct(h, 9900) / 1e3, (double)h->max / 1e3,
           h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0, B.requests, G.st.retx, errors, B.failed,
           B.e_code, B.e_etag, B.e_length, B.e_block, B.e_content, G.st.rst, G.st.timeouts, B.no_block2,
           G.st.unmatched, G.st.malformed, G.st.unexpected, G.st.send_errors, G.st.icmp_errors, B.retired,
           B.echo_challenges, G.cpu_used);
    return;
  }
  printf("coap-bench --block2 %u %s\n", tc_szx_size(B.szx0), G.url);
  printf("  %u clients (one socket each), %.2f s measured after %.2f s warm-up%s\n\n", B.n, elapsed,
         G.warmup, B.verify ? ", content verified" : "");
  printf("  body            %" PRId64 " bytes, blocks of %u (0: none seen), ETag %s\n",
         B.body_len == UINT64_MAX ? (int64_t)-1 : (int64_t)B.body_len, used, B.etag_seen ? "yes" : "no");
  if (first < 0) printf("  first round     not complete (%u of %u clients)\n", B.n - B.first_left, B.n);
  else printf("  first round     %.3f s (every client's first download)\n", first);
  printf("  downloads       %" PRIu64 "  (%.2f/s)\n", B.downloads, dps);
  printf("  body bytes      %.1f MB/s (every checked block received in the window)\n", bps / 1e6);
  printf("  download (ms)   p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", (double)hist_pct(h, 5000) / 1e3,
         (double)hist_pct(h, 9000) / 1e3, (double)hist_pct(h, 9900) / 1e3, (double)h->max / 1e3);
  printf("  block requests  %" PRIu64 "  retransmissions %" PRIu64 "  Echo challenges %" PRIu64 "\n", B.requests,
         G.st.retx, B.echo_challenges);
  printf("  errors          %" PRIu64 " (code %" PRIu64 ", etag %" PRIu64 ", length %" PRIu64 ", block %" PRIu64
         ", content %" PRIu64 ", rst %" PRIu64 ", timeouts %" PRIu64 ")\n",
         errors, B.e_code, B.e_etag, B.e_length, B.e_block, B.e_content, G.st.rst, G.st.timeouts);
  if (B.no_block2) printf("  note            %" PRIu64 " bodies came without Block2\n", B.no_block2);
  printf("  other           unmatched %" PRIu64 "  malformed %" PRIu64 "  send %" PRIu64 "  icmp %" PRIu64
         "  sockets retired %" PRIu64 "\n",
         G.st.unmatched, G.st.malformed, G.st.send_errors, G.st.icmp_errors, B.retired);
  printf("  generator       %.0f%% of a core\n", elapsed > 0 ? 100.0 * G.cpu_used / elapsed : 0.0);
}

static int run_block2(void) {
  B.n = G.conns;
  if (B.n > MAX_BCLIENTS) die("--block2: at most 4096 clients (-c)%s", "");
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < B.n + 64u) {
    rl.rlim_cur = rl.rlim_max < B.n + 64u ? rl.rlim_max : B.n + 64u;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  uint8_t v[4] = {0xff, 0xff, 0xff, 0};
  uint8_t e[ECHO_MAX] = {0};
  int need = encode_get(NULL, 0, 0xffff, 0, OPT_BLOCK2, v, 3, e, ECHO_MAX);
  if (need < 0) die("cannot encode the block request%s", "");
  B.req_cap = (uint32_t)need; /* room for the largest Block2 and Echo */
  B.c = calloc(B.n, sizeof *B.c);
  uint8_t *reqs = malloc((size_t)B.n * B.req_cap);
  if (!B.c || !reqs) die("out of memory%s", "");
  G.now = mono_ns();
  for (uint32_t i = 0; i < B.n; i++) {
    B.c[i].req = reqs + (size_t)i * B.req_cap;
    if (b_open(i) != 0) die("cannot open a UDP socket to %s (raise the open-files limit?)", G.url);
  }
  B.min_szx = 7;
  B.body_len = UINT64_MAX;
  B.first_left = B.n;
  B.first_round_ns = -1;
  G.now = G.t_start = mono_ns();
  set_window(G.t_start);
  if (G.warmup <= 0) start_measuring();
  G.next_timer = INT64_MAX;
  for (uint32_t i = 0; i < B.n; i++) b_start(i);

  struct epoll_event evs[256];
  int ended_by_count = 0;
  while (!g_stop && !window_over(&ended_by_count)) {
    int n = wait_events(evs, 256, window_wake());
    if (n < 0) break;
    measure_if_due();
    for (int i = 0; i < n; i++) b_recv(evs[i].data.u32);
    if (G.now >= G.next_timer) b_timers();
  }
  G.now = mono_ns();
  G.cpu_used = G.measuring ? cpu_seconds() - G.cpu_at_measure : 0;
  b_print(window_elapsed(ended_by_count));
  fflush(stdout);
  for (uint32_t i = 0; i < B.n; i++)
    if (B.c[i].fd >= 0) close(B.c[i].fd);
  free(reqs);
  free(B.c);
  if (B.downloads == 0) {
    fprintf(stderr, "coap-bench: no download completed (%" PRIu64 " failed)\n", B.failed);
    return 1;
  }
  return 0;
}

/* -------------------------------------------------------------- --observe N */

/*
 * N observers (distinct tokens; observer i on socket i % K) register with a CON GET
 * carrying Observe 0, at most -c registrations outstanding (retransmitted as CON
 * requests). A registration succeeds with a 2.xx response carrying Observe. Once every
 * registration has succeeded or failed, the warm-up starts, then the measured window,
 * in which notifications are counted. CON notifications get an empty ACK; NON ones
 * nothing. A notification whose Observe value equals the last one is a duplicate; an
 * older one (RFC 7641 §3.4) is stale; neither counts. A non-2.xx notification or a 2.xx
 * without Observe ends that observation.
 */

enum ostate { O_WAIT = 0, O_CON = 1, O_SEP = 2, O_REG = 3, O_FAIL = 4, O_ENDED = 5 };

typedef struct observer {
  uint64_t token;
  int64_t t_seq; /* when last_seq arrived */
  int64_t t_deadline, t_giveup;
  uint32_t count; /* notifications counted in the window */
  uint32_t last_seq;
  uint32_t rto_ms;
  uint16_t mid;
  uint16_t rlen; /* length of the registration request in flight */
  uint8_t state, retx;
  uint8_t echo_tries; /* Echo challenges answered (each re-registration uses a new MID) */
} observer;

static struct {
  observer *o;
  uint32_t n, next, pending, unresolved, reqcap;
  uint32_t per_sock; /* observers per socket: registration MIDs are base + attempt * per_sock + i / K */
  uint8_t *reqs;     /* registration requests, reqcap bytes each (room for an Echo) */
  uint16_t base_mid[MAX_SHARES];
  uint32_t drops[MAX_SHARES], drops_at_measure[MAX_SHARES];
  uint64_t registered, reg_timeouts, reg_rst, reg_errors, reg_no_observe;
  uint64_t notifications, con, acks, duplicates, stale, ended, echo_challenges;
  int64_t t_registered;
} O;

static int32_t o_sock(uint32_t i) { return (int32_t)(i % G.nsocks); }

/* Send registration i (attempt ob->echo_tries: 0, or the answer to that many Echo
 * challenges, carrying echo[0..elen)). Same token every time; a new MID per attempt. */
static void o_send(uint32_t i, const uint8_t *echo, uint32_t elen) {
  observer *ob = &O.o[i];
  int32_t k = o_sock(i);
  uint16_t mid = (uint16_t)(O.base_mid[k] + ob->echo_tries * O.per_sock + i / G.nsocks);
  uint8_t *req = O.reqs + (size_t)i * O.reqcap;
  int n = encode_get(req, O.reqcap, mid, ob->token, OPT_OBSERVE, NULL, 0, echo, elen);
  if (n < 0) die("cannot encode a registration%s", "");
  ob->mid = mid;
  ob->rlen = (uint16_t)n;
  ob->state = O_CON;
  ob->retx = 0;
  timer_at(&ob->t_deadline, con_start(&ob->rto_ms, &ob->t_giveup));
  stage(k, req, (size_t)n, NULL, 0);
}

static void o_register(uint32_t i) {
  O.pending++;
  o_send(i, NULL, 0);
}

static void o_pump(void) {
  while (O.pending < G.conns && O.next < O.n) o_register(O.next++);
}

/* Registration i is over: registered (O_REG) or failed. */
static void o_resolve(uint32_t i, uint8_t state) {
  O.o[i].state = state;
  O.pending--;
  if (state == O_REG) O.registered++;
  if (--O.unresolved == 0) {
    O.t_registered = G.now;
    set_window(G.now);
  }
}

static int o_observe_value(const uint8_t *buf, int nopt, uint32_t *v) {
  for (int k = 0; k < nopt; k++)
    if (dopts[k].number == OPT_OBSERVE) {
      if (dopts[k].length > 3) return 0;
      *v = uint_get(buf + dopts[k].offset, dopts[k].length);
      return 1;
    }
  return 0;
}

/* The response to registration i. */
static void o_first(uint32_t i, const uint8_t *buf, const tc_msg *m, int nopt) {
  observer *ob = &O.o[i];
  uint32_t v;
  if (m->code == CODE_UNAUTHORIZED && ob->echo_tries < ECHO_TRIES &&
      (ob->echo_tries + 2u) * O.per_sock <= 65536u) { /* the next attempt's MIDs exist */
    uint8_t echo[ECHO_MAX];
    uint32_t elen = echo_challenge(buf, m, nopt, echo);
    if (elen) { /* register again, same token, with the Echo: proves we receive here */
      ob->echo_tries++;
      O.echo_challenges++;
      o_send(i, echo, elen);
      return;
    }
  }
  if ((m->code >> 5) != 2) {
    O.reg_errors++;
    o_resolve(i, O_FAIL);
  } else if (!o_observe_value(buf, nopt, &v)) {
    O.reg_no_observe++;
    o_resolve(i, O_FAIL);
  } else {
    ob->last_seq = v;
    ob->t_seq = G.now;
    o_resolve(i, O_REG);
  }
}

static void o_notification(uint32_t i, const uint8_t *buf, const tc_msg *m, int nopt) {
  observer *ob = &O.o[i];
  uint32_t v;
  if ((m->code >> 5) != 2 || !o_observe_value(buf, nopt, &v)) {
    ob->state = O_ENDED;
    O.ended++;
    return;
  }
  uint32_t v1 = ob->last_seq;
  if (v == v1) {
    O.duplicates++;
    return;
  }
  int fresh = (v1 < v && v - v1 < OBS_SEQ_HALF) || (v1 > v && v1 - v > OBS_SEQ_HALF) ||
              G.now > ob->t_seq + OBS_STALE_NS;
  if (!fresh) {
    O.stale++;
    return;
  }
  ob->last_seq = v;
  ob->t_seq = G.now;
  if (!G.measuring || G.now >= G.t_end) return;
  O.notifications++;
  ob->count++;
}

static observer *o_by_token(int32_t k, const uint8_t *buf, const tc_msg *m, uint32_t *idx) {
  if (m->token_length != TOKEN_LEN) return NULL;
  uint64_t t;
  memcpy(&t, buf + m->token_offset, TOKEN_LEN);
  uint64_t i = t ^ G.key;
  if (i >= O.n || o_sock((uint32_t)i) != k || O.o[i].token != t) return NULL;
  *idx = (uint32_t)i;
  return &O.o[i];
}

static void o_datagram(int32_t k, const uint8_t *buf, size_t len) {
  tc_msg m;
  int r = decode_in(buf, len, &m);
  if (r < 0) return;
  uint32_t i;
  observer *ob;
  if (m.type == TC_ACK || m.type == TC_RST) {
    i = (uint32_t)(uint16_t)(m.message_id - O.base_mid[k]) % O.per_sock * G.nsocks + (uint32_t)k;
    ob = i < O.n ? &O.o[i] : NULL;
    if (!ob || ob->state != O_CON || ob->mid != m.message_id) {
      G.st.unmatched++;
    } else if (m.type == TC_RST) {
      O.reg_rst++;
      o_resolve(i, O_FAIL);
    } else if (m.code == 0) { /* empty ACK: the response comes separately */
      ob->state = O_SEP;
      timer_at(&ob->t_deadline, sep_deadline(ob->t_giveup));
    } else if (o_by_token(k, buf, &m, &i) == ob) {
      o_first(i, buf, &m, r);
    } else {
      G.st.unmatched++;
    }
    return;
  }
  if ((m.code >> 5) == 0) { /* a ping or a request to us */
    if (m.code != 0) G.st.unexpected++;
    if (m.type == TC_CON) stage_ctl(k, G.rst_tmpl, m.message_id);
    return;
  }
  ob = o_by_token(k, buf, &m, &i);
  int known = ob && (ob->state == O_CON || ob->state == O_SEP || ob->state == O_REG);
  if (m.type == TC_CON) { /* RFC 7641 §3.6: reject what we do not observe */
    stage_ctl(k, known ? G.ack_tmpl : G.rst_tmpl, m.message_id);
    if (known) O.acks++;
    if (known && G.measuring && G.now < G.t_end && ob->state == O_REG) O.con++;
  }
  if (!known) G.st.unmatched++;
  else if (ob->state == O_REG) o_notification(i, buf, &m, r);
  else o_first(i, buf, &m, r); /* the registration's separate response */
}

static uint8_t rctl[RBATCH][CMSG_SPACE(sizeof(uint32_t))];

static void o_recv(int32_t k) {
  sock *S = &G.pool[k];
  for (int round = 0; round < RECV_ROUNDS; round++) {
    for (uint32_t j = 0; j < RBATCH; j++) {
      rmsgs[j].msg_hdr.msg_control = rctl[j];
      rmsgs[j].msg_hdr.msg_controllen = sizeof rctl[j];
    }
    int n = recv_batch(S->fd);
    if (n < 0) return;
    if (n == 0) continue;
    for (int j = 0; j < n; j++) {
      struct msghdr *h = &rmsgs[j].msg_hdr;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t d;
          memcpy(&d, CMSG_DATA(c), sizeof d);
          if (d > O.drops[k]) O.drops[k] = d;
        }
      o_datagram(k, rbufs[j], rmsgs[j].msg_len);
      h->msg_flags = 0;
    }
    if ((unsigned)n < RBATCH) return;
  }
}

static void o_timers(void) {
  int64_t next = INT64_MAX;
  G.next_timer = INT64_MAX;
  for (uint32_t i = 0; i < O.next; i++) {
    observer *ob = &O.o[i];
    if (ob->state != O_CON && ob->state != O_SEP) continue;
    if (ob->t_deadline <= G.now) {
      if (ob->state == O_CON && con_retry(&ob->retx, &ob->rto_ms, &ob->t_deadline, ob->t_giveup)) {
        G.st.retx++;
        stage(o_sock(i), O.reqs + (size_t)i * O.reqcap, ob->rlen, NULL, 0);
      } else {
        O.reg_timeouts++;
        o_resolve(i, O_FAIL);
        continue;
      }
    }
    if (ob->t_deadline < next) next = ob->t_deadline;
  }
  if (next < G.next_timer) G.next_timer = next;
}

static void o_print(double elapsed) {
  uint64_t fails = O.reg_timeouts + O.reg_rst + O.reg_errors + O.reg_no_observe;
  uint32_t notified = 0, mn = UINT32_MAX, mx = 0;
  for (uint32_t i = 0; i < O.n; i++) {
    const observer *ob = &O.o[i];
    if (ob->state != O_REG && ob->state != O_ENDED) continue;
    if (ob->count) notified++;
    if (ob->count < mn) mn = ob->count;
    if (ob->count > mx) mx = ob->count;
  }
  if (mn == UINT32_MAX) mn = 0;
  uint64_t drops = 0, drops_window = 0;
  for (uint32_t k = 0; k < G.nsocks; k++) {
    drops += O.drops[k];
    drops_window += O.drops[k] - O.drops_at_measure[k];
  }
  double nps = elapsed > 0 ? (double)O.notifications / elapsed : 0.0;
  double reg_s = O.unresolved == 0 ? (double)(O.t_registered - G.t_start) / 1e9 : -1.0;
  if (G.json) {
    printf("{\"mode\":\"observe\",\"url\":");
    json_url();
    printf(",\"observers\":%u,\"sockets\":%u,\"window\":%u,\"registered\":%" PRIu64
           ",\"registration_failures\":%" PRIu64 ",\"registration_failure_kinds\":{\"timeouts\":%" PRIu64
           ",\"rst\":%" PRIu64 ",\"code\":%" PRIu64 ",\"no_observe\":%" PRIu64 "},\"registration_s\":",
           O.n, G.nsocks, G.conns, O.registered, fails, O.reg_timeouts, O.reg_rst, O.reg_errors,
           O.reg_no_observe);
    if (reg_s < 0) printf("null");
    else printf("%.6f", reg_s);
    printf(",\"warmup_s\":%.3f,\"elapsed_s\":%.6f,\"notifications\":%" PRIu64 ",\"notifications_per_s\":%.1f,"
           "\"con_notifications\":%" PRIu64 ",\"acks_sent\":%" PRIu64 ",\"duplicates\":%" PRIu64
           ",\"stale\":%" PRIu64 ",\"ended\":%" PRIu64 ",\"observers_notified\":%u,\"per_observer\":{\"min\":%u,"
           "\"max\":%u,\"mean\":%.2f},\"rx_dropped\":%" PRIu64 ",\"rx_dropped_window\":%" PRIu64
           ",\"retransmissions\":%" PRIu64 ",\"unmatched\":%" PRIu64 ",\"malformed\":%" PRIu64
           ",\"unexpected\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"icmp_errors\":%" PRIu64
           ",\"echo_challenges\":%" PRIu64 ",\"rcvbuf\":%d,\"cpu_s\":%.3f,\"cpu_us_per_notification\":%.3f}\n",
           G.warmup, elapsed, O.notifications, nps, O.con, O.acks, O.duplicates, O.stale, O.ended, notified,
           mn, mx, O.registered ? (double)O.notifications / (double)O.registered : 0.0, drops, drops_window,
           G.st.retx, G.st.unmatched, G.st.malformed, G.st.unexpected, G.st.send_errors, G.st.icmp_errors,
           O.echo_challenges, G.rcvbuf_actual, G.cpu_used, O.notifications ? G.cpu_used * 1e6 / (double)O.notifications : 0.0);
    return;
  }
  printf("coap-bench --observe %u %s\n", O.n, G.url);
  printf("  %u observers over %u sockets, %u registrations at a time; %.2f s measured after %.2f s warm-up\n\n",
         O.n, G.nsocks, G.conns, elapsed, G.warmup);
  if (reg_s < 0) printf("  registered      %" PRIu64 " (interrupted)\n", O.registered);
  else printf("  registered      %" PRIu64 " in %.3f s\n", O.registered, reg_s);
  if (O.echo_challenges) printf("  Echo challenges %" PRIu64 " answered (RFC 9175)\n", O.echo_challenges);
  printf("  reg. failures   %" PRIu64 " (timeouts %" PRIu64 ", rst %" PRIu64 ", code %" PRIu64
         ", no Observe %" PRIu64 ")\n",
         fails, O.reg_timeouts, O.reg_rst, O.reg_errors, O.reg_no_observe);
  printf("  notifications   %" PRIu64 "  (%.1f/s; %" PRIu64 " CON, ACKed)\n", O.notifications, nps, O.con);
  printf("  per observer    min %u  max %u  mean %.2f; %u of %" PRIu64 " observers notified\n", mn, mx,
         O.registered ? (double)O.notifications / (double)O.registered : 0.0, notified, O.registered);
  printf("  anomalies       duplicates %" PRIu64 "  stale %" PRIu64 "  ended %" PRIu64 "  unmatched %" PRIu64
         "  malformed %" PRIu64 "\n",
         O.duplicates, O.stale, O.ended, G.st.unmatched, G.st.malformed);
  printf("  receive drops   %" PRIu64 " in the window (%" PRIu64 " in all; rcvbuf %d bytes)\n", drops_window,
         drops, G.rcvbuf_actual);
  printf("  generator       %.0f%% of a core, %.2f us CPU per notification\n",
         elapsed > 0 ? 100.0 * G.cpu_used / elapsed : 0.0,
         O.notifications ? G.cpu_used * 1e6 / (double)O.notifications : 0.0);
}

static int run_observe(void) {
  O.n = G.observers;
  if (G.nsocks > O.n) G.nsocks = O.n;
  if ((O.n + G.nsocks - 1u) / G.nsocks > 65535u)
    die("--observe: at most 65535 observers per socket: raise -k%s", "");
  uint8_t e[ECHO_MAX] = {0};
  int need = encode_get(NULL, 0, 0, 0, OPT_OBSERVE, NULL, 0, e, ECHO_MAX);
  if (need < 0) die("cannot encode the registration%s", "");
  O.reqcap = (uint32_t)need;
  O.per_sock = (O.n + G.nsocks - 1u) / G.nsocks;
  O.o = calloc(O.n, sizeof *O.o);
  O.reqs = malloc((size_t)O.n * O.reqcap);
  G.npool = G.nsocks;
  G.pool = calloc(G.npool, sizeof *G.pool);
  if (!O.o || !O.reqs || !G.pool) die("out of memory%s", "");
  G.now = mono_ns();
  for (uint32_t k = 0; k < G.nsocks; k++) {
    sock *S = &G.pool[k];
    S->fd = watched_fd(k);
    if (S->fd < 0) die("cannot open a UDP socket to %s", G.url);
    int one = 1;
    (void)setsockopt(S->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    S->state = K_ACTIVE;
    S->share = k;
    O.base_mid[k] = (uint16_t)rng_next();
  }
  if (G.rcvbuf_actual < G.rcvbuf_want)
    fprintf(stderr, "coap-bench: note: socket receive buffer is %d bytes (asked %d)\n", G.rcvbuf_actual,
            G.rcvbuf_want);
  for (uint32_t i = 0; i < O.n; i++) O.o[i].token = G.key ^ (uint64_t)i;
  O.unresolved = O.n;
  G.now = G.t_start = mono_ns();
  G.t_measure = G.t_end = INT64_MAX; /* set once every registration is resolved */
  int64_t reg_deadline = G.t_start + (int64_t)(G.reg_time * 1e9);
  G.next_timer = INT64_MAX;
  o_pump();
  flush_all();

  struct epoll_event evs[256];
  while (!g_stop) {
    G.now = mono_ns();
    if (O.unresolved == 0 && O.registered == 0) break; /* nothing to observe */
    if (!G.measuring && G.now >= G.t_measure) {
      start_measuring();
      memcpy(O.drops_at_measure, O.drops, sizeof O.drops);
    }
    if (G.now >= G.t_end) break;
    if (O.unresolved && G.now >= reg_deadline) { /* registration phase over: the rest failed */
      for (uint32_t i = 0; i < O.n && O.unresolved; i++) {
        uint8_t st = O.o[i].state;
        if (st != O_WAIT && st != O_CON && st != O_SEP) continue;
        if (st == O_WAIT) O.pending++; /* o_resolve counts it out */
        O.reg_timeouts++;
        o_resolve(i, O_FAIL);
      }
      O.next = O.n;
      continue;
    }
    int64_t wake = window_wake();
    if (O.unresolved && reg_deadline < wake) wake = reg_deadline;
    int n = wait_events(evs, 256, wake);
    if (n < 0) break;
    for (int i = 0; i < n; i++) o_recv((int32_t)evs[i].data.u32);
    if (G.now >= G.next_timer) o_timers();
    o_pump();
    flush_all();
  }
  G.now = mono_ns();
  G.cpu_used = G.measuring ? cpu_seconds() - G.cpu_at_measure : 0;
  o_print(window_elapsed(0));
  fflush(stdout);
  for (uint32_t k = 0; k < G.npool; k++) close(G.pool[k].fd);
  free(G.pool);
  free(O.o);
  free(O.reqs);
  if (O.registered == 0) {
    fprintf(stderr, "coap-bench: no observer registered\n");
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------ output */

static void print_json(double elapsed) {
  const hist *h = &G.h;
  const stats *st = &G.st;
  printf("{\"url\":");
  json_url();
  printf(",\"type\":\"%s\",\"method\":\"%s\",\"concurrency\":%u,\"sockets\":%u,"
         "\"warmup_s\":%.3f,\"elapsed_s\":%.6f,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
         "\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
         ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.1f},"
         "\"status\":{\"2xx\":%" PRIu64 ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64
         "},\"rst\":%" PRIu64 ",\"retransmissions\":%" PRIu64 ",\"timeouts\":%" PRIu64
         ",\"lost\":%" PRIu64 ",\"sockets_retired\":%" PRIu64 ",\"issued\":%" PRIu64
         ",\"unmatched\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"unexpected\":%" PRIu64
         ",\"send_errors\":%" PRIu64 ",\"icmp_errors\":%" PRIu64 ",\"rcvbuf\":%d,\"gso\":%s,\"cpu_s\":%.3f,\"cpu_us_per_req\":%.3f}\n",
         G.non ? "NON" : "CON", method_names[G.method], G.conns, G.nsocks, G.warmup, elapsed,
         st->completed, elapsed > 0 ? (double)st->completed / elapsed : 0.0, hist_pct(h, 5000),
         hist_pct(h, 9000), hist_pct(h, 9900), hist_pct(h, 9990), h->max,
         h->count ? (double)h->sum / (double)h->count : 0.0, st->c2, st->c4, st->c5, st->cother,
         st->rst, st->retx, st->timeouts, st->lost, G.retired, G.measured_issued, st->unmatched,
         st->malformed, st->unexpected, st->send_errors, st->icmp_errors, G.rcvbuf_actual,
         G.gso ? "true" : "false", G.cpu_used,
         st->completed ? G.cpu_used * 1e6 / (double)st->completed : 0.0);
}

static void print_table(double elapsed) {
  const hist *h = &G.h;
  const stats *st = &G.st;
  printf("coap-bench %s\n", G.url);
  printf("  %s %s, %u outstanding over %u sockets, %.2f s measured after %.2f s warm-up\n\n",
         G.non ? "NON" : "CON", method_names[G.method], G.conns, G.nsocks, elapsed, G.warmup);
  printf("  requests        %" PRIu64 "  (%.1f req/s)\n", st->completed,
         elapsed > 0 ? (double)st->completed / elapsed : 0.0);
  printf("  latency (us)    p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64
         "  max %" PRIu64 "  mean %.1f\n",
         hist_pct(h, 5000), hist_pct(h, 9000), hist_pct(h, 9900), hist_pct(h, 9990), h->max,
         h->count ? (double)h->sum / (double)h->count : 0.0);
  printf("  responses       2xx %" PRIu64 "  4xx %" PRIu64 "  5xx %" PRIu64 "  other %" PRIu64 "\n",
         st->c2, st->c4, st->c5, st->cother);
  printf("  errors          rst %" PRIu64 "  timeouts %" PRIu64 "  lost %" PRIu64 "  unmatched %" PRIu64
         "  malformed %" PRIu64 "  send %" PRIu64 "  icmp %" PRIu64 "\n",
         st->rst, st->timeouts, st->lost, st->unmatched, st->malformed, st->send_errors,
         st->icmp_errors);
  printf("  retransmissions %" PRIu64 "\n", st->retx);
  printf("  sockets retired %" PRIu64 "\n", G.retired);
  printf("  generator       %.0f%% of a core, %.2f us CPU per request, %s\n",
         elapsed > 0 ? 100.0 * G.cpu_used / elapsed : 0.0,
         st->completed ? G.cpu_used * 1e6 / (double)st->completed : 0.0,
         G.gso ? "UDP GSO sends" : "sendmmsg sends");
}

/* -------------------------------------------------------------------- main */

/* CoAP over TCP, TLS and WebSockets (RFC 8323, coap+tcp:// ... URLs): bench_tcp.c */
int tcpb_wanted(int argc, char **argv);
int tcpb_main(int argc, char **argv);

/* CoAP over DTLS (coaps:// URLs): bench_dtls.c */
int dtlsb_wanted(int argc, char **argv);
int dtlsb_main(int argc, char **argv);

int main(int argc, char **argv) {
  if (tcpb_wanted(argc, argv)) return tcpb_main(argc, argv);
  if (dtlsb_wanted(argc, argv)) return dtlsb_main(argc, argv);
  G.conns = 64;
  G.nsocks = 4;
  G.duration = 10;
  G.warmup = 1;
  G.method = 1;
  G.content_format = -1;
  G.retire_after = 65536;
  G.rcvbuf_want = RCVBUF_BYTES;
  G.reg_time = 60;
  G.gso = 1;
  G.h.min = UINT64_MAX;
  static const struct option longopts[] = {{"json", no_argument, NULL, 'J'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"retire-after", required_argument, NULL, 'R'},
                                           {"no-gso", no_argument, NULL, 'G'},
                                           {"block2", required_argument, NULL, 'B'},
                                           {"verify", no_argument, NULL, 'V'},
                                           {"observe", required_argument, NULL, 'O'},
                                           {"reg-time", required_argument, NULL, 'T'},
                                           {NULL, 0, NULL, 0}};
  int o, explicit_mode = 0, plain_only = 0;
  while ((o = getopt_long(argc, argv, "c:k:d:n:w:Nm:p:f:t:h", longopts, NULL)) != -1) {
    switch (o) {
    case 'c': G.conns = (uint32_t)parse_uint(optarg, "-c (outstanding requests)", 1, MAX_SLOTS); break;
    case 'k': G.nsocks = (uint32_t)parse_uint(optarg, "-k (sockets)", 1, MAX_SHARES); break;
    case 'd': G.duration = parse_double(optarg, "-d (seconds)", 0.001, 1e7); break;
    case 'n': G.count = parse_uint(optarg, "-n (count)", 1, UINT64_MAX >> 1); break;
    case 'w': G.warmup = parse_double(optarg, "-w (seconds)", 0, 1e7); break;
    case 'N': G.non = 1; plain_only = 1;
      break;
    case 'm': {
      static const char *names[] = {NULL, "get", "post", "put", "delete", "fetch", "patch", "ipatch"};
      G.method = 0;
      for (uint32_t i = 1; i < 8; i++)
        if (strcasecmp(optarg, names[i]) == 0) G.method = i;
      if (!G.method) die("invalid -m %s (get|post|put|delete|fetch|patch|ipatch)", optarg);
      if (G.method != CODE_GET) plain_only = 1;
      break;
    }
    case 'p': G.payload = optarg; plain_only = 1;
      break;
    case 'f':
      G.content_format = (long)parse_uint(optarg, "-f (content format)", 0, 65535);
      plain_only = 1;
      break;
    case 't': G.timeout_ms = (int64_t)parse_uint(optarg, "-t (milliseconds)", 1, 86400000); break;
    case 'J': G.json = 1; break;
    case 'G': G.gso = 0; break;
    case 'R': G.retire_after = (uint32_t)parse_uint(optarg, "--retire-after", 1, 65536); break;
    case 'B': {
      uint64_t size = parse_uint(optarg, "--block2 SIZE (16, 32, ..., 1024)", 16, 1024);
      if (size & (size - 1)) die("invalid --block2 SIZE %s (16, 32, ..., 1024)", optarg);
      B.szx0 = (uint32_t)__builtin_ctzll(size) - 4u;
      G.mode = M_BLOCK2;
      explicit_mode |= 1;
      break;
    }
    case 'V': B.verify = 1; break;
    case 'T': G.reg_time = parse_double(optarg, "--reg-time (seconds)", 0.001, 1e7); break;
    case 'O':
      G.observers = (uint32_t)parse_uint(optarg, "--observe N", 1, 16000000);
      G.mode = M_OBSERVE;
      explicit_mode |= 2;
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    fprintf(stderr, "coap-bench: exactly one coap:// URL expected\n");
    return 2;
  }
  G.url = argv[optind];
  if (explicit_mode == 3) die("--block2 and --observe exclude each other%s", "");
  if (G.mode != M_REQUESTS && plain_only) die("--block2 and --observe send CON GETs: no -N, -m, -p or -f%s", "");
  if (B.verify && G.mode != M_BLOCK2) die("--verify needs --block2%s", "");
  if (G.mode == M_OBSERVE) { /* room for bursts of notifications, within reason over many sockets */
    uint32_t k = G.nsocks < G.observers ? G.nsocks : G.observers;
    G.rcvbuf_want = OBS_RCVBUF_BYTES * 4 / (int)k;
    if (G.rcvbuf_want > OBS_RCVBUF_BYTES) G.rcvbuf_want = OBS_RCVBUF_BYTES;
    if (G.rcvbuf_want < RCVBUF_BYTES / 2) G.rcvbuf_want = RCVBUF_BYTES / 2;
  }
  if (G.mode == M_REQUESTS && G.nsocks > G.conns) {
    fprintf(stderr, "coap-bench: note: -k %u > -c %u, using %u sockets\n", G.nsocks, G.conns, G.conns);
    G.nsocks = G.conns;
  }
  parse_url(G.url);
  build_request();

  uint64_t seed[2];
  if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
    seed[0] = (uint64_t)mono_ns();
    seed[1] = (uint64_t)getpid();
  }
  G.rng = seed[0];
  G.key = seed[1];

  G.ep = epoll_create1(EPOLL_CLOEXEC);
  if (G.ep < 0) die("epoll_create1: %s", strerror(errno));
  rbufs = malloc((size_t)RBATCH * RBUF_SIZE);
  if (!rbufs) die("out of memory%s", "");
  for (uint32_t i = 0; i < RBATCH; i++) {
    riov[i].iov_base = rbufs[i];
    riov[i].iov_len = RBUF_SIZE;
    rmsgs[i].msg_hdr.msg_iov = &riov[i];
    rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (G.mode != M_REQUESTS) {
    int rc = G.mode == M_BLOCK2 ? run_block2() : run_observe();
    close(G.ep);
    free(rbufs);
    return rc;
  }
  G.npool = G.nsocks * GENERATIONS;
  G.pool = calloc(G.npool, sizeof *G.pool);
  slot *all = calloc(G.conns, sizeof *all);
  if (!G.pool || !all) die("out of memory%s", "");
  uint32_t base = 0;
  for (uint32_t sh = 0; sh < G.nsocks; sh++) {
    share *H = &G.shares[sh];
    H->nslots = G.conns / G.nsocks + (sh < G.conns % G.nsocks ? 1u : 0u);
    H->slots = all + base;
    base += H->nslots;
    for (uint32_t i = 0; i < H->nslots; i++) H->slots[i].sock = -1;
  }
  G.now = mono_ns();
  for (uint32_t sh = 0; sh < G.nsocks; sh++) {
    G.shares[sh].active = open_sock(sh);
    if (G.shares[sh].active < 0) die("cannot open a UDP socket to %s", G.url);
    sock *S = &G.pool[G.shares[sh].active];
    for (uint32_t i = 0; i < G.shares[sh].nslots; i++) /* fixed header bytes, token patched later */
      memcpy(G.shares[sh].slots[i].hdr, S->tmpl, HDR_LEN);
  }
  if (G.rcvbuf_actual < RCVBUF_BYTES)
    fprintf(stderr, "coap-bench: note: socket receive buffer is %d bytes (asked %d)\n",
            G.rcvbuf_actual, RCVBUF_BYTES);

  G.now = G.t_start = mono_ns();
  set_window(G.t_start);
  if (G.warmup <= 0) start_measuring();
  G.issuing = 1;
  G.next_timer = INT64_MAX;
  for (uint32_t sh = 0; sh < G.nsocks; sh++)
    for (uint32_t i = 0; i < G.shares[sh].nslots; i++) issue(sh, i);
  flush_all();

  struct epoll_event evs[256];
  int ended_by_count = 0;
  while (!g_stop && !window_over(&ended_by_count)) {
    int64_t wake = window_wake();
    if (G.inflight == 0 && G.measuring && G.count && G.measured_issued >= G.count) wake = G.now;
    int n = wait_events(evs, 256, wake);
    if (n < 0) break;
    measure_if_due();
    for (int i = 0; i < n; i++) recv_sock((int32_t)evs[i].data.u32);
    if (G.now >= G.next_timer) run_timers();
    flush_all();
  }
  G.now = mono_ns();
  G.cpu_used = G.measuring ? cpu_seconds() - G.cpu_at_measure : 0;
  double elapsed = window_elapsed(ended_by_count);

  if (G.json) print_json(elapsed);
  else print_table(elapsed);
  fflush(stdout);

  for (uint32_t k = 0; k < G.npool; k++) {
    if (G.pool[k].state != K_FREE) close(G.pool[k].fd);
    free(G.pool[k].mid_slot);
    free(G.pool[k].tmpl);
  }
  close(G.ep);
  free(G.pool);
  free(rbufs);
  free(all);
  if (G.st.completed == 0) {
    fprintf(stderr, "coap-bench: no request completed (%" PRIu64 " timeouts, %" PRIu64 " lost, %" PRIu64
                    " rst, %" PRIu64 " icmp errors)\n",
            G.st.timeouts, G.st.lost, G.st.rst, G.st.icmp_errors);
    return 1;
  }
  return 0;
}

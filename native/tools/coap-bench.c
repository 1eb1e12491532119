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
  uint32_t conns, nsocks, retire_after;
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

/* Empty ACK (or RST) carrying mid, from socket k. */
static void stage_ctl(int32_t k, const uint8_t tmpl[4], uint32_t mid) {
  sock *S = &G.pool[k];
  if (S->nstage == STAGE) send_singles(S);
  uint8_t *c = S->ctl[S->nstage];
  memcpy(c, tmpl, 4);
  c[2] = (uint8_t)(mid >> 8);
  c[3] = (uint8_t)mid;
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
  int v = RCVBUF_BYTES;
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
  if (fd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
  if (epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    return -1;
  }
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
  uint16_t port = sock_port(S->fd);
  G.ports[G.nports % PORT_HISTORY] = port;
  G.port_time[G.nports % PORT_HISTORY] = G.now;
  G.nports++;
  epoll_ctl(G.ep, EPOLL_CTL_DEL, S->fd, NULL);
  close(S->fd);
  S->fd = -1;
  S->state = K_FREE;
}

/* ----------------------------------------------------------------- requests */

static void set_timer(slot *s, int64_t t) {
  s->t_deadline = t;
  if (t < G.next_timer) G.next_timer = t;
}

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
  s->t_giveup = G.timeout_ms ? G.now + G.timeout_ms * NS_PER_MS : INT64_MAX;
  s->rto_ms = ACK_TIMEOUT_MS + (uint32_t)(rng_next() % (ACK_RANDOM_EXTRA_MS + 1));
  s->state = G.non ? S_NON : S_CON;
  int64_t t = G.now + (int64_t)s->rto_ms * NS_PER_MS;
  if (G.non && G.timeout_ms) t = s->t_giveup;
  set_timer(s, t < s->t_giveup ? t : s->t_giveup);
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
  int r = tc_decode(buf, len, TC_UDP, &m, dopts, DECODE_OPTS);
  if (r < 0) {
    G.st.malformed++;
    return;
  }
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
        int64_t t = s->t_giveup;
        if (t == INT64_MAX) t = G.now + (int64_t)MAX_TRANSMIT_WAIT_MS * NS_PER_MS;
        set_timer(s, t);
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
    int n = recvmmsg(S->fd, rmsgs, RBATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == ECONNREFUSED) {
        G.st.icmp_errors++;
        continue;
      }
      return; /* EAGAIN, EINTR, ... */
    }
    G.now = mono_ns();
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
        if (s->state == S_CON && s->retx < MAX_RETRANSMIT && G.now < s->t_giveup) {
          s->retx++;
          if (s->measured) G.st.retx++;
          s->rto_ms *= 2;
          int64_t t = G.now + (int64_t)s->rto_ms * NS_PER_MS;
          s->t_deadline = t < s->t_giveup ? t : s->t_giveup;
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

/* ------------------------------------------------------------------ output */

static void print_json(double elapsed) {
  const hist *h = &G.h;
  const stats *st = &G.st;
  printf("{\"url\":\"");
  for (const char *c = G.url; *c; c++) {
    if (*c == '"' || *c == '\\') printf("\\%c", *c);
    else if ((unsigned char)*c < 0x20) printf("\\u%04x", *c);
    else putchar(*c);
  }
  printf("\",\"type\":\"%s\",\"method\":\"%s\",\"concurrency\":%u,\"sockets\":%u,"
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

int main(int argc, char **argv) {
  G.conns = 64;
  G.nsocks = 4;
  G.duration = 10;
  G.warmup = 1;
  G.method = 1;
  G.content_format = -1;
  G.retire_after = 65536;
  G.gso = 1;
  G.h.min = UINT64_MAX;
  static const struct option longopts[] = {{"json", no_argument, NULL, 'J'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"retire-after", required_argument, NULL, 'R'},
                                           {"no-gso", no_argument, NULL, 'G'},
                                           {NULL, 0, NULL, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "c:k:d:n:w:Nm:p:f:t:h", longopts, NULL)) != -1) {
    switch (o) {
    case 'c': G.conns = (uint32_t)parse_uint(optarg, "-c (outstanding requests)", 1, MAX_SLOTS); break;
    case 'k': G.nsocks = (uint32_t)parse_uint(optarg, "-k (sockets)", 1, MAX_SHARES); break;
    case 'd': G.duration = parse_double(optarg, "-d (seconds)", 0.001, 1e7); break;
    case 'n': G.count = parse_uint(optarg, "-n (count)", 1, UINT64_MAX >> 1); break;
    case 'w': G.warmup = parse_double(optarg, "-w (seconds)", 0, 1e7); break;
    case 'N': G.non = 1; break;
    case 'm': {
      static const char *names[] = {NULL, "get", "post", "put", "delete", "fetch", "patch", "ipatch"};
      G.method = 0;
      for (uint32_t i = 1; i < 8; i++)
        if (strcasecmp(optarg, names[i]) == 0) G.method = i;
      if (!G.method) die("invalid -m %s (get|post|put|delete|fetch|patch|ipatch)", optarg);
      break;
    }
    case 'p': G.payload = optarg; break;
    case 'f': G.content_format = (long)parse_uint(optarg, "-f (content format)", 0, 65535); break;
    case 't': G.timeout_ms = (int64_t)parse_uint(optarg, "-t (milliseconds)", 1, 86400000); break;
    case 'J': G.json = 1; break;
    case 'G': G.gso = 0; break;
    case 'R': G.retire_after = (uint32_t)parse_uint(optarg, "--retire-after", 1, 65536); break;
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
  if (G.nsocks > G.conns) {
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
  G.npool = G.nsocks * GENERATIONS;
  G.pool = calloc(G.npool, sizeof *G.pool);
  rbufs = malloc((size_t)RBATCH * RBUF_SIZE);
  slot *all = calloc(G.conns, sizeof *all);
  if (!G.pool || !rbufs || !all) die("out of memory%s", "");
  for (uint32_t i = 0; i < RBATCH; i++) {
    riov[i].iov_base = rbufs[i];
    riov[i].iov_len = RBUF_SIZE;
    rmsgs[i].msg_hdr.msg_iov = &riov[i];
    rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
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

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  G.now = G.t_start = mono_ns();
  G.t_measure = G.t_start + (int64_t)(G.warmup * 1e9);
  G.t_end = G.t_measure + (int64_t)(G.duration * 1e9);
  if (G.warmup <= 0) start_measuring();
  G.issuing = 1;
  G.next_timer = INT64_MAX;
  for (uint32_t sh = 0; sh < G.nsocks; sh++)
    for (uint32_t i = 0; i < G.shares[sh].nslots; i++) issue(sh, i);
  flush_all();

  struct epoll_event evs[256];
  int ended_by_count = 0;
  while (!g_stop) {
    G.now = mono_ns();
    if (!G.measuring && G.now >= G.t_measure) start_measuring();
    if (G.now >= G.t_end) break;
    if (G.measuring && G.count && G.measured_issued >= G.count && G.measured_inflight == 0) {
      ended_by_count = 1;
      break;
    }
    int64_t wake = G.t_end;
    if (!G.measuring && G.t_measure < wake) wake = G.t_measure;
    if (G.next_timer < wake) wake = G.next_timer;
    int64_t wait_ns = wake - G.now;
    int timeout = wait_ns <= 0 ? 0 : (int)((wait_ns + NS_PER_MS - 1) / NS_PER_MS);
    if (G.inflight == 0 && G.measuring && G.count && G.measured_issued >= G.count) timeout = 0;
    int n = epoll_wait(G.ep, evs, 256, timeout);
    if (n < 0 && errno != EINTR) {
      perror("coap-bench: epoll_wait");
      break;
    }
    G.now = mono_ns();
    if (!G.measuring && G.now >= G.t_measure) start_measuring();
    for (int i = 0; i < n; i++) recv_sock((int32_t)evs[i].data.u32);
    if (G.now >= G.next_timer) run_timers();
    flush_all();
  }
  G.now = mono_ns();
  G.cpu_used = G.measuring ? cpu_seconds() - G.cpu_at_measure : 0;
  double elapsed;
  if (ended_by_count) elapsed = (double)(G.t_last - G.t_measure) / 1e9;
  else if (G.now >= G.t_end) elapsed = G.duration;
  else elapsed = G.now > G.t_measure ? (double)(G.now - G.t_measure) / 1e9 : 0.0; /* interrupted */
  if (elapsed < 0) elapsed = 0;

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

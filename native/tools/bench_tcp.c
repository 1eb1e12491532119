/*
 * bench_tcp.c — coap-bench over reliable transports (RFC 8323): CoAP over TCP, TLS and
 * WebSockets. Chosen by the URL scheme (coap+tcp, coaps+tcp, coap+ws, coaps+ws); coap-bench.c's
 * main hands such runs to tcpb_main().
 *
 * Load mode: -k connections (default 4), each with -c / -k requests pipelined (default 64 in
 * all, 16 per connection). Every connection first exchanges CSMs (§5.3: ours is sent at once,
 * requests start when the server's has arrived), then keeps its share of GETs in flight: each
 * response sends the next request. Requests are one template per run (tc_encode), only the
 * 8-byte token patched; responses are cut from the stream by the core's deframer
 * (tc_deframer_feed) or, over WebSockets, from binary frames, and parsed with tc_decode. One
 * read and one write per connection per wake-up (pipelining batches them).
 * A Ping from the server gets its Pong; Release and Abort end that connection (counted).
 *
 * --idle N: opens N connections (--open-at-once at a time, default 4: servers with a short
 * accept backlog, such as libcoap's 5, drop SYNs beyond it), exchanges CSMs on each,
 * prints one JSON line once every one is up or failed, then holds them for -d seconds (or
 * until SIGTERM/SIGINT), answering Pings, and prints a second JSON line. The caller measures
 * the server's memory in between.
 *
 * TLS (coaps+tcp, coaps+ws) through OpenSSL when built with TCB_TLS: ALPN "coap", PSK
 * (--psk-id ID --psk-key KEY: TLS 1.2 PSK suites, RFC 7925) or certificates (--ca FILE
 * verifies the server, name or IP of the URL; without --ca the certificate is not checked;
 * --cert/--key for mutual authentication).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#ifdef TCB_TLS
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

int tcpb_wanted(int argc, char **argv);
int tcpb_main(int argc, char **argv);

#define MAX_CONNS 60000u
#define MAX_PIPE 65535u
#define TOKEN_LEN 8u
#define MAX_OPTS 64u
#define SRC_MAX 4096u
#define RBUF 65536u
#define LOAD_MMS 65536u   /* our Max-Message-Size (and deframer bound) in load mode */
#define IDLE_MMS 2048u    /* in --idle mode: only signals come in */
#define CONNECTING_MAX 4096u /* --open-at-once bound */
#define SETUP_NS (120LL * 1000000000LL) /* every connection up (CSM exchanged) within this */
#define WS_MAX_FRAME (LOAD_MMS + 14u)
#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

/* ---------------------------------------------------------------- histogram (µs) */
/* Log-linear: exact below 128 µs, then 64 sub-buckets per power of two (< 1.6 % error). */
#define H_BUCKETS (128u + 41u * 64u)
typedef struct {
  uint64_t count, sum, max;
  uint32_t b[H_BUCKETS];
} hist;

static unsigned h_index(uint64_t v) {
  if (v < 128) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  if (e > 47) return H_BUCKETS - 1;
  return 128u + (e - 7u) * 64u + (unsigned)((v >> (e - 6u)) & 63u);
}
static uint64_t h_upper(unsigned i) {
  if (i < 128) return i;
  unsigned e = (i - 128u) / 64u + 7u, sub = (i - 128u) % 64u;
  return ((64ull + sub + 1ull) << (e - 6u)) - 1ull;
}
static void h_add(hist *h, uint64_t v) {
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
  h->b[h_index(v)]++;
}
static uint64_t h_pct(const hist *h, uint64_t per10k) {
  if (!h->count) return 0;
  uint64_t want = (h->count * per10k + 9999) / 10000, acc = 0;
  if (want == 0) want = 1;
  for (unsigned i = 0; i < H_BUCKETS; i++) {
    acc += h->b[i];
    if (acc >= want) {
      uint64_t u = h_upper(i);
      return u > h->max ? h->max : u;
    }
  }
  return h->max;
}

/* ----------------------------------------------------------------------- state */

enum cstate { C_CONNECTING = 1, C_TLS, C_WS, C_CSM, C_READY, C_CLOSED };

typedef struct slot {
  int64_t t_sent;
  uint32_t seq;
  uint8_t busy, measured;
} slot;

typedef struct conn {
  int fd;
  uint8_t state, epout, dirty;
#ifdef TCB_TLS
  SSL *ssl;
#endif
  tc_deframer *df; /* TCP/TLS framing */
  uint8_t *in;     /* WebSocket frames (and the HTTP upgrade response) */
  uint32_t in_len, in_cap;
  uint8_t *out;
  uint32_t out_off, out_len, out_cap;
  slot *slots;
  uint32_t nslots, busy;
  uint8_t ws_key[28]; /* base64 of 16 bytes, NUL-terminated */
} conn;

typedef struct {
  uint64_t completed, c2, c4, c5, cother, timeouts, lost, unmatched, malformed, unexpected;
  uint64_t pings, pongs_sent, releases, aborts, conn_failed, conn_closed, tls_failed, ws_failed, write_errors;
} stats;

static struct {
  /* configuration */
  int tls, ws, json;
  uint32_t nconns, depth, idle, at_once;
  double duration, warmup;
  int64_t timeout_ms;
  const char *url, *psk_id, *psk_key, *ca, *cert, *key_file;
  char host[256];
  int host_is_name;
  char port[8];
  char path_http[64];
  struct sockaddr_storage addr;
  socklen_t addrlen;
  /* the request */
  uint8_t src[SRC_MAX];
  size_t srclen;
  tc_opt opts[MAX_OPTS];
  uint32_t nopts;
  uint8_t tmpl[SRC_MAX + 64];
  uint32_t tlen, tok_off;
  uint8_t csm[32];
  uint32_t csm_len;
  /* runtime */
  int ep;
  conn *c;
  uint32_t opened, connecting, up, done; /* done: up or failed */
  uint64_t key, rng;
  uint32_t seq;
  int64_t now, t_setup, t_start, t_measure, t_end, next_scan;
  int measuring, issuing;
  double cpu0, cpu_used;
  stats st;
  hist h;
  char tls_info[128];
  uint8_t rbuf[RBUF];
#ifdef TCB_TLS
  SSL_CTX *ctx;
#endif
} T;

static volatile sig_atomic_t t_stop;
static void t_signal(int s) {
  (void)s;
  t_stop = 1;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}
static double cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
static uint64_t rng(void) { /* splitmix64 */
  uint64_t z = (T.rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static void fail(const char *fmt, const char *arg) {
  fprintf(stderr, "coap-bench: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}
static uint64_t num(const char *s, const char *what, uint64_t lo, uint64_t hi) {
  char *e;
  errno = 0;
  unsigned long long v = strtoull(s, &e, 10);
  if (errno || e == s || *e || *s == '-' || v < lo || v > hi) fail("invalid %s", what);
  return v;
}
static double dnum(const char *s, const char *what, double lo, double hi) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (errno || e == s || *e || !(v >= lo && v <= hi)) fail("invalid %s", what);
  return v;
}

/* ------------------------------------------------------------------------ URL */

static const char *const schemes[] = {"coap+tcp://", "coaps+tcp://", "coap+ws://", "coaps+ws://"};

int tcpb_wanted(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    for (unsigned s = 0; s < 4; s++)
      if (strncmp(argv[i], schemes[s], strlen(schemes[s])) == 0) return 1;
  return 0;
}

static int hexv(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void add_opt(uint32_t number, const char *p, size_t n, int decode) {
  if (T.nopts >= MAX_OPTS - 2) fail("too many path/query segments in %s", T.url);
  size_t start = T.srclen;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)p[i];
    if (decode && c == '%') {
      int hi = i + 2 < n ? hexv(p[i + 1]) : -1, lo = i + 2 < n ? hexv(p[i + 2]) : -1;
      if (hi < 0 || lo < 0) fail("bad percent-encoding in %s", T.url);
      c = hi * 16 + lo;
      i += 2;
    }
    if (T.srclen >= SRC_MAX - 16) fail("request too large: %s", T.url);
    T.src[T.srclen++] = (uint8_t)c;
  }
  if (T.srclen - start > 255) fail("segment longer than 255 bytes in %s", T.url);
  T.opts[T.nopts++] = (tc_opt){.number = number, .offset = (uint32_t)start, .length = (uint32_t)(T.srclen - start)};
}

static void parse_url(const char *url) {
  unsigned s = 4;
  for (unsigned i = 0; i < 4; i++)
    if (strncmp(url, schemes[i], strlen(schemes[i])) == 0) s = i;
  if (s == 4) fail("URL must start with coap+tcp://, coaps+tcp://, coap+ws:// or coaps+ws:// : %s", url);
  T.tls = s & 1;
  T.ws = s >= 2;
  const char *p = url + strlen(schemes[s]), *hend;
  size_t hl;
  if (*p == '[') {
    hend = strchr(p, ']');
    if (!hend) fail("unterminated [IPv6] host in %s", url);
    hl = (size_t)(hend - p - 1);
    p++;
    hend++;
  } else {
    hend = p + strcspn(p, ":/?#");
    hl = (size_t)(hend - p);
  }
  if (hl == 0 || hl >= sizeof T.host) fail("bad host in %s", url);
  memcpy(T.host, p, hl);
  T.host[hl] = 0;
  const char *q = hend;
  snprintf(T.port, sizeof T.port, "%s", T.ws ? (T.tls ? "443" : "80") : (T.tls ? "5684" : "5683"));
  if (*q == ':') {
    q++;
    size_t pl = strcspn(q, "/?#");
    if (pl == 0 || pl >= sizeof T.port) fail("bad port in %s", url);
    memcpy(T.port, q, pl);
    T.port[pl] = 0;
    num(T.port, "port", 1, 65535);
    q += pl;
  }
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (getaddrinfo(T.host, T.port, &hints, &ai) != 0) {
    T.host_is_name = 1;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(T.host, T.port, &hints, &ai) != 0 || !ai) fail("cannot resolve host in %s", url);
  }
  memcpy(&T.addr, ai->ai_addr, ai->ai_addrlen);
  T.addrlen = ai->ai_addrlen;
  freeaddrinfo(ai);
  T.srclen = TOKEN_LEN;
  if (T.host_is_name) add_opt(3, T.host, strlen(T.host), 0); /* Uri-Host */
  const char *pe = q + strcspn(q, "?#");
  if (*q == '/' && pe - q > 1) {
    const char *seg = q + 1;
    for (;;) {
      const char *e = seg;
      while (e < pe && *e != '/') e++;
      add_opt(11, seg, (size_t)(e - seg), 1);
      if (e >= pe) break;
      seg = e + 1;
    }
  }
  if (*pe == '#') fail("fragment not allowed in a CoAP URI: %s", url);
  if (*pe == '?') {
    const char *seg = pe + 1, *qe = seg + strcspn(seg, "#");
    if (*qe == '#') fail("fragment not allowed in a CoAP URI: %s", url);
    while (seg < qe) {
      const char *e = seg;
      while (e < qe && *e != '&') e++;
      add_opt(15, seg, (size_t)(e - seg), 1);
      seg = e + 1;
    }
  }
}

/* The GET template (token at tok_off) and our CSM, in this run's framing. */
static void build_messages(uint32_t mms) {
  int tr = T.ws ? TC_WS : TC_TCP;
  tc_msg m;
  memset(&m, 0, sizeof m);
  m.code = 1; /* GET */
  m.token_offset = 0;
  m.token_length = TOKEN_LEN;
  m.option_count = T.nopts;
  int n = tc_encode(T.tmpl, sizeof T.tmpl, tr, &m, T.opts, T.src);
  if (n < 0) fail("cannot encode the request: %s", tc_error_name(n));
  tc_msg d;
  tc_opt o[MAX_OPTS];
  if (tc_decode(T.tmpl, (size_t)n, tr, &d, o, MAX_OPTS) < 0 || d.token_length != TOKEN_LEN || d.code != 1)
    fail("encoder self-check failed%s", "");
  T.tlen = (uint32_t)n;
  T.tok_off = d.token_offset;
  /* CSM (7.01) with Max-Message-Size (option 2) */
  uint8_t v[4] = {(uint8_t)(mms >> 24), (uint8_t)(mms >> 16), (uint8_t)(mms >> 8), (uint8_t)mms};
  uint32_t skip = mms >> 24 ? 0 : mms >> 16 ? 1 : mms >> 8 ? 2 : 3;
  tc_opt co = {.number = 2, .offset = skip, .length = 4 - skip};
  memset(&m, 0, sizeof m);
  m.code = 0xE1;
  m.option_count = 1;
  n = tc_encode(T.csm, sizeof T.csm, tr, &m, &co, v);
  if (n < 0) fail("cannot encode the CSM%s", "");
  T.csm_len = (uint32_t)n;
}

/* ------------------------------------------------------------------ connections */

static void conn_close(uint32_t i, int counted_as);

static void ep_mod(uint32_t i, int out) {
  conn *c = &T.c[i];
  if (c->epout == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.u32 = i};
  if (epoll_ctl(T.ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->epout = (uint8_t)out;
}

/* Room for n more output bytes (compacting); 0 if there is none. */
static int out_room(conn *c, uint32_t n) {
  if (c->out_len + n <= c->out_cap) return 1;
  if (c->out_off) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
  }
  return c->out_len + n <= c->out_cap;
}

/* Append one CoAP message (already framed for TCP, or a TC_WS message to wrap in a masked
 * binary frame). Returns a pointer to the message bytes in the output (to patch), or NULL. */
static uint8_t *put_msg(uint32_t i, const uint8_t *msg, uint32_t len) {
  conn *c = &T.c[i];
  if (!out_room(c, len + 14)) return NULL;
  uint8_t *p = c->out + c->out_len;
  if (T.ws) {
    uint32_t h = 0;
    p[h++] = 0x82; /* FIN, binary */
    if (len < 126) p[h++] = (uint8_t)(0x80 | len);
    else if (len < 65536) {
      p[h++] = 0x80 | 126;
      p[h++] = (uint8_t)(len >> 8);
      p[h++] = (uint8_t)len;
    } else {
      p[h++] = 0x80 | 127;
      for (int k = 7; k >= 0; k--) p[h++] = (uint8_t)((uint64_t)len >> (8 * k));
    }
    uint32_t mask = (uint32_t)rng();
    memcpy(p + h, &mask, 4);
    h += 4;
    memcpy(p + h, msg, len);
    c->out_len += h + len;
    c->dirty = 1;
    return p + h; /* masked by ws_mask_last() once patched */
  }
  memcpy(p, msg, len);
  c->out_len += len;
  c->dirty = 1;
  return p;
}

/* Mask a WebSocket payload in place with the 4 bytes before it. */
static void ws_mask(uint8_t *payload, uint32_t len) {
  const uint8_t *k = payload - 4;
  for (uint32_t j = 0; j < len; j++) payload[j] ^= k[j & 3];
}

static void issue(uint32_t i, uint32_t s) {
  conn *c = &T.c[i];
  slot *sl = &c->slots[s];
  uint8_t *p = put_msg(i, T.tmpl, T.tlen);
  if (!p) return; /* cannot happen: the output holds every slot's request */
  uint32_t seq = ++T.seq, a = s ^ (uint32_t)T.key, b = seq ^ (uint32_t)(T.key >> 32);
  memcpy(p + T.tok_off, &a, 4);
  memcpy(p + T.tok_off + 4, &b, 4);
  if (T.ws) ws_mask(p, T.tlen);
  sl->seq = seq;
  sl->busy = 1;
  sl->t_sent = T.now;
  sl->measured = (uint8_t)T.measuring;
  c->busy++;
}

static void start_measuring(void) {
  T.measuring = 1;
  T.cpu0 = cpu_s();
}

static void complete(uint32_t i, uint32_t s, uint32_t code) {
  conn *c = &T.c[i];
  slot *sl = &c->slots[s];
  sl->busy = 0;
  c->busy--;
  if (sl->measured && T.now < T.t_end) {
    T.st.completed++;
    uint32_t cls = code >> 5;
    if (cls == 2) T.st.c2++;
    else if (cls == 4) T.st.c4++;
    else if (cls == 5) T.st.c5++;
    else T.st.cother++;
    h_add(&T.h, (uint64_t)(T.now - sl->t_sent) / 1000u);
  }
  if (T.issuing) issue(i, s);
}

static void ready(uint32_t i) {
  conn *c = &T.c[i];
  c->state = C_READY;
  T.up++;
  T.done++;
  T.connecting--;
  if (T.issuing)
    for (uint32_t s = 0; s < c->nslots; s++) issue(i, s);
}

/* One CoAP message from the server. */
static void on_message(uint32_t i, const uint8_t *p, uint32_t len) {
  conn *c = &T.c[i];
  tc_msg m;
  tc_opt o[MAX_OPTS];
  int n = tc_decode(p, len, T.ws ? TC_WS : TC_TCP, &m, o, MAX_OPTS);
  if (n < 0) {
    T.st.malformed++;
    conn_close(i, 0);
    return;
  }
  if (c->state == C_CSM) {
    if (m.code != 0xE1) { /* §5.3.1: the CSM comes first */
      T.st.unexpected++;
      conn_close(i, 0);
      return;
    }
    ready(i);
    return;
  }
  if (m.code >= 0xE0) {
    switch (m.code) {
    case 0xE2: { /* Ping: Pong with its token */
      T.st.pings++;
      tc_msg pm;
      memset(&pm, 0, sizeof pm);
      pm.code = 0xE3;
      pm.token_offset = m.token_offset;
      pm.token_length = m.token_length;
      uint8_t buf[64];
      int k = m.token_length <= 8 ? tc_encode(buf, sizeof buf, T.ws ? TC_WS : TC_TCP, &pm, NULL, p) : -1;
      uint8_t *q = k > 0 ? put_msg(i, buf, (uint32_t)k) : NULL;
      if (q && T.ws) ws_mask(q, (uint32_t)k);
      if (q) T.st.pongs_sent++;
      break;
    }
    case 0xE4: T.st.releases++; conn_close(i, 0); break;
    case 0xE5: T.st.aborts++; conn_close(i, 0); break;
    default: break; /* CSM updates, Pongs, unknown signals */
    }
    return;
  }
  if (m.code == 0) return;                /* Empty: ignored (§3.4) */
  if ((m.code >> 5) == 0) {               /* a request to us: not served here */
    T.st.unexpected++;
    return;
  }
  if (m.token_length != TOKEN_LEN) {
    T.st.unmatched++;
    return;
  }
  uint32_t a, b;
  memcpy(&a, p + m.token_offset, 4);
  memcpy(&b, p + m.token_offset + 4, 4);
  uint32_t s = a ^ (uint32_t)T.key, seq = b ^ (uint32_t)(T.key >> 32);
  if (s >= c->nslots || !c->slots[s].busy || c->slots[s].seq != seq) {
    T.st.unmatched++;
    return;
  }
  complete(i, s, m.code);
}

/* Bytes of the TCP/TLS stream into the deframer. */
static void feed_stream(uint32_t i, const uint8_t *buf, size_t len) {
  conn *c = &T.c[i];
  size_t off = 0;
  while (off < len && c->state != C_CLOSED) {
    size_t used = 0;
    tc_frame fr[64];
    int k = tc_deframer_feed(c->df, buf + off, len - off, &used, fr, 64);
    if (k < 0) {
      T.st.malformed++;
      conn_close(i, 0);
      return;
    }
    for (int j = 0; j < k && c->state != C_CLOSED; j++) {
      const uint8_t *p = fr[j].where == TC_FRAME_CHUNK ? buf + off + fr[j].offset : tc_deframer_buffer(c->df) + fr[j].offset;
      on_message(i, p, fr[j].length);
    }
    off += used;
    if (used == 0 && k == 0) break;
  }
}

static int send_upgrade(uint32_t i);

/* WebSocket: the upgrade response, then server frames (unmasked). */
static void feed_ws(uint32_t i, const uint8_t *buf, size_t len) {
  conn *c = &T.c[i];
  if (c->in_len + len > c->in_cap) {
    T.st.malformed++;
    conn_close(i, 0);
    return;
  }
  memcpy(c->in + c->in_len, buf, len);
  c->in_len += (uint32_t)len;
  uint32_t off = 0;
  if (c->state == C_WS) {
    uint8_t *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!e) return;
    uint32_t hl = (uint32_t)(e - c->in) + 4;
    int ok = c->in_len > 12 && memcmp(c->in, "HTTP/1.1 101", 12) == 0 &&
             memmem(c->in, hl, "\r\nSec-WebSocket-Protocol: coap\r\n", 32) != NULL;
#ifdef TCB_TLS
    if (ok) { /* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) */
      char cat[64];
      unsigned char sha[SHA_DIGEST_LENGTH], b64[32], want[64];
      int cl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (char *)c->ws_key);
      SHA1((unsigned char *)cat, (size_t)cl, sha);
      EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
      snprintf((char *)want, sizeof want, "\r\nSec-WebSocket-Accept: %s\r\n", b64);
      ok = memmem(c->in, hl, want, strlen((char *)want)) != NULL;
    }
#endif
    if (!ok) {
      T.st.ws_failed++;
      conn_close(i, 2);
      return;
    }
    off = hl;
    c->state = C_CSM;
    put_msg(i, T.csm, T.csm_len);
    ws_mask(c->out + c->out_len - T.csm_len, T.csm_len);
  }
  while (c->state != C_CLOSED && c->in_len - off >= 2) {
    const uint8_t *p = c->in + off;
    uint32_t avail = c->in_len - off, h = 2;
    uint64_t pl = p[1] & 0x7f;
    if (p[1] & 0x80) { /* a server must not mask */
      T.st.malformed++;
      conn_close(i, 0);
      return;
    }
    if (pl == 126) {
      if (avail < 4) break;
      pl = (uint64_t)p[2] << 8 | p[3];
      h = 4;
    } else if (pl == 127) {
      if (avail < 10) break;
      pl = 0;
      for (int k = 0; k < 8; k++) pl = pl << 8 | p[2 + k];
      h = 10;
    }
    if (pl > WS_MAX_FRAME) {
      T.st.malformed++;
      conn_close(i, 0);
      return;
    }
    if (avail < h + pl) break;
    uint32_t op = p[0] & 0x0f;
    if (!(p[0] & 0x80) || op == 0) { /* fragmented messages: not used by CoAP servers here */
      T.st.malformed++;
      conn_close(i, 0);
      return;
    }
    if (op == 2) on_message(i, p + h, (uint32_t)pl);
    else if (op == 9 && pl <= 125) { /* Ping: Pong with its data */
      uint8_t f[2 + 4 + 125];
      uint32_t mask = (uint32_t)rng();
      f[0] = 0x8A;
      f[1] = (uint8_t)(0x80 | pl);
      memcpy(f + 2, &mask, 4);
      for (uint32_t j = 0; j < pl; j++) f[6 + j] = p[h + j] ^ f[2 + (j & 3)];
      if (out_room(c, 6 + (uint32_t)pl)) {
        memcpy(c->out + c->out_len, f, 6 + pl);
        c->out_len += 6 + (uint32_t)pl;
        c->dirty = 1;
      }
    } else if (op == 8) { /* Close */
      conn_close(i, 0);
      return;
    } else if (op != 10) {
      T.st.malformed++;
      conn_close(i, 0);
      return;
    }
    off += h + (uint32_t)pl;
  }
  if (c->state != C_CLOSED && off) {
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
  }
}

static void on_bytes(uint32_t i, const uint8_t *buf, size_t len) {
  if (T.ws) feed_ws(i, buf, len);
  else feed_stream(i, buf, len);
}

/* After TCP connect (and the TLS handshake): the upgrade, or our CSM. */
static void transport_up(uint32_t i) {
  conn *c = &T.c[i];
  if (T.ws) {
    if (send_upgrade(i) < 0) conn_close(i, 2);
    return;
  }
  c->state = C_CSM;
  put_msg(i, T.csm, T.csm_len);
}

static int send_upgrade(uint32_t i) {
  conn *c = &T.c[i];
  uint8_t raw[16];
  for (int k = 0; k < 2; k++) {
    uint64_t r = rng();
    memcpy(raw + 8 * k, &r, 8);
  }
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t o = 0;
  for (int k = 0; k < 15; k += 3) {
    uint32_t v = (uint32_t)raw[k] << 16 | (uint32_t)raw[k + 1] << 8 | raw[k + 2];
    for (int s = 18; s >= 0; s -= 6) c->ws_key[o++] = (uint8_t)b64[(v >> s) & 63];
  }
  uint32_t v = (uint32_t)raw[15] << 16;
  c->ws_key[o++] = (uint8_t)b64[(v >> 18) & 63];
  c->ws_key[o++] = (uint8_t)b64[(v >> 12) & 63];
  c->ws_key[o++] = '=';
  c->ws_key[o++] = '=';
  c->ws_key[o] = 0;
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /.well-known/coap HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: coap\r\n\r\n",
                   strchr(T.host, ':') ? "[" : "", T.host, strchr(T.host, ':') ? "]" : "", T.port, (char *)c->ws_key);
  if (n <= 0 || (size_t)n >= sizeof req || !out_room(c, (uint32_t)n)) return -1;
  memcpy(c->out + c->out_len, req, (size_t)n);
  c->out_len += (uint32_t)n;
  c->dirty = 1;
  c->state = C_WS;
  return 0;
}

#ifdef TCB_TLS
static unsigned int psk_cb(SSL *ssl, const char *hint, char *id, unsigned int id_max, unsigned char *psk,
                           unsigned int psk_max) {
  (void)ssl;
  (void)hint;
  size_t il = strlen(T.psk_id), kl = strlen(T.psk_key);
  if (il + 1 > id_max || kl > psk_max) return 0;
  memcpy(id, T.psk_id, il + 1);
  memcpy(psk, T.psk_key, kl);
  return (unsigned int)kl;
}

static void tls_setup(void) {
  T.ctx = SSL_CTX_new(TLS_client_method());
  if (!T.ctx) fail("SSL_CTX_new failed%s", "");
  SSL_CTX_set_mode(T.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  static const unsigned char alpn[] = {4, 'c', 'o', 'a', 'p'};
  if (SSL_CTX_set_alpn_protos(T.ctx, alpn, sizeof alpn) != 0) fail("ALPN setup failed%s", "");
  if (T.psk_id) { /* RFC 7925: TLS 1.2 PSK suites, as the server's */
    SSL_CTX_set_max_proto_version(T.ctx, TLS1_2_VERSION);
    if (!SSL_CTX_set_cipher_list(T.ctx, "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CCM:PSK-AES256-GCM-SHA384:"
                                        "PSK-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305"))
      fail("no PSK cipher suite%s", "");
    SSL_CTX_set_psk_client_callback(T.ctx, psk_cb);
  }
  if (T.cert) { /* mutual authentication */
    if (SSL_CTX_use_certificate_chain_file(T.ctx, T.cert) != 1) fail("cannot load the certificate %s", T.cert);
    if (SSL_CTX_use_PrivateKey_file(T.ctx, T.key_file, SSL_FILETYPE_PEM) != 1) fail("cannot load the key %s", T.key_file);
  }
  if (T.ca) {
    if (SSL_CTX_load_verify_locations(T.ctx, T.ca, NULL) != 1) fail("cannot load the CA file %s", T.ca);
    SSL_CTX_set_verify(T.ctx, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_CTX_set_verify(T.ctx, SSL_VERIFY_NONE, NULL);
  }
}

/* Drive the handshake. */
static void tls_step(uint32_t i) {
  conn *c = &T.c[i];
  ERR_clear_error();
  int r = SSL_connect(c->ssl);
  if (r == 1) {
    if (!T.tls_info[0]) {
      const unsigned char *a = NULL;
      unsigned al = 0;
      SSL_get0_alpn_selected(c->ssl, &a, &al);
      snprintf(T.tls_info, sizeof T.tls_info, "%s %s alpn=%.*s", SSL_get_version(c->ssl),
               SSL_get_cipher_name(c->ssl), (int)al, al ? (const char *)a : "none");
    }
    transport_up(i);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) ep_mod(i, 0);
  else if (e == SSL_ERROR_WANT_WRITE) ep_mod(i, 1);
  else {
    if (T.st.tls_failed++ == 0) {
      char b[256];
      ERR_error_string_n(ERR_peek_error(), b, sizeof b);
      long v = SSL_get_verify_result(c->ssl);
      fprintf(stderr, "coap-bench: TLS handshake failed: %s%s%s\n", b, v != X509_V_OK ? ": " : "",
              v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    }
    conn_close(i, 2);
  }
}
#endif

static int open_conn(uint32_t i) {
  conn *c = &T.c[i];
  uint32_t mms = T.idle ? IDLE_MMS : LOAD_MMS;
  c->fd = socket(T.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&T.addr, T.addrlen) != 0 && errno != EINPROGRESS) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  c->nslots = T.idle ? 0 : T.depth / T.nconns + (i < T.depth % T.nconns ? 1u : 0u);
  c->out_cap = c->nslots * (T.tlen + 14u) + (T.idle ? 512u : 4096u);
  c->out = malloc(c->out_cap);
  c->slots = c->nslots ? calloc(c->nslots, sizeof *c->slots) : NULL;
  if (T.ws) {
    c->in_cap = T.idle ? IDLE_MMS + 1024u : 2u * WS_MAX_FRAME + 8192u;
    c->in = malloc(c->in_cap);
  } else {
    size_t dl = tc_deframer_size(mms);
    c->df = aligned_alloc(8, (dl + 7) & ~(size_t)7);
    if (c->df) tc_deframer_init(c->df, dl, mms);
  }
  if (!c->out || (c->nslots && !c->slots) || (T.ws ? !c->in : !c->df)) fail("out of memory%s", "");
  c->state = C_CONNECTING;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
  c->epout = 1;
  if (epoll_ctl(T.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
  T.connecting++;
  return 0;
}

/* how: 0 closed (by the peer, an error, a protocol error), 1 connect failed, 2 TLS or WebSocket setup failed */
static void conn_close(uint32_t i, int how) {
  conn *c = &T.c[i];
  if (c->state == C_CLOSED) return;
  if (c->state != C_READY) { /* still setting up: this connection is resolved, as failed */
    T.connecting--;
    T.done++;
  }
  if (how == 1) T.st.conn_failed++;
  else if (how == 0) T.st.conn_closed++; /* how 2: counted as a TLS or WebSocket failure */
  T.st.lost += c->busy;
  c->state = C_CLOSED;
#ifdef TCB_TLS
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
#endif
  epoll_ctl(T.ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->busy = 0;
  c->out_off = c->out_len = 0;
}

/* Write what is pending. */
static void flush(uint32_t i) {
  conn *c = &T.c[i];
  c->dirty = 0;
  if (c->state == C_CLOSED || c->state == C_CONNECTING || c->state == C_TLS) return;
  while (c->out_off < c->out_len) {
    uint32_t n = c->out_len - c->out_off;
#ifdef TCB_TLS
    if (c->ssl) {
      ERR_clear_error();
      int r = SSL_write(c->ssl, c->out + c->out_off, (int)n);
      if (r > 0) {
        c->out_off += (uint32_t)r;
        continue;
      }
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        ep_mod(i, e == SSL_ERROR_WANT_WRITE);
        return;
      }
      T.st.write_errors++;
      conn_close(i, 0);
      return;
    }
#endif
    ssize_t w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += (uint32_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ep_mod(i, 1);
      return;
    }
    T.st.write_errors++;
    conn_close(i, 0);
    return;
  }
  c->out_off = c->out_len = 0;
  ep_mod(i, 0);
}

static void on_event(uint32_t i, uint32_t evs) {
  conn *c = &T.c[i];
  if (c->state == C_CLOSED) return;
  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    if (!(evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
      if (T.st.conn_failed == 0) fprintf(stderr, "coap-bench: connect: %s\n", strerror(err ? err : errno));
      conn_close(i, 1);
      return;
    }
#ifdef TCB_TLS
    if (T.tls) {
      c->ssl = SSL_new(T.ctx);
      if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) fail("SSL_new failed%s", "");
      if (T.host_is_name) SSL_set_tlsext_host_name(c->ssl, T.host);
      if (T.ca) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (T.host_is_name) X509_VERIFY_PARAM_set1_host(vp, T.host, 0);
        else X509_VERIFY_PARAM_set1_ip_asc(vp, T.host);
      }
      c->state = C_TLS;
      tls_step(i);
      if (c->state != C_CLOSED) flush(i);
      return;
    }
#endif
    transport_up(i);
    flush(i);
    return;
  }
#ifdef TCB_TLS
  if (c->state == C_TLS) {
    tls_step(i);
    if (c->state == C_CLOSED || c->state == C_TLS) return;
    flush(i);
    evs |= EPOLLIN; /* the server's first records may already sit in OpenSSL's buffer */
  }
#endif
  if (evs & EPOLLOUT) flush(i);
  if (c->state == C_CLOSED || !(evs & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
  for (int rounds = 0; rounds < 8 && c->state != C_CLOSED; rounds++) {
    ssize_t n;
#ifdef TCB_TLS
    if (c->ssl) {
      ERR_clear_error();
      int r = SSL_read(c->ssl, T.rbuf, (int)sizeof T.rbuf);
      if (r <= 0) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) {
          ep_mod(i, 1);
          break;
        }
        conn_close(i, 0);
        return;
      }
      n = r;
    } else
#endif
    {
      n = recv(c->fd, T.rbuf, sizeof T.rbuf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        conn_close(i, 0);
        return;
      }
    }
    on_bytes(i, T.rbuf, (size_t)n);
#ifdef TCB_TLS
    if (c->ssl && SSL_pending(c->ssl) > 0) continue;
#endif
    if ((size_t)n < sizeof T.rbuf) break;
  }
}

/* Requests without a response for -t ms: counted and sent again (as new requests). */
static void scan_timeouts(void) {
  int64_t lim = T.timeout_ms * NS_PER_MS;
  for (uint32_t i = 0; i < T.opened; i++) {
    conn *c = &T.c[i];
    if (c->state != C_READY) continue;
    for (uint32_t s = 0; s < c->nslots; s++) {
      slot *sl = &c->slots[s];
      if (!sl->busy || T.now - sl->t_sent < lim) continue;
      sl->busy = 0;
      c->busy--;
      if (sl->measured && T.now < T.t_end) T.st.timeouts++;
      if (T.issuing) issue(i, s);
    }
    if (c->dirty) flush(i);
  }
}

static void setup_conns(uint32_t n) {
  while (T.opened < n && T.connecting < T.at_once) {
    uint32_t i = T.opened++;
    if (open_conn(i) < 0) {
      T.c[i].state = C_CLOSED;
      T.c[i].fd = -1;
      T.st.conn_failed++;
      T.done++;
      if (errno == EMFILE || errno == ENFILE) {
        fprintf(stderr, "coap-bench: out of file descriptors after %u connections\n", i);
        while (T.opened < n) { /* the rest cannot open either */
          T.c[T.opened].state = C_CLOSED;
          T.c[T.opened].fd = -1;
          T.opened++;
          T.st.conn_failed++;
          T.done++;
        }
      }
    }
  }
}

/* One epoll round: events, then flushes. */
static int loop_once(int64_t wake) {
  static struct epoll_event evs[512];
  int timeout = -1;
  if (wake != INT64_MAX) {
    int64_t w = wake - T.now;
    timeout = w <= 0 ? 0 : (int)((w + NS_PER_MS - 1) / NS_PER_MS);
  }
  int n = epoll_wait(T.ep, evs, 512, timeout);
  if (n < 0 && errno != EINTR) {
    perror("coap-bench: epoll_wait");
    return -1;
  }
  T.now = now_ns();
  for (int k = 0; k < n; k++) on_event(evs[k].data.u32, evs[k].events);
  for (int k = 0; k < n; k++) {
    uint32_t i = evs[k].data.u32;
    if (T.c[i].dirty) flush(i);
  }
  return 0;
}

static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

static const char *transport_name(void) { return T.ws ? (T.tls ? "wss" : "ws") : (T.tls ? "tls" : "tcp"); }

static void print_errors_json(void) {
  const stats *s = &T.st;
  printf("\"timeouts\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"unmatched\":%" PRIu64 ",\"malformed\":%" PRIu64
         ",\"unexpected\":%" PRIu64 ",\"pings\":%" PRIu64 ",\"releases\":%" PRIu64 ",\"aborts\":%" PRIu64
         ",\"conn_failed\":%" PRIu64 ",\"conn_closed\":%" PRIu64 ",\"tls_failed\":%" PRIu64 ",\"ws_failed\":%" PRIu64
         ",\"write_errors\":%" PRIu64 ",\"tls\":",
         s->timeouts, s->lost, s->unmatched, s->malformed, s->unexpected, s->pings, s->releases, s->aborts,
         s->conn_failed, s->conn_closed, s->tls_failed, s->ws_failed, s->write_errors);
  json_str(T.tls_info);
}

/* ------------------------------------------------------------------------ modes */

static int run_idle(void) {
  T.now = T.t_setup = now_ns();
  int64_t deadline = T.t_setup + SETUP_NS;
  while (!t_stop && T.done < T.idle && T.now < deadline) {
    setup_conns(T.idle);
    if (loop_once(T.now + 100 * NS_PER_MS) < 0) break;
  }
  double setup = (double)(T.now - T.t_setup) / 1e9;
  printf("{\"phase\":\"ready\",\"url\":");
  json_str(T.url);
  printf(",\"transport\":\"%s\",\"idle\":%u,\"up\":%u,\"setup_s\":%.3f,", transport_name(), T.idle, T.up, setup);
  print_errors_json();
  printf("}\n");
  fflush(stdout);
  int64_t end = T.now + (int64_t)(T.duration * 1e9);
  while (!t_stop && T.now < end)
    if (loop_once(end) < 0) break;
  uint32_t still = 0;
  for (uint32_t i = 0; i < T.opened; i++) still += T.c[i].state == C_READY;
  printf("{\"phase\":\"end\",\"idle\":%u,\"up\":%u,\"still_open\":%u,", T.idle, T.up, still);
  print_errors_json();
  printf("}\n");
  fflush(stdout);
  return T.up ? 0 : 1;
}

static int run_load(void) {
  T.now = T.t_setup = now_ns();
  int64_t deadline = T.t_setup + SETUP_NS;
  while (!t_stop && T.done < T.nconns && T.now < deadline) {
    setup_conns(T.nconns);
    if (loop_once(T.now + 100 * NS_PER_MS) < 0) break;
  }
  if (T.up == 0) {
    fprintf(stderr, "coap-bench: no connection came up (%" PRIu64 " refused/failed, %" PRIu64 " TLS, %" PRIu64
                    " WebSocket failures, %" PRIu64 " closed)\n",
            T.st.conn_failed, T.st.tls_failed, T.st.ws_failed, T.st.conn_closed);
    return 1;
  }
  /* every connection is up (or failed): the window starts */
  T.now = T.t_start = now_ns();
  T.t_measure = T.t_start + (int64_t)(T.warmup * 1e9);
  T.t_end = T.t_measure + (int64_t)(T.duration * 1e9);
  if (T.warmup <= 0) start_measuring();
  T.issuing = 1;
  T.next_scan = T.now + 100 * NS_PER_MS;
  for (uint32_t i = 0; i < T.opened; i++) {
    if (T.c[i].state != C_READY) continue;
    for (uint32_t s = 0; s < T.c[i].nslots; s++) issue(i, s);
    flush(i);
  }
  while (!t_stop) {
    T.now = now_ns();
    if (!T.measuring && T.now >= T.t_measure) start_measuring();
    if (T.now >= T.t_end) break;
    int64_t wake = T.measuring ? T.t_end : T.t_measure;
    if (T.next_scan < wake) wake = T.next_scan;
    if (loop_once(wake) < 0) break;
    if (T.now >= T.next_scan) {
      scan_timeouts();
      T.next_scan = T.now + 100 * NS_PER_MS;
    }
  }
  T.now = now_ns();
  T.cpu_used = T.measuring ? cpu_s() - T.cpu0 : 0;
  double el = !T.measuring ? 0 : T.now >= T.t_end ? T.duration : (double)(T.now - T.t_measure) / 1e9;
  const hist *h = &T.h;
  double rps = el > 0 ? (double)T.st.completed / el : 0;
  if (T.json) {
    printf("{\"url\":");
    json_str(T.url);
    printf(",\"transport\":\"%s\",\"method\":\"GET\",\"concurrency\":%u,\"connections\":%u,\"connections_up\":%u,"
           "\"warmup_s\":%.3f,\"elapsed_s\":%.6f,\"requests\":%" PRIu64 ",\"rps\":%.1f,"
           "\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
           ",\"max\":%" PRIu64 ",\"mean\":%.1f},\"status\":{\"2xx\":%" PRIu64 ",\"4xx\":%" PRIu64
           ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64 "},",
           transport_name(), T.depth, T.nconns, T.up, T.warmup, el, T.st.completed, rps, h_pct(h, 5000),
           h_pct(h, 9000), h_pct(h, 9900), h_pct(h, 9990), h->max, h->count ? (double)h->sum / (double)h->count : 0.0,
           T.st.c2, T.st.c4, T.st.c5, T.st.cother);
    print_errors_json();
    printf(",\"cpu_s\":%.3f,\"cpu_us_per_req\":%.3f}\n", T.cpu_used,
           T.st.completed ? T.cpu_used * 1e6 / (double)T.st.completed : 0.0);
  } else {
    printf("coap-bench %s\n", T.url);
    printf("  GET over %s, %u pipelined over %u connections (%u up), %.2f s measured after %.2f s warm-up\n\n",
           transport_name(), T.depth, T.nconns, T.up, el, T.warmup);
    printf("  requests        %" PRIu64 "  (%.1f req/s)\n", T.st.completed, rps);
    printf("  latency (us)    p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64 "  max %" PRIu64
           "  mean %.1f\n",
           h_pct(h, 5000), h_pct(h, 9000), h_pct(h, 9900), h_pct(h, 9990), h->max,
           h->count ? (double)h->sum / (double)h->count : 0.0);
    printf("  responses       2xx %" PRIu64 "  4xx %" PRIu64 "  5xx %" PRIu64 "  other %" PRIu64 "\n", T.st.c2,
           T.st.c4, T.st.c5, T.st.cother);
    printf("  errors          timeouts %" PRIu64 "  lost %" PRIu64 "  unmatched %" PRIu64 "  malformed %" PRIu64
           "  unexpected %" PRIu64 "\n",
           T.st.timeouts, T.st.lost, T.st.unmatched, T.st.malformed, T.st.unexpected);
    printf("  connections     failed %" PRIu64 "  closed %" PRIu64 "  released %" PRIu64 "  aborted %" PRIu64
           "  TLS failed %" PRIu64 "  WS failed %" PRIu64 "\n",
           T.st.conn_failed, T.st.conn_closed, T.st.releases, T.st.aborts, T.st.tls_failed, T.st.ws_failed);
    if (T.tls_info[0]) printf("  tls             %s\n", T.tls_info);
    printf("  generator       %.0f%% of a core, %.2f us CPU per request\n", el > 0 ? 100.0 * T.cpu_used / el : 0.0,
           T.st.completed ? T.cpu_used * 1e6 / (double)T.st.completed : 0.0);
  }
  fflush(stdout);
  if (T.st.completed == 0) {
    fprintf(stderr, "coap-bench: no request completed\n");
    return 1;
  }
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: coap-bench [options] coap+tcp|coaps+tcp|coap+ws|coaps+ws://HOST[:PORT]/path?query\n"
          "  -c N        requests pipelined in all, spread over the connections (default 64)\n"
          "  -k K        connections (default 4)\n"
          "  -d SECONDS  measured duration (default 10; with --idle: how long to hold)\n"
          "  -w SECONDS  warm-up, not counted (default 1)\n"
          "  -t MS       a request without a response after this is counted as a timeout (default 5000)\n"
          "  --json      one JSON object on stdout instead of the table\n"
          "  --idle N    open N connections, exchange CSMs, print a JSON line, hold them -d seconds\n"
          "  --open-at-once M  connections being set up at a time (default 4)\n"
          "  --psk-id ID, --psk-key KEY   TLS PSK (TLS 1.2 PSK suites)\n"
          "  --ca FILE   verify the server's certificate (without it: not verified)\n"
          "  --cert FILE --key FILE  our certificate (chain) and key, for mutual authentication\n"
          "  -h, --help  this help\n");
}

int tcpb_main(int argc, char **argv) {
  T.nconns = 4;
  T.depth = 64;
  T.duration = 10;
  T.warmup = 1;
  T.timeout_ms = 5000;
  T.at_once = 4;
  static const struct option lo[] = {{"json", no_argument, NULL, 'J'},       {"help", no_argument, NULL, 'h'},
                                     {"idle", required_argument, NULL, 'I'}, {"psk-id", required_argument, NULL, 'i'},
                                     {"psk-key", required_argument, NULL, 'K'}, {"ca", required_argument, NULL, 'A'},
                                     {"open-at-once", required_argument, NULL, 'O'},
                                     {"cert", required_argument, NULL, 'C'}, {"key", required_argument, NULL, 'Y'},
                                     {NULL, 0, NULL, 0}};
  int o, depth_set = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, "c:k:d:w:t:h", lo, NULL)) != -1) {
    switch (o) {
    case 'c': T.depth = (uint32_t)num(optarg, "-c", 1, MAX_PIPE); depth_set = 1; break;
    case 'k': T.nconns = (uint32_t)num(optarg, "-k", 1, MAX_CONNS); break;
    case 'd': T.duration = dnum(optarg, "-d (seconds)", 0.001, 1e7); break;
    case 'w': T.warmup = dnum(optarg, "-w (seconds)", 0, 1e7); break;
    case 't': T.timeout_ms = (int64_t)num(optarg, "-t (milliseconds)", 1, 86400000); break;
    case 'J': T.json = 1; break;
    case 'I': T.idle = (uint32_t)num(optarg, "--idle N", 1, MAX_CONNS); break;
    case 'i': T.psk_id = optarg; break;
    case 'K': T.psk_key = optarg; break;
    case 'A': T.ca = optarg; break;
    case 'C': T.cert = optarg; break;
    case 'Y': T.key_file = optarg; break;
    case 'O': T.at_once = (uint32_t)num(optarg, "--open-at-once", 1, CONNECTING_MAX); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  T.url = argv[optind];
  parse_url(T.url);
  if (!T.psk_id != !T.psk_key) fail("--psk-id and --psk-key go together%s", "");
  if (T.psk_id && (strlen(T.psk_id) > 128 || strlen(T.psk_key) > 64 || !*T.psk_key)) fail("PSK identity or key too long%s", "");
#ifdef TCB_TLS
  if (T.tls) tls_setup();
#else
  if (T.tls) fail("this coap-bench was built without OpenSSL: %s needs TLS", T.url);
#endif
  if (!T.tls && (T.psk_id || T.ca || T.cert)) fail("--psk-id/--ca/--cert need a coaps+tcp:// or coaps+ws:// URL%s", "");
  if (!T.cert != !T.key_file) fail("--cert and --key go together%s", "");
  if (T.idle && depth_set) fail("--idle holds connections without requests: no -c%s", "");
  if (!T.idle && T.nconns > T.depth) fail("-k must not exceed -c%s", "");
  build_messages(T.idle ? IDLE_MMS : LOAD_MMS);
  uint64_t seed[2];
  if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
    seed[0] = (uint64_t)now_ns();
    seed[1] = (uint64_t)getpid();
  }
  T.rng = seed[0];
  T.key = seed[1];
  uint32_t n = T.idle ? T.idle : T.nconns;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  T.c = calloc(n, sizeof *T.c);
  T.ep = epoll_create1(EPOLL_CLOEXEC);
  if (!T.c || T.ep < 0) fail("setup failed%s", "");
  signal(SIGINT, t_signal);
  signal(SIGTERM, t_signal);
  signal(SIGPIPE, SIG_IGN);
  int rc = T.idle ? run_idle() : run_load();
  for (uint32_t i = 0; i < T.opened; i++) {
    conn *c = &T.c[i];
#ifdef TCB_TLS
    if (c->ssl) SSL_free(c->ssl);
#endif
    if (c->fd >= 0 && c->state != C_CLOSED) close(c->fd);
    free(c->out);
    free(c->in);
    free(c->df);
    free(c->slots);
  }
#ifdef TCB_TLS
  if (T.ctx) SSL_CTX_free(T.ctx);
#endif
  free(T.c);
  close(T.ep);
  return rc;
}

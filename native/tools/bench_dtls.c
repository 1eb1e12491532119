/*
 * bench_dtls.c — coap-bench over DTLS 1.2 (coaps:// URLs): coap-bench.c's main hands such runs
 * to dtlsb_main(). Needs OpenSSL (built with TCB_TLS, linked against the system's libssl).
 *
 *   coap-bench coaps://HOST:PORT/path --psk-id ID --psk-key KEY [-k SESSIONS] [-c IN_FLIGHT]
 *              [-d SECONDS] [-w WARMUP] [--handshakes] [--idle] [--ca FILE]
 *
 * Load mode (default): -k sessions (default 4), each a connected UDP socket with its own DTLS
 * session, -c requests in flight in all (default 64, spread over the sessions): CON GETs, each
 * response issues the next. Every session first completes its handshake; the window starts
 * after every session's handshake is done and -w seconds have passed. One SSL_write per request (one record, one datagram), one SSL_read per
 * response. A request unanswered for 2 s is re-issued (counted as lost).
 * --handshakes: for -d seconds, -c handshakes at a time (default 16), each on a fresh socket:
 *   ClientHello, HelloVerifyRequest, ..., Finished both ways, then close_notify; counts those
 *   completed per second.
 * --idle: opens -k sessions (handshake + one GET each), prints a JSON line, holds them for -d
 *   seconds (the caller measures the server's memory), prints a second line.
 * Ciphers: the RFC 7925 suite PSK-AES128-CCM8 preferred (then other PSK suites), or with --ca
 *   certificates (ECDHE-ECDSA-AES128-CCM8 preferred).
 * Output: one JSON line with requests/s (or handshakes/s), the cipher, the bytes a record adds
 * to a CoAP message (ciphertext datagram - plaintext, measured on our writes) and the bytes of
 * one full handshake on the wire (both directions, HelloVerifyRequest round trip included).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "turbocoap.h"

int dtlsb_wanted(int argc, char **argv);
int dtlsb_main(int argc, char **argv);

int dtlsb_wanted(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "coaps://", 8) == 0) return 1;
  return 0;
}

#ifndef TCB_TLS
int dtlsb_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "coap-bench: coaps:// needs OpenSSL: rebuild with libssl-dev installed\n");
  return 2;
}
#else
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_SESS 20000
#define MAX_INFLIGHT 64
#define TOKEN_LEN 8u

typedef struct {
  int64_t sent_ns; /* 0: free */
  uint16_t mid;
} slot;

typedef struct {
  int fd;
  SSL *ssl;
  int open, failed;
  uint16_t next_mid;
  uint32_t inflight, want;
  slot slots[MAX_INFLIGHT];
  int64_t started_ns, hs_ns;
  uint64_t hs_bytes;
  int64_t timer_ns; /* handshake retransmission */
} sess;

static struct {
  struct sockaddr_storage addr;
  socklen_t alen;
  char host[256], path[256];
  const char *psk_id, *psk_key, *ca;
  int sessions, inflight, duration, warmup, mode; /* 0 load, 1 handshakes, 2 idle */
  SSL_CTX *ctx;
  uint8_t req[512];
  size_t req_len;
  int ep;
  sess *s;
  uint64_t done, measured, lost, handshakes, hs_failed;
  uint64_t rec_ct, rec_pt; /* ciphertext / plaintext bytes of our request records */
  uint64_t hs_bytes_total, hs_count;
  int64_t t0, t_start, t_end;
  char cipher[64];
} B;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fail(const char *fmt, const char *arg) {
  fprintf(stderr, "coap-bench: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

static unsigned psk_cb(SSL *ssl, const char *hint, char *id, unsigned max_id, unsigned char *psk, unsigned max_psk) {
  size_t il = strlen(B.psk_id), kl = strlen(B.psk_key);
  (void)ssl;
  (void)hint;
  if (il + 1 > max_id || kl > max_psk) return 0;
  memcpy(id, B.psk_id, il + 1);
  memcpy(psk, B.psk_key, kl);
  return (unsigned)kl;
}

static void parse_url(const char *url) {
  const char *p = url + 8, *slash, *colon;
  char port[16] = "5684";
  struct addrinfo hints, *res;
  if (*p == '[') {
    const char *e = strchr(p, ']');
    if (e == NULL) fail("bad URL %s", url);
    snprintf(B.host, sizeof B.host, "%.*s", (int)(e - p - 1), p + 1);
    p = e + 1;
  } else {
    size_t n = strcspn(p, ":/");
    snprintf(B.host, sizeof B.host, "%.*s", (int)n, p);
    p += n;
  }
  if (*p == ':') {
    size_t n = strcspn(p + 1, "/");
    snprintf(port, sizeof port, "%.*s", (int)n, p + 1);
    p += 1 + n;
  }
  slash = *p == '/' ? p + 1 : "";
  snprintf(B.path, sizeof B.path, "%s", slash);
  (void)colon;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(B.host, port, &hints, &res) != 0) fail("cannot resolve %s", B.host);
  memcpy(&B.addr, res->ai_addr, res->ai_addrlen);
  B.alen = res->ai_addrlen;
  freeaddrinfo(res);
}

/* CON GET with the URL's path segments; MID and token patched per send. */
static void build_request(void) {
  tc_msg m;
  tc_opt opts[32];
  uint8_t src[300];
  uint32_t n = 0, w = 0;
  const char *p = B.path;
  memset(&m, 0, sizeof m);
  m.type = TC_CON;
  m.code = 1;
  m.token_length = TOKEN_LEN;
  m.token_offset = 0;
  w = TOKEN_LEN;
  memset(src, 0, TOKEN_LEN);
  while (*p != '\0' && n < 31) {
    size_t len = strcspn(p, "/?");
    if (len > 0) {
      memcpy(src + w, p, len);
      opts[n++] = (tc_opt){.number = 11, .offset = w, .length = (uint32_t)len};
      w += (uint32_t)len;
    }
    p += len;
    if (*p == '/') p++;
    else if (*p == '?') break;
  }
  m.option_count = n;
  int r = tc_encode(B.req, sizeof B.req, TC_UDP, &m, opts, src);
  if (r < 0) fail("cannot encode the request (%s)", B.path);
  B.req_len = (size_t)r;
}

static int new_socket(void) {
  int fd = socket(B.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&B.addr, B.alen) != 0) fail("connect: %s", strerror(errno));
  return fd;
}

static void sess_start(sess *s, int idx) {
  BIO *bio;
  struct epoll_event ev;
  memset(s, 0, sizeof *s);
  s->fd = new_socket();
  s->ssl = SSL_new(B.ctx);
  bio = BIO_new_dgram(s->fd, BIO_NOCLOSE);
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &B.addr);
  SSL_set_bio(s->ssl, bio, bio);
  SSL_set_mtu(s->ssl, 1400);
  DTLS_set_link_mtu(s->ssl, 1400);
  SSL_set_options(s->ssl, SSL_OP_NO_QUERY_MTU);
  SSL_set_connect_state(s->ssl);
  if (B.ca != NULL && B.host[0] != '\0') SSL_set1_host(s->ssl, B.host);
  s->started_ns = now_ns();
  getrandom(&s->next_mid, sizeof s->next_mid, 0);
  ev.events = EPOLLIN;
  ev.data.u32 = (uint32_t)idx;
  epoll_ctl(B.ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void sess_stop(sess *s, int notify) {
  if (s->ssl != NULL) {
    if (notify && s->open) SSL_shutdown(s->ssl);
    SSL_free(s->ssl);
  }
  if (s->fd >= 0) {
    epoll_ctl(B.ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
  }
  s->ssl = NULL;
  s->fd = -1;
  s->open = 0;
}

static void send_request(sess *s, int k, int64_t t) {
  uint8_t buf[512];
  BIO *w = SSL_get_wbio(s->ssl);
  uint64_t before = BIO_number_written(w);
  memcpy(buf, B.req, B.req_len);
  s->slots[k].mid = s->next_mid++;
  buf[2] = (uint8_t)(s->slots[k].mid >> 8);
  buf[3] = (uint8_t)s->slots[k].mid;
  memset(buf + 4, 0, TOKEN_LEN);
  buf[4] = (uint8_t)k;
  buf[5] = 0xB5;
  int wr = SSL_write(s->ssl, buf, (int)B.req_len);
  if (wr <= 0) {
    if (getenv("BENCH_DEBUG")) fprintf(stderr, "SSL_write: error %d errno %d\n", SSL_get_error(s->ssl, wr), errno);
    ERR_clear_error();
    return;
  }
  B.rec_ct += BIO_number_written(w) - before;
  B.rec_pt += B.req_len;
  s->slots[k].sent_ns = t;
}

/* Drives the handshake; 1 once open. */
static int dbg_hs_ok, dbg_sends, dbg_readable;
static int handshake(sess *s) {
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) dbg_hs_ok++;
  if (r == 1) {
    BIO *b = SSL_get_rbio(s->ssl);
    s->open = 1;
    s->hs_ns = now_ns() - s->started_ns;
    s->hs_bytes = BIO_number_read(b) + BIO_number_written(b);
    B.hs_bytes_total += s->hs_bytes;
    B.hs_count++;
    if (B.cipher[0] == '\0') snprintf(B.cipher, sizeof B.cipher, "%s", SSL_get_cipher_name(s->ssl));
    return 1;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
    char msg[256];
    ERR_error_string_n(ERR_peek_last_error(), msg, sizeof msg);
    ERR_clear_error();
    if (!s->failed && B.hs_failed < 3) fprintf(stderr, "coap-bench: handshake failed: %s\n", msg);
    s->failed = 1;
    B.hs_failed++;
  }
  return 0;
}

static void on_readable(sess *s, int idx, int64_t t) {
  uint8_t buf[2048];
  (void)idx;
  dbg_readable++;
  if (!s->open) {
    if (handshake(s) != 1) return;
    if (B.mode == 1) { /* handshakes mode: done with this one */
      if (t >= B.t_start && t < B.t_end) B.handshakes++;
      sess_stop(s, 1);
      sess_start(s, idx);
      handshake(s);
      return;
    }
    for (uint32_t k = 0; k < s->want; k++) {
      dbg_sends++;
      send_request(s, (int)k, t);
    }
  }
  for (int rounds = 0; rounds < 64; rounds++) {
    int n = SSL_read(s->ssl, buf, sizeof buf);
    if (n <= 0) {
      ERR_clear_error();
      return;
    }
    if (n < 4 + (int)TOKEN_LEN || (buf[0] & 0x0f) != TOKEN_LEN || buf[5 + 0] != 0xB5) continue;
    int k = buf[4];
    if (k >= MAX_INFLIGHT || s->slots[k].sent_ns == 0) continue;
    if (s->slots[k].sent_ns >= B.t_start && t < B.t_end) B.measured++;
    B.done++;
    s->slots[k].sent_ns = 0;
    if (B.mode == 0 && t < B.t_end) send_request(s, k, t);
  }
}

static void timers(int64_t t) {
  for (int i = 0; i < B.sessions; i++) {
    sess *s = &B.s[i];
    if (s->ssl == NULL) continue;
    if (!s->open) {
      struct timeval tv;
      if (DTLSv1_get_timeout(s->ssl, &tv) == 1 && tv.tv_sec == 0 && tv.tv_usec == 0) DTLSv1_handle_timeout(s->ssl);
      if (s->failed || t - s->started_ns > 10000000000LL) { /* give up; a new one */
        sess_stop(s, 0);
        sess_start(s, i);
        handshake(s);
      }
      continue;
    }
    for (uint32_t k = 0; k < s->want; k++)
      if (s->slots[k].sent_ns != 0 && t - s->slots[k].sent_ns > 2000000000LL) {
        B.lost++;
        if (t < B.t_end) send_request(s, (int)k, t);
        else s->slots[k].sent_ns = 0;
      }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: coap-bench coaps://HOST:PORT/path --psk-id ID --psk-key KEY | --ca FILE\n"
                  "       [-k SESSIONS] [-c IN_FLIGHT] [-d SECONDS] [-w WARMUP] [--handshakes | --idle]\n");
  exit(2);
}

int dtlsb_main(int argc, char **argv) {
  static const struct option lo[] = {{"psk-id", 1, 0, 1}, {"psk-key", 1, 0, 2}, {"ca", 1, 0, 3},
                                     {"handshakes", 0, 0, 4}, {"idle", 0, 0, 5}, {"json", 0, 0, 6}, {0, 0, 0, 0}};
  const char *url = NULL;
  int c, conc = -1;
  B.sessions = -1;
  B.duration = 10;
  B.warmup = 1;
  while ((c = getopt_long(argc, argv, "k:c:d:w:", lo, NULL)) != -1) {
    switch (c) {
    case 'k': B.sessions = atoi(optarg); break;
    case 'c': conc = atoi(optarg); break;
    case 'd': B.duration = atoi(optarg); break;
    case 'w': B.warmup = atoi(optarg); break;
    case 1: B.psk_id = optarg; break;
    case 2: B.psk_key = optarg; break;
    case 3: B.ca = optarg; break;
    case 4: B.mode = 1; break;
    case 5: B.mode = 2; break;
    case 6: break; /* the output is JSON anyway */
    default: usage();
    }
  }
  for (int i = optind; i < argc; i++)
    if (strncmp(argv[i], "coaps://", 8) == 0) url = argv[i];
  if (url == NULL || (B.psk_id == NULL && B.ca == NULL)) usage();
  if (B.sessions < 0) B.sessions = B.mode == 1 ? (conc > 0 ? conc : 16) : 4;
  if (conc < 0) conc = B.mode == 1 ? B.sessions : 64;
  if (B.sessions < 1 || B.sessions > MAX_SESS) fail("-k out of range%s", "");
  parse_url(url);
  build_request();
  B.ctx = SSL_CTX_new(DTLS_client_method());
  SSL_CTX_set_min_proto_version(B.ctx, DTLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(B.ctx, DTLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(B.ctx, SSL_SESS_CACHE_OFF);
  if (B.psk_id != NULL) {
    SSL_CTX_set_psk_client_callback(B.ctx, psk_cb);
    SSL_CTX_set_cipher_list(B.ctx, "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256");
  } else {
    SSL_CTX_set_cipher_list(B.ctx, "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256");
    if (SSL_CTX_load_verify_locations(B.ctx, B.ca, NULL) != 1) fail("cannot load %s", B.ca);
    SSL_CTX_set_verify(B.ctx, SSL_VERIFY_PEER, NULL);
  }
  B.ep = epoll_create1(EPOLL_CLOEXEC);
  B.s = calloc((size_t)B.sessions, sizeof(sess));
  B.t0 = now_ns();
  B.t_start = B.t0 + (int64_t)B.warmup * 1000000000LL;
  B.t_end = B.t_start + (int64_t)B.duration * 1000000000LL;
  {
    int per = conc / B.sessions, extra = conc % B.sessions;
    for (int i = 0; i < B.sessions; i++) {
      sess_start(&B.s[i], i);
      B.s[i].want = (uint32_t)(per + (i < extra));
      if (B.s[i].want > MAX_INFLIGHT) B.s[i].want = MAX_INFLIGHT;
      if (B.mode == 2 && B.s[i].want == 0) B.s[i].want = 1;
      handshake(&B.s[i]);
      if (B.mode == 2 && (i % 16) == 15) { /* idle: do not flood the server's half-open table */
        for (int spin = 0; spin < 200; spin++) {
          struct epoll_event evs[64];
          int n = epoll_wait(B.ep, evs, 64, 5), open = 0;
          for (int j = 0; j < n; j++) on_readable(&B.s[evs[j].data.u32], (int)evs[j].data.u32, now_ns());
          timers(now_ns());
          for (int j = i - 15; j <= i; j++) open += B.s[j].open;
          if (open == 16) break;
        }
      }
    }
  }
  /* load: the window opens once every session's handshake is done (and the warm-up is over) */
  int64_t stop = B.mode == 2 ? B.t0 + 30000000000LL : B.t_end + 200000000LL;
  int printed = 0, window = B.mode != 0;
  if (B.mode == 0) B.t_start = B.t_end = stop = INT64_MAX;
  for (;;) {
    struct epoll_event evs[256];
    int64_t t = now_ns();
    if (!window) {
      int open = 0;
      for (int i = 0; i < B.sessions; i++) open += B.s[i].open;
      if (open == B.sessions || t - B.t0 > 30000000000LL) {
        window = 1;
        B.t_start = t > B.t0 + (int64_t)B.warmup * 1000000000LL ? t : B.t0 + (int64_t)B.warmup * 1000000000LL;
        B.t_end = B.t_start + (int64_t)B.duration * 1000000000LL;
        stop = B.t_end + 200000000LL;
      }
    }
    if (t >= stop) break;
    int n = epoll_wait(B.ep, evs, 256, 10);
    t = now_ns();
    for (int i = 0; i < n; i++) on_readable(&B.s[evs[i].data.u32], (int)evs[i].data.u32, t);
    timers(t);
    if (B.mode == 2 && !printed) {
      int open = 0;
      for (int i = 0; i < B.sessions; i++) open += B.s[i].open;
      if (open == B.sessions || t >= stop - 1000000) {
        printf("{\"mode\":\"idle\",\"sessions\":%d,\"open\":%d,\"failed\":%" PRIu64 "}\n", B.sessions, open, B.hs_failed);
        fflush(stdout);
        printed = 1;
        stop = t + (int64_t)B.duration * 1000000000LL;
      }
    }
  }
  if (getenv("BENCH_DEBUG")) {
    int open = 0;
    uint32_t want = 0, out = 0;
    for (int i = 0; i < B.sessions; i++) {
      open += B.s[i].open;
      want += B.s[i].want;
      for (uint32_t k = 0; k < B.s[i].want; k++) out += B.s[i].slots[k].sent_ns != 0;
    }
    fprintf(stderr, "debug: hs_ok %d sends %d readable %d; ", dbg_hs_ok, dbg_sends, dbg_readable);
    fprintf(stderr, "debug: open %d want %u outstanding %u done %" PRIu64 " rec_pt %" PRIu64 " window %.3f..%.3f s\n", open, want, out, B.done,
            B.rec_pt, (double)(B.t_start - B.t0) / 1e9, (double)(B.t_end - B.t0) / 1e9);
  }
  double secs = (double)B.duration;
  if (B.mode == 0)
    printf("{\"mode\":\"load\",\"sessions\":%d,\"in_flight\":%d,\"requests_per_s\":%.0f,\"measured\":%" PRIu64
           ",\"lost\":%" PRIu64 ",\"handshake_failures\":%" PRIu64 ",\"cipher\":\"%s\",\"record_overhead\":%.1f,"
           "\"handshake_bytes\":%.0f,\"request_bytes\":%zu}\n",
           B.sessions, conc, (double)B.measured / secs, B.measured, B.lost, B.hs_failed, B.cipher,
           B.rec_pt > 0 ? (double)(B.rec_ct - B.rec_pt) / ((double)B.rec_pt / (double)B.req_len) : 0.0,
           B.hs_count > 0 ? (double)B.hs_bytes_total / (double)B.hs_count : 0.0, B.req_len);
  else if (B.mode == 1)
    printf("{\"mode\":\"handshakes\",\"parallel\":%d,\"handshakes_per_s\":%.0f,\"handshakes\":%" PRIu64
           ",\"failures\":%" PRIu64 ",\"cipher\":\"%s\",\"handshake_bytes\":%.0f}\n",
           B.sessions, (double)B.handshakes / secs, B.handshakes, B.hs_failed, B.cipher,
           B.hs_count > 0 ? (double)B.hs_bytes_total / (double)B.hs_count : 0.0);
  else
    printf("{\"mode\":\"idle-done\",\"sessions\":%d}\n", B.sessions);
  for (int i = 0; i < B.sessions; i++) sess_stop(&B.s[i], 1);
  SSL_CTX_free(B.ctx);
  free(B.s);
  return 0;
}
#endif

/*
 * test_tls.c — tests of the OpenSSL record layer (native/driver/tls.c), linked against the
 * system's libssl. Certificates are made at test time by the `openssl` command line tool;
 * clients and servers are wired back to back in memory, fed everything at once, one byte at a
 * time, or in random chunks. `make -C native tls-test` builds and runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "tls.h"
#include "tls_test.h"

unsigned long tc_test_passed, tc_test_failed;

/* ------------------------------------------------------------------ certificates */

static char dir[256];
static pem_t ca, ca2, srv_cert, srv_key, srv2_cert, srv2_key, cli_cert, cli_key, cli2_cert, cli2_key;

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

pem_t tls_test_load(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  pem_t p = { NULL, 0 };
  FILE *f = fopen(path, "rb");
  if (f == NULL) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p.pem = malloc((size_t)n + 1);
  p.len = fread(p.pem, 1, (size_t)n, f);
  p.pem[p.len] = '\0';
  fclose(f);
  return p;
}

/* An EC P-256 CA; leaf certificates signed by it with the given subjectAltName / usage. */
static void make_certs(void) {
  snprintf(dir, sizeof dir, "/tmp/tc-tls-test-XXXXXX");
  if (mkdtemp(dir) == NULL) { perror("mkdtemp"); exit(2); }
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  int rc = 0;
  rc |= sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=tc-test-ca "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null", dir, ec);
  rc |= sh("cd %s && openssl req -x509 %s -keyout ca2.key -out ca2.pem -days 2 -subj /CN=tc-other-ca "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null", dir, ec);
  struct { const char *name, *ca, *cn, *ext; } leaf[] = {
    { "srv", "ca", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth" },
    { "srv2", "ca", "alt.example", "subjectAltName=DNS:alt.example,DNS:*.wild.test,DNS:cb.example\nextendedKeyUsage=serverAuth" },
    { "cli", "ca", "client-1", "extendedKeyUsage=clientAuth" },
    { "cli2", "ca2", "client-2", "extendedKeyUsage=clientAuth" },
  };
  for (size_t i = 0; i < sizeof leaf / sizeof leaf[0]; i++) {
    rc |= sh("cd %s && printf '%s\\n' > %s.ext && openssl req -new %s -keyout %s.key -out %s.csr -subj /CN=%s 2>/dev/null && "
             "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 2 -extfile %s.ext -out %s.pem 2>/dev/null",
             dir, leaf[i].ext, leaf[i].name, ec, leaf[i].name, leaf[i].name, leaf[i].cn, leaf[i].name, leaf[i].ca, leaf[i].ca,
             leaf[i].name, leaf[i].name);
  }
  if (rc != 0) { fprintf(stderr, "tls-test: the openssl CLI could not make the test certificates\n"); exit(2); }
  ca = tls_test_load("ca.pem"); ca2 = tls_test_load("ca2.pem");
  srv_cert = tls_test_load("srv.pem"); srv_key = tls_test_load("srv.key");
  srv2_cert = tls_test_load("srv2.pem"); srv2_key = tls_test_load("srv2.key");
  cli_cert = tls_test_load("cli.pem"); cli_key = tls_test_load("cli.key");
  cli2_cert = tls_test_load("cli2.pem"); cli2_key = tls_test_load("cli2.key");
}

static void remove_certs(void) { sh("rm -rf %s", dir); }

/* ------------------------------------------------------------------ contexts */

static tc_tls_config server_cfg(void) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = TC_TLS_SERVER;
  c.cert_pem = srv_cert.pem; c.cert_len = srv_cert.len;
  c.key_pem = srv_key.pem; c.key_len = srv_key.len;
  c.ca_pem = ca.pem; c.ca_len = ca.len;
  c.reject_unauthorized = 1;
  return c;
}

static tc_tls_config client_cfg(void) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = TC_TLS_CLIENT;
  c.ca_pem = ca.pem; c.ca_len = ca.len;
  c.reject_unauthorized = 1;
  return c;
}

static tc_tls_ctx *mk(const tc_tls_config *cfg) {
  tc_tls_ctx *c = NULL;
  char err[256];
  int rc = tc_tls_ctx_new(cfg, &c, err, sizeof err);
  CHECK(rc == 0 && c != NULL, "tc_tls_ctx_new: %d %s", rc, err);
  if (c == NULL) exit(1);
  return c;
}

/* ------------------------------------------------------------------ the wire */

enum { ALL = 0, BYTE = 1, RANDOM = 2 };
#define PIPE_CAP (256 * 1024)

typedef struct {
  uint8_t *buf;
  size_t len, cap;
} bytes;

static void append(bytes *b, const uint8_t *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->buf = realloc(b->buf, b->cap);
  }
  memcpy(b->buf + b->len, p, n);
  b->len += n;
}

typedef struct {
  tc_tls *end[2];              /* 0 client, 1 server */
  uint8_t *pipe[2];            /* pipe[d]: ciphertext from end[d] to end[1-d] */
  size_t plen[2];
  bytes got[2];                /* plaintext read by end[d] */
  const uint8_t *src[2];       /* plaintext end[d] still has to write */
  size_t src_len[2], src_off[2];
  int mode;
  uint64_t rng;
  size_t max_out[2];           /* the most pending_out() ever showed */
  size_t out_cap;
} pair;

static void pair_init(pair *p, tc_tls_ctx *cc, const char *host, tc_tls_ctx *sc, int mode) {
  memset(p, 0, sizeof *p);
  char err[256];
  p->end[0] = tc_tls_new(cc, host, err, sizeof err);
  p->end[1] = tc_tls_new(sc, NULL, err, sizeof err);
  CHECK(p->end[0] != NULL && p->end[1] != NULL, "tc_tls_new: %s", err);
  if (p->end[0] == NULL || p->end[1] == NULL) exit(1);
  p->pipe[0] = malloc(PIPE_CAP);
  p->pipe[1] = malloc(PIPE_CAP);
  p->mode = mode;
  p->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)mode;
}

static void pair_free(pair *p) {
  for (int d = 0; d < 2; d++) {
    tc_tls_free(p->end[d]);
    free(p->pipe[d]);
    free(p->got[d].buf);
  }
}

static size_t chunk(pair *p, size_t avail) {
  if (p->mode == BYTE) return 1;
  if (p->mode == RANDOM) {
    size_t n = 1 + tc_rand(&p->rng) % 3000;
    return n < avail ? n : avail;
  }
  return avail;
}

/* Move bytes until nothing moves: write pending plaintext, drain ciphertext into the pipes,
 * feed it to the other end in chunks, read the plaintext out. */
static void pump(pair *p) {
  uint8_t tmp[8192];
  for (int round = 0; round < 1000000; round++) {
    int progress = 0;
    for (int d = 0; d < 2; d++) {
      tc_tls *a = p->end[d], *b = p->end[1 - d];
      if (p->src_off[d] < p->src_len[d]) {
        long w = tc_tls_write(a, p->src[d] + p->src_off[d], p->src_len[d] - p->src_off[d]);
        if (w > 0) { p->src_off[d] += (size_t)w; progress = 1; }
      }
      size_t pend = tc_tls_pending_out(a);
      if (pend > p->max_out[d]) p->max_out[d] = pend;
      long n = tc_tls_take_out(a, p->pipe[d] + p->plen[d], PIPE_CAP - p->plen[d]);
      if (n > 0) { p->plen[d] += (size_t)n; progress = 1; }
      size_t off = 0;
      while (off < p->plen[d]) {
        long f = tc_tls_feed(b, p->pipe[d] + off, chunk(p, p->plen[d] - off));
        if (f <= 0) break;
        off += (size_t)f;
        progress = 1;
        if (p->mode == RANDOM && tc_rand(&p->rng) % 4 == 0) break; /* interleave reads */
      }
      memmove(p->pipe[d], p->pipe[d] + off, p->plen[d] - off);
      p->plen[d] -= off;
      for (;;) {
        size_t cap = p->mode == RANDOM ? 1 + tc_rand(&p->rng) % sizeof tmp : sizeof tmp;
        long r = tc_tls_read(b, tmp, cap);
        if (r <= 0) break;
        append(&p->got[1 - d], tmp, (size_t)r);
        progress = 1;
      }
    }
    if (!progress) return;
  }
  CHECK(0, "pump did not settle");
}

static tc_tls_info info(tc_tls *s) {
  tc_tls_info i;
  CHECK(tc_tls_get_info(s, &i) == 0, "get_info");
  return i;
}

#define CHECK_STATE(s, st, what) \
  CHECK(tc_tls_get_state(s) == (st), "%s: state %d, want %d (error %s: %s)", (what), (int)tc_tls_get_state(s), (int)(st), \
        tc_tls_error_name(tc_tls_error(s)), tc_tls_errmsg(s))
#define CHECK_ERR(s, code, what) \
  CHECK(tc_tls_error(s) == (code), "%s: error %s (%s), want %s", (what), tc_tls_error_name(tc_tls_error(s)), tc_tls_errmsg(s), \
        tc_tls_error_name(code))

/* A short exchange both ways on an open pair. */
static void exchange(pair *p, const char *what) {
  static const uint8_t ping[] = "ping from client", pong[] = "pong from server";
  p->src[0] = ping; p->src_len[0] = sizeof ping; p->src_off[0] = 0;
  p->src[1] = pong; p->src_len[1] = sizeof pong; p->src_off[1] = 0;
  size_t g0 = p->got[0].len, g1 = p->got[1].len;
  pump(p);
  CHECK(p->got[1].len - g1 == sizeof ping && memcmp(p->got[1].buf + g1, ping, sizeof ping) == 0, "%s: server got ping", what);
  CHECK(p->got[0].len - g0 == sizeof pong && memcmp(p->got[0].buf + g0, pong, sizeof pong) == 0, "%s: client got pong", what);
}

/* ------------------------------------------------------------------ tests */

static const char *mode_name(int m) { return m == ALL ? "all" : m == BYTE ? "byte" : "random"; }

static void test_cert_handshake(void) {
  tc_tls_config sc = server_cfg(), cc = client_cfg();
  tc_tls_ctx *s = mk(&sc), *c = mk(&cc);
  for (int mode = 0; mode < 3; mode++) {
    pair p;
    pair_init(&p, c, "localhost", s, mode);
    CHECK(tc_tls_pending_out(p.end[0]) > 0, "ClientHello pending after tc_tls_new");
    CHECK_STATE(p.end[1], TC_TLS_HANDSHAKING, "server before any input");
    pump(&p);
    CHECK_STATE(p.end[0], TC_TLS_OPEN, mode_name(mode));
    CHECK_STATE(p.end[1], TC_TLS_OPEN, mode_name(mode));
    tc_tls_info ci = info(p.end[0]), si = info(p.end[1]);
    CHECK_EQ(ci.version, 0x0304, "TLS 1.3 with certificates");
    CHECK(strcmp(ci.alpn, "coap") == 0 && strcmp(si.alpn, "coap") == 0, "ALPN coap: %s/%s", ci.alpn, si.alpn);
    CHECK(ci.peer_cert == 1 && ci.verify_result == 0, "client verified the server: %d %ld", ci.peer_cert, ci.verify_result);
    CHECK(si.peer_cert == 0 && si.verify_result == -1, "no client certificate asked");
    CHECK(strcmp(si.servername, "localhost") == 0, "SNI received: '%s'", si.servername);
    CHECK(strcmp(ci.cipher, si.cipher) == 0 && ci.cipher[0] != '\0', "cipher agreed: %s", ci.cipher);
    exchange(&p, mode_name(mode));
    pair_free(&p);
  }
  /* an IP literal: checked against the IP SAN, not sent as SNI */
  pair p;
  pair_init(&p, c, "127.0.0.1", s, ALL);
  pump(&p);
  CHECK_STATE(p.end[0], TC_TLS_OPEN, "IP SAN");
  CHECK(info(p.end[1]).servername[0] == '\0', "no SNI for an IP literal");
  pair_free(&p);
  /* TLS 1.2 with certificates */
  tc_tls_config cc12 = client_cfg();
  cc12.max_version = 0x0303;
  tc_tls_ctx *c12 = mk(&cc12);
  pair_init(&p, c12, "localhost", s, RANDOM);
  pump(&p);
  CHECK_STATE(p.end[0], TC_TLS_OPEN, "TLS 1.2 certs");
  CHECK_EQ(info(p.end[1]).version, 0x0303, "TLS 1.2 negotiated");
  CHECK(strcmp(info(p.end[1]).cipher, "ECDHE-ECDSA-AES128-GCM-SHA256") == 0, "server's suite: %s", info(p.end[1]).cipher);
  exchange(&p, "tls1.2");
  pair_free(&p);
  tc_tls_ctx_free(c12);
  tc_tls_ctx_free(c);
  tc_tls_ctx_free(s);
}

static void test_verification(void) {
  tc_tls_config sc = server_cfg();
  tc_tls_ctx *s = mk(&sc);
  /* the wrong CA */
  tc_tls_config cc = client_cfg();
  cc.ca_pem = ca2.pem; cc.ca_len = ca2.len;
  tc_tls_ctx *c = mk(&cc);
  pair p;
  pair_init(&p, c, "localhost", s, BYTE);
  pump(&p);
  CHECK_STATE(p.end[0], TC_TLS_FAILED, "wrong CA");
  CHECK_ERR(p.end[0], TC_TLS_E_VERIFY, "wrong CA");
  CHECK(strstr(tc_tls_errmsg(p.end[0]), "local issuer") != NULL, "message names the reason: %s", tc_tls_errmsg(p.end[0]));
  CHECK_STATE(p.end[1], TC_TLS_FAILED, "server after the client's alert");
  CHECK_ERR(p.end[1], TC_TLS_E_ALERT, "server gets the alert");
  CHECK_EQ(info(p.end[1]).alert_received & 0xff, 48, "unknown_ca alert");
  CHECK(tc_tls_write(p.end[0], (const uint8_t *)"x", 1) == TC_TLS_E_VERIFY, "a failed session refuses writes");
  pair_free(&p);
  tc_tls_ctx_free(c);
  /* rejectUnauthorized = false: the handshake completes and reports the result */
  cc.reject_unauthorized = 0;
  c = mk(&cc);
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_STATE(p.end[0], TC_TLS_OPEN, "unverified but allowed");
  CHECK_EQ(info(p.end[0]).verify_result, 20, "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
  pair_free(&p);
  tc_tls_ctx_free(c);
  /* host name mismatch */
  cc = client_cfg();
  c = mk(&cc);
  pair_init(&p, c, "example.org", s, RANDOM);
  pump(&p);
  CHECK_ERR(p.end[0], TC_TLS_E_VERIFY, "hostname mismatch");
  CHECK(strstr(tc_tls_errmsg(p.end[0]), "mismatch") != NULL, "message: %s", tc_tls_errmsg(p.end[0]));
  pair_free(&p);
  pair_init(&p, c, "127.0.0.2", s, ALL);
  pump(&p);
  CHECK_ERR(p.end[0], TC_TLS_E_VERIFY, "IP mismatch");
  pair_free(&p);
  tc_tls_ctx_free(c);
  tc_tls_ctx_free(s);
}

static void test_mutual(void) {
  tc_tls_config sc = server_cfg();
  sc.request_cert = 1;
  tc_tls_ctx *s = mk(&sc);
  tc_tls_config cc = client_cfg();
  cc.cert_pem = cli_cert.pem; cc.cert_len = cli_cert.len;
  cc.key_pem = cli_key.pem; cc.key_len = cli_key.len;
  tc_tls_ctx *c = mk(&cc);
  pair p;
  pair_init(&p, c, "localhost", s, RANDOM);
  pump(&p);
  CHECK_STATE(p.end[1], TC_TLS_OPEN, "mutual auth");
  tc_tls_info si = info(p.end[1]);
  CHECK(si.peer_cert == 1 && si.verify_result == 0, "server verified the client: %d %ld", si.peer_cert, si.verify_result);
  exchange(&p, "mutual");
  pair_free(&p);
  tc_tls_ctx_free(c);

  /* no client certificate: the server refuses (TLS 1.3: the client learns it from the alert) */
  for (int v = 0x0303; v <= 0x0304; v++) {
    tc_tls_config nc = client_cfg();
    nc.max_version = v;
    c = mk(&nc);
    pair_init(&p, c, "localhost", s, ALL);
    pump(&p);
    CHECK_ERR(p.end[1], TC_TLS_E_PEER_CERT_REQUIRED, v == 0x0303 ? "no client cert 1.2" : "no client cert 1.3");
    CHECK_STATE(p.end[0], TC_TLS_FAILED, "client sees the refusal");
    CHECK_ERR(p.end[0], TC_TLS_E_ALERT, "client: alert");
    pair_free(&p);
    tc_tls_ctx_free(c);
  }

  /* a client certificate from another CA */
  cc.cert_pem = cli2_cert.pem; cc.cert_len = cli2_cert.len;
  cc.key_pem = cli2_key.pem; cc.key_len = cli2_key.len;
  c = mk(&cc);
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_ERR(p.end[1], TC_TLS_E_VERIFY, "client cert from an unknown CA");
  CHECK_STATE(p.end[0], TC_TLS_FAILED, "client sees it");
  pair_free(&p);
  tc_tls_ctx_free(c);
  tc_tls_ctx_free(s);

  /* requestCert without rejectUnauthorized: no certificate is fine */
  sc.reject_unauthorized = 0;
  s = mk(&sc);
  tc_tls_config nc = client_cfg();
  c = mk(&nc);
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_STATE(p.end[1], TC_TLS_OPEN, "optional client cert");
  CHECK_EQ(info(p.end[1]).peer_cert, 0, "none sent");
  pair_free(&p);
  tc_tls_ctx_free(c);
  tc_tls_ctx_free(s);
}

static tc_tls_ctx *sni_cb_alt;
static int sni_cb_calls;
static tc_tls_ctx *sni_cb(void *user, const char *name) {
  (void)user;
  sni_cb_calls++;
  return strcmp(name, "cb.example") == 0 ? sni_cb_alt : NULL;
}

static void test_sni(void) {
  tc_tls_config sc = server_cfg();
  sc.sni_fn = sni_cb;
  tc_tls_ctx *s = mk(&sc);
  tc_tls_config ac = server_cfg();
  ac.cert_pem = srv2_cert.pem; ac.cert_len = srv2_cert.len;
  ac.key_pem = srv2_key.pem; ac.key_len = srv2_key.len;
  tc_tls_ctx *alt = mk(&ac);
  sni_cb_alt = alt;
  CHECK_EQ(tc_tls_ctx_add_sni(s, "ALT.example", alt), 0, "add_sni");
  CHECK_EQ(tc_tls_ctx_add_sni(s, "*.wild.test", alt), 0, "add_sni wildcard");
  CHECK_EQ(tc_tls_ctx_add_sni(s, "x", s), TC_TLS_E_INVALID, "add_sni self");
  tc_tls_config cc = client_cfg();
  tc_tls_ctx *c = mk(&cc);
  const char *names[] = { "alt.example", "a.wild.test", "cb.example", "localhost" };
  for (int i = 0; i < 4; i++) {
    pair p;
    pair_init(&p, c, names[i], s, i == 1 ? BYTE : RANDOM);
    pump(&p);
    /* the client verifies the name against the certificate: it passes only with the right one */
    CHECK_STATE(p.end[0], TC_TLS_OPEN, names[i]);
    CHECK(strcmp(info(p.end[1]).servername, names[i]) == 0, "server saw SNI %s", names[i]);
    if (tc_tls_get_state(p.end[0]) == TC_TLS_OPEN) exchange(&p, names[i]);
    pair_free(&p);
  }
  CHECK_EQ(sni_cb_calls, 2, "the callback runs for names not in the table");
  /* a name with no alternative keeps the default certificate (and fails the client's check) */
  pair p;
  pair_init(&p, c, "b.a.wild.test", s, ALL);
  pump(&p);
  CHECK_ERR(p.end[0], TC_TLS_E_VERIFY, "a wildcard covers one label only");
  pair_free(&p);
  tc_tls_ctx_free(c);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(alt); /* after its last user */
}

static void test_alpn(void) {
  tc_tls_config sc = server_cfg(), cc = client_cfg();
  sc.alpn = TC_TLS_ALPN_REQUIRE;
  cc.alpn = TC_TLS_ALPN_OFF;
  tc_tls_ctx *s = mk(&sc), *c = mk(&cc);
  pair p;
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_ERR(p.end[1], TC_TLS_E_ALPN, "server requires coap");
  CHECK_ERR(p.end[0], TC_TLS_E_ALERT, "client gets the alert");
  CHECK_EQ(info(p.end[0]).alert_received & 0xff, 120, "no_application_protocol");
  pair_free(&p);
  tc_tls_ctx_free(s);
  sc.alpn = TC_TLS_ALPN_OPTIONAL;
  s = mk(&sc);
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_STATE(p.end[1], TC_TLS_OPEN, "optional ALPN, client without");
  CHECK(info(p.end[1]).alpn[0] == '\0', "nothing negotiated");
  pair_free(&p);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(c);
  /* the client requires coap, the server does not take part */
  sc.alpn = TC_TLS_ALPN_OFF;
  cc.alpn = TC_TLS_ALPN_REQUIRE;
  s = mk(&sc);
  c = mk(&cc);
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  CHECK_ERR(p.end[0], TC_TLS_E_ALPN, "client requires coap");
  pair_free(&p);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(c);
}

static const uint8_t key1[16] = { 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x50, 0x53, 0x4b, 1, 2, 3, 4, 5, 6, 7 };

static size_t psk_lookup(void *user, const char *identity, uint8_t *key, size_t cap) {
  (*(int *)user)++;
  if (strcmp(identity, "cb-device") != 0 || cap < sizeof key1) return 0;
  memcpy(key, key1, sizeof key1);
  return sizeof key1;
}

static void test_psk(void) {
  int lookups = 0;
  tc_tls_config sc;
  memset(&sc, 0, sizeof sc);
  sc.role = TC_TLS_SERVER;
  sc.psk_hint = "turbocoap";
  sc.psk_fn = psk_lookup;
  sc.psk_user = &lookups;
  tc_tls_ctx *s = mk(&sc);
  CHECK_EQ(tc_tls_ctx_add_psk(s, "device-1", key1, sizeof key1), 0, "add_psk");
  tc_tls_config cc;
  memset(&cc, 0, sizeof cc);
  cc.role = TC_TLS_CLIENT;
  cc.psk_identity = "device-1";
  cc.psk_key = key1;
  cc.psk_key_len = sizeof key1;
  tc_tls_ctx *c = mk(&cc);
  for (int mode = 0; mode < 3; mode++) {
    pair p;
    pair_init(&p, c, NULL, s, mode);
    pump(&p);
    CHECK_STATE(p.end[0], TC_TLS_OPEN, "PSK client");
    CHECK_STATE(p.end[1], TC_TLS_OPEN, "PSK server");
    tc_tls_info si = info(p.end[1]), ci = info(p.end[0]);
    CHECK_EQ(si.version, 0x0303, "PSK over TLS 1.2");
    CHECK(strcmp(si.cipher, "PSK-AES128-CCM8") == 0, "CoAP's PSK suite first: %s", si.cipher);
    CHECK(strcmp(si.psk_identity, "device-1") == 0 && strcmp(ci.psk_identity, "device-1") == 0, "identity: %s", si.psk_identity);
    CHECK(strcmp(si.alpn, "coap") == 0, "ALPN with PSK");
    exchange(&p, "psk");
    pair_free(&p);
  }
  tc_tls_ctx_free(c);
  /* the callback, and a client's own suite choice */
  cc.psk_identity = "cb-device";
  cc.ciphers = "PSK-AES128-GCM-SHA256";
  c = mk(&cc);
  pair p;
  pair_init(&p, c, NULL, s, RANDOM);
  pump(&p);
  CHECK_STATE(p.end[1], TC_TLS_OPEN, "PSK via callback");
  CHECK(strcmp(info(p.end[1]).cipher, "PSK-AES128-GCM-SHA256") == 0, "suite %s", info(p.end[1]).cipher);
  CHECK_EQ(lookups, 1, "one callback lookup");
  pair_free(&p);
  tc_tls_ctx_free(c);
  /* a wrong key */
  uint8_t bad[16];
  memcpy(bad, key1, sizeof bad);
  bad[15] ^= 1;
  cc.psk_identity = "device-1";
  cc.psk_key = bad;
  cc.ciphers = NULL;
  c = mk(&cc);
  pair_init(&p, c, NULL, s, ALL);
  pump(&p);
  CHECK_ERR(p.end[1], TC_TLS_E_PSK, "server: wrong key");
  CHECK_ERR(p.end[0], TC_TLS_E_PSK, "client: wrong key");
  pair_free(&p);
  tc_tls_ctx_free(c);
  /* an unknown identity */
  cc.psk_identity = "nobody";
  cc.psk_key = key1;
  c = mk(&cc);
  pair_init(&p, c, NULL, s, BYTE);
  pump(&p);
  CHECK_ERR(p.end[1], TC_TLS_E_PSK, "server: unknown identity");
  CHECK(strstr(tc_tls_errmsg(p.end[1]), "nobody") != NULL, "message names it: %s", tc_tls_errmsg(p.end[1]));
  CHECK_STATE(p.end[0], TC_TLS_FAILED, "client: refused");
  pair_free(&p);
  tc_tls_ctx_free(c);
  /* the table is bounded */
  int rc = 0;
  char id[32];
  for (int i = 0; i < 63 && rc == 0; i++) {
    snprintf(id, sizeof id, "id-%d", i);
    rc = tc_tls_ctx_add_psk(s, id, key1, sizeof key1);
  }
  CHECK_EQ(rc, 0, "64 identities fit");
  CHECK_EQ(tc_tls_ctx_add_psk(s, "one-too-many", key1, sizeof key1), TC_TLS_E_INVALID, "65th refused");
  CHECK_EQ(tc_tls_ctx_add_psk(s, "id-3", key1, 8), 0, "replacing an entry still works when full");
  tc_tls_ctx_free(s);
}

/* 1 MiB each way at once, random chunks, bounded buffers. */
static void test_large(void) {
  tc_tls_config sc = server_cfg(), cc = client_cfg();
  sc.out_cap = cc.out_cap = 32 * 1024;
  sc.in_cap = cc.in_cap = 24 * 1024;
  tc_tls_ctx *s = mk(&sc), *c = mk(&cc);
  size_t n = 1 << 20;
  uint8_t *a = malloc(n), *b = malloc(n);
  uint64_t r = 42;
  for (size_t i = 0; i < n; i++) { a[i] = (uint8_t)tc_rand(&r); b[i] = (uint8_t)tc_rand(&r); }
  for (int mode = ALL; mode <= RANDOM; mode += 2) {
    pair p;
    pair_init(&p, c, "localhost", s, mode);
    p.src[0] = a; p.src_len[0] = n;
    p.src[1] = b; p.src_len[1] = n;
    pump(&p);
    CHECK(p.got[1].len == n && memcmp(p.got[1].buf, a, n) == 0, "server received 1 MiB intact (%zu)", p.got[1].len);
    CHECK(p.got[0].len == n && memcmp(p.got[0].buf, b, n) == 0, "client received 1 MiB intact (%zu)", p.got[0].len);
    CHECK(p.max_out[0] <= 32 * 1024 && p.max_out[1] <= 32 * 1024, "ciphertext out bounded: %zu %zu", p.max_out[0], p.max_out[1]);
    CHECK(tc_tls_buffer_bytes(p.end[0]) <= 8192 && tc_tls_buffer_bytes(p.end[1]) <= 8192, "idle after the transfer: %zu %zu bytes held",
          tc_tls_buffer_bytes(p.end[0]), tc_tls_buffer_bytes(p.end[1]));
    exchange(&p, "after shrinking");
    /* the input bound: an open session that is not read takes at most in_cap */
    uint8_t junk[4096];
    memset(junk, 0x17, sizeof junk);
    size_t took = 0;
    for (int i = 0; i < 100; i++) {
      long f = tc_tls_feed(p.end[1], junk, sizeof junk);
      if (f <= 0) break;
      took += (size_t)f;
    }
    CHECK(took == 24 * 1024, "feed stops at in_cap: %zu", took);
    pair_free(&p);
  }
  free(a);
  free(b);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(c);
}

static void test_close(void) {
  tc_tls_config sc = server_cfg(), cc = client_cfg();
  tc_tls_ctx *s = mk(&sc), *c = mk(&cc);
  pair p;
  pair_init(&p, c, "localhost", s, RANDOM);
  pump(&p);
  static const uint8_t last[] = "last words";
  CHECK_EQ(tc_tls_write(p.end[0], last, sizeof last), sizeof last, "write");
  CHECK_EQ(tc_tls_close(p.end[0]), 0, "close");
  CHECK_EQ(tc_tls_close(p.end[0]), 0, "close again");
  CHECK_STATE(p.end[0], TC_TLS_CLOSING, "closing");
  CHECK_EQ(tc_tls_write(p.end[0], last, 1), TC_TLS_E_CLOSED, "no writes after close");
  pump(&p);
  CHECK(p.got[1].len == sizeof last && memcmp(p.got[1].buf, last, sizeof last) == 0, "data before close_notify arrives");
  CHECK_STATE(p.end[1], TC_TLS_PEER_CLOSED, "server saw close_notify");
  CHECK_EQ(info(p.end[1]).alert_received, 0x100, "close_notify is a warning alert 0");
  CHECK(tc_tls_write(p.end[1], last, 4) == 4, "the server may still write");
  CHECK_EQ(tc_tls_close(p.end[1]), 0, "server answers");
  CHECK_STATE(p.end[1], TC_TLS_CLOSED, "server closed both ways");
  pump(&p);
  CHECK_STATE(p.end[0], TC_TLS_CLOSED, "client closed both ways");
  CHECK(p.got[0].len == 4, "the server's last bytes arrived before its close_notify");
  pair_free(&p);
  /* close during the handshake */
  pair_init(&p, c, "localhost", s, ALL);
  CHECK_EQ(tc_tls_close(p.end[0]), 0, "close in handshake");
  CHECK_STATE(p.end[0], TC_TLS_CLOSED, "closed");
  pair_free(&p);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(c);
}

static void test_bad_input(void) {
  tc_tls_config sc = server_cfg(), cc = client_cfg();
  tc_tls_ctx *s = mk(&sc), *c = mk(&cc);
  char err[256];
  /* plain text where a ClientHello should be */
  tc_tls *t = tc_tls_new(s, NULL, err, sizeof err);
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  long f = tc_tls_feed(t, (const uint8_t *)http, sizeof http - 1);
  CHECK_EQ(f, TC_TLS_E_HANDSHAKE, "HTTP to a TLS server");
  CHECK(tc_tls_errmsg(t)[0] != '\0', "with a message");
  uint8_t out[64];
  CHECK_EQ(tc_tls_read(t, out, sizeof out), TC_TLS_E_HANDSHAKE, "read reports it too");
  tc_tls_free(t);

  /* random bytes and mutated ClientHellos: an error or a wait, never a crash */
  uint64_t r = 7;
  uint8_t hello[4096];
  tc_tls *cl = tc_tls_new(c, "localhost", err, sizeof err);
  long hn = tc_tls_take_out(cl, hello, sizeof hello);
  tc_tls_free(cl);
  CHECK(hn > 100, "a ClientHello: %ld", hn);
  int failed = 0;
  for (int i = 0; i < 300; i++) {
    uint8_t buf[4096];
    size_t n;
    if (i % 2 == 0) {
      n = 1 + tc_rand(&r) % 600;
      for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)tc_rand(&r);
      if (i % 4 == 0) { buf[0] = 0x16; buf[1] = 3; buf[2] = 1; }
    } else {
      n = (size_t)hn;
      memcpy(buf, hello, n);
      for (int k = 0; k < 3; k++) buf[5 + tc_rand(&r) % (n - 5)] ^= (uint8_t)(1 + tc_rand(&r) % 255);
    }
    t = tc_tls_new(s, NULL, err, sizeof err);
    f = tc_tls_feed(t, buf, n);
    tc_tls_state st = tc_tls_get_state(t);
    CHECK(st == TC_TLS_HANDSHAKING || (st == TC_TLS_FAILED && f < 0), "case %d: state %d", i, (int)st);
    failed += st == TC_TLS_FAILED;
    uint8_t sink[8192];
    while (tc_tls_take_out(t, sink, sizeof sink) > 0) {}
    tc_tls_free(t);
  }
  CHECK(failed > 100, "most garbage is refused at once: %d", failed);

  /* after the handshake: a truncated record waits, a forged one fails */
  pair p;
  pair_init(&p, c, "localhost", s, ALL);
  pump(&p);
  static const uint8_t msg[] = "0123456789abcdef";
  tc_tls_write(p.end[0], msg, sizeof msg);
  uint8_t rec[512];
  long rn = tc_tls_take_out(p.end[0], rec, sizeof rec);
  CHECK(rn > 20, "one record");
  CHECK_EQ(tc_tls_feed(p.end[1], rec, (size_t)rn - 5), rn - 5, "most of it");
  CHECK_EQ(tc_tls_read(p.end[1], out, sizeof out), 0, "truncated: nothing yet");
  CHECK_STATE(p.end[1], TC_TLS_OPEN, "still open");
  CHECK_EQ(tc_tls_feed(p.end[1], rec + rn - 5, 5), 5, "the rest");
  CHECK_EQ(tc_tls_read(p.end[1], out, sizeof out), sizeof msg, "whole record");
  tc_tls_write(p.end[0], msg, sizeof msg);
  rn = tc_tls_take_out(p.end[0], rec, sizeof rec);
  rec[rn - 3] ^= 0x40; /* forge the tag */
  tc_tls_feed(p.end[1], rec, (size_t)rn);
  CHECK_EQ(tc_tls_read(p.end[1], out, sizeof out), TC_TLS_E_PROTOCOL, "forged record");
  CHECK(strstr(tc_tls_errmsg(p.end[1]), "mac") != NULL || strstr(tc_tls_errmsg(p.end[1]), "decrypt") != NULL,
        "message: %s", tc_tls_errmsg(p.end[1]));
  CHECK(tc_tls_pending_out(p.end[1]) > 0, "our alert is pending");
  CHECK_EQ(tc_tls_feed(p.end[1], rec, 1), TC_TLS_E_PROTOCOL, "the failure is latched");
  pair_free(&p);
  tc_tls_ctx_free(s);
  tc_tls_ctx_free(c);
}

static void test_config(void) {
  tc_tls_ctx *c = NULL;
  char err[256];
  tc_tls_config k = server_cfg();
  k.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  k.cert_len = strlen(k.cert_pem);
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "bad certificate");
  CHECK(c == NULL && strncmp(err, "certificate", 11) == 0, "message: %s", err);
  k = server_cfg();
  k.key_pem = cli_key.pem; k.key_len = cli_key.len;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "key does not match");
  CHECK(strstr(err, "private key") != NULL, "message: %s", err);
  k = server_cfg();
  k.ca_pem = "nothing"; k.ca_len = 7;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "empty CA bundle");
  k = server_cfg();
  k.key_pem = NULL;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "cert without key");
  k = server_cfg();
  k.transport = TC_TLS_DATAGRAM;
  k.max_version = 0x0304;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_INVALID, "TLS 1.3 over datagrams");
  k.max_version = 0;
  k.mtu = 100;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_INVALID, "DTLS MTU too small");
  k = server_cfg();
  k.in_cap = 1000;
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_INVALID, "in_cap too small");
  k = server_cfg();
  k.ciphers = "NO-SUCH-SUITE";
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "bad cipher list");
  k = client_cfg();
  k.psk_identity = "x";
  CHECK_EQ(tc_tls_ctx_new(&k, &c, err, sizeof err), TC_TLS_E_CONFIG, "PSK identity without key");
  k = server_cfg();
  tc_tls_ctx *s = mk(&k);
  CHECK(tc_tls_new(s, "localhost", err, sizeof err) == NULL, "a server session takes no host");
  tc_tls_config dk = server_cfg();
  dk.transport = TC_TLS_DATAGRAM;
  tc_tls_ctx *ds = mk(&dk);
  CHECK(tc_tls_new(ds, NULL, err, sizeof err) == NULL && strstr(err, "tc_dtls_listen") != NULL, "DTLS server: listen first");
  tc_tls_ctx_free(ds);
  CHECK_EQ(tc_tls_ctx_add_psk(s, "", key1, 16), TC_TLS_E_INVALID, "empty identity");
  CHECK_EQ(tc_tls_ctx_add_psk(s, "x", key1, 0), TC_TLS_E_INVALID, "empty key");
  tc_tls_ctx_free(s);
  CHECK(strcmp(tc_tls_error_name(TC_TLS_E_VERIFY), "VERIFY") == 0 && strcmp(tc_tls_error_name(TC_TLS_E_CLOSED), "CLOSED") == 0 &&
            strcmp(tc_tls_error_name(-1), "UNKNOWN") == 0,
        "error names");
}

int main(void) {
  if (system("openssl version >/dev/null 2>&1") != 0) {
    const char *ci = getenv("CI");
    if (ci == NULL || ci[0] == '\0' || strcmp(ci, "0") == 0 || strcmp(ci, "false") == 0) {
      printf("tls-tests: SKIPPED (CI is not set): the openssl command line tool makes the test certificates\n");
      return 0;
    }
    fprintf(stderr, "tls-tests: the openssl command line tool is required with CI set\n");
    return 1;
  }
  make_certs();
  test_config();
  test_cert_handshake();
  test_verification();
  test_mutual();
  test_sni();
  test_alpn();
  test_psk();
  test_large();
  test_close();
  test_bad_input();
  test_dtls();
  test_tls_interop(dir);
  test_tls_libcoap(dir);
  remove_certs();
  free(ca.pem); free(ca2.pem); free(srv_cert.pem); free(srv_key.pem); free(srv2_cert.pem); free(srv2_key.pem);
  free(cli_cert.pem); free(cli_key.pem); free(cli2_cert.pem); free(cli2_key.pem);
  printf("tls-tests: %lu passed, %lu failed\n", tc_test_passed, tc_test_failed);
  return tc_test_failed == 0 ? 0 : 1;
}

/*
 * test_dtls.c — DTLS 1.2 through the same record layer: datagram boundaries, the stateless
 * cookie exchange, retransmission driven by the caller, replayed/forged/truncated records,
 * PSK and certificates, close_notify. Sessions are wired back to back in memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "tls.h"
#include "tls_test.h"

static const uint8_t PEER_A[] = { 10, 0, 0, 1, 0x16, 0x33 };
static const uint8_t psk_key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static tc_tls_ctx *dctx(tc_tls_config *cfg) {
  cfg->transport = TC_TLS_DATAGRAM;
  tc_tls_ctx *c = NULL;
  char err[256];
  int rc = tc_tls_ctx_new(cfg, &c, err, sizeof err);
  CHECK(rc == 0, "DTLS ctx: %s", err);
  if (c == NULL) exit(1);
  return c;
}

static tc_tls_config psk_server(void) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = TC_TLS_SERVER;
  c.psk_hint = "coap";
  return c;
}

static tc_tls_config psk_client(const uint8_t *key) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = TC_TLS_CLIENT;
  c.psk_identity = "node-7";
  c.psk_key = key;
  c.psk_key_len = 16;
  c.retransmit_ms = 20;
  return c;
}

typedef struct {
  uint8_t msg[8][1500];
  size_t len[8];
  int n;
} inbox;

/* Move datagrams both ways until quiet; messages read are collected. drop_from_server drops
 * that many of the server's next datagrams (a lost flight). */
static void dpump(tc_tls *c, tc_tls *s, inbox *to_c, inbox *to_s, int drop_from_server) {
  uint8_t buf[2048];
  for (int round = 0; round < 1000; round++) {
    int progress = 0;
    long n;
    while ((n = tc_tls_take_out(c, buf, sizeof buf)) > 0) { tc_tls_feed(s, buf, (size_t)n); progress = 1; }
    while ((n = tc_tls_take_out(s, buf, sizeof buf)) > 0) {
      if (drop_from_server > 0) drop_from_server--;
      else tc_tls_feed(c, buf, (size_t)n);
      progress = 1;
    }
    for (int d = 0; d < 2; d++) {
      tc_tls *t = d == 0 ? c : s;
      inbox *in = d == 0 ? to_c : to_s;
      while ((n = tc_tls_read(t, buf, sizeof buf)) > 0) {
        if (in != NULL && in->n < 8) {
          memcpy(in->msg[in->n], buf, (size_t)n);
          in->len[in->n++] = (size_t)n;
        }
        progress = 1;
      }
    }
    if (!progress) return;
  }
}

/* ClientHello -> HelloVerifyRequest -> ClientHello with cookie -> a server session. */
static tc_tls *accept_via_cookie(tc_tls_ctx *sc, tc_tls *c, const uint8_t *peer, size_t peer_len) {
  uint8_t dg[2048], hvr[512];
  size_t hvr_len = 0;
  tc_tls *s = NULL;
  long n = tc_tls_take_out(c, dg, sizeof dg);
  CHECK(n > 0, "ClientHello datagram");
  int r = tc_dtls_listen(sc, dg, (size_t)n, peer, peer_len, hvr, sizeof hvr, &hvr_len, &s);
  CHECK_EQ(r, TC_DTLS_HELLO_VERIFY, "first ClientHello gets a HelloVerifyRequest");
  CHECK(s == NULL && hvr_len > 0, "no session before the cookie");
  tc_tls_feed(c, hvr, hvr_len);
  long k; /* the last datagram: a slow run may retransmit the first ClientHello before it */
  for (n = 0; (k = tc_tls_take_out(c, dg, sizeof dg)) > 0;) n = k;
  CHECK(n > 0, "ClientHello with the cookie");
  r = tc_dtls_listen(sc, dg, (size_t)n, peer, peer_len, hvr, sizeof hvr, &hvr_len, &s);
  CHECK_EQ(r, TC_DTLS_ACCEPT, "cookie accepted");
  CHECK(s != NULL && tc_tls_pending_out(s) > 0, "the server's flight is pending");
  return s;
}

static void test_dtls_psk(void) {
  tc_tls_config scfg = psk_server(), ccfg = psk_client(psk_key);
  tc_tls_ctx *sc = dctx(&scfg), *cc = dctx(&ccfg);
  CHECK_EQ(tc_tls_ctx_add_psk(sc, "node-7", psk_key, sizeof psk_key), 0, "add_psk");
  char err[256];
  tc_tls *c = tc_tls_new(cc, NULL, err, sizeof err);
  tc_tls *s = accept_via_cookie(sc, c, PEER_A, sizeof PEER_A);
  if (s == NULL) { tc_tls_free(c); return; }
  inbox to_c = { .n = 0 }, to_s = { .n = 0 };
  dpump(c, s, &to_c, &to_s, 0);
  CHECK(tc_tls_get_state(c) == TC_TLS_OPEN && tc_tls_get_state(s) == TC_TLS_OPEN, "DTLS PSK open: %s / %s",
        tc_tls_errmsg(c), tc_tls_errmsg(s));
  tc_tls_info si;
  tc_tls_get_info(s, &si);
  CHECK_EQ(si.version, 0xFEFD, "DTLS 1.2");
  CHECK(strcmp(si.cipher, "PSK-AES128-CCM8") == 0, "RFC 7925 suite: %s", si.cipher);
  CHECK(strcmp(si.psk_identity, "node-7") == 0 && si.alpn[0] == '\0', "identity %s, no ALPN over DTLS", si.psk_identity);
  static uint8_t m[3][1300];
  size_t maxp = tc_tls_max_plaintext(c);
  CHECK(maxp > 1000 && maxp < 1232 && maxp + 1 <= sizeof m[0], "record payload under the MTU: %zu", maxp);
  /* boundaries: three messages stay three messages */
  size_t sizes[3] = { 1, 500, maxp };
  for (int i = 0; i < 3; i++) {
    memset(m[i], 'a' + i, sizeof m[i]);
    CHECK_EQ(tc_tls_write(c, m[i], sizes[i]), sizes[i], "write one message");
  }
  CHECK_EQ(tc_tls_write(c, m[0], maxp + 1), TC_TLS_E_INVALID, "larger than a record");
  CHECK_EQ(tc_tls_get_state(c), TC_TLS_OPEN, "an oversize write does not fail the session");
  uint8_t small[8];
  CHECK_EQ(tc_tls_take_out(c, small, sizeof small), TC_TLS_E_INVALID, "a datagram never splits");
  dpump(c, s, &to_c, &to_s, 0);
  CHECK_EQ(to_s.n, 3, "three messages");
  for (int i = 0; i < 3 && i < to_s.n; i++)
    CHECK(to_s.len[i] == sizes[i] && to_s.msg[i][0] == 'a' + i, "message %d: %zu bytes", i, to_s.len[i]);
  CHECK_EQ(tc_tls_timeout_ms(c), -1, "no retransmission pending once open");

  /* a replayed record is dropped; a forged or truncated one too; the session lives on */
  uint8_t rec[2048] = { 0 };
  tc_tls_write(c, (const uint8_t *)"once", 4);
  long rn = tc_tls_take_out(c, rec, sizeof rec);
  uint8_t out[2048];
  tc_tls_feed(s, rec, (size_t)rn);
  CHECK_EQ(tc_tls_read(s, out, sizeof out), 4, "delivered once");
  tc_tls_feed(s, rec, (size_t)rn);
  CHECK_EQ(tc_tls_read(s, out, sizeof out), 0, "replay dropped");
  tc_tls_write(c, (const uint8_t *)"forged", 6);
  rn = tc_tls_take_out(c, rec, sizeof rec);
  rec[rn - 2] ^= 1;
  tc_tls_feed(s, rec, (size_t)rn);
  CHECK_EQ(tc_tls_read(s, out, sizeof out), 0, "forged record dropped");
  tc_tls_feed(s, rec, (size_t)rn / 2);
  CHECK_EQ(tc_tls_read(s, out, sizeof out), 0, "truncated record dropped");
  CHECK_EQ(tc_tls_get_state(s), TC_TLS_OPEN, "still open after bad records");
  tc_tls_write(c, (const uint8_t *)"after", 5);
  dpump(c, s, NULL, NULL, 0);
  to_s.n = 0;
  tc_tls_write(c, (const uint8_t *)"after", 5);
  dpump(c, s, &to_c, &to_s, 0);
  CHECK(to_s.n == 1 && to_s.len[0] == 5, "good records still flow");

  /* bounded input queue */
  int taken = 0;
  for (int i = 0; i < 100; i++) taken += tc_tls_feed(s, rec, 100) > 0;
  CHECK_EQ(taken, 64, "64 datagrams queue per session");
  while (tc_tls_read(s, out, sizeof out) > 0) {}

  /* close_notify */
  tc_tls_close(c);
  dpump(c, s, NULL, NULL, 0);
  CHECK_EQ(tc_tls_get_state(s), TC_TLS_PEER_CLOSED, "server saw close_notify");
  tc_tls_free(c);
  tc_tls_free(s);

  /* a wrong key gets nothing */
  uint8_t bad[16];
  memcpy(bad, psk_key, 16);
  bad[0] ^= 0x80;
  tc_tls_config bcfg = psk_client(bad);
  tc_tls_ctx *bc = dctx(&bcfg);
  c = tc_tls_new(bc, NULL, err, sizeof err);
  s = accept_via_cookie(sc, c, PEER_A, sizeof PEER_A);
  if (s != NULL) {
    to_s.n = 0;
    dpump(c, s, NULL, &to_s, 0);
    CHECK(tc_tls_get_state(s) != TC_TLS_OPEN && tc_tls_get_state(c) != TC_TLS_OPEN, "wrong PSK: no session (%d/%d)",
          (int)tc_tls_get_state(s), (int)tc_tls_get_state(c));
    CHECK_EQ(tc_tls_write(c, (const uint8_t *)"x", 1) > 0, 0, "and no data");
    tc_tls_free(s);
  }
  tc_tls_free(c);
  tc_tls_ctx_free(bc);
  tc_tls_ctx_free(cc);
  tc_tls_ctx_free(sc);
}

/* Thousands of ClientHellos from distinct ports keep nothing; a cookie is bound to its peer. */
static void test_dtls_stateless(void) {
  tc_tls_config scfg = psk_server(), ccfg = psk_client(psk_key);
  tc_tls_ctx *sc = dctx(&scfg), *cc = dctx(&ccfg);
  tc_tls_ctx_add_psk(sc, "node-7", psk_key, sizeof psk_key);
  char err[256];
  tc_tls *c = tc_tls_new(cc, NULL, err, sizeof err);
  uint8_t hello[2048], hvr[512];
  long hn = tc_tls_take_out(c, hello, sizeof hello);
  int hv = 0, other = 0;
  for (int i = 0; i < 3000; i++) {
    uint8_t peer[6] = { 127, 0, 0, 1, (uint8_t)(i >> 8), (uint8_t)i };
    size_t hl = 0;
    tc_tls *s = NULL;
    int r = tc_dtls_listen(sc, hello, (size_t)hn, peer, sizeof peer, hvr, sizeof hvr, &hl, &s);
    if (r == TC_DTLS_HELLO_VERIFY && s == NULL && hl > 0 && hl < (size_t)hn) hv++; /* no amplification */
    else other++;
    tc_tls_free(s);
  }
  CHECK(hv == 3000 && other == 0, "3000 ClientHellos, 3000 smaller HelloVerifyRequests, no session (%d/%d)", hv, other);
  /* the cookie the client gets for PEER_A does not open a session from another peer */
  size_t hl = 0;
  tc_tls *s = NULL;
  tc_dtls_listen(sc, hello, (size_t)hn, PEER_A, sizeof PEER_A, hvr, sizeof hvr, &hl, &s);
  tc_tls_feed(c, hvr, hl);
  /* the last datagram is the ClientHello with the cookie (a retransmitted first one may come
   * before it: the flood took longer than the client's 20 ms timer) */
  long n2 = 0, k;
  while ((k = tc_tls_take_out(c, hello, sizeof hello)) > 0) n2 = k;
  static const uint8_t PEER_B[] = { 10, 0, 0, 2, 0x16, 0x33 };
  int r = tc_dtls_listen(sc, hello, (size_t)n2, PEER_B, sizeof PEER_B, hvr, sizeof hvr, &hl, &s);
  CHECK(r != TC_DTLS_ACCEPT && s == NULL, "a cookie from another address is refused (%d)", r);
  r = tc_dtls_listen(sc, hello, (size_t)n2, PEER_A, sizeof PEER_A, hvr, sizeof hvr, &hl, &s);
  CHECK(r == TC_DTLS_ACCEPT && s != NULL, "the legitimate client is served right after the flood (%d)", r);
  dpump(c, s, NULL, NULL, 0);
  CHECK_EQ(tc_tls_get_state(s), TC_TLS_OPEN, "and completes");
  tc_tls_free(s);
  /* garbage is dropped without a reply */
  uint8_t junk[200];
  uint64_t rng = 5;
  int dropped = 0;
  for (int i = 0; i < 500; i++) {
    for (size_t k = 0; k < sizeof junk; k++) junk[k] = (uint8_t)tc_rand(&rng);
    if (i % 2) { junk[0] = 22; junk[1] = 0xFE; }
    s = NULL;
    r = tc_dtls_listen(sc, junk, 13 + (size_t)(tc_rand(&rng) % 187), PEER_A, sizeof PEER_A, hvr, sizeof hvr, &hl, &s);
    dropped += r == TC_DTLS_DROP && s == NULL;
    tc_tls_free(s);
  }
  CHECK_EQ(dropped, 500, "garbage dropped");
  tc_tls_free(c);
  tc_tls_ctx_free(cc);
  tc_tls_ctx_free(sc);
}

static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

/* A lost flight is retransmitted when the caller says the time has come. */
static void test_dtls_retransmit(void) {
  tc_tls_config scfg = psk_server(), ccfg = psk_client(psk_key);
  scfg.retransmit_ms = 20;
  tc_tls_ctx *sc = dctx(&scfg), *cc = dctx(&ccfg);
  tc_tls_ctx_add_psk(sc, "node-7", psk_key, sizeof psk_key);
  char err[256];
  tc_tls *c = tc_tls_new(cc, NULL, err, sizeof err);
  tc_tls *s = accept_via_cookie(sc, c, PEER_A, sizeof PEER_A);
  if (s == NULL) { tc_tls_free(c); return; }
  dpump(c, s, NULL, NULL, 1000); /* everything the server sends is lost */
  CHECK_EQ(tc_tls_get_state(c), TC_TLS_HANDSHAKING, "stalled");
  long t = tc_tls_timeout_ms(c);
  CHECK(t >= 0 && t <= 20, "a retransmission is scheduled: %ld", t);
  int resent = 0;
  for (int i = 0; i < 200 && (tc_tls_get_state(c) != TC_TLS_OPEN || tc_tls_get_state(s) != TC_TLS_OPEN); i++) {
    sleep_ms(5);
    if (tc_tls_timeout_ms(c) == 0) resent += tc_tls_on_timeout(c) == 1;
    if (tc_tls_timeout_ms(s) == 0) resent += tc_tls_on_timeout(s) == 1;
    dpump(c, s, NULL, NULL, 0);
  }
  CHECK(resent >= 1, "flights retransmitted: %d", resent);
  CHECK(tc_tls_get_state(c) == TC_TLS_OPEN && tc_tls_get_state(s) == TC_TLS_OPEN, "completed after the loss");
  tc_tls_free(c);
  tc_tls_free(s);
  tc_tls_ctx_free(cc);
  tc_tls_ctx_free(sc);
}

static void test_dtls_certs(void) {
  pem_t ca = tls_test_load("ca.pem"), cert = tls_test_load("srv.pem"), key = tls_test_load("srv.key");
  pem_t ccert = tls_test_load("cli.pem"), ckey = tls_test_load("cli.key");
  tc_tls_config scfg;
  memset(&scfg, 0, sizeof scfg);
  scfg.role = TC_TLS_SERVER;
  scfg.cert_pem = cert.pem; scfg.cert_len = cert.len;
  scfg.key_pem = key.pem; scfg.key_len = key.len;
  scfg.ca_pem = ca.pem; scfg.ca_len = ca.len;
  scfg.request_cert = 1;
  scfg.reject_unauthorized = 1;
  tc_tls_config ccfg;
  memset(&ccfg, 0, sizeof ccfg);
  ccfg.role = TC_TLS_CLIENT;
  ccfg.ca_pem = ca.pem; ccfg.ca_len = ca.len;
  ccfg.cert_pem = ccert.pem; ccfg.cert_len = ccert.len;
  ccfg.key_pem = ckey.pem; ccfg.key_len = ckey.len;
  ccfg.reject_unauthorized = 1;
  tc_tls_ctx *sc = dctx(&scfg), *cc = dctx(&ccfg);
  char err[256];
  const char *hosts[] = { "localhost", "wrong.example" };
  for (int i = 0; i < 2; i++) {
    tc_tls *c = tc_tls_new(cc, hosts[i], err, sizeof err);
    tc_tls *s = accept_via_cookie(sc, c, PEER_A, sizeof PEER_A);
    if (s == NULL) { tc_tls_free(c); continue; }
    inbox to_s = { .n = 0 };
    tc_tls_write(c, (const uint8_t *)"x", 1);
    dpump(c, s, NULL, &to_s, 0);
    if (i == 0) {
      CHECK(tc_tls_get_state(c) == TC_TLS_OPEN && tc_tls_get_state(s) == TC_TLS_OPEN, "DTLS certs, mutual: %s / %s",
            tc_tls_errmsg(c), tc_tls_errmsg(s));
      tc_tls_info si;
      tc_tls_get_info(s, &si);
      CHECK(si.peer_cert == 1 && si.verify_result == 0 && strcmp(si.servername, "localhost") == 0, "client verified, SNI %s",
            si.servername);
      tc_tls_write(c, (const uint8_t *)"coap", 4);
      dpump(c, s, NULL, &to_s, 0);
      CHECK(to_s.n == 1 && to_s.len[0] == 4, "data over DTLS with certificates");
    } else {
      CHECK_EQ(tc_tls_error(c), TC_TLS_E_VERIFY, "DTLS hostname mismatch");
      CHECK(tc_tls_get_state(s) != TC_TLS_OPEN, "server not open");
    }
    tc_tls_free(c);
    tc_tls_free(s);
  }
  tc_tls_ctx_free(cc);
  tc_tls_ctx_free(sc);
  free(ca.pem); free(cert.pem); free(key.pem); free(ccert.pem); free(ckey.pem);
}

void test_dtls(void) {
  unsigned long before = tc_test_passed;
  test_dtls_psk();
  test_dtls_stateless();
  test_dtls_retransmit();
  test_dtls_certs();
  printf("dtls: %lu checks\n", tc_test_passed - before);
}

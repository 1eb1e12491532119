/*
 * test_dtls_driver.c — the DTLS layer of the datagram driver (native/driver/dtls.c): a client
 * and a server driver (tcd_dgram + tcdt) wired back to back in memory, driven as the host
 * drives them (every action a call asks for is done and the call repeated).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "addr.h"
#include "dgram.h"
#include "dtls.h"

unsigned long tc_test_passed, tc_test_failed;

static const uint8_t SADDR[TCB_ADDR4_LEN] = {4, 0x16, 0x34, 127, 0, 0, 1}; /* :5684 */
static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

#define CFG_WORDS ((sizeof(tc_ep_config) + sizeof(tc_srv_config)) / 4)

typedef struct node {
  tcd_dgram *d;
  tcdt *t;
  uint8_t addr[TCB_ADDR4_LEN]; /* where its datagrams come from */
  uint32_t requests, responses, failed;
  int last_status;
  uint32_t last_req_id;
  int drop_out; /* drop this many of its next datagrams */
  int pass_out; /* ... after letting this many through */
} node;

/* datagrams in flight: [from node][to node] */
typedef struct wire {
  uint8_t buf[256][1500];
  uint32_t len[256];
  node *to[256];
  const uint8_t *from[256];
  int n;
} wire;
static wire W;

static void take_records(node *x) {
  uint32_t r = 0, i;
  for (i = 0; i < x->d->rx.count; i++) {
    const uint32_t *w = x->d->rx.words + r;
    if (w[TCB_RX_KIND] == TC_EV_REQUEST) {
      x->requests++;
      x->last_req_id = w[TCB_RX_ID];
    } else if (w[TCB_RX_KIND] == TC_EV_RESPONSE) {
      x->responses++;
    } else if (w[TCB_RX_KIND] == TC_EV_FAILED) {
      x->failed++;
      x->last_status = (int32_t)w[TCB_RX_STATUS];
    }
    r += TCB_RX_WORDS + TC_OPT_WORDS * w[TCB_RX_OPT_COUNT];
  }
  tcd_delivered(x->d);
}

static node *NODES[64];
static int NNODES;

/* The node a datagram to addr reaches (NULL: nobody listens there). */
static node *SERVER;
static node *node_at(const uint8_t *addr, uint32_t alen) {
  if (alen == TCB_ADDR4_LEN && memcmp(addr, SADDR, alen) == 0) return SERVER; /* the current one */
  for (int i = 0; i < NNODES; i++)
    if (NODES[i] != NULL && alen == TCB_ADDR4_LEN && memcmp(NODES[i]->addr, addr, alen) == 0) return NODES[i];
  return NULL;
}

static void send_out(node *x) {
  tc_txq *q = tcdt_out(x->t);
  for (uint32_t i = 0; i < q->count; i++) {
    if (x->pass_out > 0) {
      x->pass_out--;
    } else if (x->drop_out > 0) {
      x->drop_out--;
      continue;
    }
    if (W.n < 256 && q->items[i].length <= 1500) {
      memcpy(W.buf[W.n], q->buf + q->items[i].offset, q->items[i].length);
      W.len[W.n] = q->items[i].length;
      W.to[W.n] = node_at(q->buf + q->items[i].addr_offset, q->items[i].addr_length);
      W.from[W.n] = x->addr;
      W.n++;
    }
  }
  tcdt_out_sent(x->t, q->count, 1);
}

static void act(node *x, int a, uint64_t now) {
  if (a == TCD_SEND) {
    while (tcdt_seal(x->t, now) == TCD_SEND) send_out(x);
    send_out(x);
  } else if (a == TCD_DELIVER) {
    take_records(x);
  }
}

/* The end of a host turn: records to JS, the tx queue sealed and sent. */
static void turn_end(node *x, uint64_t now) {
  take_records(x);
  act(x, TCD_SEND, now);
}

static node *CLIENT;

/* Delivers every datagram in flight (and what answering them sends) until quiet. */
static void pump(uint64_t now) {
  for (int round = 0; round < 200 && W.n > 0; round++) {
    static wire cur;
    memcpy(&cur, &W, sizeof W);
    W.n = 0;
    for (int i = 0; i < cur.n; i++) {
      node *to = cur.to[i];
      int a, k = 0;
      if (to == NULL) continue;
      while ((a = tcdt_recv(to->t, now, cur.from[i], TCB_ADDR4_LEN, cur.buf[i], cur.len[i])) > 0 && k++ < 8)
        act(to, a, now);
    }
    turn_end(CLIENT, now);
    turn_end(SERVER, now);
  }
}

/* the first handshake retransmission timeout of new contexts: long (no retransmission on a
 * busy machine) except where a test wants one */
static unsigned RETRANSMIT_MS = 2000;

static tc_tls_ctx *ctx(int server, const uint8_t *key) {
  tc_tls_config c;
  tc_tls_ctx *x = NULL;
  char err[256];
  memset(&c, 0, sizeof c);
  c.transport = TC_TLS_DATAGRAM;
  c.role = server ? TC_TLS_SERVER : TC_TLS_CLIENT;
  c.retransmit_ms = RETRANSMIT_MS;
  if (server) {
    c.psk_hint = "coap";
  } else {
    c.psk_identity = "node-7";
    c.psk_key = key;
    c.psk_key_len = 16;
  }
  CHECK_EQ(tc_tls_ctx_new(&c, &x, err, sizeof err), 0, err);
  if (server && x != NULL) tc_tls_ctx_add_psk(x, "node-7", KEY, sizeof KEY);
  return x;
}

static node *make(int server, const uint8_t *key, uint16_t port, const tcdt_limits *lim) {
  uint32_t cfg[CFG_WORDS];
  uint8_t seed[TCA_SEED_BYTES] = {7, (uint8_t)port};
  tcd_limits dl = {1u << 14, 1u << 17, 64, 1u << 17};
  tc_ep_config e;
  tc_srv_config s;
  int err = 1;
  node *x = (node *)calloc(1, sizeof *x);
  tc_ep_config_default(&e);
  tc_srv_config_default(&s);
  e.max_in_progress = s.max_in_progress = 64;
  e.max_message_size = s.max_message_size = s.obs.max_message_size = 1152;
  memcpy(cfg, &e, sizeof e);
  memcpy(cfg + sizeof e / 4, &s, sizeof s);
  x->d = tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &dl, &err);
  CHECK(x->d != NULL, "tcd_create %d", err);
  x->t = tcdt_create(x->d, ctx(server, key), server, NULL, lim, &err);
  CHECK(x->t != NULL, "tcdt_create %d", err);
  if (server) memcpy(x->addr, SADDR, sizeof SADDR);
  else {
    uint8_t a[TCB_ADDR4_LEN] = {4, (uint8_t)(port >> 8), (uint8_t)port, 127, 0, 0, 1};
    memcpy(x->addr, a, sizeof a);
  }
  for (int i = 0; i <= NNODES && i < 64; i++)
    if (i == NNODES || NODES[i] == NULL) {
      if (i == NNODES) NNODES++;
      NODES[i] = x;
      break;
    }
  return x;
}

static void drop(node *x) {
  if (x == NULL) return;
  for (int i = 0; i < NNODES; i++)
    if (NODES[i] == x) NODES[i] = NULL;
  tcdt_destroy(x->t);
  tcd_destroy(x->d);
  free(x);
}

/* The client sends a NON GET /a to the server. */
static void request(node *c, uint64_t now) {
  uint32_t tx[TCB_TX_REQUEST_WORDS] = {0};
  int a;
  tx[TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
  tx[TCB_TX_REQUEST_CODE] = 1;
    tcb_addr_to_words(SADDR, sizeof SADDR, tx + TCB_TX_REQUEST_FAMILY);
  tx[TCB_TX_REQUEST_TOKEN] = 4;
  while ((a = tcd_flush(c->d, now, tx, TCB_TX_REQUEST_WORDS, NULL, 0)) > 0) act(c, a, now);
  CHECK_EQ(tx[TCB_TX_REQUEST_RC], 0, "request queued");
  act(c, TCD_SEND, now);
}

/* The server answers its last request 2.05 with a payload of n bytes. */
static void respond(node *s, uint64_t now, uint32_t n) {
  static uint8_t body[2048];
  uint32_t tx[TCB_TX_RESPOND_WORDS] = {0};
  int a;
  memset(body, 'x', sizeof body);
  tx[TCB_TX_RESPOND_KIND] = TCB_TX_RESPOND;
  tx[TCB_TX_RESPOND_ID] = s->last_req_id;
  tx[TCB_TX_RESPOND_CODE] = 0x45;
  tx[TCB_TX_RESPOND_PAYLOAD_OFF] = 0;
  tx[TCB_TX_RESPOND_PAYLOAD_LEN] = n;
  while ((a = tcd_flush(s->d, now, tx, TCB_TX_RESPOND_WORDS, body, n)) > 0) act(s, a, now);
  CHECK_EQ(tx[TCB_TX_RESPOND_RC], 0, "response queued");
  act(s, TCD_SEND, now);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A request and its response over a fresh PSK session; returns the client. */
static void test_roundtrip(void) {
  SERVER = make(1, NULL, 0, NULL);
  CLIENT = make(0, KEY, 40000, NULL);
  request(CLIENT, 1000);
  CHECK_EQ(tcdt_get_stats(CLIENT->t)->sessions, 1, "client: a session for the server");
  CHECK_EQ(tcdt_get_stats(CLIENT->t)->half_open, 1, "handshaking");
  pump(1000);
  CHECK_EQ(tcdt_get_stats(SERVER->t)->hello_verify, 1, "one HelloVerifyRequest");
  CHECK_EQ(tcdt_get_stats(SERVER->t)->sessions, 1, "server: one session");
  CHECK_EQ(tcdt_get_stats(SERVER->t)->handshakes, 1, "server: handshake done");
  CHECK_EQ(tcdt_get_stats(CLIENT->t)->handshakes, 1, "client: handshake done");
  CHECK_EQ(SERVER->requests, 1, "the queued request arrived after the handshake");
  respond(SERVER, 1001, 1000);
  pump(1001);
  CHECK_EQ(CLIENT->responses, 1, "the response arrived");
  CHECK(tcdt_get_stats(CLIENT->t)->handshake_bytes > 200, "handshake bytes counted: %llu",
        (unsigned long long)tcdt_get_stats(CLIENT->t)->handshake_bytes);
  /* a response larger than a record cannot be sealed: dropped and counted, the session lives */
  uint64_t before = tcdt_get_stats(SERVER->t)->dropped_out;
  request(CLIENT, 1002);
  pump(1002);
  respond(SERVER, 1002, 1140);
  pump(1002);
  CHECK(tcdt_get_stats(SERVER->t)->dropped_out == before || CLIENT->responses == 2, "big response sealed or counted");
  CHECK_EQ(tcdt_get_stats(SERVER->t)->sessions, 1, "still one session");
}

/* Forged, replayed and truncated records are dropped without effect. */
static void test_bad_records(void) {
  const tcdt_stats *ss = tcdt_get_stats(SERVER->t);
  uint32_t reqs = SERVER->requests;
  request(CLIENT, 2000);
  CHECK_EQ(W.n, 1, "one record in flight");
  static uint8_t rec[1500];
  uint32_t n = W.len[0];
  memcpy(rec, W.buf[0], n);
  pump(2000);
  CHECK_EQ(SERVER->requests, reqs + 1, "delivered once");
  uint64_t rin = ss->records_in;
  int a;
  /* replayed */
  while ((a = tcdt_recv(SERVER->t, 2001, CLIENT->addr, TCB_ADDR4_LEN, rec, n)) > 0) act(SERVER, a, 2001);
  /* forged: one ciphertext bit flipped */
  rec[n - 3] ^= 0x10;
  while ((a = tcdt_recv(SERVER->t, 2001, CLIENT->addr, TCB_ADDR4_LEN, rec, n)) > 0) act(SERVER, a, 2001);
  /* truncated */
  while ((a = tcdt_recv(SERVER->t, 2001, CLIENT->addr, TCB_ADDR4_LEN, rec, n / 2)) > 0) act(SERVER, a, 2001);
  /* garbage from an unknown peer */
  static const uint8_t stranger[TCB_ADDR4_LEN] = {4, 0x99, 0x99, 10, 0, 0, 9};
  uint64_t din = ss->dropped_in;
  while ((a = tcdt_recv(SERVER->t, 2001, stranger, TCB_ADDR4_LEN, rec, n)) > 0) act(SERVER, a, 2001);
  turn_end(SERVER, 2001);
  CHECK_EQ(ss->records_in, rin, "no record decrypted from a replay, a forgery or a truncation");
  CHECK_EQ(SERVER->requests, reqs + 1, "no request from them");
  CHECK_EQ(ss->dropped_in, din + 1, "the stranger's datagram dropped");
  CHECK_EQ(W.n, 0, "nothing answered");
  CHECK_EQ(ss->sessions, 1, "no session from them");
  request(CLIENT, 2002);
  pump(2002);
  CHECK_EQ(SERVER->requests, reqs + 2, "the session still works");
  /* idle for a while (a sweep runs, idle_ms not reached): the session stays and works */
  int a2;
  while ((a2 = tcdt_timer(SERVER->t, 9000)) > 0) act(SERVER, a2, 9000);
  while ((a2 = tcdt_timer(CLIENT->t, 9000)) > 0) act(CLIENT, a2, 9000);
  CHECK_EQ(ss->sessions, 1, "an idle session stays (idle_ms is 10 minutes)");
  request(CLIENT, 9001);
  pump(9001);
  CHECK_EQ(SERVER->requests, reqs + 3, "and works after the sweep");
}

/* Thousands of ClientHellos from distinct ports keep no state; a legitimate client completes
 * during and right after them. */
static void test_flood(void) {
  const tcdt_stats *ss = tcdt_get_stats(SERVER->t);
  uint32_t sessions = ss->sessions;
  uint64_t hv = ss->hello_verify;
  char err[128];
  tc_tls_ctx *cc = ctx(0, KEY);
  tc_tls *probe = tc_tls_new(cc, NULL, err, sizeof err);
  uint8_t hello[1500];
  long hn = tc_tls_take_out(probe, hello, sizeof hello);
  CHECK(hn > 0, "a ClientHello");
  node *legit = make(0, KEY, 50000, NULL);
  node *saved = CLIENT;
  int a;
  for (int i = 0; i < 5000; i++) {
    uint8_t from[TCB_ADDR4_LEN] = {4, (uint8_t)(i >> 8), (uint8_t)i, 127, 0, 0, 2};
    while ((a = tcdt_recv(SERVER->t, 3000, from, TCB_ADDR4_LEN, hello, (uint32_t)hn)) > 0) act(SERVER, a, 3000);
    if (i % 256 == 255) {
      tcdt_out_sent(SERVER->t, 0, 0); /* the flood's HelloVerifyRequests leave */
      W.n = 0;
    }
    if (i == 2500) { /* the legitimate client, during the flood */
      tcdt_out_sent(SERVER->t, 0, 0);
      W.n = 0;
      CLIENT = legit;
      request(legit, 3000);
      pump(3000);
      CLIENT = saved;
    }
  }
  tcdt_out_sent(SERVER->t, 0, 0);
  CHECK_EQ(ss->hello_verify - hv, 5000 + 1, "5000 + 1 HelloVerifyRequests");
  CHECK_EQ(ss->sessions, sessions + 1, "no state for the flood: only the legitimate session");
  CHECK_EQ(tcdt_get_stats(legit->t)->handshakes, 1, "the legitimate client completed during the flood");
  CLIENT = legit;
  request(legit, 3001);
  pump(3001);
  CHECK_EQ(legit->failed, 0, "no failure");
  CLIENT = saved;
  tc_tls_free(probe);
  tc_tls_ctx_free(cc);
  drop(legit);
  tcdt_out_sent(SERVER->t, 0, 0);
  W.n = 0;
}

/* A wrong PSK gets nothing; the client's request fails with the TLS code. */
static void test_wrong_psk(void) {
  uint8_t bad[16];
  memcpy(bad, KEY, 16);
  bad[3] ^= 1;
  node *saved = CLIENT;
  uint32_t reqs = SERVER->requests, sessions = tcdt_get_stats(SERVER->t)->sessions;
  tcdt_limits pl = {0, 0, 0, 0, 0, 0, TCDT_PSK};
  CLIENT = make(0, bad, 41000, &pl);
  request(CLIENT, 4000);
  pump(4000);
  CHECK_EQ(CLIENT->failed, 0, "no answer: bad records are dropped silently (DTLS)");
  { /* both sides give up at their handshake deadline */
    int a;
    uint64_t late = 4000 + 70000;
    CHECK(tcdt_deadline(CLIENT->t) <= 4000 + 15000, "the client's give-up is scheduled");
    while ((a = tcdt_timer(CLIENT->t, late)) > 0) act(CLIENT, a, late);
    turn_end(CLIENT, late);
    while ((a = tcdt_timer(SERVER->t, late)) > 0) act(SERVER, a, late);
    turn_end(SERVER, late);
  }
  CHECK_EQ(SERVER->requests, reqs, "no request reached the server");
  CHECK_EQ(tcdt_get_stats(SERVER->t)->sessions, sessions, "no server session kept");
  CHECK_EQ(tcdt_get_stats(SERVER->t)->half_open, 0, "no half-open handshake left");
  CHECK_EQ(CLIENT->failed, 1, "the request failed");
  CHECK_EQ(CLIENT->last_status, TC_TLS_E_PSK, "with the PSK code");
  CHECK_EQ(tcdt_get_stats(CLIENT->t)->sessions, 0, "client session gone");
  drop(CLIENT);
  CLIENT = saved;
}

/* Bounds: total, per host, and half-open eviction; a lost flight is retransmitted from the
 * timer; idle sessions expire; close_notify ends the peer's session. */
static void test_bounds_and_time(void) {
  tcdt_limits lim = {3, 2, 2, 5000, 60000, 0, 0};
  node *srv = make(1, NULL, 0, &lim), *saved_s = SERVER, *saved_c = CLIENT;
  node *cl[4];
  SERVER = srv;
  for (int i = 0; i < 4; i++) {
    cl[i] = make(0, KEY, (uint16_t)(42000 + i), NULL);
    if (i >= 2) cl[i]->addr[6] = 3; /* another host */
    CLIENT = cl[i];
    request(cl[i], 5000);
    pump(5000);
  }
  const tcdt_stats *ss = tcdt_get_stats(srv->t);
  CHECK_EQ(ss->sessions, 3, "at most 3 sessions");
  CHECK_EQ(ss->refused, 1, "the fourth refused");
  CHECK_EQ(srv->requests, 3, "three served");
  for (int i = 0; i < 4; i++) drop(cl[i]);
  drop(srv);

  /* half-open: handshakes that stall after the cookie are evicted, oldest first */
  RETRANSMIT_MS = 20;
  tcdt_limits lim2 = {100, 100, 2, 5000, 60000, 0, 0};
  srv = make(1, NULL, 0, &lim2);
  SERVER = srv;
  for (int i = 0; i < 3; i++) {
    cl[i] = make(0, KEY, (uint16_t)(43000 + i), NULL);
    CLIENT = cl[i];
    srv->pass_out = 1; /* the HelloVerifyRequest */
    srv->drop_out = 1 + 1000 * (i < 2); /* the first two never hear the ServerHello */
    request(cl[i], 6000);
    pump(6000);
    srv->drop_out = srv->pass_out = 0;
  }
  ss = tcdt_get_stats(srv->t);
  CHECK_EQ(ss->evicted, 1, "one half-open handshake evicted");
  CHECK_EQ(ss->half_open, 2, "two left");
  /* the third lost its first ServerHello too: retransmission from the deadline */
  CHECK_EQ(srv->requests, 0, "not yet");
  uint64_t now = 6000;
  for (int i = 0; i < 50 && srv->requests == 0; i++) {
    int a;
    sleep_ms(10);
    now += 10;
    CLIENT = cl[2];
    CHECK(tcdt_deadline(cl[2]->t) < UINT64_MAX || srv->requests > 0, "a deadline while handshaking");
    while ((a = tcdt_timer(cl[2]->t, now)) > 0) act(cl[2], a, now);
    turn_end(cl[2], now);
    while ((a = tcdt_timer(srv->t, now)) > 0) act(srv, a, now);
    turn_end(srv, now);
    pump(now);
  }
  CHECK_EQ(srv->requests, 1, "the request arrived after a retransmitted flight");
  /* idle expiry */
  int a;
  CHECK(tcdt_deadline(srv->t) <= now + 5000, "a sweep is scheduled");
  while ((a = tcdt_timer(srv->t, now + 70000)) > 0) act(srv, a, now + 70000);
  CHECK_EQ(tcdt_get_stats(srv->t)->sessions, 0, "idle and stalled sessions expired");
  /* close_notify */
  drop(srv);
  srv = make(1, NULL, 0, NULL);
  SERVER = srv;
  node *c = make(0, KEY, 44000, NULL);
  CLIENT = c;
  request(c, 7000);
  pump(7000);
  CHECK_EQ(tcdt_get_stats(srv->t)->sessions, 1, "open");
  while ((a = tcdt_close_all(c->t)) > 0) send_out(c);
  send_out(c);
  pump(7001);
  CHECK_EQ(tcdt_get_stats(srv->t)->sessions, 0, "the server freed the session on close_notify");
  CHECK_EQ(tcdt_get_stats(srv->t)->closed, 1, "counted");
  CHECK(tcdt_memory(srv->t) > 0, "memory");
  drop(c);
  drop(srv);
  for (int i = 0; i < 3; i++) drop(cl[i]);
  SERVER = saved_s;
  CLIENT = saved_c;
}

/* Session resumption: a client that closed its session offers it on the next handshake to the
 * same server, which resumes it from its cache (abbreviated handshake: fewer bytes). */
static void test_resume(void) {
  node *srv = make(1, NULL, 0, NULL), *saved_s = SERVER, *saved_c = CLIENT;
  node *c = make(0, KEY, 45000, NULL);
  int a;
  SERVER = srv;
  CLIENT = c;
  request(c, 8000);
  pump(8000);
  CHECK_EQ(srv->requests, 1, "first session: served");
  CHECK_EQ(tcdt_get_stats(c->t)->resumed, 0, "a full handshake first");
  uint64_t full = tcdt_get_stats(c->t)->handshake_bytes;
  while ((a = tcdt_close_all(c->t)) > 0) send_out(c);
  send_out(c);
  pump(8001);
  CHECK_EQ(tcdt_get_stats(srv->t)->sessions, 0, "closed on the server");
  CHECK_EQ(tcdt_get_stats(c->t)->sessions, 0, "closed on the client");
  request(c, 8002);
  pump(8002);
  CHECK_EQ(srv->requests, 2, "second session: served");
  CHECK_EQ(tcdt_get_stats(c->t)->handshakes, 2, "client: two handshakes");
  CHECK_EQ(tcdt_get_stats(c->t)->resumed, 1, "client: the second resumed the first session");
  CHECK_EQ(tcdt_get_stats(srv->t)->resumed, 1, "server: resumed from its cache");
  uint64_t abbrev = tcdt_get_stats(c->t)->handshake_bytes - full;
  CHECK(abbrev < full, "the abbreviated handshake is smaller: %llu < %llu", (unsigned long long)abbrev,
        (unsigned long long)full);
  /* a new server (empty cache) does a full handshake although the client offers the session */
  while ((a = tcdt_close_all(c->t)) > 0) send_out(c);
  send_out(c);
  pump(8003);
  drop(srv);
  srv = make(1, NULL, 0, NULL);
  SERVER = srv;
  request(c, 8004);
  pump(8004);
  CHECK_EQ(srv->requests, 1, "the new server serves");
  CHECK_EQ(tcdt_get_stats(c->t)->resumed, 1, "no resumption against an unknown session");
  drop(c);
  drop(srv);
  SERVER = saved_s;
  CLIENT = saved_c;
}

int main(void) {
  test_roundtrip();
  test_resume();
  test_bad_records();
  test_flood();
  test_wrong_psk();
  test_bounds_and_time();
  drop(CLIENT);
  drop(SERVER);
  printf("dtls driver: %lu checks passed, %lu failed\n", tc_test_passed, tc_test_failed);
  return tc_test_failed == 0 ? 0 : 1;
}

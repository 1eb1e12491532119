/*
 * test_ep.c — unit tests of the CoAP/UDP messaging layer (ep.c): two endpoints (client and
 * server) driven against each other through their tx queues with injected time, plus raw
 * datagrams for the RFC reactions. Prints "ep-tests: N passed, M failed".
 * Standalone: build with -DTC_EP_TEST_MAIN together with the core sources (exit 1 on failure);
 * otherwise test_ep_run() is the entry point for a combined runner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turbocoap.h"
#include "calls.h"

static int g_pass, g_fail;

#define CHECK(c)                                                                             \
  do {                                                                                       \
    if (c) g_pass++;                                                                         \
    else {                                                                                   \
      g_fail++;                                                                              \
      fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, __func__, #c);    \
    }                                                                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                                       \
  do {                                                                                       \
    long long a_ = (long long)(a), b_ = (long long)(b);                                      \
    if (a_ == b_) g_pass++;                                                                  \
    else {                                                                                   \
      g_fail++;                                                                              \
      fprintf(stderr, "%s:%d: %s: %s is %lld, expected %s = %lld\n", __FILE__, __LINE__,     \
              __func__, #a, a_, #b, b_);                                                     \
    }                                                                                        \
  } while (0)

#define OPT_CAP 80
#define NEVER UINT64_MAX

typedef struct node {
  tc_ep *ep;
  uint8_t addr[4];
  uint8_t buf[1 << 16];
  tc_tx items[64];
  tc_txq tx;
  tc_msg msg;
  tc_opt opts[OPT_CAP];
  tc_ep_event evs[16];
} node;

static void test_cfg(tc_ep_config *c) {
  tc_ep_config_default(c);
  c->dedup_entries = 64;
  c->response_cache_bytes = 4096;
  c->max_in_progress = 16;
  c->max_in_progress_per_peer = 8;
  c->max_client_requests = 16;
  c->con_slots = 8;
  c->max_message_size = 512;
  c->amplification_factor = 0; /* the defence has its own tests (test_harden.c) */
}

static node *node_new(const tc_ep_config *cfg, uint8_t seed_byte, uint8_t last) {
  node *n = calloc(1, sizeof *n);
  size_t sz = tc_ep_size(cfg);
  uint8_t seed[32];
  int i;
  if (n == NULL || sz == 0) {
    fprintf(stderr, "node_new: bad config or no memory\n");
    exit(2);
  }
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(seed_byte * 37u + (unsigned)i * 11u);
  n->ep = malloc(sz);
  if (n->ep == NULL || tc_ep_init(n->ep, sz, cfg, seed) != 0) {
    fprintf(stderr, "node_new: init failed\n");
    exit(2);
  }
  n->addr[0] = 10;
  n->addr[3] = last;
  n->tx.buf = n->buf;
  n->tx.cap = sizeof n->buf;
  n->tx.items = n->items;
  n->tx.item_cap = 64;
  return n;
}

static void node_free(node *n) {
  free(n->ep);
  free(n);
}

static void txreset(node *n) { n->tx.used = n->tx.count = 0; }

static const uint8_t *dg(const node *n, uint32_t i, uint32_t *len) {
  *len = n->tx.items[i].length;
  return n->tx.buf + n->tx.items[i].offset;
}

static int dgdec(const node *n, uint32_t i, tc_msg *m, tc_opt *o) {
  uint32_t len;
  const uint8_t *b = dg(n, i, &len);
  return tc_decode(b, len, TC_UDP, m, o, OPT_CAP);
}

static uint32_t dg_field(const node *n, uint32_t i, int which) {
  tc_msg m;
  tc_opt o[OPT_CAP];
  if (dgdec(n, i, &m, o) < 0) return 0xDEAD;
  return which == 0 ? m.type : which == 1 ? m.code : m.message_id;
}
#define DG_TYPE(n, i) dg_field(n, i, 0)
#define DG_CODE(n, i) dg_field(n, i, 1)
#define DG_MID(n, i) dg_field(n, i, 2)

static int dg_to(const node *n, uint32_t i, const uint8_t *addr) {
  return n->tx.items[i].addr_length == 4 &&
         memcmp(n->tx.buf + n->tx.items[i].addr_offset, addr, 4) == 0;
}

static int dg_same(const node *a, uint32_t i, const node *b, uint32_t j) {
  uint32_t la, lb;
  const uint8_t *pa = dg(a, i, &la), *pb = dg(b, j, &lb);
  return la == lb && memcmp(pa, pb, la) == 0;
}

/* Deliver datagram i of from's tx queue to `to`. */
static int deliver(node *from, uint32_t i, node *to, uint64_t now, tc_ep_event *ev) {
  uint32_t len;
  const uint8_t *b = dg(from, i, &len);
  return t_ep_recv(to->ep, now, from->addr, 4, b, len, &to->tx, &to->msg, to->opts, OPT_CAP,
                    ev);
}

static int inject(node *to, const uint8_t *addr, const uint8_t *b, size_t len, uint64_t now,
                  tc_ep_event *ev) {
  return t_ep_recv(to->ep, now, addr, 4, b, len, &to->tx, &to->msg, to->opts, OPT_CAP, ev);
}

static tc_ep_stats stats(const node *n) {
  tc_ep_stats s;
  tc_ep_get_stats(n->ep, &s);
  return s;
}

/* client request with Uri-Path `path`, 4-byte generated token */
static int req(node *c, const node *s, uint64_t now, uint32_t flags, uint32_t code,
               const char *path, uint32_t *id) {
  uint8_t src[1024];
  tc_opt o[1];
  tc_msg m;
  uint32_t n = (uint32_t)strlen(path);
  memset(&m, 0, sizeof m);
  m.code = code;
  memcpy(src, path, n);
  o[0].number = 11;
  o[0].offset = 0;
  o[0].length = n;
  m.option_count = n ? 1u : 0u;
  return t_ep_request(c->ep, now, s->addr, 4, flags, &m, o, src, 4, &c->tx, id, NULL, NULL);
}

static int resp(node *s, uint32_t id, uint64_t now, uint32_t code, const char *payload) {
  uint8_t src[1024];
  tc_msg m;
  tc_opt o[1];
  uint32_t n = (uint32_t)strlen(payload);
  memset(&m, 0, sizeof m);
  m.code = code;
  memcpy(src, payload, n);
  m.payload_offset = 0;
  m.payload_length = n;
  o[0].number = 12; /* Content-Format: text/plain (0, empty) */
  o[0].offset = 0;
  o[0].length = 0;
  m.option_count = 1;
  return t_ep_respond(s->ep, now, id, &m, o, src, &s->tx);
}

/* Raw message builder. */
typedef struct ropt {
  uint32_t num;
  const char *val;
  uint32_t len;
} ropt;

static size_t mk(uint8_t *out, uint32_t type, uint32_t code, uint32_t mid, const uint8_t *tok,
                 uint32_t tkl, const ropt *ro, uint32_t nopt, const char *payload) {
  uint8_t src[2048];
  tc_opt o[16];
  tc_msg m;
  uint32_t p = 0, i;
  int r;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.code = code;
  m.message_id = mid;
  memcpy(src, tok, tkl);
  m.token_offset = 0;
  m.token_length = tkl;
  p = tkl;
  for (i = 0; i < nopt; i++) {
    o[i].number = ro[i].num;
    o[i].offset = p;
    o[i].length = ro[i].len;
    memcpy(src + p, ro[i].val, ro[i].len);
    p += ro[i].len;
  }
  m.option_count = nopt;
  if (payload) {
    m.payload_offset = p;
    m.payload_length = (uint32_t)strlen(payload);
    memcpy(src + p, payload, m.payload_length);
  }
  r = tc_encode(out, 2048, TC_UDP, &m, o, src);
  if (r < 0) {
    fprintf(stderr, "mk: encode failed %d\n", r);
    exit(2);
  }
  return (size_t)r;
}

static const uint8_t TOK[4] = {0xA1, 0xB2, 0xC3, 0xD4};
static const uint8_t PEER_X[4] = {192, 168, 0, 1};
static const uint8_t PEER_Y[4] = {192, 168, 0, 2};
static const uint8_t PEER_Z[4] = {192, 168, 0, 3};

/* ------------------------------------------------------------------ tests */

static void t_config(void) {
  tc_ep_config c, d;
  uint8_t seed[32] = {0};
  void *mem;
  size_t sz;
  tc_ep_config_default(&c);
  CHECK_EQ(c.ack_timeout_ms, 2000);
  CHECK_EQ(c.ack_random_factor_x1000, 1500);
  CHECK_EQ(c.max_retransmit, 4);
  CHECK_EQ(c.nstart, 1);
  CHECK_EQ(tc_ep_max_transmit_span(&c), 45000);
  CHECK_EQ(tc_ep_max_transmit_wait(&c), 93000);
  CHECK_EQ(tc_ep_exchange_lifetime(&c), 247000);
  CHECK_EQ(tc_ep_non_lifetime(&c), 145000);
  CHECK_EQ(c.response_timeout_ms, tc_ep_max_transmit_wait(&c));
  sz = tc_ep_size(&c);
  CHECK(sz > 0);
  d = c;
  d.dedup_entries = 0;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.dedup_entries = d.max_in_progress; /* must exceed it */
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.max_client_requests = 0;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.con_slots = 0;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.max_message_size = 50;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.ack_random_factor_x1000 = 999;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.max_in_progress = 70000;
  d.dedup_entries = 80000;
  CHECK_EQ(tc_ep_size(&d), 0);
  d = c;
  d.response_cache_bytes = 0; /* allowed: no replay */
  CHECK(tc_ep_size(&d) > 0);
  /* bigger tables need more bytes, exactly accounted */
  d = c;
  d.con_slots = c.con_slots + 1;
  CHECK(tc_ep_size(&d) >= sz + c.max_message_size);
  CHECK_EQ(tc_ep_size(NULL), 0);
  mem = malloc(sz + 8);
  CHECK_EQ(tc_ep_init(mem, sz - 1, &c, seed), TC_E_INVALID);
  CHECK_EQ(tc_ep_init((tc_ep *)((uint8_t *)mem + 4), sz, &c, seed), TC_E_INVALID);
  CHECK_EQ(tc_ep_init(mem, sz, &c, NULL), TC_E_INVALID);
  CHECK_EQ(tc_ep_init(mem, sz, &c, seed), 0);
  CHECK_EQ(tc_ep_next_deadline(mem), NEVER);
  free(mem);
}

static void t_piggyback(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, len;
  tc_ep_event ev;
  tc_msg m, m2;
  tc_opt o[OPT_CAP];
  uint8_t a[32];
  const uint8_t *b;
  test_cfg(&cfg);
  c = node_new(&cfg, 1, 1);
  s = node_new(&cfg, 2, 2);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "hello", &id), 0);
  CHECK(id & 0x80000000u);
  CHECK(id != 0);
  CHECK_EQ(c->tx.count, 1);
  CHECK(dg_to(c, 0, s->addr));
  CHECK_EQ(dgdec(c, 0, &m, o), 1);
  CHECK_EQ(m.type, TC_CON);
  CHECK_EQ(m.code, 1);
  CHECK_EQ(m.token_length, 4);
  CHECK_EQ(stats(c).con_slots_used, 1);
  CHECK_EQ(stats(c).client_requests, 1);

  CHECK_EQ(deliver(c, 0, s, 10, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(ev.flags, TC_EVF_CONFIRMABLE);
  CHECK_EQ((ev.id & 0x80000000u), 0);
  CHECK(ev.id != 0);
  CHECK_EQ(s->msg.option_count, 1);
  CHECK_EQ(s->opts[0].number, 11);
  b = dg(c, 0, &len);
  CHECK(s->opts[0].length == 5 && memcmp(b + s->opts[0].offset, "hello", 5) == 0);
  CHECK_EQ(tc_ep_peer(s->ep, ev.id, a, sizeof a), 4);
  CHECK(memcmp(a, c->addr, 4) == 0);
  CHECK_EQ(tc_ep_peer(c->ep, id, a, sizeof a), 4);
  CHECK(memcmp(a, s->addr, 4) == 0);
  CHECK_EQ(stats(s).in_progress, 1);
  CHECK_EQ(s->tx.count, 0);

  CHECK_EQ(resp(s, ev.id, 20, 0x45, "world"), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK(dg_to(s, 0, c->addr));
  CHECK_EQ(dgdec(s, 0, &m2, o), 1);
  CHECK_EQ(m2.type, TC_ACK);
  CHECK_EQ(m2.code, 0x45);
  CHECK_EQ(m2.message_id, m.message_id);
  CHECK_EQ(m2.token_length, 4);
  {
    uint32_t l1, l2;
    const uint8_t *p1 = dg(c, 0, &l1), *p2 = dg(s, 0, &l2);
    CHECK(memcmp(p1 + m.token_offset, p2 + m2.token_offset, 4) == 0);
  }
  CHECK_EQ(resp(s, ev.id, 21, 0x45, "again"), TC_E_STALE);
  CHECK_EQ(stats(s).in_progress, 0);
  CHECK_EQ(stats(s).dedup_used, 1);

  CHECK_EQ(deliver(s, 0, c, 30, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, TC_EVF_LAST);
  CHECK_EQ(c->msg.code, 0x45);
  b = dg(s, 0, &len);
  CHECK(c->msg.payload_length == 5 && memcmp(b + c->msg.payload_offset, "world", 5) == 0);
  CHECK_EQ(stats(c).client_requests, 0);
  CHECK_EQ(stats(c).con_slots_used, 0);
  CHECK_EQ(tc_ep_peer(c->ep, id, a, sizeof a), TC_E_STALE);
  /* a late duplicate of the ACK matches nothing */
  CHECK_EQ(deliver(s, 0, c, 40, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(c).unmatched, 1);
  /* nothing pending on the client after a spurious timer call */
  txreset(c);
  CHECK_EQ(tc_ep_timer(c->ep, tc_ep_next_deadline(c->ep), &c->tx, c->evs, 16), 0);
  CHECK_EQ(c->tx.count, 0);
  CHECK_EQ(tc_ep_next_deadline(c->ep), NEVER);
  node_free(c);
  node_free(s);
}

static void t_separate(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, sid, rmid, smid;
  tc_ep_event ev;
  uint64_t d;
  test_cfg(&cfg);
  c = node_new(&cfg, 3, 1);
  s = node_new(&cfg, 4, 2);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "slow", &id), 0);
  rmid = DG_MID(c, 0);
  CHECK_EQ(deliver(c, 0, s, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  sid = ev.id;
  CHECK_EQ(tc_ep_next_deadline(s->ep), 1000);
  CHECK_EQ(tc_ep_timer(s->ep, 999, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 0);
  /* duplicate while in progress, before the empty ACK: ignored */
  CHECK_EQ(deliver(c, 0, s, 500, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 0);
  CHECK_EQ(stats(s).duplicates, 1);
  /* the separate-ACK delay passes: empty ACK */
  CHECK_EQ(tc_ep_timer(s->ep, 1000, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  CHECK_EQ(DG_CODE(s, 0), 0);
  CHECK_EQ(DG_MID(s, 0), rmid);
  /* a duplicate now gets the empty ACK again */
  CHECK_EQ(deliver(c, 0, s, 1100, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 2);
  CHECK(dg_same(s, 0, s, 1));
  CHECK_EQ(deliver(s, 0, c, 1001, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(c).con_slots_used, 0); /* retransmission stopped */
  CHECK_EQ(stats(c).client_requests, 1);
  CHECK(tc_ep_next_deadline(c->ep) <= 1001 + 93000);
  txreset(s);
  txreset(c);
  /* the response: a separate CON with a new MID */
  CHECK_EQ(resp(s, sid, 1500, 0x45, "done"), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_CON);
  CHECK_EQ(DG_CODE(s, 0), 0x45);
  smid = DG_MID(s, 0);
  CHECK(smid != rmid);
  CHECK_EQ(stats(s).con_slots_used, 1);
  /* lost: retransmitted within [ACK_TIMEOUT, ACK_TIMEOUT * 1.5] */
  d = tc_ep_next_deadline(s->ep);
  CHECK(d >= 1500 + 2000 && d <= 1500 + 3000);
  CHECK_EQ(tc_ep_timer(s->ep, d, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 2);
  CHECK(dg_same(s, 0, s, 1));
  CHECK_EQ(stats(s).retransmits, 1);
  /* delivered: response event, and an empty ACK goes back */
  CHECK_EQ(deliver(s, 1, c, d, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, TC_EVF_CONFIRMABLE | TC_EVF_LAST);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(DG_TYPE(c, 0), TC_ACK);
  CHECK_EQ(DG_CODE(c, 0), 0);
  CHECK_EQ(DG_MID(c, 0), smid);
  /* a duplicate of the separate response gets the ACK again, no event */
  CHECK_EQ(deliver(s, 0, c, d + 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(c->tx.count, 2);
  CHECK(dg_same(c, 0, c, 1));
  CHECK_EQ(stats(c).duplicates, 1);
  /* the ACK ends the server's retransmission */
  CHECK_EQ(deliver(c, 0, s, d + 2, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(s).con_slots_used, 0);
  /* a late duplicate of the original request: empty ACK (response went separately) */
  txreset(s);
  {
    uint8_t b[64];
    size_t n = mk(b, TC_CON, 1, rmid, TOK, 4, NULL, 0, NULL);
    CHECK_EQ(inject(s, c->addr, b, n, d + 3, &ev), 0);
    CHECK_EQ(ev.kind, TC_EV_NONE);
    CHECK_EQ(s->tx.count, 1);
    CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
    CHECK_EQ(DG_CODE(s, 0), 0);
  }
  node_free(c);
  node_free(s);
}

/* separate CON response never ACKed: MAX_RETRANSMIT retransmissions then dropped */
static void t_separate_exhausted(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id;
  tc_ep_event ev;
  uint64_t t;
  int k;
  test_cfg(&cfg);
  c = node_new(&cfg, 5, 1);
  s = node_new(&cfg, 6, 2);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "x", &id), 0);
  CHECK_EQ(deliver(c, 0, s, 0, &ev), 0);
  CHECK_EQ(tc_ep_timer(s->ep, 1000, &s->tx, s->evs, 16), 0);
  txreset(s);
  CHECK_EQ(resp(s, ev.id, 2000, 0x45, "x"), 0);
  for (k = 0; k < 4; k++) {
    t = tc_ep_next_deadline(s->ep);
    CHECK_EQ(tc_ep_timer(s->ep, t, &s->tx, s->evs, 16), 0);
  }
  CHECK_EQ(s->tx.count, 5);
  CHECK_EQ(stats(s).retransmits, 4);
  CHECK_EQ(stats(s).con_slots_used, 1);
  t = tc_ep_next_deadline(s->ep);
  CHECK_EQ(tc_ep_timer(s->ep, t, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 5);
  CHECK_EQ(stats(s).con_slots_used, 0);
  /* RST to a separate response also ends it */
  txreset(s);
  {
    uint8_t b[64];
    size_t n = mk(b, TC_CON, 1, 0x4242, TOK, 4, NULL, 0, NULL);
    uint32_t smid;
    CHECK_EQ(inject(s, c->addr, b, n, 200000, &ev), 0);
    CHECK_EQ(ev.kind, TC_EV_REQUEST);
    CHECK_EQ(tc_ep_timer(s->ep, 201000, &s->tx, s->evs, 16), 0);
    CHECK_EQ(resp(s, ev.id, 201500, 0x45, "y"), 0);
    CHECK_EQ(stats(s).con_slots_used, 1);
    smid = DG_MID(s, 1);
    b[0] = 0x70;
    b[1] = 0;
    b[2] = (uint8_t)(smid >> 8);
    b[3] = (uint8_t)smid;
    CHECK_EQ(inject(s, c->addr, b, 4, 201600, &ev), 0);
    CHECK_EQ(ev.kind, TC_EV_NONE);
    CHECK_EQ(stats(s).con_slots_used, 0);
  }
  node_free(c);
  node_free(s);
}

static void t_retransmit_timing(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id;
  uint64_t d0, t;
  int k, distinct = 0;
  uint64_t seen[8];
  test_cfg(&cfg);
  s = node_new(&cfg, 8, 2);
  for (k = 0; k < 8; k++) { /* initial timeout is random in [2000, 3000] */
    int j, dup = 0;
    c = node_new(&cfg, (uint8_t)(100 + k), 1);
    CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "x", &id), 0);
    seen[k] = tc_ep_next_deadline(c->ep);
    CHECK(seen[k] >= 2000 && seen[k] <= 3000);
    for (j = 0; j < k; j++) dup |= seen[j] == seen[k];
    distinct += !dup;
    node_free(c);
  }
  CHECK(distinct >= 4);

  c = node_new(&cfg, 9, 1);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "x", &id), 0);
  d0 = tc_ep_next_deadline(c->ep);
  for (k = 1; k <= 4; k++) {
    t = d0 * ((1u << k) - 1u); /* retransmissions at T0, 3T0, 7T0, 15T0 */
    CHECK_EQ(tc_ep_timer(c->ep, t - 1, &c->tx, c->evs, 16), 0);
    CHECK_EQ(c->tx.count, (uint32_t)k);
    CHECK_EQ(tc_ep_next_deadline(c->ep), t);
    CHECK_EQ(tc_ep_timer(c->ep, t, &c->tx, c->evs, 16), 0);
    CHECK_EQ(c->tx.count, (uint32_t)k + 1);
    CHECK(dg_same(c, 0, c, (uint32_t)k));
  }
  CHECK_EQ(stats(c).retransmits, 4);
  t = d0 * 31u; /* give up after the last timeout (16 T0) */
  CHECK_EQ(tc_ep_next_deadline(c->ep), t);
  CHECK_EQ(tc_ep_timer(c->ep, t - 1, &c->tx, c->evs, 16), 0);
  CHECK_EQ(tc_ep_timer(c->ep, t, &c->tx, c->evs, 16), 1);
  CHECK_EQ(c->evs[0].kind, TC_EV_FAILED);
  CHECK_EQ(c->evs[0].id, id);
  CHECK_EQ(c->evs[0].status, TC_E_TIMEOUT);
  CHECK_EQ(c->tx.count, 5);
  CHECK_EQ(stats(c).timeouts, 1);
  CHECK_EQ(stats(c).client_requests, 0);
  CHECK_EQ(stats(c).con_slots_used, 0);
  CHECK(t <= tc_ep_max_transmit_wait(&cfg));
  CHECK_EQ(tc_ep_cancel(c->ep, id), TC_E_STALE);
  node_free(c);
  node_free(s);
}

static void t_loss(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id;
  tc_ep_event ev;
  uint64_t d0, d1;
  test_cfg(&cfg);
  c = node_new(&cfg, 10, 1);
  s = node_new(&cfg, 11, 2);
  /* request lost, retransmission arrives */
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "a", &id), 0);
  d0 = tc_ep_next_deadline(c->ep);
  CHECK_EQ(tc_ep_timer(c->ep, d0, &c->tx, c->evs, 16), 0);
  CHECK_EQ(c->tx.count, 2);
  CHECK_EQ(deliver(c, 1, s, d0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(resp(s, ev.id, d0, 0x45, "A"), 0);
  /* response (ACK) lost: the next retransmission is a duplicate; the cached ACK is replayed */
  d1 = tc_ep_next_deadline(c->ep);
  CHECK_EQ(d1, 3 * d0);
  CHECK_EQ(tc_ep_timer(c->ep, d1, &c->tx, c->evs, 16), 0);
  CHECK_EQ(c->tx.count, 3);
  CHECK_EQ(deliver(c, 2, s, d1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 2);
  CHECK(dg_same(s, 0, s, 1));
  CHECK_EQ(stats(s).replays, 1);
  CHECK_EQ(stats(s).duplicates, 1);
  CHECK_EQ(deliver(s, 1, c, d1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(stats(c).con_slots_used, 0);
  node_free(c);
  node_free(s);
}

static void t_reorder(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t ida, idb, sa, sb;
  tc_ep_event ev;
  test_cfg(&cfg);
  cfg.nstart = 2;
  c = node_new(&cfg, 12, 1);
  s = node_new(&cfg, 13, 2);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "a", &ida), 0);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "b", &idb), 0);
  CHECK_EQ(c->tx.count, 2);
  CHECK_EQ(DG_MID(c, 1), (DG_MID(c, 0) + 1) & 0xFFFF); /* sequential MIDs */
  CHECK_EQ(deliver(c, 1, s, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  sb = ev.id;
  CHECK_EQ(deliver(c, 0, s, 2, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  sa = ev.id;
  CHECK(sa != sb);
  CHECK_EQ(resp(s, sa, 3, 0x45, "A"), 0);
  CHECK_EQ(resp(s, sb, 3, 0x45, "B"), 0);
  CHECK_EQ(deliver(s, 1, c, 4, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, idb);
  CHECK_EQ(c->msg.payload_length, 1);
  CHECK_EQ(s->tx.buf[s->tx.items[1].offset + c->msg.payload_offset], 'B');
  CHECK_EQ(deliver(s, 0, c, 5, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, ida);
  CHECK_EQ(s->tx.buf[s->tx.items[0].offset + c->msg.payload_offset], 'A');
  node_free(c);
  node_free(s);
}

static void t_ping_rst(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, mid;
  tc_ep_event ev;
  uint8_t b[8];
  uint64_t d0;
  test_cfg(&cfg);
  c = node_new(&cfg, 14, 1);
  s = node_new(&cfg, 15, 2);
  CHECK_EQ(tc_ep_ping(c->ep, 0, s->addr, 4, &c->tx, &id), 0);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(c->tx.items[0].length, 4);
  CHECK_EQ(DG_TYPE(c, 0), TC_CON);
  CHECK_EQ(DG_CODE(c, 0), 0);
  CHECK_EQ(deliver(c, 0, s, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_RST);
  CHECK_EQ(DG_MID(s, 0), DG_MID(c, 0));
  CHECK_EQ(stats(s).resets_sent, 1);
  CHECK_EQ(stats(s).format_errors, 0);
  CHECK_EQ(deliver(s, 0, c, 2, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, TC_EVF_LAST);
  CHECK_EQ(stats(c).client_requests, 0);
  /* a ping nobody answers times out (fresh endpoint: no stale early deadline cached) */
  node_free(c);
  c = node_new(&cfg, 114, 1);
  CHECK_EQ(tc_ep_ping(c->ep, 10, PEER_X, 4, &c->tx, &id), 0);
  d0 = tc_ep_next_deadline(c->ep) - 10;
  {
    int k, n = 0;
    uint64_t t = 10;
    for (k = 0; k < 6 && n == 0; k++) {
      t = tc_ep_next_deadline(c->ep);
      n = tc_ep_timer(c->ep, t, &c->tx, c->evs, 16);
    }
    CHECK_EQ(n, 1);
    CHECK_EQ(t, 10 + 31 * d0);
    CHECK_EQ(c->evs[0].kind, TC_EV_FAILED);
    CHECK_EQ(c->evs[0].status, TC_E_TIMEOUT);
  }
  /* RST answering our CON request */
  txreset(c);
  CHECK_EQ(req(c, s, 100, TC_REQ_CON, 1, "r", &id), 0);
  mid = DG_MID(c, 0);
  b[0] = 0x70;
  b[1] = 0;
  b[2] = (uint8_t)(mid >> 8);
  b[3] = (uint8_t)mid;
  CHECK_EQ(inject(c, PEER_Y, b, 4, 101, &ev), 0); /* wrong peer: ignored */
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(c).client_requests, 1);
  CHECK_EQ(inject(c, s->addr, b, 4, 102, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_FAILED);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.status, TC_E_RESET);
  CHECK_EQ(stats(c).client_requests, 0);
  CHECK_EQ(stats(c).con_slots_used, 0);
  /* RST answering a NON request */
  txreset(c);
  CHECK_EQ(req(c, s, 200, 0, 1, "n", &id), 0);
  mid = DG_MID(c, 0);
  b[2] = (uint8_t)(mid >> 8);
  b[3] = (uint8_t)mid;
  CHECK_EQ(inject(c, s->addr, b, 4, 201, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_FAILED);
  CHECK_EQ(ev.status, TC_E_RESET);
  node_free(c);
  node_free(s);
}

static void t_non(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, id2;
  tc_ep_event ev;
  tc_msg m;
  tc_opt o[OPT_CAP];
  test_cfg(&cfg);
  c = node_new(&cfg, 16, 1);
  s = node_new(&cfg, 17, 2);
  CHECK_EQ(req(c, s, 0, 0, 1, "n", &id), 0);
  CHECK_EQ(DG_TYPE(c, 0), TC_NON);
  CHECK_EQ(stats(c).con_slots_used, 0);
  CHECK_EQ(deliver(c, 0, s, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(ev.flags, 0);
  CHECK_EQ(tc_ep_next_deadline(s->ep) > 1000, 1); /* no separate ACK for a NON */
  CHECK_EQ(resp(s, ev.id, 2, 0x45, "N"), 0);
  CHECK_EQ(dgdec(s, 0, &m, o), 1);
  CHECK_EQ(m.type, TC_NON);
  CHECK(m.message_id != DG_MID(c, 0));
  CHECK_EQ(deliver(s, 0, c, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, TC_EVF_LAST);
  CHECK_EQ(c->tx.count, 1); /* no ACK for a NON response */
  /* duplicate NON request: silently ignored (RFC 7252 §4.5), not answered again */
  CHECK_EQ(deliver(c, 0, s, 4, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(stats(s).non_duplicates, 1);
  CHECK_EQ(stats(s).replays, 0);
  /* ... and the client treats a duplicate response as a duplicate: ignored, not redelivered */
  CHECK_EQ(deliver(s, 0, c, 5, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(c->tx.count, 1);
  /* unanswered NON request: TIMEOUT after response_timeout_ms */
  CHECK_EQ(req(c, s, 1000, 0, 1, "m", &id2), 0);
  CHECK_EQ(tc_ep_timer(c->ep, 1000 + 93000 - 1, &c->tx, c->evs, 16), 0);
  CHECK_EQ(tc_ep_timer(c->ep, 1000 + 93000, &c->tx, c->evs, 16), 1);
  CHECK_EQ(c->evs[0].kind, TC_EV_FAILED);
  CHECK_EQ(c->evs[0].id, id2);
  CHECK_EQ(c->evs[0].status, TC_E_TIMEOUT);
  node_free(c);
  node_free(s);
}

/* a raw datagram to the server from PEER_X; returns number of datagrams it queued */
static uint32_t raw(node *s, const uint8_t *b, size_t n, uint64_t now, tc_ep_event *ev) {
  uint32_t before = s->tx.count;
  CHECK_EQ(inject(s, PEER_X, b, n, now, ev), 0);
  return s->tx.count - before;
}

static void t_format_errors(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[128];
  uint64_t fe;
  test_cfg(&cfg);
  s = node_new(&cfg, 18, 2);
#define FE_CASE(expect_rst, ...)                                                             \
  do {                                                                                       \
    const uint8_t d_[] = {__VA_ARGS__};                                                      \
    fe = stats(s).format_errors;                                                             \
    txreset(s);                                                                              \
    CHECK_EQ(raw(s, d_, sizeof d_, 1, &ev), (expect_rst) ? 1u : 0u);                         \
    CHECK_EQ(ev.kind, TC_EV_NONE);                                                           \
    CHECK_EQ(stats(s).format_errors, fe + 1);                                                \
    if (expect_rst) {                                                                        \
      CHECK_EQ(DG_TYPE(s, 0), TC_RST);                                                       \
      CHECK_EQ(DG_MID(s, 0), (uint32_t)d_[2] << 8 | d_[3]);                                  \
      CHECK_EQ(s->tx.items[0].length, 4);                                                    \
    }                                                                                        \
  } while (0)
  FE_CASE(0, 0x80, 0x01, 0x12, 0x34);             /* version 2: silently ignored */
  FE_CASE(1, 0x4F, 0x01, 0x12, 0x35);             /* TKL 15 */
  FE_CASE(1, 0x40, 0x21, 0x00, 0x01);             /* class 1 */
  FE_CASE(0, 0x50, 0xE1, 0x00, 0x02);             /* class 7, NON: ignored */
  FE_CASE(1, 0x40, 0xC0, 0x00, 0x03);             /* class 6 */
  FE_CASE(1, 0x40, 0x61, 0x00, 0x04);             /* class 3 */
  FE_CASE(0, 0x50, 0x00, 0x00, 0x05);             /* Empty NON */
  FE_CASE(1, 0x41, 0x00, 0x00, 0x06, 0xAA);       /* Empty CON with a token */
  FE_CASE(1, 0x40, 0x00, 0x00, 0x07, 0xFF, 0x01); /* Empty CON with a payload */
  FE_CASE(0, 0x40, 0x01, 0x00);                   /* truncated header */
  FE_CASE(1, 0x40, 0x01, 0x00, 0x08, 0xFF);       /* payload marker, no payload */
  FE_CASE(1, 0x40, 0x01, 0x00, 0x09, 0xF0);       /* reserved option nibble */
  FE_CASE(1, 0x44, 0x01, 0x00, 0x0A, 0x01);       /* token past end */
  FE_CASE(0, 0x60, 0x01, 0x00, 0x0B);             /* ACK carrying a request */
  FE_CASE(0, 0x70, 0x45, 0x00, 0x0C);             /* non-empty RST */
  FE_CASE(0, 0x60, 0xE1, 0x00, 0x0D);             /* ACK with a reserved class */
  /* token longer than TC_EP_TOKEN_MAX (33 bytes: TKL 13 + ext 20) */
  memset(b, 0x5A, sizeof b);
  b[0] = 0x4D;
  b[1] = 0x01;
  b[2] = 0;
  b[3] = 0x0E;
  b[4] = 20;
  fe = stats(s).format_errors;
  txreset(s);
  CHECK_EQ(raw(s, b, 5 + 33, 1, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_RST);
  b[0] = 0x5D; /* NON: ignored */
  CHECK_EQ(raw(s, b, 5 + 33, 1, &ev), 0);
  CHECK_EQ(stats(s).format_errors, fe + 2);
  /* 32 bytes is fine (TKL 13 + ext 19) */
  b[0] = 0x4D;
  b[4] = 19;
  b[3] = 0x0F;
  txreset(s);
  CHECK_EQ(raw(s, b, 5 + 32, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(resp(s, ev.id, 1, 0x45, "t"), 0);
  {
    tc_msg m;
    tc_opt o[OPT_CAP];
    CHECK_EQ(dgdec(s, 0, &m, o), 1);
    CHECK_EQ(m.token_length, 32);
    CHECK(memcmp(s->tx.buf + s->tx.items[0].offset + m.token_offset, b + 5, 32) == 0);
  }
  /* more options than the caller's table: rejected like a format error */
  memset(b, 0, sizeof b);
  b[0] = 0x40;
  b[1] = 0x01;
  b[3] = 0x10;
  fe = stats(s).format_errors;
  txreset(s);
  CHECK_EQ(raw(s, b, 4 + OPT_CAP + 1, 1, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_RST);
  CHECK_EQ(stats(s).format_errors, fe + 1);
  /* nothing was remembered or handed out */
  CHECK_EQ(stats(s).in_progress, 0);
  CHECK_EQ(stats(s).dedup_used, 1);
  node_free(s);
#undef FE_CASE
}

static void t_auto_responses(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[256];
  size_t n;
  tc_msg m;
  tc_opt o[OPT_CAP];
  const uint8_t *p;
  uint32_t len;
  ropt unk = {2049, "x", 1};    /* unrecognized critical */
  ropt elect = {2048, "x", 1};  /* unrecognized elective: ignored */
  ropt host0 = {3, "", 0};      /* Uri-Host, length 0 < min 1 */
  ropt ifm9 = {1, "123456789", 9}; /* If-Match, 9 > max 8 */
  ropt hosts[2] = {{3, "a", 1}, {3, "b", 1}}; /* non-repeatable critical, repeated */
  ropt proxy = {35, "coap://x/", 9};
  ropt scheme = {39, "coap", 4};
  test_cfg(&cfg);
  s = node_new(&cfg, 19, 2);

  /* 4.02 piggybacked, with a diagnostic payload naming the option */
  n = mk(b, TC_CON, 1, 100, TOK, 4, &unk, 1, NULL);
  CHECK_EQ(raw(s, b, n, 1, &ev), 1);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(dgdec(s, 0, &m, o), 0);
  CHECK_EQ(m.type, TC_ACK);
  CHECK_EQ(m.code, 0x82);
  CHECK_EQ(m.message_id, 100);
  CHECK_EQ(m.token_length, 4);
  p = dg(s, 0, &len);
  CHECK(memcmp(p + m.token_offset, TOK, 4) == 0);
  CHECK(m.payload_length > 4 && memcmp(p + m.payload_offset + m.payload_length - 4, "2049", 4) == 0);
  CHECK_EQ(stats(s).bad_options, 1);
  CHECK_EQ(stats(s).in_progress, 0);
  /* its duplicate: replayed */
  CHECK_EQ(raw(s, b, n, 2, &ev), 1);
  CHECK(dg_same(s, 0, s, 1));
  CHECK_EQ(stats(s).replays, 1);
  txreset(s);
  /* recognized critical options with bad lengths, repeated non-repeatable */
  n = mk(b, TC_CON, 1, 101, TOK, 4, &host0, 1, NULL);
  CHECK_EQ(raw(s, b, n, 3, &ev), 1);
  CHECK_EQ(DG_CODE(s, 0), 0x82);
  n = mk(b, TC_CON, 1, 102, TOK, 4, &ifm9, 1, NULL);
  CHECK_EQ(raw(s, b, n, 3, &ev), 1);
  CHECK_EQ(DG_CODE(s, 1), 0x82);
  n = mk(b, TC_CON, 1, 103, TOK, 4, hosts, 2, NULL);
  CHECK_EQ(raw(s, b, n, 3, &ev), 1);
  CHECK_EQ(DG_CODE(s, 2), 0x82);
  /* NON with an unrecognized critical option: rejected (RFC 7252 §5.4.1) */
  n = mk(b, TC_NON, 1, 104, TOK, 4, &unk, 1, NULL);
  CHECK_EQ(raw(s, b, n, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(s).bad_options, 5);
  /* unrecognized elective option: delivered */
  n = mk(b, TC_CON, 1, 105, TOK, 4, &elect, 1, NULL);
  CHECK_EQ(raw(s, b, n, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), TC_E_STALE);
  CHECK_EQ(raw(s, b, n, 4, &ev), 0); /* dropped: duplicates ignored */
  CHECK_EQ(ev.kind, TC_EV_NONE);
  txreset(s);

  /* 4.05 for unknown methods, CON and NON */
  n = mk(b, TC_CON, 0x08, 110, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(raw(s, b, n, 5, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  CHECK_EQ(DG_CODE(s, 0), 0x85);
  CHECK_EQ(DG_MID(s, 0), 110);
  n = mk(b, TC_NON, 0x1F, 111, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(raw(s, b, n, 5, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 1), TC_NON);
  CHECK_EQ(DG_CODE(s, 1), 0x85);
  CHECK(DG_MID(s, 1) != 111);
  /* known methods 0.01 .. 0.07 are delivered */
  n = mk(b, TC_NON, 0x07, 112, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(raw(s, b, n, 5, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  txreset(s);

  /* 5.05: we are not a proxy */
  n = mk(b, TC_CON, 1, 120, TOK, 4, &proxy, 1, NULL);
  CHECK_EQ(raw(s, b, n, 6, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  CHECK_EQ(DG_CODE(s, 0), 0xA5);
  n = mk(b, TC_NON, 2, 121, TOK, 4, &scheme, 1, NULL);
  CHECK_EQ(raw(s, b, n, 6, &ev), 1);
  CHECK_EQ(DG_TYPE(s, 1), TC_NON);
  CHECK_EQ(DG_CODE(s, 1), 0xA5);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  node_free(s);

  /* a proxy (TC_EPF_PROXY) gets them delivered, with their options */
  cfg.flags = TC_EPF_PROXY;
  s = node_new(&cfg, 20, 2);
  n = mk(b, TC_CON, 1, 130, TOK, 4, &proxy, 1, NULL);
  CHECK_EQ(raw(s, b, n, 7, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  n = mk(b, TC_NON, 2, 131, TOK, 4, &scheme, 1, NULL);
  CHECK_EQ(raw(s, b, n, 7, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  node_free(s);
  cfg.flags = 2u; /* an unknown flag: invalid */
  CHECK_EQ(tc_ep_size(&cfg), 0);
}

static void t_overload(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64];
  size_t n;
  tc_msg m;
  tc_opt o[OPT_CAP];
  uint32_t ida, idy;
  test_cfg(&cfg);
  cfg.max_in_progress = 2;
  cfg.max_in_progress_per_peer = 1;
  cfg.overload_max_age = 7;
  s = node_new(&cfg, 20, 2);
  n = mk(b, TC_CON, 1, 1, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  ida = ev.id;
  /* per-peer bound */
  n = mk(b, TC_CON, 1, 2, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(dgdec(s, 0, &m, o), 1);
  CHECK_EQ(m.type, TC_ACK);
  CHECK_EQ(m.code, 0xA3);
  CHECK_EQ(m.message_id, 2);
  CHECK_EQ(o[0].number, 14);
  CHECK_EQ(o[0].length, 1);
  CHECK_EQ(s->tx.buf[s->tx.items[0].offset + o[0].offset], 7);
  CHECK_EQ(stats(s).overloads, 1);
  /* another peer fits */
  n = mk(b, TC_NON, 1, 1, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_Y, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  idy = ev.id;
  CHECK_EQ(stats(s).in_progress, 2);
  /* total bound: NON gets a NON 5.03 */
  n = mk(b, TC_NON, 1, 1, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_Z, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 2);
  CHECK_EQ(DG_TYPE(s, 1), TC_NON);
  CHECK_EQ(DG_CODE(s, 1), 0xA3);
  CHECK_EQ(stats(s).overloads, 2);
  /* a duplicate of the overloaded NON request is ignored (RFC 7252 §4.5) */
  CHECK_EQ(inject(s, PEER_Z, b, n, 1, &ev), 0);
  CHECK_EQ(s->tx.count, 2);
  CHECK_EQ(stats(s).non_duplicates, 1);
  /* room again after answering */
  CHECK_EQ(resp(s, ida, 2, 0x45, ""), 0);
  CHECK_EQ(resp(s, idy, 2, 0x45, ""), 0);
  n = mk(b, TC_CON, 1, 3, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(stats(s).peers, 1);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  CHECK_EQ(stats(s).peers, 0);
  node_free(s);
}

static void t_no_response(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64];
  size_t n;
  ropt nr2 = {258, "\x02", 1}, nr26 = {258, "\x1a", 1}, nr8 = {258, "\x08", 1};
  test_cfg(&cfg);
  s = node_new(&cfg, 21, 2);
  /* CON, suppress 2.xx, response 2.05: only the empty ACK */
  n = mk(b, TC_CON, 1, 1, TOK, 4, &nr2, 1, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(resp(s, ev.id, 1, 0x45, "suppressed"), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  CHECK_EQ(DG_CODE(s, 0), 0);
  CHECK_EQ(DG_MID(s, 0), 1);
  CHECK_EQ(inject(s, PEER_X, b, n, 2, &ev), 0); /* duplicate: the empty ACK again */
  CHECK_EQ(s->tx.count, 2);
  CHECK_EQ(DG_CODE(s, 1), 0);
  txreset(s);
  /* suppress 2.xx but the response is 4.04: sent */
  n = mk(b, TC_CON, 1, 2, TOK, 4, &nr2, 1, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 3, &ev), 0);
  CHECK_EQ(resp(s, ev.id, 3, 0x84, ""), 0);
  CHECK_EQ(DG_CODE(s, 0), 0x84);
  txreset(s);
  /* NON, suppress all: nothing at all */
  n = mk(b, TC_NON, 1, 3, TOK, 4, &nr26, 1, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 4, &ev), 0);
  CHECK_EQ(resp(s, ev.id, 4, 0xA0, ""), 0);
  CHECK_EQ(s->tx.count, 0);
  CHECK_EQ(inject(s, PEER_X, b, n, 5, &ev), 0); /* duplicate NON: nothing either */
  CHECK_EQ(s->tx.count, 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  /* layer-generated 4.05 with suppress 4.xx on a CON: empty ACK */
  n = mk(b, TC_CON, 0x09, 4, TOK, 4, &nr8, 1, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 6, &ev), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_CODE(s, 0), 0);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  txreset(s);
  /* suppressed after the empty ACK went out: nothing more */
  n = mk(b, TC_CON, 1, 5, TOK, 4, &nr2, 1, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 10, &ev), 0);
  CHECK_EQ(tc_ep_timer(s->ep, 1010, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(resp(s, ev.id, 1500, 0x44, ""), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(stats(s).con_slots_used, 0);
  node_free(s);
}

static void t_nstart(void) {
  tc_ep_config cfg;
  node *c, *s, *s2;
  uint32_t id1, id2, id3, id4, mid1;
  tc_ep_event ev;
  test_cfg(&cfg);
  c = node_new(&cfg, 22, 1);
  s = node_new(&cfg, 23, 2);
  s2 = node_new(&cfg, 24, 3);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "1", &id1), 0);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "2", &id2), 0);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "3", &id3), 0);
  CHECK_EQ(c->tx.count, 1); /* NSTART = 1: two held */
  CHECK_EQ(stats(c).con_slots_used, 3);
  CHECK_EQ(req(c, s2, 0, TC_REQ_CON, 1, "4", &id4), 0); /* another peer is not held */
  CHECK_EQ(c->tx.count, 2);
  CHECK(dg_to(c, 1, s2->addr));
  mid1 = DG_MID(c, 0);
  /* held requests are not retransmitted */
  {
    uint64_t d = tc_ep_next_deadline(c->ep);
    CHECK(d >= 2000);
  }
  /* #1 answered piggybacked: #2 becomes due now */
  CHECK_EQ(deliver(c, 0, s, 10, &ev), 0);
  CHECK_EQ(resp(s, ev.id, 10, 0x45, "1"), 0);
  CHECK_EQ(deliver(s, 0, c, 11, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id1);
  CHECK(tc_ep_next_deadline(c->ep) <= 11);
  txreset(c);
  txreset(s);
  CHECK_EQ(tc_ep_timer(c->ep, 11, &c->tx, c->evs, 16), 0);
  CHECK_EQ(c->tx.count, 1);
  CHECK(dg_to(c, 0, s->addr));
  CHECK_EQ(DG_MID(c, 0), (mid1 + 1) & 0xFFFF); /* MIDs were assigned at request time */
  CHECK(tc_ep_next_deadline(c->ep) > 11);
  /* #2 gets only an empty ACK: that ends its NSTART count, #3 is released */
  CHECK_EQ(deliver(c, 0, s, 12, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_timer(s->ep, 1012, &s->tx, s->evs, 16), 0);
  CHECK_EQ(deliver(s, 0, c, 1013, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  txreset(c);
  CHECK_EQ(tc_ep_timer(c->ep, 1013, &c->tx, c->evs, 16), 0);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(DG_MID(c, 0), (mid1 + 2) & 0xFFFF);
  /* cancelling a held request */
  txreset(c);
  CHECK_EQ(req(c, s, 1100, TC_REQ_CON, 1, "5", &id4), 0);
  CHECK_EQ(c->tx.count, 0);
  CHECK_EQ(tc_ep_cancel(c->ep, id4), 0);
  CHECK_EQ(tc_ep_cancel(c->ep, id4), TC_E_STALE);
  /* #2 now times out waiting for its separate response */
  {
    int n = tc_ep_timer(c->ep, 1013 + 93000, &c->tx, c->evs, 16);
    CHECK_EQ(n, 1);
    CHECK_EQ(c->evs[0].id, id2);
    CHECK_EQ(c->evs[0].status, TC_E_TIMEOUT);
  }
  node_free(c);
  node_free(s);
  node_free(s2);
}

static void t_dedup_fifo(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64];
  size_t n;
  uint32_t i, pinned;
  uint32_t rlen[8];
  uint8_t rbuf[8][64];
  test_cfg(&cfg);
  cfg.dedup_entries = 4;
  cfg.max_in_progress = 2;
  cfg.max_in_progress_per_peer = 2;
  s = node_new(&cfg, 25, 2);
  for (i = 1; i <= 4; i++) {
    n = mk(b, TC_NON, 1, i, TOK, 4, NULL, 0, NULL);
    CHECK_EQ(inject(s, PEER_X, b, n, i, &ev), 0);
    CHECK_EQ(ev.kind, TC_EV_REQUEST);
    txreset(s);
    CHECK_EQ(resp(s, ev.id, i, 0x45, "r"), 0);
    rlen[i] = s->tx.items[0].length;
    memcpy(rbuf[i], s->tx.buf + s->tx.items[0].offset, rlen[i]);
  }
  CHECK_EQ(stats(s).dedup_used, 4);
  CHECK_EQ(stats(s).dedup_evictions, 0);
  n = mk(b, TC_NON, 1, 5, TOK, 4, NULL, 0, NULL); /* evicts MID 1, the oldest */
  CHECK_EQ(inject(s, PEER_X, b, n, 5, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(resp(s, ev.id, 5, 0x45, "r"), 0);
  CHECK_EQ(stats(s).dedup_evictions, 1);
  CHECK_EQ(stats(s).dedup_used, 4);
  txreset(s);
  n = mk(b, TC_NON, 1, 2, TOK, 4, NULL, 0, NULL); /* MID 2 still remembered */
  CHECK_EQ(inject(s, PEER_X, b, n, 6, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 0); /* a NON duplicate: ignored (RFC 7252 §4.5) */
  CHECK_EQ(stats(s).non_duplicates, 1);
  CHECK(rlen[2] > 0 && rbuf[2][0] != 0);
  n = mk(b, TC_NON, 1, 1, TOK, 4, NULL, 0, NULL); /* MID 1 forgotten: a new request */
  CHECK_EQ(inject(s, PEER_X, b, n, 7, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  CHECK_EQ(stats(s).dedup_evictions, 2); /* MID 2 went */
  /* a request in progress is never evicted */
  n = mk(b, TC_CON, 1, 20, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_Y, b, n, 8, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  pinned = ev.id;
  for (i = 21; i <= 30; i++) {
    n = mk(b, TC_NON, 1, i, TOK, 4, NULL, 0, NULL);
    CHECK_EQ(inject(s, PEER_X, b, n, 9, &ev), 0);
    CHECK_EQ(ev.kind, TC_EV_REQUEST);
    CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  }
  CHECK_EQ(stats(s).dedup_used, 4);
  n = mk(b, TC_CON, 1, 20, TOK, 4, NULL, 0, NULL);
  txreset(s);
  CHECK_EQ(inject(s, PEER_Y, b, n, 10, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE); /* still known as in progress */
  CHECK_EQ(s->tx.count, 0);
  CHECK_EQ(resp(s, pinned, 11, 0x45, "p"), 0);
  node_free(s);
}

static void t_cache_overwrite(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64];
  size_t n;
  uint32_t i;
  uint8_t first[4][64];
  uint32_t flen[4];
  char big[300];
  test_cfg(&cfg);
  cfg.response_cache_bytes = 100;
  s = node_new(&cfg, 26, 2);
  for (i = 0; i < 4; i++) { /* each cached response is 30 bytes: the 4th wraps over the 1st */
    n = mk(b, TC_CON, 1, 1 + i, TOK, 4, NULL, 0, NULL);
    CHECK_EQ(inject(s, PEER_X, b, n, 0, &ev), 0);
    txreset(s);
    CHECK_EQ(resp(s, ev.id, 0, 0x45, "01234567890123456789"), 0);
    flen[i] = s->tx.items[0].length;
    memcpy(first[i], s->tx.buf + s->tx.items[0].offset, flen[i]);
    CHECK_EQ(flen[i], 30);
  }
  txreset(s);
  n = mk(b, TC_CON, 1, 1, TOK, 4, NULL, 0, NULL); /* overwritten: empty ACK */
  CHECK_EQ(inject(s, PEER_X, b, n, 1, &ev), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(s->tx.items[0].length, 4);
  CHECK_EQ(DG_TYPE(s, 0), TC_ACK);
  CHECK_EQ(DG_MID(s, 0), 1);
  CHECK_EQ(stats(s).replays, 0);
  n = mk(b, TC_CON, 1, 2, TOK, 4, NULL, 0, NULL); /* intact: replayed */
  CHECK_EQ(inject(s, PEER_X, b, n, 1, &ev), 0);
  CHECK_EQ(s->tx.count, 2);
  CHECK(s->tx.items[1].length == flen[1] &&
        memcmp(s->tx.buf + s->tx.items[1].offset, first[1], flen[1]) == 0);
  n = mk(b, TC_CON, 1, 4, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 1, &ev), 0);
  CHECK_EQ(s->tx.count, 3);
  CHECK(memcmp(s->tx.buf + s->tx.items[2].offset, first[3], flen[3]) == 0);
  CHECK_EQ(stats(s).replays, 2);
  /* a response larger than the cache is not cached */
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = 0;
  n = mk(b, TC_NON, 1, 9, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 2, &ev), 0);
  txreset(s);
  CHECK_EQ(resp(s, ev.id, 2, 0x45, big), 0);
  CHECK_EQ(inject(s, PEER_X, b, n, 3, &ev), 0); /* duplicate NON: nothing to replay */
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  node_free(s);
}

static void t_bounds(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, id2, mid;
  tc_ep_event ev;
  tc_ep_stats before;
  uint8_t b[64];
  size_t n;
  char big[600];
  test_cfg(&cfg);
  cfg.max_client_requests = 2;
  cfg.con_slots = 1;
  cfg.nstart = 4;
  c = node_new(&cfg, 27, 1);
  s = node_new(&cfg, 28, 2);
  /* CON slots full */
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "a", &id), 0);
  before = stats(c);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "b", &id2), TC_E_FULL);
  CHECK_EQ(tc_ep_ping(c->ep, 0, s->addr, 4, &c->tx, &id2), TC_E_FULL);
  CHECK_EQ(stats(c).client_requests, before.client_requests);
  CHECK_EQ(c->tx.count, 1);
  /* NON still possible; then the client table is full */
  CHECK_EQ(req(c, s, 0, 0, 1, "c", &id2), 0);
  CHECK_EQ(req(c, s, 0, 0, 1, "d", &id2), TC_E_FULL);
  CHECK_EQ(stats(c).client_requests, 2);
  CHECK_EQ(c->tx.count, 2);
  mid = DG_MID(c, 1);
  CHECK_EQ(tc_ep_cancel(c->ep, id), 0);
  CHECK_EQ(stats(c).con_slots_used, 0);
  /* tx queue full: nothing changes (not even the MID counter) */
  c->tx.item_cap = 2;
  CHECK_EQ(req(c, s, 0, 0, 1, "e", &id), TC_E_FULL);
  CHECK_EQ(req(c, s, 0, TC_REQ_CON, 1, "e", &id), TC_E_FULL);
  CHECK_EQ(stats(c).client_requests, 1);
  CHECK_EQ(stats(c).con_slots_used, 0);
  c->tx.item_cap = 64;
  txreset(c);
  CHECK_EQ(req(c, s, 0, 0, 1, "e", &id), 0);
  CHECK_EQ(DG_MID(c, 0), (mid + 1) & 0xFFFF);
  /* too large */
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = 0;
  CHECK_EQ(tc_ep_cancel(c->ep, id), 0);
  CHECK_EQ(req(c, s, 0, 0, 1, big, &id), TC_E_MESSAGE_TOO_LARGE);
  /* bad arguments */
  {
    tc_msg m;
    memset(&m, 0, sizeof m);
    m.code = 0x45;
    CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 4, &c->tx, &id, NULL, NULL),
             TC_E_INVALID);
    m.code = 1;
    CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 0, 0, &m, NULL, NULL, 4, &c->tx, &id, NULL, NULL),
             TC_E_INVALID);
    CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 29, 0, &m, NULL, NULL, 4, &c->tx, &id, NULL, NULL),
             TC_E_INVALID);
    CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 4, 8, &m, NULL, NULL, 4, &c->tx, &id, NULL, NULL),
             TC_E_INVALID);
    CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 33, &c->tx, &id, NULL, NULL),
             TC_E_INVALID);
  }
  node_free(c);

  /* recv with a full tx queue: TC_E_FULL and nothing looked at */
  test_cfg(&cfg);
  c = node_new(&cfg, 29, 1);
  n = mk(b, TC_CON, 1, 7, TOK, 4, NULL, 0, NULL);
  s->tx.item_cap = 0;
  before = stats(s);
  CHECK_EQ(inject(s, c->addr, b, n, 0, &ev), TC_E_FULL);
  CHECK_EQ(stats(s).rx, before.rx);
  s->tx.item_cap = 64;
  s->tx.cap = 4 + 512 - 1; /* bytes: needs addr_len + max_message_size */
  CHECK_EQ(inject(s, c->addr, b, n, 0, &ev), TC_E_FULL);
  s->tx.cap = sizeof s->buf;
  CHECK_EQ(inject(s, c->addr, b, n, 0, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  /* respond with a full tx queue: the exchange stays open */
  s->tx.item_cap = 0;
  CHECK_EQ(resp(s, ev.id, 1, 0x45, "x"), TC_E_FULL);
  CHECK_EQ(stats(s).in_progress, 1);
  /* timer with a full tx queue: the empty ACK stays due */
  CHECK_EQ(tc_ep_timer(s->ep, 1000, &s->tx, s->evs, 16), 0);
  CHECK(tc_ep_next_deadline(s->ep) <= 1000);
  s->tx.item_cap = 64;
  CHECK_EQ(tc_ep_timer(s->ep, 1001, &s->tx, s->evs, 16), 0);
  CHECK_EQ(s->tx.count, 1);
  CHECK_EQ(DG_CODE(s, 0), 0);
  /* now a separate response needs a CON slot: take the only one (s has con_slots = 1) */
  {
    tc_msg m;
    uint32_t id3;
    memset(&m, 0, sizeof m);
    m.code = 0x45;
    CHECK_EQ(t_ep_notify(s->ep, 1001, PEER_Z, 4, TC_REQ_CON, TOK, 4, &m, NULL, NULL, &s->tx,
                          &id),
             0);
    CHECK_EQ(t_ep_notify(s->ep, 1001, PEER_Z, 4, TC_REQ_CON, TOK, 4, &m, NULL, NULL, &s->tx,
                          &id3),
             TC_E_FULL);
    CHECK_EQ(t_ep_notify(s->ep, 1001, PEER_Z, 4, 0, TOK, 4, &m, NULL, NULL, &s->tx, &id3), 0);
  }
  /* every CON slot busy: the separate response goes NON rather than not at all */
  {
    uint32_t k = s->tx.count;
    uint64_t dropped = stats(s).responses_dropped;
    CHECK_EQ(resp(s, ev.id, 1002, 0x45, "x"), 0);
    CHECK_EQ(stats(s).in_progress, 0);
    CHECK_EQ(stats(s).responses_non, 1);
    CHECK_EQ(stats(s).responses_dropped, dropped);
    CHECK_EQ(s->tx.count, k + 1u);
    CHECK_EQ(DG_TYPE(s, k), TC_NON);
    CHECK_EQ(DG_CODE(s, k), 0x45);
  }
  CHECK_EQ(tc_ep_cancel(s->ep, id), 0);
  /* events full: the client timeout stays due */
  txreset(c);
  CHECK_EQ(req(c, s, 0, 0, 1, "t", &id), 0);
  CHECK_EQ(tc_ep_timer(c->ep, 93000, &c->tx, c->evs, 0), 0);
  CHECK(tc_ep_next_deadline(c->ep) <= 93000);
  CHECK_EQ(tc_ep_timer(c->ep, 93001, &c->tx, c->evs, 16), 1);
  CHECK_EQ(c->evs[0].id, id);
  node_free(c);
  node_free(s);
}

static void t_stale(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, sid, sid2;
  tc_ep_event ev;
  test_cfg(&cfg);
  cfg.max_in_progress = 1;
  c = node_new(&cfg, 30, 1);
  s = node_new(&cfg, 31, 2);
  CHECK_EQ(req(c, s, 0, 0, 1, "a", &id), 0);
  CHECK_EQ(deliver(c, 0, s, 0, &ev), 0);
  sid = ev.id;
  CHECK_EQ(resp(s, id, 0, 0x45, ""), TC_E_STALE);   /* a client id */
  CHECK_EQ(resp(s, sid ^ 0x10000u, 0, 0x45, ""), TC_E_STALE); /* wrong generation */
  CHECK_EQ(resp(s, 0, 0, 0x45, ""), TC_E_STALE);
  CHECK_EQ(resp(s, 0xFFFFu, 0, 0x45, ""), TC_E_STALE);
  CHECK_EQ(resp(s, sid, 0, 0x01, ""), TC_E_INVALID); /* not a response code */
  CHECK_EQ(resp(s, sid, 0, 0x45, ""), 0);
  CHECK_EQ(resp(s, sid, 0, 0x45, ""), TC_E_STALE);
  /* the slot is reused with a new generation: the old id stays stale */
  txreset(c);
  CHECK_EQ(req(c, s, 1, 0, 1, "b", &id), 0);
  CHECK_EQ(deliver(c, 0, s, 1, &ev), 0);
  sid2 = ev.id;
  CHECK_EQ(sid2 & 0xFFFFu, sid & 0xFFFFu);
  CHECK(sid2 != sid);
  CHECK_EQ(resp(s, sid, 1, 0x45, ""), TC_E_STALE);
  CHECK_EQ(tc_ep_drop(s->ep, sid), TC_E_STALE);
  CHECK_EQ(tc_ep_peer(s->ep, sid, NULL, 0), TC_E_STALE);
  CHECK_EQ(tc_ep_peer(s->ep, sid2, NULL, 0), 4);
  CHECK_EQ(tc_ep_cancel(c->ep, sid2), TC_E_STALE); /* a server id */
  CHECK_EQ(tc_ep_cancel(c->ep, id), 0);
  CHECK_EQ(tc_ep_cancel(c->ep, id), TC_E_STALE);
  CHECK_EQ(tc_ep_cancel(c->ep, 0x40000000u | 0x10000u), TC_E_STALE); /* no notification */
  node_free(c);
  node_free(s);
}

static void t_tokens(void) {
  tc_ep_config cfg;
  node *a, *b2, *s;
  uint8_t ta[8], tb[8], t2[8], t3[8];
  uint32_t la, lb, id;
  uint64_t x2 = 0, x3 = 0;
  int i;
  tc_msg m;
  test_cfg(&cfg);
  a = node_new(&cfg, 40, 1);
  b2 = node_new(&cfg, 41, 1);
  s = node_new(&cfg, 42, 2);
  memset(&m, 0, sizeof m);
  m.code = 1;
  CHECK_EQ(t_ep_request(a->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 8, &a->tx, &id, ta, &la), 0);
  CHECK_EQ(t_ep_request(b2->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 8, &b2->tx, &id, tb, &lb), 0);
  CHECK_EQ(la, 8);
  CHECK_EQ(lb, 8);
  CHECK(memcmp(ta, tb, 8) != 0);             /* different seeds, different tokens */
  CHECK(DG_MID(a, 0) != DG_MID(b2, 0));      /* and different initial MIDs */
  CHECK_EQ(t_ep_request(a->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 8, &a->tx, &id, t2, &la), 0);
  CHECK_EQ(t_ep_request(a->ep, 0, s->addr, 4, 0, &m, NULL, NULL, 8, &a->tx, &id, t3, &la), 0);
  for (i = 0; i < 8; i++) {
    x2 = x2 << 8 | t2[i];
    x3 = x3 << 8 | t3[i];
  }
  CHECK(x3 != x2 + 1 && x2 != x3 + 1 && x2 != x3); /* not sequential */
  CHECK(memcmp(ta + 4, t2 + 4, 4) != 0);
  /* the token on the wire is the one reported */
  {
    tc_msg w;
    tc_opt o[OPT_CAP];
    CHECK_EQ(dgdec(a, 0, &w, o), 0);
    CHECK_EQ(w.token_length, 8);
    CHECK(memcmp(a->tx.buf + a->tx.items[0].offset + w.token_offset, ta, 8) == 0);
  }
  /* a caller token already in use for this peer is refused */
  {
    uint8_t src[8];
    memcpy(src, ta, 8);
    m.token_offset = 0;
    m.token_length = 8;
    CHECK_EQ(t_ep_request(a->ep, 0, s->addr, 4, 0, &m, NULL, src, -1, &a->tx, &id, NULL, NULL),
             TC_E_INVALID);
    CHECK_EQ(t_ep_request(a->ep, 0, PEER_X, 4, 0, &m, NULL, src, -1, &a->tx, &id, t2, &la), 0);
    CHECK(la == 8 && memcmp(t2, ta, 8) == 0);
  }
  /* zero-length generated tokens: one outstanding per peer */
  CHECK_EQ(t_ep_request(a->ep, 0, PEER_Y, 4, 0, &m, NULL, NULL, 0, &a->tx, &id, NULL, &la), 0);
  CHECK_EQ(la, 0);
  CHECK_EQ(t_ep_request(a->ep, 0, PEER_Y, 4, 0, &m, NULL, NULL, 0, &a->tx, &id, NULL, &la),
           TC_E_INVALID);
  node_free(a);
  node_free(b2);
  node_free(s);
}

static void t_keep_notify(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, nid;
  tc_ep_event ev;
  uint8_t tok[8];
  uint32_t tkl;
  tc_msg m;
  tc_opt ob;
  uint8_t obs = 0;
  test_cfg(&cfg);
  c = node_new(&cfg, 43, 1);
  s = node_new(&cfg, 44, 2);
  memset(&m, 0, sizeof m);
  m.code = 1;
  ob.number = 6; /* Observe: register (0) */
  ob.offset = 0;
  ob.length = 0;
  m.option_count = 1;
  CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 4, TC_REQ_CON | TC_REQ_KEEP, &m, &ob, &obs, 6,
                         &c->tx, &id, tok, &tkl),
           0);
  CHECK_EQ(deliver(c, 0, s, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(resp(s, ev.id, 2, 0x45, "v1"), 0);
  CHECK_EQ(deliver(s, 0, c, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, 0); /* not LAST: kept */
  CHECK_EQ(stats(c).client_requests, 1);
  CHECK_EQ(stats(c).con_slots_used, 0);
  /* a CON notification */
  txreset(s);
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  m.payload_length = 2;
  CHECK_EQ(t_ep_notify(s->ep, 10, c->addr, 4, TC_REQ_CON, tok, tkl, &m, NULL,
                        (const uint8_t *)"v2", &s->tx, &nid),
           0);
  CHECK(nid != 0);
  CHECK_EQ(DG_TYPE(s, 0), TC_CON);
  CHECK_EQ(stats(s).con_slots_used, 1);
  txreset(c);
  CHECK_EQ(deliver(s, 0, c, 11, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.flags, TC_EVF_CONFIRMABLE);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(DG_TYPE(c, 0), TC_ACK);
  CHECK_EQ(deliver(c, 0, s, 12, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_ACKED);
  CHECK_EQ(ev.id, nid);
  CHECK_EQ(stats(s).con_slots_used, 0);
  CHECK_EQ(tc_ep_cancel(s->ep, nid), TC_E_STALE);
  /* NON notifications, several */
  txreset(s);
  txreset(c);
  CHECK_EQ(t_ep_notify(s->ep, 20, c->addr, 4, 0, tok, tkl, &m, NULL, (const uint8_t *)"v3",
                        &s->tx, &nid),
           0);
  CHECK_EQ(nid, 0);
  CHECK_EQ(t_ep_notify(s->ep, 21, c->addr, 4, 0, tok, tkl, &m, NULL, (const uint8_t *)"v4",
                        &s->tx, &nid),
           0);
  CHECK_EQ(DG_TYPE(s, 0), TC_NON);
  CHECK_EQ(deliver(s, 0, c, 22, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.flags, 0);
  CHECK_EQ(deliver(s, 1, c, 23, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(c->tx.count, 0);
  /* no timeout for a kept request once it has a response */
  CHECK_EQ(tc_ep_timer(c->ep, 1000000, &c->tx, c->evs, 16), 0);
  CHECK_EQ(stats(c).client_requests, 1);
  /* cancel: the next notification is answered with RST; the server learns it */
  CHECK_EQ(tc_ep_cancel(c->ep, id), 0);
  txreset(s);
  CHECK_EQ(t_ep_notify(s->ep, 30, c->addr, 4, TC_REQ_CON, tok, tkl, &m, NULL,
                        (const uint8_t *)"v5", &s->tx, &nid),
           0);
  CHECK_EQ(deliver(s, 0, c, 1000001, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(DG_TYPE(c, 0), TC_RST);
  CHECK_EQ(deliver(c, 0, s, 31, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_FAILED);
  CHECK_EQ(ev.id, nid);
  CHECK_EQ(ev.status, TC_E_RESET);
  /* an unanswered CON notification times out with an event */
  txreset(s);
  CHECK_EQ(t_ep_notify(s->ep, 100, PEER_X, 4, TC_REQ_CON, tok, tkl, &m, NULL,
                        (const uint8_t *)"v6", &s->tx, &nid),
           0);
  {
    int k, got = 0;
    for (k = 0; k < 6 && !got; k++) {
      uint64_t t = tc_ep_next_deadline(s->ep);
      got = tc_ep_timer(s->ep, t, &s->tx, s->evs, 16);
    }
    CHECK_EQ(got, 1);
    CHECK_EQ(s->evs[0].kind, TC_EV_FAILED);
    CHECK_EQ(s->evs[0].id, nid);
    CHECK_EQ(s->evs[0].status, TC_E_TIMEOUT);
    CHECK_EQ(s->tx.count, 5);
  }
  node_free(c);
  node_free(s);
}

static void t_response_checks(void) {
  tc_ep_config cfg;
  node *c, *s;
  uint32_t id, mid;
  tc_ep_event ev;
  uint8_t b[64], tok[8];
  uint32_t tkl;
  size_t n;
  tc_msg m;
  ropt unk = {2049, "x", 1};
  test_cfg(&cfg);
  c = node_new(&cfg, 45, 1);
  s = node_new(&cfg, 46, 2);
  memset(&m, 0, sizeof m);
  m.code = 1;
  /* piggybacked response with an unrecognized critical option */
  CHECK_EQ(t_ep_request(c->ep, 0, s->addr, 4, TC_REQ_CON, &m, NULL, NULL, 4, &c->tx, &id, tok,
                         &tkl),
           0);
  mid = DG_MID(c, 0);
  n = mk(b, TC_ACK, 0x45, mid, tok, tkl, &unk, 1, "p");
  txreset(c);
  CHECK_EQ(inject(c, s->addr, b, n, 1, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_FAILED);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(ev.status, TC_E_BAD_OPTION);
  CHECK_EQ(c->tx.count, 0); /* an ACK is rejected silently */
  CHECK_EQ(stats(c).con_slots_used, 0);
  /* piggybacked response with the wrong token: ignored, still retransmitting */
  CHECK_EQ(t_ep_request(c->ep, 2, s->addr, 4, TC_REQ_CON, &m, NULL, NULL, 4, &c->tx, &id, tok,
                         &tkl),
           0);
  mid = DG_MID(c, 0);
  n = mk(b, TC_ACK, 0x45, mid, TOK, 4, NULL, 0, "p");
  CHECK_EQ(inject(c, s->addr, b, n, 3, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(stats(c).con_slots_used, 1);
  /* separate CON response with a bad option: RST + FAILED */
  txreset(c);
  n = mk(b, TC_CON, 0x45, 0x7777, tok, tkl, &unk, 1, "p");
  CHECK_EQ(inject(c, s->addr, b, n, 4, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_FAILED);
  CHECK_EQ(ev.status, TC_E_BAD_OPTION);
  CHECK_EQ(c->tx.count, 1);
  CHECK_EQ(DG_TYPE(c, 0), TC_RST);
  CHECK_EQ(DG_MID(c, 0), 0x7777);
  CHECK_EQ(stats(c).con_slots_used, 0);
  /* unmatched CON and NON responses: RST */
  txreset(c);
  n = mk(b, TC_CON, 0x45, 0x1111, TOK, 4, NULL, 0, "p");
  CHECK_EQ(inject(c, s->addr, b, n, 5, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(DG_TYPE(c, 0), TC_RST);
  CHECK_EQ(DG_MID(c, 0), 0x1111);
  n = mk(b, TC_NON, 0x45, 0x1112, TOK, 4, NULL, 0, "p");
  CHECK_EQ(inject(c, s->addr, b, n, 5, &ev), 0);
  CHECK_EQ(DG_TYPE(c, 1), TC_RST);
  CHECK_EQ(stats(c).unmatched, 3); /* + the wrong-token ACK above */
  /* a separate response arriving before the empty ACK also ends retransmission */
  txreset(c);
  CHECK_EQ(t_ep_request(c->ep, 6, s->addr, 4, TC_REQ_CON, &m, NULL, NULL, 4, &c->tx, &id, tok,
                         &tkl),
           0);
  n = mk(b, TC_NON, 0x45, 0x2222, tok, tkl, NULL, 0, "p");
  CHECK_EQ(inject(c, s->addr, b, n, 7, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_RESPONSE);
  CHECK_EQ(ev.id, id);
  CHECK_EQ(stats(c).con_slots_used, 0);
  CHECK_EQ(stats(c).client_requests, 0);
  node_free(c);
  node_free(s);
}

static void t_lifetime(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64];
  size_t n;
  test_cfg(&cfg);
  s = node_new(&cfg, 47, 2);
  n = mk(b, TC_CON, 1, 100, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 0, &ev), 0);
  CHECK_EQ(resp(s, ev.id, 0, 0x45, "L"), 0);
  CHECK_EQ(inject(s, PEER_X, b, n, 246999, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(s->tx.count, 2);
  CHECK_EQ(inject(s, PEER_X, b, n, 247000, &ev), 0); /* EXCHANGE_LIFETIME over: new */
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  n = mk(b, TC_NON, 1, 200, TOK, 4, NULL, 0, NULL);
  CHECK_EQ(inject(s, PEER_X, b, n, 300000, &ev), 0);
  CHECK_EQ(resp(s, ev.id, 300000, 0x45, "L"), 0);
  CHECK_EQ(inject(s, PEER_X, b, n, 300000 + 144999, &ev), 0);
  CHECK_EQ(ev.kind, TC_EV_NONE);
  CHECK_EQ(inject(s, PEER_X, b, n, 300000 + 145000, &ev), 0); /* NON_LIFETIME over */
  CHECK_EQ(ev.kind, TC_EV_REQUEST);
  CHECK_EQ(tc_ep_drop(s->ep, ev.id), 0);
  node_free(s);

  /* the timer sweeps expired records */
  s = node_new(&cfg, 48, 2);
  {
    uint32_t i;
    uint64_t d;
    for (i = 0; i < 3; i++) {
      n = mk(b, TC_CON, 1, 10 + i, TOK, 4, NULL, 0, NULL);
      CHECK_EQ(inject(s, PEER_X, b, n, i, &ev), 0);
      CHECK_EQ(resp(s, ev.id, i, 0x45, "L"), 0);
    }
    CHECK_EQ(stats(s).dedup_used, 3);
    CHECK_EQ(tc_ep_timer(s->ep, 1000, &s->tx, s->evs, 16), 0); /* separate-ACK deadline, none due */
    d = tc_ep_next_deadline(s->ep);
    CHECK(d > 247000 && d <= 247000 + 1000 + 2);
    CHECK_EQ(tc_ep_timer(s->ep, 247002 + 1000, &s->tx, s->evs, 16), 0);
    CHECK_EQ(stats(s).dedup_used, 0);
    CHECK_EQ(tc_ep_next_deadline(s->ep), NEVER);
    CHECK_EQ(stats(s).dedup_evictions, 0);
  }
  node_free(s);
}

/* many peers and requests through a small table: invariants hold */
static void t_churn(void) {
  tc_ep_config cfg;
  node *s;
  tc_ep_event ev;
  uint8_t b[64], addr[4] = {172, 16, 0, 0};
  size_t n;
  uint32_t i, open[8] = {0}, nopen = 0, requests = 0;
  tc_ep_stats st;
  test_cfg(&cfg);
  cfg.dedup_entries = 32;
  cfg.max_in_progress = 8;
  cfg.max_in_progress_per_peer = 3;
  cfg.response_cache_bytes = 200;
  s = node_new(&cfg, 49, 2);
  for (i = 0; i < 5000; i++) {
    addr[3] = (uint8_t)(i % 13);
    n = mk(b, (i & 1) ? TC_NON : TC_CON, 1, (i * 7) & 0xFFFF, TOK, 4, NULL, 0, NULL);
    txreset(s);
    CHECK_EQ(inject(s, addr, b, n, i, &ev), 0);
    if (ev.kind == TC_EV_REQUEST) {
      requests++;
      if (nopen < 8) open[nopen++] = ev.id;
      else CHECK_EQ(resp(s, ev.id, i, 0x45, "c"), 0);
    }
    if ((i % 5) == 0 && nopen) {
      CHECK_EQ(resp(s, open[--nopen], i, 0x45, "d"), 0);
    }
    if ((i % 97) == 0) (void)tc_ep_timer(s->ep, i, &s->tx, s->evs, 16);
  }
  st = stats(s);
  CHECK(requests > 1000);
  CHECK(st.dedup_used <= 32);
  CHECK(st.in_progress <= 8);
  CHECK_EQ(st.in_progress, nopen);
  CHECK(st.overloads > 0);
  CHECK(st.dedup_evictions > 0);
  while (nopen) CHECK_EQ(resp(s, open[--nopen], 6000, 0x45, "e"), 0);
  CHECK_EQ(stats(s).in_progress, 0);
  CHECK_EQ(stats(s).peers, 0);
  node_free(s);
}

/* Runs every test above and prints the summary line; returns 0 when all passed.
 * Built on its own with -DTC_EP_TEST_MAIN, or called from another test runner. */
int test_ep_run(void);
int test_ep_run(void) {
  t_config();
  t_piggyback();
  t_separate();
  t_separate_exhausted();
  t_retransmit_timing();
  t_loss();
  t_reorder();
  t_ping_rst();
  t_non();
  t_format_errors();
  t_auto_responses();
  t_overload();
  t_no_response();
  t_nstart();
  t_dedup_fifo();
  t_cache_overwrite();
  t_bounds();
  t_stale();
  t_tokens();
  t_keep_notify();
  t_response_checks();
  t_lifetime();
  t_churn();
  printf("ep-tests: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

#ifdef TC_EP_TEST_MAIN
int main(void) { return test_ep_run(); }
#endif

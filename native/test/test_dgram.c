/* test_dgram.c — the datagram driver (native/driver/dgram.c), its address converter
 * (addr.h) and the ABI layout table (abi.c), driven as a host would: every action a call asks
 * for is done and the call repeated. */
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "addr.h"
#include "dgram.h"
#include "test.h"

void test_dgram(void);

static const uint8_t peer[TCB_ADDR4_LEN] = {4, 0x16, 0x33, 127, 0, 0, 1}; /* 127.0.0.1:5683 */

/* A host: counts what it was asked to do. */
typedef struct host {
  unsigned sends, deliveries, sent, records;
} host;

static void act(tcd_dgram *d, host *h, int a) {
  if (a == TCD_SEND) {
    h->sends++;
    h->sent += d->txq.count;
    tcd_tx_sent(d, d->txq.count, 1);
  } else {
    h->deliveries++;
    h->records += d->rx.count;
    tcd_delivered(d);
  }
}

static int recv_all(tcd_dgram *d, host *h, uint64_t now, const uint8_t *data, uint32_t len) {
  int a, n = 0;
  while ((a = tcd_recv(d, now, peer, sizeof peer, data, len)) > 0) {
    act(d, h, a);
    if (++n > 4) return -1000; /* a host loop must end */
  }
  return a;
}

static void config(uint32_t *cfg) {
  tc_ep_config e;
  tc_srv_config s;
  tc_ep_config_default(&e);
  tc_srv_config_default(&s);
  e.max_retransmit = 0;
  e.ack_timeout_ms = 100;
  e.dedup_entries = 1024;
  e.max_in_progress = s.max_in_progress = 64;
  memcpy(cfg, &e, sizeof e);
  memcpy(cfg + sizeof e / 4, &s, sizeof s);
}

#define CFG_WORDS ((sizeof(tc_ep_config) + sizeof(tc_srv_config)) / 4)

static tcd_dgram *make_amp(uint32_t rx_words, uint32_t txq_items, uint32_t amplification) {
  uint32_t cfg[CFG_WORDS];
  uint8_t seed[TCA_SEED_BYTES] = {1, 2, 3};
  tcd_limits lim = {rx_words, 1u << 17, txq_items, 1u << 16};
  int err = 1;
  tcd_dgram *d;
  config(cfg);
  if (amplification != 3u) cfg[offsetof(tc_ep_config, amplification_factor) / 4] = amplification;
  d = tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &lim, &err);
  CHECK(d != NULL && err == 0, "tcd_create: %d", err);
  return d;
}

static tcd_dgram *make(uint32_t rx_words, uint32_t txq_items) {
  return make_amp(rx_words, txq_items, 3);
}

static void test_create(void) {
  uint32_t cfg[CFG_WORDS];
  uint8_t seed[TCA_SEED_BYTES] = {0};
  tcd_limits lim = {1u << 12, 1u << 17, 16, 1u << 16};
  int err = 0;
  config(cfg);
  CHECK(tcd_create(cfg, CFG_WORDS - 1, seed, sizeof seed, &lim, &err) == NULL, "config size");
  CHECK_EQ(err, TC_E_INVALID, "config size");
  CHECK(tcd_create(cfg, CFG_WORDS, seed, 16, &lim, &err) == NULL, "seed size");
  cfg[sizeof(tc_ep_config) / 4 + offsetof(tc_srv_config, max_in_progress) / 4] = 65;
  err = 0;
  CHECK(tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &lim, &err) == NULL, "max_in_progress");
  CHECK_EQ(err, TC_E_INVALID, "srv max_in_progress must equal the ep's");
  config(cfg);
  lim.txq_bytes = 1000; /* less than two datagrams of max_message_size */
  CHECK(tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &lim, &err) == NULL, "txq bytes");
  lim.txq_bytes = 1u << 16;
  lim.rx_words = TCB_RX_MAX_WORDS - 1;
  CHECK(tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &lim, &err) == NULL, "rx words");
  tcd_destroy(NULL);
}

/* A request becomes one RX record; a RESPOND record answers it (piggybacked). */
static void test_request_respond(void) {
  static const uint8_t get[] = {0x41, 0x01, 0x12, 0x34, 0xAA, 0xB1, 'a'}; /* CON GET /a */
  tcd_dgram *d = make(1u << 12, 16);
  host h = {0};
  uint32_t tx[TCB_TX_RESPOND_WORDS] = {0};
  const uint32_t *r;
  if (d == NULL) return;
  CHECK_EQ(recv_all(d, &h, 1000, get, sizeof get), TCD_DONE, "recv");
  CHECK_EQ(d->rx.count, 1, "one record");
  CHECK(tcd_pending(d), "pending for the end of the turn");
  r = d->rx.words;
  CHECK_EQ(r[TCB_RX_KIND], TC_EV_REQUEST, "kind");
  CHECK_EQ(r[TCB_RX_FAMILY], 4, "family");
  CHECK_EQ(r[TCB_RX_PORT], 5683, "port");
  CHECK_EQ(r[TCB_RX_CODE], 1, "GET");
  CHECK_EQ(r[TCB_RX_MID], 0x1234, "mid");
  CHECK_EQ(r[TCB_RX_OPT_COUNT], 1, "one option");
  CHECK_EQ(r[TCB_RX_WORDS], 11, "Uri-Path");
  CHECK_EQ(d->rx.data[r[TCB_RX_WORDS + 1]], 'a', "its value in the byte area");
  CHECK_EQ(d->rx.data[r[TCB_RX_TOKEN_OFF]], 0xAA, "token in the byte area");
  tx[TCB_TX_RESPOND_KIND] = TCB_TX_RESPOND;
  tx[TCB_TX_RESPOND_ID] = r[TCB_RX_ID];
  tx[TCB_TX_RESPOND_CODE] = 0x45;
  act(d, &h, TCD_DELIVER);
  CHECK_EQ(tcd_flush(d, 1001, tx, TCB_TX_RESPOND_WORDS, NULL, 0), TCD_DONE, "flush");
  CHECK_EQ(d->tx_failed, 0, "no record failed");
  CHECK_EQ(tx[TCB_TX_RESPOND_RC], 0, "rc");
  CHECK_EQ(d->txq.count, 1, "the piggybacked response is queued");
  CHECK_EQ(d->txq.buf[d->txq.items[0].offset] >> 4, 0x6, "ACK"); /* ver 1, type ACK */
  act(d, &h, TCD_SEND);
  CHECK(!tcd_pending(d), "nothing pending");
  /* a malformed table: an unknown record kind */
  tx[0] = 99;
  CHECK_EQ(tcd_flush(d, 1002, tx, TCB_TX_RESPOND_WORDS, NULL, 0), TC_E_INVALID, "bad kind");
  CHECK_EQ(tcd_get_stats(d)->ep.rx, 1, "stats: rx");
  CHECK_EQ(d->stats.drv.batches, 1, "stats: one batch");
  CHECK_EQ(d->stats.drv.records, 1, "stats: one record");
  CHECK_EQ(d->stats.drv.sent, 1, "stats: one datagram sent");
  tcd_destroy(d);
}

/* OBSERVERS records report a resource's observer count, in order with the RESPONDs before
 * them: the registration a RESPOND makes is counted, a deregistration is seen. */
static void test_observers(void) {
  static const uint8_t reg[] = {0x41, 0x01, 0x12, 0x35, 0xAB, 0x60, 0x51, 'a'}; /* Observe 0 */
  static const uint8_t dereg[] = {0x41, 0x01, 0x12, 0x36, 0xAB, 0x61, 0x01, 0x51, 'a'};
  enum { R = TCB_TX_RESPOND_WORDS, S = TCB_TX_SMALL_WORDS };
  tcd_dgram *d = make_amp(1u << 12, 16, 0); /* no Echo challenge before registering */
  host h = {0};
  uint32_t tx[R + 2 * S] = {0}, q[S] = {0};
  if (d == NULL) return;
  CHECK_EQ(recv_all(d, &h, 1000, reg, sizeof reg), TCD_DONE, "recv");
  CHECK_EQ(d->rx.count, 1, "one record");
  CHECK(d->rx.words[TCB_RX_SRV_FLAGS] & TC_SRVF_OBSERVE, "an Observe registration");
  tx[TCB_TX_RESPOND_KIND] = TCB_TX_RESPOND;
  tx[TCB_TX_RESPOND_ID] = d->rx.words[TCB_RX_ID];
  tx[TCB_TX_RESPOND_CODE] = 0x45;
  tx[TCB_TX_RESPOND_RESOURCE] = 7;
  tx[R + TCB_TX_SMALL_KIND] = TCB_TX_OBSERVERS;
  tx[R + TCB_TX_SMALL_ID] = 7;
  tx[R + TCB_TX_SMALL_RC] = 99;
  tx[R + S + TCB_TX_SMALL_KIND] = TCB_TX_OBSERVERS;
  tx[R + S + TCB_TX_SMALL_ID] = 8;
  tx[R + S + TCB_TX_SMALL_RC] = 99;
  act(d, &h, TCD_DELIVER);
  CHECK_EQ(tcd_flush(d, 1001, tx, R + 2 * S, NULL, 0), TCD_DONE, "flush");
  CHECK_EQ(tx[TCB_TX_RESPOND_RC], 0, "registered");
  CHECK_EQ(tx[R + TCB_TX_SMALL_RC], 1, "resource 7: one observer (the RESPOND before)");
  CHECK_EQ(tx[R + S + TCB_TX_SMALL_RC], 0, "resource 8: none");
  CHECK_EQ(d->tx_failed, 0, "a count is not a failure");
  act(d, &h, TCD_SEND);
  /* the observer deregisters (GET with Observe 1): its resource has nobody left */
  CHECK_EQ(recv_all(d, &h, 1002, dereg, sizeof dereg), TCD_DONE, "recv");
  q[TCB_TX_SMALL_KIND] = TCB_TX_OBSERVERS;
  q[TCB_TX_SMALL_ID] = 7;
  q[TCB_TX_SMALL_RC] = 99;
  CHECK_EQ(tcd_flush(d, 1003, q, S, NULL, 0), TCD_DONE, "flush");
  CHECK_EQ(q[TCB_TX_SMALL_RC], 0, "resource 7: no observer left");
  CHECK_EQ(tcd_flush(d, 1004, q, S - 1, NULL, 0), TC_E_INVALID, "a truncated record");
  tcd_destroy(d);
}

/* Drain policy: a batch without room for the next datagram goes to JS first. */
static void test_drain(void) {
  uint8_t get[] = {0x51, 0x01, 0x00, 0x00, 0xAA, 0xB1, 'a'}; /* NON GET /a */
  tcd_dgram *d = make(TCB_RX_MAX_WORDS + TCB_RX_WORDS + 3u, 16);
  host h = {0};
  int i;
  if (d == NULL) return;
  for (i = 0; i < 5; i++) {
    get[3] = (uint8_t)i; /* a new Message ID each time */
    CHECK_EQ(recv_all(d, &h, 1000, get, sizeof get), TCD_DONE, "recv");
  }
  /* room for the worst case plus one small record: every other datagram hands a batch over */
  CHECK_EQ(h.deliveries, 2, "handed over when full");
  CHECK_EQ(h.records + d->rx.count, 5, "no request lost");
  CHECK_EQ(d->stats.drv.batches, 2, "batches");
  tcd_destroy(d);
}

/* Retry policy: a datagram that finds the tx queue full waits for one send, then goes in. */
static void test_retry(void) {
  uint8_t bad[] = {0x4F, 0x01, 0x00, 0x00}; /* CON with the reserved TKL 15: RST */
  tcd_dgram *d = make(1u << 12, 2);
  host h = {0};
  int i;
  if (d == NULL) return;
  for (i = 0; i < 6; i++) {
    bad[3] = (uint8_t)i;
    CHECK_EQ(recv_all(d, &h, 1000, bad, sizeof bad), TCD_DONE, "recv");
  }
  CHECK(h.sends >= 5, "the queue (2 datagrams) was sent when full: %u", h.sends);
  CHECK_EQ(h.sent + d->txq.count, 6, "every datagram answered: none dropped");
  CHECK_EQ(tcd_get_stats(d)->ep.resets_sent, 6, "RSTs");
  CHECK_EQ(d->stats.drv.dropped, 0, "dropped");
  tcd_destroy(d);
}

/* Timer: a CON request nobody answers fails (MAX_RETRANSMIT 0) with one RX record. */
static void test_timer(void) {
  tcd_dgram *d = make(1u << 12, 16);
  host h = {0};
  uint32_t tx[TCB_TX_REQUEST_WORDS] = {0};
  uint64_t now = 5000;
  int a, guard;
  if (d == NULL) return;
  CHECK_EQ(tcd_deadline(d), UINT64_MAX, "nothing due");
  tx[TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
  tx[TCB_TX_REQUEST_FLAGS] = TC_REQ_CON;
  tx[TCB_TX_REQUEST_CODE] = 1;
  tcb_addr_to_words(peer, sizeof peer, tx + TCB_TX_REQUEST_FAMILY);
  tx[TCB_TX_REQUEST_TOKEN] = 4;
  CHECK_EQ(tcd_flush(d, now, tx, TCB_TX_REQUEST_WORDS, NULL, 0), TCD_DONE, "flush");
  CHECK(tx[TCB_TX_REQUEST_ID] != 0, "an id");
  act(d, &h, TCD_SEND);
  for (guard = 0; guard < 100 && d->rx.count == 0 && tcd_deadline(d) != UINT64_MAX; guard++) {
    now = tcd_deadline(d);
    while ((a = tcd_timer(d, now)) > 0) act(d, &h, a);
  }
  CHECK_EQ(d->rx.count, 1, "one event");
  CHECK_EQ(d->rx.words[TCB_RX_KIND], TC_EV_FAILED, "failed");
  CHECK_EQ(d->rx.words[TCB_RX_ID], tx[TCB_TX_REQUEST_ID], "its id");
  CHECK_EQ((int32_t)d->rx.words[TCB_RX_STATUS], TC_E_TIMEOUT, "timeout");
  CHECK(d->stats.drv.timer_runs > 0, "timer runs counted");
  tcd_destroy(d);
}

/* An ICMP port unreachable the host learned of fails the requests to that address: one
 * EV_FAILED record each (TC_E_UNREACHABLE), handed over when the batch is full. */
static void test_unreachable(void) {
  tcd_dgram *d = make(TCB_RX_MAX_WORDS + TCB_RX_WORDS, 16);
  host h = {0};
  enum { REQS = 24 }; /* more FAILED records than the batch holds (19) */
  uint32_t tx[REQS * TCB_TX_REQUEST_WORDS] = {0};
  int a, n = 0, i;
  if (d == NULL) return;
  CHECK_EQ(tcd_unreachable(d, 1000, peer, 0), TC_E_INVALID, "no address");
  CHECK_EQ(tcd_unreachable(d, 1000, peer, sizeof peer), TCD_DONE, "nothing outstanding");
  CHECK_EQ(d->rx.count, 0, "no record");
  for (i = 0; i < REQS; i++) { /* NON requests: none held by NSTART */
    uint32_t *w = tx + i * TCB_TX_REQUEST_WORDS;
    w[TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
    w[TCB_TX_REQUEST_CODE] = 1;
    tcb_addr_to_words(peer, sizeof peer, w + TCB_TX_REQUEST_FAMILY);
    w[TCB_TX_REQUEST_TOKEN] = 4;
  }
  while ((a = tcd_flush(d, 1000, tx, sizeof tx / 4, NULL, 0)) > 0 && n++ < REQS) act(d, &h, a);
  CHECK_EQ(a, TCD_DONE, "flush");
  CHECK_EQ(d->tx_failed, 0, "every request sent");
  act(d, &h, TCD_SEND);
  h.deliveries = h.records = 0;
  n = 0;
  while ((a = tcd_unreachable(d, 1001, peer, sizeof peer)) > 0 && n++ < 4) act(d, &h, a);
  CHECK_EQ(a, TCD_DONE, "then done");
  CHECK_EQ(h.deliveries, 1, "one hand-over of a full batch");
  CHECK_EQ(h.records + d->rx.count, REQS, "a record per request");
  CHECK(d->rx.count > 0, "the rest in the next batch");
  CHECK_EQ(d->rx.words[TCB_RX_KIND], TC_EV_FAILED, "failed");
  CHECK_EQ((int32_t)d->rx.words[TCB_RX_STATUS], TC_E_UNREACHABLE, "unreachable");
  CHECK(d->rx.words[TCB_RX_ID] & 0x80000000u, "a client request id");
  CHECK_EQ(tcd_get_stats(d)->ep.client_requests, 0, "none left");
  tcd_destroy(d);
}

static void test_addr(void) {
  uint8_t a6[TCB_ADDR6_LEN], back[TC_ADDR_MAX];
  uint32_t w[TCB_ADDR_WORDS], i;
  struct sockaddr_in6 sa;
  a6[0] = 6;
  a6[1] = 0x12;
  a6[2] = 0x34;
  for (i = 0; i < 16; i++) a6[3 + i] = (uint8_t)(0xF0 + i);
  a6[19] = 7;
  a6[20] = a6[21] = a6[22] = 0;
  tcb_addr_to_words(a6, sizeof a6, w);
  CHECK_EQ(w[0], 6, "family");
  CHECK_EQ(w[1], 0x1234, "port");
  CHECK_EQ(w[6], 7, "scope");
  CHECK_EQ(tcb_words_to_addr(w, back), TCB_ADDR6_LEN, "back");
  CHECK(memcmp(back, a6, sizeof a6) == 0, "IPv6 round trip");
  CHECK_EQ(tcb_addr_to_sockaddr(a6, sizeof a6, &sa), sizeof(struct sockaddr_in6), "sockaddr");
  CHECK_EQ(sa.sin6_scope_id, 7, "sockaddr scope");
  CHECK_EQ(tcb_sockaddr_to_addr((const struct sockaddr *)&sa, back), TCB_ADDR6_LEN, "canonical");
  CHECK(memcmp(back, a6, sizeof a6) == 0, "sockaddr round trip");
  tcb_addr_to_words(peer, sizeof peer, w);
  CHECK_EQ(tcb_words_to_addr(w, back), TCB_ADDR4_LEN, "IPv4");
  CHECK(memcmp(back, peer, sizeof peer) == 0, "IPv4 round trip");
  w[1] = 70000;
  CHECK_EQ(tcb_words_to_addr(w, back), 0, "port out of range");
  w[1] = 1;
  w[0] = 5;
  CHECK_EQ(tcb_words_to_addr(w, back), 0, "family 5");
  tcb_addr_to_words(peer, 3, w);
  CHECK_EQ(w[0], 0, "a short address has no family");
}

static void test_layout(void) {
  const uint32_t *l = tca_layout();
  uint32_t n = tca_layout_words(), h = 2166136261u, i, k;
  CHECK(n > 100, "layout words");
  for (i = 0; i < n; i++)
    for (k = 0; k < 4; k++) {
      h ^= (l[i] >> (8u * k)) & 0xffu;
      h *= 16777619u;
    }
  CHECK_EQ(h, tca_hash(), "tca_hash is FNV-1a of the table");
  CHECK_EQ(l[n - 1], TCA_SEED_BYTES, "the table ends with the seed size");
  CHECK_EQ(l[n - 2], sizeof(tcd_stats), "then the stats size");
  CHECK_EQ(TCB_RX_WORDS, 25, "RX record");
  CHECK_EQ(TCB_TX_REQUEST_WORDS, 16, "REQUEST record");
}

void test_dgram(void) {
  test_create();
  test_request_respond();
  test_observers();
  test_drain();
  test_retry();
  test_timer();
  test_unreachable();
  test_addr();
  test_layout();
}

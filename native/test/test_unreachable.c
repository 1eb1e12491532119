/* test_unreachable.c — tc_ep_unreachable: an ICMP port unreachable fails every client request
 * and ping to that address at once (TC_E_UNREACHABLE); other peers' requests and server
 * exchanges go on. */
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "test.h"

void test_unreachable_ep(void);

static const uint8_t a_addr[] = {10, 0, 0, 1}, b_addr[] = {10, 0, 0, 2};

typedef struct q {
  uint8_t buf[1 << 15];
  tc_tx items[32];
  tc_txq tx;
} q;

static void q_init(q *x) {
  memset(x, 0, sizeof *x);
  x->tx.buf = x->buf;
  x->tx.cap = sizeof x->buf;
  x->tx.items = x->items;
  x->tx.item_cap = 32;
}

static uint32_t request(tc_ep *ep, q *x, const uint8_t *to, uint32_t flags) {
  tc_msg m;
  uint32_t id = 0;
  memset(&m, 0, sizeof m);
  m.code = 1; /* GET */
  CHECK_EQ(t_ep_request(ep, 1000, to, 4, flags, &m, NULL, NULL, 4, &x->tx, &id, NULL, NULL), 0,
           "request");
  return id;
}

static int has(const uint32_t *ids, uint32_t n, uint32_t id) {
  uint32_t i;
  for (i = 0; i < n; i++)
    if (ids[i] == id) return 1;
  return 0;
}

void test_unreachable_ep(void) {
  tc_ep_config cfg;
  tc_ep *ep;
  q x;
  tc_ep_event evs[8], ev;
  tc_msg msg, resp;
  tc_opt opts[8];
  uint8_t seed[32] = {7};
  const uint8_t con_get[] = {0x40, 0x01, 0x12, 0x34}; /* CON GET from a, MID 0x1234 */
  uint32_t a_ids[5], b_id, failed[8], nfailed = 0, srv_id, i;
  uint64_t now;
  int n, guard;
  size_t sz;
  tc_ep_config_default(&cfg);
  cfg.dedup_entries = 64;
  cfg.max_in_progress = 16;
  cfg.max_client_requests = 16;
  cfg.con_slots = 8;
  sz = tc_ep_size(&cfg);
  ep = (tc_ep *)aligned_alloc(8, (sz + 7u) & ~(size_t)7u);
  CHECK(ep != NULL && tc_ep_init(ep, sz, &cfg, seed) == 0, "init");
  if (ep == NULL) return;
  q_init(&x);

  /* a server exchange from a, still unanswered */
  CHECK_EQ(t_ep_recv(ep, 1000, a_addr, 4, con_get, sizeof con_get, &x.tx, &msg, opts, 8, &ev), 0,
           "recv");
  CHECK_EQ(ev.kind, TC_EV_REQUEST, "a request from a");
  srv_id = ev.id;

  /* to a: a CON request (sent), a second (held by NSTART 1), a NON, a kept NON, a ping */
  a_ids[0] = request(ep, &x, a_addr, TC_REQ_CON);
  a_ids[1] = request(ep, &x, a_addr, TC_REQ_CON);
  a_ids[2] = request(ep, &x, a_addr, 0);
  a_ids[3] = request(ep, &x, a_addr, TC_REQ_KEEP);
  CHECK_EQ(tc_ep_ping(ep, 1000, a_addr, 4, &x.tx, &a_ids[4]), 0, "ping");
  b_id = request(ep, &x, b_addr, TC_REQ_CON); /* to b */
  x.tx.count = x.tx.used = 0;

  CHECK_EQ(tc_ep_unreachable(ep, 1000, a_addr, 0, evs, 8), TC_E_INVALID, "no address");
  CHECK_EQ(tc_ep_unreachable(ep, 1000, a_addr, 4, NULL, 1), TC_E_INVALID, "no event room");
  CHECK_EQ(tc_ep_unreachable(NULL, 1000, a_addr, 4, evs, 8), TC_E_INVALID, "no ep");
  {
    const uint8_t other[] = {10, 0, 0, 9};
    CHECK_EQ(tc_ep_unreachable(ep, 1000, other, 4, evs, 8), 0, "nothing to another address");
  }

  /* two events a call: 2 + 2 + 1, then nothing */
  for (guard = 0; guard < 5; guard++) {
    n = tc_ep_unreachable(ep, 1001, a_addr, 4, evs, 2);
    CHECK(n >= 0 && n <= 2, "bounded by ev_cap: %d", n);
    if (n <= 0) break;
    for (i = 0; i < (uint32_t)n; i++) {
      CHECK_EQ(evs[i].kind, TC_EV_FAILED, "failed");
      CHECK_EQ(evs[i].status, TC_E_UNREACHABLE, "unreachable");
      CHECK_EQ(evs[i].flags, TC_EVF_LAST, "last");
      if (nfailed < 8) failed[nfailed++] = evs[i].id;
    }
  }
  CHECK_EQ(nfailed, 5, "every request and the ping to a");
  for (i = 0; i < 5; i++) CHECK(has(failed, nfailed, a_ids[i]), "a's request %u failed", i);
  CHECK(!has(failed, nfailed, b_id), "b's request did not fail");
  for (i = 0; i < 5; i++) CHECK_EQ(tc_ep_cancel(ep, a_ids[i]), TC_E_STALE, "a's ids are finished");

  {
    tc_ep_stats st;
    tc_ep_get_stats(ep, &st);
    CHECK_EQ(st.client_requests, 1, "b's request is outstanding");
    CHECK_EQ(st.con_slots_used, 1, "its CON slot only");
    CHECK_EQ(st.timeouts, 0, "not counted as timeouts");
    CHECK_EQ(st.in_progress, 1, "the server exchange is in progress");
  }

  /* the server exchange from a is still answered */
  memset(&resp, 0, sizeof resp);
  resp.code = 0x45; /* 2.05 */
  CHECK_EQ(t_ep_respond(ep, 1002, srv_id, &resp, NULL, NULL, &x.tx), 0, "respond");
  CHECK_EQ(x.tx.count, 1, "the response goes out");
  CHECK(x.tx.items[0].addr_length == 4 && memcmp(x.buf + x.tx.items[0].addr_offset, a_addr, 4) == 0,
        "to a");
  x.tx.count = x.tx.used = 0;

  /* only b's request is retransmitted, then times out */
  for (guard = 0, now = 1002; guard < 64 && tc_ep_next_deadline(ep) != UINT64_MAX; guard++) {
    now = tc_ep_next_deadline(ep) > now ? tc_ep_next_deadline(ep) : now;
    n = tc_ep_timer(ep, now, &x.tx, evs, 8);
    for (i = 0; i < x.tx.count; i++)
      CHECK(memcmp(x.buf + x.tx.items[i].addr_offset, b_addr, 4) == 0,
            "retransmissions go to b only");
    x.tx.count = x.tx.used = 0;
    for (i = 0; i < (uint32_t)(n > 0 ? n : 0); i++) {
      CHECK_EQ(evs[i].id, b_id, "b's request");
      CHECK_EQ(evs[i].status, TC_E_TIMEOUT, "times out");
    }
    if (n > 0) break;
  }
  CHECK(n == 1, "b's request timed out: %d", n);
  free(ep);
}

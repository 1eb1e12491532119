/* test_observe.c — the Observe registry (observe.c) driven through a real tc_ep: registration,
 * fan-out to 10,000 observers with the datagrams decoded and checked, CON every N and by time,
 * removal on RST / timeout via ep events, tx queue full mid-fan-out, bounds.
 * Prints "observe-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "calls.h"

#define NOBS 10000u
#define OPTCAP 32

static const uint8_t SEED16[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

typedef struct rig {
  tc_ep *ep;
  tc_obs *obs;
  uint8_t *buf;
  tc_tx *items;
  tc_txq tx;
} rig;

static int rig_new(rig *r, const tc_obs_config *ocfg, uint32_t con_slots, uint32_t items,
                   uint32_t bytes) {
  tc_ep_config ec;
  uint8_t seed[32];
  size_t es, os;
  int i;
  memset(r, 0, sizeof *r);
  tc_ep_config_default(&ec);
  ec.con_slots = con_slots;
  es = tc_ep_size(&ec);
  os = tc_obs_size(ocfg);
  if (es == 0 || os == 0) return -1;
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(i * 13 + 5);
  r->ep = malloc(es);
  r->obs = malloc(os);
  r->buf = malloc(bytes);
  r->items = malloc(items * sizeof(tc_tx));
  if (!r->ep || !r->obs || !r->buf || !r->items) return -1;
  if (tc_ep_init(r->ep, es, &ec, seed) != 0) return -1;
  if (tc_obs_init(r->obs, os, ocfg, SEED16) != 0) return -1;
  r->tx.buf = r->buf;
  r->tx.cap = bytes;
  r->tx.items = r->items;
  r->tx.item_cap = items;
  return 0;
}

static void rig_free(rig *r) {
  free(r->ep);
  free(r->obs);
  free(r->buf);
  free(r->items);
}

static void peer_of(uint32_t i, uint8_t a[4]) {
  a[0] = 10;
  a[1] = (uint8_t)(i >> 16);
  a[2] = (uint8_t)(i >> 8);
  a[3] = (uint8_t)i;
}

static void token_of(uint32_t i, uint8_t t[4]) {
  t[0] = (uint8_t)(i >> 24);
  t[1] = (uint8_t)(i >> 16);
  t[2] = (uint8_t)(i >> 8);
  t[3] = (uint8_t)i;
}

/* A 2.05 (or code) notification with Content-Format 50, Max-Age 30 and a payload. */
typedef struct note {
  tc_msg m;
  tc_opt o[4];
  uint8_t src[64];
} note;

static void note_make(note *n, uint32_t code, const char *payload, int with_observe) {
  uint32_t pl = (uint32_t)strlen(payload);
  memset(n, 0, sizeof *n);
  n->m.code = code;
  n->src[0] = 50;
  n->src[1] = 30;
  n->o[0].number = TC_OPT_CONTENT_FORMAT;
  n->o[0].offset = 0;
  n->o[0].length = 1;
  n->o[1].number = TC_OPT_MAX_AGE;
  n->o[1].offset = 1;
  n->o[1].length = 1;
  n->m.option_count = 2;
  if (with_observe) { /* a caller Observe option is dropped */
    n->src[2] = 0x77;
    n->o[2].number = TC_OPT_OBSERVE;
    n->o[2].offset = 2;
    n->o[2].length = 1;
    n->m.option_count = 3;
  }
  memcpy(n->src + 3, payload, pl);
  n->m.payload_offset = 3;
  n->m.payload_length = pl;
}

/* What one datagram says. */
typedef struct dgi {
  uint32_t ok, type, code, mid, observer, has_observe, observe, max_age, cf;
  char payload[16];
} dgi;

static void dg_info(const rig *r, uint32_t k, dgi *d) {
  const tc_tx *t = &r->tx.items[k];
  const uint8_t *b = r->tx.buf + t->offset, *a = r->tx.buf + t->addr_offset;
  tc_msg m;
  tc_opt o[OPTCAP];
  uint32_t i, tok = 0;
  memset(d, 0, sizeof *d);
  d->max_age = d->cf = d->observe = 0xFFFFFFFFu;
  if (tc_decode(b, t->length, TC_UDP, &m, o, OPTCAP) < 0 || m.token_length != 4 ||
      t->addr_length != 4)
    return;
  for (i = 0; i < 4; i++) tok = tok << 8 | b[m.token_offset + i];
  {
    uint8_t pa[4];
    peer_of(tok, pa);
    if (memcmp(pa, a, 4) != 0) return; /* sent to the observer's address */
  }
  d->observer = tok;
  d->type = m.type;
  d->code = m.code;
  d->mid = m.message_id;
  for (i = 0; i < m.option_count; i++) {
    uint32_t v;
    if (tc_uint_decode(b + o[i].offset, o[i].length, &v) < 0) return;
    if (o[i].number == TC_OPT_OBSERVE) {
      d->has_observe++;
      d->observe = v;
    } else if (o[i].number == TC_OPT_MAX_AGE) {
      d->max_age = v;
    } else if (o[i].number == TC_OPT_CONTENT_FORMAT) {
      d->cf = v;
    }
  }
  if (m.payload_length < sizeof d->payload) memcpy(d->payload, b + m.payload_offset, m.payload_length);
  d->ok = 1;
}

static void tx_reset(rig *r) { r->tx.used = r->tx.count = 0; }

static int reg(rig *r, uint64_t now, uint32_t i, uint32_t res, uint32_t *seq) {
  uint8_t a[4], t[4];
  peer_of(i, a);
  token_of(i, t);
  return t_obs_register(r->obs, now, a, 4, t, 4, res, seq);
}

static int dereg(rig *r, uint32_t i) {
  uint8_t a[4], t[4];
  peer_of(i, a);
  token_of(i, t);
  return tc_obs_deregister(r->obs, a, 4, t, 4);
}

static void t_registration(void) {
  tc_obs_config cfg;
  rig r;
  uint32_t seq1 = 0, seq2 = 0, seq3 = 0;
  int id, id2;
  uint8_t a[4], t[4];
  tc_obs_stats st;
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.max_observers = 6;
  cfg.max_per_resource = 4;
  cfg.max_resources = 2;
  if (rig_new(&r, &cfg, 8, 64, 1 << 16) != 0) {
    CHECK(0, "rig");
    return;
  }
  id = reg(&r, 0, 1, 100, &seq1);
  CHECK(id > 0, "register");
  CHECK_EQ(tc_obs_count(r.obs, 100), 1, "count");
  id2 = reg(&r, 1, 1, 100, &seq2);
  CHECK_EQ(id2, id, "re-registration keeps the entry");
  CHECK_EQ(tc_obs_count(r.obs, 100), 1, "still one");
  CHECK(((seq2 - seq1) & 0xFFFFFF) == 1, "fresh sequence value on re-registration");
  peer_of(1, a);
  token_of(1, t);
  CHECK_EQ(tc_obs_find(r.obs, a, 4, t, 4), id, "find");
  t[3] ^= 1;
  CHECK_EQ(tc_obs_find(r.obs, a, 4, t, 4), TC_E_STALE, "other token");
  /* move to another resource */
  id2 = reg(&r, 3, 1, 200, &seq3);
  CHECK_EQ(id2, id, "moved, same entry");
  CHECK_EQ(tc_obs_count(r.obs, 100), 0, "left 100");
  CHECK_EQ(tc_obs_count(r.obs, 200), 1, "joined 200");
  /* bounds: per resource */
  CHECK(reg(&r, 4, 2, 200, NULL) > 0 && reg(&r, 4, 3, 200, NULL) > 0 && reg(&r, 4, 4, 200, NULL) > 0,
        "fill 200");
  CHECK_EQ(reg(&r, 4, 5, 200, NULL), TC_E_FULL, "max_per_resource");
  /* resources bound: 100 was freed when its last observer left; 300 makes two */
  CHECK(reg(&r, 5, 5, 300, NULL) > 0, "second resource");
  CHECK_EQ(reg(&r, 5, 6, 400, NULL), TC_E_FULL, "max_resources");
  /* total bound */
  CHECK(reg(&r, 6, 6, 300, NULL) > 0, "sixth observer");
  CHECK_EQ(reg(&r, 6, 7, 300, NULL), TC_E_FULL, "max_observers");
  tc_obs_get_stats(r.obs, &st);
  CHECK(st.observers == 6 && st.resources == 2 && st.rejected == 3, "stats after bounds");
  /* deregistration (GET with Observe = 1) */
  peer_of(6, a);
  token_of(6, t);
  CHECK_EQ(tc_obs_deregister(r.obs, a, 4, t, 4), 0, "deregister");
  CHECK_EQ(tc_obs_deregister(r.obs, a, 4, t, 4), TC_E_STALE, "twice");
  CHECK_EQ(tc_obs_count(r.obs, 300), 1, "300 has one");
  CHECK(reg(&r, 7, 7, 300, NULL) > 0, "room again");
  CHECK_EQ(tc_obs_remove(r.obs, (uint32_t)id), 0, "remove by id");
  CHECK_EQ(tc_obs_remove(r.obs, (uint32_t)id), TC_E_STALE, "stale id");
  /* sequence values never go back for a resource, even after its record was freed */
  {
    uint32_t s1 = 0, s2 = 0;
    int k;
    CHECK(dereg(&r, 5) == 0 && dereg(&r, 7) == 0, "empty resource 300");
    CHECK_EQ(tc_obs_count(r.obs, 300), 0, "300 empty");
    k = reg(&r, 8, 9, 500, &s1);
    CHECK(k > 0, "register 500");
    CHECK_EQ(tc_obs_remove(r.obs, (uint32_t)k), 0, "remove: record of 500 freed");
    CHECK(reg(&r, 9, 9, 500, &s2) > 0, "again");
    CHECK(s2 > s1, "sequence continues after the record was freed");
  }
  /* bad input */
  CHECK_EQ(t_obs_register(r.obs, 0, a, 0, t, 4, 1, NULL), TC_E_INVALID, "addr 0");
  CHECK_EQ(t_obs_register(r.obs, 0, a, 4, t, 33, 1, NULL), TC_E_INVALID, "token 33");
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.max_per_resource = cfg.max_observers + 1;
  CHECK_EQ(tc_obs_size(&cfg), 0, "per resource over total");
  rig_free(&r);
}

/* Flush tx into per-observer tallies, checking every datagram. */
typedef struct tally {
  uint32_t *count;   /* per observer */
  uint32_t *last_obs;
  uint32_t *last_type;
  uint32_t *last_mid;
  uint32_t total, bad, con;
} tally;

static void flush(rig *r, tally *t, uint32_t code, uint32_t want_seq, const char *payload) {
  uint32_t k;
  for (k = 0; k < r->tx.count; k++) {
    dgi d;
    dg_info(r, k, &d);
    if (!d.ok || d.observer >= NOBS || d.code != code || d.max_age != 30 || d.cf != 50 ||
        strcmp(d.payload, payload) != 0 ||
        (code >> 5 == 2 ? (d.has_observe != 1 || d.observe != want_seq) : d.has_observe != 0)) {
      t->bad++;
      continue;
    }
    t->count[d.observer]++;
    t->last_obs[d.observer] = d.observe;
    t->last_type[d.observer] = d.type;
    t->last_mid[d.observer] = d.mid;
    if (d.type == TC_CON) t->con++;
    t->total++;
  }
  tx_reset(r);
}

static int tally_new(tally *t) {
  memset(t, 0, sizeof *t);
  t->count = calloc(NOBS, 4);
  t->last_obs = calloc(NOBS, 4);
  t->last_type = calloc(NOBS, 4);
  t->last_mid = calloc(NOBS, 4);
  return t->count && t->last_obs && t->last_type && t->last_mid ? 0 : -1;
}

static void tally_clear(tally *t) {
  memset(t->count, 0, NOBS * 4);
  t->total = t->bad = t->con = 0;
}

static void tally_free(tally *t) {
  free(t->count);
  free(t->last_obs);
  free(t->last_type);
  free(t->last_mid);
}

static void t_fanout_10000(void) {
  tc_obs_config cfg;
  rig r;
  tally t;
  note n;
  uint32_t i, seq = 0, rounds = 0, once = 1;
  int sent;
  tc_obs_stats st;
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.con_every = 0; /* NON only (by count); the 24 h rule does not trigger */
  if (rig_new(&r, &cfg, 256, 1000, 1 << 20) != 0 || tally_new(&t) != 0) {
    CHECK(0, "rig");
    return;
  }
  for (i = 0; i < NOBS; i++)
    if (reg(&r, 0, i, 7, &seq) <= 0) once = 0;
  CHECK(once, "10000 registrations");
  CHECK_EQ(tc_obs_count(r.obs, 7), NOBS, "count");
  note_make(&n, 0x45, "v1", 1);
  /* tx holds 1000 datagrams: the fan-out pauses nine times */
  sent = t_obs_notify(r.obs, r.ep, 10, 7, 0, &n.m, n.o, n.src, &r.tx);
  CHECK_EQ(sent, 1000, "first batch fills tx");
  CHECK_EQ(tc_obs_pending(r.obs), NOBS - 1000, "pending exact");
  flush(&r, &t, 0x45, (seq + 1) & 0xFFFFFF, "v1");
  while (tc_obs_pending(r.obs) > 0 && rounds++ < 100) {
    sent = t_obs_resume(r.obs, r.ep, 11, &r.tx);
    if (sent <= 0) break;
    flush(&r, &t, 0x45, (seq + 1) & 0xFFFFFF, "v1");
  }
  CHECK_EQ(rounds, 9, "nine resumes");
  CHECK_EQ(t.bad, 0, "every datagram well formed, Observe = next sequence, Max-Age passed");
  CHECK_EQ(t.total, NOBS, "10000 notifications");
  once = 1;
  for (i = 0; i < NOBS; i++)
    if (t.count[i] != 1 || t.last_type[i] != TC_NON) once = 0;
  CHECK(once, "each observer exactly once, NON");
  CHECK_EQ(t_obs_resume(r.obs, r.ep, 12, &r.tx), 0, "nothing left");
  tc_obs_get_stats(r.obs, &st);
  CHECK(st.sent_non == NOBS && st.sent_con == 0 && st.jobs == 0 && st.pending == 0, "stats");

  /* a second notification while the first is pending replaces it: everybody ends up with v3
   * exactly once, those served v2 before get v3 as well */
  tally_clear(&t);
  note_make(&n, 0x45, "v2", 0);
  sent = t_obs_notify(r.obs, r.ep, 20, 7, 0, &n.m, n.o, n.src, &r.tx);
  CHECK_EQ(sent, 1000, "v2 first batch");
  flush(&r, &t, 0x45, (seq + 2) & 0xFFFFFF, "v2");
  note_make(&n, 0x45, "v3", 0);
  rounds = 0;
  sent = t_obs_notify(r.obs, r.ep, 21, 7, 0, &n.m, n.o, n.src, &r.tx);
  CHECK_EQ(sent, 1000, "v3 first batch");
  tally_clear(&t);
  flush(&r, &t, 0x45, (seq + 3) & 0xFFFFFF, "v3");
  while (tc_obs_pending(r.obs) > 0 && rounds++ < 100) {
    t_obs_resume(r.obs, r.ep, 22, &r.tx);
    flush(&r, &t, 0x45, (seq + 3) & 0xFFFFFF, "v3");
  }
  once = 1;
  for (i = 0; i < NOBS; i++)
    if (t.count[i] != 1) once = 0;
  CHECK(once && t.total == NOBS && t.bad == 0, "newer state to everyone exactly once");

  /* registrations and deregistrations while a fan-out is pending */
  {
    uint8_t a[4], tk[4];
    uint32_t before;
    tally_clear(&t);
    note_make(&n, 0x45, "v4", 0);
    t_obs_notify(r.obs, r.ep, 30, 7, 0, &n.m, n.o, n.src, &r.tx);
    flush(&r, &t, 0x45, (seq + 4) & 0xFFFFFF, "v4");
    before = tc_obs_pending(r.obs);
    /* the list is newest first: 9999..9000 were served, 5 was not */
    peer_of(5, a);
    token_of(5, tk);
    CHECK_EQ(tc_obs_deregister(r.obs, a, 4, tk, 4), 0, "deregister unserved");
    CHECK_EQ(tc_obs_pending(r.obs), before - 1, "pending drops by one");
    peer_of(9999, a);
    token_of(9999, tk);
    CHECK_EQ(tc_obs_deregister(r.obs, a, 4, tk, 4), 0, "deregister served");
    CHECK_EQ(tc_obs_pending(r.obs), before - 1, "served one does not count");
    CHECK(reg(&r, 31, 5, 7, NULL) > 0, "5 registers again while pending");
    CHECK_EQ(tc_obs_pending(r.obs), before - 1, "a new registration is not pending");
    while (tc_obs_pending(r.obs) > 0 && rounds++ < 200) {
      t_obs_resume(r.obs, r.ep, 32, &r.tx);
      flush(&r, &t, 0x45, (seq + 4) & 0xFFFFFF, "v4");
    }
    CHECK_EQ(t.count[5], 0, "re-registered during the fan-out: not included");
    CHECK_EQ(t.count[9999], 1, "(served once)");
    CHECK_EQ(t.count[9999], 1, "served before deregistering");
    CHECK_EQ(t.total, NOBS - 1, "everyone else once");
  }

  /* another resource queues behind a pending one; max_jobs bound */
  {
    tc_obs_config c2;
    rig r2;
    uint32_t k;
    tc_obs_config_default(&c2);
    c2.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
    c2.max_jobs = 2;
    c2.con_every = 0;
    if (rig_new(&r2, &c2, 8, 10, 1 << 16) == 0) {
      for (k = 0; k < 40; k++) reg(&r2, 0, k, 1 + k % 4, NULL);
      note_make(&n, 0x45, "a", 0);
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 1, 1, 0, &n.m, n.o, n.src, &r2.tx), 10, "job 1");
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 1, 2, 0, &n.m, n.o, n.src, &r2.tx), 0, "2 queued");
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 1, 3, 0, &n.m, n.o, n.src, &r2.tx), 0, "3 queued");
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 1, 4, 0, &n.m, n.o, n.src, &r2.tx), TC_E_FULL,
               "max_jobs");
      CHECK_EQ(tc_obs_pending(r2.obs), 20, "pending: 2 and 3");
      tx_reset(&r2);
      CHECK_EQ(t_obs_resume(r2.obs, r2.ep, 2, &r2.tx), 10, "job 2 runs first");
      CHECK_EQ(tc_obs_pending(r2.obs), 10, "3 waits");
      {
        dgi d;
        dg_info(&r2, 0, &d);
        CHECK(d.ok && d.observer % 4 == 1, "FIFO: resource 2 first");
      }
      tx_reset(&r2);
      CHECK_EQ(t_obs_resume(r2.obs, r2.ep, 2, &r2.tx), 10, "job 3");
      tx_reset(&r2);
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 1, 4, 0, &n.m, n.o, n.src, &r2.tx), 10, "job 4");
      CHECK_EQ(tc_obs_pending(r2.obs), 0, "all done");
      /* a pending fan-out whose remaining observers all leave is finished at once (its job
       * slot and resource record are not held) */
      tx_reset(&r2);
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 3, 1, 0, &n.m, n.o, n.src, &r2.tx), 10, "fill tx");
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 3, 2, 0, &n.m, n.o, n.src, &r2.tx), 0, "2 pending");
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 3, 3, 0, &n.m, n.o, n.src, &r2.tx), 0, "3 pending");
      for (k = 0; k < 40; k++)
        if (k % 4 == 1) dereg(&r2, k);
      {
        tc_obs_stats st2;
        tc_obs_get_stats(r2.obs, &st2);
        CHECK(st2.jobs == 1 && st2.pending == 10 && st2.resources == 3, "job 2 ended");
      }
      CHECK_EQ(t_obs_notify(r2.obs, r2.ep, 3, 4, 0, &n.m, n.o, n.src, &r2.tx), 0,
               "its slot is free again");
      rig_free(&r2);
    } else {
      CHECK(0, "rig2");
    }
  }
  tally_free(&t);
  rig_free(&r);
}

static void feed_ack_rst(rig *r, uint64_t now, uint32_t obs_i, uint32_t mid, int rst,
                         tc_ep_event *ev) {
  uint8_t a[4], d[4];
  tc_msg m;
  tc_opt o[8];
  tc_tx items[4];
  static uint8_t buf[2048]; /* tc_ep_recv wants room for a full message */
  tc_txq tx = {buf, sizeof buf, 0, items, 4, 0};
  peer_of(obs_i, a);
  d[0] = (uint8_t)(rst ? 0x70 : 0x60);
  d[1] = 0;
  d[2] = (uint8_t)(mid >> 8);
  d[3] = (uint8_t)mid;
  memset(ev, 0, sizeof *ev);
  CHECK_EQ(t_ep_recv(r->ep, now, a, 4, d, 4, &tx, &m, o, 8, ev), 0, "ep recv");
}

static void t_con_rules(void) {
  tc_obs_config cfg;
  rig r;
  tally t;
  note n;
  uint32_t i, k, pattern_ok = 1;
  tc_ep_event ev;
  tc_obs_stats st;
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.con_every = 4;
  if (rig_new(&r, &cfg, 64, 256, 1 << 16) != 0 || tally_new(&t) != 0) {
    CHECK(0, "rig");
    return;
  }
  for (i = 0; i < 20; i++) reg(&r, 0, i, 1, NULL);
  note_make(&n, 0x45, "x", 0);
  /* notifications 1..8: the 4th and 8th are CON (each CON ACKed before the next round) */
  for (k = 1; k <= 8; k++) {
    int sent = t_obs_notify(r.obs, r.ep, 100 * k, 1, 0, &n.m, n.o, n.src, &r.tx);
    uint32_t j, want = (k % 4 == 0) ? TC_CON : TC_NON;
    if (sent != 20) pattern_ok = 0;
    for (j = 0; j < r.tx.count; j++) {
      dgi d;
      dg_info(&r, j, &d);
      if (!d.ok || d.type != want) {
        if (pattern_ok) fprintf(stderr, "k=%u j=%u ok=%u type=%u want=%u\n", k, j, d.ok, d.type, want);
        pattern_ok = 0;
      }
      if (d.ok && d.type == TC_CON) {
        feed_ack_rst(&r, 100 * k + 1, d.observer, d.mid, 0, &ev);
        if (ev.kind != TC_EV_ACKED || tc_obs_on_event(r.obs, 100 * k + 1, &ev) != 1) {
          if (pattern_ok) fprintf(stderr, "ack k=%u kind=%u\n", k, ev.kind);
          pattern_ok = 0;
        }
      }
    }
    tx_reset(&r);
  }
  CHECK(pattern_ok, "every 4th notification CON, ACKed");
  tc_obs_get_stats(r.obs, &st);
  CHECK(st.sent_con == 40 && st.sent_non == 120, "4 CON rounds counted");
  /* an unrelated event is not ours */
  memset(&ev, 0, sizeof ev);
  ev.kind = TC_EV_ACKED;
  ev.id = 0x40000000u | 12345u;
  CHECK_EQ(tc_obs_on_event(r.obs, 0, &ev), 0, "unknown notification id");
  ev.kind = TC_EV_RESPONSE;
  CHECK_EQ(tc_obs_on_event(r.obs, 0, &ev), 0, "other event kind");

  /* round 12 is CON: observer 0 answers RST, observer 1 never answers (timeout), the rest
   * ACK; while a CON is in flight newer notifications go NON */
  for (k = 9; k <= 12; k++) {
    uint32_t j;
    t_obs_notify(r.obs, r.ep, 100 * k, 1, 0, &n.m, n.o, n.src, &r.tx);
    for (j = 0; j < r.tx.count; j++) {
      dgi d;
      dg_info(&r, j, &d);
      if (d.ok && d.type == TC_CON && d.observer >= 2) {
        feed_ack_rst(&r, 100 * k + 1, d.observer, d.mid, 0, &ev);
        tc_obs_on_event(r.obs, 0, &ev);
      } else if (d.ok && d.type == TC_CON && d.observer == 0) {
        feed_ack_rst(&r, 100 * k + 1, 0, d.mid, 1, &ev);
        CHECK(ev.kind == TC_EV_FAILED && ev.status == TC_E_RESET, "RST -> FAILED/RESET");
        CHECK_EQ(tc_obs_on_event(r.obs, 0, &ev), 1, "ours");
      }
    }
    tx_reset(&r);
  }
  CHECK_EQ(tc_obs_count(r.obs, 1), 19, "RST removed observer 0");
  /* observer 1's CON is in flight: the next notifications to it are NON */
  tally_clear(&t);
  t_obs_notify(r.obs, r.ep, 1300, 1, TC_OBS_CON, &n.m, n.o, n.src, &r.tx);
  {
    uint32_t j, one_type = 99, others_con = 0;
    for (j = 0; j < r.tx.count; j++) {
      dgi d;
      dg_info(&r, j, &d);
      if (d.ok && d.observer == 1) one_type = d.type;
      else if (d.ok && d.type == TC_CON) {
        others_con++;
        feed_ack_rst(&r, 1301, d.observer, d.mid, 0, &ev);
        tc_obs_on_event(r.obs, 0, &ev);
      }
    }
    CHECK_EQ(one_type, TC_NON, "CON in flight: NON instead");
    CHECK_EQ(others_con, 18, "TC_OBS_CON: CON to the others");
    tx_reset(&r);
  }
  /* let the ep give up on observer 1's CON */
  {
    uint64_t now = 1400;
    uint32_t removed = 0, guard = 0;
    tc_ep_event evs[8];
    while (tc_ep_next_deadline(r.ep) != UINT64_MAX && guard++ < 100) {
      int ne, e;
      now = tc_ep_next_deadline(r.ep) > now ? tc_ep_next_deadline(r.ep) : now;
      ne = tc_ep_timer(r.ep, now, &r.tx, evs, 8);
      for (e = 0; e < ne; e++) removed += (uint32_t)tc_obs_on_event(r.obs, now, &evs[e]);
      tx_reset(&r);
    }
    CHECK_EQ(removed, 1, "timeout event consumed");
    CHECK_EQ(tc_obs_count(r.obs, 1), 18, "timed-out observer removed");
    tc_obs_get_stats(r.obs, &st);
    CHECK(st.removed_reset == 1 && st.removed_timeout == 1, "removal stats");
  }
  /* RST to a NON notification (reported by the driver with the MID) */
  {
    uint32_t j, mid = 0, found = 0;
    uint8_t a[4];
    t_obs_notify(r.obs, r.ep, 200000, 1, 0, &n.m, n.o, n.src, &r.tx);
    for (j = 0; j < r.tx.count; j++) {
      dgi d;
      dg_info(&r, j, &d);
      if (d.ok && d.observer == 7 && d.type == TC_NON) {
        mid = d.mid;
        found = 1;
      }
    }
    tx_reset(&r);
    CHECK(found, "NON to observer 7");
    peer_of(7, a);
    CHECK_EQ(tc_obs_on_reset(r.obs, a, 4, (mid + 1) & 0xFFFF), 0, "other MID");
    peer_of(8, a);
    CHECK_EQ(tc_obs_on_reset(r.obs, a, 4, mid), 0, "other peer");
    peer_of(7, a);
    CHECK_EQ(tc_obs_on_reset(r.obs, a, 4, mid), 1, "RST to NON removes");
    CHECK_EQ(tc_obs_count(r.obs, 1), 17, "removed");
  }
  /* a non-2.xx notification has no Observe and ends every registration */
  tally_clear(&t);
  note_make(&n, 0x84, "gone", 0);
  CHECK_EQ(t_obs_notify(r.obs, r.ep, 300000, 1, 0, &n.m, n.o, n.src, &r.tx), 17, "4.04 sent");
  flush(&r, &t, 0x84, 0, "gone");
  CHECK(t.bad == 0 && t.total == 17, "4.04 without Observe");
  CHECK_EQ(tc_obs_count(r.obs, 1), 0, "all removed");
  tc_obs_get_stats(r.obs, &st);
  CHECK(st.observers == 0 && st.resources == 0 && st.removed_final == 17, "final stats");
  CHECK_EQ(t_obs_notify(r.obs, r.ep, 300001, 1, 0, &n.m, n.o, n.src, &r.tx), 0, "nobody");
  tally_free(&t);
  rig_free(&r);
}

static void t_con_by_time_and_slots(void) {
  tc_obs_config cfg;
  rig r;
  note n;
  uint32_t i, j, con = 0, non = 0;
  tc_obs_stats st;
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.con_every = 0;
  cfg.con_interval_ms = 1000;
  if (rig_new(&r, &cfg, 8, 256, 1 << 16) != 0) {
    CHECK(0, "rig");
    return;
  }
  for (i = 0; i < 20; i++) reg(&r, 0, i, 1, NULL);
  note_make(&n, 0x45, "t", 0);
  t_obs_notify(r.obs, r.ep, 999, 1, 0, &n.m, n.o, n.src, &r.tx);
  for (j = 0; j < r.tx.count; j++) {
    dgi d;
    dg_info(&r, j, &d);
    if (d.type == TC_CON) con++;
  }
  CHECK_EQ(con, 0, "within the interval: NON");
  tx_reset(&r);
  /* past the interval every observer is due a CON, but the ep has 8 CON slots: 8 CON, 12 NON,
   * and those 12 stay due */
  t_obs_notify(r.obs, r.ep, 1000, 1, 0, &n.m, n.o, n.src, &r.tx);
  con = non = 0;
  for (j = 0; j < r.tx.count; j++) {
    dgi d;
    dg_info(&r, j, &d);
    if (d.type == TC_CON) con++;
    else non++;
  }
  CHECK(con == 8 && non == 12, "CON slots exhausted: the rest NON");
  tc_obs_get_stats(r.obs, &st);
  CHECK_EQ(st.con_deferred, 12, "deferred");
  tx_reset(&r);
  /* ACK nothing; the 8 in flight go NON, the 12 deferred still cannot get a slot */
  t_obs_notify(r.obs, r.ep, 1100, 1, 0, &n.m, n.o, n.src, &r.tx);
  con = 0;
  for (j = 0; j < r.tx.count; j++) {
    dgi d;
    dg_info(&r, j, &d);
    if (d.type == TC_CON) con++;
  }
  CHECK_EQ(con, 0, "no slot, nothing in flight doubled");
  tx_reset(&r);
  /* too large for the staging area */
  {
    static uint8_t big[2000];
    tc_msg m;
    memset(&m, 0, sizeof m);
    m.code = 0x45;
    m.payload_length = 1300;
    CHECK_EQ(t_obs_notify(r.obs, r.ep, 1200, 1, 0, &m, NULL, big, &r.tx),
             TC_E_MESSAGE_TOO_LARGE, "over max_message_size");
    m.code = 0x01;
    m.payload_length = 1;
    CHECK_EQ(t_obs_notify(r.obs, r.ep, 1200, 1, 0, &m, NULL, big, &r.tx), TC_E_INVALID,
             "request code");
  }
  rig_free(&r);
}

/* RFC 7641 §3.6: a RST answering a NON notification, matched by the ep itself
 * (TC_EV_NOTIFY_RESET) and fed to the registry with tc_obs_on_recv. */
static void t_non_reset_via_ep(void) {
  tc_obs_config cfg;
  rig r;
  note n;
  tc_ep_event ev;
  tc_ep_stats es0, es1;
  uint32_t mids[10], i, j, seq, nonl;
  uint64_t now = 1000;
  tc_obs_config_default(&cfg);
  cfg.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  cfg.con_every = 0; /* all NON */
  if (rig_new(&r, &cfg, 8, 64, 64 * 1400) != 0) {
    CHECK(0, "rig");
    return;
  }
  {
    tc_ep_config ec;
    tc_ep_config_default(&ec);
    nonl = (uint32_t)tc_ep_non_lifetime(&ec);
  }
  for (i = 0; i < 10; i++) CHECK(reg(&r, now, i, 1, &seq) > 0, "register");
  note_make(&n, 0x45, "v1", 0);
  CHECK_EQ(t_obs_notify(r.obs, r.ep, now, 1, 0, &n.m, n.o, n.src, &r.tx), 10, "fan-out");
  for (i = 0; i < 10; i++) mids[i] = 0xFFFFFFFFu;
  for (j = 0; j < r.tx.count; j++) {
    dgi d;
    dg_info(&r, j, &d);
    CHECK(d.ok && d.type == TC_NON && d.observer < 10, "NON notification");
    if (d.ok && d.observer < 10) mids[d.observer] = d.mid;
  }
  tx_reset(&r);
  /* observer 3 resets: the ep reports it, the registry drops it */
  feed_ack_rst(&r, now + 10, 3, mids[3], 1, &ev);
  CHECK_EQ(ev.kind, TC_EV_NOTIFY_RESET, "RST to a NON notification reported");
  CHECK_EQ(ev.id, TC_EP_NON_NOTIFY_ID(mids[3]), "its id");
  CHECK_EQ(ev.status, TC_E_RESET, "status");
  CHECK_EQ(ev.flags, TC_EVF_LAST, "flags");
  CHECK_EQ(TC_EP_NON_NOTIFY_MID(ev.id), mids[3], "MID back");
  CHECK_EQ(tc_obs_on_event(r.obs, now + 10, &ev), 0, "on_event lacks the peer");
  CHECK_EQ(tc_obs_count(r.obs, 1), 10, "not yet removed");
  {
    uint8_t a[4];
    peer_of(3, a);
    CHECK_EQ(tc_obs_on_recv(r.obs, now + 10, a, 4, &ev), 1, "on_recv removes");
    CHECK_EQ(tc_obs_on_recv(r.obs, now + 10, a, 4, &ev), 0, "only once");
  }
  CHECK_EQ(tc_obs_count(r.obs, 1), 9, "observer 3 gone");
  /* the same RST again: reported once only */
  tc_ep_get_stats(r.ep, &es0);
  feed_ack_rst(&r, now + 11, 3, mids[3], 1, &ev);
  CHECK_EQ(ev.kind, TC_EV_NONE, "duplicate RST not reported again");
  /* a RST with observer 4's MID but from observer 5's address: not matched */
  feed_ack_rst(&r, now + 12, 5, mids[4], 1, &ev);
  CHECK_EQ(ev.kind, TC_EV_NONE, "other peer");
  /* an empty ACK with that MID is not a Reset */
  feed_ack_rst(&r, now + 12, 4, mids[4], 0, &ev);
  CHECK_EQ(ev.kind, TC_EV_NONE, "ACK to a NON");
  tc_ep_get_stats(r.ep, &es1);
  CHECK_EQ(es1.unmatched - es0.unmatched, 3, "unmatched counted");
  /* observer 4 after NON_LIFETIME: forgotten */
  feed_ack_rst(&r, now + nonl, 4, mids[4], 1, &ev);
  CHECK_EQ(ev.kind, TC_EV_NONE, "after NON_LIFETIME");
  feed_ack_rst(&r, now + nonl - 1, 5, mids[5], 1, &ev);
  CHECK_EQ(ev.kind, TC_EV_NOTIFY_RESET, "just before NON_LIFETIME");
  /* the ring bound: TC_EP_NON_NOTIFY_RING newer MIDs push observer 6's out */
  {
    uint8_t a[4] = {99, 0, 0, 1};
    uint8_t tok[1] = {1};
    uint32_t k, last = 0;
    for (k = 0; k < TC_EP_NON_NOTIFY_RING; k++) {
      uint32_t id = 7;
      CHECK_EQ(t_ep_notify(r.ep, now + 20, a, 4, 0, tok, 1, &n.m, n.o, n.src, &r.tx, &id), 0,
               "notify");
      CHECK_EQ(id, 0, "NON id 0");
      last = (uint32_t)r.tx.buf[r.tx.items[0].offset + 2] << 8 | r.tx.buf[r.tx.items[0].offset + 3];
      tx_reset(&r);
    }
    feed_ack_rst(&r, now + 21, 6, mids[6], 1, &ev);
    CHECK_EQ(ev.kind, TC_EV_NONE, "evicted by the ring bound");
    {
      uint8_t d[4] = {0x70, 0, (uint8_t)(last >> 8), (uint8_t)last};
      tc_msg m;
      tc_opt o[8];
      CHECK_EQ(t_ep_recv(r.ep, now + 22, a, 4, d, 4, &r.tx, &m, o, 8, &ev), 0, "recv");
      CHECK(ev.kind == TC_EV_NOTIFY_RESET && ev.id == TC_EP_NON_NOTIFY_ID(last),
            "newest kept (kind %u)", ev.kind);
      CHECK_EQ(tc_obs_on_recv(r.obs, now + 22, a, 4, &ev), 0, "not an observer");
    }
    /* the oldest of the last TC_EP_NON_NOTIFY_RING MIDs still matches: the bound is a full ring */
    {
      uint32_t m1 = (last + 0x10000u - (TC_EP_NON_NOTIFY_RING - 1u)) & 0xFFFFu;
      uint8_t d[4] = {0x70, 0, (uint8_t)(m1 >> 8), (uint8_t)m1};
      tc_msg m;
      tc_opt o[8];
      CHECK_EQ(t_ep_recv(r.ep, now + 23, a, 4, d, 4, &r.tx, &m, o, 8, &ev), 0, "recv");
      CHECK_EQ(ev.kind, TC_EV_NOTIFY_RESET, "oldest entry of the ring kept");
    }
  }
  rig_free(&r);
}

void test_observe(void);
void test_observe(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  t_registration();
  t_fanout_10000();
  t_con_rules();
  t_con_by_time_and_slots();
  t_non_reset_via_ep();
  printf("observe-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

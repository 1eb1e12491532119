/* fuzz_ep.c — libFuzzer harness for the UDP messaging layer (ep.c).
 *
 * A server endpoint S and a client endpoint C with small bounds are driven by a program read
 * from the input: fuzzer datagrams to either endpoint from a few addresses (one of them the
 * other endpoint's), deliveries (with loss) between their tx queues, advancing time with
 * tc_ep_timer calls, responses, requests, pings, notifications, cancels and drops.
 * After every step invariants are checked: every queued datagram is a well-formed CoAP
 * message addressed within the queue, counters stay within the configured bounds, event ids
 * are live where they must be, and after a timer call with ample room nothing is left due. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"
#include "../test/calls.h"

#define OPT_CAP 32
#define MAX_OPEN 16

typedef struct node {
  tc_ep *ep;
  tc_ep_config cfg;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen;
  uint8_t buf[8192];
  tc_tx items[32];
  tc_txq tx;
  tc_msg msg;
  tc_opt opts[OPT_CAP];
  uint32_t open[MAX_OPEN]; /* server: exchange ids; client: request ids */
  uint32_t nopen;
} node;

static node S, C;
static const uint8_t OTHER[3][TC_ADDR_MAX] = {{10, 9, 9, 9},
                                              {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4},
                                              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}};
static const uint32_t OTHER_LEN[3] = {4, 16, 28};

static void setup(node *n, const uint8_t *addr, uint32_t alen, uint8_t seedb, uint32_t knobs) {
  uint8_t seed[32];
  size_t sz;
  int i;
  tc_ep_config_default(&n->cfg);
  n->cfg.ack_timeout_ms = 1000u + (knobs & 3u) * 500u;
  n->cfg.ack_random_factor_x1000 = (knobs & 4u) ? 1000u : 1500u;
  n->cfg.max_retransmit = (knobs >> 3) & 3u;
  n->cfg.nstart = 1u + ((knobs >> 5) & 1u);
  n->cfg.max_latency_ms = 5000;
  n->cfg.separate_ack_delay_ms = (knobs & 64u) ? 0u : 500u;
  n->cfg.dedup_entries = 6;
  n->cfg.response_cache_bytes = (knobs & 128u) ? 0u : 300u;
  n->cfg.max_in_progress = 4;
  n->cfg.max_in_progress_per_peer = 2;
  n->cfg.max_client_requests = 5;
  n->cfg.con_slots = 3;
  n->cfg.max_message_size = 160;
  n->cfg.response_timeout_ms = 20000;
  sz = tc_ep_size(&n->cfg);
  REQUIRE(sz > 0);
  if (n->ep == NULL) n->ep = malloc(sz);
  else n->ep = realloc(n->ep, sz);
  REQUIRE(n->ep != NULL);
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(seedb + i * 7);
  REQUIRE(tc_ep_init(n->ep, sz, &n->cfg, seed) == 0);
  memcpy(n->addr, addr, alen);
  n->alen = alen;
  n->tx.buf = n->buf;
  n->tx.cap = sizeof n->buf;
  n->tx.items = n->items;
  n->tx.item_cap = 32;
  n->tx.used = n->tx.count = 0;
  n->nopen = 0;
}

/* Every datagram the core queued must be a valid message; addresses within bounds. */
static void check_tx(const node *n) {
  uint32_t i;
  REQUIRE(n->tx.count <= n->tx.item_cap && n->tx.used <= n->tx.cap);
  for (i = 0; i < n->tx.count; i++) {
    const tc_tx *t = &n->tx.items[i];
    tc_msg m;
    tc_opt o[64];
    REQUIRE(t->addr_length >= 1 && t->addr_length <= TC_ADDR_MAX);
    REQUIRE((uint64_t)t->addr_offset + t->addr_length <= n->tx.used);
    REQUIRE((uint64_t)t->offset + t->length <= n->tx.used);
    REQUIRE(t->length >= 4 && t->length <= n->cfg.max_message_size);
    REQUIRE(tc_decode(n->tx.buf + t->offset, t->length, TC_UDP, &m, o, 64) >= 0);
    REQUIRE(m.token_length <= TC_EP_TOKEN_MAX);
    if (m.code == 0) REQUIRE(m.type != TC_NON); /* Empty: CON ping, ACK, RST */
    else REQUIRE(m.type != TC_RST);
  }
}

static void check_stats(const node *n) {
  tc_ep_stats st;
  tc_ep_get_stats(n->ep, &st);
  REQUIRE(st.in_progress <= n->cfg.max_in_progress);
  REQUIRE(st.client_requests <= n->cfg.max_client_requests);
  REQUIRE(st.con_slots_used <= n->cfg.con_slots);
  REQUIRE(st.dedup_used <= n->cfg.dedup_entries);
  REQUIRE(st.peers <= n->cfg.max_in_progress + n->cfg.max_client_requests);
  if (n == &S) REQUIRE(st.in_progress == n->nopen); /* every REQUEST is tracked or dropped */
}

static void forget(node *n, uint32_t id) {
  uint32_t i;
  for (i = 0; i < n->nopen; i++)
    if (n->open[i] == id) {
      n->open[i] = n->open[--n->nopen];
      return;
    }
}

static void remember(node *n, uint32_t id) {
  if (n->nopen < MAX_OPEN) n->open[n->nopen++] = id;
}

static void on_event(node *n, const tc_ep_event *ev) {
  uint8_t a[TC_ADDR_MAX];
  switch (ev->kind) {
  case TC_EV_NONE:
    break;
  case TC_EV_REQUEST:
    REQUIRE(ev->id != 0 && (ev->id & 0x80000000u) == 0);
    REQUIRE(tc_ep_peer(n->ep, ev->id, a, sizeof a) >= 1);
    REQUIRE((n->msg.code >> 5) == 0 && n->msg.code != 0);
    if (n->nopen < MAX_OPEN) remember(n, ev->id);
    else REQUIRE(tc_ep_drop(n->ep, ev->id) == 0);
    break;
  case TC_EV_RESPONSE:
    REQUIRE(ev->id & 0x80000000u);
    if (ev->flags & TC_EVF_LAST) {
      REQUIRE(tc_ep_peer(n->ep, ev->id, a, sizeof a) == TC_E_STALE);
      forget(n, ev->id);
    } else {
      REQUIRE(tc_ep_peer(n->ep, ev->id, a, sizeof a) >= 1);
    }
    break;
  case TC_EV_FAILED:
    REQUIRE(ev->status == TC_E_TIMEOUT || ev->status == TC_E_RESET ||
            ev->status == TC_E_BAD_OPTION);
    if (ev->id & 0x80000000u) {
      REQUIRE(tc_ep_peer(n->ep, ev->id, a, sizeof a) == TC_E_STALE);
      forget(n, ev->id);
    } else {
      REQUIRE(ev->id & 0x40000000u); /* a notification */
      REQUIRE(tc_ep_cancel(n->ep, ev->id) == TC_E_STALE);
    }
    break;
  case TC_EV_ACKED:
    REQUIRE(ev->id & 0x40000000u);
    REQUIRE(tc_ep_cancel(n->ep, ev->id) == TC_E_STALE);
    break;
  case TC_EV_NOTIFY_RESET: /* a RST to a NON notification: id carries its MID, nothing tracked */
    REQUIRE(ev->id == TC_EP_NON_NOTIFY_ID(TC_EP_NON_NOTIFY_MID(ev->id)));
    REQUIRE(ev->status == TC_E_RESET && ev->flags == TC_EVF_LAST);
    REQUIRE(tc_ep_cancel(n->ep, ev->id) == TC_E_STALE);
    break;
  default:
    REQUIRE(0);
  }
}

static void recv_into(node *to, uint64_t now, const uint8_t *addr, uint32_t alen,
                      const uint8_t *data, size_t len) {
  tc_ep_event ev;
  int r = t_ep_recv(to->ep, now, addr, alen, data, len, &to->tx, &to->msg, to->opts, OPT_CAP,
                     &ev);
  if (r == TC_E_FULL) {
    to->tx.used = to->tx.count = 0;
    r = t_ep_recv(to->ep, now, addr, alen, data, len, &to->tx, &to->msg, to->opts, OPT_CAP,
                   &ev);
  }
  REQUIRE(r == 0);
  on_event(to, &ev);
}

/* Deliver (some of) from's queue to `to`; the queue is emptied. */
static void pump(node *from, node *to, uint64_t now, uint32_t lossmask) {
  static uint8_t copy[8192];
  static tc_tx items[32];
  uint32_t i, n = from->tx.count;
  memcpy(copy, from->buf, from->tx.used);
  memcpy(items, from->items, n * sizeof items[0]);
  from->tx.used = from->tx.count = 0;
  for (i = 0; i < n; i++) {
    if (lossmask & (1u << (i & 7u))) continue;
    if (items[i].addr_length == to->alen &&
        memcmp(copy + items[i].addr_offset, to->addr, to->alen) == 0)
      recv_into(to, now, from->addr, from->alen, copy + items[i].offset, items[i].length);
  }
}

static void timer(node *n, uint64_t now) {
  tc_ep_event ev[16];
  int k, i;
  n->tx.used = n->tx.count = 0;
  k = tc_ep_timer(n->ep, now, &n->tx, ev, 16);
  REQUIRE(k >= 0 && k <= 16);
  for (i = 0; i < k; i++) on_event(n, &ev[i]);
  check_tx(n);
  /* with ample room nothing may be left due */
  REQUIRE(tc_ep_next_deadline(n->ep) > now);
}

static void build_msg(input *in, tc_msg *m, tc_opt *o, uint8_t *src, uint32_t *srclen) {
  uint32_t nopt = take(in) % 4u, i, p = 0;
  memset(m, 0, sizeof *m);
  for (i = 0; i < nopt; i++) {
    uint32_t len = take(in) % 6u, j;
    o[i].number = take(in) | (take(in) & 1u) << 8;
    o[i].offset = p;
    o[i].length = len;
    for (j = 0; j < len; j++) src[p++] = (uint8_t)take(in);
  }
  m->option_count = nopt;
  m->payload_offset = p;
  m->payload_length = take(in) % 40u;
  for (i = 0; i < m->payload_length; i++) src[p++] = (uint8_t)take(in);
  *srclen = p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t saddr[4] = {10, 0, 0, 1}, caddr[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 7};
  input in;
  uint64_t now = 1000;
  uint32_t steps = 0;
  in.p = data;
  in.n = size;
  setup(&S, saddr, 4, 1, take(&in));
  setup(&C, caddr, 16, 2, take(&in));
  now += take(&in) << 16;
  while (in.n > 0 && steps++ < 400) {
    uint32_t op = take(&in) % 13u;
    switch (op) {
    case 0:
    case 1: { /* a fuzzer datagram to S (op 0) or C (op 1) */
      node *to = op == 0 ? &S : &C;
      node *peer = op == 0 ? &C : &S;
      uint32_t who = take(&in) % 4u, len = take(&in) % 96u;
      const uint8_t *addr = who == 3 ? peer->addr : OTHER[who];
      uint32_t alen = who == 3 ? peer->alen : OTHER_LEN[who];
      uint8_t dgram[96];
      uint32_t i;
      if (len > in.n) len = (uint32_t)in.n;
      for (i = 0; i < len; i++) dgram[i] = (uint8_t)take(&in);
      /* bias towards valid headers: version 1 */
      if (len > 0 && (take(&in) & 1u)) dgram[0] = (uint8_t)((dgram[0] & 0x3Fu) | 0x40u);
      recv_into(to, now, addr, alen, dgram, len);
      break;
    }
    case 2: /* deliver C -> S and S -> C, with losses */
      pump(&C, &S, now, take(&in) & 0x0Fu);
      pump(&S, &C, now, take(&in) & 0x0Fu);
      break;
    case 3: { /* time passes; timers */
      uint32_t dt = take(&in) | take(&in) << 8;
      now += (uint64_t)dt * ((take(&in) & 1u) ? 8u : 1u);
      timer(&S, now);
      pump(&S, &C, now, 0);
      timer(&C, now);
      pump(&C, &S, now, 0);
      break;
    }
    case 4: { /* jump to the next deadline of one side */
      node *n = (take(&in) & 1u) ? &S : &C;
      uint64_t d = tc_ep_next_deadline(n->ep);
      if (d != UINT64_MAX && d > now && d - now < 10000000u) now = d;
      timer(n, now);
      break;
    }
    case 5: { /* S responds to an open exchange (or a bogus id) */
      uint8_t src[256];
      tc_opt o[4];
      tc_msg m;
      uint32_t srclen, pick = take(&in), id, code;
      int r;
      build_msg(&in, &m, o, src, &srclen);
      code = take(&in);
      m.code = (code & 0x80u) ? code : (0x40u | (code & 0x7Fu)); /* mostly 2.xx..5.xx */
      if (S.nopen && !(pick & 0x80u)) id = S.open[pick % S.nopen];
      else id = pick * 0x10001u;
      S.tx.used = S.tx.count = 0;
      r = t_ep_respond(S.ep, now, id, &m, o, src, &S.tx);
      REQUIRE(r == 0 || r == TC_E_STALE || r == TC_E_FULL || r == TC_E_INVALID ||
              r == TC_E_MESSAGE_TOO_LARGE);
      if (r == 0) forget(&S, id);
      check_tx(&S);
      break;
    }
    case 6: { /* C sends a request */
      uint8_t src[256], tok[TC_EP_TOKEN_MAX];
      tc_opt o[4];
      tc_msg m;
      uint32_t srclen, flags = take(&in), id = 0, tkl = 0, to = take(&in) % 3u;
      int gen = (int)(take(&in) % 12u) - 2, r;
      tc_ep_stats before, after;
      build_msg(&in, &m, o, src, &srclen);
      m.code = 1u + take(&in) % 8u;
      if (gen < 0) { /* caller token */
        m.token_offset = srclen;
        m.token_length = take(&in) % 5u;
        memset(src + srclen, 0x33, m.token_length);
      }
      tc_ep_get_stats(C.ep, &before);
      r = t_ep_request(C.ep, now, to ? S.addr : OTHER[0], to ? S.alen : 4,
                        flags & (TC_REQ_CON | TC_REQ_KEEP), &m, o, src, gen, &C.tx, &id, tok,
                        &tkl);
      tc_ep_get_stats(C.ep, &after);
      REQUIRE(r == 0 || r == TC_E_FULL || r == TC_E_INVALID || r == TC_E_MESSAGE_TOO_LARGE);
      if (r == 0) {
        REQUIRE(id & 0x80000000u);
        REQUIRE(after.client_requests == before.client_requests + 1);
        remember(&C, id);
      } else {
        REQUIRE(after.client_requests == before.client_requests); /* nothing changed */
        REQUIRE(after.tx == before.tx);
      }
      check_tx(&C);
      break;
    }
    case 7: { /* C cancels */
      uint32_t pick = take(&in);
      if (C.nopen) {
        uint32_t id = C.open[pick % C.nopen];
        int r = tc_ep_cancel(C.ep, id);
        REQUIRE(r == 0 || r == TC_E_STALE);
        forget(&C, id);
      } else {
        int r = tc_ep_cancel(C.ep, pick << 8 | 0x80000000u);
        REQUIRE(r == 0 || r == TC_E_STALE);
      }
      break;
    }
    case 8: { /* S drops an exchange */
      uint32_t pick = take(&in);
      if (S.nopen) {
        uint32_t id = S.open[pick % S.nopen];
        REQUIRE(tc_ep_drop(S.ep, id) == 0);
        forget(&S, id);
        REQUIRE(tc_ep_drop(S.ep, id) == TC_E_STALE);
      }
      break;
    }
    case 9: { /* C pings */
      uint32_t id, to_s = take(&in) & 1u;
      int r = tc_ep_ping(C.ep, now, to_s ? S.addr : OTHER[1], to_s ? S.alen : 16, &C.tx, &id);
      REQUIRE(r == 0 || r == TC_E_FULL);
      if (r == 0) remember(&C, id);
      check_tx(&C);
      break;
    }
    case 10: { /* S notifies C with a fuzzer token */
      uint8_t src[256], tok[8];
      tc_opt o[4];
      tc_msg m;
      uint32_t srclen, flags = take(&in) & TC_REQ_CON, tkl = take(&in) % 9u, i, id;
      int r;
      for (i = 0; i < tkl; i++) tok[i] = (uint8_t)take(&in);
      build_msg(&in, &m, o, src, &srclen);
      m.code = 0x45;
      r = t_ep_notify(S.ep, now, C.addr, C.alen, flags, tok, tkl, &m, o, src, &S.tx, &id);
      REQUIRE(r == 0 || r == TC_E_FULL || r == TC_E_INVALID || r == TC_E_MESSAGE_TOO_LARGE);
      check_tx(&S);
      break;
    }
    case 11: { /* a forged reply to a queued datagram: same MID and token, fuzzer type/code */
      node *x = (take(&in) & 1u) ? &S : &C;
      uint32_t pick = take(&in);
      if (x->tx.count) {
        const tc_tx *t = &x->tx.items[pick % x->tx.count];
        tc_msg m, r;
        tc_opt o[64], ro[4];
        uint8_t src[256], out[512], dst[TC_ADDR_MAX];
        uint32_t srclen, dlen = t->addr_length, b = take(&in);
        int n;
        memcpy(dst, x->tx.buf + t->addr_offset, dlen);
        REQUIRE(tc_decode(x->tx.buf + t->offset, t->length, TC_UDP, &m, o, 64) >= 0);
        build_msg(&in, &r, ro, src, &srclen);
        memcpy(src + srclen, x->tx.buf + t->offset + m.token_offset, m.token_length);
        r.type = b & 3u;
        r.code = (b & 4u) ? 0u : (take(&in) & 0xFFu);
        if (r.code == 0u) r.option_count = r.payload_length = 0;
        r.message_id = (b & 8u) ? m.message_id : take(&in);
        r.token_offset = srclen;
        r.token_length = r.code ? m.token_length : 0u;
        n = tc_encode(out, sizeof out, TC_UDP, &r, ro, src);
        if (n > 0) recv_into(x, now, dst, dlen, out, (size_t)n);
      }
      break;
    }
    default: /* reset queues (the driver sent them) */
      S.tx.used = S.tx.count = 0;
      C.tx.used = C.tx.count = 0;
      break;
    }
    check_tx(&S);
    check_tx(&C);
    check_stats(&S);
    check_stats(&C);
  }
  /* wind down: far in the future everything ends */
  now += 10000000u;
  S.tx.used = S.tx.count = C.tx.used = C.tx.count = 0;
  timer(&S, now);
  timer(&C, now);
  while (S.nopen) {
    REQUIRE(tc_ep_drop(S.ep, S.open[S.nopen - 1]) == 0);
    S.nopen--;
  }
  for (steps = 0; steps < 1000; steps++) {
    tc_ep_stats st;
    uint64_t d;
    tc_ep_get_stats(C.ep, &st);
    d = tc_ep_next_deadline(C.ep);
    if (d == UINT64_MAX) break;
    now = d > now ? d : now + 1;
    timer(&C, now);
    if (st.client_requests == 0 && st.con_slots_used == 0 && st.dedup_used == 0) break;
  }
  {
    tc_ep_stats st;
    tc_ep_get_stats(S.ep, &st);
    REQUIRE(st.in_progress == 0);
  }
  return 0;
}

/* fuzz_txrecords.c — libFuzzer harness for the batch records both UDP glues share
 * (native/driver/ep_batch.h): the TX record runner (tcb_tx_run), which reads the record
 * table and byte area JavaScript writes, and the RX record writer (tcb_rx_put), which fills
 * the batches JavaScript reads.
 *
 * A server endpoint S and a client endpoint C, each a tc_ep with its server pipeline (tc_srv,
 * as in the drivers; small bounds, a small tx queue so that TCB_TX_DRAIN happens, also in
 * Observe fan-outs) are driven by a program read from the input:
 *   op 0  a flush: target endpoint, then a record table of n words and a byte area of m bytes
 *         copied from the input into blocks of exactly that size (so ASan sees any access
 *         past them), optionally steered towards well-formed records (kinds, counts, live
 *         ids, loopback addresses); run like udp.c's udpFlush: TCB_TX_DRAIN -> deliver the
 *         queue to the other endpoint, reset it, call again.
 *   op 1  a raw datagram from the input to S or C (tc_srv_recv, through the RX writer; an
 *         upload body it reports is read back or left in the store).
 *   op 2  advance time and run tc_srv_timer / tc_ep_timer on both (events not consumed by
 *         tc_srv_on_timer_event through the RX writer).
 * Checked: the runner stops at a record boundary inside the table, returns DONE or
 * TC_E_INVALID, needs a bounded number of DRAIN rounds (each with datagrams queued) and
 * counts failures correctly; queued datagrams lie inside the queue and decode; every RX batch
 * record lies inside the batch, its message / option offsets inside the batch byte area, and
 * its srv words are zero unless it is a request (a body id only with TC_SRVF_BODY). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"
#include "../test/calls.h"
#include "ep_batch.h"

#define MAX_LIVE 16
#define RX_WORD_CAP (TCB_RX_MAX_WORDS + 4u * TCB_RX_WORDS + 7u)
#define RX_DATA_CAP 3000u

#define BODY_MAX 4096u

typedef struct node {
  tc_ep *ep;
  size_t ep_size;
  tc_srv *srv;
  size_t srv_size;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen;
  uint8_t buf[2 * (TCB_ADDR4_LEN + 1024) + 64];
  tc_tx items[6];
  tc_txq tx;
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_srv_req req;
  tc_ep_event evs[8];
  uint32_t live[MAX_LIVE]; /* ids seen in events: exchange ids (S), request ids (C) */
  uint32_t nlive;
} node;

static node S, C;
static tcb_rx RX;
static uint64_t now;

static void setup(node *n, uint8_t last, uint32_t knobs) {
  tc_ep_config cfg;
  tc_srv_config scfg;
  uint8_t seed[48];
  size_t sz;
  int i;
  tc_ep_config_default(&cfg);
  cfg.ack_timeout_ms = 1000;
  cfg.max_retransmit = knobs & 3u;
  cfg.nstart = 1u + ((knobs >> 2) & 1u);
  cfg.max_latency_ms = 5000;
  cfg.separate_ack_delay_ms = (knobs & 8u) ? 0u : 300u;
  cfg.dedup_entries = 6;
  cfg.response_cache_bytes = (knobs & 16u) ? 0u : 400u;
  cfg.max_in_progress = 4;
  cfg.max_in_progress_per_peer = 3;
  cfg.max_client_requests = 5;
  cfg.con_slots = 3;
  cfg.max_message_size = (knobs & 32u) ? 96u : 1024u;
  cfg.response_timeout_ms = 20000;
  sz = tc_ep_size(&cfg);
  REQUIRE(sz > 0);
  if (n->ep_size != sz) {
    free(n->ep);
    n->ep = malloc(sz);
    n->ep_size = sz;
  }
  REQUIRE(n->ep != NULL);
  for (i = 0; i < 48; i++) seed[i] = (uint8_t)(last + i * 11);
  REQUIRE(tc_ep_init(n->ep, sz, &cfg, seed) == 0);
  /* the pipeline: small stores and registry, so that bounds and fan-out rounds are hit */
  tc_srv_config_default(&scfg);
  scfg.bw1.max_transfers = 2;
  scfg.bw1.max_per_peer = 2;
  scfg.bw1.max_body = BODY_MAX;
  scfg.bw1.pool_bytes = 4096;
  scfg.bw1.chunk_size = 64;
  scfg.bw1.max_key = 64;
  scfg.bw1.idle_timeout_ms = 3000;
  scfg.bw1.preferred_szx = (knobs >> 8) % 7u;
  scfg.bw2.max_reps = 2;
  scfg.bw2.pool_bytes = 4096;
  scfg.bw2.chunk_size = 64;
  scfg.bw2.max_key = 64;
  scfg.bw2.max_opt_bytes = 128;
  scfg.bw2.max_opts = 8;
  scfg.bw2.preferred_szx = scfg.bw1.preferred_szx;
  scfg.bw2.default_lifetime_ms = 5000;
  scfg.obs.max_observers = 4;
  scfg.obs.max_per_resource = 4;
  scfg.obs.max_resources = 2;
  scfg.obs.con_every = (knobs >> 4) & 3u;
  scfg.obs.con_interval_ms = 10000;
  scfg.obs.max_jobs = 2;
  scfg.obs.max_message_size = cfg.max_message_size;
  scfg.obs.max_opts = 8;
  scfg.max_in_progress = cfg.max_in_progress;
  scfg.max_message_size = cfg.max_message_size;
  scfg.max_resource_keys = 2;
  sz = tc_srv_size(&scfg);
  REQUIRE(sz > 0);
  if (n->srv_size != sz) {
    free(n->srv);
    n->srv = aligned_alloc(8, (sz + 7u) & ~(size_t)7u);
    n->srv_size = sz;
  }
  REQUIRE(n->srv != NULL);
  REQUIRE(tc_srv_init(n->srv, sz, &scfg, seed + 32) == 0);
  /* 127.0.0.last:5683 in the canonical form of ep_batch.h */
  n->alen = TCB_ADDR4_LEN;
  n->addr[0] = 4;
  n->addr[1] = 0x16;
  n->addr[2] = 0x33;
  n->addr[3] = 127;
  n->addr[4] = 0;
  n->addr[5] = 0;
  n->addr[6] = last;
  n->tx.buf = n->buf;
  /* tc_srv_recv wants room for two datagrams: the small queue holds just that */
  n->tx.cap = (knobs & 64u) ? 2u * (TCB_ADDR4_LEN + cfg.max_message_size) : (uint32_t)sizeof n->buf;
  n->tx.used = 0;
  n->tx.items = n->items;
  n->tx.item_cap = (knobs & 128u) ? 2u : 6u;
  n->tx.count = 0;
  n->nlive = 0;
}

static void remember(node *n, uint32_t id) {
  if (id == 0) return;
  if (n->nlive < MAX_LIVE) n->live[n->nlive++] = id;
  else n->live[id % MAX_LIVE] = id;
}

/* Every record of the batch lies in it; message and option offsets in its byte area. */
static void check_rx(void) {
  uint32_t pos = 0, k;
  for (k = 0; k < RX.count; k++) {
    const uint32_t *w;
    uint32_t n = TCB_RX_WORDS;
    REQUIRE(pos + TCB_RX_WORDS <= RX.word_used);
    w = RX.words + pos;
    REQUIRE(w[0] >= TC_EV_REQUEST && w[0] <= TC_EV_NOTIFY_RESET);
    if (w[0] != TC_EV_REQUEST) REQUIRE(w[TCB_RX_SRV_FLAGS] == 0 && w[TCB_RX_SRV_FLAGS + 1] == 0 && w[TCB_RX_SRV_FLAGS + 2] == 0);
    REQUIRE((w[TCB_RX_SRV_FLAGS] & ~(uint32_t)(TC_SRVF_OBSERVE | TC_SRVF_BODY | TC_SRVF_BLOCK2)) == 0);
    if (w[TCB_RX_SRV_FLAGS] & TC_SRVF_BODY) REQUIRE(w[TCB_RX_SRV_FLAGS + 1] != 0 && w[TCB_RX_SRV_FLAGS + 2] <= BODY_MAX);
    else REQUIRE(w[TCB_RX_SRV_FLAGS + 1] == 0 && w[TCB_RX_SRV_FLAGS + 2] == 0);
    if (w[0] == TC_EV_REQUEST || w[0] == TC_EV_RESPONSE) {
      const uint32_t *m = w + TCB_RX_TYPE;
      uint32_t base = w[11], len = w[12], i;
      REQUIRE(base <= RX.data_used && len <= RX.data_used - base);
      REQUIRE(m[3] >= base && m[4] <= len && m[3] - base <= len - m[4]); /* token */
      REQUIRE(m[5] <= TCB_OPT_CAP);
      REQUIRE(m[6] >= base && m[7] <= len && m[6] - base <= len - m[7]); /* payload */
      REQUIRE(m[8] == len);
      n += TC_OPT_WORDS * m[5];
      REQUIRE(pos + n <= RX.word_used);
      for (i = 0; i < m[5]; i++) {
        uint32_t off = w[TCB_RX_WORDS + 3 * i + 1], olen = w[TCB_RX_WORDS + 3 * i + 2];
        REQUIRE(off >= base && olen <= len && off - base <= len - olen);
      }
      if (w[4] == 4u) REQUIRE(w[5] <= 65535u);
    }
    pos += n;
  }
  REQUIRE(pos == RX.word_used);
  REQUIRE(RX.word_used <= RX.word_cap && RX.data_used <= RX.data_cap);
}

/* What JS does with a batch: read it, then the driver resets it. */
static void hand_over(void) {
  check_rx();
  tcb_rx_reset(&RX);
}

/* Queued datagrams lie inside the queue and decode as CoAP over UDP. */
static void check_txq(const node *n) {
  uint32_t i;
  REQUIRE(n->tx.count <= n->tx.item_cap && n->tx.used <= n->tx.cap);
  for (i = 0; i < n->tx.count; i++) {
    const tc_tx *t = &n->tx.items[i];
    tc_msg m;
    static tc_opt o[TCB_OPT_CAP];
    REQUIRE(t->offset <= n->tx.used && t->length <= n->tx.used - t->offset);
    REQUIRE(t->addr_offset <= n->tx.used && t->addr_length <= n->tx.used - t->addr_offset);
    REQUIRE(t->addr_length == TCB_ADDR4_LEN || t->addr_length == TCB_ADDR6_LEN);
    REQUIRE(tc_decode(n->tx.buf + t->offset, t->length, TC_UDP, &m, o, TCB_OPT_CAP) >= 0);
  }
}

/* A datagram from addr to n, as udp.c's recv_cb: make room, receive, record the event; then
 * what JS may do with an upload body: read it (every other one) or leave it to the store. */
static void recv_one(node *n, const uint8_t *addr, uint32_t alen, const uint8_t *data,
                     uint32_t len) {
  tc_ep_event ev;
  int rc, tries;
  if (!tcb_rx_room(&RX, len)) hand_over();
  REQUIRE(tcb_rx_room(&RX, len));
  for (tries = 0;; tries++) {
    rc = t_srv_recv(n->srv, n->ep, now, addr, alen, data, len, &n->tx, &n->msg, n->opts,
                     TCB_OPT_CAP, &ev, &n->req);
    if (rc != TC_E_FULL || tries > 0) break;
    n->tx.count = 0; /* "sent" */
    n->tx.used = 0;
  }
  REQUIRE(rc != TC_E_FULL); /* an empty queue has room for the two datagrams */
  check_txq(n);
  if (rc < 0) return;
  if (ev.kind != TC_EV_NONE) {
    tcb_rx_put(&RX, &ev, addr, alen, data, len, &n->msg, n->opts, &n->req);
    if (ev.kind == TC_EV_REQUEST) remember(n, ev.id);
    if (ev.kind == TC_EV_REQUEST && (n->req.flags & TC_SRVF_BODY) && (ev.id & 2u)) {
      static uint8_t body[BODY_MAX];
      REQUIRE(n->req.body_length <= BODY_MAX);
      if (n->req.body_length > 0)
        REQUIRE(tc_srv_read_body(n->srv, n->req.body_id, body, n->req.body_length - 1u) ==
                TC_E_BUFFER_TOO_SMALL);
      REQUIRE(tc_srv_read_body(n->srv, n->req.body_id, body, BODY_MAX) ==
              (int)n->req.body_length);
      REQUIRE(tc_srv_read_body(n->srv, n->req.body_id, body, BODY_MAX) == TC_E_STALE);
    }
  }
}

/* Send from's queue: each datagram goes to `to` when addressed to it. */
static void deliver(node *from, node *to) {
  uint32_t i;
  static uint8_t copy[2048];
  check_txq(from);
  for (i = 0; i < from->tx.count; i++) {
    const tc_tx *t = &from->tx.items[i];
    if (t->addr_length != to->alen || memcmp(from->buf + t->addr_offset, to->addr, to->alen) != 0)
      continue;
    REQUIRE(t->length <= sizeof copy);
    memcpy(copy, from->buf + t->offset, t->length);
    recv_one(to, from->addr, from->alen, copy, t->length);
  }
  from->tx.count = 0;
  from->tx.used = 0;
}

static void addr_words(const node *n, uint32_t *w) {
  tcb_addr_to_words(n->addr, n->alen, w);
}

/* Nudge a fuzzer-written table towards well-formed records: kinds, counts, live ids and the
 * other endpoint's address, walking the table the way the runner will. */
static void steer(uint32_t *w, uint32_t nwords, uint32_t nbytes, node *self, node *peer,
                  input *in) {
  uint32_t pos = 0;
  static const uint32_t codes[] = {65, 68, 69, 132, 160, 163, 0, 1};
  while (pos < nwords) {
    uint32_t *r = w + pos, left = nwords - pos, kind = 1u + r[0] % 6u, size, i;
    uint32_t cnt_at = 0, opt_at = 0, cap;
    r[0] = kind;
    switch (kind) {
    case TCB_TX_RESPOND: size = TCB_TX_RESPOND_WORDS; cnt_at = 6; opt_at = 8; break;
    case TCB_TX_REQUEST: size = TCB_TX_REQUEST_WORDS; cnt_at = 15; opt_at = 16; break;
    case TCB_TX_NOTIFY: size = TCB_TX_NOTIFY_WORDS; cnt_at = 7; opt_at = 8; break;
    case TCB_TX_PING: size = TCB_TX_PING_WORDS; break;
    default: size = TCB_TX_SMALL_WORDS; break;
    }
    if (left < size) return;
    if (kind != TCB_TX_REQUEST && kind != TCB_TX_PING && kind != TCB_TX_NOTIFY &&
        self->nlive > 0 && (take(in) & 1u))
      r[1] = self->live[r[1] % self->nlive];
    if (kind == TCB_TX_REQUEST) {
      addr_words(peer, r + 5);
      r[3] &= 3u | TCB_REQ_TOKEN;
      r[4] = 1u + r[4] % 7u;
      if (!(r[3] & TCB_REQ_TOKEN)) {
        r[12] %= 9u;
      } else if (nbytes > 0) { /* a caller token, mostly inside the byte area */
        uint32_t off = (r[12] >> TCB_REQ_TOKEN_SHIFT) % (nbytes + 1u);
        uint32_t len = (r[12] & 63u) % (nbytes - off < 9u ? nbytes - off + 1u : 10u);
        r[12] = off << TCB_REQ_TOKEN_SHIFT | len;
      }
    } else if (kind == TCB_TX_PING) {
      addr_words(peer, r + 3);
    } else if (kind == TCB_TX_RESPOND) {
      r[3] = codes[r[3] % 8u];
      r[7] %= 3u; /* resource: none, 1 or 2 */
    } else if (kind == TCB_TX_NOTIFY) {
      r[1] %= 3u;
      r[3] &= TC_OBS_CON;
      r[4] = codes[r[4] % 8u];
    }
    if (cnt_at != 0) {
      cap = (left - size) / 3u;
      r[cnt_at] = cap == 0 ? 0 : r[cnt_at] % (cap < 6u ? cap + 1u : 6u);
      if (nbytes > 0) {
        r[cnt_at - 2] %= nbytes + 1u;                 /* payload offset */
        r[cnt_at - 1] %= nbytes - r[cnt_at - 2] + 1u; /* payload length */
      }
      for (i = 0; i < r[cnt_at]; i++) {
        uint32_t *o = r + opt_at + 3 * i;
        o[0] %= 70u;
        if (nbytes > 0) {
          o[1] %= nbytes + 1u;
          o[2] %= (nbytes - o[1] < 40u ? nbytes - o[1] : 40u) + 1u;
        }
      }
      size += 3u * r[cnt_at];
    }
    pos += size;
  }
}

static void flush(node *self, node *peer, input *in) {
  uint32_t ctl = take(in), nwords = take(in) % 97u, nbytes = take(in) * (ctl & 1u ? 4u : 1u);
  uint32_t *w = malloc((size_t)(nwords ? nwords : 1u) * 4u);
  uint8_t *b = malloc(nbytes ? nbytes : 1u);
  uint32_t pos = 0, failed = 0, rounds = 0, i, records = 0;
  int rc;
  REQUIRE(w != NULL && b != NULL);
  for (i = 0; i < nwords; i++) w[i] = (ctl & 2u) ? take(in) : take32(in);
  for (i = 0; i < nbytes; i++) b[i] = (uint8_t)take(in);
  if (ctl & 4u) steer(w, nwords, nbytes, self, peer, in);
  for (;;) {
    uint32_t before = pos;
    rc = tcb_tx_run(self->srv, self->ep, now, w, nwords, b, nbytes, &self->tx, &pos, &failed);
    REQUIRE(pos <= nwords);
    REQUIRE(pos >= before);
    check_txq(self);
    if (rc != TCB_TX_DRAIN) break;
    REQUIRE(self->tx.count > 0);
    /* every DRAIN frees the queue for progress: a record, or a fan-out's next datagram (at
     * most 8 observers pending, 4 more per NOTIFY) */
    REQUIRE(++rounds <= 2u * nwords + 16u);
    deliver(self, peer);
  }
  REQUIRE(rc == TCB_TX_DONE || rc == TC_E_INVALID);
  if (rc == TCB_TX_DONE) REQUIRE(pos == nwords);
  /* walk the records that ran: pos is on a record boundary; rc words and ids consistent */
  {
    uint32_t p = 0, bad = 0;
    while (p < pos) {
      uint32_t *r = w + p, size;
      switch (r[0]) {
      case TCB_TX_RESPOND: size = TCB_TX_RESPOND_WORDS + 3u * r[6]; break;
      case TCB_TX_REQUEST: size = TCB_TX_REQUEST_WORDS + 3u * r[15]; break;
      case TCB_TX_NOTIFY: size = TCB_TX_NOTIFY_WORDS + 3u * r[7]; break;
      case TCB_TX_CANCEL:
      case TCB_TX_DROP:
      case TCB_TX_OBSERVERS: size = TCB_TX_SMALL_WORDS; break;
      case TCB_TX_PING: size = TCB_TX_PING_WORDS; break;
      default: size = 0; REQUIRE(0);
      }
      REQUIRE(size <= pos - p);
      if (r[0] == TCB_TX_OBSERVERS) { /* RC is the observer count, never a failure */
        records++;
        p += size;
        continue;
      }
      if (r[2] != 0u) bad++;
      REQUIRE((int32_t)r[2] <= 0);
      if (r[0] == TCB_TX_REQUEST || r[0] == TCB_TX_PING) {
        REQUIRE((r[2] == 0u) == (r[1] != 0u));
        if (r[2] == 0u) remember(self, r[1]);
      }
      records++;
      p += size;
    }
    REQUIRE(p == pos);
    REQUIRE(bad == failed);
  }
  free(w);
  free(b);
  deliver(self, peer);
  deliver(peer, self);
}

static void timers(input *in) {
  node *ns[2] = {&S, &C};
  int k;
  now += take(in) * 37u;
  for (k = 0; k < 2; k++) {
    node *n = ns[k];
    int round;
    if (tc_srv_next_deadline(n->srv) <= now) REQUIRE(tc_srv_timer(n->srv, now) >= 0);
    for (round = 0; round < 8; round++) {
      uint32_t room = (RX.word_cap - RX.word_used) / TCB_RX_WORDS, cap, i;
      int ne;
      if (room < 2) {
        hand_over();
        room = (RX.word_cap - RX.word_used) / TCB_RX_WORDS;
      }
      cap = room < 8u ? room : 8u;
      ne = tc_ep_timer(n->ep, now, &n->tx, n->evs, cap);
      REQUIRE(ne >= 0 && (uint32_t)ne <= cap);
      for (i = 0; i < (uint32_t)ne; i++)
        if (!tc_srv_on_timer_event(n->srv, now, &n->evs[i]))
          tcb_rx_put(&RX, &n->evs[i], NULL, 0, NULL, 0, NULL, NULL, NULL);
      check_rx();
      deliver(n, n == &S ? &C : &S);
      if (tc_ep_next_deadline(n->ep) > now) break;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  uint32_t knobs = take(&in), steps = 0;
  if (RX.words == NULL) {
    RX.words = malloc(RX_WORD_CAP * 4u);
    RX.word_cap = RX_WORD_CAP;
    RX.data = malloc(RX_DATA_CAP);
    RX.data_cap = RX_DATA_CAP;
    REQUIRE(RX.words != NULL && RX.data != NULL);
  }
  tcb_rx_reset(&RX);
  now = 1000;
  setup(&S, 1, knobs);
  setup(&C, 2, knobs >> 1);
  while (in.n > 0 && steps++ < 64) {
    uint32_t op = take(&in);
    node *self = (op & 8u) ? &C : &S, *peer = self == &S ? &C : &S;
    switch (op % 3u) {
    case 0:
      flush(self, peer, &in);
      break;
    case 1: {
      uint32_t len = take(&in) * 2u, i;
      uint8_t *d = malloc(len ? len : 1u);
      REQUIRE(d != NULL);
      for (i = 0; i < len; i++) d[i] = (uint8_t)take(&in);
      recv_one(self, peer->addr, peer->alen, d, len);
      free(d);
      deliver(self, peer);
      break;
    }
    default:
      timers(&in);
      break;
    }
    check_rx();
  }
  hand_over();
  return 0;
}

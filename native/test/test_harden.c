/* test_harden.c — abuse cases of issue 10 against the messaging layer (tc_ep) and the server
 * pipeline (tc_srv), with raw datagrams and injected time: accepted requests always answered
 * (no CON slot: NON), unimplemented critical options rejected, the RFC 9175 §2.4 amplification
 * defence (Echo), Observe / Block1 per-host bounds, dedup eviction order and Block2 reuse.
 * Prints "harden-tests: N passed, M failed" (counted in the c-tests total). */
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "test.h"
#include "turbocoap.h"

#define H_OPTS 64
#define H_TXB (1u << 20)
#define H_TXI 256u

typedef struct hnode {
  tc_ep *ep;
  tc_srv *srv; /* NULL: the bare messaging layer */
  tc_srv_config sc;
  uint8_t *buf;
  tc_tx items[H_TXI];
  tc_txq tx;
  tc_msg msg;
  tc_opt opts[H_OPTS];
  tc_ep_event ev;
  tc_srv_req req;
} hnode;

static unsigned long h_pass0, h_fail0;

static void h_ep_cfg(tc_ep_config *c) {
  tc_ep_config_default(c);
  c->dedup_entries = 256;
  c->max_in_progress = 64;
  c->max_in_progress_per_peer = 64;
  c->con_slots = 4;
  c->max_client_requests = 8;
}

static hnode *h_new(const tc_ep_config *ec, const tc_srv_config *sc) {
  hnode *n = calloc(1, sizeof *n);
  uint8_t seed[32];
  size_t es = tc_ep_size(ec), ss = sc ? tc_srv_size(sc) : 0;
  int i;
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(i * 13 + 5);
  if (n == NULL || es == 0 || (sc && ss == 0)) {
    CHECK(0, "h_new: config");
    exit(2);
  }
  n->ep = malloc(es);
  n->buf = malloc(H_TXB);
  if (n->ep == NULL || n->buf == NULL || tc_ep_init(n->ep, es, ec, seed) != 0) exit(2);
  if (sc) {
    n->srv = malloc(ss);
    n->sc = *sc;
    if (n->srv == NULL || tc_srv_init(n->srv, ss, sc, seed) != 0) exit(2);
  }
  n->tx.buf = n->buf;
  n->tx.cap = H_TXB;
  n->tx.items = n->items;
  n->tx.item_cap = H_TXI;
  return n;
}

static void h_free(hnode *n) {
  free(n->ep);
  free(n->srv);
  free(n->buf);
  free(n);
}

static void h_reset(hnode *n) { n->tx.used = n->tx.count = 0; }

static tc_ep_stats h_stats(const hnode *n) {
  tc_ep_stats s;
  tc_ep_get_stats(n->ep, &s);
  return s;
}

/* Peer address (4 bytes: 10, host, 0, port; the "port" is bytes 2..3). */
static void h_addr(uint32_t host, uint32_t port, uint8_t a[4]) {
  a[0] = 10;
  a[1] = (uint8_t)host;
  a[2] = (uint8_t)(host >> 8);
  a[3] = (uint8_t)port;
}

/* A raw request: type, code, mid, 4-byte token, Uri-Path, extra options from t (may be NULL). */
static uint32_t h_mk(uint8_t *out, uint32_t type, uint32_t code, uint32_t mid, const char *path,
                     const tc_tmsg *extra) {
  tc_tmsg t;
  uint32_t i;
  int n;
  tmsg_init(&t, code);
  t.msg.type = type;
  t.msg.message_id = mid;
  memcpy(t.src, "\x11\x22\x33\x44", 4);
  t.msg.token_length = 4;
  t.w = 4;
  if (path && *path) tmsg_opt(&t, 11, path, (uint32_t)strlen(path));
  if (extra)
    for (i = 0; i < extra->msg.option_count; i++)
      tmsg_opt(&t, extra->opts[i].number, extra->src + extra->opts[i].offset,
               extra->opts[i].length);
  if (extra && extra->msg.payload_length)
    tmsg_payload(&t, extra->src + extra->msg.payload_offset, extra->msg.payload_length);
  {
    /* options must be sorted for tc_encode */
    uint32_t a, b;
    for (a = 1; a < t.msg.option_count; a++)
      for (b = a; b > 0 && t.opts[b - 1].number > t.opts[b].number; b--) {
        tc_opt x = t.opts[b];
        t.opts[b] = t.opts[b - 1];
        t.opts[b - 1] = x;
      }
  }
  n = tc_encode(out, 2048, TC_UDP, &t.msg, t.opts, t.src);
  if (n < 0) {
    CHECK(0, "h_mk: encode %d", n);
    exit(2);
  }
  return (uint32_t)n;
}

static int h_in(hnode *n, uint64_t now, const uint8_t *addr, const uint8_t *b, uint32_t len) {
  if (n->srv)
    return t_srv_recv(n->srv, n->ep, now, addr, 4, b, len, &n->tx, &n->msg, n->opts, H_OPTS,
                       &n->ev, &n->req);
  return t_ep_recv(n->ep, now, addr, 4, b, len, &n->tx, &n->msg, n->opts, H_OPTS, &n->ev);
}

/* Respond to id with code and a payload of plen bytes ('p'). */
static int h_resp(hnode *n, uint64_t now, uint32_t id, uint32_t code, uint32_t plen,
                  uint32_t resource) {
  static uint8_t src[8192];
  tc_msg m;
  memset(&m, 0, sizeof m);
  memset(src, 'p', plen);
  m.code = code;
  m.payload_length = plen;
  if (n->srv) return t_srv_respond(n->srv, n->ep, now, id, &m, NULL, src, resource, &n->tx);
  return t_ep_respond(n->ep, now, id, &m, NULL, src, &n->tx);
}

/* Decode datagram k of n's tx queue; returns 0 and fills m/o/bytes, or -1. */
static int h_dg(const hnode *n, uint32_t k, tc_msg *m, tc_opt *o, const uint8_t **b,
                uint32_t *len) {
  if (k >= n->tx.count) return -1;
  *b = n->tx.buf + n->tx.items[k].offset;
  *len = n->tx.items[k].length;
  return tc_decode(*b, *len, TC_UDP, m, o, H_OPTS) < 0 ? -1 : 0;
}

/* The value of option num in datagram k (copied to out, <= 64 bytes); its length or -1. */
static int h_opt(const hnode *n, uint32_t k, uint32_t num, uint8_t *out) {
  tc_msg m;
  tc_opt o[H_OPTS];
  const uint8_t *b;
  uint32_t len, i;
  if (h_dg(n, k, &m, o, &b, &len) < 0) return -1;
  for (i = 0; i < m.option_count; i++)
    if (o[i].number == num && o[i].length <= 64) {
      memcpy(out, b + o[i].offset, o[i].length);
      return (int)o[i].length;
    }
  return -1;
}

static uint32_t h_code(const hnode *n, uint32_t k) {
  tc_msg m;
  tc_opt o[H_OPTS];
  const uint8_t *b;
  uint32_t len;
  return h_dg(n, k, &m, o, &b, &len) < 0 ? 0xFFFFu : m.code;
}

static uint32_t h_type(const hnode *n, uint32_t k) {
  tc_msg m;
  tc_opt o[H_OPTS];
  const uint8_t *b;
  uint32_t len;
  return h_dg(n, k, &m, o, &b, &len) < 0 ? 0xFFFFu : m.type;
}

/* ------------------------------------------------------------ finding 1 */

/* Peers that never ACK hold every CON slot; a separate response still goes out (NON), for
 * every one of many accepted requests: none accepted and dropped. */
static void h_no_lost_response(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4];
  uint32_t len, i, ids[40], answered = 0;
  uint64_t t = 1000;
  h_ep_cfg(&c);
  c.amplification_factor = 0;
  s = h_new(&c, NULL);
  for (i = 0; i < 40; i++) {
    h_addr(i, 1, a);
    len = h_mk(b, TC_CON, 1, 1000 + i, "slow", NULL);
    CHECK_EQ(h_in(s, t, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "delivered");
    ids[i] = s->ev.id;
  }
  /* the handler is slow: every request gets its empty ACK */
  t += c.separate_ack_delay_ms;
  CHECK(tc_ep_timer(s->ep, t, &s->tx, NULL, 0) >= 0, "timer");
  CHECK_EQ(s->tx.count, 40, "empty ACKs");
  h_reset(s);
  for (i = 0; i < 40; i++) {
    uint32_t k = s->tx.count;
    int rc = h_resp(s, t, ids[i], 0x45, 16, 0);
    CHECK_EQ(rc, 0, "a late response is accepted");
    if (rc == 0 && s->tx.count == k + 1u && h_code(s, k) == 0x45) answered++;
  }
  CHECK_EQ(answered, 40, "every accepted request answered");
  CHECK_EQ(h_stats(s).con_slots_used, 4, "the CON slots were all busy");
  CHECK_EQ(h_stats(s).responses_non, 36, "the rest went NON");
  CHECK_EQ(h_type(s, 39), TC_NON, "NON");
  CHECK_EQ(h_type(s, 0), TC_CON, "CON while slots were free");
  CHECK_EQ(h_stats(s).responses_dropped, 0, "nothing dropped");
  CHECK_EQ(h_stats(s).in_progress, 0, "no exchange left open");
  h_free(s);
}

/* ------------------------------------------------------------ finding 7 */

static void h_unimplemented_critical(void) {
  static const uint32_t nums[3] = {9, 19, 31};
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4], v[64];
  uint32_t len, i;
  h_ep_cfg(&c);
  s = h_new(&c, NULL);
  h_addr(1, 1, a);
  for (i = 0; i < 3; i++) {
    tc_tmsg x;
    tmsg_init(&x, 0);
    tmsg_opt(&x, nums[i], "\x01", 1);
    h_reset(s);
    len = h_mk(b, TC_CON, 1, 200 + i, "r", &x);
    CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_NONE, "not delivered");
    CHECK_EQ(h_code(s, 0), 0x82, "4.02 Bad Option");
    CHECK(h_opt(s, 0, 12, v) < 0, "no content format");
    /* NON: rejected silently */
    h_reset(s);
    len = h_mk(b, TC_NON, 1, 300 + i, "r", &x);
    CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_NONE, "NON not delivered");
    CHECK_EQ(s->tx.count, 0, "NON ignored");
  }
  CHECK_EQ(h_stats(s).bad_options, 6, "counted");
  /* Observe (6, elective) and Block2 (23, implemented) still pass */
  {
    tc_tmsg x;
    tmsg_init(&x, 0);
    tmsg_uint(&x, 23, 0x02);
    len = h_mk(b, TC_CON, 1, 400, "r", &x);
    CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "Block2 is acted on");
  }
  h_free(s);
}

/* ------------------------------------------------------------ finding 3 */

/* Every datagram queued to addr is at most factor x reqlen bytes. */
static int h_within(const hnode *n, uint32_t reqlen, uint32_t factor) {
  uint32_t k;
  for (k = 0; k < n->tx.count; k++)
    if (n->tx.items[k].length > factor * reqlen) return 0;
  return 1;
}

static void h_echo(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4], y[4], echo[64];
  uint32_t len, elen;
  int el;
  tc_tmsg x;
  h_ep_cfg(&c);
  s = h_new(&c, NULL);
  h_addr(1, 1, a);
  h_addr(1, 2, y); /* same host, another port: another endpoint */
  /* a small GET asking for a large response from an unverified endpoint: 4.01 + Echo */
  len = h_mk(b, TC_CON, 1, 1, "large", NULL);
  CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "delivered");
  CHECK_EQ(h_resp(s, 1000, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(s->tx.count, 1, "one datagram");
  CHECK_EQ(h_code(s, 0), 0x81, "4.01 Unauthorized");
  el = h_opt(s, 0, 252, echo);
  CHECK(el > 0 && el <= 40, "Echo option, %d bytes", el);
  CHECK(h_within(s, len, 3), "<= 3x the request (%u bytes)", s->tx.items[0].length);
  CHECK_EQ(h_stats(s).echo_challenges, 1, "counted");
  /* a small response goes out as is */
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 2, "small", NULL);
  CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 1000, s->ev.id, 0x45, 8, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x45, "2.05");
  /* the echo from another endpoint does not count */
  elen = el > 0 ? (uint32_t)el : 0u;
  tmsg_init(&x, 0);
  tmsg_opt(&x, 252, echo, elen);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 3, "large", &x);
  CHECK_EQ(h_in(s, 1500, y, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "delivered");
  CHECK_EQ(h_resp(s, 1500, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x81, "still 4.01 for another port");
  /* a stale echo (after echo_lifetime_ms) does not count */
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 4, "large", &x);
  CHECK_EQ(h_in(s, 1000 + c.echo_lifetime_ms + 2000, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 1000 + c.echo_lifetime_ms + 2000, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x81, "stale echo: 4.01 again");
  /* a tampered echo does not count */
  echo[elen - 1] ^= 1u;
  tmsg_init(&x, 0);
  tmsg_opt(&x, 252, echo, elen);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 5, "large", &x);
  CHECK_EQ(h_in(s, 1200, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 1200, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x81, "tampered echo: 4.01");
  echo[elen - 1] ^= 1u;
  /* the right echo from the right endpoint: verified, the large response goes out */
  tmsg_init(&x, 0);
  tmsg_opt(&x, 252, echo, elen);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 6, "large", &x);
  CHECK_EQ(h_in(s, 1300, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 1300, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x45, "verified: 2.05");
  CHECK_EQ(h_stats(s).verified, 1, "one verified endpoint");
  /* ... and stays verified without echoing again */
  h_reset(s);
  len = h_mk(b, TC_NON, 1, 7, "large", NULL);
  CHECK_EQ(h_in(s, 5000, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 5000, s->ev.id, 0x45, 1000, 0), 0, "respond");
  CHECK_EQ(h_code(s, 0), 0x45, "still verified");
  /* ... until verified_lifetime_ms */
  h_reset(s);
  len = h_mk(b, TC_NON, 1, 8, "large", NULL);
  CHECK_EQ(h_in(s, 1300 + (uint64_t)c.verified_lifetime_ms, a, b, len), 0, "recv");
  CHECK_EQ(h_resp(s, 1300 + (uint64_t)c.verified_lifetime_ms, s->ev.id, 0x45, 1000, 0), 0, "r");
  CHECK_EQ(h_code(s, 0), 0x81, "verification expired");
  h_free(s);
}

/* An Observe registration from an unverified endpoint is challenged before the application
 * sees it; with the echo it is delivered. */
static void h_echo_observe(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4], echo[64];
  uint32_t len;
  int el;
  tc_tmsg x;
  h_ep_cfg(&c);
  s = h_new(&c, NULL);
  h_addr(2, 1, a);
  tmsg_init(&x, 0);
  tmsg_uint(&x, 6, 0);
  len = h_mk(b, TC_CON, 1, 10, "obs", &x);
  CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_NONE, "not delivered");
  CHECK_EQ(h_code(s, 0), 0x81, "4.01");
  CHECK_EQ(h_type(s, 0), TC_ACK, "piggybacked");
  el = h_opt(s, 0, 252, echo);
  CHECK(el > 0, "Echo");
  CHECK(h_within(s, len, 3), "<= 3x");
  CHECK_EQ(h_stats(s).in_progress, 0, "nothing held");
  tmsg_opt(&x, 252, echo, el > 0 ? (uint32_t)el : 0u);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, 11, "obs", &x);
  CHECK_EQ(h_in(s, 1100, a, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "with the echo: delivered");
  /* a deregistration (Observe 1) or a plain GET is not challenged */
  h_addr(3, 1, a);
  tmsg_init(&x, 0);
  tmsg_uint(&x, 6, 1);
  len = h_mk(b, TC_CON, 1, 12, "obs", &x);
  CHECK_EQ(h_in(s, 1200, a, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "Observe 1 delivered");
  h_free(s);
}

/* The verified-endpoint table is bounded. */
static void h_echo_bound(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4], echo[64];
  uint32_t len, i;
  int el;
  tc_tmsg x;
  h_ep_cfg(&c);
  c.verified_peers = 8;
  s = h_new(&c, NULL);
  for (i = 0; i < 100; i++) {
    h_addr(100 + i, 1, a);
    h_reset(s);
    len = h_mk(b, TC_NON, 1, 20 + i, "large", NULL);
    CHECK_EQ(h_in(s, 1000 + i, a, b, len), 0, "recv");
    CHECK_EQ(h_resp(s, 1000 + i, s->ev.id, 0x45, 500, 0), 0, "respond");
    el = h_opt(s, 0, 252, echo);
    tmsg_init(&x, 0);
    tmsg_opt(&x, 252, echo, el > 0 ? (uint32_t)el : 0u);
    h_reset(s);
    len = h_mk(b, TC_NON, 1, 2000 + i, "large", &x);
    CHECK_EQ(h_in(s, 1000 + i, a, b, len), 0, "recv");
    CHECK_EQ(h_resp(s, 1000 + i, s->ev.id, 0x45, 500, 0), 0, "respond");
    CHECK_EQ(h_code(s, 0), 0x45, "verified");
  }
  CHECK(h_stats(s).verified <= 8, "bounded: %u", h_stats(s).verified);
  CHECK_EQ(h_stats(s).echo_challenges, 100, "one challenge each");
  h_free(s);
}


static tc_srv_config h_srv_cfg(void);

/* A POST (not safe) from an unverified endpoint is never run twice because of the defence:
 * a small one is challenged before the application sees it, and the repeat with the Echo
 * value is delivered once and gets the large response; one large enough that any response
 * fits is delivered at once. A GET still runs first (re-running it is harmless). */
static void h_echo_unsafe_once(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4], echo[64];
  uint32_t len, delivered = 0, m, w;
  int el;
  tc_tmsg x;
  for (w = 0; w < 2; w++) { /* bare messaging layer, then the pipeline */
    tc_srv_config sc = h_srv_cfg();
    h_ep_cfg(&c);
    s = h_new(&c, w ? &sc : NULL);
    delivered = 0;
    h_addr(40, 1, a);
    for (m = 2; m <= 7; m++) { /* POST PUT DELETE FETCH(safe) PATCH iPATCH */
      if (m == 5) continue;
      h_reset(s);
      len = h_mk(b, TC_CON, m, 100 + m, "act", NULL);
      CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
      if (s->ev.kind == TC_EV_REQUEST) {
        delivered++;
        CHECK_EQ(h_resp(s, 1000, s->ev.id, 0x44, 600, 0), 0, "respond");
      }
      CHECK(s->ev.kind == TC_EV_NONE, "method %u: challenged before the handler", m);
      CHECK_EQ(h_code(s, 0), 0x81, "4.01");
      CHECK(h_within(s, len, 3), "<= 3x");
    }
    CHECK_EQ(delivered, 0, "no handler ran");
    /* the repeat with the Echo value: delivered once, the large response goes out */
    el = h_opt(s, 0, 252, echo);
    tmsg_init(&x, 0);
    tmsg_opt(&x, 252, echo, el > 0 ? (uint32_t)el : 0u);
    h_reset(s);
    len = h_mk(b, TC_CON, 2, 200, "act", &x);
    CHECK_EQ(h_in(s, 1100, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "with the echo: delivered");
    CHECK_EQ(h_resp(s, 1100, s->ev.id, 0x44, 600, 0), 0, "respond");
    CHECK_EQ(h_code(s, 0), 0x44, "2.04, the handler's response");
    /* a POST of >= (max_message_size + 4) / 3 bytes from another unverified endpoint: any
     * response fits, delivered at once */
    h_addr(41, 1, a);
    tmsg_init(&x, 0);
    memset(b, 'q', 500);
    tmsg_payload(&x, b, 500);
    h_reset(s);
    len = h_mk(b, TC_CON, 2, 300, "act", &x);
    CHECK(3u * len >= c.max_message_size + 4u, "large request (%u bytes)", len);
    CHECK_EQ(h_in(s, 1200, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "large POST delivered");
    CHECK_EQ(h_resp(s, 1200, s->ev.id, 0x44, 900, 0), 0, "respond");
    CHECK_EQ(h_code(s, 0), 0x44, "2.04");
    CHECK(h_within(s, len, 3), "<= 3x");
    /* a GET is delivered; its large response is replaced */
    h_addr(42, 1, a);
    h_reset(s);
    len = h_mk(b, TC_CON, 1, 400, "large", NULL);
    CHECK_EQ(h_in(s, 1300, a, b, len), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "GET delivered");
    CHECK_EQ(h_resp(s, 1300, s->ev.id, 0x45, 900, 0), 0, "respond");
    CHECK_EQ(h_code(s, 0), 0x81, "4.01");
    h_free(s);
  }
}

/* Bytes queued to address a (4 bytes) in n's tx queue. */
static uint64_t h_bytes_to(const hnode *n, const uint8_t *a) {
  uint64_t t = 0;
  uint32_t k;
  for (k = 0; k < n->tx.count; k++)
    if (n->tx.items[k].addr_length == 4u &&
        memcmp(n->tx.buf + n->tx.items[k].addr_offset, a, 4) == 0)
      t += n->tx.items[k].length;
  return t;
}

/* A raw datagram: type, code, mid, tkl-byte token, path of plen bytes, extra options (sorted,
 * after Uri-Path) and a payload of paylen bytes. */
static uint32_t h_raw(uint8_t *out, uint32_t type, uint32_t code, uint32_t mid, uint32_t tkl,
                      uint32_t plen, uint32_t opt, uint32_t olen, uint32_t paylen) {
  tc_tmsg t;
  uint8_t v[300];
  int n;
  tmsg_init(&t, code);
  t.msg.type = type;
  t.msg.message_id = mid;
  memset(t.src, 0x5A, tkl);
  t.msg.token_length = tkl;
  t.w = tkl;
  memset(v, 'u', sizeof v);
  if (opt != 0u && opt < 11u) tmsg_opt(&t, opt, v, olen);
  if (plen) tmsg_opt(&t, 11, v, plen);
  if (opt > 11u) tmsg_opt(&t, opt, v, olen);
  if (paylen) tmsg_payload(&t, v, paylen);
  n = tc_encode(out, 2048, TC_UDP, &t.msg, t.opts, t.src);
  if (n < 0) {
    CHECK(0, "h_raw: encode %d", n);
    exit(2);
  }
  return (uint32_t)n;
}

/* The 3x rule holds strictly: from many unverified endpoints, requests of every shape and size
 * (CON/NON, every method and an unknown one, tokens 0..8, Observe, unimplemented critical
 * options, Proxy-Uri, pings, format errors, short duplicates of a request's Message ID, a
 * per-peer overload) answered piggybacked, separately and NON with small to large responses:
 * per endpoint, the bytes sent are at most 3x the bytes received. */
static void h_amplification_sweep(void) {
  static const uint32_t codes[] = {1, 2, 3, 4, 5, 6, 7, 9};
  static const uint32_t tkls[] = {0, 1, 4, 8};
  static const uint32_t plens[] = {0, 1, 5, 40};
  static const uint32_t sizes[] = {0, 3, 8, 20, 60, 200, 1000};
  static const uint32_t extra[][2] = {{0, 0}, {6, 1}, {6, 0}, {9, 0}, {35, 8}, {60, 1}, {12, 1}};
  tc_ep_config c;
  tc_ep_event evs[8];
  uint8_t b[2048], d[8], a[4];
  uint32_t w, ci, ti, pi, si, ei, ty, k, shapes = 0, bad = 0, host = 0, retx = 0;
  uint64_t now = 1000, in_all = 0, out_all = 0, worst_in = 1, worst_out = 0;
  for (w = 0; w < 2; w++) {
    tc_srv_config sc = h_srv_cfg();
    hnode *s;
    h_ep_cfg(&c);
    c.max_in_progress_per_peer = 2;
    s = h_new(&c, w ? &sc : NULL);
    for (ci = 0; ci < sizeof codes / sizeof codes[0]; ci++)
      for (ti = 0; ti < 4; ti++)
        for (pi = 0; pi < 4; pi++)
          for (ei = 0; ei < sizeof extra / sizeof extra[0]; ei++)
            for (ty = 0; ty < 2; ty++)
              for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                uint32_t len, mid = (host * 7u) & 0xFFFFu, type = ty ? TC_NON : TC_CON, sep;
                uint64_t in = 0, out = 0;
                int rc;
                host++;
                h_addr(host & 0xFFFFu, 1u + (host >> 16), a);
                sep = (host % 3u) == 0u; /* every third: a separate response */
                h_reset(s);
                len = h_raw(b, type, codes[ci], mid, tkls[ti], plens[pi], extra[ei][0],
                            extra[ei][1], si == 6 ? 0u : plens[pi] * 2u);
                now++;
                in += len;
                CHECK_EQ(h_in(s, now, a, b, len), 0, "recv");
                if (s->ev.kind == TC_EV_REQUEST) {
                  uint32_t id = s->ev.id;
                  if (si == 0) { /* a second request while this one waits: per-peer bound */
                    uint8_t b2[64];
                    uint32_t l2 = h_raw(b2, type, 1, mid + 1u, tkls[ti], 0, 0, 0, 0), l3;
                    in += l2;
                    (void)h_in(s, now, a, b2, l2); /* held open: the peer's second */
                    l3 = h_raw(b2, type, 1, mid + 2u, tkls[ti], 0, 0, 0, 0);
                    in += l3;
                    (void)h_in(s, now, a, b2, l3); /* a third: 5.03 */
                    CHECK(s->ev.kind != TC_EV_REQUEST, "per-peer bound: not delivered");
                  }
                  if (sep) { /* past separate_ack_delay_ms: an empty ACK first */
                    now += c.separate_ack_delay_ms + 1u;
                    (void)tc_ep_timer(s->ep, now, &s->tx, evs, 8);
                  }
                  rc = h_resp(s, now, id, si == 1 ? 0x84u : 0x45u, sizes[si], 0);
                  CHECK(rc == 0, "respond: %d", rc);
                }
                /* a true duplicate, then a 4-byte datagram with the same Message ID */
                in += len;
                (void)h_in(s, now, a, b, len);
                d[0] = (uint8_t)(0x40u | (type << 4));
                d[1] = (uint8_t)codes[ci];
                d[2] = (uint8_t)(mid >> 8);
                d[3] = (uint8_t)mid;
                in += 4;
                (void)h_in(s, now, a, d, 4);
                /* later timers: retransmissions, if any */
                for (k = 0; k < 8u; k++) {
                  now += 30000u;
                  (void)tc_ep_timer(s->ep, now, &s->tx, evs, 8);
                }
                out = h_bytes_to(s, a);
                retx = (uint32_t)h_stats(s).retransmits;
                shapes++;
                in_all += in;
                out_all += out;
                if (out * worst_in > worst_out * in) {
                  worst_out = out;
                  worst_in = in;
                }
                if (out > 3u * in) {
                  if (bad++ < 5)
                    CHECK(0, "code %u tkl %u path %u opt %u %s size %u: %llu bytes in, %llu out",
                          codes[ci], tkls[ti], plens[pi], extra[ei][0], ty ? "NON" : "CON",
                          sizes[si], (unsigned long long)in, (unsigned long long)out);
                }
              }
    CHECK(retx > 0, "separate CON responses were retransmitted (%u)", retx);
    h_free(s);
  }
  /* the smallest request: 4 bytes, no token, no option (GET /, ping) */
  {
    hnode *s;
    h_ep_cfg(&c);
    s = h_new(&c, NULL);
    for (ty = 0; ty < 2; ty++) {
      h_addr(60000u + ty, 9, a);
      h_reset(s);
      d[0] = (uint8_t)(0x40u | ((ty ? TC_NON : TC_CON) << 4));
      d[1] = 1;
      d[2] = 0;
      d[3] = (uint8_t)(9 + ty);
      CHECK_EQ(h_in(s, now, a, d, 4), 0, "recv");
      CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "delivered");
      CHECK_EQ(h_resp(s, now, s->ev.id, 0x45, 100, 0), 0, "respond");
      if (ty == 0) {
        CHECK_EQ(s->tx.count, 1, "CON: one datagram");
        CHECK_EQ(h_type(s, 0), TC_RST, "CON: RST (not even 4.01 + Echo fits in 12 bytes)");
        CHECK_EQ(s->tx.items[0].length, 4, "4 bytes");
      } else {
        CHECK_EQ(s->tx.count, 0, "NON: nothing");
      }
      h_reset(s);
      CHECK_EQ(h_in(s, now, a, d, 4), 0, "duplicate");
      CHECK(h_bytes_to(s, a) <= 12u, "duplicate within 3x");
    }
    h_free(s);
  }
  CHECK_EQ(bad, 0, "endpoints over 3x");
  printf("harden: amplification sweep: %u shapes, %llu bytes in, %llu out; worst %llu -> %llu\n",
         shapes, (unsigned long long)in_all, (unsigned long long)out_all,
         (unsigned long long)worst_in, (unsigned long long)worst_out);
}


/* ------------------------------------------------------------ finding 2 */

static tc_srv_config h_srv_cfg(void) {
  tc_srv_config sc;
  tc_srv_config_default(&sc);
  sc.max_in_progress = 64;
  sc.max_message_size = 1280;
  sc.obs.max_observers = 64;
  sc.obs.max_per_resource = 64;
  sc.obs.max_per_host = 4;
  sc.obs.port_offset = 2; /* test addresses: 10, host, 0, port */
  sc.obs.con_every = 20;
  return sc;
}

/* Register (host, port) for /obs through the pipeline; returns 1 if the response carried
 * Observe. */
static int h_register(hnode *s, uint64_t now, uint32_t host, uint32_t port, uint32_t mid) {
  uint8_t b[2048], a[4], v[64];
  tc_tmsg x;
  uint32_t len;
  h_addr(host, port, a);
  tmsg_init(&x, 0);
  tmsg_uint(&x, 6, 0);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, mid, "obs", &x);
  if (h_in(s, now, a, b, len) != 0 || s->ev.kind != TC_EV_REQUEST) return -1;
  if (h_resp(s, now, s->ev.id, 0x45, 4, 1) != 0 || s->tx.count != 1) return -1;
  return h_opt(s, 0, 6, v) >= 0 ? 1 : 0;
}

static int h_notify(hnode *s, uint64_t now) {
  static const uint8_t pl[4] = {'v', 'a', 'l', 'u'};
  tc_msg m;
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  m.payload_length = 4;
  h_reset(s);
  return t_srv_notify(s->srv, s->ep, now, 1, 0, &m, NULL, pl, &s->tx);
}

static void h_observe_per_host(void) {
  tc_ep_config c;
  tc_srv_config sc = h_srv_cfg();
  tc_srv_stats st;
  hnode *s;
  uint32_t i, with = 0;
  h_ep_cfg(&c);
  c.amplification_factor = 0;
  c.max_in_progress = 64;
  c.con_slots = 16;
  s = h_new(&c, &sc);
  /* one host, many ports: only max_per_host registrations; the rest are told (no Observe) */
  for (i = 0; i < 20; i++) with += h_register(s, 1000, 7, 1 + i, 100 + i) == 1;
  CHECK_EQ(with, 4, "per-host bound");
  tc_srv_get_stats(s->srv, &st);
  CHECK_EQ(st.observers, 4, "registered");
  CHECK_EQ(st.observers_refused, 16, "refused and counted");
  /* a new observer from another host is served during the flood */
  CHECK_EQ(h_register(s, 1000, 8, 1, 200), 1, "another host registers");
  /* unconfirmed observers: the first notification is CON, nothing more while it is in flight */
  {
    uint8_t a[4], ack[4] = {0x60, 0, 0, 0};
    uint32_t k, found = 0;
    CHECK_EQ(h_notify(s, 2000), 5, "five notifications");
    h_addr(8, 1, a);
    for (k = 0; k < s->tx.count; k++) {
      CHECK_EQ(h_type(s, k), TC_CON, "CON to an unconfirmed observer");
      if (memcmp(s->tx.buf + s->tx.items[k].addr_offset, a, 4) == 0) {
        const uint8_t *d = s->tx.buf + s->tx.items[k].offset;
        ack[2] = d[2];
        ack[3] = d[3];
        found = 1;
      }
    }
    CHECK(found, "a CON to host 8");
    /* newer states replace the CON in flight, up to 8 CONs, then nothing until confirmed */
    for (k = 1; k < 8; k++) {
      CHECK_EQ(h_notify(s, 2000 + k), 5, "a newer state replaces the CON in flight");
      CHECK_EQ(h_type(s, 4), TC_CON, "CON");
    }
    h_addr(8, 1, a);
    for (k = 0; k < s->tx.count; k++)
      if (memcmp(s->tx.buf + s->tx.items[k].addr_offset, a, 4) == 0) {
        const uint8_t *d = s->tx.buf + s->tx.items[k].offset;
        ack[2] = d[2];
        ack[3] = d[3];
      }
    CHECK_EQ(h_notify(s, 2100), 0, "nothing after 8 unacknowledged CONs");
    tc_srv_get_stats(s->srv, &st);
    CHECK_EQ(st.notifications_skipped, 5, "skipped");
    CHECK_EQ(h_stats(s).con_slots_used, 5, "one CON in flight per observer");
    /* host 8 acknowledges: confirmed; later notifications follow con_every (NON) */
    h_reset(s);
    CHECK_EQ(h_in(s, 2200, a, ack, 4), 0, "ACK");
    CHECK_EQ(h_notify(s, 2300), 1, "one: to the confirmed observer");
    CHECK_EQ(h_type(s, 0), TC_NON, "NON once confirmed");
  }
  /* the four that never answer are removed after the CON's retransmissions (not 1.7 h) */
  {
    uint64_t t = 2300, last = 2300;
    tc_ep_event evs[16];
    for (i = 0; i < 40; i++) {
      int n, k;
      t = tc_ep_next_deadline(s->ep);
      if (t == UINT64_MAX) break;
      last = t;
      h_reset(s);
      n = tc_ep_timer(s->ep, t, &s->tx, evs, 16);
      for (k = 0; k < n; k++) (void)tc_srv_on_timer_event(s->srv, t, &evs[k]);
      tc_srv_get_stats(s->srv, &st);
      if (st.observers == 1u) break;
    }
    CHECK_EQ(st.observers, 1, "vanished observers removed");
    CHECK(last < 2000 + 100000, "within MAX_TRANSMIT_WAIT (%llu ms)", (unsigned long long)last);
  }
  h_free(s);
}

/* ------------------------------------------------------------ finding 4 */

static int h_b1(tc_bw1 *b, uint64_t now, uint32_t host, uint32_t port, uint32_t num,
                uint32_t more, tc_bw1_result *r) {
  static uint8_t block[64];
  uint8_t a[4];
  h_addr(host, port, a);
  memset(block, 'u', sizeof block);
  return t_bw1_feed(b, now, a, 4, (const uint8_t *)"up", 2, tc_block_value(num, more, 2), 0, 0,
                     block, more ? 64u : 10u, r);
}

static void h_upload_fair(void) {
  tc_bw1_config c;
  tc_bw1_stats st;
  tc_bw1_result r;
  tc_bw1 *b;
  uint8_t seed[16] = {1, 2, 3};
  size_t sz;
  uint32_t i;
  tc_bw1_config_default(&c);
  c.max_transfers = 8;
  c.max_per_peer = 8;
  c.max_per_host = 3;
  c.port_offset = 2; /* test addresses: 10, host, 0, port */
  c.pool_bytes = 64u << 10;
  c.reclaim_idle_ms = 10000;
  sz = tc_bw1_size(&c);
  b = malloc(sz);
  if (b == NULL || tc_bw1_init(b, sz, &c, seed) != 0) {
    CHECK(0, "bw1 init");
    free(b);
    return;
  }
  /* one host, many ports: at most max_per_host uploads */
  for (i = 0; i < 6; i++) h_b1(b, 1000, 1, 10 + i, 0, 1, &r);
  tc_bw1_get_stats(b, &st);
  CHECK_EQ(st.transfers, 3, "per-host bound");
  CHECK_EQ(st.refused_host, 3, "refused for the host bound");
  /* other hosts fill the table */
  CHECK_EQ(h_b1(b, 1000, 2, 1, 0, 1, &r), TC_BW1_CONTINUE, "host 2");
  CHECK_EQ(h_b1(b, 1000, 3, 1, 0, 1, &r), TC_BW1_CONTINUE, "host 3");
  CHECK_EQ(h_b1(b, 1000, 3, 2, 0, 1, &r), TC_BW1_CONTINUE, "host 3");
  CHECK_EQ(h_b1(b, 1000, 4, 1, 0, 1, &r), TC_BW1_CONTINUE, "host 4");
  CHECK_EQ(h_b1(b, 1000, 4, 2, 0, 1, &r), TC_BW1_CONTINUE, "host 4");
  tc_bw1_get_stats(b, &st);
  CHECK_EQ(st.transfers, 8, "full");
  /* a legitimate upload from a new host: refused while nobody is stalled... */
  CHECK_EQ(h_b1(b, 2000, 5, 1, 0, 1, &r), TC_BW1_REJECT, "full, nobody stalled");
  CHECK_EQ(r.code, TC_CODE_UNAVAILABLE, "5.03");
  /* host 2 keeps its upload going; the others stall */
  CHECK_EQ(h_b1(b, 10500, 2, 1, 1, 1, &r), TC_BW1_CONTINUE, "host 2 active");
  /* ...and once uploads stalled, the oldest of the host holding the most makes room (not
   * everyone locked out until idle_timeout_ms, 120 s) */
  CHECK_EQ(h_b1(b, 11500, 5, 1, 0, 1, &r), TC_BW1_CONTINUE, "new host served");
  CHECK_EQ(h_b1(b, 11500, 5, 1, 1, 0, &r), TC_BW1_COMPLETE, "and completes");
  tc_bw1_get_stats(b, &st);
  CHECK_EQ(st.reclaimed, 1, "one reclaimed");
  /* the one reclaimed was host 1's (it held the most): its uploads are 2 now; host 2's lives */
  CHECK_EQ(h_b1(b, 11600, 2, 1, 2, 1, &r), TC_BW1_CONTINUE, "host 2 unaffected");
  {
    uint32_t alive = 0;
    for (i = 0; i < 3; i++) alive += h_b1(b, 11700, 1, 10 + i, 1, 1, &r) == TC_BW1_CONTINUE;
    CHECK_EQ(alive, 2, "host 1 lost one upload");
  }
  free(b);
}

/* ------------------------------------------------------------ finding 6 */

/* Requests from many other ports push a POST's dedup record towards eviction: completed
 * idempotent exchanges go first, so the POST's duplicate is still recognised (not run twice). */
static void h_dedup_post(void) {
  tc_ep_config c;
  hnode *s;
  uint8_t b[2048], a[4];
  uint32_t len, i;
  int delivered;
  h_ep_cfg(&c);
  c.amplification_factor = 0;
  c.dedup_entries = 128;
  s = h_new(&c, NULL);
  h_addr(1, 1, a);
  len = h_mk(b, TC_CON, 2, 4242, "post", NULL);
  CHECK_EQ(h_in(s, 1000, a, b, len), 0, "recv");
  CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "POST delivered");
  CHECK_EQ(h_resp(s, 1000, s->ev.id, 0x44, 2, 0), 0, "answered");
  /* 3 x dedup_entries GETs from other endpoints (before: the POST's record went after 128) */
  for (i = 0; i < 3u * c.dedup_entries; i++) {
    uint8_t o[4], g[64];
    uint32_t gl;
    h_addr(2 + (i & 0xFF), 1 + (i >> 8), o);
    h_reset(s);
    gl = h_mk(g, TC_NON, 1, i, "get", NULL);
    (void)h_in(s, 1001, o, g, gl);
    if (s->ev.kind == TC_EV_REQUEST) (void)h_resp(s, 1001, s->ev.id, 0x45, 2, 0);
  }
  CHECK(h_stats(s).dedup_evictions >= 2u * c.dedup_entries, "evictions happened (%llu)",
        (unsigned long long)h_stats(s).dedup_evictions);
  /* the POST retransmitted (same MID): a duplicate, answered from the cache, not run again */
  h_reset(s);
  CHECK_EQ(h_in(s, 1002, a, b, len), 0, "recv");
  delivered = s->ev.kind == TC_EV_REQUEST;
  CHECK(!delivered, "the POST is not delivered twice");
  CHECK_EQ(s->tx.count, 1, "its response replayed");
  /* a GET's record, in contrast, went: idempotent exchanges are evicted first */
  {
    uint8_t o[4], g[64];
    uint32_t gl;
    h_addr(2, 1, o);
    gl = h_mk(g, TC_NON, 1, 0, "get", NULL);
    h_reset(s);
    CHECK_EQ(h_in(s, 1003, o, g, gl), 0, "recv");
    CHECK_EQ(s->ev.kind, TC_EV_REQUEST, "the oldest GET was forgotten (delivered again)");
  }
  h_free(s);
}

/* ------------------------------------------------------------ finding 5 */

/* GET /big: a large response with Max-Age; within it, block 0 comes from the cache without the
 * application (before: every block-0 request ran the handler and stored the body again). */
static int h_get_big(hnode *s, uint64_t now, uint32_t host, uint32_t mid) {
  uint8_t b[2048], a[4];
  uint32_t len;
  h_addr(host, 1, a);
  h_reset(s);
  len = h_mk(b, TC_CON, 1, mid, "big", NULL);
  if (h_in(s, now, a, b, len) != 0) return -1;
  return s->ev.kind == TC_EV_REQUEST;
}

static int h_resp_maxage(hnode *s, uint64_t now, uint32_t maxage) {
  static uint8_t src[4200];
  tc_msg m;
  tc_opt o[1];
  int n = tc_uint_encode(maxage, src);
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  o[0].number = 14;
  o[0].offset = 0;
  o[0].length = (uint32_t)n;
  m.option_count = maxage ? 1u : 0u;
  memset(src + 4, 'B', 4000);
  m.payload_offset = 4;
  m.payload_length = 4000;
  return t_srv_respond(s->srv, s->ep, now, s->ev.id, &m, o, src, 0, &s->tx);
}

static void h_block0_reuse(void) {
  tc_ep_config c;
  tc_srv_config sc = h_srv_cfg();
  tc_srv_stats st;
  hnode *s;
  uint8_t v[64];
  int l;
  h_ep_cfg(&c);
  c.amplification_factor = 0;
  s = h_new(&c, &sc);
  CHECK_EQ(h_get_big(s, 1000, 1, 1), 1, "first: the handler runs");
  CHECK_EQ(h_resp_maxage(s, 1000, 60), 0, "answered");
  CHECK(h_opt(s, 0, 23, v) >= 0, "block-wise");
  CHECK_EQ(h_get_big(s, 11000, 2, 2), 0, "within Max-Age: not delivered");
  CHECK_EQ(s->tx.count, 1, "answered from the cache");
  CHECK_EQ(h_code(s, 0), 0x45, "2.05");
  CHECK(h_opt(s, 0, 23, v) >= 0, "block 0 with Block2");
  l = h_opt(s, 0, 14, v);
  CHECK(l == 1 && v[0] == 50, "Max-Age: what is left (%d, %u)", l, l > 0 ? v[0] : 0u);
  tc_srv_get_stats(s->srv, &st);
  CHECK_EQ(st.blocks_reused, 1, "counted");
  CHECK_EQ(h_get_big(s, 62000, 3, 3), 1, "after Max-Age: the handler runs again");
  CHECK_EQ(h_resp_maxage(s, 62000, 0), 0, "answered, without Max-Age");
  CHECK_EQ(h_get_big(s, 62100, 4, 4), 1, "no Max-Age: every request runs the handler");
  h_free(s);
}

void test_harden(void);
void test_harden(void) {
  h_pass0 = tc_test_passed;
  h_fail0 = tc_test_failed;
  h_no_lost_response();
  h_unimplemented_critical();
  h_echo();
  h_echo_observe();
  h_echo_bound();
  h_echo_unsafe_once();
  h_amplification_sweep();
  h_observe_per_host();
  h_upload_fair();
  h_dedup_post();
  h_block0_reuse();
  printf("harden-tests: %lu passed, %lu failed\n", tc_test_passed - h_pass0,
         tc_test_failed - h_fail0);
}

/* test_srv.c — the server pipeline (srv.c) driven through a real tc_ep with injected time:
 * Block1 uploads answered by the pipeline and delivered as one request, Block2 responses cached
 * and served block by block, Observe registration through tc_srv_respond, fan-out, removal,
 * large notifications, pending-record reuse and the bounds.
 * Prints "srv-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "calls.h"

#define OPTCAP 64
#define OPT_ACCEPT 17u
#define TXBYTES (1u << 20)
#define TXITEMS 256u

static const uint8_t SEED16[16] = {7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5, 9, 0, 4, 5, 2};

typedef struct rig {
  tc_ep *ep;
  tc_srv *srv;
  tc_srv_config sc;
  uint8_t *buf;
  tc_tx items[TXITEMS];
  tc_txq tx;
  tc_msg msg;
  tc_opt opts[OPTCAP];
  tc_ep_event ev;
  tc_srv_req req;
  uint64_t now;
  uint32_t mid;
} rig;

/* The test's own defaults: small stores, so bounds are reachable. */
static void srv_cfg(tc_srv_config *c) {
  tc_srv_config_default(c);
  c->max_in_progress = 32;
  c->max_message_size = 1280;
  c->bw1.max_transfers = 8;
  c->bw1.max_per_peer = 4;
  c->bw1.max_body = 64u << 10;
  c->bw1.pool_bytes = 256u << 10;
  c->bw2.max_reps = 16;
  c->bw2.pool_bytes = 256u << 10;
  c->obs.max_observers = 100;
  c->obs.max_per_resource = 100;
  c->obs.max_resources = 8;
  c->obs.con_every = 0;
  c->obs.confirm_first = 0; /* the CON-first policy has its own tests (test_harden.c) */
  c->max_resource_keys = 8;
}

static rig *rig_new(const tc_srv_config *sc) {
  rig *r = calloc(1, sizeof *r);
  tc_ep_config ec;
  uint8_t seed[32];
  size_t es, ss;
  int i;
  if (r == NULL) return NULL;
  tc_ep_config_default(&ec);
  ec.max_in_progress = sc->max_in_progress;
  ec.max_in_progress_per_peer = sc->max_in_progress;
  ec.max_message_size = sc->max_message_size;
  ec.dedup_entries = 4096;
  ec.amplification_factor = 0; /* the defence has its own tests (test_harden.c) */
  es = tc_ep_size(&ec);
  ss = tc_srv_size(sc);
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(i * 29 + 3);
  r->ep = malloc(es);
  r->srv = malloc(ss);
  r->buf = malloc(TXBYTES);
  if (es == 0 || ss == 0 || r->ep == NULL || r->srv == NULL || r->buf == NULL ||
      tc_ep_init(r->ep, es, &ec, seed) != 0 || tc_srv_init(r->srv, ss, sc, SEED16) != 0) {
    free(r->ep);
    free(r->srv);
    free(r->buf);
    free(r);
    return NULL;
  }
  r->sc = *sc;
  r->tx.buf = r->buf;
  r->tx.cap = TXBYTES;
  r->tx.items = r->items;
  r->tx.item_cap = TXITEMS;
  r->now = 1000;
  r->mid = 100;
  return r;
}

static void rig_free(rig *r) {
  if (r == NULL) return;
  free(r->ep);
  free(r->srv);
  free(r->buf);
  free(r);
}

/* rig_new for a test: a rig that cannot be made counts as a failed check. */
static rig *rig_open(const tc_srv_config *sc) {
  rig *r = rig_new(sc);
  if (r == NULL) CHECK(0, "rig");
  return r;
}

static void tx_reset(rig *r) { r->tx.used = r->tx.count = 0; }

static void peer_of(uint32_t i, uint8_t a[4]) {
  a[0] = 10;
  a[1] = (uint8_t)(i >> 16);
  a[2] = (uint8_t)(i >> 8);
  a[3] = (uint8_t)i;
}

/* ------------------------------------------------------------------ requests */

/* A request: code, Uri-Path, a 4-byte token. Options are added with tmsg_opt / tmsg_uint. */
static void req_init(tc_tmsg *t, uint32_t code, const char *path, uint32_t token) {
  uint8_t tk[4] = {(uint8_t)(token >> 24), (uint8_t)(token >> 16), (uint8_t)(token >> 8),
                   (uint8_t)token};
  tmsg_init(t, code);
  memcpy(t->src, tk, 4);
  t->msg.token_offset = 0;
  t->msg.token_length = 4;
  t->w = 4;
  tmsg_opt(t, 11, path, (uint32_t)strlen(path));
}

/* req_init and one unsigned option after Uri-Path (Block1, Block2, Observe, Accept, ...). */
static void req_uint(tc_tmsg *t, uint32_t code, const char *path, uint32_t token, uint32_t opt,
                     uint32_t v) {
  req_init(t, code, path, token);
  tmsg_uint(t, opt, v);
}

/* Encode t as a CON (or NON) with a fresh Message ID and feed it to tc_srv_recv from peer.
 * Returns the rc of tc_srv_recv; the datagram is kept in *dg for repeats. */
typedef struct dgram {
  uint8_t b[2048];
  uint32_t n;
} dgram;

static int feed(rig *r, uint32_t peer, const uint8_t *d, uint32_t n) {
  uint8_t a[4];
  peer_of(peer, a);
  return t_srv_recv(r->srv, r->ep, r->now, a, 4, d, n, &r->tx, &r->msg, r->opts, OPTCAP, &r->ev,
                     &r->req);
}

static int send_req(rig *r, uint32_t peer, tc_tmsg *t, uint32_t type, dgram *keep) {
  dgram local, *d = keep ? keep : &local;
  int n;
  t->msg.type = type;
  t->msg.message_id = r->mid++ & 0xFFFFu;
  n = tc_encode(d->b, sizeof d->b, TC_UDP, &t->msg, t->opts, t->src);
  if (n < 0) return n;
  d->n = (uint32_t)n;
  return feed(r, peer, d->b, d->n);
}

/* ------------------------------------------------------------------ datagrams */

#define HAS_B1 1u
#define HAS_B2 2u
#define HAS_S1 4u
#define HAS_S2 8u
#define HAS_OBS 16u
#define HAS_ETAG 32u
#define HAS_MAXAGE 64u

typedef struct dgi {
  int ok;
  uint32_t type, code, mid, token, has, nobs;
  uint32_t block1, block2, size1, size2, observe, max_age;
  uint8_t etag[8];
  uint32_t etag_len;
  uint8_t addr[4];
  const uint8_t *payload;
  uint32_t plen;
} dgi;

static void dg_get(const rig *r, uint32_t k, dgi *d) {
  const tc_tx *t = &r->tx.items[k];
  const uint8_t *b = r->tx.buf + t->offset;
  tc_msg m;
  tc_opt o[OPTCAP];
  uint32_t i;
  memset(d, 0, sizeof *d);
  if (k >= r->tx.count || t->addr_length != 4 ||
      tc_decode(b, t->length, TC_UDP, &m, o, OPTCAP) < 0 || t->length > r->sc.max_message_size)
    return;
  memcpy(d->addr, r->tx.buf + t->addr_offset, 4);
  d->type = m.type;
  d->code = m.code;
  d->mid = m.message_id;
  for (i = 0; i < m.token_length && i < 4; i++) d->token = d->token << 8 | b[m.token_offset + i];
  for (i = 0; i < m.option_count; i++) {
    uint32_t v = 0, bit = 0, *dst = NULL;
    switch (o[i].number) {
    case TC_OPT_BLOCK1: bit = HAS_B1; dst = &d->block1; break;
    case TC_OPT_BLOCK2: bit = HAS_B2; dst = &d->block2; break;
    case TC_OPT_SIZE1: bit = HAS_S1; dst = &d->size1; break;
    case TC_OPT_SIZE2: bit = HAS_S2; dst = &d->size2; break;
    case TC_OPT_OBSERVE: bit = HAS_OBS; dst = &d->observe; d->nobs++; break;
    case TC_OPT_MAX_AGE: bit = HAS_MAXAGE; dst = &d->max_age; break;
    case TC_OPT_ETAG:
      d->has |= HAS_ETAG;
      d->etag_len = o[i].length <= 8 ? o[i].length : 0;
      memcpy(d->etag, b + o[i].offset, d->etag_len);
      continue;
    default: continue;
    }
    if (tc_uint_decode(b + o[i].offset, o[i].length, &v) < 0) return;
    d->has |= bit;
    *dst = v;
  }
  d->payload = b + m.payload_offset;
  d->plen = m.payload_length;
  d->ok = 1;
}

/* The only datagram queued, decoded (ok = 0 if there is not exactly one). */
static void one(const rig *r, dgi *d) {
  if (r->tx.count != 1) {
    memset(d, 0, sizeof *d);
    return;
  }
  dg_get(r, 0, d);
}

/* Send t as a CON from peer into an empty tx queue and decode what it answered into *d (the
 * only datagram queued; d may be NULL). Returns the rc of tc_srv_recv. */
static int exchange(rig *r, uint32_t peer, tc_tmsg *t, dgi *d) {
  int rc;
  tx_reset(r);
  rc = send_req(r, peer, t, TC_CON, NULL);
  if (d != NULL) one(r, d);
  return rc;
}

/* ------------------------------------------------------------------ responses */

static uint8_t g_src[1 << 17];

/* Answer exchange id with code and len bytes of body (optionally a Content-Format). */
static int respond(rig *r, uint32_t id, uint32_t code, const uint8_t *body, uint32_t len,
                   uint32_t resource, int with_cf) {
  tc_msg m;
  tc_opt o[2];
  memset(&m, 0, sizeof m);
  m.code = code;
  if (with_cf) {
    g_src[0] = 42;
    o[0].number = TC_OPT_CONTENT_FORMAT;
    o[0].offset = 0;
    o[0].length = 1;
    m.option_count = 1;
  }
  if (len) memcpy(g_src + 1, body, len);
  m.payload_offset = 1;
  m.payload_length = len;
  return t_srv_respond(r->srv, r->ep, r->now, id, &m, with_cf ? o : NULL, g_src, resource,
                        &r->tx);
}

static void fill(uint8_t *p, uint32_t n, uint64_t seed) {
  uint32_t i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)tc_rand(&seed);
}

/* ------------------------------------------------------------------ Block1 */

/* Upload len bytes of body in blocks of szx (client) to a server preferring srv_szx; check
 * every 2.31, the one delivered request and its body, and the Block1 echo of the response. */
static void upload_one(uint32_t len, uint32_t szx, uint32_t srv_szx) {
  tc_srv_config sc;
  rig *r;
  static uint8_t body[64u << 10], back[64u << 10];
  uint32_t off = 0, cur = szx, num = 0, blocks = 0, ok = 1, id = 0;
  tc_srv_stats st;
  srv_cfg(&sc);
  sc.bw1.preferred_szx = srv_szx;
  r = rig_open(&sc);
  if (r == NULL) return;
  fill(body, len, len * 31u + szx);
  for (;;) {
    uint32_t bs = tc_szx_size(cur), n = len - off < bs ? len - off : bs;
    uint32_t more = off + n < len;
    tc_tmsg t;
    dgi d;
    req_uint(&t, 0x02, "up", 0xA0000000u | num, TC_OPT_CONTENT_FORMAT, 0);
    tmsg_uint(&t, TC_OPT_BLOCK1, tc_block_value(num, more, cur));
    if (num == 0) tmsg_uint(&t, TC_OPT_SIZE1, len);
    tmsg_payload(&t, body + off, n);
    if (exchange(r, 1, &t, &d) != 0) ok = 0;
    blocks++;
    if (!more) {
      CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "last block delivered");
      id = r->ev.id;
      break;
    }
    if (r->ev.kind != TC_EV_NONE || !d.ok || d.type != TC_ACK || d.code != TC_CODE_CONTINUE ||
        !(d.has & HAS_B1) || (d.block1 >> 4) != num || !(d.block1 & 8u) || d.plen != 0) {
      if (ok) fprintf(stderr, "block %u: kind %u ok %d code %u b1 %x\n", num, r->ev.kind, d.ok,
                      d.code, d.block1);
      ok = 0;
      break;
    }
    off += n;
    /* the server's smaller SZX is adopted: NUM recomputed from the offset */
    if ((d.block1 & 7u) < cur) cur = d.block1 & 7u;
    num = off / tc_szx_size(cur);
  }
  CHECK(ok, "every block but the last answered 2.31 with Block1 (len %u szx %u/%u)", len, szx,
        srv_szx);
  CHECK_EQ(r->req.flags, TC_SRVF_BODY, "body flag");
  CHECK_EQ(r->req.body_length, len, "body length");
  CHECK_EQ(tc_srv_read_body(r->srv, r->req.body_id, back, 10), TC_E_BUFFER_TOO_SMALL,
           "small buffer: nothing released");
  CHECK_EQ(tc_srv_read_body(r->srv, r->req.body_id, back, sizeof back), (int)len, "read body");
  CHECK(memcmp(back, body, len) == 0, "body byte for byte");
  CHECK_EQ(tc_srv_read_body(r->srv, r->req.body_id, back, sizeof back), TC_E_STALE, "read once");
  tx_reset(r);
  CHECK_EQ(respond(r, id, 0x44, NULL, 0, 0, 0), 0, "respond 2.04");
  {
    dgi d;
    one(r, &d);
    CHECK(d.ok && d.code == 0x44 && (d.has & HAS_B1) && (d.block1 >> 4) == num &&
              !(d.block1 & 8u) && (d.block1 & 7u) == (cur < srv_szx ? cur : srv_szx),
          "response carries Block1 NUM %u M 0 (got %x)", num, d.block1);
  }
  tc_srv_get_stats(r->srv, &st);
  CHECK(st.uploads == 0 && st.uploads_done == 1 && st.blocks_in == blocks - 1, "stats");
  rig_free(r);
}

static void t_block1_uploads(void) {
  upload_one(5000, 6, 6);
  upload_one(5000, 2, 6);
  upload_one(4096, 4, 4);
  upload_one(3000, 6, 3); /* server asks for 128-byte blocks after the first 1024 */
  upload_one(17, 0, 6);   /* one block of 16, then a last block of 1 */
}

static uint8_t g_put[4096];

/* A PUT of path carrying Block1 (num, more, SZX 4: 256-byte blocks) and len bytes of g_put. */
static void put_block1(tc_tmsg *t, const char *path, uint32_t token, uint32_t num, uint32_t more,
                       uint32_t len) {
  req_uint(t, 0x03, path, token, TC_OPT_BLOCK1, tc_block_value(num, more, 4));
  tmsg_payload(t, g_put, len);
}

static void t_block1_errors(void) {
  tc_srv_config sc;
  rig *r;
  tc_tmsg t;
  dgi d;
  dgram dup;
  tc_srv_stats st;
  srv_cfg(&sc);
  sc.bw1.max_transfers = 3;
  sc.bw1.max_per_peer = 2;
  sc.bw1.max_body = 2048;
  r = rig_open(&sc);
  if (r == NULL) return;
  fill(g_put, sizeof g_put, 5);
  /* block 0 of "a", then a duplicate datagram (same MID): answered once, replayed by the ep */
  put_block1(&t, "a", 1, 0, 1, 256);
  tx_reset(r);
  CHECK_EQ(send_req(r, 1, &t, TC_CON, &dup), 0, "block 0");
  one(r, &d);
  CHECK(d.ok && d.code == TC_CODE_CONTINUE, "2.31");
  tx_reset(r);
  CHECK_EQ(feed(r, 1, dup.b, dup.n), 0, "duplicate datagram");
  {
    dgi d2;
    one(r, &d2);
    CHECK(d2.ok && d2.code == TC_CODE_CONTINUE && d2.mid == d.mid && r->ev.kind == TC_EV_NONE,
          "replayed 2.31, nothing delivered");
  }
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.blocks_in, 1, "the pipeline answered once");
  /* the same block again with a new MID (the client retransmits after a lost 2.31) */
  CHECK_EQ(exchange(r, 1, &t, &d), 0, "repeated block");
  CHECK(d.ok && d.code == TC_CODE_CONTINUE && (d.block1 >> 4) == 0, "answered as before");
  /* out of order: block 2 before block 1 */
  put_block1(&t, "a", 2, 2, 1, 256);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_INCOMPLETE && r->ev.kind == TC_EV_NONE, "4.08");
  /* unknown upload with NUM > 0 */
  put_block1(&t, "never", 3, 1, 1, 256);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_INCOMPLETE, "4.08 for an unknown upload");
  /* Size1 over max_body: 4.13 with Size1 = max_body */
  put_block1(&t, "big", 4, 0, 1, 256);
  tmsg_uint(&t, TC_OPT_SIZE1, 4096);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_TOO_LARGE && (d.has & HAS_S1) && d.size1 == 2048,
        "4.13 with Size1");
  /* a body growing over max_body without Size1 */
  {
    uint32_t k, code = 0;
    for (k = 0; k < 9 && code != TC_CODE_TOO_LARGE; k++) {
      put_block1(&t, "grow", 5, k, 1, 256);
      exchange(r, 2, &t, &d);
      code = d.code;
    }
    CHECK(code == TC_CODE_TOO_LARGE && k == 9 && (d.has & HAS_S1), "4.13 at the 9th block");
  }
  /* a request key longer than the stores can keep: 4.13 without Size1 */
  {
    static char seg[151];
    memset(seg, 'p', sizeof seg - 1);
    req_init(&t, 0x03, seg, 6);
    tmsg_opt(&t, 11, seg, 150); /* two Uri-Path segments: a key of 311 bytes */
    tmsg_uint(&t, TC_OPT_BLOCK1, tc_block_value(0, 1, 4));
    tmsg_payload(&t, g_put, 256);
    exchange(r, 1, &t, &d);
    CHECK(d.ok && d.code == TC_CODE_TOO_LARGE && !(d.has & HAS_S1), "4.13 without Size1");
  }
  /* 5.03 with Max-Age when the per-peer bound is reached ("a" and another of peer 1) */
  put_block1(&t, "b", 7, 0, 1, 256);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_CONTINUE, "second upload of peer 1");
  put_block1(&t, "c", 8, 0, 1, 256);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_UNAVAILABLE && (d.has & HAS_MAXAGE) && d.max_age == 2,
        "5.03 per peer");
  /* and when the store is full (3 uploads: a, b, and one of peer 3) */
  exchange(r, 3, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_CONTINUE, "third upload");
  exchange(r, 4, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_UNAVAILABLE, "5.03 store full");
  /* a bad block (payload not a block): 4.00 */
  put_block1(&t, "a", 9, 1, 1, 100);
  exchange(r, 1, &t, &d);
  CHECK(d.ok && d.code == TC_CODE_BAD_REQUEST, "4.00 for a short non-final block");
  /* NUM 0 without M: the request's payload is the body (delivered, no store) */
  req_uint(&t, 0x03, "whole", 10, TC_OPT_BLOCK1, tc_block_value(0, 0, 6));
  tmsg_payload(&t, g_put, 300);
  exchange(r, 5, &t, NULL);
  CHECK(r->ev.kind == TC_EV_REQUEST && r->req.flags == 0 && r->msg.payload_length == 300,
        "whole body in one request");
  CHECK_EQ(respond(r, r->ev.id, 0x44, NULL, 0, 0, 1), 0, "respond");
  one(r, &d);
  CHECK(d.ok && (d.has & HAS_B1) && d.block1 == tc_block_value(0, 0, 6), "Block1 echo NUM 0");
  /* the idle timeout drops open uploads */
  CHECK(tc_srv_next_deadline(r->srv) == 1000u + sc.bw1.idle_timeout_ms, "deadline");
  CHECK_EQ(tc_srv_timer(r->srv, 1000u + sc.bw1.idle_timeout_ms - 1u), 0, "not yet");
  CHECK_EQ(tc_srv_timer(r->srv, 1000u + sc.bw1.idle_timeout_ms), 3, "three uploads expired");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 0, "none left");
  CHECK_EQ(tc_srv_next_deadline(r->srv), UINT64_MAX, "nothing due");
  rig_free(r);
}

/* Upload 266 bytes to "u" from peer 1 in two Block1 blocks (256 and 10 bytes); the last block
 * delivers the request. */
static void upload_two(rig *r, uint32_t token) {
  static const uint8_t body[256];
  tc_tmsg t;
  uint32_t k;
  for (k = 0; k < 2; k++) {
    req_uint(&t, 0x02, "u", token, TC_OPT_BLOCK1, tc_block_value(k, k == 0, 4));
    tmsg_payload(&t, body, k == 0 ? 256 : 10);
    exchange(r, 1, &t, NULL);
  }
}

/* An upload whose body nobody reads is released when its exchange ends. */
static void t_body_release(void) {
  tc_srv_config sc;
  rig *r;
  tc_tmsg t;
  uint32_t id1, id2;
  tc_srv_stats st;
  srv_cfg(&sc);
  sc.max_in_progress = 2;
  r = rig_open(&sc);
  if (r == NULL) return;
  upload_two(r, 1);
  CHECK(r->ev.kind == TC_EV_REQUEST && (r->req.flags & TC_SRVF_BODY), "upload 1 delivered");
  id1 = r->ev.id;
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 1, "body stored");
  CHECK_EQ(t_srv_drop(r->srv, r->ep, id1), 0, "drop");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 0, "drop released the body");
  CHECK_EQ(t_srv_drop(r->srv, r->ep, id1), TC_E_STALE, "dropped once");
  /* respond without reading: released too */
  upload_two(r, 2);
  id2 = r->ev.id;
  CHECK_EQ(respond(r, id2, 0x44, NULL, 0, 0, 0), 0, "respond");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 0, "respond released the body");
  CHECK_EQ(respond(r, id2, 0x44, NULL, 0, 0, 0), TC_E_STALE, "answered once");
  /* the app ends an exchange behind the pipeline's back (tc_ep_drop): the slot's next
   * exchange releases the body it left */
  upload_two(r, 3);
  id1 = r->ev.id;
  CHECK_EQ(tc_ep_drop(r->ep, id1), 0, "ep drop");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 1, "still stored");
  req_init(&t, 0x01, "x", 4);
  exchange(r, 1, &t, NULL);
  CHECK(r->ev.kind == TC_EV_REQUEST && (r->ev.id & 0xFFFFu) == (id1 & 0xFFFFu) && r->ev.id != id1,
        "slot reused");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.uploads, 0, "reuse released the old body");
  CHECK_EQ(respond(r, id1, 0x45, NULL, 0, 0, 0), TC_E_STALE, "old id stale");
  CHECK_EQ(respond(r, r->ev.id, 0x45, (const uint8_t *)"ok", 2, 0, 0), 0, "new id answered");
  rig_free(r);
}

/* ------------------------------------------------------------------ Block2 */

static uint8_t g_big[1 << 16], g_back[1 << 16];

/* GET "big" with Block2 NUM 0 at client szx (early negotiation, or no Block2 when szx > 6);
 * the application answers len bytes; later blocks come from the cache. */
static void download_one(rig *r, uint32_t peer, uint32_t szx, uint32_t len, int size2) {
  tc_tmsg t;
  dgi d;
  uint8_t etag[8];
  uint32_t etag_len, num, got = 0, bs, ok = 1;
  tc_srv_stats st0, st1;
  fill(g_big, len, len + szx);
  memset(g_back, 0, len);
  tc_srv_get_stats(r->srv, &st0);
  req_uint(&t, 0x01, "big", 0xB0000000u | szx, OPT_ACCEPT, 0);
  if (szx <= 6) tmsg_uint(&t, TC_OPT_BLOCK2, tc_block_value(0, 0, szx));
  exchange(r, peer, &t, NULL);
  CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "block 0 request delivered");
  CHECK_EQ(r->req.flags, szx <= 6 ? TC_SRVF_BLOCK2 : 0u, "Block2 flag");
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, len, 0, 1), 0, "respond large");
  one(r, &d);
  CHECK(d.ok && d.code == 0x45 && (d.has & HAS_B2) && (d.has & HAS_ETAG) && (d.has & HAS_S2) &&
            d.size2 == len && (d.block2 >> 4) == 0,
        "block 0 with Block2, ETag, Size2 (szx %u)", szx);
  bs = tc_szx_size(d.block2 & 7u);
  CHECK_EQ(d.block2 & 7u, szx < r->sc.bw2.preferred_szx ? szx : r->sc.bw2.preferred_szx,
           "block size: the smaller SZX");
  CHECK(d.plen == (len < bs ? len : bs), "block 0 payload");
  memcpy(g_back, d.payload, d.plen);
  got = d.plen;
  memcpy(etag, d.etag, d.etag_len);
  etag_len = d.etag_len;
  for (num = 1; d.block2 & 8u; num++) {
    req_uint(&t, 0x01, "big", 0xC0000000u | num, OPT_ACCEPT, 0);
    tmsg_uint(&t, TC_OPT_BLOCK2, tc_block_value(num, 0, d.block2 & 7u));
    if (size2) tmsg_uint(&t, TC_OPT_SIZE2, 0);
    exchange(r, peer, &t, &d);
    if (r->ev.kind != TC_EV_NONE) ok = 0;
    if (!d.ok || d.code != 0x45 || (d.block2 >> 4) != num || d.etag_len != etag_len ||
        memcmp(d.etag, etag, etag_len) != 0 || (size2 ? d.size2 != len : (d.has & HAS_S2)) ||
        got + d.plen > len || ((d.block2 & 8u) && d.plen != bs)) {
      if (ok) fprintf(stderr, "szx %u num %u: ok %d code %x b2 %x plen %u\n", szx, num, d.ok,
                      d.code, d.block2, d.plen);
      ok = 0;
      break;
    }
    memcpy(g_back + num * bs, d.payload, d.plen);
    got += d.plen;
  }
  CHECK(ok, "blocks 1.. served from the cache, same ETag (szx %u)", szx);
  CHECK_EQ(got, len, "whole body");
  CHECK(memcmp(g_back, g_big, len) == 0, "reassembled byte for byte (szx %u)", szx);
  tc_srv_get_stats(r->srv, &st1);
  CHECK_EQ(st1.blocks_out - st0.blocks_out, num, "blocks counted");
}

static void t_block2_downloads(void) {
  tc_srv_config sc;
  rig *r;
  uint32_t szx;
  srv_cfg(&sc);
  r = rig_open(&sc);
  if (r == NULL) return;
  for (szx = 0; szx <= 6; szx++) download_one(r, 1, szx, 3000 + szx * 700, szx & 1);
  download_one(r, 2, 7 + 1, 5000, 0); /* no Block2 in the request: preferred size */
  download_one(r, 3, 3, 100, 0);      /* a small body asked block-wise: Block2 M 0 */
  rig_free(r);
  /* server preferring 256 bytes: a client asking 1024 gets 256 */
  srv_cfg(&sc);
  sc.bw2.preferred_szx = 4;
  r = rig_open(&sc);
  if (r == NULL) return;
  download_one(r, 1, 6, 2000, 1);
  download_one(r, 1, 2, 2000, 0);
  rig_free(r);
}

/* A client driven by tc_bwc (the core's client-side transfer) downloads from the pipeline. */
static void t_block2_bwc(void) {
  tc_srv_config sc;
  tc_bwc_config bc;
  tc_bwc *c;
  rig *r;
  tc_bwc_result res;
  static uint8_t body[40000];
  uint32_t rounds = 0, len = 33333;
  int st;
  srv_cfg(&sc);
  r = rig_new(&sc);
  tc_bwc_config_default(&bc);
  bc.preferred_szx = 5;
  c = malloc(tc_bwc_size(&bc));
  if (r == NULL || c == NULL || tc_bwc_init(c, tc_bwc_size(&bc), &bc) != 0) {
    CHECK(0, "rig");
    rig_free(r);
    free(c);
    return;
  }
  fill(g_big, len, 77);
  st = tc_bwc_get_begin(c, &res);
  while (st == TC_BWC_NEXT && rounds++ < 2000) {
    tc_tmsg t;
    tc_msg m;
    tc_opt o[OPTCAP];
    const uint8_t *b;
    req_uint(&t, 0x01, "dl", rounds, TC_OPT_BLOCK2, res.block);
    exchange(r, 1, &t, NULL);
    if (r->ev.kind == TC_EV_REQUEST) respond(r, r->ev.id, 0x45, g_big, len, 0, 0);
    if (r->tx.count != 1) break;
    b = r->tx.buf + r->tx.items[0].offset;
    if (tc_decode(b, r->tx.items[0].length, TC_UDP, &m, o, OPTCAP) < 0) break;
    st = tc_bwc_get_response(c, &m, o, b, body, sizeof body, &res);
  }
  CHECK_EQ(st, TC_BWC_DONE, "tc_bwc download done");
  CHECK_EQ(res.length, len, "length");
  CHECK(memcmp(body, g_big, len) == 0, "tc_bwc body byte for byte");
  CHECK_EQ(rounds, (len + 511) / 512, "one request per 512-byte block");
  free(c);
  rig_free(r);
}

static void t_block2_edges(void) {
  tc_srv_config sc;
  rig *r;
  tc_tmsg t;
  dgi d;
  tc_srv_stats st;
  srv_cfg(&sc);
  r = rig_open(&sc);
  if (r == NULL) return;
  fill(g_big, 4000, 9);
  /* NUM > 0 with nothing cached: delivered; the response is cached and that block served */
  req_uint(&t, 0x01, "late", 1, TC_OPT_BLOCK2, tc_block_value(2, 0, 5));
  exchange(r, 1, &t, NULL);
  CHECK(r->ev.kind == TC_EV_REQUEST && r->req.flags == TC_SRVF_BLOCK2, "delivered");
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, 4000, 0, 0), 0, "respond");
  one(r, &d);
  CHECK(d.ok && d.block2 == tc_block_value(2, 1, 5) && d.plen == 512 &&
            memcmp(d.payload, g_big + 1024, 512) == 0 && !(d.has & HAS_S2),
        "block 2 served, no Size2 past block 0");
  /* past the end: 4.02 */
  req_uint(&t, 0x01, "late", 2, TC_OPT_BLOCK2, tc_block_value(8, 0, 5));
  exchange(r, 1, &t, &d);
  CHECK(r->ev.kind == TC_EV_NONE && d.ok && d.code == TC_CODE_BAD_OPTION, "4.02 past the end");
  /* a GET representation is shared: another peer's NUM 1 comes from the cache */
  req_uint(&t, 0x01, "late", 3, TC_OPT_BLOCK2, tc_block_value(1, 0, 6));
  exchange(r, 2, &t, &d);
  CHECK(r->ev.kind == TC_EV_NONE && d.ok && d.block2 == tc_block_value(1, 1, 6) &&
            memcmp(d.payload, g_big + 1024, 1024) == 0,
        "shared across peers");
  /* another Uri-Query is another key */
  req_init(&t, 0x01, "late", 4);
  tmsg_opt(&t, 15, "q=1", 3);
  tmsg_uint(&t, TC_OPT_BLOCK2, tc_block_value(1, 0, 6));
  exchange(r, 2, &t, NULL);
  CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "other query: not cached");
  CHECK_EQ(t_srv_drop(r->srv, r->ep, r->ev.id), 0, "drop");
  /* a POST response is scoped to the peer */
  req_init(&t, 0x02, "post", 5);
  exchange(r, 1, &t, NULL);
  CHECK_EQ(r->req.flags, 0, "plain POST");
  CHECK_EQ(respond(r, r->ev.id, 0x44, g_big, 3000, 0, 0), 0, "large POST response");
  one(r, &d);
  CHECK(d.ok && d.block2 == tc_block_value(0, 1, 6) && d.size2 == 3000, "block 0 of the POST");
  req_uint(&t, 0x02, "post", 6, TC_OPT_BLOCK2, tc_block_value(1, 0, 6));
  exchange(r, 2, &t, NULL);
  CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "other peer: not from the cache");
  t_srv_drop(r->srv, r->ep, r->ev.id);
  exchange(r, 1, &t, &d);
  CHECK(r->ev.kind == TC_EV_NONE && d.ok && d.code == 0x44 && d.block2 == tc_block_value(1, 1, 6),
        "same peer: from the cache");
  /* FETCH: the payload is part of the key */
  req_init(&t, 0x05, "f", 7);
  tmsg_payload(&t, "query-a", 7);
  exchange(r, 1, &t, NULL);
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, 2000, 0, 0), 0, "FETCH response");
  req_uint(&t, 0x05, "f", 8, TC_OPT_BLOCK2, tc_block_value(1, 0, 6));
  tmsg_payload(&t, "query-b", 7);
  exchange(r, 1, &t, NULL);
  CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "FETCH with another body: another key");
  t_srv_drop(r->srv, r->ep, r->ev.id);
  req_uint(&t, 0x05, "f", 9, TC_OPT_BLOCK2, tc_block_value(1, 0, 6));
  tmsg_payload(&t, "query-a", 7);
  exchange(r, 1, &t, &d);
  CHECK(r->ev.kind == TC_EV_NONE && d.ok && d.block2 == tc_block_value(1, 0, 6) && d.plen == 976,
        "FETCH with the same body: cached, last block");
  /* Block1 upload whose response is large: block 0 carries Block1 and Block2 (RFC 7959 §2.7) */
  {
    uint32_t k;
    for (k = 0; k < 2; k++) {
      req_uint(&t, 0x02, "both", 10, TC_OPT_BLOCK1, tc_block_value(k, k == 0, 6));
      if (k == 1) tmsg_uint(&t, TC_OPT_BLOCK2, tc_block_value(0, 0, 4));
      tmsg_payload(&t, g_big, k == 0 ? 1024 : 5);
      exchange(r, 1, &t, NULL);
    }
    CHECK(r->ev.kind == TC_EV_REQUEST && r->req.flags == (TC_SRVF_BODY | TC_SRVF_BLOCK2),
          "upload done, Block2 asked");
    CHECK_EQ(respond(r, r->ev.id, 0x44, g_big, 1000, 0, 0), 0, "respond");
    one(r, &d);
    CHECK(d.ok && d.block1 == tc_block_value(1, 0, 6) && d.block2 == tc_block_value(0, 1, 4) &&
              d.plen == 256,
          "Block1 echo and Block2 block 0");
    req_uint(&t, 0x02, "both", 11, TC_OPT_BLOCK2, tc_block_value(3, 0, 4));
    exchange(r, 1, &t, &d);
    CHECK(r->ev.kind == TC_EV_NONE && d.ok && !(d.has & HAS_B1) &&
              d.block2 == tc_block_value(3, 0, 4) && d.plen == 1000 - 768,
          "last block from the cache without Block1");
  }
  /* a response too large for the Block2 store: the exchange stays open */
  req_init(&t, 0x01, "huge", 12);
  exchange(r, 1, &t, NULL);
  {
    static uint8_t huge[300u << 10];
    tc_msg m;
    memset(&m, 0, sizeof m);
    m.code = 0x45;
    m.payload_length = sizeof huge;
    CHECK_EQ(t_srv_respond(r->srv, r->ep, r->now, r->ev.id, &m, NULL, huge, 0, &r->tx),
             TC_E_MESSAGE_TOO_LARGE, "too large");
  }
  CHECK_EQ(r->tx.count, 0, "nothing sent");
  CHECK_EQ(respond(r, r->ev.id, 0xA0, NULL, 0, 0, 0), 0, "then 5.00");
  /* representations expire */
  tc_srv_get_stats(r->srv, &st);
  CHECK(st.reps >= 4, "representations cached (%u)", st.reps);
  CHECK(tc_srv_next_deadline(r->srv) <= r->now + sc.bw2.default_lifetime_ms, "deadline");
  CHECK((uint32_t)tc_srv_timer(r->srv, r->now + sc.bw2.default_lifetime_ms) == st.reps,
        "all expired");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.reps, 0, "none left");
  /* bad arguments */
  CHECK_EQ(respond(r, 0x1234, 0x01, NULL, 0, 0, 0), TC_E_INVALID, "request code");
  CHECK_EQ(t_srv_respond(NULL, r->ep, 0, 1, &r->msg, NULL, NULL, 0, &r->tx), TC_E_INVALID,
           "NULL srv");
  rig_free(r);
}

/* ------------------------------------------------------------------ Observe */

/* A request with code to "obs" with Observe obs from peer i (token i). */
static void observe_req(rig *r, uint32_t code, uint32_t i, uint32_t obs) {
  tc_tmsg t;
  req_uint(&t, code, "obs", i, TC_OPT_OBSERVE, obs);
  exchange(r, i, &t, NULL);
}

/* A 2.05 notification of len bytes from src; the payload is copied to g_src. */
static void notify_msg(tc_msg *m, const void *src, uint32_t len) {
  memset(m, 0, sizeof *m);
  m->code = 0x45;
  m->payload_length = len;
  memcpy(g_src, src, len);
}

/* tc_srv_notify of resource with m (payload in g_src) into an empty tx queue. */
static int notify(rig *r, uint32_t resource, uint32_t flags, const tc_msg *m) {
  tx_reset(r);
  return t_srv_notify(r->srv, r->ep, r->now, resource, flags, m, NULL, g_src, &r->tx);
}

/* Register observer i (peer i, token i) of path "obs" through a GET with Observe 0 answered
 * with resource and len bytes. Returns the exchange's datagram decoded into *d. */
static void observe_reg(rig *r, uint32_t i, uint32_t resource, uint32_t len, dgi *d) {
  observe_req(r, 0x01, i, 0);
  CHECK(r->ev.kind == TC_EV_REQUEST && (r->req.flags & TC_SRVF_OBSERVE), "Observe 0 flagged");
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, len, resource, 1), 0, "respond with resource");
  one(r, d);
}

static void t_observe(void) {
  tc_srv_config sc;
  rig *r;
  dgi d;
  tc_tmsg t;
  tc_msg m;
  uint32_t i, k, seq0 = 0, count[64], bad = 0, mid5 = 0, n = 40;
  tc_srv_stats st;
  srv_cfg(&sc);
  r = rig_open(&sc);
  if (r == NULL) return;
  fill(g_big, 5000, 3);
  for (i = 1; i <= n; i++) {
    observe_reg(r, i, 7, 20, &d);
    if (!d.ok || d.nobs != 1 || d.token != i || d.plen != 20 || (d.has & HAS_B2)) bad++;
    if (i == 1) seq0 = d.observe;
  }
  CHECK_EQ(bad, 0, "every registration answered with one Observe option");
  tc_srv_get_stats(r->srv, &st);
  CHECK_EQ(st.observers, n, "observers");
  CHECK_EQ(tc_obs_count(tc_srv_obs(r->srv), 7), n, "count of resource 7");
  /* fan-out: one call, one NON per observer */
  notify_msg(&m, "state", 5);
  CHECK_EQ(notify(r, 7, 0, &m), (int)n, "notify fans out");
  memset(count, 0, sizeof count);
  for (k = 0; k < r->tx.count; k++) {
    dg_get(r, k, &d);
    if (!d.ok || d.token < 1 || d.token > n || d.addr[3] != d.token || d.type != TC_NON ||
        d.nobs != 1 || d.observe <= seq0 || d.plen != 5 || memcmp(d.payload, "state", 5) != 0) {
      bad++;
      continue;
    }
    count[d.token]++;
    if (d.token == 5) mid5 = d.mid;
  }
  for (i = 1; i <= n; i++)
    if (count[i] != 1) bad++;
  CHECK_EQ(bad, 0, "each observer notified once, with Observe");
  /* Observe 1 deregisters; the request is then a plain GET */
  observe_req(r, 0x01, 3, 1);
  CHECK(r->ev.kind == TC_EV_REQUEST && r->req.flags == 0, "Observe 1 delivered as plain GET");
  CHECK_EQ(tc_obs_count(tc_srv_obs(r->srv), 7), n - 1, "deregistered");
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, 10, 7, 0), 0, "respond");
  one(r, &d);
  CHECK(d.ok && !(d.has & HAS_OBS), "no Observe for a plain GET, even with a resource");
  /* RST to the NON notification of observer 5: consumed, observer removed */
  {
    uint8_t rst[4] = {0x70, 0, (uint8_t)(mid5 >> 8), (uint8_t)mid5};
    tx_reset(r);
    CHECK_EQ(feed(r, 5, rst, 4), 0, "RST");
    CHECK_EQ(r->ev.kind, TC_EV_NONE, "consumed");
    CHECK_EQ(tc_obs_count(tc_srv_obs(r->srv), 7), n - 2, "RST removed the observer");
  }
  /* a CON notification ACKed: consumed */
  CHECK_EQ(notify(r, 7, TC_OBS_CON, &m), (int)n - 2, "CON fan-out");
  {
    uint32_t acked = 0;
    for (k = 0; k < r->tx.count; k++) {
      dg_get(r, k, &d);
      if (d.ok && d.type == TC_CON && d.token != 9) {
        uint8_t ack[4] = {0x60, 0, (uint8_t)(d.mid >> 8), (uint8_t)d.mid};
        rig tmp = *r; /* keep the notifications while acknowledging */
        tc_tx items[4];
        uint8_t b[4096];
        tmp.tx.buf = b;
        tmp.tx.cap = sizeof b;
        tmp.tx.items = items;
        tmp.tx.item_cap = 4;
        tmp.tx.count = tmp.tx.used = 0;
        if (t_srv_recv(r->srv, r->ep, r->now, d.addr, 4, ack, 4, &tmp.tx, &tmp.msg, tmp.opts,
                        OPTCAP, &tmp.ev, &tmp.req) == 0 &&
            tmp.ev.kind == TC_EV_NONE)
          acked++;
      }
    }
    CHECK_EQ(acked, n - 3, "ACKs consumed");
  }
  /* observer 9 never ACKs: the ep gives up, the timer event is the pipeline's */
  {
    tc_ep_event evs[8];
    uint32_t consumed = 0, guard = 0;
    uint64_t t2 = r->now;
    tx_reset(r);
    while (tc_ep_next_deadline(r->ep) != UINT64_MAX && guard++ < 100) {
      int ne, e;
      if (tc_ep_next_deadline(r->ep) > t2) t2 = tc_ep_next_deadline(r->ep);
      ne = tc_ep_timer(r->ep, t2, &r->tx, evs, 8);
      for (e = 0; e < ne; e++) consumed += (uint32_t)tc_srv_on_timer_event(r->srv, t2, &evs[e]);
      tx_reset(r);
    }
    CHECK_EQ(consumed, 1, "timeout consumed");
    CHECK_EQ(tc_obs_count(tc_srv_obs(r->srv), 7), n - 3, "timed-out observer removed");
    r->now = t2;
  }
  tc_srv_get_stats(r->srv, &st);
  CHECK(st.observers == n - 3 && st.observers_removed == 2 && st.notifications == 2 * n - 2,
        "stats: %u observers, %u removed, %u notifications", st.observers, st.observers_removed,
        st.notifications);
  /* a large notification: block 0 with Block2, ETag, Observe; the rest from the cache */
  notify_msg(&m, g_big, 5000);
  CHECK_EQ(notify(r, 7, 0, &m), (int)n - 3, "large notify");
  {
    uint8_t etag[8];
    uint32_t got, num;
    bad = 0;
    for (k = 0; k < r->tx.count; k++) {
      dg_get(r, k, &d);
      if (!d.ok || d.nobs != 1 || d.block2 != tc_block_value(0, 1, 6) || d.size2 != 5000 ||
          d.etag_len != 8 || d.plen != 1024 || memcmp(d.payload, g_big, 1024) != 0)
        bad++;
    }
    CHECK_EQ(bad, 0, "every notification carries block 0");
    dg_get(r, 0, &d);
    memcpy(etag, d.etag, 8);
    got = 1024;
    for (num = 1; got < 5000; num++) {
      req_uint(&t, 0x01, "obs", 1000 + num, TC_OPT_BLOCK2, tc_block_value(num, 0, 6));
      exchange(r, 1, &t, &d);
      if (r->ev.kind != TC_EV_NONE || !d.ok || (d.block2 >> 4) != num || d.nobs != 0 ||
          memcmp(d.etag, etag, 8) != 0 || memcmp(d.payload, g_big + got, d.plen) != 0)
        break;
      got += d.plen;
    }
    CHECK_EQ(got, 5000, "later blocks of the notification from the cache");
  }
  /* a registration answered with a large body: block 0 with Observe */
  observe_reg(r, 50, 8, 3000, &d);
  CHECK(d.ok && d.nobs == 1 && d.block2 == tc_block_value(0, 1, 6) && d.plen == 1024 &&
            d.size2 == 3000,
        "large registration response: Observe and Block2");
  /* an error response to Observe 0 registers nobody and ends a registration */
  observe_req(r, 0x01, 50, 0);
  CHECK_EQ(respond(r, r->ev.id, 0x84, NULL, 0, 8, 0), 0, "4.04");
  one(r, &d);
  CHECK(d.ok && d.code == 0x84 && d.nobs == 0, "no Observe on 4.04");
  CHECK_EQ(tc_obs_count(tc_srv_obs(r->srv), 8), 0, "registration ended");
  /* Observe 0 answered without a resource: not registered */
  observe_req(r, 0x01, 51, 0);
  CHECK_EQ(respond(r, r->ev.id, 0x45, g_big, 5, 0, 0), 0, "respond without resource");
  one(r, &d);
  CHECK(d.ok && d.nobs == 0, "no Observe without a resource");
  /* POST with Observe 0 is no registration */
  observe_req(r, 0x02, 52, 0);
  CHECK_EQ(r->req.flags, 0, "POST: not flagged");
  t_srv_drop(r->srv, r->ep, r->ev.id);
  /* a notification to nobody */
  CHECK_EQ(notify(r, 99, 0, &m), 0, "nobody");
  rig_free(r);
}

/* Bounds: observers full (response without Observe), resource keys full (a large notification
 * cannot be sent block-wise). */
static void t_observe_bounds(void) {
  tc_srv_config sc;
  rig *r;
  dgi d;
  tc_msg m;
  tc_obs_stats os;
  srv_cfg(&sc);
  sc.obs.max_observers = 3;
  sc.obs.max_per_resource = 3;
  sc.max_resource_keys = 1;
  r = rig_open(&sc);
  if (r == NULL) return;
  fill(g_big, 3000, 4);
  observe_reg(r, 1, 1, 10, &d);
  CHECK(d.ok && d.nobs == 1, "1 registered");
  observe_reg(r, 2, 2, 10, &d);
  CHECK(d.ok && d.nobs == 1, "2 registered");
  observe_reg(r, 3, 2, 10, &d);
  CHECK(d.ok && d.nobs == 1, "3 registered");
  observe_reg(r, 4, 2, 10, &d);
  CHECK(d.ok && d.code == 0x45 && d.nobs == 0 && d.plen == 10, "registry full: no Observe");
  tc_obs_get_stats(tc_srv_obs(r->srv), &os);
  CHECK(os.observers == 3 && os.rejected == 1, "rejected counted");
  /* one resource key: resource 1 kept its key, resource 2 has none */
  notify_msg(&m, g_big, 3000);
  CHECK_EQ(notify(r, 1, 0, &m), 1, "large notify with a key");
  CHECK_EQ(notify(r, 2, 0, &m), TC_E_MESSAGE_TOO_LARGE, "large notify without a key");
  m.payload_length = 100;
  CHECK_EQ(notify(r, 2, 0, &m), 2, "small notify without a key");
  /* once resource 1 has no observers, its key entry makes room for resource 2 */
  {
    uint8_t a[4], tk[4] = {0, 0, 0, 1};
    peer_of(1, a);
    CHECK_EQ(tc_obs_deregister(tc_srv_obs(r->srv), a, 4, tk, 4), 0, "1 leaves");
  }
  observe_reg(r, 5, 2, 10, &d);
  CHECK(d.ok && d.nobs == 1, "5 registered for 2");
  m.payload_length = 3000;
  CHECK_EQ(notify(r, 2, 0, &m), 3, "resource 2 now has a key");
  dg_get(r, 0, &d);
  CHECK(d.ok && d.block2 == tc_block_value(0, 1, 6), "block 0");
  rig_free(r);
}

/* ------------------------------------------------------------------ misc */

static void t_misc(void) {
  tc_srv_config sc;
  rig *r;
  tc_tmsg t;
  dgi d;
  size_t sz;
  srv_cfg(&sc);
  r = rig_open(&sc);
  if (r == NULL) return;
  /* the tx queue must hold two datagrams */
  req_init(&t, 0x01, "x", 1);
  r->tx.count = TXITEMS - 1;
  CHECK_EQ(send_req(r, 1, &t, TC_CON, NULL), TC_E_FULL, "one item free");
  CHECK_EQ(r->req.flags, 0, "req written");
  r->tx.count = 0;
  r->tx.used = TXBYTES - 2 * (4 + 1280) + 1;
  CHECK_EQ(send_req(r, 1, &t, TC_CON, NULL), TC_E_FULL, "bytes short by one");
  r->tx.used = TXBYTES - 2 * (4 + 1280);
  CHECK_EQ(send_req(r, 1, &t, TC_CON, NULL), 0, "exactly enough");
  CHECK_EQ(r->ev.kind, TC_EV_REQUEST, "delivered");
  /* a plain small response: as tc_ep_respond would send it */
  tx_reset(r);
  CHECK_EQ(respond(r, r->ev.id, 0x45, (const uint8_t *)"hello", 5, 0, 1), 0, "respond");
  one(r, &d);
  CHECK(d.ok && d.type == TC_ACK && d.code == 0x45 && d.has == 0 && d.plen == 5, "plain");
  /* an id that never was: as tc_ep_respond */
  CHECK_EQ(respond(r, 0x00050003u, 0x45, NULL, 0, 0, 0), TC_E_STALE, "unknown id");
  /* config */
  CHECK_EQ(tc_srv_size(NULL), 0, "NULL config");
  sc.max_in_progress = 0;
  CHECK_EQ(tc_srv_size(&sc), 0, "max_in_progress 0");
  srv_cfg(&sc);
  sc.max_message_size = 95;
  CHECK_EQ(tc_srv_size(&sc), 0, "max_message_size 95");
  srv_cfg(&sc);
  sc.max_resource_keys = 65536;
  CHECK_EQ(tc_srv_size(&sc), 0, "max_resource_keys 65536");
  srv_cfg(&sc);
  sc.bw2.chunk_size = 1000;
  CHECK_EQ(tc_srv_size(&sc), 0, "bad store config");
  srv_cfg(&sc);
  sz = tc_srv_size(&sc);
  CHECK(sz > 0, "size");
  {
    uint64_t *mem = malloc(sz + 8);
    uint8_t seed[16] = {0};
    CHECK_EQ(tc_srv_init((tc_srv *)(void *)mem, sz - 1, &sc, seed), TC_E_INVALID, "short");
    CHECK_EQ(tc_srv_init((tc_srv *)(void *)((uint8_t *)mem + 4), sz, &sc, seed), TC_E_INVALID,
             "misaligned");
    free(mem);
  }
  CHECK(sizeof(tc_srv_config) == TC_SRV_CONFIG_WORDS * 4, "config words");
  CHECK(sizeof(tc_srv_req) == TC_SRV_REQ_WORDS * 4, "req words");
  CHECK(sizeof(tc_srv_stats) == TC_SRV_STATS_WORDS * 4, "stats words");
  {
    tc_srv_config dc;
    tc_srv_config_default(&dc);
    CHECK(dc.max_in_progress == 4096 && dc.max_message_size == 1280 &&
              dc.max_resource_keys == 256 && tc_srv_size(&dc) > 0,
          "defaults");
  }
  rig_free(r);
}

void test_srv(void);
void test_srv(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  t_block1_uploads();
  t_block1_errors();
  t_body_release();
  t_block2_downloads();
  t_block2_bwc();
  t_block2_edges();
  t_observe();
  t_observe_bounds();
  t_misc();
  printf("srv-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

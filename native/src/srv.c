/*
 * srv.c — the server pipeline (turbocoap_srv.h): the Block1 store, the Block2 store and the
 * Observe registry joined above a messaging layer, sans-IO. It talks to the messaging layer
 * only through the seam (tc_messaging: respond / notify / drop, message size, framing), so it
 * names no transport. See turbocoap_srv.h for the contract.
 *
 * Everything lives in one caller-owned block laid out by tc_srv_init():
 *
 *   struct tc_srv     config, offsets, counters
 *   obs               the Observe registry (tc_obs_size)
 *   bw1               the Block1 store (tc_bw1_size)
 *   bw2               the Block2 store (tc_bw2_size)
 *   pend [P]          one record per ep exchange slot (P = max_in_progress), indexed by the low
 *                     16 bits of the exchange id and checked against the full id: peer, token,
 *                     method, the request's Block2 / Size2 / Observe, the Block1 value to echo,
 *                     the upload body id
 *   pkeys [P * K]     the request key of each (K = the larger max_key of the two stores)
 *   rk [R]            resource id -> request key of its latest registration (R =
 *                     max_resource_keys), chained from rk buckets; keys in rkkeys [R * K2]
 *                     (K2 = bw2 max_key)
 *   scratch           one message being built (answers, served blocks, merged options)
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define SRV_MAGIC 0x74635376u /* "tcSv" */

#define CODE_GET 1u
#define CODE_FETCH 5u

/* The most options of an application response (turbocoap_srv.h), and of a served block: the
 * Block2 store's stored options (<= 64) + ETag, Block2, Size2, Block1, plus Observe. */
#define APP_OPTS 62u
#define OPT_CAP 72u
/* Bytes an Observe option adds to an encoded message: header byte + 3-byte value (inserting
 * it never lengthens the delta of the option after it). */
#define OBSERVE_ROOM 4u

/* pend.flags */
#define P_NOKEY 1u   /* the request key did not fit: never served block-wise */
#define P_BLOCK2 2u  /* the request carried Block2 (pend.block2) */
#define P_SIZE2 4u   /* the request carried Size2 */
#define P_ECHO1 8u   /* the response carries Block1 = pend.echo1 */
#define P_OBSERVE 16u/* GET/FETCH with Observe 0 */
#define P_BODY 32u   /* an upload body (pend.body) may be unread */

typedef struct pend {
  uint32_t id;     /* exchange id; 0: free */
  uint32_t block2; /* P_BLOCK2: the request's Block2 value */
  uint32_t echo1;  /* P_ECHO1: the Block1 value of the response */
  uint32_t body;   /* P_BODY: Block1 store upload id */
  uint32_t klen;   /* request key length (unless P_NOKEY) */
  uint8_t flags, code, alen, tlen;
  uint8_t addr[TC_ADDR_MAX];
  uint8_t token[TC_EP_TOKEN_MAX];
} pend;

typedef struct rkent {
  uint32_t resource;
  uint32_t klen;
  uint32_t next; /* bucket chain, or free list */
  uint32_t used;
} rkent;

struct tc_srv {
  uint32_t magic;
  uint32_t kmax;  /* pending key stride */
  tc_srv_config cfg;
  uint32_t rk_mask, rk_free;
  uint32_t scratch_cap;
  uint32_t blocks_in;
  uint32_t reused; /* block-0 requests answered from a fresh cached representation */
  uint64_t off_obs, off_bw1, off_bw2, off_pend, off_pkeys, off_rk, off_rkb, off_rkkeys;
  uint64_t off_scratch, size;
};

typedef struct srv_layout {
  uint64_t off_obs, off_bw1, off_bw2, off_pend, off_pkeys, off_rk, off_rkb, off_rkkeys;
  uint64_t off_scratch, size;
  uint32_t kmax, rk_buckets, scratch_cap;
} srv_layout;

/* ------------------------------------------------------------------ layout */

static int layout_of(const tc_srv_config *c, srv_layout *l) {
  size_t so, s1, s2;
  uint64_t o;
  if (c == NULL || c->max_in_progress < 1u || c->max_in_progress > 65535u ||
      c->max_message_size < 96u || c->max_message_size > 65507u || c->max_resource_keys < 1u ||
      c->max_resource_keys > 65535u)
    return -1;
  so = tc_obs_size(&c->obs);
  s1 = tc_bw1_size(&c->bw1);
  s2 = tc_bw2_size(&c->bw2);
  if (so == 0u || s1 == 0u || s2 == 0u) return -1;
  l->kmax = c->bw1.max_key > c->bw2.max_key ? c->bw1.max_key : c->bw2.max_key;
  l->rk_buckets = pow2_at_least(c->max_resource_keys);
  /* a served block (stored option values, ETag, Block2, Size2, Block1, payload <= the message
   * limit) or a merged response (values + payload <= max_message_size, else too large) */
  l->scratch_cap = c->max_message_size + c->bw2.max_opt_bytes + 64u;
  o = up8(sizeof(struct tc_srv));
  l->off_obs = o;
  o = up8(o + so);
  l->off_bw1 = o;
  o = up8(o + s1);
  l->off_bw2 = o;
  o = up8(o + s2);
  l->off_pend = o;
  o = up8(o + (uint64_t)c->max_in_progress * sizeof(pend));
  l->off_pkeys = o;
  o = up8(o + (uint64_t)c->max_in_progress * l->kmax);
  l->off_rk = o;
  o = up8(o + (uint64_t)c->max_resource_keys * sizeof(rkent));
  l->off_rkb = o;
  o = up8(o + (uint64_t)l->rk_buckets * 4u);
  l->off_rkkeys = o;
  o = up8(o + (uint64_t)c->max_resource_keys * c->bw2.max_key);
  l->off_scratch = o;
  o = up8(o + l->scratch_cap);
  if (o > (uint64_t)SIZE_MAX) return -1;
  l->size = o;
  return 0;
}

void tc_srv_config_default(tc_srv_config *cfg) {
  if (cfg == NULL) return;
  tc_bw1_config_default(&cfg->bw1);
  tc_bw2_config_default(&cfg->bw2);
  tc_obs_config_default(&cfg->obs);
  cfg->max_in_progress = 4096;
  cfg->max_message_size = 1280;
  cfg->max_resource_keys = 256;
}

size_t tc_srv_size(const tc_srv_config *cfg) {
  srv_layout l;
  return layout_of(cfg, &l) < 0 ? 0 : (size_t)l.size;
}

#define AT(s, off) ((uint8_t *)(s) + (off))
#define PEND(s) ((pend *)(void *)AT(s, (s)->off_pend))
#define PKEY(s, i) (AT(s, (s)->off_pkeys) + (uint64_t)(i) * (s)->kmax)
#define RK(s) ((rkent *)(void *)AT(s, (s)->off_rk))
#define RKB(s) ((uint32_t *)(void *)AT(s, (s)->off_rkb))
#define RKKEY(s, i) (AT(s, (s)->off_rkkeys) + (uint64_t)(i) * (s)->cfg.bw2.max_key)
#define SCRATCH(s) AT(s, (s)->off_scratch)
#define OBS(s) ((tc_obs *)(void *)AT(s, (s)->off_obs))
#define BW1(s) ((tc_bw1 *)(void *)AT(s, (s)->off_bw1))
#define BW2(s) ((tc_bw2 *)(void *)AT(s, (s)->off_bw2))
#define COBS(s) ((const tc_obs *)(const void *)((const uint8_t *)(s) + (s)->off_obs))
#define CBW1(s) ((const tc_bw1 *)(const void *)((const uint8_t *)(s) + (s)->off_bw1))
#define CBW2(s) ((const tc_bw2 *)(const void *)((const uint8_t *)(s) + (s)->off_bw2))

static inline int srv_ok(const tc_srv *s) { return s != NULL && s->magic == SRV_MAGIC; }

int tc_srv_init(tc_srv *s, size_t mem_len, const tc_srv_config *cfg, const uint8_t seed[16]) {
  srv_layout l;
  uint8_t sub[16];
  uint32_t i;
  if (s == NULL || seed == NULL || layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)s & 7u) != 0u)
    return TC_E_INVALID;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->kmax = l.kmax;
  s->rk_mask = l.rk_buckets - 1u;
  s->scratch_cap = l.scratch_cap;
  s->off_obs = l.off_obs;
  s->off_bw1 = l.off_bw1;
  s->off_bw2 = l.off_bw2;
  s->off_pend = l.off_pend;
  s->off_pkeys = l.off_pkeys;
  s->off_rk = l.off_rk;
  s->off_rkb = l.off_rkb;
  s->off_rkkeys = l.off_rkkeys;
  s->off_scratch = l.off_scratch;
  s->size = l.size;
  /* each store gets its own hash keys, derived from the seed */
  for (i = 0; i < 16u; i++) sub[i] = (uint8_t)(seed[i] ^ (0x3Bu * i + 0x11u));
  if (tc_obs_init(OBS(s), (size_t)(l.off_bw1 - l.off_obs), &cfg->obs, sub) != 0)
    return TC_E_INVALID;
  for (i = 0; i < 16u; i++) sub[i] = (uint8_t)(seed[i] ^ (0x5Du * i + 0x22u));
  if (tc_bw1_init(BW1(s), (size_t)(l.off_bw2 - l.off_bw1), &cfg->bw1, sub) != 0)
    return TC_E_INVALID;
  for (i = 0; i < 16u; i++) sub[i] = (uint8_t)(seed[i] ^ (0x77u * i + 0x33u));
  if (tc_bw2_init(BW2(s), (size_t)(l.off_pend - l.off_bw2), &cfg->bw2, sub) != 0)
    return TC_E_INVALID;
  memset(PEND(s), 0, (size_t)cfg->max_in_progress * sizeof(pend));
  for (i = 0; i < cfg->max_resource_keys; i++) {
    RK(s)[i].used = 0;
    RK(s)[i].next = i + 1u < cfg->max_resource_keys ? i + 1u : NONE;
  }
  s->rk_free = 0;
  for (i = 0; i < l.rk_buckets; i++) RKB(s)[i] = NONE;
  s->magic = SRV_MAGIC;
  return 0;
}

tc_bw1 *tc_srv_bw1(tc_srv *s) { return srv_ok(s) ? BW1(s) : NULL; }
tc_bw2 *tc_srv_bw2(tc_srv *s) { return srv_ok(s) ? BW2(s) : NULL; }
tc_obs *tc_srv_obs(tc_srv *s) { return srv_ok(s) ? OBS(s) : NULL; }

/* ------------------------------------------------------------ pending records */

/* The pending record of exchange id, or NULL. */
static pend *pend_of(tc_srv *s, uint32_t id) {
  uint32_t i = id & 0xFFFFu;
  pend *p;
  if (id == 0u || i >= s->cfg.max_in_progress) return NULL;
  p = &PEND(s)[i];
  return p->id == id ? p : NULL;
}

/* End a pending record: its unread upload body is released. */
static void pend_end(tc_srv *s, pend *p) {
  if (p->flags & P_BODY) (void)tc_bw1_release(BW1(s), p->body);
  p->id = 0;
  p->flags = 0;
}

/* ------------------------------------------------------- resource -> key table */

static inline uint32_t rk_bucket(const tc_srv *s, uint32_t resource) {
  return (resource * 0x9E3779B1u) >> 16 & s->rk_mask;
}

static uint32_t rk_find(tc_srv *s, uint32_t resource) {
  uint32_t i = RKB(s)[rk_bucket(s, resource)];
  while (i != NONE && RK(s)[i].resource != resource) i = RK(s)[i].next;
  return i;
}

static void rk_unlink(tc_srv *s, uint32_t i) {
  uint32_t *p = &RKB(s)[rk_bucket(s, RK(s)[i].resource)];
  while (*p != i) p = &RK(s)[*p].next;
  *p = RK(s)[i].next;
  RK(s)[i].used = 0;
  RK(s)[i].next = s->rk_free;
  s->rk_free = i;
}

/* Remember key as the request key of resource's latest registration. When the table is full,
 * the entry of a resource nobody observes any more makes room; failing that it is not kept. */
static void rk_remember(tc_srv *s, uint32_t resource, const uint8_t *key, uint32_t klen) {
  uint32_t i = rk_find(s, resource), b;
  if (i == NONE) {
    if (s->rk_free == NONE) {
      for (i = 0; i < s->cfg.max_resource_keys; i++)
        if (tc_obs_count(OBS(s), RK(s)[i].resource) == 0u) break;
      if (i == s->cfg.max_resource_keys) return;
      rk_unlink(s, i);
    }
    i = s->rk_free;
    s->rk_free = RK(s)[i].next;
    b = rk_bucket(s, resource);
    RK(s)[i].resource = resource;
    RK(s)[i].used = 1;
    RK(s)[i].next = RKB(s)[b];
    RKB(s)[b] = i;
  }
  RK(s)[i].klen = klen;
  if (klen) memcpy(RKKEY(s, i), key, klen);
}

/* --------------------------------------------------------------------- helpers */

/* The largest message the pipeline builds through m: the transport's limit, within the
 * pipeline's own (its scratch). */
static inline uint32_t msg_size(const tc_srv *s, const tc_messaging *m) {
  return m->max_message_size < s->cfg.max_message_size ? m->max_message_size
                                                        : s->cfg.max_message_size;
}

/* x - y, at least 1 (a message limit for tc_bw2_serve, where 0 means "no limit"). */
static inline uint32_t limit_sub(uint32_t x, uint32_t y) { return x > y ? x - y : 1u; }

static inline int seam_ok(const tc_messaging *m) { return m != NULL && m->ops != NULL; }

/* BERT (SZX 7, RFC 8323 §6) is allowed over this seam: both CSMs offered Block-Wise-Transfer. */
static inline uint32_t bert_flag(const tc_messaging *m) {
  return (m->flags & (TC_MSGF_RELIABLE | TC_MSGF_BERT)) == (TC_MSGF_RELIABLE | TC_MSGF_BERT)
             ? TC_BW_BERT
             : 0u;
}

/* Append option (number, uint v) at scratch[*w]. */
static void add_uint_opt(uint8_t *buf, uint32_t *w, tc_opt *o, uint32_t *n, uint32_t number,
                         uint32_t v) {
  int l = tc_uint_encode(v, buf + *w);
  o[*n].number = number;
  o[*n].offset = *w;
  o[*n].length = (uint32_t)l;
  (*n)++;
  *w += (uint32_t)l;
}

/* An event the pipeline handled: nothing for the application. */
static void consume(tc_ep_event *ev) {
  ev->kind = TC_EV_NONE;
  ev->id = 0;
  ev->status = 0;
  ev->flags = 0;
}

/* A request the pipeline answers itself: respond (the exchange is dropped if even that fails,
 * so no exchange is left that nobody knows of) and consume the event. */
static void answer(const tc_messaging *m, uint64_t now, const tc_msg *msg, tc_opt *o,
                   const uint8_t *src, tc_ep_event *ev) {
  tc_outmsg out;
  out.msg = msg;
  out.opts = o;
  out.src = src;
  if (tc_messaging_respond(m, now, ev->id, &out) < 0) (void)tc_messaging_drop(m, ev->id);
  consume(ev);
}

static void answer_bw1(tc_srv *s, const tc_messaging *m, uint64_t now, const tc_bw1_result *res,
                       tc_ep_event *ev) {
  tc_msg msg;
  tc_opt o[4];
  s->blocks_in++;
  (void)tc_bw1_response(res, &msg, o, 4, SCRATCH(s), s->scratch_cap); /* cannot fail: >= 64 bytes */
  answer(m, now, &msg, o, SCRATCH(s), ev);
}

/* --------------------------------------------------------------------- receiving */

static void on_request(tc_srv *s, const tc_messaging *ms, uint64_t now, const tc_rx *rx,
                       tc_ep_event *ev, tc_srv_req *req) {
  const uint8_t *addr = rx->addr, *data = rx->data;
  uint32_t alen = rx->addr_len;
  const tc_msg *msg = rx->msg;
  const tc_opt *opts = rx->opts;
  uint32_t slot = ev->id & 0xFFFFu, pf = 0, method = msg->code, klen = 0;
  tc_bw_info bi;
  uint8_t *key;
  pend *p;
  int kl;
  if (slot >= s->cfg.max_in_progress) return; /* config mismatch: delivered as is */
  p = &PEND(s)[slot];
  if (p->id != 0u) pend_end(s, p); /* an older exchange of the slot */
  if (tc_bw_parse(msg, opts, data, &bi) < 0) { /* (the ep 4.02s such requests already) */
    static const char diag[] = "bad Block option";
    tc_msg m;
    memset(&m, 0, sizeof m);
    m.code = TC_CODE_BAD_OPTION;
    m.payload_length = sizeof diag - 1u;
    memcpy(SCRATCH(s), diag, sizeof diag - 1u);
    answer(ms, now, &m, NULL, SCRATCH(s), ev);
    return;
  }
  key = PKEY(s, slot);
  kl = tc_bw_key(msg, opts, data, method == CODE_FETCH ? TC_BW_KEY_PAYLOAD : 0u, key, s->kmax);
  if (kl < 0) pf |= P_NOKEY;
  else klen = (uint32_t)kl;

  if (bi.flags & TC_BWI_BLOCK1) {
    tc_bw1_result res;
    int st;
    if (kl < 0) { /* URI and options too long to track: 4.13 without Size1 */
      memset(&res, 0, sizeof res);
      res.status = TC_BW1_REJECT;
      res.code = TC_CODE_TOO_LARGE;
      answer_bw1(s, ms, now, &res, ev);
      return;
    }
    tc_bw1_block b;
    b.peer = addr;
    b.peer_len = alen;
    b.key = key;
    b.key_len = klen;
    b.block1 = bi.block1;
    b.flags = ((bi.flags & TC_BWI_SIZE1) ? TC_BW_HAS_SIZE1 : 0u) | bert_flag(ms);
    b.size1 = bi.size1;
    b.payload = data + msg->payload_offset;
    b.payload_len = msg->payload_length;
    st = tc_bw1_feed(BW1(s), now, &b, &res);
    if (st == TC_BW1_CONTINUE || st == TC_BW1_REJECT) {
      answer_bw1(s, ms, now, &res, ev);
      return;
    }
    if (st == TC_BW1_COMPLETE) {
      req->flags |= TC_SRVF_BODY;
      req->body_id = res.id;
      req->body_length = res.body_length;
      p->body = res.id;
      pf |= P_BODY;
    }
    pf |= P_ECHO1; /* COMPLETE or WHOLE (the arguments are valid: no error here) */
    p->echo1 = res.block1;
  } else if ((bi.flags & TC_BWI_BLOCK2) && (bi.block2 >> 4) != 0u && kl >= 0) {
    /* a later block of a representation the cache holds: served without the application */
    uint32_t rid;
    if (tc_bw2_find(BW2(s), now, addr, alen, key, klen, &rid) == 0) {
      tc_msg m;
      tc_opt o[OPT_CAP];
      uint32_t f = TC_BW_HAS_BLOCK2 | ((bi.flags & TC_BWI_SIZE2) ? TC_BW_SIZE2 : 0u) |
                   bert_flag(ms);
      tc_bw2_ask ask = {bi.block2, f, 0, limit_sub(msg_size(s, ms), msg->token_length)};
      tc_msgbuf mb = {&m, o, SCRATCH(s), OPT_CAP, s->scratch_cap};
      int n = tc_bw2_serve(BW2(s), now, rid, &ask, &mb);
      tc_outmsg out;
      out.msg = &m;
      out.opts = o;
      out.src = SCRATCH(s);
      if (n >= 0 && tc_messaging_respond(ms, now, ev->id, &out) == 0) {
        consume(ev);
        return;
      }
    }
  } else if (kl >= 0 && (method == CODE_GET || method == CODE_FETCH) &&
             !(bi.flags & TC_BWI_OBSERVE)) {
    /* block 0 of a shared representation still fresh (its Max-Age has not passed): served
     * from the cache without the application, so a small request costs a small amount */
    uint32_t rid, left = 0, i;
    if (tc_bw2_find(BW2(s), now, NULL, 0, key, klen, &rid) == 0 &&
        tc_bw2_fresh(BW2(s), now, rid, &left)) {
      tc_msg m;
      tc_opt o[OPT_CAP];
      uint32_t f = ((bi.flags & TC_BWI_BLOCK2) ? TC_BW_HAS_BLOCK2 : 0u) |
                   ((bi.flags & TC_BWI_SIZE2) ? TC_BW_SIZE2 : 0u);
      tc_bw2_ask ask = {(bi.flags & TC_BWI_BLOCK2) ? bi.block2 : 0u, f, 0,
                        limit_sub(msg_size(s, ms), msg->token_length)};
      tc_msgbuf mb = {&m, o, SCRATCH(s), OPT_CAP, s->scratch_cap};
      int n = tc_bw2_serve(BW2(s), now, rid, &ask, &mb);
      tc_outmsg out;
      for (i = 0; n >= 0 && i < m.option_count; i++)
        if (o[i].number == TC_OPT_MAX_AGE) { /* what is left of it, in the same bytes */
          uint32_t k, v = left;
          for (k = o[i].length; k > 0u; k--, v >>= 8) SCRATCH(s)[o[i].offset + k - 1u] = (uint8_t)v;
        }
      out.msg = &m;
      out.opts = o;
      out.src = SCRATCH(s);
      if (n >= 0 && (m.code >> 5) == 2u && tc_messaging_respond(ms, now, ev->id, &out) == 0) {
        s->reused++;
        consume(ev);
        return;
      }
    }
  }
  if (bi.flags & TC_BWI_BLOCK2) {
    pf |= P_BLOCK2;
    p->block2 = bi.block2;
    req->flags |= TC_SRVF_BLOCK2;
  }
  if (bi.flags & TC_BWI_SIZE2) pf |= P_SIZE2;
  if ((bi.flags & TC_BWI_OBSERVE) && (method == CODE_GET || method == CODE_FETCH)) {
    if (bi.observe == 0u) {
      pf |= P_OBSERVE;
      req->flags |= TC_SRVF_OBSERVE;
    } else if (bi.observe == 1u) {
      (void)tc_obs_deregister(OBS(s), addr, alen, data + msg->token_offset, msg->token_length);
    }
  }
  p->id = ev->id;
  p->flags = (uint8_t)pf;
  p->code = (uint8_t)method;
  p->klen = klen;
  p->alen = (uint8_t)alen;
  memcpy(p->addr, addr, alen);
  p->tlen = (uint8_t)msg->token_length; /* the ep delivers tokens of <= TC_EP_TOKEN_MAX */
  if (msg->token_length) memcpy(p->token, data + msg->token_offset, msg->token_length);
}

int tc_srv_input(tc_srv *s, const tc_messaging *m, uint64_t now, const tc_rx *rx,
                 tc_ep_event *ev, tc_srv_req *req) {
  if (req != NULL) memset(req, 0, sizeof *req);
  if (!srv_ok(s) || !seam_ok(m) || req == NULL || ev == NULL || rx == NULL ||
      !addr_ok(rx->addr, rx->addr_len) || m->max_exchanges > s->cfg.max_in_progress)
    return TC_E_INVALID;
  switch (ev->kind) {
  case TC_EV_REQUEST:
    if (rx->msg == NULL || (rx->opts == NULL && rx->msg->option_count != 0u) ||
        (rx->data == NULL && rx->len != 0u))
      return TC_E_INVALID;
    on_request(s, m, now, rx, ev, req);
    break;
  case TC_EV_ACKED:
  case TC_EV_FAILED:
  case TC_EV_NOTIFY_RESET:
    if (tc_obs_on_recv(OBS(s), now, rx->addr, rx->addr_len, ev) == 1) consume(ev);
    break;
  default:
    break;
  }
  return 0;
}

int tc_srv_forget_peer(tc_srv *s, const uint8_t *peer, uint32_t peer_len) {
  if (!srv_ok(s)) return TC_E_INVALID;
  return tc_obs_forget_peer(OBS(s), peer, peer_len);
}

int tc_srv_read_body(tc_srv *s, uint32_t body_id, uint8_t *out, uint32_t cap) {
  if (!srv_ok(s)) return TC_E_INVALID;
  return tc_bw1_read(BW1(s), body_id, out, cap);
}

int tc_srv_release_body(tc_srv *s, uint32_t body_id) {
  if (!srv_ok(s)) return TC_E_INVALID;
  return tc_bw1_release(BW1(s), body_id);
}

/* ---------------------------------------------------------------------- responding */

/* Send m (option values and payload at offsets into src) as the answer to id. */
static int send_resp(const tc_messaging *ms, uint64_t now, uint32_t id, const tc_msg *m,
                     tc_opt *o, const uint8_t *src) {
  tc_outmsg out;
  out.msg = m;
  out.opts = o;
  out.src = src;
  return tc_messaging_respond(ms, now, id, &out);
}

/* The application's response as it is (the encoder sorts the options in place: a copy). */
static int respond_as_is(const tc_messaging *ms, uint64_t now, uint32_t id, const tc_msg *resp,
                         const tc_opt *opts, const uint8_t *src) {
  tc_opt o[APP_OPTS];
  if (resp->option_count) memcpy(o, opts, resp->option_count * sizeof(tc_opt));
  return send_resp(ms, now, id, resp, o, src);
}

/* The application's response as it is, plus Observe = seq (has_obs) and Block1 = echo1
 * (P_ECHO1). Without either, the application's values are used in place; else they are copied
 * with the added ones into scratch. */
static int respond_plain(tc_srv *s, const tc_messaging *ms, uint64_t now, uint32_t id,
                         const pend *p, const tc_msg *resp, const tc_opt *opts,
                         const uint8_t *src, int has_obs, uint32_t seq) {
  tc_opt o[OPT_CAP];
  tc_msg m = *resp;
  uint32_t i, n = 0, w = 0, echo = p->flags & P_ECHO1;
  uint8_t *buf = SCRATCH(s);
  uint64_t bytes = resp->payload_length;
  if (!has_obs && !echo) return respond_as_is(ms, now, id, resp, opts, src);
  for (i = 0; i < resp->option_count; i++) bytes += opts[i].length;
  /* every value and the payload are part of the message: over the message size, too large */
  if (bytes > msg_size(s, ms)) return TC_E_MESSAGE_TOO_LARGE;
  if (src == NULL && bytes != 0u) return TC_E_INVALID;
  for (i = 0; i < resp->option_count; i++) {
    const tc_opt *a = &opts[i];
    if ((has_obs && a->number == TC_OPT_OBSERVE) || (echo && a->number == TC_OPT_BLOCK1))
      continue; /* ours replace the application's */
    o[n].number = a->number;
    o[n].offset = w;
    o[n].length = a->length;
    if (a->length) memcpy(buf + w, src + a->offset, a->length);
    w += a->length;
    n++;
  }
  if (has_obs) add_uint_opt(buf, &w, o, &n, TC_OPT_OBSERVE, seq);
  if (echo) add_uint_opt(buf, &w, o, &n, TC_OPT_BLOCK1, p->echo1);
  m.option_count = n;
  m.payload_offset = w;
  if (resp->payload_length) memcpy(buf + w, src + resp->payload_offset, resp->payload_length);
  return send_resp(ms, now, id, &m, o, buf);
}

/* Cache the response in the Block2 store and answer with the block asked (or block 0).
 * *has_obs is cleared when the block served is not a 2.xx (an error about the Block2 value). */
static int respond_blockwise(tc_srv *s, const tc_messaging *ms, uint64_t now, uint32_t id,
                             const pend *p, const tc_msg *resp, const tc_opt *opts,
                             const uint8_t *src, int *has_obs, uint32_t seq) {
  tc_opt o[OPT_CAP];
  tc_msg m;
  uint32_t rid, f = 0, n, limit;
  int shared = p->code == CODE_GET || p->code == CODE_FETCH, rc;
  tc_bw2_rep rep;
  tc_bw2_ask ask;
  tc_msgbuf mb = {&m, o, SCRATCH(s), OPT_CAP - 1u, s->scratch_cap - OBSERVE_ROOM};
  rep.peer = shared ? NULL : p->addr;
  rep.peer_len = shared ? 0u : p->alen;
  rep.key = PKEY(s, id & 0xFFFFu);
  rep.key_len = p->klen;
  rep.lifetime_ms = 0;
  rep.reserved = 0;
  rep.resp.msg = resp;
  rep.resp.opts = (tc_opt *)(uintptr_t)opts; /* not modified by the store */
  rep.resp.src = src;
  rc = tc_bw2_put(BW2(s), now, &rep, &rid);
  if (rc < 0) return rc;
  if (p->flags & P_BLOCK2) f |= TC_BW_HAS_BLOCK2;
  if (p->flags & P_SIZE2) f |= TC_BW_SIZE2;
  if (p->flags & P_ECHO1) f |= TC_BW_ECHO_BLOCK1;
  f |= bert_flag(ms);
  limit = limit_sub(msg_size(s, ms), p->tlen + (*has_obs ? OBSERVE_ROOM : 0u));
  ask.block2 = p->block2;
  ask.flags = f;
  ask.block1_echo = p->echo1;
  ask.msg_limit = limit;
  rc = tc_bw2_serve(BW2(s), now, rid, &ask, &mb);
  if (rc < 0) return rc;
  if ((m.code >> 5) != 2u) *has_obs = 0;
  if (*has_obs) {
    uint32_t w = m.payload_offset;
    /* the payload moves up to make room for the Observe value before it */
    uint8_t t[4];
    int l = tc_uint_encode(seq, t);
    memmove(SCRATCH(s) + w + (uint32_t)l, SCRATCH(s) + w, m.payload_length);
    memcpy(SCRATCH(s) + w, t, (size_t)l);
    n = m.option_count;
    o[n].number = TC_OPT_OBSERVE;
    o[n].offset = w;
    o[n].length = (uint32_t)l;
    m.option_count = n + 1u;
    m.payload_offset = w + (uint32_t)l;
  }
  return send_resp(ms, now, id, &m, o, SCRATCH(s));
}

int tc_srv_respond(tc_srv *s, const tc_messaging *ms, uint64_t now, uint32_t id,
                   const tc_outmsg *out, uint32_t resource) {
  const tc_msg *resp;
  const tc_opt *opts;
  const uint8_t *src;
  pend *p;
  tc_observer who;
  uint32_t seq = 0;
  int has_obs = 0, registered, usable, bw2_first, rc;
  if (!srv_ok(s) || !seam_ok(ms) || out == NULL || out->msg == NULL ||
      (out->opts == NULL && out->msg->option_count != 0u) ||
      out->msg->option_count > APP_OPTS || !response_code_ok(out->msg->code))
    return TC_E_INVALID;
  resp = out->msg;
  opts = out->opts;
  src = out->src;
  p = pend_of(s, id);
  if (p == NULL) return respond_as_is(ms, now, id, resp, opts, src);
  if (p->flags & P_OBSERVE) {
    who.peer = p->addr;
    who.peer_len = p->alen;
    who.token = p->token;
    who.token_len = p->tlen;
    if ((resp->code >> 5) == 2u) {
      if (resource != 0u &&
          tc_obs_register(OBS(s), now, &who, resource, &seq) > 0)
        has_obs = 1;
    } else {
      /* an error ends a registration the client may have had (to the client a response
       * without Observe ends the relation) */
      (void)tc_obs_deregister(OBS(s), p->addr, p->alen, p->token, p->tlen);
    }
  }
  registered = has_obs;
  usable = !(p->flags & P_NOKEY) && p->klen <= s->cfg.bw2.max_key;
  bw2_first = usable && ((p->flags & P_BLOCK2) ||
                         resp->payload_length > tc_szx_size(s->cfg.bw2.preferred_szx));
  if (bw2_first) {
    rc = respond_blockwise(s, ms, now, id, p, resp, opts, src, &has_obs, seq);
    /* options the Block2 store cannot hold: whole, if it fits a message */
    if (rc == TC_E_MESSAGE_TOO_LARGE && !(p->flags & P_BLOCK2))
      rc = respond_plain(s, ms, now, id, p, resp, opts, src, has_obs, seq);
  } else {
    rc = respond_plain(s, ms, now, id, p, resp, opts, src, has_obs, seq);
    /* small payload, but options and token make it too large: block-wise after all */
    if (rc == TC_E_MESSAGE_TOO_LARGE && usable)
      rc = respond_blockwise(s, ms, now, id, p, resp, opts, src, &has_obs, seq);
  }
  if (registered && (rc != 0 || !has_obs)) {
    /* not answered, or answered without Observe (an error about the Block2 value): the
     * client is not registered */
    (void)tc_obs_deregister(OBS(s), p->addr, p->alen, p->token, p->tlen);
  } else if (rc == 0 && has_obs && usable) {
    rk_remember(s, resource, PKEY(s, id & 0xFFFFu), p->klen);
  }
  if (rc == 0 || rc == TC_E_STALE) pend_end(s, p);
  return rc;
}

int tc_srv_drop(tc_srv *s, const tc_messaging *m, uint32_t id) {
  pend *p;
  int rc;
  if (!srv_ok(s) || !seam_ok(m)) return TC_E_INVALID;
  rc = tc_messaging_drop(m, id);
  p = pend_of(s, id);
  if (p != NULL) pend_end(s, p);
  return rc;
}

/* ------------------------------------------------------------------------ Observe */

int tc_srv_notify(tc_srv *s, const tc_messaging *ms, uint64_t now, uint32_t resource,
                  uint32_t flags, const tc_outmsg *out) {
  uint32_t e, rid;
  tc_msg m;
  tc_opt o[OPT_CAP];
  tc_outmsg b0;
  tc_bw2_rep rep;
  tc_bw2_ask ask;
  tc_msgbuf mb = {&m, o, SCRATCH(s), OPT_CAP, s->scratch_cap};
  const tc_msg *resp;
  int rc;
  if (!srv_ok(s) || !seam_ok(ms) || out == NULL || out->msg == NULL ||
      (out->opts == NULL && out->msg->option_count != 0u) || !response_code_ok(out->msg->code))
    return TC_E_INVALID;
  resp = out->msg;
  if (resp->payload_length <= tc_szx_size(s->cfg.bw2.preferred_szx))
    return tc_obs_notify(OBS(s), ms, now, resource, flags, out);
  e = rk_find(s, resource);
  if (tc_obs_count(OBS(s), resource) == 0u) {
    if (e != NONE) rk_unlink(s, e);
    return 0;
  }
  if (e == NONE) return TC_E_MESSAGE_TOO_LARGE;
  rep.peer = NULL;
  rep.peer_len = 0;
  rep.key = RKKEY(s, e);
  rep.key_len = RK(s)[e].klen;
  rep.lifetime_ms = 0;
  rep.reserved = 0;
  rep.resp = *out;
  rc = tc_bw2_put(BW2(s), now, &rep, &rid);
  if (rc < 0) return rc;
  /* block 0 for every observer: leave room for the longest token and the Observe option */
  ask.block2 = 0;
  ask.flags = 0;
  ask.block1_echo = 0;
  ask.msg_limit = limit_sub(msg_size(s, ms), TC_EP_TOKEN_MAX + OBSERVE_ROOM);
  rc = tc_bw2_serve(BW2(s), now, rid, &ask, &mb);
  if (rc < 0) return rc;
  b0.msg = &m;
  b0.opts = o;
  b0.src = SCRATCH(s);
  return tc_obs_notify(OBS(s), ms, now, resource, flags, &b0);
}

int tc_srv_resume(tc_srv *s, const tc_messaging *m, uint64_t now) {
  if (!srv_ok(s)) return TC_E_INVALID;
  return tc_obs_resume(OBS(s), m, now);
}

uint32_t tc_srv_pending(const tc_srv *s) { return srv_ok(s) ? tc_obs_pending(COBS(s)) : 0u; }

int tc_srv_on_timer_event(tc_srv *s, uint64_t now, const tc_ep_event *ev) {
  if (!srv_ok(s) || ev == NULL) return 0;
  return tc_obs_on_event(OBS(s), now, ev) == 1 ? 1 : 0;
}

/* --------------------------------------------------------------------------- time */

int tc_srv_timer(tc_srv *s, uint64_t now) {
  int a, b;
  if (!srv_ok(s)) return TC_E_INVALID;
  a = tc_bw1_timer(BW1(s), now);
  b = tc_bw2_timer(BW2(s), now);
  return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

uint64_t tc_srv_next_deadline(const tc_srv *s) {
  uint64_t a, b;
  if (!srv_ok(s)) return NEVER;
  a = tc_bw1_next_deadline(CBW1(s));
  b = tc_bw2_next_deadline(CBW2(s));
  return a < b ? a : b;
}

void tc_srv_get_stats(const tc_srv *s, tc_srv_stats *out) {
  tc_bw1_stats b1;
  tc_bw2_stats b2;
  tc_obs_stats ob;
  if (out == NULL) return;
  memset(out, 0, sizeof *out);
  if (!srv_ok(s)) return;
  tc_bw1_get_stats(CBW1(s), &b1);
  tc_bw2_get_stats(CBW2(s), &b2);
  tc_obs_get_stats(COBS(s), &ob);
  out->uploads = b1.transfers;
  out->uploads_done = b1.completed;
  out->blocks_in = s->blocks_in;
  out->reps = b2.reps;
  out->blocks_out = b2.served;
  out->observers = ob.observers;
  out->notifications = (uint32_t)(ob.sent_con + ob.sent_non);
  out->observers_removed = (uint32_t)(ob.removed_reset + ob.removed_timeout + ob.removed_final);
  out->observers_refused = (uint32_t)ob.rejected;
  out->uploads_refused = b1.busy;
  out->uploads_reclaimed = b1.reclaimed;
  out->notifications_skipped = (uint32_t)ob.skipped_unconfirmed;
  out->blocks_reused = s->reused;
}

/*
 * conn.c — one RFC 8323 connection, sans-IO (turbocoap_conn.h): CSM, Ping/Pong with Custody,
 * Release, Abort, requests both ways matched by token, the messaging seam for tc_srv, and a
 * bounded output buffer.
 *
 * Everything lives in one caller-owned block laid out by tc_conn_init():
 *
 *   struct tc_conn   config, state, counters
 *   ex [X]           the peer's requests in progress (X = max_exchanges): id, token, arrival
 *                    sequence (for Custody), free list
 *   rq [R]           our requests outstanding (R = max_requests): id, token, deadline
 *   out [O]          output bytes (O = out_bytes); TC_WS: each message after a 4-byte length
 *   deframer         TC_TCP only: tc_deframer_size(max_message_size)
 *
 * Messages we send are encoded without their token at a gap left for it, then the 2..6 header
 * bytes move down and the token is written into the gap (RFC 8323 §3.2: Len does not count the
 * token), so nothing is copied twice.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define CONN_MAGIC 0x74634378u /* "tcCx" */

#define CODE_CSM 0xE1u
#define CODE_PING 0xE2u
#define CODE_PONG 0xE3u
#define CODE_RELEASE 0xE4u
#define CODE_ABORT 0xE5u

#define SOPT_MMS 2u       /* CSM */
#define SOPT_BWT 4u       /* CSM */
#define SOPT_CUSTODY 2u   /* Ping, Pong */
#define SOPT_ALT_ADDR 2u  /* Release */
#define SOPT_HOLD_OFF 4u  /* Release */
#define SOPT_BAD_CSM 2u   /* Abort */

#define OPT_MAX_AGE 14u
#define OPT_PROXY_URI 35u
#define OPT_PROXY_SCHEME 39u
#define LAST_KNOWN_METHOD 7u

#define CODE_BAD_REQUEST 0x80u
#define CODE_BAD_OPTION 0x82u
#define CODE_METHOD_NOT_ALLOWED 0x85u
#define CODE_SERVICE_UNAVAILABLE 0xA3u
#define CODE_PROXYING_NOT_SUPPORTED 0xA5u

/* Output kept free for an Abort (header + Bad-CSM-Option + diagnostic). */
#define ABORT_ROOM 128u
/* Output a recv call needs free (beyond ABORT_ROOM) before it looks at a message: the
 * connection's own answers (Pong, 4.xx/5.xx with a token of TC_EP_TOKEN_MAX). */
#define AUTO_ROOM 128u
/* Out bytes no single message may use (tc_conn_send_limit). */
#define SEND_SLACK 256u
#define WS_HDR 4u

#define PING_TKL 4u

typedef struct ex_rec {
  uint32_t id;   /* 0: free */
  uint32_t seq;  /* arrival sequence */
  uint32_t next; /* free list */
  uint32_t tkl;
  uint8_t token[TC_EP_TOKEN_MAX];
} ex_rec;

typedef struct rq_rec {
  uint32_t id; /* 0: free */
  uint32_t flags;
  uint32_t next;
  uint32_t tkl;
  uint64_t deadline; /* NEVER for a kept request that was answered */
  uint8_t token[TC_EP_TOKEN_MAX];
} rq_rec;

#define RQ_KEEP 1u

struct tc_conn {
  uint32_t magic;
  uint32_t state;  /* enum tc_conn_state */
  uint32_t sflags; /* TC_CONN_S_* */
  uint32_t peer_len;
  uint8_t peer[TC_ADDR_MAX];
  tc_conn_config cfg;
  uint32_t peer_mms;
  uint32_t ex_free, ex_used, ex_gen;
  uint32_t rq_free, rq_used, rq_gen;
  uint32_t rx_seq;
  uint32_t out_head, out_tail;
  /* our Ping */
  uint32_t ping_id, ping_seq, ping_custody;
  uint8_t ping_tok[PING_TKL];
  uint64_t ping_sent;
  /* a Pong with Custody owed (§5.4.1) */
  uint32_t dp_active, dp_seq, dp_tkl, pad0;
  uint8_t dp_token[TC_EP_TOKEN_MAX];
  uint64_t csm_deadline, last_rx;
  uint64_t k0, k1, tok_ctr;
  uint64_t off_ex, off_rq, off_out, off_df, size;
  tc_conn_stats st;
};

#define AT(c, off) ((uint8_t *)(c) + (off))
#define EX(c) ((ex_rec *)(void *)AT(c, (c)->off_ex))
#define RQ(c) ((rq_rec *)(void *)AT(c, (c)->off_rq))
#define OUT(c) AT(c, (c)->off_out)
#define DF(c) ((tc_deframer *)(void *)AT(c, (c)->off_df))

static inline int conn_ok(const tc_conn *c) { return c != NULL && c->magic == CONN_MAGIC; }

/* ------------------------------------------------------------------ config, layout */

void tc_conn_config_default(tc_conn_config *cfg) {
  if (cfg == NULL) return;
  cfg->transport = TC_TCP;
  cfg->flags = TC_CONNF_BERT;
  cfg->max_message_size = TC_CONN_BASE_MMS;
  cfg->out_bytes = 16384;
  cfg->max_exchanges = 16;
  cfg->exchange_base = 0;
  cfg->max_requests = 16;
  cfg->request_timeout_ms = 60000;
  cfg->csm_timeout_ms = 10000;
  cfg->idle_ms = 30000;
  cfg->ping_timeout_ms = 10000;
  cfg->overload_max_age = 2;
}

typedef struct conn_layout {
  uint64_t off_ex, off_rq, off_out, off_df, size;
} conn_layout;

static int layout_of(const tc_conn_config *c, conn_layout *l) {
  uint64_t o;
  size_t dfs = 0;
  if (c == NULL || (c->transport != TC_TCP && c->transport != TC_WS) ||
      (c->flags & ~(TC_CONNF_BERT | TC_CONNF_PROXY)) != 0u || c->max_message_size < 64u ||
      c->max_message_size > (16u << 20) || c->out_bytes < 1024u || c->out_bytes > (1u << 30) ||
      c->max_exchanges < 1u || c->max_exchanges > 65535u ||
      (uint64_t)c->exchange_base + c->max_exchanges > 65536u || c->max_requests < 1u ||
      c->max_requests > 65535u || c->request_timeout_ms < 1u || c->csm_timeout_ms < 1u ||
      c->ping_timeout_ms < 1u)
    return -1;
  if (c->transport == TC_TCP) {
    dfs = tc_deframer_size(c->max_message_size);
    if (dfs == 0u) return -1;
  }
  o = up8(sizeof(struct tc_conn));
  l->off_ex = o;
  o = up8(o + (uint64_t)c->max_exchanges * sizeof(ex_rec));
  l->off_rq = o;
  o = up8(o + (uint64_t)c->max_requests * sizeof(rq_rec));
  l->off_out = o;
  o = up8(o + c->out_bytes);
  l->off_df = o;
  o = up8(o + dfs);
  if (o > (uint64_t)SIZE_MAX) return -1;
  l->size = o;
  return 0;
}

size_t tc_conn_size(const tc_conn_config *cfg) {
  conn_layout l;
  return layout_of(cfg, &l) < 0 ? 0 : (size_t)l.size;
}

/* ------------------------------------------------------------------------ output */

static inline uint32_t out_used(const tc_conn *c) { return c->out_tail - c->out_head; }

/* Free output bytes for an ordinary message (ABORT_ROOM stays for an Abort). */
static inline uint32_t out_room(const tc_conn *c, int for_abort) {
  uint32_t f = c->cfg.out_bytes - out_used(c);
  if (for_abort) return f;
  return f > ABORT_ROOM ? f - ABORT_ROOM : 0u;
}

uint32_t tc_conn_send_limit(const tc_conn *c) {
  uint32_t lim;
  if (!conn_ok(c)) return 0;
  lim = c->cfg.out_bytes - SEND_SLACK;
  return c->peer_mms < lim ? c->peer_mms : lim;
}

uint32_t tc_conn_peer_mms(const tc_conn *c) { return conn_ok(c) ? c->peer_mms : 0u; }

uint32_t tc_conn_state(const tc_conn *c) { return conn_ok(c) ? c->state | c->sflags : 0u; }

/* Encode m (token tok/tkl, options and payload at offsets into src; opts sorted in place) at
 * the end of the output. Returns 0, TC_E_FULL, TC_E_MESSAGE_TOO_LARGE or an encoder error. */
static int put_msg(tc_conn *c, const tc_msg *m0, tc_opt *opts, const uint8_t *src,
                   const uint8_t *tok, uint32_t tkl, int for_abort) {
  tc_msg m = *m0;
  uint32_t T = tkl + (tkl >= 269u ? 2u : tkl >= 13u ? 1u : 0u);
  uint32_t hdr = c->cfg.transport == TC_WS ? WS_HDR : 0u;
  uint32_t limit = tc_conn_send_limit(c), room = out_room(c, for_abort), cap, hl, total;
  uint8_t *p, b0;
  int n;
  m.type = 0;
  m.message_id = 0;
  m.token_offset = 0;
  m.token_length = 0;
  if (tkl > TC_MAX_TOKEN_LENGTH) return TC_E_INVALID;
  if (for_abort && limit < 64u) limit = 64u;
  if (limit <= T) return TC_E_MESSAGE_TOO_LARGE;
  if (room <= hdr + T) {
    c->st.out_full++;
    return TC_E_FULL;
  }
  cap = room - hdr;
  if (cap > limit) cap = limit;
  cap -= T;
  if (c->cfg.out_bytes - c->out_tail < hdr + T + cap) { /* make the free space contiguous */
    uint32_t used = out_used(c);
    if (used) memmove(OUT(c), OUT(c) + c->out_head, used);
    c->out_head = 0;
    c->out_tail = used;
  }
  p = OUT(c) + c->out_tail + hdr;
  n = tc_encode(p + T, cap, (int)c->cfg.transport, &m, opts, src);
  if (n == TC_E_BUFFER_TOO_SMALL) {
    int need = tc_encode(NULL, 0, (int)c->cfg.transport, &m, opts, src);
    if (need < 0) return need;
    if ((uint64_t)(uint32_t)need + T > limit) return TC_E_MESSAGE_TOO_LARGE;
    c->st.out_full++;
    return TC_E_FULL;
  }
  if (n < 0) return n;
  b0 = p[T];
  hl = 2u + ((b0 >> 4) == 13u ? 1u : (b0 >> 4) == 14u ? 2u : (b0 >> 4) == 15u ? 4u : 0u);
  if (T) {
    memmove(p, p + T, hl);
    if (tkl >= 269u) {
      p[hl] = (uint8_t)((tkl - 269u) >> 8);
      p[hl + 1u] = (uint8_t)(tkl - 269u);
      memcpy(p + hl + 2u, tok, tkl);
      p[0] = (uint8_t)((b0 & 0xF0u) | 14u);
    } else if (tkl >= 13u) {
      p[hl] = (uint8_t)(tkl - 13u);
      memcpy(p + hl + 1u, tok, tkl);
      p[0] = (uint8_t)((b0 & 0xF0u) | 13u);
    } else {
      memcpy(p + hl, tok, tkl);
      p[0] = (uint8_t)((b0 & 0xF0u) | tkl);
    }
  }
  total = (uint32_t)n + T;
  if (hdr) {
    uint8_t *h = OUT(c) + c->out_tail;
    h[0] = (uint8_t)(total >> 24);
    h[1] = (uint8_t)(total >> 16);
    h[2] = (uint8_t)(total >> 8);
    h[3] = (uint8_t)total;
  }
  c->out_tail += hdr + total;
  c->st.tx_msgs++;
  c->st.tx_bytes += total;
  return 0;
}

const uint8_t *tc_conn_out(const tc_conn *c, uint32_t *len) {
  const uint8_t *b;
  if (len != NULL) *len = 0;
  if (!conn_ok(c) || len == NULL || out_used(c) == 0u) return NULL;
  b = (const uint8_t *)c + c->off_out + c->out_head;
  if (c->cfg.transport == TC_WS) {
    *len = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return b + WS_HDR;
  }
  *len = out_used(c);
  return b;
}

int tc_conn_out_done(tc_conn *c, uint32_t n) {
  if (!conn_ok(c)) return TC_E_INVALID;
  if (c->cfg.transport == TC_WS) {
    uint32_t len;
    if (n == 0u) return 0;
    (void)tc_conn_out(c, &len);
    if (n != len) return TC_E_INVALID;
    n += WS_HDR;
  }
  if (n > out_used(c)) return TC_E_INVALID;
  c->out_head += n;
  if (c->out_head == c->out_tail) c->out_head = c->out_tail = 0;
  return 0;
}

uint32_t tc_conn_out_pending(const tc_conn *c) { return conn_ok(c) ? out_used(c) : 0u; }

/* A signal with up to 3 options (number, uint value or bytes) and a diagnostic payload. */
typedef struct sig {
  tc_msg m;
  tc_opt o[4];
  uint8_t buf[320];
  uint32_t w;
} sig;

static void sig_init(sig *s, uint32_t code) {
  memset(&s->m, 0, sizeof s->m);
  s->m.code = code;
  s->w = 0;
}
static void sig_bytes(sig *s, uint32_t number, const void *v, uint32_t len) {
  tc_opt *o = &s->o[s->m.option_count++];
  o->number = number;
  o->offset = s->w;
  o->length = len;
  if (len) memcpy(s->buf + s->w, v, len);
  s->w += len;
}
static void sig_uint(sig *s, uint32_t number, uint32_t v) {
  uint8_t t[4];
  sig_bytes(s, number, t, (uint32_t)tc_uint_encode(v, t));
}
static void sig_diag(sig *s, const char *d) {
  size_t n = d != NULL ? strlen(d) : 0u;
  if (n > 64u) n = 64u;
  s->m.payload_offset = s->w;
  s->m.payload_length = (uint32_t)n;
  if (n) memcpy(s->buf + s->w, d, n);
  s->w += (uint32_t)n;
}
static int sig_put(tc_conn *c, sig *s, const uint8_t *tok, uint32_t tkl, int for_abort) {
  return put_msg(c, &s->m, s->o, s->buf, tok, tkl, for_abort);
}

/* ------------------------------------------------------------------------ init */

static void ex_reset(tc_conn *c) {
  uint32_t i;
  for (i = 0; i < c->cfg.max_exchanges; i++) {
    EX(c)[i].id = 0;
    EX(c)[i].next = i + 1u < c->cfg.max_exchanges ? i + 1u : NONE;
  }
  c->ex_free = 0;
  c->ex_used = 0;
}

static void rq_reset(tc_conn *c) {
  uint32_t i;
  for (i = 0; i < c->cfg.max_requests; i++) {
    RQ(c)[i].id = 0;
    RQ(c)[i].next = i + 1u < c->cfg.max_requests ? i + 1u : NONE;
  }
  c->rq_free = 0;
  c->rq_used = 0;
}

int tc_conn_init(tc_conn *c, size_t mem_len, const tc_conn_config *cfg, const uint8_t seed[32],
                 const uint8_t *peer, uint32_t peer_len, uint64_t now) {
  conn_layout l;
  sig s;
  if (c == NULL || seed == NULL || !addr_ok(peer, peer_len) || layout_of(cfg, &l) < 0 ||
      mem_len < l.size || ((uintptr_t)c & 7u) != 0u)
    return TC_E_INVALID;
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  c->off_ex = l.off_ex;
  c->off_rq = l.off_rq;
  c->off_out = l.off_out;
  c->off_df = l.off_df;
  c->size = l.size;
  c->peer_len = peer_len;
  memcpy(c->peer, peer, peer_len);
  c->peer_mms = TC_CONN_BASE_MMS;
  c->state = TC_CONN_WAIT_CSM;
  c->k0 = rd64le(seed);
  c->k1 = rd64le(seed + 8);
  c->tok_ctr = rd64le(seed + 16) ^ rd64le(seed + 24);
  c->ex_gen = 1;
  c->rq_gen = 1;
  c->csm_deadline = add_sat(now, cfg->csm_timeout_ms);
  c->last_rx = now;
  ex_reset(c);
  rq_reset(c);
  if (cfg->transport == TC_TCP &&
      tc_deframer_init(DF(c), (size_t)(l.size - l.off_df), cfg->max_message_size) != 0)
    return TC_E_INVALID;
  c->magic = CONN_MAGIC;
  /* our CSM first (§5.3) */
  sig_init(&s, CODE_CSM);
  sig_uint(&s, SOPT_MMS, cfg->max_message_size);
  if (cfg->flags & TC_CONNF_BERT) sig_bytes(&s, SOPT_BWT, NULL, 0);
  if (sig_put(c, &s, NULL, 0, 1) != 0) {
    c->magic = 0;
    return TC_E_INVALID;
  }
  return 0;
}

/* ------------------------------------------------------------------------ closing */

static void ev_put(tc_conn_event *e, uint32_t kind, uint32_t id, int32_t status,
                   uint32_t flags, uint32_t value) {
  e->kind = kind;
  e->id = id;
  e->status = status;
  e->flags = flags;
  e->where = 0;
  e->offset = 0;
  e->length = 0;
  e->value = value;
}

/* Close: exchanges and requests are gone; one CLOSED event (if ev != NULL). */
static void conn_close(tc_conn *c, int32_t status, tc_conn_event *ev) {
  c->state = TC_CONN_CLOSED;
  c->ping_id = 0;
  c->dp_active = 0;
  ex_reset(c);
  rq_reset(c);
  if (ev != NULL) ev_put(ev, TC_CONN_EV_CLOSED, 0, status, 0, 0);
}

/* A connection error: Abort (with Bad-CSM-Option bad_csm unless TC_CONN_NO_VALUE), close. */
static void conn_error(tc_conn *c, int32_t status, const char *diag, uint32_t bad_csm,
                       tc_conn_event *ev) {
  sig s;
  sig_init(&s, CODE_ABORT);
  if (bad_csm != TC_CONN_NO_VALUE) sig_uint(&s, SOPT_BAD_CSM, bad_csm);
  sig_diag(&s, diag);
  (void)sig_put(c, &s, NULL, 0, 1);
  conn_close(c, status, ev);
}

int tc_conn_abort(tc_conn *c, uint64_t now, const char *diag) {
  (void)now;
  if (!conn_ok(c)) return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED) return TC_E_STALE;
  conn_error(c, 0, diag, TC_CONN_NO_VALUE, NULL);
  return 0;
}

/* ------------------------------------------------------------------------ tokens */

static void gen_bytes(tc_conn *c, uint8_t *out, uint32_t n) {
  while (n) {
    uint8_t ctr[8];
    uint64_t h;
    uint32_t i, k = n < 8u ? n : 8u;
    c->tok_ctr++;
    for (i = 0; i < 8u; i++) ctr[i] = (uint8_t)(c->tok_ctr >> (8u * i));
    h = tc_siphash(c->k0, c->k1, ctr, 8, 2, 4);
    for (i = 0; i < k; i++) out[i] = (uint8_t)(h >> (8u * i));
    out += k;
    n -= k;
  }
}

static uint32_t rq_find_token(const tc_conn *c, const uint8_t *tok, uint32_t tkl) {
  const rq_rec *r = (const rq_rec *)(const void *)((const uint8_t *)c + c->off_rq);
  uint32_t i, left = c->rq_used;
  for (i = 0; i < c->cfg.max_requests && left; i++) {
    if (r[i].id == 0u) continue;
    left--;
    if (r[i].tkl == tkl && (tkl == 0u || memcmp(r[i].token, tok, tkl) == 0)) return i;
  }
  return NONE;
}

/* ------------------------------------------------------------------ the peer's requests */

static ex_rec *ex_of(tc_conn *c, uint32_t id) {
  uint32_t slot = id & 0xFFFFu;
  ex_rec *e;
  if (id == 0u || (id & 0xC0000000u) || slot < c->cfg.exchange_base ||
      slot - c->cfg.exchange_base >= c->cfg.max_exchanges)
    return NULL;
  e = &EX(c)[slot - c->cfg.exchange_base];
  return e->id == id ? e : NULL;
}

static void ex_free(tc_conn *c, ex_rec *e) {
  e->id = 0;
  e->next = c->ex_free;
  c->ex_free = (uint32_t)(e - EX(c));
  c->ex_used--;
}

/* The owed Pong with Custody goes out once no request older than its Ping is open. */
static void custody_check(tc_conn *c) {
  uint32_t i;
  sig s;
  if (!c->dp_active) return;
  for (i = 0; i < c->cfg.max_exchanges; i++)
    if (EX(c)[i].id != 0u && (int32_t)(EX(c)[i].seq - c->dp_seq) <= 0) return;
  sig_init(&s, CODE_PONG);
  sig_bytes(&s, SOPT_CUSTODY, NULL, 0);
  if (sig_put(c, &s, c->dp_token, c->dp_tkl, 0) == 0) c->dp_active = 0;
}

int tc_conn_respond(tc_conn *c, uint64_t now, uint32_t id, const tc_outmsg *resp) {
  ex_rec *e;
  int rc;
  (void)now;
  if (!conn_ok(c) || resp == NULL || resp->msg == NULL ||
      (resp->opts == NULL && resp->msg->option_count != 0u) ||
      !response_code_ok(resp->msg->code))
    return TC_E_INVALID;
  e = ex_of(c, id);
  if (e == NULL) return TC_E_STALE;
  rc = put_msg(c, resp->msg, resp->opts, resp->src, e->token, e->tkl, 0);
  if (rc != 0) return rc;
  ex_free(c, e);
  custody_check(c);
  return 0;
}

int tc_conn_drop(tc_conn *c, uint32_t id) {
  ex_rec *e;
  if (!conn_ok(c)) return TC_E_INVALID;
  e = ex_of(c, id);
  if (e == NULL) return TC_E_STALE;
  ex_free(c, e);
  custody_check(c);
  return 0;
}

int tc_conn_notify(tc_conn *c, uint64_t now, const tc_notify_args *a, tc_notify_result *res) {
  int rc;
  (void)now;
  if (res != NULL) memset(res, 0, sizeof *res);
  if (!conn_ok(c) || a == NULL || a->resp.msg == NULL || a->token_len > TC_EP_TOKEN_MAX ||
      (a->token == NULL && a->token_len != 0u) ||
      (a->resp.opts == NULL && a->resp.msg->option_count != 0u) ||
      !response_code_ok(a->resp.msg->code))
    return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED || a->addr_len != c->peer_len || a->addr == NULL ||
      memcmp(a->addr, c->peer, c->peer_len) != 0)
    return TC_E_STALE;
  rc = put_msg(c, a->resp.msg, a->resp.opts, a->resp.src, a->token, a->token_len, 0);
  return rc;
}

static int seam_respond(const tc_messaging *m, uint64_t now, uint32_t id, const tc_outmsg *r) {
  return tc_conn_respond((tc_conn *)m->state, now, id, r);
}
static int seam_notify(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                       tc_notify_result *res) {
  return tc_conn_notify((tc_conn *)m->state, now, a, res);
}
static int seam_drop(const tc_messaging *m, uint32_t id) {
  return tc_conn_drop((tc_conn *)m->state, id);
}
static const tc_messaging_ops CONN_OPS = {seam_respond, seam_notify, seam_drop};

int tc_conn_messaging(tc_conn *c, tc_messaging *m) {
  if (m == NULL) return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  if (!conn_ok(c)) return TC_E_INVALID;
  m->ops = &CONN_OPS;
  m->state = c;
  m->out = NULL;
  m->transport = c->cfg.transport;
  m->flags = TC_MSGF_RELIABLE;
  if ((c->cfg.flags & TC_CONNF_BERT) && (c->sflags & TC_CONN_S_PEER_BERT))
    m->flags |= TC_MSGF_BERT;
  m->max_message_size = tc_conn_send_limit(c);
  m->max_exchanges = c->cfg.exchange_base + c->cfg.max_exchanges;
  return 0;
}

static int router_respond(const tc_messaging *m, uint64_t now, uint32_t id,
                          const tc_outmsg *r) {
  const tc_conn_router *rt = (const tc_conn_router *)m->state;
  tc_conn *c = rt->by_slot(rt->ctx, id & 0xFFFFu);
  return c != NULL ? tc_conn_respond(c, now, id, r) : TC_E_STALE;
}
static int router_notify(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                         tc_notify_result *res) {
  const tc_conn_router *rt = (const tc_conn_router *)m->state;
  tc_conn *c;
  if (res != NULL) memset(res, 0, sizeof *res);
  if (a == NULL || !addr_ok(a->addr, a->addr_len)) return TC_E_INVALID;
  c = rt->by_peer(rt->ctx, a->addr, a->addr_len);
  return c != NULL ? tc_conn_notify(c, now, a, res) : TC_E_STALE;
}
static int router_drop(const tc_messaging *m, uint32_t id) {
  const tc_conn_router *rt = (const tc_conn_router *)m->state;
  tc_conn *c = rt->by_slot(rt->ctx, id & 0xFFFFu);
  return c != NULL ? tc_conn_drop(c, id) : TC_E_STALE;
}
static const tc_messaging_ops ROUTER_OPS = {router_respond, router_notify, router_drop};

int tc_conn_router_messaging(tc_conn_router *r, tc_messaging *m) {
  if (m == NULL) return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  if (r == NULL || r->by_peer == NULL || r->by_slot == NULL ||
      (r->transport != TC_TCP && r->transport != TC_WS) || r->max_exchanges == 0u ||
      r->max_exchanges > 65536u || r->max_message_size < 64u)
    return TC_E_INVALID;
  m->ops = &ROUTER_OPS;
  m->state = r;
  m->transport = r->transport;
  m->flags = TC_MSGF_RELIABLE;
  m->max_message_size = r->max_message_size;
  m->max_exchanges = r->max_exchanges;
  return 0;
}

/* ------------------------------------------------------------------------ our requests */

int tc_conn_request(tc_conn *c, uint64_t now, const tc_req_args *a, tc_req_result *res) {
  uint8_t tok[TC_EP_TOKEN_MAX];
  uint32_t tkl, i, tries;
  rq_rec *r;
  int rc;
  if (!conn_ok(c) || a == NULL || a->req.msg == NULL ||
      (a->req.opts == NULL && a->req.msg->option_count != 0u) ||
      (a->flags & ~(TC_REQ_CON | TC_REQ_KEEP)) != 0u || a->req.msg->code < 1u ||
      a->req.msg->code > 31u || a->gen_token_length > (int32_t)TC_EP_TOKEN_MAX)
    return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED || (c->sflags & (TC_CONN_S_PEER_RELEASED | TC_CONN_S_RELEASED)))
    return TC_E_STALE;
  if (a->gen_token_length >= 0) {
    tkl = (uint32_t)a->gen_token_length;
    for (tries = 0;; tries++) {
      gen_bytes(c, tok, tkl);
      if (rq_find_token(c, tok, tkl) == NONE) break;
      if (tkl == 0u || tries > 8u) return TC_E_FULL; /* (length 0: one at a time) */
    }
  } else {
    tkl = a->req.msg->token_length;
    if (tkl > TC_EP_TOKEN_MAX || (tkl && a->req.src == NULL)) return TC_E_INVALID;
    if (tkl) memcpy(tok, a->req.src + a->req.msg->token_offset, tkl);
    if (rq_find_token(c, tok, tkl) != NONE) return TC_E_INVALID;
  }
  if (c->rq_free == NONE) return TC_E_FULL;
  rc = put_msg(c, a->req.msg, a->req.opts, a->req.src, tok, tkl, 0);
  if (rc != 0) return rc;
  i = c->rq_free;
  r = &RQ(c)[i];
  c->rq_free = r->next;
  c->rq_used++;
  c->rq_gen = (c->rq_gen + 1u) & 0x7FFFu;
  if (c->rq_gen == 0u) c->rq_gen = 1;
  r->id = 0x80000000u | c->rq_gen << 16 | i;
  r->flags = (a->flags & TC_REQ_KEEP) ? RQ_KEEP : 0u;
  r->tkl = tkl;
  memcpy(r->token, tok, tkl);
  r->deadline = add_sat(now, c->cfg.request_timeout_ms);
  if (res != NULL) {
    memset(res, 0, sizeof *res);
    res->id = r->id;
    res->token_length = tkl;
    memcpy(res->token, tok, tkl);
  }
  return 0;
}

static rq_rec *rq_of(tc_conn *c, uint32_t id) {
  uint32_t i = id & 0xFFFFu;
  if (!(id & 0x80000000u) || i >= c->cfg.max_requests || RQ(c)[i].id != id) return NULL;
  return &RQ(c)[i];
}

static void rq_free_rec(tc_conn *c, rq_rec *r) {
  r->id = 0;
  r->next = c->rq_free;
  c->rq_free = (uint32_t)(r - RQ(c));
  c->rq_used--;
}

int tc_conn_cancel(tc_conn *c, uint32_t id) {
  rq_rec *r;
  if (!conn_ok(c)) return TC_E_INVALID;
  r = rq_of(c, id);
  if (r == NULL) return TC_E_STALE;
  rq_free_rec(c, r);
  return 0;
}

int tc_conn_ping(tc_conn *c, uint64_t now, int custody, uint32_t *id) {
  sig s;
  uint8_t tok[PING_TKL];
  int rc;
  if (!conn_ok(c)) return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED) return TC_E_STALE;
  if (c->ping_id != 0u) return TC_E_FULL;
  gen_bytes(c, tok, PING_TKL);
  sig_init(&s, CODE_PING);
  if (custody) sig_bytes(&s, SOPT_CUSTODY, NULL, 0);
  rc = sig_put(c, &s, tok, PING_TKL, 0);
  if (rc != 0) return rc;
  memcpy(c->ping_tok, tok, PING_TKL);
  c->ping_seq = (c->ping_seq + 1u) & 0xFFFFu;
  c->ping_id = 0xC0000000u | c->ping_seq;
  c->ping_sent = now;
  c->ping_custody = custody ? 1u : 0u;
  if (id != NULL) *id = c->ping_id;
  return 0;
}

int tc_conn_release(tc_conn *c, uint64_t now, const uint8_t *alt, uint32_t alt_len,
                    uint32_t hold_off_s, const char *diag) {
  sig s;
  int rc;
  (void)now;
  if (!conn_ok(c) || (alt == NULL && alt_len != 0u) || alt_len > 255u) return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED) return TC_E_STALE;
  sig_init(&s, CODE_RELEASE);
  if (alt_len) sig_bytes(&s, SOPT_ALT_ADDR, alt, alt_len);
  if (hold_off_s != TC_CONN_NO_VALUE) {
    if (hold_off_s > 0xFFFFFFu) return TC_E_INVALID;
    sig_uint(&s, SOPT_HOLD_OFF, hold_off_s);
  }
  sig_diag(&s, diag);
  rc = sig_put(c, &s, NULL, 0, 0);
  if (rc == 0) c->sflags |= TC_CONN_S_RELEASED;
  return rc;
}

/* ------------------------------------------------------------------------ receiving */

/* Answer a request the connection refuses itself (token at hand). */
static void auto_respond(tc_conn *c, const uint8_t *data, const tc_msg *msg, uint32_t code,
                         int32_t bad) {
  sig s;
  char d[40];
  sig_init(&s, code);
  if (code == CODE_SERVICE_UNAVAILABLE) sig_uint(&s, OPT_MAX_AGE, c->cfg.overload_max_age);
  if (bad >= 0) {
    /* "Bad critical option N" */
    uint32_t v = (uint32_t)bad, k = 0, j;
    char t[12];
    memcpy(d, "Bad critical option ", 20);
    do {
      t[k++] = (char)('0' + v % 10u);
      v /= 10u;
    } while (v);
    for (j = 0; j < k; j++) d[20 + j] = t[k - 1u - j];
    d[20 + k] = 0;
    sig_diag(&s, d);
  }
  if (put_msg(c, &s.m, s.o, s.buf, data + msg->token_offset, msg->token_length, 0) == 0)
    c->st.auto_replies++;
}

/* The first critical option that is unrecognized, has a bad length or is repeated without
 * being repeatable (as tc_ep); -1 if none. */
static int32_t bad_critical(uint32_t code, const tc_opt *o, uint32_t n) {
  uint32_t i, prev = NONE;
  for (i = 0; i < n; i++) {
    uint32_t num = o[i].number;
    if (num & 1u) {
      const tc_option_def *def = tc_option_find(code, num);
      if (def == NULL || o[i].length < def->min_length || o[i].length > def->max_length ||
          (num == prev && !def->repeatable))
        return (int32_t)num;
    }
    prev = num;
  }
  return -1;
}

/* A signal option: its value as a uint (0 when absent or not a uint of <= 4 bytes). */
static uint32_t opt_uint(const uint8_t *data, const tc_opt *o) {
  uint32_t v = 0;
  (void)tc_uint_decode(data + o->offset, o->length, &v);
  return v;
}

/* Process one whole message at data[0..len); its event (if any) at ev with where/off. Returns
 * the number of events written (0..2). */
static int on_message(tc_conn *c, uint64_t now, const uint8_t *data, uint32_t len,
                      uint32_t where, uint32_t off, tc_conn_event *ev) {
  tc_msg msg;
  tc_opt opts[TC_CONN_OPT_MAX];
  uint32_t code, cls, i, n;
  int r = tc_decode(data, len, (int)c->cfg.transport, &msg, opts, TC_CONN_OPT_MAX);
  c->st.rx_msgs++;
  if (r < 0) {
    conn_error(c, r, "message format error", TC_CONN_NO_VALUE, ev);
    return 1;
  }
  n = (uint32_t)r;
  code = msg.code;
  cls = code >> 5;
  if (c->state == TC_CONN_WAIT_CSM && code != CODE_CSM) {
    conn_error(c, TC_E_INVALID, "CSM expected first", TC_CONN_NO_VALUE, ev);
    return 1;
  }
  ev_put(ev, TC_EV_NONE, 0, 0, 0, 0);
  ev->where = where;
  ev->offset = off;
  ev->length = len;
  if (code == 0u) return 0; /* Empty: ignored (§3.4) */
  if (cls == 7u) {
    /* signal options: unknown/bad critical ones are errors; elective ones are ignored */
    int32_t bad = (code >= CODE_CSM && code <= CODE_ABORT) ? bad_critical(code, opts, n) : -1;
    if (bad >= 0) {
      if (code == CODE_CSM)
        conn_error(c, TC_E_INVALID, "Bad CSM option", (uint32_t)bad, ev);
      else
        conn_error(c, TC_E_BAD_OPTION, "Bad critical signal option", TC_CONN_NO_VALUE, ev);
      return 1;
    }
    switch (code) {
    case CODE_CSM: {
      uint32_t mms = c->peer_mms, bert = 0, first = c->state == TC_CONN_WAIT_CSM;
      for (i = 0; i < n; i++) {
        if (opts[i].number == SOPT_MMS) {
          if (opts[i].length > 4u) {
            conn_error(c, TC_E_INVALID, "Bad Max-Message-Size", SOPT_MMS, ev);
            return 1;
          }
          mms = opt_uint(data, &opts[i]);
        } else if (opts[i].number == SOPT_BWT && opts[i].length == 0u) {
          bert = 1;
        }
      }
      c->peer_mms = mms;
      if (bert) c->sflags |= TC_CONN_S_PEER_BERT;
      c->state = TC_CONN_READY;
      ev->kind = first ? TC_CONN_EV_READY : TC_CONN_EV_CSM;
      ev->value = mms;
      ev->flags = (c->sflags & TC_CONN_S_PEER_BERT) ? TC_CONN_EVF_BERT : 0u;
      return 1;
    }
    case CODE_PING: {
      sig s;
      uint32_t custody = 0;
      c->st.pings_rx++;
      for (i = 0; i < n; i++)
        if (opts[i].number == SOPT_CUSTODY) custody = 1;
      if (custody && msg.token_length <= TC_EP_TOKEN_MAX) {
        uint32_t open = 0;
        for (i = 0; i < c->cfg.max_exchanges && !open; i++)
          if (EX(c)[i].id != 0u) open = 1;
        if (open) {
          if (c->dp_active) { /* the older one now, without Custody */
            sig_init(&s, CODE_PONG);
            (void)sig_put(c, &s, c->dp_token, c->dp_tkl, 0);
          }
          c->dp_active = 1;
          c->dp_seq = c->rx_seq;
          c->dp_tkl = msg.token_length;
          memcpy(c->dp_token, data + msg.token_offset, msg.token_length);
          return 0;
        }
      }
      sig_init(&s, CODE_PONG);
      if (custody) sig_bytes(&s, SOPT_CUSTODY, NULL, 0);
      (void)put_msg(c, &s.m, s.o, s.buf, data + msg.token_offset, msg.token_length, 0);
      return 0;
    }
    case CODE_PONG:
      c->st.pongs_rx++;
      if (c->ping_id != 0u && msg.token_length == PING_TKL &&
          memcmp(data + msg.token_offset, c->ping_tok, PING_TKL) == 0) {
        ev->kind = TC_CONN_EV_PONG;
        ev->id = c->ping_id;
        ev->value = (uint32_t)(now - c->ping_sent > 0xFFFFFFFEu ? 0xFFFFFFFEu
                                                                 : now - c->ping_sent);
        for (i = 0; i < n; i++)
          if (opts[i].number == SOPT_CUSTODY) ev->flags = TC_CONN_EVF_CUSTODY;
        c->ping_id = 0;
        return 1;
      }
      c->st.unmatched++;
      return 0;
    case CODE_RELEASE:
      c->sflags |= TC_CONN_S_PEER_RELEASED;
      ev->kind = TC_CONN_EV_RELEASE;
      ev->value = TC_CONN_NO_VALUE;
      for (i = 0; i < n; i++)
        if (opts[i].number == SOPT_HOLD_OFF) ev->value = opt_uint(data, &opts[i]);
      return 1;
    case CODE_ABORT:
      ev->kind = TC_CONN_EV_ABORT;
      ev->value = TC_CONN_NO_VALUE;
      for (i = 0; i < n; i++)
        if (opts[i].number == SOPT_BAD_CSM) ev->value = opt_uint(data, &opts[i]);
      conn_close(c, 0, ev + 1);
      return 2;
    default:
      return 0; /* unknown signal code: ignored */
    }
  }
  if (cls == 0u) { /* a request */
    uint32_t proxy = 0;
    int32_t bad;
    ex_rec *e;
    if (msg.token_length > TC_EP_TOKEN_MAX) {
      auto_respond(c, data, &msg, CODE_BAD_REQUEST, -1);
      return 0;
    }
    if ((code & 31u) > LAST_KNOWN_METHOD) {
      auto_respond(c, data, &msg, CODE_METHOD_NOT_ALLOWED, -1);
      return 0;
    }
    bad = bad_critical(code, opts, n);
    if (bad >= 0) {
      auto_respond(c, data, &msg, CODE_BAD_OPTION, bad);
      return 0;
    }
    for (i = 0; i < n && !(c->cfg.flags & TC_CONNF_PROXY); i++)
      if (opts[i].number == OPT_PROXY_URI || opts[i].number == OPT_PROXY_SCHEME) proxy = 1;
    if (proxy) {
      auto_respond(c, data, &msg, CODE_PROXYING_NOT_SUPPORTED, -1);
      return 0;
    }
    if (c->ex_free == NONE) {
      auto_respond(c, data, &msg, CODE_SERVICE_UNAVAILABLE, -1);
      return 0;
    }
    i = c->ex_free;
    e = &EX(c)[i];
    c->ex_free = e->next;
    c->ex_used++;
    c->ex_gen = (c->ex_gen + 1u) & 0x3FFFu;
    if (c->ex_gen == 0u) c->ex_gen = 1;
    e->id = c->ex_gen << 16 | (c->cfg.exchange_base + i);
    e->seq = ++c->rx_seq;
    e->tkl = msg.token_length;
    memcpy(e->token, data + msg.token_offset, msg.token_length);
    ev->kind = TC_EV_REQUEST;
    ev->id = e->id;
    return 1;
  }
  if (cls == 2u || cls == 4u || cls == 5u) { /* a response */
    uint32_t k = rq_find_token(c, data + msg.token_offset, msg.token_length);
    rq_rec *q;
    if (msg.token_length > TC_EP_TOKEN_MAX || k == NONE) {
      c->st.unmatched++;
      return 0;
    }
    q = &RQ(c)[k];
    ev->kind = TC_EV_RESPONSE;
    ev->id = q->id;
    if (q->flags & RQ_KEEP) {
      q->deadline = NEVER;
    } else {
      ev->flags = TC_EVF_LAST;
      rq_free_rec(c, q);
    }
    return 1;
  }
  conn_error(c, TC_E_INVALID, "bad code class", TC_CONN_NO_VALUE, ev); /* 1.xx, 3.xx, 6.xx */
  return 1;
}

const uint8_t *tc_conn_buffer(const tc_conn *c) {
  if (!conn_ok(c) || c->cfg.transport != TC_TCP) return NULL;
  return (const uint8_t *)c + c->off_df + sizeof(tc_deframer);
}

int tc_conn_recv(tc_conn *c, uint64_t now, const uint8_t *data, size_t len, size_t *consumed,
                 tc_conn_event *ev, uint32_t ev_cap) {
  size_t pos = 0;
  uint32_t nev = 0;
  if (consumed != NULL) *consumed = 0;
  if (!conn_ok(c) || consumed == NULL || (data == NULL && len != 0u) || ev == NULL ||
      ev_cap < 2u)
    return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED) {
    *consumed = len;
    return 0;
  }
  if (len == 0u) return 0;
  if (c->cfg.transport == TC_WS) {
    if (out_room(c, 0) < AUTO_ROOM) return 0;
    c->last_rx = now;
    c->st.rx_bytes += len;
    *consumed = len;
    if (len > c->cfg.max_message_size) {
      conn_error(c, TC_E_MESSAGE_TOO_LARGE, "message too large", TC_CONN_NO_VALUE, ev);
      return 1;
    }
    return on_message(c, now, data, (uint32_t)len, TC_FRAME_CHUNK, 0, ev);
  }
  c->last_rx = now;
  while (pos < len && c->state != TC_CONN_CLOSED) {
    tc_frame fr;
    size_t used = 0;
    int r;
    const uint8_t *m;
    if (nev + 2u > ev_cap || out_room(c, 0) < AUTO_ROOM) break;
    r = tc_deframer_feed(DF(c), data + pos, len - pos, &used, &fr, 1);
    c->st.rx_bytes += used;
    if (r < 0) {
      conn_error(c, r, r == TC_E_MESSAGE_TOO_LARGE ? "message too large" : "bad framing",
                 TC_CONN_NO_VALUE, &ev[nev]);
      nev++;
      pos = len;
      break;
    }
    if (r == 0) { /* the rest is buffered */
      pos += used;
      break;
    }
    m = fr.where == TC_FRAME_CHUNK ? data + pos + fr.offset : tc_conn_buffer(c) + fr.offset;
    nev += (uint32_t)on_message(c, now, m, fr.length, fr.where,
                                fr.where == TC_FRAME_CHUNK ? (uint32_t)pos + fr.offset
                                                           : fr.offset,
                                &ev[nev]);
    pos += used;
    if (fr.where == TC_FRAME_BUFFER) break; /* the caller uses it before the next feed */
  }
  if (c->state == TC_CONN_CLOSED) pos = len;
  *consumed = pos;
  return (int)nev;
}

int tc_conn_event_rx(const tc_conn *c, const uint8_t *chunk, const tc_conn_event *ev,
                     tc_msg *msg, tc_opt *opts, uint32_t opt_cap, tc_rx *rx) {
  const uint8_t *d;
  int r;
  if (!conn_ok(c) || ev == NULL || msg == NULL || rx == NULL || ev->length == 0u)
    return TC_E_INVALID;
  if (ev->where == TC_FRAME_CHUNK) {
    if (chunk == NULL) return TC_E_INVALID;
    d = chunk + ev->offset;
  } else {
    d = tc_conn_buffer(c);
    if (d == NULL) return TC_E_INVALID;
    d += ev->offset;
  }
  r = tc_decode(d, ev->length, (int)c->cfg.transport, msg, opts, opt_cap);
  if (r < 0) return r;
  memset(rx, 0, sizeof *rx);
  rx->addr = c->peer;
  rx->addr_len = c->peer_len;
  rx->data = d;
  rx->len = ev->length;
  rx->msg = msg;
  rx->opts = opts;
  rx->opt_cap = opt_cap;
  return 0;
}

/* ---------------------------------------------------------------------------- time */

int tc_conn_timer(tc_conn *c, uint64_t now, tc_conn_event *ev, uint32_t ev_cap) {
  uint32_t nev = 0, i;
  if (!conn_ok(c) || (ev == NULL && ev_cap != 0u)) return TC_E_INVALID;
  if (c->state == TC_CONN_CLOSED || ev_cap == 0u) return 0;
  if (c->state == TC_CONN_WAIT_CSM && now >= c->csm_deadline) {
    conn_error(c, TC_E_INVALID, "no CSM", TC_CONN_NO_VALUE, ev);
    return 1;
  }
  if (c->ping_id != 0u && now - c->ping_sent >= c->cfg.ping_timeout_ms) {
    conn_error(c, TC_E_TIMEOUT, "no Pong", TC_CONN_NO_VALUE, ev);
    return 1;
  }
  if (c->cfg.idle_ms != 0u && c->ping_id == 0u && now >= c->last_rx &&
      now - c->last_rx >= c->cfg.idle_ms && tc_conn_ping(c, now, 0, NULL) == TC_E_FULL) {
    /* a peer that does not even read what we send: the Ping counts as sent, so the
     * connection is declared dead ping_timeout_ms from now (half-open, slow readers) */
    c->ping_seq = (c->ping_seq + 1u) & 0xFFFFu;
    c->ping_id = 0xC0000000u | c->ping_seq;
    c->ping_sent = now;
    gen_bytes(c, c->ping_tok, PING_TKL);
  }
  custody_check(c);
  for (i = 0; i < c->cfg.max_requests && nev < ev_cap; i++) {
    rq_rec *r = &RQ(c)[i];
    if (r->id != 0u && now >= r->deadline) {
      ev_put(&ev[nev++], TC_EV_FAILED, r->id, TC_E_TIMEOUT, TC_EVF_LAST, 0);
      rq_free_rec(c, r);
    }
  }
  return (int)nev;
}

uint64_t tc_conn_next_deadline(const tc_conn *c) {
  uint64_t d = NEVER;
  uint32_t i, left;
  const rq_rec *r;
  if (!conn_ok(c) || c->state == TC_CONN_CLOSED) return NEVER;
  if (c->state == TC_CONN_WAIT_CSM) d = c->csm_deadline;
  if (c->ping_id != 0u) {
    uint64_t t = add_sat(c->ping_sent, c->cfg.ping_timeout_ms);
    if (t < d) d = t;
  } else if (c->cfg.idle_ms != 0u) {
    uint64_t t = add_sat(c->last_rx, c->cfg.idle_ms);
    if (t < d) d = t;
  }
  r = (const rq_rec *)(const void *)((const uint8_t *)c + c->off_rq);
  left = c->rq_used;
  for (i = 0; i < c->cfg.max_requests && left; i++) {
    if (r[i].id == 0u) continue;
    left--;
    if (r[i].deadline < d) d = r[i].deadline;
  }
  return d;
}

void tc_conn_get_stats(const tc_conn *c, tc_conn_stats *out) {
  if (out == NULL) return;
  memset(out, 0, sizeof *out);
  if (!conn_ok(c)) return;
  *out = c->st;
  out->exchanges = c->ex_used;
  out->requests = c->rq_used;
}

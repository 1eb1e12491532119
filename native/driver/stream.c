/*
 * stream.c — the connection driver shared by the native addon and the WebAssembly module
 * (stream.h). TLS (tc_tls under a connection) only when compiled with TC_WITH_TLS.
 */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#define NONE 0xFFFFFFFFu
#define SF_QUEUED 1u  /* in the out list */
#define SF_CLOSED 2u  /* tc_conn closed: CLOSED reported, observers forgotten */
#define SF_RETRIED 4u /* tcs_flush: the current record already had its write attempt */
#define SF_TLS_UP 8u  /* TLS: the handshake completed and tcs_recv said TCS_OPEN */
#define EV_CAP 2u     /* one message event per tc_conn_recv call (conn.c) */
#ifdef TC_WITH_TLS
#define TLS_CHUNK 16384u
#define TLS_READ 2048u /* plaintext read per step */
#endif

typedef struct tcs_slot {
  tc_conn *c; /* NULL: free */
  uint32_t id;
  uint32_t flags;
  uint32_t alen;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t xoff, xlast; /* exchange ids: JS sees the connection's generation + xoff (per
                           slot: a new connection in a reused slot continues after the last
                           id its predecessor delivered, so a late RESPOND fails STALE) */
  uint8_t peer[TC_ADDR_MAX]; /* the handle the core sees: the peer's address with the slot
                                in place of the port (per-host bounds of the pipeline still
                                see the host; unique per connection), alen bytes */
#ifdef TC_WITH_TLS
  tc_tls *tls;
  uint8_t *wbuf; /* ciphertext taken out of the session, wlen bytes from wpos */
  uint32_t wlen, wpos;
  uint32_t plen, ppos; /* plaintext read from the session, not yet taken (wbuf + TLS_CHUNK) */
#endif
} tcs_slot;

struct tcs_stream {
  tc_conn_config cc;
  tcs_limits lim;
  tc_srv *srv;
  size_t conn_size;
  tcs_slot *slots;
  uint32_t *free_list; /* slot indices */
  uint32_t nfree;
  uint32_t *hash;      /* connection id -> slot + 1, open addressing, hmask + 1 entries */
  uint32_t hmask;
  uint32_t *outq;      /* slots with work (ring) */
  uint32_t oq_head, oq_count;
  uint32_t timer_pos;  /* tcs_timer: the next slot of the current run */
  uint32_t tx_pos, tx_failed, tx_retry;
  tcb_rx rx;
  tc_messaging rm;     /* the router seam (notify / resume fan out over connections) */
  tcs_stats st;
  size_t memory;
  uint8_t seed[32];
  uint32_t seed_ctr;
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
};

/* --------------------------------------------------------------------- tables */

static uint32_t hash_id(uint32_t id) {
  id ^= id >> 16;
  id *= 0x7feb352du;
  id ^= id >> 15;
  id *= 0x846ca68bu;
  id ^= id >> 16;
  return id;
}

static uint32_t slot_of(const tcs_stream *s, uint32_t id) {
  uint32_t h = hash_id(id) & s->hmask;
  while (s->hash[h] != 0u) {
    uint32_t i = s->hash[h] - 1u;
    if (s->slots[i].id == id) return i;
    h = (h + 1u) & s->hmask;
  }
  return NONE;
}

static void hash_put(tcs_stream *s, uint32_t id, uint32_t slot) {
  uint32_t h = hash_id(id) & s->hmask;
  while (s->hash[h] != 0u) h = (h + 1u) & s->hmask;
  s->hash[h] = slot + 1u;
}

/* linear probing deletion by backward shift */
static void hash_del(tcs_stream *s, uint32_t id) {
  uint32_t h = hash_id(id) & s->hmask, j;
  while (s->hash[h] != 0u && s->slots[s->hash[h] - 1u].id != id) h = (h + 1u) & s->hmask;
  if (s->hash[h] == 0u) return;
  s->hash[h] = 0;
  j = h;
  for (;;) {
    uint32_t k;
    j = (j + 1u) & s->hmask;
    if (s->hash[j] == 0u) return;
    k = hash_id(s->slots[s->hash[j] - 1u].id) & s->hmask;
    /* move j to h unless its home k lies cyclically in (h, j] */
    if ((h < j) ? (k <= h || k > j) : (k <= h && k > j)) {
      s->hash[h] = s->hash[j];
      s->hash[j] = 0;
      h = j;
    }
  }
}

static void queue_out(tcs_stream *s, uint32_t i) {
  if (s->slots[i].flags & SF_QUEUED) return;
  s->slots[i].flags |= SF_QUEUED;
  s->outq[(s->oq_head + s->oq_count) % s->lim.max_conns] = i;
  s->oq_count++;
}

/* the host address without its port (canonical: family, port_hi, port_lo, address...) */
static int same_host(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen) {
  if (alen != blen || alen < 3u) return alen == blen && memcmp(a, b, alen) == 0;
  return a[0] == b[0] && memcmp(a + 3, b + 3, alen - 3u) == 0;
}

/* ----------------------------------------------------------------- the seam */

static tc_conn *by_slot(const tcs_stream *s, uint32_t xslot) {
  uint32_t i = xslot / s->cc.max_exchanges;
  return i < s->lim.max_conns ? s->slots[i].c : NULL;
}

/* Exchange ids (conn.c): generation (1..XGEN) << 16 | exchange slot. */
#define XGEN 0x3FFFu
static uint32_t xid_to_js(tcs_slot *sl, uint32_t id) {
  uint32_t g = (id >> 16) & XGEN;
  if (g == 0u) return id;
  sl->xlast = g;
  return (id & ~(XGEN << 16)) | (((g - 1u + sl->xoff) % XGEN) + 1u) << 16;
}
static uint32_t xid_from_js(const tcs_slot *sl, uint32_t id) {
  uint32_t g = (id >> 16) & XGEN;
  if (g == 0u) return id;
  return (id & ~(XGEN << 16)) | (((g - 1u + XGEN - sl->xoff) % XGEN) + 1u) << 16;
}

/* The open (not closed) connection owning exchange slot xslot of a TX record, or NONE. */
static uint32_t live_xslot(const tcs_stream *s, uint32_t xslot) {
  uint32_t i = xslot / s->cc.max_exchanges;
  return i < s->lim.max_conns && s->slots[i].c != NULL && !(s->slots[i].flags & SF_CLOSED)
             ? i
             : NONE;
}

static uint32_t peer_slot(const uint8_t *peer) { return (uint32_t)peer[1] | (uint32_t)peer[2] << 8; }

static tc_conn *by_peer(const tcs_stream *s, const uint8_t *peer, uint32_t len) {
  uint32_t i;
  if (peer == NULL || len < 3u || len > TC_ADDR_MAX) return NULL;
  i = peer_slot(peer);
  if (i >= s->lim.max_conns || s->slots[i].c == NULL || s->slots[i].alen != len ||
      memcmp(s->slots[i].peer, peer, len) != 0)
    return NULL;
  return s->slots[i].c;
}

static int rt_respond(const tc_messaging *m, uint64_t now, uint32_t id, const tc_outmsg *r) {
  tc_conn *c = by_slot((const tcs_stream *)m->state, id & 0xFFFFu);
  return c != NULL ? tc_conn_respond(c, now, id, r) : TC_E_STALE;
}

/* A connection whose output is full misses this notification (it gets the next one): a slow
 * reader never stops the fan-out to the others. */
static int rt_notify(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                     tc_notify_result *res) {
  tcs_stream *s = (tcs_stream *)m->state;
  tc_conn *c;
  int r;
  if (res != NULL) memset(res, 0, sizeof *res);
  if (a == NULL) return TC_E_INVALID;
  c = by_peer(s, a->addr, a->addr_len);
  if (c == NULL) return TC_E_STALE;
  r = tc_conn_notify(c, now, a, res);
  if (r == TC_E_FULL) {
    s->st.notify_skipped++;
    return TC_E_STALE;
  }
  if (r == 0) queue_out(s, peer_slot(a->addr));
  return r;
}

static int rt_drop(const tc_messaging *m, uint32_t id) {
  tc_conn *c = by_slot((const tcs_stream *)m->state, id & 0xFFFFu);
  return c != NULL ? tc_conn_drop(c, id) : TC_E_STALE;
}

static const tc_messaging_ops RT_OPS = {rt_respond, rt_notify, rt_drop};

/* ------------------------------------------------------------------ create */

static void *alloc8(size_t n, size_t *total) {
  size_t r = (n + 7u) & ~(size_t)7u;
  void *p = aligned_alloc(8, r ? r : 8);
  if (p != NULL) *total += r;
  return p;
}

static void slot_free(tcs_stream *s, uint32_t i) {
  tcs_slot *sl = &s->slots[i];
  if (sl->c == NULL) return;
  free(sl->c);
  s->memory -= (s->conn_size + 7u) & ~(size_t)7u;
  sl->c = NULL;
#ifdef TC_WITH_TLS
  if (sl->tls != NULL) tc_tls_free(sl->tls);
  free(sl->wbuf);
  sl->tls = NULL;
  sl->wbuf = NULL;
  sl->wlen = sl->wpos = sl->plen = sl->ppos = 0;
#endif
}

void tcs_destroy(tcs_stream *s) {
  uint32_t i;
  if (s == NULL) return;
  if (s->slots != NULL)
    for (i = 0; i < s->lim.max_conns; i++) slot_free(s, i);
  free(s->srv);
  free(s->slots);
  free(s->free_list);
  free(s->hash);
  free(s->outq);
  free(s->rx.words);
  free(s->rx.data);
  free(s);
}

tcs_stream *tcs_create(const tc_conn_config *cc, const tc_srv_config *sc, const tcs_limits *lim,
                       const uint8_t *seed, uint32_t seed_len, int *err) {
  tcs_stream *s;
  tc_conn_config probe;
  size_t ssize;
  uint32_t i, hsize;
  *err = TC_E_INVALID;
  if (cc == NULL || sc == NULL || lim == NULL || seed == NULL || seed_len != TCA_SEED_BYTES)
    return NULL;
  probe = *cc;
  probe.exchange_base = 0;
  if (tc_conn_size(&probe) == 0 || lim->max_conns == 0u || lim->max_per_host == 0u ||
      lim->max_conns > 65535u / probe.max_exchanges ||
      sc->max_in_progress < lim->max_conns * probe.max_exchanges ||
      lim->rx_words < 2u * TCB_RX_MAX_WORDS || lim->rx_words > (1u << 28) ||
      lim->rx_bytes < probe.max_message_size + 3u || lim->rx_bytes > (1u << 30))
    return NULL;
  ssize = tc_srv_size(sc);
  if (ssize == 0) return NULL;
  *err = TC_E_FULL;
  s = (tcs_stream *)calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->memory = sizeof *s;
  s->cc = probe;
  s->lim = *lim;
  s->conn_size = tc_conn_size(&probe);
  for (hsize = 4; hsize < 2u * lim->max_conns; hsize <<= 1) {
  }
  s->hmask = hsize - 1u;
  s->srv = (tc_srv *)alloc8(ssize, &s->memory);
  s->slots = (tcs_slot *)calloc(lim->max_conns, sizeof(tcs_slot));
  s->free_list = (uint32_t *)alloc8((size_t)lim->max_conns * 4u, &s->memory);
  s->hash = (uint32_t *)calloc(hsize, 4u);
  s->outq = (uint32_t *)alloc8((size_t)lim->max_conns * 4u, &s->memory);
  s->rx.words = (uint32_t *)alloc8((size_t)lim->rx_words * 4u, &s->memory);
  s->rx.data = (uint8_t *)alloc8(lim->rx_bytes, &s->memory);
  s->memory += (size_t)lim->max_conns * sizeof(tcs_slot) + (size_t)hsize * 4u;
  if (s->srv == NULL || s->slots == NULL || s->free_list == NULL || s->hash == NULL ||
      s->outq == NULL || s->rx.words == NULL || s->rx.data == NULL) {
    tcs_destroy(s);
    return NULL;
  }
  s->rx.word_cap = lim->rx_words;
  s->rx.data_cap = lim->rx_bytes;
  for (i = 0; i < lim->max_conns; i++) s->free_list[i] = lim->max_conns - 1u - i;
  s->nfree = lim->max_conns;
  memcpy(s->seed, seed, 32);
  if (tc_srv_init(s->srv, ssize, sc, seed + 32) != 0) {
    *err = TC_E_INVALID;
    tcs_destroy(s);
    return NULL;
  }
  memset(&s->rm, 0, sizeof s->rm);
  s->rm.ops = &RT_OPS;
  s->rm.state = s;
  s->rm.transport = probe.transport;
  s->rm.flags = TC_MSGF_RELIABLE;
  s->rm.max_message_size = TC_CONN_BASE_MMS; /* notifications fit every peer */
  s->rm.max_exchanges = lim->max_conns * probe.max_exchanges;
  *err = 0;
  return s;
}

/* ------------------------------------------------------------------ records */

static int batch_room(const tcs_stream *s) {
  return s->rx.word_cap - s->rx.word_used >= 2u * TCB_RX_MAX_WORDS &&
         s->rx.data_cap - s->rx.data_used >= s->cc.max_message_size + 3u;
}

static void put(tcs_stream *s, uint32_t i, const tc_ep_event *ev, const tc_rx *rx,
                const tc_srv_req *req) {
  uint32_t *w = s->rx.words + s->rx.word_used;
  if (rx != NULL)
    tcb_rx_put(&s->rx, ev, NULL, 0, rx->data, (uint32_t)rx->len, rx->msg, rx->opts, req);
  else
    tcb_rx_put(&s->rx, ev, NULL, 0, NULL, 0, NULL, NULL, req);
  w[TCB_RX_FAMILY] = TCB_FAMILY_CONN;
  w[TCB_RX_PORT] = s->slots[i].id;
  if (ev->kind == TC_EV_REQUEST) w[TCB_RX_ID] = xid_to_js(&s->slots[i], ev->id);
}

static void conn_closed(tcs_stream *s, uint32_t i) {
  tcs_slot *sl = &s->slots[i];
  if (sl->flags & SF_CLOSED) return;
  sl->flags |= SF_CLOSED;
  (void)tc_srv_forget_peer(s->srv, sl->peer, sl->alen);
  queue_out(s, i);
}

/* One event of connection i (chunk: the data of the tc_conn_recv call). */
static void on_event(tcs_stream *s, uint32_t i, uint64_t now, const uint8_t *chunk,
                     const tc_conn_event *ce) {
  tc_conn *c = s->slots[i].c;
  tc_ep_event ev;
  tc_rx rx;
  tc_srv_req req;
  memset(&ev, 0, sizeof ev);
  ev.kind = ce->kind;
  ev.id = ce->id;
  ev.status = ce->status;
  ev.flags = ce->flags;
  memset(&req, 0, sizeof req);
  switch (ce->kind) {
  case TC_EV_REQUEST: {
    tc_messaging m;
    if (tc_conn_event_rx(c, chunk, ce, &s->msg, s->opts, TCB_OPT_CAP, &rx) != 0) {
      (void)tc_conn_drop(c, ce->id);
      return;
    }
    (void)tc_conn_messaging(c, &m);
    if (tc_srv_input(s->srv, &m, now, &rx, &ev, &req) != 0) {
      (void)tc_conn_drop(c, ce->id);
      return;
    }
    if (ev.kind == TC_EV_REQUEST) put(s, i, &ev, &rx, &req);
    return;
  }
  case TC_EV_RESPONSE:
    if (ce->length == 0u || tc_conn_event_rx(c, chunk, ce, &s->msg, s->opts, TCB_OPT_CAP, &rx) != 0)
      return;
    put(s, i, &ev, &rx, NULL);
    return;
  case TC_CONN_EV_CLOSED:
    put(s, i, &ev, NULL, NULL);
    conn_closed(s, i);
    return;
  default: /* FAILED, READY, CSM, PONG, RELEASE, ABORT: the value in ID */
    if (ce->kind != TC_EV_FAILED) ev.id = ce->value;
    put(s, i, &ev, NULL, NULL);
    return;
  }
}

/* ------------------------------------------------------------------ connections */

static int open_slot(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *addr,
                     uint32_t alen, uint32_t *slot) {
  uint32_t i, n = 0;
  tc_conn_config cfg;
  uint8_t seed[32];
  tcs_slot *sl;
  if (addr == NULL || alen < 3u || alen > TC_ADDR_MAX || slot_of(s, id) != NONE)
    return TC_E_INVALID;
  if (s->nfree == 0u) {
    s->st.refused_total++;
    return TC_E_FULL;
  }
  for (i = 0; i < s->lim.max_conns; i++)
    if (s->slots[i].c != NULL && same_host(s->slots[i].addr, s->slots[i].alen, addr, alen))
      n++;
  if (n >= s->lim.max_per_host) {
    s->st.refused_host++;
    return TC_E_FULL;
  }
  i = s->free_list[s->nfree - 1u];
  sl = &s->slots[i];
  sl->c = (tc_conn *)alloc8(s->conn_size, &s->memory);
  if (sl->c == NULL) return TC_E_FULL;
  cfg = s->cc;
  cfg.exchange_base = i * s->cc.max_exchanges;
  memcpy(seed, s->seed, 32);
  s->seed_ctr++;
  for (n = 0; n < 4; n++) seed[n] ^= (uint8_t)(s->seed_ctr >> (8 * n));
  memcpy(sl->peer, addr, alen);
  sl->peer[1] = (uint8_t)i;
  sl->peer[2] = (uint8_t)(i >> 8);
  sl->alen = alen;
  if (tc_conn_init(sl->c, s->conn_size, &cfg, seed, sl->peer, alen, now) != 0) {
    slot_free(s, i);
    return TC_E_INVALID;
  }
  s->nfree--;
  sl->id = id;
  sl->flags = 0;
  sl->xoff = (sl->xoff + sl->xlast) % XGEN;
  sl->xlast = 0;
  memcpy(sl->addr, addr, alen);
  hash_put(s, id, i);
  s->st.opened++;
  queue_out(s, i);
  *slot = i;
  return 0;
}

int tcs_open(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *addr, uint32_t alen) {
  uint32_t i;
  int r = open_slot(s, now, id, addr, alen, &i);
  return r < 0 ? r : TCS_WRITE;
}

#ifdef TC_WITH_TLS
int tcs_open_tls(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *addr, uint32_t alen,
                 tc_tls_ctx *ctx, const char *host) {
  uint32_t i;
  int r;
  if (ctx == NULL) return TC_E_INVALID;
  r = open_slot(s, now, id, addr, alen, &i);
  if (r < 0) return r;
  s->slots[i].tls = tc_tls_new(ctx, host, NULL, 0);
  s->slots[i].wbuf = (uint8_t *)malloc(TLS_CHUNK + TLS_READ);
  if (s->slots[i].tls == NULL || s->slots[i].wbuf == NULL) {
    hash_del(s, id);
    slot_free(s, i);
    s->free_list[s->nfree++] = i;
    return TC_E_FULL;
  }
  return TCS_WRITE;
}

tc_tls *tcs_tls(tcs_stream *s, uint32_t id) {
  uint32_t i = slot_of(s, id);
  return i == NONE ? NULL : s->slots[i].tls;
}
#endif

static int has_out(const tcs_stream *s, uint32_t i);

/* Plaintext data[0..len) into connection i. */
static int conn_input(tcs_stream *s, uint32_t i, uint64_t now, const uint8_t *data, uint32_t len,
                      uint32_t *used) {
  tcs_slot *sl = &s->slots[i];
  tc_conn_event ev[EV_CAP];
  *used = 0;
  while (*used < len) {
    size_t took = 0;
    int n, k;
    if (!batch_room(s)) return TCS_DELIVER;
    if (!(tc_conn_state(sl->c) == TC_CONN_CLOSED) &&
        s->cc.out_bytes - tc_conn_out_pending(sl->c) < tc_conn_send_limit(sl->c)) {
      s->st.paused++;
      queue_out(s, i);
      return TCS_PAUSE;
    }
    n = tc_conn_recv(sl->c, now, data + *used, len - *used, &took, ev, EV_CAP);
    if (n < 0) return n;
    for (k = 0; k < n; k++) on_event(s, i, now, data + *used, &ev[k]);
    *used += (uint32_t)took;
    if (tc_conn_out_pending(sl->c) > 0u || (sl->flags & SF_CLOSED)) queue_out(s, i);
    if (took == 0u && n == 0) { /* the output is short of room for automatic answers */
      s->st.paused++;
      queue_out(s, i);
      return TCS_PAUSE;
    }
  }
  return TCS_DONE;
}

int tcs_recv(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *data, uint32_t len,
             uint32_t *used) {
  uint32_t i = slot_of(s, id);
  int r;
  *used = 0;
  if (i == NONE || (data == NULL && len != 0u)) return TC_E_INVALID;
  if (s->slots[i].flags & SF_CLOSED) { /* closed (draining its output): input is ignored */
    *used = len;
    s->st.rx_bytes += len;
    return s->slots[i].flags & SF_QUEUED ? TCS_WRITE : TCS_DONE;
  }
#ifdef TC_WITH_TLS
  if (s->slots[i].tls != NULL) {
    tcs_slot *sl = &s->slots[i];
    uint8_t *plain = sl->wbuf + TLS_CHUNK;
    for (;;) {
      long got;
      if (!(sl->flags & SF_TLS_UP) && tc_tls_get_state(sl->tls) != TC_TLS_HANDSHAKING &&
          tc_tls_get_state(sl->tls) != TC_TLS_FAILED) {
        sl->flags |= SF_TLS_UP; /* before any record of the connection: the host says OPEN */
        if (has_out(s, i)) queue_out(s, i);
        return TCS_OPEN;
      }
      if (sl->ppos < sl->plen) { /* decrypted bytes first */
        uint32_t u = 0;
        r = conn_input(s, i, now, plain + sl->ppos, sl->plen - sl->ppos, &u);
        sl->ppos += u;
        if (r != TCS_DONE) return r;
        continue;
      }
      got = tc_tls_read(sl->tls, plain, TLS_READ);
      if (got > 0) {
        sl->ppos = 0;
        sl->plen = (uint32_t)got;
        continue;
      }
      if (got < 0 || *used >= len) {
        if (got >= 0) break;
      } else {
        got = tc_tls_feed(sl->tls, data + *used, len - *used);
        if (got > 0) {
          *used += (uint32_t)got;
          s->st.rx_bytes += (uint64_t)got;
          continue;
        }
        if (got == 0) break;
      }
      /* the session failed (handshake, verification, a bad record): the connection ends */
      if (!(sl->flags & SF_CLOSED)) {
        tc_ep_event ev;
        if (tc_conn_state(sl->c) != TC_CONN_CLOSED) (void)tc_conn_abort(sl->c, now, NULL);
        memset(&ev, 0, sizeof ev);
        ev.kind = TC_CONN_EV_CLOSED;
        ev.status = (int32_t)got;
        ev.flags = TCB_CONN_EVF_TLSERR;
        if (s->rx.word_cap - s->rx.word_used >= TCB_RX_MAX_WORDS) put(s, i, &ev, NULL, NULL);
        conn_closed(s, i);
      }
      *used = len;
      return TCS_WRITE;
    }
    if (has_out(s, i)) queue_out(s, i);
    return sl->flags & SF_QUEUED ? TCS_WRITE : TCS_DONE;
  }
#endif
  r = conn_input(s, i, now, data, len, used);
  s->st.rx_bytes += *used;
  if (r == TCS_DONE && (s->slots[i].flags & SF_QUEUED)) return TCS_WRITE;
  return r;
}

static int has_out(const tcs_stream *s, uint32_t i) {
  const tcs_slot *sl = &s->slots[i];
#ifdef TC_WITH_TLS
  if (sl->tls != NULL) {
    tc_tls_state st = tc_tls_get_state(sl->tls);
    return sl->wlen > sl->wpos || tc_tls_pending_out(sl->tls) > 0u ||
           (st == TC_TLS_OPEN && tc_conn_out_pending(sl->c) > 0u) ||
           ((sl->flags & SF_CLOSED) && (st == TC_TLS_OPEN || st == TC_TLS_PEER_CLOSED));
  }
#endif
  return tc_conn_out_pending(sl->c) > 0u;
}

int tcs_next_out(tcs_stream *s, uint32_t *id) {
  while (s->oq_count > 0u) {
    uint32_t i = s->outq[s->oq_head];
    tcs_slot *sl = &s->slots[i];
    s->oq_head = (s->oq_head + 1u) % s->lim.max_conns;
    s->oq_count--;
    sl->flags &= ~SF_QUEUED;
    if (sl->c == NULL) continue;
    *id = sl->id;
    if (has_out(s, i)) return TCS_OUT_WRITE;
    if (sl->flags & SF_CLOSED) return TCS_OUT_CLOSE;
  }
  return TCS_OUT_NONE;
}

const uint8_t *tcs_out(tcs_stream *s, uint32_t id, uint32_t *len) {
  uint32_t i = slot_of(s, id);
  *len = 0;
  if (i == NONE) return NULL;
#ifdef TC_WITH_TLS
  if (s->slots[i].tls != NULL) {
    tcs_slot *sl = &s->slots[i];
    if (sl->wpos >= sl->wlen) {
      const uint8_t *p;
      uint32_t n;
      long t;
      sl->wpos = sl->wlen = 0;
      /* plaintext into the session while it takes it */
      while (tc_tls_get_state(sl->tls) == TC_TLS_OPEN && (p = tc_conn_out(sl->c, &n)) != NULL &&
             n > 0u) {
        long w = tc_tls_write(sl->tls, p, n);
        if (w <= 0) break;
        (void)tc_conn_out_done(sl->c, (uint32_t)w);
      }
      /* closed and its plaintext sealed: close_notify follows the last record */
      if ((sl->flags & SF_CLOSED) &&
          (tc_tls_get_state(sl->tls) == TC_TLS_PEER_CLOSED ||
           (tc_tls_get_state(sl->tls) == TC_TLS_OPEN && tc_conn_out_pending(sl->c) == 0u)))
        (void)tc_tls_close(sl->tls);
      t = tc_tls_take_out(sl->tls, sl->wbuf, TLS_CHUNK);
      if (t > 0) sl->wlen = (uint32_t)t;
    }
    *len = sl->wlen - sl->wpos;
    return *len ? sl->wbuf + sl->wpos : NULL;
  }
#endif
  return tc_conn_out(s->slots[i].c, len);
}

int tcs_written(tcs_stream *s, uint32_t id, uint32_t n) {
  uint32_t i = slot_of(s, id);
  if (i == NONE) return TC_E_INVALID;
#ifdef TC_WITH_TLS
  if (s->slots[i].tls != NULL) {
    tcs_slot *sl = &s->slots[i];
    if (n > sl->wlen - sl->wpos) return TC_E_INVALID;
    sl->wpos += n;
  } else
#endif
      if (tc_conn_out_done(s->slots[i].c, n) != 0)
    return TC_E_INVALID;
  s->st.tx_bytes += n;
  if (has_out(s, i)) {
    queue_out(s, i);
    return TCS_WRITE;
  }
  if (s->slots[i].flags & SF_CLOSED) queue_out(s, i);
  return TCS_DONE;
}

int tcs_close_status(tcs_stream *s, uint64_t now, uint32_t id, int32_t status, uint32_t flags) {
  uint32_t i = slot_of(s, id);
  (void)now;
  if (i == NONE) return TC_E_INVALID;
  if (!(s->slots[i].flags & SF_CLOSED)) {
    if (s->rx.word_cap - s->rx.word_used >= TCB_RX_MAX_WORDS) {
      tc_ep_event ev;
      memset(&ev, 0, sizeof ev);
      ev.kind = TC_CONN_EV_CLOSED;
      ev.status = status;
      ev.flags = flags;
      put(s, i, &ev, NULL, NULL);
    }
    s->slots[i].flags |= SF_CLOSED;
    (void)tc_srv_forget_peer(s->srv, s->slots[i].peer, s->slots[i].alen);
  }
  hash_del(s, id);
  slot_free(s, i);
  s->slots[i].flags = 0;
  s->free_list[s->nfree++] = i;
  s->st.closed++;
  return TCS_DONE;
}

int tcs_close(tcs_stream *s, uint64_t now, uint32_t id) { return tcs_close_status(s, now, id, 0, 0); }

/* The host ends connection i: CLOSED (status 0) now, then its output drains. */
static int host_end(tcs_stream *s, uint32_t i) {
  if (!(s->slots[i].flags & SF_CLOSED)) {
    tc_ep_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = TC_CONN_EV_CLOSED;
    put(s, i, &ev, NULL, NULL);
    conn_closed(s, i);
  }
  queue_out(s, i);
  return TCS_WRITE;
}

int tcs_shutdown(tcs_stream *s, uint64_t now, uint32_t id) {
  uint32_t i = slot_of(s, id);
  (void)now;
  if (i == NONE) return TC_E_INVALID;
  if (!(s->slots[i].flags & SF_CLOSED) && s->rx.word_cap - s->rx.word_used < TCB_RX_MAX_WORDS)
    return TCS_DELIVER;
  return host_end(s, i);
}

int tcs_abort(tcs_stream *s, uint64_t now, uint32_t id, const char *diag) {
  uint32_t i = slot_of(s, id);
  if (i == NONE) return TC_E_INVALID;
  if (!(s->slots[i].flags & SF_CLOSED)) {
    if (s->rx.word_cap - s->rx.word_used < TCB_RX_MAX_WORDS) return TCS_DELIVER;
    if (tc_conn_state(s->slots[i].c) != TC_CONN_CLOSED)
      (void)tc_conn_abort(s->slots[i].c, now, diag);
  }
  return host_end(s, i);
}

int tcs_release(tcs_stream *s, uint64_t now, uint32_t id, uint32_t hold_off_s, const char *diag) {
  uint32_t i = slot_of(s, id);
  int r;
  if (i == NONE) return TC_E_INVALID;
  if (s->slots[i].flags & SF_CLOSED) return TC_E_STALE;
  r = tc_conn_release(s->slots[i].c, now, NULL, 0, hold_off_s, diag);
  if (r == 0) {
    queue_out(s, i);
    return TCS_WRITE;
  }
  return r;
}

int tcs_host_event(tcs_stream *s, uint32_t kind, uint32_t id, const uint8_t *addr, uint32_t alen,
                   int32_t status, uint32_t flags, const uint8_t *data, uint32_t dlen) {
  uint32_t *w;
  if ((kind != TCB_CONN_EV_OPEN && kind != TC_CONN_EV_CLOSED) || (data == NULL && dlen != 0u) ||
      (kind == TCB_CONN_EV_OPEN && (addr == NULL || alen < 3u || alen > TC_ADDR_MAX)))
    return TC_E_INVALID;
  if (kind != TCB_CONN_EV_OPEN) dlen = 0;
  if (s->rx.word_cap - s->rx.word_used < TCB_RX_WORDS ||
      s->rx.data_cap - s->rx.data_used < dlen + 3u)
    return TC_E_FULL;
  w = s->rx.words + s->rx.word_used;
  memset(w, 0, TCB_RX_WORDS * 4u);
  w[TCB_RX_KIND] = kind;
  w[TCB_RX_STATUS] = (uint32_t)status;
  w[TCB_RX_FLAGS] = flags;
  if (kind == TCB_CONN_EV_OPEN) {
    w[TCB_RX_ID] = id;
    tcb_addr_to_words(addr, alen, w + TCB_RX_FAMILY);
    if (dlen > 0u) memcpy(s->rx.data + s->rx.data_used, data, dlen);
    w[TCB_RX_DATA] = s->rx.data_used;
    w[TCB_RX_LEN] = dlen;
    s->rx.data_used += (dlen + 3u) & ~3u;
  } else {
    w[TCB_RX_FAMILY] = TCB_FAMILY_CONN;
    w[TCB_RX_PORT] = id;
  }
  s->rx.word_used += TCB_RX_WORDS;
  s->rx.count++;
  return 0;
}

/* ------------------------------------------------------------------ time */

int tcs_timer(tcs_stream *s, uint64_t now) {
  tc_conn_event ev[EV_CAP];
  if (s->timer_pos == 0u && tc_srv_next_deadline(s->srv) <= now) (void)tc_srv_timer(s->srv, now);
  s->st.timer_runs++;
  while (s->timer_pos < s->lim.max_conns) {
    uint32_t i = s->timer_pos;
    tcs_slot *sl = &s->slots[i];
    int n, k;
    if (sl->c == NULL || (sl->flags & SF_CLOSED) || tc_conn_next_deadline(sl->c) > now) {
      s->timer_pos++;
      continue;
    }
    if (!batch_room(s)) return TCS_DELIVER;
    n = tc_conn_timer(sl->c, now, ev, EV_CAP);
    for (k = 0; k < n; k++) on_event(s, i, now, NULL, &ev[k]);
    if (tc_conn_out_pending(sl->c) > 0u || (sl->flags & SF_CLOSED)) queue_out(s, i);
    if (n < (int)EV_CAP || tc_conn_next_deadline(sl->c) > now) s->timer_pos++;
  }
  s->timer_pos = 0;
  return s->oq_count > 0u ? TCS_WRITE : TCS_DONE;
}

uint64_t tcs_deadline(const tcs_stream *s) {
  uint64_t d = tc_srv_next_deadline(s->srv);
  uint32_t i;
  for (i = 0; i < s->lim.max_conns; i++)
    if (s->slots[i].c != NULL && !(s->slots[i].flags & SF_CLOSED)) {
      uint64_t t = tc_conn_next_deadline(s->slots[i].c);
      if (t < d) d = t;
    }
  return d;
}

/* ------------------------------------------------------------------ TX records */

static uint32_t conn_arg(const tcs_stream *s, const uint32_t *fam) {
  uint32_t i = fam[0] == TCB_FAMILY_CONN ? slot_of(s, fam[1]) : NONE;
  return i != NONE && !(s->slots[i].flags & SF_CLOSED) ? i : NONE;
}

int tcs_flush(tcs_stream *s, uint64_t now, uint32_t *w, uint32_t nwords, const uint8_t *b,
              uint32_t nbytes) {
  if (s->tx_pos == 0u) s->tx_failed = 0;
  if (s->tx_pos > nwords || (nwords > 0u && (w == NULL || (nbytes > 0u && b == NULL)))) {
    s->tx_pos = 0;
    return TC_E_INVALID;
  }
  if (tc_srv_pending(s->srv) > 0u) (void)tc_srv_resume(s->srv, &s->rm, now);
  while (s->tx_pos < nwords) {
    uint32_t *r = w + s->tx_pos;
    uint32_t left = nwords - s->tx_pos, size = 0, i = NONE;
    int rc;
    switch (r[0]) {
    case TCB_TX_RESPOND: {
      tc_msg m;
      tc_outmsg out;
      tc_messaging cm;
      tc_conn *c;
      size = tcb_rec_size(r, left, TCB_TX_RESPOND_WORDS, TCB_TX_RESPOND_OPT_COUNT);
      if (size == 0) goto bad;
      rc = tcb_resp_msg(r, TCB_TX_RESPOND_CODE, TCB_TX_RESPOND_PAYLOAD_OFF,
                        TCB_TX_RESPOND_PAYLOAD_LEN, TCB_TX_RESPOND_OPT_COUNT,
                        TCB_TX_RESPOND_WORDS, b, nbytes, &m, &out);
      if (rc != 0) break;
      i = live_xslot(s, r[TCB_TX_RESPOND_ID] & 0xFFFFu);
      c = i != NONE ? s->slots[i].c : NULL;
      if (c == NULL || tc_conn_messaging(c, &cm) != 0) {
        rc = TC_E_STALE;
        s->st.stale_ids++;
        i = NONE;
        break;
      }
      rc = tc_srv_respond(s->srv, &cm, now, xid_from_js(&s->slots[i], r[TCB_TX_RESPOND_ID]), &out,
                          r[TCB_TX_RESPOND_RESOURCE]);
      if (rc == TC_E_STALE) s->st.stale_ids++;
      if (rc == TC_E_FULL) {
        if (!s->tx_retry) { /* write that connection's output, then once more */
          s->tx_retry = 1;
          queue_out(s, i);
          return TCS_WRITE;
        }
        s->st.respond_full++;
      }
      break;
    }
    case TCB_TX_REQUEST: {
      tc_msg m;
      tc_req_args ra;
      tc_req_result res;
      size = tcb_rec_size(r, left, TCB_TX_REQUEST_WORDS, TCB_TX_REQUEST_OPT_COUNT);
      if (size == 0) goto bad;
      r[TCB_TX_REQUEST_ID] = 0;
      i = conn_arg(s, r + TCB_TX_REQUEST_FAMILY);
      if (i == NONE) {
        rc = TC_E_STALE;
        break;
      }
      if (tcb_req_args(r, b, nbytes, &m, &ra) != 0) {
        rc = TC_E_INVALID;
        break;
      }
      ra.addr = s->slots[i].peer;
      ra.addr_len = s->slots[i].alen;
      rc = tc_conn_request(s->slots[i].c, now, &ra, &res);
      if (rc == TC_E_FULL && !s->tx_retry && tc_conn_out_pending(s->slots[i].c) > 0u) {
        s->tx_retry = 1;
        queue_out(s, i);
        return TCS_WRITE;
      }
      r[TCB_TX_REQUEST_ID] = rc == 0 ? res.id : 0;
      break;
    }
    case TCB_TX_CANCEL:
    case TCB_TX_DROP:
      if (left < TCB_TX_SMALL_WORDS) goto bad;
      size = TCB_TX_SMALL_WORDS;
      if (r[0] == TCB_TX_CANCEL) {
        i = slot_of(s, r[TCB_TX_SMALL_CONN]);
        rc = i == NONE ? TC_E_STALE : tc_conn_cancel(s->slots[i].c, r[TCB_TX_SMALL_ID]);
        i = NONE;
      } else {
        tc_messaging cm;
        uint32_t x = live_xslot(s, r[TCB_TX_SMALL_ID] & 0xFFFFu);
        rc = x == NONE || tc_conn_messaging(s->slots[x].c, &cm) != 0
                 ? TC_E_STALE
                 : tc_srv_drop(s->srv, &cm, xid_from_js(&s->slots[x], r[TCB_TX_SMALL_ID]));
        if (rc == TC_E_STALE) s->st.stale_ids++;
      }
      break;
    case TCB_TX_PING: {
      uint32_t pid = 0;
      if (left < TCB_TX_PING_WORDS) goto bad;
      size = TCB_TX_PING_WORDS;
      r[TCB_TX_PING_ID] = 0;
      i = conn_arg(s, r + TCB_TX_PING_FAMILY);
      rc = i == NONE ? TC_E_STALE : tc_conn_ping(s->slots[i].c, now, 0, &pid);
      r[TCB_TX_PING_ID] = rc == 0 ? pid : 0;
      break;
    }
    case TCB_TX_NOTIFY: {
      tc_msg m;
      tc_outmsg out;
      size = tcb_rec_size(r, left, TCB_TX_NOTIFY_WORDS, TCB_TX_NOTIFY_OPT_COUNT);
      if (size == 0) goto bad;
      rc = tcb_resp_msg(r, TCB_TX_NOTIFY_CODE, TCB_TX_NOTIFY_PAYLOAD_OFF,
                        TCB_TX_NOTIFY_PAYLOAD_LEN, TCB_TX_NOTIFY_OPT_COUNT, TCB_TX_NOTIFY_WORDS,
                        b, nbytes, &m, &out);
      if (rc != 0) break;
      rc = tc_srv_notify(s->srv, &s->rm, now, r[TCB_TX_NOTIFY_RESOURCE], 0, &out);
      if (rc > 0) rc = 0;
      break;
    }
    default:
      goto bad;
    }
    if (i != NONE && s->slots[i].c != NULL && tc_conn_out_pending(s->slots[i].c) > 0u)
      queue_out(s, i);
    r[TCB_TX_SMALL_RC] = (uint32_t)rc;
    if (rc != 0) s->tx_failed++;
    s->tx_pos += size;
    s->tx_retry = 0;
  }
  s->tx_pos = 0;
  return TCS_DONE;
bad:
  s->tx_pos = 0;
  s->tx_retry = 0;
  return TC_E_INVALID;
}

uint32_t tcs_tx_failed(const tcs_stream *s) { return s->tx_failed; }

void tcs_delivered(tcs_stream *s) {
  if (s->rx.count > 0u) {
    s->st.batches++;
    s->st.records += s->rx.count;
  }
  tcb_rx_reset(&s->rx);
}

const tcb_rx *tcs_batch(const tcs_stream *s) { return &s->rx; }

int tcs_pending(const tcs_stream *s) { return s->rx.count > 0u || s->oq_count > 0u; }

int tcs_read_body(tcs_stream *s, uint32_t body_id, uint8_t *out, uint32_t cap) {
  return tc_srv_read_body(s->srv, body_id, out, cap);
}

tc_srv *tcs_srv(tcs_stream *s) { return s->srv; }

const tcs_stats *tcs_get_stats(tcs_stream *s) {
  s->st.conns = s->lim.max_conns - s->nfree;
  return &s->st;
}

int tcs_conn_stats(const tcs_stream *s, uint32_t id, tc_conn_stats *out) {
  uint32_t i = slot_of(s, id);
  if (i == NONE) return TC_E_INVALID;
  tc_conn_get_stats(s->slots[i].c, out);
  return 0;
}

uint32_t tcs_conn_state(const tcs_stream *s, uint32_t id) {
  uint32_t i = slot_of(s, id);
  return i == NONE ? 0u : tc_conn_state(s->slots[i].c);
}

size_t tcs_memory(const tcs_stream *s) { return s->memory; }

/*
 * dtls.c — CoAP over DTLS 1.2 between the UDP socket and the datagram driver (dtls.h).
 */
#include "dtls.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define NEVER UINT64_MAX
#define OUT_ITEMS 1024u
#define OUT_BYTES (2u * 1024u * 1024u)
#define PT_CAP 65536u
#define HVR_CAP 512u
#define MAX_FAILS 32u
#define SWEEP_MAX_MS 10000u

typedef struct host {
  struct host *next;
  uint32_t hash, count;
  uint8_t len;
  uint8_t ip[17];
} host;

typedef struct sess {
  struct sess *next;          /* hash chain */
  struct sess *hprev, *hnext; /* the half-open list (oldest first) while handshaking */
  tc_tls *tls;
  host *h;
  uint64_t due, born, last;
  uint32_t hash, qlen;
  uint8_t alen, open, half, closing, heard;
  uint8_t addr[TC_ADDR_MAX];
  uint8_t *q; /* client: plaintext waiting for the handshake, [u16 len][bytes]... */
} sess;

typedef struct fail_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen;
  int err;
} fail_rec;

struct tcdt {
  tcd_dgram *d;
  tc_tls_ctx *ctx;
  int server;
  char servername[256];
  tcdt_limits lim;
  sess **tab;
  uint32_t tab_mask;
  host **htab;
  uint32_t htab_mask;
  sess *ho_head, *ho_tail;
  tc_txq out;
  uint8_t *pt;
  sess *rs;       /* tcdt_recv resumes delivering this session's plaintext */
  uint32_t rs_len;
  int rs_active, rs_have;
  uint32_t seal_pos;
  fail_rec fails[MAX_FAILS];
  uint32_t nfails;
  int timer_phase;
  uint64_t next_sweep;
  uint32_t seed;
  tcdt_stats st;
};

/* ------------------------------------------------------------------ tables */

static uint32_t fnv(uint32_t h, const uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* The host key of a canonical address: family byte + IP bytes (no port, no scope). */
static uint8_t host_key(const uint8_t *addr, uint32_t alen, uint8_t *k) {
  uint8_t n = addr[0] == 4u && alen >= TCB_ADDR4_LEN ? 4 : (alen >= TCB_ADDR6_LEN ? 16 : 0);
  k[0] = addr[0];
  if (n > 0) memcpy(k + 1, addr + 3, n);
  return (uint8_t)(n + 1);
}

static host *host_ref(tcdt *t, const uint8_t *addr, uint32_t alen, int create) {
  uint8_t k[17];
  uint8_t n = host_key(addr, alen, k);
  uint32_t h = fnv(t->seed ^ 0x9e3779b9u, k, n);
  host **pp = &t->htab[h & t->htab_mask], *e;
  for (e = *pp; e != NULL; e = e->next)
    if (e->hash == h && e->len == n && memcmp(e->ip, k, n) == 0) return e;
  if (!create) return NULL;
  e = (host *)calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->hash = h;
  e->len = n;
  memcpy(e->ip, k, n);
  e->next = *pp;
  *pp = e;
  t->st.hosts++;
  return e;
}

static void host_unref(tcdt *t, host *e) {
  if (e == NULL || --e->count > 0) return;
  host **pp = &t->htab[e->hash & t->htab_mask];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  free(e);
  t->st.hosts--;
}

static sess *sess_find(tcdt *t, const uint8_t *addr, uint32_t alen, uint32_t h) {
  sess *s;
  for (s = t->tab[h & t->tab_mask]; s != NULL; s = s->next)
    if (s->hash == h && s->alen == alen && memcmp(s->addr, addr, alen) == 0) return s;
  return NULL;
}

static void ho_unlink(tcdt *t, sess *s) {
  if (!s->half) return;
  if (s->hprev != NULL) s->hprev->hnext = s->hnext;
  else t->ho_head = s->hnext;
  if (s->hnext != NULL) s->hnext->hprev = s->hprev;
  else t->ho_tail = s->hprev;
  s->hprev = s->hnext = NULL;
  s->half = 0;
  t->st.half_open--;
}

static void sess_free(tcdt *t, sess *s) {
  sess **pp = &t->tab[s->hash & t->tab_mask];
  while (*pp != s) pp = &(*pp)->next;
  *pp = s->next;
  ho_unlink(t, s);
  host_unref(t, s->h);
  if (t->rs == s) {
    t->rs = NULL;
    t->rs_have = 0;
  }
  tc_tls_free(s->tls);
  free(s->q);
  free(s);
  t->st.sessions--;
}

/* A session for addr around tls (taken: freed on failure). Bounds: total, per host; a full
 * half-open table evicts its oldest entry. */
static sess *sess_new(tcdt *t, uint64_t now, const uint8_t *addr, uint32_t alen, uint32_t h,
                      tc_tls *tls) {
  host *e;
  sess *s;
  if (t->st.half_open >= t->lim.max_half_open && t->ho_head != NULL) {
    t->st.evicted++;
    sess_free(t, t->ho_head);
  }
  e = host_ref(t, addr, alen, 0);
  if (t->st.sessions >= t->lim.max_sessions || (e != NULL && e->count >= t->lim.max_per_host)) {
    t->st.refused++;
    tc_tls_free(tls);
    return NULL;
  }
  if (e == NULL) e = host_ref(t, addr, alen, 1);
  s = e != NULL ? (sess *)calloc(1, sizeof *s) : NULL;
  if (s == NULL) {
    if (e != NULL && e->count == 0) {
      e->count = 1;
      host_unref(t, e);
    }
    t->st.refused++;
    tc_tls_free(tls);
    return NULL;
  }
  e->count++;
  s->h = e;
  s->tls = tls;
  s->hash = h;
  s->alen = (uint8_t)alen;
  memcpy(s->addr, addr, alen);
  s->born = s->last = now;
  s->due = NEVER;
  s->next = t->tab[h & t->tab_mask];
  t->tab[h & t->tab_mask] = s;
  s->half = 1; /* every session starts with a handshake */
  s->hprev = t->ho_tail;
  if (t->ho_tail != NULL) t->ho_tail->hnext = s;
  else t->ho_head = s;
  t->ho_tail = s;
  t->st.half_open++;
  if (t->st.sessions++ == 0) {
    uint32_t iv = t->lim.idle_ms / 4u;
    t->next_sweep = now + (iv < SWEEP_MAX_MS ? (iv > 0 ? iv : 1) : SWEEP_MAX_MS);
  }
  return s;
}

/* ------------------------------------------------------------------ output */

static int out_half_full(const tcdt *t) {
  return t->out.count * 2u >= t->out.item_cap || t->out.used * 2u >= t->out.cap;
}

/* Appends addr to the out buffer; returns its offset, or UINT32_MAX without room for it and
 * `need` more bytes. */
static uint32_t out_addr(tcdt *t, const uint8_t *addr, uint32_t alen, uint32_t need) {
  uint32_t off = t->out.used;
  if (t->out.count >= t->out.item_cap || t->out.cap - t->out.used < alen + need) return UINT32_MAX;
  memcpy(t->out.buf + off, addr, alen);
  return off;
}

static void out_commit(tcdt *t, uint32_t aoff, uint32_t alen, uint32_t len) {
  tc_tx *x = &t->out.items[t->out.count++];
  x->addr_offset = aoff;
  x->addr_length = alen;
  x->offset = aoff + alen;
  x->length = len;
  t->out.used = aoff + alen + len;
  t->st.bytes_out += len;
}

static void push_out(tcdt *t, const uint8_t *addr, uint32_t alen, const uint8_t *data, uint32_t len) {
  uint32_t off = out_addr(t, addr, alen, len);
  if (off == UINT32_MAX) return;
  memcpy(t->out.buf + off + alen, data, len);
  out_commit(t, off, alen, len);
}

/* Moves the session's pending datagrams to the out queue (what finds no room stays queued in
 * the session and leaves with its next drain). */
static void drain(tcdt *t, sess *s) {
  while (tc_tls_pending_out(s->tls) > 0) {
    uint32_t off = out_addr(t, s->addr, s->alen, 1);
    long n;
    if (off == UINT32_MAX) return;
    n = tc_tls_take_out(s->tls, t->out.buf + off + s->alen, t->out.cap - off - s->alen);
    if (n <= 0) return;
    out_commit(t, off, s->alen, (uint32_t)n);
    if (!s->open) t->st.handshake_bytes += (uint64_t)n;
  }
}

/* ------------------------------------------------------------------ failures */

static void add_fail(tcdt *t, const uint8_t *addr, uint32_t alen, int err) {
  fail_rec *f;
  if (t->nfails >= MAX_FAILS) return; /* those requests time out instead */
  f = &t->fails[t->nfails++];
  memcpy(f->addr, addr, alen);
  f->alen = alen;
  f->err = err;
}

/* Fails the requests outstanding to each failed peer: TC_EV_FAILED records with the TLS code. */
static int run_fails(tcdt *t, uint64_t now) {
  tcd_dgram *d = t->d;
  while (t->nfails > 0) {
    fail_rec *f = &t->fails[0];
    for (;;) {
      uint32_t room = (d->rx.word_cap - d->rx.word_used) / TCB_RX_WORDS, cap, i;
      int n;
      if (room == 0) return TCD_DELIVER;
      cap = room < TCD_TIMER_EVENTS ? room : TCD_TIMER_EVENTS;
      n = tc_ep_unreachable(d->ep, now, f->addr, f->alen, d->evs, cap);
      if (n < 0) break;
      for (i = 0; i < (uint32_t)n; i++) {
        d->evs[i].status = f->err;
        tcb_rx_put(&d->rx, &d->evs[i], NULL, 0, NULL, 0, NULL, NULL, NULL);
      }
      if ((uint32_t)n < cap) break;
    }
    memmove(&t->fails[0], &t->fails[1], (t->nfails - 1) * sizeof t->fails[0]);
    t->nfails--;
  }
  return TCD_DONE;
}

/* ------------------------------------------------------------------ session state */

static void write_one(tcdt *t, sess *s, const uint8_t *p, uint32_t len) {
  long r = tc_tls_write(s->tls, p, len);
  if (r > 0) t->st.records_out++;
  else t->st.dropped_out++;
  drain(t, s);
}

/* After anything happened to s: handshake done (queued plaintext leaves), failure, close.
 * Returns 0 when s was freed. */
static int update(tcdt *t, sess *s, uint64_t now) {
  tc_tls_state st = tc_tls_get_state(s->tls);
  if (st == TC_TLS_OPEN && !s->open) {
    uint32_t off = 0;
    s->open = 1;
    ho_unlink(t, s);
    s->due = NEVER;
    t->st.handshakes++;
    if (tc_tls_session_reused(s->tls)) t->st.resumed++;
    while (off + 2u <= s->qlen) {
      uint32_t n = (uint32_t)s->q[off] << 8 | s->q[off + 1];
      write_one(t, s, s->q + off + 2, n);
      off += 2u + n;
    }
    free(s->q);
    s->q = NULL;
    s->qlen = 0;
    return 1;
  }
  if (st == TC_TLS_FAILED) {
    int err = tc_tls_error(s->tls);
    drain(t, s); /* our alert */
    if (s->open) t->st.closed++;
    else t->st.handshake_failures++;
    add_fail(t, s->addr, s->alen, err < 0 ? err : TC_TLS_E_HANDSHAKE);
    sess_free(t, s);
    return 0;
  }
  if (st == TC_TLS_PEER_CLOSED || st == TC_TLS_CLOSED) {
    if (st == TC_TLS_PEER_CLOSED) {
      tc_tls_close(s->tls);
      drain(t, s);
    }
    t->st.closed++;
    if (!t->server) add_fail(t, s->addr, s->alen, TC_TLS_E_CLOSED);
    sess_free(t, s);
    return 0;
  }
  if (st == TC_TLS_HANDSHAKING) {
    long ms = tc_tls_timeout_ms(s->tls);
    s->due = ms < 0 ? NEVER : now + (uint64_t)ms;
  }
  return 1;
}

/* ------------------------------------------------------------------ API */

tcdt *tcdt_create(tcd_dgram *d, tc_tls_ctx *ctx, int server, const char *servername,
                  const tcdt_limits *lim, int *err) {
  tcdt *t;
  uint32_t n;
  *err = TC_E_INVALID;
  if (d == NULL || ctx == NULL || (servername != NULL && strlen(servername) >= sizeof t->servername)) {
    tc_tls_ctx_free(ctx);
    return NULL;
  }
  *err = TC_E_FULL;
  t = (tcdt *)calloc(1, sizeof *t);
  if (t == NULL) {
    tc_tls_ctx_free(ctx);
    return NULL;
  }
  t->d = d;
  t->ctx = ctx;
  t->server = server != 0;
  if (servername != NULL) strcpy(t->servername, servername);
  if (lim != NULL) t->lim = *lim;
  if (t->lim.max_sessions == 0) t->lim.max_sessions = 4096;
  if (t->lim.max_per_host == 0) t->lim.max_per_host = 1024;
  if (t->lim.max_half_open == 0) t->lim.max_half_open = 256;
  if (t->lim.idle_ms == 0) t->lim.idle_ms = 600000;
  if (t->lim.handshake_ms == 0) t->lim.handshake_ms = t->server ? 30000 : 15000;
  if (t->lim.queue_bytes == 0) t->lim.queue_bytes = 16384;
  if (t->lim.max_sessions > (1u << 24)) t->lim.max_sessions = 1u << 24;
  for (n = 64; n < t->lim.max_sessions * 2u; n <<= 1) {}
  t->tab = (sess **)calloc(n, sizeof *t->tab);
  t->tab_mask = n - 1;
  t->htab = (host **)calloc(n, sizeof *t->htab);
  t->htab_mask = n - 1;
  t->out.buf = (uint8_t *)malloc(OUT_BYTES);
  t->out.cap = OUT_BYTES;
  t->out.items = (tc_tx *)malloc(OUT_ITEMS * sizeof(tc_tx));
  t->out.item_cap = OUT_ITEMS;
  t->pt = (uint8_t *)malloc(PT_CAP);
  t->next_sweep = NEVER;
  memcpy(&t->seed, (const void *)&t, sizeof t->seed < sizeof t ? sizeof t->seed : sizeof t);
  t->seed ^= 2166136261u;
  if (t->tab == NULL || t->htab == NULL || t->out.buf == NULL || t->out.items == NULL || t->pt == NULL) {
    tcdt_destroy(t);
    return NULL;
  }
  *err = 0;
  return t;
}

void tcdt_destroy(tcdt *t) {
  uint32_t i;
  if (t == NULL) return;
  if (t->tab != NULL)
    for (i = 0; i <= t->tab_mask; i++)
      while (t->tab[i] != NULL) sess_free(t, t->tab[i]);
  free(t->tab);
  free(t->htab);
  free(t->out.buf);
  free(t->out.items);
  free(t->pt);
  tc_tls_ctx_free(t->ctx);
  free(t);
}

tc_txq *tcdt_out(tcdt *t) { return &t->out; }

void tcdt_out_sent(tcdt *t, uint32_t sent, uint32_t send_calls) {
  t->d->stats.drv.sent += sent;
  t->d->stats.drv.send_calls += send_calls;
  t->out.count = 0;
  t->out.used = 0;
}

/* A ClientHello of epoch 0 (a new handshake), by its record and handshake headers. */
static int is_client_hello(const uint8_t *p, uint32_t len) {
  return len >= 25u && p[0] == 22u && p[1] == 0xFEu && p[3] == 0 && p[4] == 0 && p[13] == 1u;
}

/* The server side of a datagram from a peer without a (usable) session: cookie exchange. */
static int listen_peer(tcdt *t, uint64_t now, const uint8_t *addr, uint32_t alen, uint32_t h,
                       const uint8_t *data, uint32_t len, sess *old) {
  uint8_t hvr[HVR_CAP];
  size_t hl = 0;
  tc_tls *ns = NULL;
  sess *s;
  int r = tc_dtls_listen(t->ctx, data, len, addr, alen, hvr, sizeof hvr, &hl, &ns);
  if (r == TC_DTLS_HELLO_VERIFY) {
    push_out(t, addr, alen, hvr, (uint32_t)hl);
    t->st.hello_verify++;
    return TCD_DONE;
  }
  if (r != TC_DTLS_ACCEPT) {
    t->st.dropped_in++;
    return TCD_DONE;
  }
  if (old != NULL) sess_free(t, old); /* the peer proved its address: a restarted client */
  s = sess_new(t, now, addr, alen, h, ns);
  if (s == NULL) return TCD_DONE;
  t->st.handshake_bytes += len;
  drain(t, s);
  update(t, s, now);
  return TCD_DONE;
}

int tcdt_recv(tcdt *t, uint64_t now, const uint8_t *addr, uint32_t alen, const uint8_t *data,
              uint32_t len) {
  sess *s;
  int a;
  if (alen < 1u || alen > TC_ADDR_MAX) return TC_E_INVALID;
  if ((a = run_fails(t, now)) != TCD_DONE) return a;
  if (out_half_full(t)) return TCD_SEND;
  if (!t->rs_active) {
    uint32_t h = fnv(t->seed, addr, alen);
    t->st.bytes_in += len;
    s = sess_find(t, addr, alen, h);
    if (s == NULL || (t->server && s->open && is_client_hello(data, len))) {
      if (!t->server) {
        t->st.dropped_in++;
        return TCD_DONE;
      }
      return listen_peer(t, now, addr, alen, h, data, len, s);
    }
    s->last = now;
    if (!s->open) {
      t->st.handshake_bytes += len;
      if (s->heard < 255) s->heard++;
    }
    (void)tc_tls_feed(s->tls, data, len);
    drain(t, s);
    if (!update(t, s, now) || !s->open) return TCD_DONE;
    t->rs = s;
    t->rs_active = 1;
    t->rs_have = 0;
  }
  /* deliver the session's decrypted messages, resuming after a host action */
  s = t->rs;
  while (s != NULL) {
    if (!t->rs_have) {
      long n = tc_tls_read(s->tls, t->pt, PT_CAP);
      if (n <= 0) break;
      t->rs_len = (uint32_t)n;
      t->rs_have = 1;
      t->st.records_in++;
    }
    a = tcd_recv(t->d, now, s->addr, s->alen, t->pt, t->rs_len);
    if (a == TCD_SEND || a == TCD_DELIVER) return a;
    t->rs_have = 0;
  }
  t->rs_active = 0;
  t->rs = NULL;
  if (s != NULL) {
    drain(t, s);
    (void)update(t, s, now);
  }
  return TCD_DONE;
}

/* Client: a session (and its ClientHello) for a server we have none with. */
static sess *client_session(tcdt *t, uint64_t now, const uint8_t *addr, uint32_t alen, uint32_t h) {
  char ip[64], err[128];
  const char *name = t->servername[0] != '\0' ? t->servername : NULL;
  tc_tls *tls;
  sess *s;
  if (name == NULL) {
    if (addr[0] == 4u && alen == TCB_ADDR4_LEN) name = inet_ntop(AF_INET, addr + 3, ip, sizeof ip);
    else if (addr[0] == 6u && alen == TCB_ADDR6_LEN) name = inet_ntop(AF_INET6, addr + 3, ip, sizeof ip);
  }
  tls = tc_tls_new_keyed(t->ctx, name, addr, alen, err, sizeof err); /* resumes per server address */
  if (tls == NULL) return NULL;
  s = sess_new(t, now, addr, alen, h, tls);
  if (s == NULL) return NULL;
  drain(t, s);
  (void)update(t, s, now);
  return s;
}

int tcdt_seal(tcdt *t, uint64_t now) {
  tc_txq *q = &t->d->txq;
  uint32_t i;
  for (i = t->seal_pos; i < q->count; i++) {
    const tc_tx *x = &q->items[i];
    const uint8_t *addr = q->buf + x->addr_offset, *p = q->buf + x->offset;
    uint32_t h;
    sess *s;
    if (out_half_full(t)) {
      t->seal_pos = i;
      return TCD_SEND;
    }
    if (x->addr_length < 1u || x->addr_length > TC_ADDR_MAX) continue;
    h = fnv(t->seed, addr, x->addr_length);
    s = sess_find(t, addr, x->addr_length, h);
    if (s == NULL && !t->server) s = client_session(t, now, addr, x->addr_length, h);
    if (s == NULL) {
      t->st.dropped_out++;
      continue;
    }
    if (!s->open) { /* wait for the handshake, bounded */
      uint8_t *nq;
      if (x->length > 65535u || s->qlen + 2u + x->length > t->lim.queue_bytes ||
          (nq = (uint8_t *)realloc(s->q, s->qlen + 2u + x->length)) == NULL) {
        t->st.dropped_out++;
        continue;
      }
      s->q = nq;
      nq[s->qlen] = (uint8_t)(x->length >> 8);
      nq[s->qlen + 1] = (uint8_t)x->length;
      memcpy(nq + s->qlen + 2, p, x->length);
      s->qlen += 2u + x->length;
      continue;
    }
    s->last = now;
    write_one(t, s, p, x->length);
  }
  t->seal_pos = 0;
  tcd_tx_sent(t->d, 0, 0);
  return TCD_DONE;
}

static uint64_t sweep_interval(const tcdt *t) {
  uint32_t iv = t->lim.idle_ms / 4u;
  return iv < SWEEP_MAX_MS ? (iv > 0 ? iv : 1) : SWEEP_MAX_MS;
}

int tcdt_timer(tcdt *t, uint64_t now) {
  int a;
  if ((a = run_fails(t, now)) != TCD_DONE) return a;
  if (t->timer_phase == 0) {
    sess *s, *next;
    for (s = t->ho_head; s != NULL; s = next) {
      next = s->hnext;
      if (out_half_full(t)) return TCD_SEND;
      if (now - s->born >= t->lim.handshake_ms) {
        /* a PSK client heard the server's flight and then nothing: DTLS drops records it
         * cannot authenticate, so a wrong key shows as exactly this */
        int err = (t->lim.flags & TCDT_PSK) && !t->server && s->heard >= 2 ? TC_TLS_E_PSK : TC_TLS_E_HANDSHAKE;
        t->st.expired++;
        t->st.handshake_failures++;
        add_fail(t, s->addr, s->alen, err);
        sess_free(t, s);
        continue;
      }
      if (s->due <= now) {
        (void)tc_tls_on_timeout(s->tls);
        drain(t, s);
        (void)update(t, s, now);
      }
    }
    if (now >= t->next_sweep) {
      uint32_t i;
      for (i = 0; i <= t->tab_mask; i++) {
        for (s = t->tab[i]; s != NULL; s = next) {
          next = s->next;
          if (!s->open || now - s->last < t->lim.idle_ms) continue;
          if (out_half_full(t)) return TCD_SEND;
          tc_tls_close(s->tls);
          drain(t, s);
          t->st.expired++;
          sess_free(t, s);
        }
      }
      t->next_sweep = t->st.sessions > 0 ? now + sweep_interval(t) : NEVER;
    }
    t->timer_phase = 1;
    if ((a = run_fails(t, now)) != TCD_DONE) return a;
  }
  a = tcd_timer(t->d, now);
  if (a == TCD_DONE) t->timer_phase = 0;
  return a;
}

uint64_t tcdt_deadline(const tcdt *t) {
  uint64_t dl = tcd_deadline(t->d);
  const sess *s;
  if (t->nfails > 0) return 0;
  if (t->st.sessions > 0 && t->next_sweep < dl) dl = t->next_sweep;
  for (s = t->ho_head; s != NULL; s = s->hnext) {
    uint64_t giveup = s->born + t->lim.handshake_ms;
    if (s->due < dl) dl = s->due;
    if (giveup < dl) dl = giveup;
  }
  return dl;
}

int tcdt_pending(const tcdt *t) { return tcd_pending(t->d) || t->out.count > 0 || t->nfails > 0; }

int tcdt_close_all(tcdt *t) {
  uint32_t i;
  sess *s;
  for (i = 0; i <= t->tab_mask; i++)
    for (s = t->tab[i]; s != NULL; s = s->next) {
      if (!s->open || s->closing) continue;
      if (out_half_full(t)) return TCD_SEND;
      s->closing = 1;
      tc_tls_close(s->tls);
      drain(t, s);
    }
  return TCD_DONE;
}

const tcdt_stats *tcdt_get_stats(tcdt *t) { return &t->st; }

size_t tcdt_memory(const tcdt *t) {
  size_t m = sizeof *t + (size_t)(t->tab_mask + 1u) * (sizeof *t->tab + sizeof *t->htab) + OUT_BYTES +
             OUT_ITEMS * sizeof(tc_tx) + PT_CAP;
  uint32_t i;
  const sess *s;
  m += (size_t)t->st.hosts * sizeof(host);
  for (i = 0; i <= t->tab_mask; i++)
    for (s = t->tab[i]; s != NULL; s = s->next) m += sizeof *s + s->qlen + tc_tls_buffer_bytes(s->tls);
  return m;
}

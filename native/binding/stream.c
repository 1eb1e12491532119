/*
 * stream.c — the native host of CoAP over TCP and TLS (RFC 8323): listeners and connections
 * on Node's libuv loop around ONE connection driver (native/driver/stream.h: tc_conn per
 * connection, TLS under it, one tc_srv), and the N-API surface. Only libuv and N-API live here;
 * every protocol decision is the driver's.
 *
 * Receive: each socket's read callback hands its chunk to tcs_recv (TCS_DELIVER: the batch
 * goes to JS at once; TCS_OPEN: a TLS handshake completed, the OPEN record goes first;
 * TCS_PAUSE: the rest of the chunk is kept and the socket stops reading until its output has
 * drained). Otherwise the batch goes to JS from a uv_check handle after the poll phase: one
 * JS call per loop turn for every connection that read something.
 *
 * Send: tcs_next_out / tcs_out, uv_try_write first; what the socket does not take is copied
 * once into the connection's write buffer and leaves through uv_write (one in flight per
 * connection: the driver's own output bound keeps applying). TCS_OUT_CLOSE: FIN (uv_shutdown)
 * after the drained output, then close.
 *
 * Host records (tcs_host_event): OPEN when a connection's transport is up (TCP connected or
 * accepted; TLS: handshake done) with the peer's address and identity; CLOSED with
 * CONN_EVF_SYSERR (negative errno) for sockets that fail, CONN_EVF_TLSERR from the driver for
 * handshakes that fail.
 *
 * Time: one uv_timer armed to tcs_deadline drives tcs_timer; now = uv_now (ms).
 *
 * Lifetime: as the UDP host (udp.c): the JS object holds an external wrapping the state;
 * references are strong while ref'd, weak otherwise.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* libuv's headers want POSIX types under -std=c11 */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <uv.h>

#include "addr.h"
#include "glue.h"
#include "stream.h"
#include "tls.h"
#include "turbocoap.h"

#define RECV_BUF (64u * 1024u)
#define RX_WORDS_MIN (1u << 16)
#define MAX_LISTENERS 64u
#define BACKLOG 511
#define NEVER UINT64_MAX
#define DIAG_MAX 128u

/* ------------------------------------------------------------------ TLS contexts */

/* A TLS context made by tlsContext(): the driver's tc_tls_ctx and the JS PSK callback.
 * refs: the JS side (until tlsContextFree or its finalizer), each listener and each connection
 * using it; the context goes with the last one, the wrapper once the external is finalized
 * too. */
typedef struct tcn_tls {
  tc_tls_ctx *ctx;
  napi_env env;
  napi_ref psk_cb;
  int refs;
  int server;
  int js_dropped; /* the JS side's reference is gone */
  int finalized;  /* the external was finalized */
} tcn_tls;

static void tls_unref(tcn_tls *t) {
  if (t == NULL || --t->refs > 0) return;
  if (t->psk_cb != NULL) napi_delete_reference(t->env, t->psk_cb);
  t->psk_cb = NULL;
  tc_tls_ctx_free(t->ctx);
  t->ctx = NULL;
  if (t->finalized) free(t);
}

/* ------------------------------------------------------------------ state */

typedef struct tcn tcn;

enum { SK_CONNECTING = 1, SK_OPEN = 2, SK_CLOSING = 3 };

typedef struct tcn_sock {
  uv_tcp_t tcp;
  tcn *h;
  struct tcn_sock *next; /* hash chain */
  uint32_t id;
  uint32_t listener;     /* accepted: the listener's index; connected: 0 */
  int state;
  int in_tcs;            /* tcs_open done (the driver knows the id) */
  int tls;
  int paused;            /* reading stopped on TCS_PAUSE */
  int writing;           /* a uv_write in flight */
  int close_after_write; /* TCS_OUT_CLOSE came while writing */
  int in_map;
  int resume_queued;     /* in the host's resume list */
  struct tcn_sock *resume_next;
  int lingering;         /* in the host's linger list: closing, its last write pending */
  uint64_t linger_until;
  struct tcn_sock *linger_next;
  tcn_tls *tctx;
  char *servername;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  uint8_t *wbuf;
  uint32_t wcap;
  uint8_t *pend; /* input kept on TCS_PAUSE: pend[ppos..plen) */
  uint32_t plen, ppos;
} tcn_sock;

typedef struct tcn_listener {
  uv_tcp_t tcp;
  tcn *h;
  uint32_t index;
  tcn_tls *tctx;
} tcn_listener;

struct tcn {
  napi_env env;
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_check_t check;
  int handles; /* handles not yet closed */
  int closing, ext_gone, env_gone, refd, check_on, in_dispatch;
  napi_ref self_ref, cb_ref, close_cb_ref, txw_ref, txb_ref;
  napi_async_context actx;
  int64_t ext_mem;
  tcs_stream *s;
  tcs_host_stats last; /* counters at close */
  tcs_host_counters hc;
  uint32_t max_body, max_conns;
  uint32_t linger_ms; /* a closed connection's last bytes wait this long for the peer (the
                         connection config's ping_timeout_ms: how long a live peer answers) */
  uint8_t *recvbuf;
  uint64_t armed;
  tcn_listener *listeners[MAX_LISTENERS];
  uint32_t nlisteners;
  tcn_sock **buckets;
  uint32_t bmask, nsocks, next_id;
  tcn_sock *resume_list; /* paused connections with room again, found while JS ran */
  tcn_sock *linger_list; /* closing connections whose last bytes wait for the peer */
};

static void rearm(tcn *h);

/* A closed connection waits at most linger_ms for the peer to take its last bytes (a peer
 * that never reads cannot hold a socket forever). */
static void linger(tcn_sock *k) {
  tcn *h = k->h;
  if (k->lingering) return;
  k->lingering = 1;
  k->linger_until = uv_now(h->loop) + h->linger_ms;
  k->linger_next = h->linger_list;
  h->linger_list = k;
  rearm(h);
}

static void unlinger(tcn_sock *k) {
  tcn_sock **q;
  if (!k->lingering) return;
  for (q = &k->h->linger_list; *q != NULL; q = &(*q)->linger_next)
    if (*q == k) {
      *q = k->linger_next;
      break;
    }
  k->lingering = 0;
}

/* ------------------------------------------------------------------ the id map */

static uint32_t bucket(const tcn *h, uint32_t id) { return (id * 2654435761u) & h->bmask; }

static tcn_sock *lookup(const tcn *h, uint32_t id) {
  tcn_sock *k = h->buckets[bucket(h, id)];
  while (k != NULL && k->id != id) k = k->next;
  return k;
}

static void map_put(tcn *h, tcn_sock *k) {
  uint32_t b = bucket(h, k->id);
  k->next = h->buckets[b];
  h->buckets[b] = k;
  k->in_map = 1;
  h->nsocks++;
}

static void map_del(tcn *h, tcn_sock *k) {
  tcn_sock **p;
  if (!k->in_map) return;
  for (p = &h->buckets[bucket(h, k->id)]; *p != NULL; p = &(*p)->next)
    if (*p == k) {
      *p = k->next;
      break;
    }
  k->in_map = 0;
  h->nsocks--;
}

static uint32_t alloc_id(tcn *h) {
  for (;;) {
    uint32_t id = h->next_id++;
    if (id != 0u && lookup(h, id) == NULL) return id;
  }
}

/* ------------------------------------------------------------------ to JS */

static void make_callback(tcn *h, napi_value fn, size_t argc, const napi_value *argv) {
  tcg_make_callback(h->env, h->actx, h->self_ref, fn, argc, argv);
}

/* Hand the batch to JS: callback(arrayBuffer, count, dataBase). Not re-entered: records made
 * while JS runs wait for the next dispatch. Returns whether the batch is empty now. */
static int dispatch(tcn *h) {
  napi_env env = h->env;
  napi_handle_scope scope;
  napi_value ab, fn = NULL, argv[3];
  void *p;
  const tcb_rx *rx;
  size_t wbytes, total;
  uint32_t count;
  if (h->s == NULL) return 1;
  rx = tcs_batch(h->s);
  count = rx->count;
  if (count == 0) return 1;
  if (h->in_dispatch) return 0;
  if (h->closing || h->env_gone || h->cb_ref == NULL) {
    tcs_delivered(h->s);
    return 1;
  }
  wbytes = (size_t)rx->word_used * 4u;
  total = wbytes + rx->data_used;
  napi_open_handle_scope(env, &scope);
  if (napi_create_arraybuffer(env, total, &p, &ab) != napi_ok ||
      napi_get_reference_value(env, h->cb_ref, &fn) != napi_ok || fn == NULL) {
    tcs_delivered(h->s);
    napi_close_handle_scope(env, scope);
    return 1;
  }
  memcpy(p, rx->words, wbytes);
  memcpy((uint8_t *)p + wbytes, rx->data, rx->data_used);
  { /* connections the driver closed: their last bytes get linger_ms, then the socket goes */
    uint32_t at = 0, n;
    for (n = 0; n < count && at < rx->word_used; n++) {
      const uint32_t *r = rx->words + at;
      if (r[TCB_RX_KIND] == TC_CONN_EV_CLOSED && r[TCB_RX_FAMILY] == TCB_FAMILY_CONN) {
        tcn_sock *k = lookup(h, r[TCB_RX_PORT]);
        if (k != NULL && k->in_tcs) linger(k);
      }
      at += TCB_RX_WORDS + (r[TCB_RX_KIND] == TC_EV_REQUEST || r[TCB_RX_KIND] == TC_EV_RESPONSE
                                ? 3u * r[TCB_RX_OPT_COUNT]
                                : 0u);
    }
  }
  tcs_delivered(h->s);
  argv[0] = ab;
  napi_create_uint32(env, count, &argv[1]);
  napi_create_uint32(env, (uint32_t)wbytes, &argv[2]);
  h->in_dispatch = 1;
  make_callback(h, fn, 3, argv);
  h->in_dispatch = 0;
  napi_close_handle_scope(env, scope);
  return 1;
}

static void check_cb(uv_check_t *c);

static void schedule_check(tcn *h) {
  if (!h->closing && h->s != NULL && tcs_pending(h->s) && !h->check_on) {
    h->check_on = 1;
    uv_check_start(&h->check, check_cb);
  }
}

/* Room for one more record (dispatching a full batch); 0 when there is none. */
static int batch_room(tcn *h) {
  const tcb_rx *rx = tcs_batch(h->s);
  if (rx->word_cap - rx->word_used >= TCB_RX_MAX_WORDS) return 1;
  dispatch(h);
  rx = tcs_batch(h->s);
  return rx->word_cap - rx->word_used >= TCB_RX_MAX_WORDS;
}

/* A host record (OPEN, CLOSED of a connection the driver never had). */
static void host_event(tcn *h, uint32_t kind, uint32_t id, const uint8_t *addr, uint32_t alen,
                       int32_t status, uint32_t flags, const uint8_t *data, uint32_t dlen) {
  if (h->s == NULL || h->closing) return;
  if (tcs_host_event(h->s, kind, id, addr, alen, status, flags, data, dlen) == TC_E_FULL &&
      dispatch(h))
    (void)tcs_host_event(h->s, kind, id, addr, alen, status, flags, data, dlen);
  schedule_check(h);
}

/* ------------------------------------------------------------------ sockets */

static void flush_out(tcn *h);
static void feed(tcn_sock *k, const uint8_t *data, uint32_t len, int from_pend);

static void sock_closed_cb(uv_handle_t *hd);

static void close_sock(tcn_sock *k) {
  tcn *h = k->h;
  if (k->state == SK_CLOSING) return;
  map_del(h, k);
  k->state = SK_CLOSING;
  uv_read_stop((uv_stream_t *)&k->tcp);
  uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
}

/* The transport ended (EOF, error): CLOSED (unless the driver reported it), then close. */
static void conn_end(tcn_sock *k, int32_t status, uint32_t flags) {
  tcn *h = k->h;
  if (k->state == SK_CLOSING) return;
  if (k->in_tcs && h->s != NULL) {
    (void)batch_room(h);
    (void)tcs_close_status(h->s, uv_now(h->loop), k->id, status, flags);
    k->in_tcs = 0;
  } else if (k->state == SK_CONNECTING) {
    host_event(h, TC_CONN_EV_CLOSED, k->id, NULL, 0, status, flags, NULL, 0);
  }
  close_sock(k);
  schedule_check(h);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  tcn_sock *k = (tcn_sock *)req->data;
  (void)status;
  if (!uv_is_closing((uv_handle_t *)&k->tcp)) uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
}

/* TCS_OUT_CLOSE, output drained: the driver forgets the id; FIN, then close. */
static void graceful_close(tcn_sock *k) {
  tcn *h = k->h;
  if (k->in_tcs && h->s != NULL) (void)tcs_close(h->s, uv_now(h->loop), k->id);
  k->in_tcs = 0;
  map_del(h, k);
  k->state = SK_CLOSING;
  uv_read_stop((uv_stream_t *)&k->tcp);
  k->sreq.data = k;
  if (uv_shutdown(&k->sreq, (uv_stream_t *)&k->tcp, shutdown_cb) != 0)
    uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
  else if (k->writing)
    linger(k);
}

static void write_cb(uv_write_t *req, int status);

/* Write what the driver has for k: uv_try_write, the rest copied into one uv_write. Returns
 * the bytes handed over (0 also when a write is in flight). */
static uint32_t write_sock(tcn_sock *k) {
  tcn *h = k->h;
  uint32_t moved = 0;
  if (k->writing || k->state != SK_OPEN || !k->in_tcs) return 0;
  for (;;) {
    uint32_t len = 0;
    const uint8_t *p = tcs_out(h->s, k->id, &len);
    uv_buf_t b;
    int n;
    if (p == NULL || len == 0u) return moved;
    b = uv_buf_init((char *)(uintptr_t)p, len);
    n = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
    h->hc.writes++;
    if (n > 0) {
      (void)tcs_written(h->s, k->id, (uint32_t)n);
      moved += (uint32_t)n;
      if ((uint32_t)n == len) continue;
      p = tcs_out(h->s, k->id, &len); /* the rest */
      if (p == NULL || len == 0u) return moved;
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      h->hc.write_errors++;
      conn_end(k, n, TCB_CONN_EVF_SYSERR);
      return moved;
    }
    /* the socket is full: copy the rest, it leaves through libuv's queue */
    if (k->wcap < len) {
      uint8_t *nb = (uint8_t *)realloc(k->wbuf, len);
      if (nb == NULL) return moved; /* retried on the next flush */
      k->wbuf = nb;
      k->wcap = len;
    }
    memcpy(k->wbuf, p, len);
    b = uv_buf_init((char *)k->wbuf, len);
    k->wreq.data = k;
    n = uv_write(&k->wreq, (uv_stream_t *)&k->tcp, &b, 1, write_cb);
    if (n != 0) {
      h->hc.write_errors++;
      conn_end(k, n, TCB_CONN_EVF_SYSERR);
      return moved;
    }
    (void)tcs_written(h->s, k->id, len);
    k->writing = 1;
    h->hc.writes_queued++;
    return moved + len;
  }
}

static void resume(tcn_sock *k);
static void want_resume(tcn_sock *k);

static void write_cb(uv_write_t *req, int status) {
  tcn_sock *k = (tcn_sock *)req->data;
  tcn *h = k->h;
  k->writing = 0;
  if (k->state == SK_CLOSING || h->closing) return;
  if (status < 0) {
    h->hc.write_errors++;
    conn_end(k, status, TCB_CONN_EVF_SYSERR);
    return;
  }
  if (k->close_after_write) {
    graceful_close(k);
    return;
  }
  (void)write_sock(k);
  want_resume(k);
  flush_out(h);
  schedule_check(h);
}

/* Every connection with work: write, or close after its drained output. */
static void flush_out(tcn *h) {
  uint32_t id;
  int a;
  if (h->s == NULL || h->closing) return;
  while ((a = tcs_next_out(h->s, &id)) != TCS_OUT_NONE) {
    tcn_sock *k = lookup(h, id);
    if (k == NULL) { /* no socket (cannot happen): the driver forgets it */
      if (a == TCS_OUT_CLOSE) (void)tcs_close(h->s, uv_now(h->loop), id);
      continue;
    }
    if (a == TCS_OUT_WRITE) {
      (void)write_sock(k);
      want_resume(k);
    } else if (k->writing) {
      k->close_after_write = 1;
      linger(k);
    } else {
      graceful_close(k);
    }
  }
}

/* The peer's identity for OPEN: PSK identity, else the certificate's subject CN. */
static void emit_open(tcn_sock *k) {
  tcn *h = k->h;
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen = 0;
  const char *ident = "";
  tc_tls_info info;
  if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&ss, &sl) == 0)
    alen = tcb_sockaddr_to_addr((const struct sockaddr *)&ss, addr);
  if (alen == 0) { /* the peer is gone already: OPEN anyway, EOF follows */
    memset(addr, 0, sizeof addr);
    addr[0] = 4;
    alen = TCB_ADDR4_LEN;
  }
  if (k->tls && tc_tls_get_info(tcs_tls(h->s, k->id), &info) == 0)
    ident = info.psk_identity[0] != '\0' ? info.psk_identity : info.peer_cn;
  host_event(h, TCB_CONN_EV_OPEN, k->id, addr, alen, (int32_t)k->listener,
             k->tls ? TCB_CONN_EVF_TLS : 0u, (const uint8_t *)ident, (uint32_t)strlen(ident));
}

/* Bytes read from k (or kept from an earlier TCS_PAUSE: from_pend) into the driver. */
static void feed(tcn_sock *k, const uint8_t *data, uint32_t len, int from_pend) {
  tcn *h = k->h;
  uint32_t pos = 0;
  int again = 1;
  uint64_t now = uv_now(h->loop);
  while (again || pos < len) {
    uint32_t used = 0;
    int r;
    again = 0;
    if (k->state != SK_OPEN || !k->in_tcs || h->closing) return;
    r = tcs_recv(h->s, now, k->id, data + pos, len - pos, &used);
    pos += used;
    switch (r) {
    case TCS_DONE:
    case TCS_WRITE:
      break;
    case TCS_OPEN:
      emit_open(k);
      again = 1;
      break;
    case TCS_DELIVER:
      again = 1;
      if (dispatch(h)) break;
      /* inside a JS call (cannot happen: feed runs from libuv callbacks): keep the rest */
      /* fall through */
    case TCS_PAUSE:
      if (r == TCS_PAUSE) {
        h->hc.read_pauses++;
        if (write_sock(k) > 0u && !k->writing) { /* made room at once: go on */
          again = 1;
          break;
        }
      }
      if (from_pend) {
        k->ppos += pos;
      } else if (pos < len) {
        uint8_t *nb = (uint8_t *)malloc(len - pos);
        if (nb == NULL) {
          conn_end(k, -ENOMEM, TCB_CONN_EVF_SYSERR);
          return;
        }
        memcpy(nb, data + pos, len - pos);
        free(k->pend);
        k->pend = nb;
        k->plen = len - pos;
        k->ppos = 0;
      }
      if (!k->paused) {
        k->paused = 1;
        if (!from_pend) uv_read_stop((uv_stream_t *)&k->tcp);
      }
      if (r == TCS_DELIVER) want_resume(k);
      return;
    default: /* TC_E_INVALID: the driver does not know it (cannot happen) */
      conn_end(k, r, 0);
      return;
    }
  }
  if (from_pend && k->pend != NULL) k->ppos = k->plen;
}

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* A paused connection has room again: resume it now, or (inside a JS call, where its records
 * cannot be handed over) at the end of the loop turn. */
static void want_resume(tcn_sock *k) {
  tcn *h = k->h;
  if (!k->paused || k->state != SK_OPEN || k->writing) return;
  if (!h->in_dispatch) {
    resume(k);
    return;
  }
  if (!k->resume_queued) {
    k->resume_queued = 1;
    k->resume_next = h->resume_list;
    h->resume_list = k;
  }
  if (!h->check_on && !h->closing) {
    h->check_on = 1;
    uv_check_start(&h->check, check_cb);
  }
}

/* A paused connection whose output made room: the kept input, then reading again. */
static void resume(tcn_sock *k) {
  static const uint8_t none[1] = {0};
  if (!k->paused || k->state != SK_OPEN) return;
  /* the kept input, or none: the driver may hold decrypted bytes of its own */
  k->paused = 0;
  if (k->pend != NULL) feed(k, k->pend + k->ppos, k->plen - k->ppos, 1);
  else feed(k, none, 0, 1);
  if (k->state != SK_OPEN || k->paused) return; /* paused again */
  free(k->pend);
  k->pend = NULL;
  k->plen = k->ppos = 0;
  k->paused = 0;
  uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
}

static void alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
  tcn_sock *k = (tcn_sock *)hd->data;
  (void)suggested;
  buf->base = (char *)k->h->recvbuf;
  buf->len = RECV_BUF;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  tcn_sock *k = (tcn_sock *)st->data;
  tcn *h = k->h;
  if (k->state != SK_OPEN || h->closing) return;
  if (nread < 0) {
    if (nread != UV_EOF) h->hc.read_errors++;
    conn_end(k, nread == UV_EOF ? 0 : (int32_t)nread, nread == UV_EOF ? 0u : TCB_CONN_EVF_SYSERR);
    return;
  }
  if (nread > 0) feed(k, (const uint8_t *)buf->base, (uint32_t)nread, 0);
  schedule_check(h);
}

/* A TCP connection is up (accepted, or connected): the driver gets it. */
static void sock_up(tcn_sock *k) {
  tcn *h = k->h;
  struct sockaddr_storage ss;
  int sl = sizeof ss, r;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen = 0;
  uint64_t now = uv_now(h->loop);
  (void)uv_tcp_nodelay(&k->tcp, 1);
  if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&ss, &sl) == 0)
    alen = tcb_sockaddr_to_addr((const struct sockaddr *)&ss, addr);
  if (alen == 0) {
    conn_end(k, UV_ENOTCONN, TCB_CONN_EVF_SYSERR);
    return;
  }
  r = k->tctx != NULL ? tcs_open_tls(h->s, now, k->id, addr, alen, k->tctx->ctx, k->servername)
                      : tcs_open(h->s, now, k->id, addr, alen);
  if (r < 0) {
    if (k->state == SK_CONNECTING) /* a client learns why */
      host_event(h, TC_CONN_EV_CLOSED, k->id, NULL, 0, r,
                 r <= TC_TLS_ERROR_FIRST ? TCB_CONN_EVF_TLSERR : 0u, NULL, 0);
    else
      h->hc.refused++;
    close_sock(k);
    return;
  }
  k->state = SK_OPEN;
  k->in_tcs = 1;
  k->tls = k->tctx != NULL;
  if (!k->tls) emit_open(k);
  uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, read_cb);
  flush_out(h);
  schedule_check(h);
}

static tcn_sock *new_sock(tcn *h) {
  tcn_sock *k = (tcn_sock *)calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->h = h;
  if (uv_tcp_init(h->loop, &k->tcp) != 0) {
    free(k);
    return NULL;
  }
  k->tcp.data = k;
  h->handles++;
  if (!h->refd) uv_unref((uv_handle_t *)&k->tcp);
  return k;
}

static void connection_cb(uv_stream_t *server, int status) {
  tcn_listener *l = (tcn_listener *)server->data;
  tcn *h = l->h;
  tcn_sock *k;
  if (status < 0 || h->closing) return;
  k = new_sock(h);
  if (k == NULL) return;
  if (uv_accept(server, (uv_stream_t *)&k->tcp) != 0) {
    k->state = SK_CLOSING;
    uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
    return;
  }
  h->hc.accepted++;
  k->id = alloc_id(h);
  k->listener = l->index;
  k->state = SK_OPEN;
  if (l->tctx != NULL) {
    k->tctx = l->tctx;
    k->tctx->refs++;
  }
  map_put(h, k);
  sock_up(k);
}

static void connect_cb(uv_connect_t *req, int status) {
  tcn_sock *k = (tcn_sock *)req->data;
  tcn *h = k->h;
  if (k->state != SK_CONNECTING || h->closing) return;
  if (status < 0) {
    h->hc.connect_errors++;
    conn_end(k, status, TCB_CONN_EVF_SYSERR);
    return;
  }
  sock_up(k);
}

/* ------------------------------------------------------------------ timing */

static void timer_cb(uv_timer_t *t);

static void rearm(tcn *h) {
  uint64_t dl, now;
  if (h->closing || h->s == NULL) return;
  dl = tcs_deadline(h->s);
  {
    const tcn_sock *k;
    for (k = h->linger_list; k != NULL; k = k->linger_next)
      if (k->linger_until < dl) dl = k->linger_until;
  }
  if (dl == NEVER) {
    if (h->armed != NEVER) uv_timer_stop(&h->timer);
    h->armed = NEVER;
    return;
  }
  if (dl >= h->armed) return;
  now = uv_now(h->loop);
  h->armed = dl;
  uv_timer_start(&h->timer, timer_cb, dl > now ? dl - now : 0, 0);
}

static void timer_cb(uv_timer_t *t) {
  tcn *h = (tcn *)t->data;
  uint64_t now = uv_now(h->loop);
  int a, rounds = 0;
  h->armed = NEVER;
  if (h->closing) return;
  {
    tcn_sock **q = &h->linger_list;
    while (*q != NULL) {
      tcn_sock *k = *q;
      if (k->linger_until > now) {
        q = &k->linger_next;
        continue;
      }
      *q = k->linger_next;
      k->lingering = 0;
      h->hc.write_errors++;
      if (k->in_tcs) (void)tcs_close(h->s, now, k->id); /* CLOSED was reported already */
      k->in_tcs = 0;
      map_del(h, k);
      k->state = SK_CLOSING;
      if (!uv_is_closing((uv_handle_t *)&k->tcp)) uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
    }
  }
  while ((a = tcs_timer(h->s, now)) != TCS_DONE && rounds++ < 1000) {
    if (a == TCS_DELIVER) dispatch(h);
    else flush_out(h);
    if (h->closing) return;
  }
  dispatch(h);
  if (h->closing) return;
  flush_out(h);
  if (tcs_deadline(h->s) <= uv_now(h->loop)) {
    h->armed = uv_now(h->loop) + 1;
    uv_timer_start(&h->timer, timer_cb, 1, 0);
    return;
  }
  rearm(h);
}

static void check_cb(uv_check_t *c) {
  tcn *h = (tcn *)c->data;
  uv_check_stop(c);
  h->check_on = 0;
  if (h->closing) return;
  while (h->resume_list != NULL) {
    tcn_sock *k = h->resume_list;
    h->resume_list = k->resume_next;
    k->resume_queued = 0;
    resume(k);
    if (h->closing) return;
  }
  dispatch(h);
  if (h->closing) return;
  flush_out(h);
  if (tcs_batch(h->s)->count > 0u) schedule_check(h); /* records made while writing */
  rearm(h);
}

/* ------------------------------------------------------------------ lifetime */

static void free_state(tcn *h) {
  if (h->s != NULL) {
    h->last.st = *tcs_get_stats(h->s);
    tc_srv_get_stats(tcs_srv(h->s), &h->last.srv);
    h->last.host = h->hc;
  }
  tcs_destroy(h->s);
  h->s = NULL;
  free(h->recvbuf);
  h->recvbuf = NULL;
  free(h->buckets);
  h->buckets = NULL;
}

static void drop_refs(tcn *h) {
  napi_env env = h->env;
  napi_ref *refs[] = {&h->self_ref, &h->cb_ref, &h->txw_ref, &h->txb_ref, &h->close_cb_ref};
  tcg_drop_refs(env, refs, sizeof refs / sizeof refs[0], &h->actx);
}

static void env_cleanup(void *arg);

static void handle_closed(tcn *h) {
  if (--h->handles > 0) return;
  free_state(h);
  if (!h->env_gone && h->ext_mem != 0) {
    int64_t left;
    napi_adjust_external_memory(h->env, -h->ext_mem, &left);
  }
  h->ext_mem = 0;
  if (h->ext_gone) {
    free(h);
    return;
  }
  if (h->env_gone) return;
  napi_remove_env_cleanup_hook(h->env, env_cleanup, h);
  tcg_call_ref(h->env, h->actx, h->self_ref, h->close_cb_ref);
  drop_refs(h);
}

static void sock_closed_cb(uv_handle_t *hd) {
  tcn_sock *k = (tcn_sock *)hd->data;
  tcn *h = k->h;
  if (k->in_tcs && h->s != NULL) (void)tcs_close(h->s, uv_now(h->loop), k->id);
  map_del(h, k);
  unlinger(k);
  if (k->resume_queued) {
    tcn_sock **q;
    for (q = &h->resume_list; *q != NULL; q = &(*q)->resume_next)
      if (*q == k) {
        *q = k->resume_next;
        break;
      }
  }
  tls_unref(k->tctx);
  free(k->servername);
  free(k->wbuf);
  free(k->pend);
  free(k);
  handle_closed(h);
}

static void listener_closed_cb(uv_handle_t *hd) {
  tcn_listener *l = (tcn_listener *)hd->data;
  tcn *h = l->h;
  tls_unref(l->tctx);
  free(l);
  handle_closed(h);
}

static void plain_closed_cb(uv_handle_t *hd) { handle_closed((tcn *)hd->data); }

/* Closing: hand the socket what the driver still has for k (an Abort after a connection
 * error, the last responses), as far as the socket takes it now; no waiting. */
static void write_last(tcn_sock *k) {
  tcn *h = k->h;
  uint32_t len = 0;
  const uint8_t *p;
  if (k->writing || k->state != SK_OPEN || !k->in_tcs || h->s == NULL) return;
  while ((p = tcs_out(h->s, k->id, &len)) != NULL && len > 0u) {
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, len);
    int n = uv_try_write((uv_stream_t *)&k->tcp, &b, 1);
    if (n <= 0) return;
    (void)tcs_written(h->s, k->id, (uint32_t)n);
  }
}

static void start_close(tcn *h) {
  uint32_t i;
  if (h->closing) return;
  h->closing = 1;
  for (i = 0; i < h->nlisteners; i++)
    if (h->listeners[i] != NULL) {
      uv_close((uv_handle_t *)&h->listeners[i]->tcp, listener_closed_cb);
      h->listeners[i] = NULL;
    }
  if (h->buckets != NULL)
    for (i = 0; i <= h->bmask; i++)
      while (h->buckets[i] != NULL) {
        tcn_sock *k = h->buckets[i];
        write_last(k);
        if (k->in_tcs && h->s != NULL) (void)tcs_close(h->s, uv_now(h->loop), k->id);
        k->in_tcs = 0;
        map_del(h, k);
        if (k->state != SK_CLOSING) {
          k->state = SK_CLOSING;
          uv_close((uv_handle_t *)&k->tcp, sock_closed_cb);
        }
      }
  uv_close((uv_handle_t *)&h->timer, plain_closed_cb);
  uv_close((uv_handle_t *)&h->check, plain_closed_cb);
}

static void env_cleanup(void *arg) {
  tcn *h = (tcn *)arg;
  h->env_gone = 1;
  drop_refs(h);
  start_close(h);
}

static void finalize(napi_env env, void *data, void *hint) {
  tcn *h = (tcn *)data;
  (void)hint;
  (void)env;
  h->ext_gone = 1;
  if (h->handles == 0) {
    free(h);
    return;
  }
  if (!h->env_gone) {
    napi_remove_env_cleanup_hook(h->env, env_cleanup, h);
    drop_refs(h);
    h->env_gone = 1;
  }
  start_close(h);
}

/* ------------------------------------------------------------------ argument helpers */

static int get_state(napi_env env, napi_value v, tcn **out) {
  void *p;
  if (!tcg_external(env, v, "turbocoap: expected a stream host handle", &p)) return 0;
  *out = (tcn *)p;
  return 1;
}

/* an empty array passes */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  return tcg_typed(env, v, want, data, n, 0);
}

static int is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return v == NULL || napi_typeof(env, v, &t) != napi_ok || t == napi_null || t == napi_undefined;
}

/* A string argument into buf (cap bytes); 0 and a TypeError when it is not one or too long. */
static int strarg(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok || n + 1u > cap) {
    napi_throw_type_error(env, NULL, "turbocoap: expected a (short) string");
    return 0;
  }
  napi_get_value_string_utf8(env, v, buf, cap, &n);
  return 1;
}

/* A string property as a malloc'd NUL-terminated copy (*out NULL when absent). */
static int str_prop(napi_env env, napi_value o, const char *name, char **out, size_t *len) {
  napi_value v;
  bool has = false;
  size_t n = 0;
  *out = NULL;
  if (len != NULL) *len = 0;
  if (napi_has_named_property(env, o, name, &has) != napi_ok || !has) return 1;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || is_nullish(env, v)) return 1;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "turbocoap: tlsContext: expected a string property");
    return 0;
  }
  *out = (char *)malloc(n + 1u);
  if (*out == NULL) return 0;
  napi_get_value_string_utf8(env, v, *out, n + 1u, &n);
  if (len != NULL) *len = n;
  return 1;
}

static int bool_prop(napi_env env, napi_value o, const char *name, int def) {
  napi_value v;
  bool has = false, b = false;
  if (napi_has_named_property(env, o, name, &has) != napi_ok || !has) return def;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || is_nullish(env, v)) return def;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return def;
  return b ? 1 : 0;
}

static napi_value prop(napi_env env, napi_value o, const char *name) {
  napi_value v = NULL;
  bool has = false;
  if (napi_has_named_property(env, o, name, &has) != napi_ok || !has) return NULL;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || is_nullish(env, v)) return NULL;
  return v;
}

/* ------------------------------------------------------------------ TLS context export */

/* The server's PSK callback: JS pskCallback(identity) -> Uint8Array | undefined, synchronously
 * inside the handshake. */
static size_t psk_js(void *user, const char *identity, uint8_t *key, size_t cap) {
  tcn_tls *t = (tcn_tls *)user;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_value fn = NULL, undef, arg, res = NULL;
  size_t out = 0;
  if (t->psk_cb == NULL) return 0;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  if (napi_get_reference_value(env, t->psk_cb, &fn) == napi_ok && fn != NULL &&
      napi_get_undefined(env, &undef) == napi_ok &&
      napi_create_string_utf8(env, identity, NAPI_AUTO_LENGTH, &arg) == napi_ok) {
    napi_status st = napi_call_function(env, undef, fn, 1, &arg, &res);
    if (st == napi_ok && res != NULL) {
      bool is = false;
      napi_is_typedarray(env, res, &is);
      if (is) {
        napi_typedarray_type type;
        size_t n = 0;
        void *p = NULL;
        if (napi_get_typedarray_info(env, res, &type, &n, &p, NULL, NULL) == napi_ok &&
            type == napi_uint8_array && n > 0 && n <= cap && p != NULL) {
          memcpy(key, p, n);
          out = n;
        }
      }
    } else {
      napi_value e;
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) napi_get_and_clear_last_exception(env, &e); /* an unknown identity */
    }
  }
  napi_close_handle_scope(env, scope);
  return out;
}

static void tls_finalize(napi_env env, void *data, void *hint) {
  tcn_tls *t = (tcn_tls *)data;
  (void)env;
  (void)hint;
  t->finalized = 1;
  if (!t->js_dropped) {
    t->js_dropped = 1;
    tls_unref(t); /* frees t with the last reference */
  } else if (t->refs == 0) {
    free(t);
  }
}

/*
 * tlsContext({ role: 'server' | 'client', certPem?, keyPem?, caPem?, requestCert?,
 *              rejectUnauthorized?, pskTable?: [identity: string, key: Uint8Array][],
 *              pskCallback?: (identity) => Uint8Array | undefined, pskIdentity?, pskKey?,
 *              alpn?: 0 optional | 1 require | 2 off }): external, or throws an Error whose
 *              code is the TC_TLS_E_* name ('CONFIG', ...) and message OpenSSL's reason.
 */
static napi_value tls_context(napi_env env, napi_callback_info info) {
  napi_value argv[1], ext, v;
  size_t argc = 1;
  tc_tls_config cfg;
  tcn_tls *t = NULL;
  char *role = NULL, *cert = NULL, *key = NULL, *ca = NULL, *pid = NULL;
  size_t cert_len = 0, key_len = 0, ca_len = 0;
  char err[256];
  uint32_t alpn = 0;
  int r, ok = 0;
  napi_valuetype vt;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &vt) != napi_ok || vt != napi_object) {
    napi_throw_type_error(env, NULL, "turbocoap: tlsContext(options)");
    return NULL;
  }
  memset(&cfg, 0, sizeof cfg);
  if (!str_prop(env, argv[0], "role", &role, NULL) || !str_prop(env, argv[0], "certPem", &cert, &cert_len) ||
      !str_prop(env, argv[0], "keyPem", &key, &key_len) || !str_prop(env, argv[0], "caPem", &ca, &ca_len) ||
      !str_prop(env, argv[0], "pskIdentity", &pid, NULL))
    goto out;
  t = (tcn_tls *)calloc(1, sizeof *t);
  if (t == NULL) {
    napi_throw_error(env, NULL, "turbocoap: out of memory");
    goto out;
  }
  t->env = env;
  t->server = role != NULL && strcmp(role, "server") == 0;
  cfg.role = t->server ? TC_TLS_SERVER : TC_TLS_CLIENT;
  cfg.transport = TC_TLS_STREAM;
  cfg.cert_pem = cert;
  cfg.cert_len = cert_len;
  cfg.key_pem = key;
  cfg.key_len = key_len;
  cfg.ca_pem = ca;
  cfg.ca_len = ca_len;
  cfg.request_cert = bool_prop(env, argv[0], "requestCert", 0);
  cfg.reject_unauthorized = bool_prop(env, argv[0], "rejectUnauthorized", t->server ? cfg.request_cert : 1);
  if ((v = prop(env, argv[0], "alpn")) != NULL && napi_get_value_uint32(env, v, &alpn) == napi_ok && alpn <= 2)
    cfg.alpn = (tc_tls_alpn_policy)alpn;
  if ((v = prop(env, argv[0], "pskKey")) != NULL) {
    void *p;
    size_t n;
    if (!typed(env, v, napi_uint8_array, &p, &n)) goto out;
    cfg.psk_key = (const uint8_t *)p;
    cfg.psk_key_len = n;
  }
  cfg.psk_identity = pid;
  v = prop(env, argv[0], "pskCallback");
  if (v != NULL) {
    napi_typeof(env, v, &vt);
    if (vt == napi_function) {
      napi_create_reference(env, v, 1, &t->psk_cb);
      cfg.psk_fn = psk_js;
      cfg.psk_user = t;
    }
  }
  if (t->server && cfg.psk_fn == NULL && prop(env, argv[0], "pskTable") != NULL) {
    cfg.psk_fn = psk_js; /* a table alone still needs PSK suites: the callback answers none */
    cfg.psk_user = t;
  }
  r = tc_tls_ctx_new(&cfg, &t->ctx, err, sizeof err);
  if (r < 0) {
    napi_throw_error(env, tc_tls_error_name(r), err);
    goto out;
  }
  if ((v = prop(env, argv[0], "pskTable")) != NULL) {
    uint32_t n = 0, i;
    napi_get_array_length(env, v, &n);
    for (i = 0; i < n; i++) {
      napi_value e, iv, kv;
      char ident[130];
      void *p;
      size_t kl;
      if (napi_get_element(env, v, i, &e) != napi_ok || napi_get_element(env, e, 0, &iv) != napi_ok ||
          napi_get_element(env, e, 1, &kv) != napi_ok || !strarg(env, iv, ident, sizeof ident) ||
          !typed(env, kv, napi_uint8_array, &p, &kl))
        goto out;
      if (tc_tls_ctx_add_psk(t->ctx, ident, (const uint8_t *)p, kl) < 0) {
        napi_throw_error(env, "CONFIG", "turbocoap: bad PSK table entry (identity 1..128 bytes, key 1..64)");
        goto out;
      }
    }
  }
  t->refs = 1;
  if (napi_create_external(env, t, tls_finalize, NULL, &ext) != napi_ok) {
    napi_throw_error(env, NULL, "turbocoap: cannot create handle");
    goto out;
  }
  ok = 1;
out:
  free(role);
  free(cert);
  free(key);
  free(ca);
  free(pid);
  if (!ok) {
    if (t != NULL) {
      if (t->psk_cb != NULL) napi_delete_reference(env, t->psk_cb);
      if (t->ctx != NULL) tc_tls_ctx_free(t->ctx);
      free(t);
    }
    return NULL;
  }
  return ext;
}

static int get_tls(napi_env env, napi_value v, tcn_tls **out) {
  void *p;
  *out = NULL;
  if (is_nullish(env, v)) return 1;
  if (!tcg_external(env, v, "turbocoap: expected a TLS context or null", &p)) return 0;
  *out = (tcn_tls *)p;
  if ((*out)->ctx == NULL) {
    napi_throw_error(env, NULL, "turbocoap: the TLS context was freed");
    return 0;
  }
  return 1;
}

/* tlsContextFree(ctx): drops the JS side's reference now (listeners and connections using it
 * keep theirs; the context is freed with the last). */
static napi_value tls_context_free(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  void *p = NULL;
  tcn_tls *t;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL)
    return NULL;
  t = (tcn_tls *)p;
  if (!t->js_dropped) {
    t->js_dropped = 1;
    tls_unref(t); /* t itself stays until the finalizer */
  }
  return NULL;
}

/* ------------------------------------------------------------------ JS API */

/* streamCreate(config: Uint32Array(STREAM_CONFIG_WORDS), seed: Uint8Array(TCA_SEED_BYTES),
 *              self: object, onBatch: (ab, count, base) => void, txWords: Uint32Array,
 *              txBytes: Uint8Array): external */
static napi_value stream_create(napi_env env, napi_callback_info info) {
  napi_value argv[6], ext, name;
  size_t argc = 6, ncfg, nseed, n;
  void *cfgp, *seed, *p;
  const uint32_t *cfg;
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  tcn *h;
  napi_valuetype t;
  uint32_t bsize;
  int err = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "turbocoap: streamCreate: missing arguments");
    return NULL;
  }
  if (!typed(env, argv[0], napi_uint32_array, &cfgp, &ncfg) ||
      !typed(env, argv[1], napi_uint8_array, &seed, &nseed))
    return NULL;
  napi_typeof(env, argv[3], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "turbocoap: onBatch must be a function");
    return NULL;
  }
  if (!typed(env, argv[4], napi_uint32_array, &p, &n) || !typed(env, argv[5], napi_uint8_array, &p, &n))
    return NULL;
  if (ncfg != TC_CONN_CONFIG_WORDS + TC_SRV_CONFIG_WORDS + 4u || nseed != TCA_SEED_BYTES) {
    napi_throw_range_error(env, NULL, "turbocoap: streamCreate: config or seed of the wrong size");
    return NULL;
  }
  cfg = (const uint32_t *)cfgp;
  memcpy(&cc, cfg, sizeof cc);
  memcpy(&sc, cfg + TC_CONN_CONFIG_WORDS, sizeof sc);
  memcpy(&lim, cfg + TC_CONN_CONFIG_WORDS + TC_SRV_CONFIG_WORDS, sizeof lim);
  if (lim.rx_words < RX_WORDS_MIN) lim.rx_words = RX_WORDS_MIN;
  h = (tcn *)calloc(1, sizeof *h);
  if (h == NULL) {
    napi_throw_error(env, NULL, "turbocoap: out of memory");
    return NULL;
  }
  h->env = env;
  h->armed = NEVER;
  h->next_id = 1;
  h->max_body = sc.bw1.max_body;
  h->max_conns = lim.max_conns;
  h->linger_ms = cc.ping_timeout_ms > 0u ? cc.ping_timeout_ms : 1u;
  h->s = tcs_create(&cc, &sc, &lim, (const uint8_t *)seed, (uint32_t)nseed, &err);
  h->recvbuf = (uint8_t *)malloc(RECV_BUF);
  for (bsize = 64; bsize < 2u * lim.max_conns && bsize < (1u << 20); bsize <<= 1) {
  }
  h->bmask = bsize - 1u;
  h->buckets = (tcn_sock **)calloc(bsize, sizeof(tcn_sock *));
  if (h->s == NULL || h->recvbuf == NULL || h->buckets == NULL) {
    if (h->s == NULL && err == TC_E_INVALID)
      napi_throw_range_error(env, NULL, "turbocoap: invalid stream configuration");
    else
      napi_throw_error(env, NULL, "turbocoap: out of memory");
    free_state(h);
    free(h);
    return NULL;
  }
  if (napi_get_uv_event_loop(env, &h->loop) != napi_ok) {
    napi_throw_error(env, NULL, "turbocoap: no event loop");
    free_state(h);
    free(h);
    return NULL;
  }
  uv_timer_init(h->loop, &h->timer);
  h->timer.data = h;
  uv_check_init(h->loop, &h->check);
  h->check.data = h;
  uv_unref((uv_handle_t *)&h->timer);
  uv_unref((uv_handle_t *)&h->check);
  h->handles = 2;
  napi_create_reference(env, argv[2], 0, &h->self_ref);
  napi_create_reference(env, argv[3], 0, &h->cb_ref);
  napi_create_reference(env, argv[4], 1, &h->txw_ref);
  napi_create_reference(env, argv[5], 1, &h->txb_ref);
  napi_create_string_utf8(env, "turbocoap:stream", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &h->actx);
  napi_add_env_cleanup_hook(env, env_cleanup, h);
  {
    int64_t total;
    h->ext_mem = (int64_t)tcs_memory(h->s) + RECV_BUF;
    napi_adjust_external_memory(env, h->ext_mem, &total);
  }
  if (napi_create_external(env, h, finalize, NULL, &ext) != napi_ok) {
    napi_throw_error(env, NULL, "turbocoap: cannot create handle");
    return NULL;
  }
  return ext;
}

/* A socket address from an IP literal and a port; 0 or a negative errno. */
static int parse_addr(const char *host, uint32_t port, struct sockaddr_storage *ss) {
  if (port > 65535u) return UV_EINVAL;
  if (strchr(host, ':') != NULL) return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
  return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

/* streamListen(h, host: IP literal, port, flags: 1 ipv6Only, tlsCtx | null): the listener's
 * index (>= 0), or a negative errno */
static napi_value stream_listen(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  tcn *h;
  tcn_tls *tt;
  tcn_listener *l;
  char host[64];
  uint32_t port, flags;
  struct sockaddr_storage ss;
  int err;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      !get_state(env, argv[0], &h) || !strarg(env, argv[1], host, sizeof host) ||
      !tcg_u32arg(env, argv[2], &port) || !tcg_u32arg(env, argv[3], &flags) || !get_tls(env, argv[4], &tt))
    return NULL;
  if (h->closing) return tcg_num(env, UV_EBADF);
  if (h->nlisteners >= MAX_LISTENERS) return tcg_num(env, UV_EMFILE);
  if (tt != NULL && !tt->server) {
    napi_throw_type_error(env, NULL, "turbocoap: streamListen: a client TLS context");
    return NULL;
  }
  memset(&ss, 0, sizeof ss);
  err = parse_addr(host, port, &ss);
  if (err != 0) return tcg_num(env, err);
  l = (tcn_listener *)calloc(1, sizeof *l);
  if (l == NULL) return tcg_num(env, UV_ENOMEM);
  l->h = h;
  if ((err = uv_tcp_init(h->loop, &l->tcp)) != 0) {
    free(l);
    return tcg_num(env, err);
  }
  l->tcp.data = l;
  h->handles++;
  err = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, (flags & 1u) ? UV_TCP_IPV6ONLY : 0u);
  if (err == 0) err = uv_listen((uv_stream_t *)&l->tcp, BACKLOG, connection_cb);
  if (err != 0) {
    uv_close((uv_handle_t *)&l->tcp, listener_closed_cb);
    return tcg_num(env, err);
  }
  if (tt != NULL) {
    l->tctx = tt;
    tt->refs++;
  }
  if (!h->refd) uv_unref((uv_handle_t *)&l->tcp);
  l->index = h->nlisteners;
  h->listeners[h->nlisteners++] = l;
  return tcg_num(env, l->index);
}

/* streamAddress(h, index): [family, port, address] or a negative errno */
static napi_value stream_address(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcn *h;
  uint32_t index;
  struct sockaddr_storage ss;
  int len = sizeof ss, err;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &h) || !tcg_u32arg(env, argv[1], &index))
    return NULL;
  if (h->closing || index >= h->nlisteners || h->listeners[index] == NULL) return tcg_num(env, UV_EBADF);
  err = uv_tcp_getsockname(&h->listeners[index]->tcp, (struct sockaddr *)&ss, &len);
  if (err != 0) return tcg_num(env, err);
  return tcg_sockname(env, &ss);
}

/* streamConnect(h, host: IP literal, port, tlsCtx | null, servername | null): the connection's
 * id. OPEN (then READY) or CLOSED records follow: CLOSED with CONN_EVF_SYSERR (negative errno:
 * refused, unreachable, a bad address), CONN_EVF_TLSERR (handshake, verification, PSK), or
 * TC_E_FULL (a connection bound). */
static napi_value stream_connect(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t argc = 5;
  tcn *h;
  tcn_tls *tt;
  tcn_sock *k;
  char host[64], sn[256];
  uint32_t port, id;
  struct sockaddr_storage ss;
  int err, has_sn;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      !get_state(env, argv[0], &h) || !strarg(env, argv[1], host, sizeof host) ||
      !tcg_u32arg(env, argv[2], &port) || !get_tls(env, argv[3], &tt))
    return NULL;
  has_sn = !is_nullish(env, argv[4]);
  if (has_sn && !strarg(env, argv[4], sn, sizeof sn)) return NULL;
  if (tt != NULL && tt->server) {
    napi_throw_type_error(env, NULL, "turbocoap: streamConnect: a server TLS context");
    return NULL;
  }
  if (h->closing) return tcg_num(env, TC_E_STALE);
  id = alloc_id(h);
  h->hc.connects++;
  memset(&ss, 0, sizeof ss);
  err = parse_addr(host, port, &ss);
  if (err == 0 && h->nsocks >= h->max_conns) err = TC_E_FULL;
  k = err == 0 ? new_sock(h) : NULL;
  if (err == 0 && k == NULL) err = UV_ENOMEM;
  if (err != 0) {
    h->hc.connect_errors++;
    host_event(h, TC_CONN_EV_CLOSED, id, NULL, 0, err, err == TC_E_FULL ? 0u : TCB_CONN_EVF_SYSERR,
               NULL, 0);
    return tcg_num(env, id);
  }
  k->id = id;
  k->state = SK_CONNECTING;
  if (tt != NULL) {
    k->tctx = tt;
    tt->refs++;
    /* the name checked against the certificate: the servername, else the IP literal */
    {
      const char *name = has_sn ? sn : host;
      size_t n = strlen(name) + 1u;
      k->servername = (char *)malloc(n);
      if (k->servername != NULL) memcpy(k->servername, name, n);
    }
  }
  map_put(h, k);
  k->creq.data = k;
  err = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&ss, connect_cb);
  if (err != 0) {
    h->hc.connect_errors++;
    conn_end(k, err, TCB_CONN_EVF_SYSERR);
  }
  return tcg_num(env, id);
}

/* streamCloseConn(h, id, abort: boolean, diagnostic: string | null): 0, or TC_E_INVALID (no
 * such connection). Graceful: drain, TLS close_notify, FIN; abort: an Abort signal with the
 * diagnostic first. CLOSED follows. */
static napi_value stream_close_conn(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  tcn *h;
  tcn_sock *k;
  uint32_t id;
  bool abort = false;
  char diag[DIAG_MAX];
  int r, tries;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_state(env, argv[0], &h) || !tcg_u32arg(env, argv[1], &id))
    return NULL;
  napi_get_value_bool(env, argv[2], &abort);
  diag[0] = '\0';
  if (argc >= 4 && !is_nullish(env, argv[3])) {
    size_t n = 0;
    napi_get_value_string_utf8(env, argv[3], diag, sizeof diag, &n);
  }
  if (h->closing || (k = lookup(h, id)) == NULL || k->state == SK_CLOSING) return tcg_num(env, TC_E_INVALID);
  if (!k->in_tcs) { /* still connecting */
    conn_end(k, 0, 0);
    return tcg_num(env, 0);
  }
  for (tries = 0; tries < 2; tries++) {
    r = abort ? tcs_abort(h->s, uv_now(h->loop), id, diag[0] != '\0' ? diag : NULL)
              : tcs_shutdown(h->s, uv_now(h->loop), id);
    if (r != TCS_DELIVER || !dispatch(h)) break;
  }
  flush_out(h);
  schedule_check(h);
  return tcg_num(env, 0);
}

/* streamFlush(h, nwords, nbytes): records that failed (RC != 0), a negative TC_E_* for a
 * malformed table, or TC_E_STALE once closed. What the records produced is written at once. */
static napi_value stream_flush(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  tcn *h;
  uint32_t nwords, nbytes, wcap = 0, bcap = 0;
  void *wp, *bp;
  uint64_t now;
  int rc, rounds = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_state(env, argv[0], &h) || !tcg_u32arg(env, argv[1], &nwords) || !tcg_u32arg(env, argv[2], &nbytes))
    return NULL;
  if (h->closing || h->s == NULL) return tcg_num(env, TC_E_STALE);
  (void)tcg_area(env, h->txw_ref, napi_uint32_array, &wp, &wcap);
  (void)tcg_area(env, h->txb_ref, napi_uint8_array, &bp, &bcap);
  if (nwords > 0 && (wp == NULL || bp == NULL)) {
    napi_throw_type_error(env, NULL, "turbocoap: the tx areas are detached");
    return NULL;
  }
  if (nwords > wcap || nbytes > bcap) {
    napi_throw_range_error(env, NULL, "turbocoap: flush past the tx areas");
    return NULL;
  }
  uv_update_time(h->loop);
  now = uv_now(h->loop);
  while ((rc = tcs_flush(h->s, now, (uint32_t *)wp, nwords, (const uint8_t *)bp, nbytes)) == TCS_WRITE &&
         rounds++ < 1000000)
    flush_out(h);
  flush_out(h);
  schedule_check(h);
  rearm(h);
  return tcg_num(env, rc < 0 ? rc : (double)tcs_tx_failed(h->s));
}

/* streamReadBody(h, id, length): the Block1 body of a delivered request as a Uint8Array, or a
 * negative TC_E_* */
static napi_value stream_read_body(napi_env env, napi_callback_info info) {
  napi_value argv[3], ab, out;
  size_t argc = 3;
  tcn *h;
  uint32_t id, length;
  void *p = NULL;
  int rc;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_state(env, argv[0], &h) || !tcg_u32arg(env, argv[1], &id) || !tcg_u32arg(env, argv[2], &length))
    return NULL;
  if (h->closing || h->s == NULL) return tcg_num(env, TC_E_STALE);
  if (length > h->max_body) length = h->max_body;
  if (napi_create_arraybuffer(env, length > 0 ? length : 1, &p, &ab) != napi_ok || p == NULL) {
    napi_throw_error(env, NULL, "turbocoap: out of memory");
    return NULL;
  }
  rc = tcs_read_body(h->s, id, (uint8_t *)p, length);
  if (rc < 0) return tcg_num(env, rc);
  if (napi_create_typedarray(env, napi_uint8_array, (size_t)rc, ab, 0, &out) != napi_ok) return NULL;
  return out;
}

/* streamRef(h, on: boolean): listeners and connections keep the loop alive (or not) */
static napi_value stream_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcn *h;
  bool on;
  uint32_t i;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &h) || napi_get_value_bool(env, argv[1], &on) != napi_ok)
    return NULL;
  if (h->closing || (on ? 1 : 0) == h->refd) return NULL;
  h->refd = on ? 1 : 0;
  for (i = 0; i < h->nlisteners; i++)
    if (h->listeners[i] != NULL) {
      if (on) uv_ref((uv_handle_t *)&h->listeners[i]->tcp);
      else uv_unref((uv_handle_t *)&h->listeners[i]->tcp);
    }
  for (i = 0; i <= h->bmask; i++) {
    tcn_sock *k;
    for (k = h->buckets[i]; k != NULL; k = k->next) {
      if (on) uv_ref((uv_handle_t *)&k->tcp);
      else uv_unref((uv_handle_t *)&k->tcp);
    }
  }
  tcg_ref_pair(env, h->self_ref, h->cb_ref, on);
  return NULL;
}

/* streamStats(h, out: Uint8Array(STREAM_STATS_BYTES)): tcs_host_stats at the generated offsets */
static napi_value stream_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcn *h;
  void *p;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &h) || !tcg_out_bytes(env, argv[1], sizeof(tcs_host_stats), &p, 0))
    return NULL;
  if (h->s != NULL) {
    tcs_host_stats st;
    st.st = *tcs_get_stats(h->s);
    tc_srv_get_stats(tcs_srv(h->s), &st.srv);
    st.host = h->hc;
    memcpy(p, &st, sizeof st);
  } else {
    memcpy(p, &h->last, sizeof h->last);
  }
  return NULL;
}

/* streamClose(h, done: function): closes every listener and connection; done() once every
 * handle is closed. */
static napi_value stream_close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcn *h;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &h))
    return NULL;
  if (h->closing) return NULL;
  napi_create_reference(env, argv[1], 1, &h->close_cb_ref);
  if (h->refd) {
    h->refd = 0;
    tcg_ref_pair(env, h->self_ref, h->cb_ref, 0);
  }
  start_close(h);
  return NULL;
}

napi_value tc_stream_register(napi_env env, napi_value exports);
napi_value tc_stream_register(napi_env env, napi_value exports) {
  static const tcg_fn fns[] = {
      {"streamCreate", stream_create},       {"streamListen", stream_listen},
      {"streamAddress", stream_address},     {"streamConnect", stream_connect},
      {"streamCloseConn", stream_close_conn}, {"streamFlush", stream_flush},
      {"streamReadBody", stream_read_body},  {"streamRef", stream_ref},
      {"streamStats", stream_stats},         {"streamClose", stream_close},
      {"tlsContext", tls_context},           {"tlsContextFree", tls_context_free},
  };
  tcg_register(env, exports, fns, sizeof fns / sizeof fns[0]);
  return exports;
}

/*
 * udp.c — the native CoAP/UDP host: one UDP socket on Node's libuv loop and the N-API surface,
 * around the datagram driver (native/driver/dgram.h), which runs the server pipeline and owns
 * the drain and retry policies. Only libuv and N-API live here.
 *
 * Receive: libuv reads datagrams in recvmmsg batches into one big buffer (UV_UDP_RECVMMSG,
 * Linux; one at a time elsewhere); recv_cb passes each to tcd_recv. The batch goes to JS from
 * a uv_check handle after the poll phase (or when the driver asks earlier), through
 * napi_make_callback so that microtasks run before control returns. Replies the core makes at
 * once wait in the tx queue and leave with the same flush. Block1 bodies stay in the pipeline
 * until JS reads them (udpReadBody).
 *
 * Send: JS writes RESPOND / REQUEST / NOTIFY / ... records into a table and byte area it
 * registered at creation and calls flush() once per batch (tcd_flush); the tx queue goes out
 * with sendmmsg on Linux (the rest via uv_udp_send on EAGAIN), where runs of same-size
 * datagrams to one peer leave as one UDP GSO message (UDP_SEGMENT, Linux >= 4.18; off for the
 * socket if the kernel refuses it, or with TURBOCOAP_NO_GSO set); elsewhere with sendto, one
 * datagram per call.
 *
 * Time: a uv_timer armed to tcd_deadline drives tcd_timer; now = uv_now (ms).
 *
 * DTLS mode (udpCreate with a security object; TC_WITH_TLS): the DTLS layer
 * (native/driver/dtls.h) sits between the socket and the driver: received datagrams go to
 * tcdt_recv, the driver's tx queue is sealed per peer (tcdt_seal) and the ciphertext queue is
 * what the socket sends; deadlines and the end-of-turn check are the layer's (which fold in
 * the driver's). Nothing else changes.
 *
 * No allocation per datagram: every buffer is allocated at creation (the only per-batch
 * allocation is the JS ArrayBuffer handed to the callback).
 *
 * Lifetime: the JS driver object holds an external wrapping the state. While the socket is
 * ref'd (a listening server, a client with requests in flight) the state holds strong
 * references to the JS object and callback; otherwise weak ones, so an idle, unreachable
 * client can be collected (its finalizer closes the socket).
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sendmmsg */
#endif
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <node_api.h>
#include <uv.h>

#include "addr.h"
#include "dgram.h"
#include "glue.h"
#ifdef TC_WITH_TLS
#include "dtls.h"
#endif
#include "turbocoap.h"

#ifndef TCU_MMSG /* -DTCU_MMSG=0 builds the portable path on Linux too */
#if defined(__linux__)
#define TCU_MMSG 1 /* sendmmsg and UDP GSO: Linux only */
#else
#define TCU_MMSG 0 /* sendto, one datagram per call: macOS, the BSDs */
#endif
#endif

#define RX_WORDS (1u << 16)          /* record table: 256 KiB */
#define RX_DATA (1u << 20)           /* datagram bytes per batch */
#define RECV_CHUNK (64u * 1024u)     /* libuv's per-datagram chunk in recvmmsg mode */
#define RECV_CHUNKS 20u              /* libuv's recvmmsg width */
#define TXQ_ITEMS 1024u
#define TXQ_BYTES (2u * 1024u * 1024u)
#define FALLBACK_MAX 4096u           /* uv_udp_send requests queued at most */
#define SOCK_BUF (4 * 1024 * 1024)
#define NEVER UINT64_MAX
#if defined(__linux__)
#include <linux/errqueue.h> /* IP_RECVERR: ICMP errors of an unconnected socket */
#endif

#if TCU_MMSG
#define MMSG 256u                    /* datagrams per sendmmsg */
#define GSO_SEGS 64u
#define GSO_BYTES 60000u
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux >= 4.18; older libc headers lack it */
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#endif

typedef struct tcu {
  napi_env env;
  uv_loop_t *loop;
  uv_udp_t udp;
  uv_timer_t timer;
  uv_check_t check;
  int family;
  int handles;        /* handles not yet closed */
  int closing;        /* close requested */
  int ext_gone;       /* the JS external was finalized: the last one out frees the state */
  int env_gone;       /* the environment is being torn down: no more JS */
  int refd;
  int check_on;
  napi_ref self_ref, cb_ref, close_cb_ref, txw_ref, txb_ref;
  napi_async_context actx;
  int64_t ext_mem;    /* bytes reported to V8 as external memory */
  tcd_dgram *d;       /* the driver; NULL once closed */
#ifdef TC_WITH_TLS
  tcdt *t;            /* DTLS mode: the layer over d; NULL for plain UDP */
  napi_ref psk_cb_ref; /* DTLS server: the JS PSK callback */
#endif
  tcd_stats last;     /* its counters when it closed */
  uint8_t *recvbuf;
  uint64_t armed;
#if TCU_MMSG
  int gso;            /* UDP GSO allowed on this socket */
  struct mmsghdr mm[MMSG];
  struct sockaddr_in6 sa[MMSG];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[MMSG];
  uint32_t msg_iov0[MMSG + 1];   /* first iovec of each message */
  struct iovec iov[TXQ_ITEMS];
  uint32_t iov_item[TXQ_ITEMS];  /* tx item of each iovec */
  uint8_t taken[TXQ_ITEMS];
#endif
} tcu;

typedef struct fallback_req {
  uv_udp_send_t req;
  uint8_t data[];
} fallback_req;

/* ------------------------------------------------------------------ helpers */

static void throw_err(napi_env env, const char *msg) { napi_throw_error(env, NULL, msg); }

/* ------------------------------------------------------------------- sending */

static void fallback_done(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

/* One datagram through libuv's send queue (copied); returns 1 if it was queued. */
static int fallback_send(tcu *u, const tc_txq *q, const tc_tx *t) {
  struct sockaddr_in6 sa;
  fallback_req *f;
  uv_buf_t b;
  const uint8_t *buf = q->buf;
  if (u->udp.send_queue_count >= FALLBACK_MAX ||
      tcb_addr_to_sockaddr(buf + t->addr_offset, t->addr_length, &sa) == 0) {
    u->d->stats.drv.dropped++;
    return 0;
  }
  f = (fallback_req *)malloc(sizeof(fallback_req) + t->length);
  if (f == NULL) {
    u->d->stats.drv.dropped++;
    return 0;
  }
  memcpy(f->data, buf + t->offset, t->length);
  b = uv_buf_init((char *)f->data, t->length);
  if (uv_udp_send(&f->req, &u->udp, &b, 1, (const struct sockaddr *)&sa, fallback_done) != 0) {
    free(f);
    u->d->stats.drv.dropped++;
    return 0;
  }
  u->d->stats.drv.fallback++;
  return 1;
}

#if TCU_MMSG
/* The destination of tx item i equals that of item j. */
static int same_dest(const tc_txq *q, uint32_t i, uint32_t j) {
  const tc_tx *a = &q->items[i], *b = &q->items[j];
  return a->addr_length == b->addr_length &&
         memcmp(q->buf + a->addr_offset, q->buf + b->addr_offset, a->addr_length) == 0;
}

/*
 * Send the tx queue: sendmmsg batches of messages, where consecutive datagrams to one
 * destination of one size (the last may be shorter) travel as a single UDP GSO message
 * (UDP_SEGMENT): the kernel cuts it up, saving a stack traversal per datagram. Order per
 * destination is kept. If the kernel refuses GSO, it is turned off for this socket.
 */
static void send_queue(tcu *u, tc_txq *q, uv_os_fd_t fd, uint32_t *sent, uint32_t *calls) {
  tcd_counters *st = &u->d->stats.drv;
  uint32_t n = q->count, first = 0, i;
  memset(u->taken, 0, n);
  while (first < n) {
    uint32_t nmsg = 0, niov = 0, k;
    int r;
    if (u->udp.send_queue_count > 0) break; /* keep order behind queued fallback sends */
    /* build up to MMSG messages from the untaken items, in order */
    for (i = first; i < n && nmsg < MMSG; i++) {
      const tc_tx *t = &q->items[i];
      struct msghdr *h = &u->mm[nmsg].msg_hdr;
      uint32_t seg = t->length, bytes = t->length, nseg = 1, j;
      if (u->taken[i]) continue;
      u->taken[i] = 1;
      u->msg_iov0[nmsg] = niov;
      u->iov_item[niov] = i;
      u->iov[niov].iov_base = q->buf + t->offset;
      u->iov[niov].iov_len = t->length;
      niov++;
      if (u->gso && seg > 0) {
        for (j = i + 1; j < n && j < i + 4 * GSO_SEGS && nseg < GSO_SEGS; j++) {
          const tc_tx *x = &q->items[j];
          if (u->taken[j] || !same_dest(q, i, j)) continue;
          if (x->length > seg || x->length == 0 || bytes + x->length > GSO_BYTES) break;
          u->taken[j] = 1;
          u->iov_item[niov] = j;
          u->iov[niov].iov_base = q->buf + x->offset;
          u->iov[niov].iov_len = x->length;
          niov++;
          nseg++;
          bytes += x->length;
          if (x->length < seg) break; /* a shorter segment ends the group */
        }
      }
      h->msg_name = &u->sa[nmsg];
      h->msg_namelen = tcb_addr_to_sockaddr(q->buf + t->addr_offset, t->addr_length, &u->sa[nmsg]);
      h->msg_iov = &u->iov[u->msg_iov0[nmsg]];
      h->msg_iovlen = nseg;
      h->msg_flags = 0;
      if (nseg > 1) {
        struct cmsghdr *c = (struct cmsghdr *)u->ctl[nmsg].buf;
        uint16_t sz = (uint16_t)seg;
        h->msg_control = u->ctl[nmsg].buf;
        h->msg_controllen = CMSG_SPACE(sizeof sz);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof sz);
        memcpy(CMSG_DATA(c), &sz, sizeof sz);
      } else {
        h->msg_control = NULL;
        h->msg_controllen = 0;
      }
      nmsg++;
    }
    u->msg_iov0[nmsg] = niov;
    /* advance first past the items taken */
    while (first < n && u->taken[first]) first++;
    if (nmsg == 0) break;
    k = 0;
    while (k < nmsg) {
      do {
        r = sendmmsg(fd, u->mm + k, nmsg - k, MSG_DONTWAIT);
      } while (r < 0 && errno == EINTR);
      (*calls)++;
      if (r > 0) {
        uint32_t m;
        for (m = k; m < k + (uint32_t)r; m++) {
          *sent += (uint32_t)u->mm[m].msg_hdr.msg_iovlen;
          if (u->mm[m].msg_hdr.msg_iovlen > 1) st->gso_sends++;
        }
        k += (uint32_t)r;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      /* message k cannot go: a GSO message the kernel refuses turns GSO off and its
       * datagrams go one by one; a plain one is skipped (bad address, unreachable, ...) */
      if (u->mm[k].msg_hdr.msg_iovlen > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP ||
                                              errno == ENOPROTOOPT || errno == EMSGSIZE)) {
        uint32_t v;
        u->gso = 0;
        for (v = u->msg_iov0[k]; v < u->msg_iov0[k + 1]; v++) fallback_send(u, q, &q->items[u->iov_item[v]]);
      } else {
        st->send_errors++;
      }
      k++;
    }
    /* messages the socket would not take now: their datagrams via libuv's queue */
    for (; k < nmsg; k++) {
      uint32_t v;
      for (v = u->msg_iov0[k]; v < u->msg_iov0[k + 1]; v++) fallback_send(u, q, &q->items[u->iov_item[v]]);
    }
  }
  /* whatever is left (behind queued fallback sends) keeps its order through libuv */
  for (i = first; i < n; i++)
    if (!u->taken[i]) fallback_send(u, q, &q->items[i]);
}
#else
/* Send the tx queue one datagram per sendto; from the first the socket would not take (or
 * once libuv queues sends), the rest keep their order through libuv's queue. */
static void send_queue(tcu *u, tc_txq *q, uv_os_fd_t fd, uint32_t *sent, uint32_t *calls) {
  uint32_t n = q->count, i = 0;
  for (; i < n && u->udp.send_queue_count == 0; i++) {
    const tc_tx *t = &q->items[i];
    struct sockaddr_in6 sa;
    socklen_t sl = tcb_addr_to_sockaddr(q->buf + t->addr_offset, t->addr_length, &sa);
    ssize_t r;
    do {
      r = sendto(fd, q->buf + t->offset, t->length, MSG_DONTWAIT, (const struct sockaddr *)&sa, sl);
    } while (r < 0 && errno == EINTR);
    (*calls)++;
    if (r >= 0) (*sent)++;
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
    else u->d->stats.drv.send_errors++;
  }
  for (; i < n; i++) fallback_send(u, q, &q->items[i]);
}
#endif

#ifdef TC_WITH_TLS
/* DTLS mode: send and empty the layer's ciphertext queue. */
static void send_out(tcu *u) {
  uint32_t sent = 0, calls = 0;
  uv_os_fd_t fd;
  tc_txq *q = tcdt_out(u->t);
  if (q->count == 0) return;
  if (!u->closing && uv_fileno((const uv_handle_t *)&u->udp, &fd) == 0) send_queue(u, q, fd, &sent, &calls);
  tcdt_out_sent(u->t, sent, calls);
}
#endif

/* Send and empty the tx queue (DTLS mode: seal it per peer, then send the ciphertext). */
static void send_txq(tcu *u) {
  uint32_t sent = 0, calls = 0;
  uv_os_fd_t fd;
  if (u->d == NULL) return;
#ifdef TC_WITH_TLS
  if (u->t != NULL) {
    uint64_t now = uv_now(u->loop);
    while (tcdt_seal(u->t, now) == TCD_SEND) send_out(u);
    send_out(u);
    return;
  }
#endif
  if (u->d->txq.count == 0) return;
  if (!u->closing && uv_fileno((const uv_handle_t *)&u->udp, &fd) == 0)
    send_queue(u, &u->d->txq, fd, &sent, &calls);
  tcd_tx_sent(u->d, sent, calls);
}

/* The layer's (DTLS) or the driver's deadline, timer run and end-of-turn work. */
static uint64_t deadline_of(const tcu *u) {
#ifdef TC_WITH_TLS
  if (u->t != NULL) return tcdt_deadline(u->t);
#endif
  return tcd_deadline(u->d);
}

static int timer_of(tcu *u, uint64_t now) {
#ifdef TC_WITH_TLS
  if (u->t != NULL) return tcdt_timer(u->t, now);
#endif
  return tcd_timer(u->d, now);
}

static int pending_of(const tcu *u) {
#ifdef TC_WITH_TLS
  if (u->t != NULL) return tcdt_pending(u->t);
#endif
  return tcd_pending(u->d);
}

/* ------------------------------------------------------------------- to JS */

static void make_callback(tcu *u, napi_value fn, size_t argc, const napi_value *argv) {
  tcg_make_callback(u->env, u->actx, u->self_ref, fn, argc, argv);
}

/* Hand the pending records to JS: callback(arrayBuffer, count, dataBase). */
static void dispatch(tcu *u) {
  napi_env env = u->env;
  napi_handle_scope scope;
  napi_value ab, fn = NULL, argv[3];
  void *p;
  tcb_rx *rx;
  size_t wbytes, total;
  uint32_t count;
  if (u->d == NULL) return;
  rx = &u->d->rx;
  wbytes = (size_t)rx->word_used * 4u;
  total = wbytes + rx->data_used;
  count = rx->count;
  if (count == 0) return;
  if (u->closing || u->cb_ref == NULL) {
    tcb_rx_reset(rx);
    return;
  }
  napi_open_handle_scope(env, &scope);
  if (napi_create_arraybuffer(env, total, &p, &ab) != napi_ok ||
      napi_get_reference_value(env, u->cb_ref, &fn) != napi_ok || fn == NULL) {
    tcb_rx_reset(rx);
    napi_close_handle_scope(env, scope);
    return;
  }
  memcpy(p, rx->words, wbytes);
  memcpy((uint8_t *)p + wbytes, rx->data, rx->data_used);
  tcd_delivered(u->d);
  argv[0] = ab;
  napi_create_uint32(env, count, &argv[1]);
  napi_create_uint32(env, (uint32_t)wbytes, &argv[2]);
  make_callback(u, fn, 3, argv);
  napi_close_handle_scope(env, scope);
}

/* Does what a driver call asked (TCD_SEND, TCD_DELIVER); 0 once the state is closing. */
static int act(tcu *u, int action) {
  if (action == TCD_SEND) send_txq(u);
  else dispatch(u);
  return !u->closing;
}

/* ------------------------------------------------------------------- timing */

static void timer_cb(uv_timer_t *t);

static void rearm(tcu *u) {
  uint64_t dl, now;
  if (u->closing) return;
  dl = deadline_of(u);
  if (dl == NEVER) {
    if (u->armed != NEVER) uv_timer_stop(&u->timer);
    u->armed = NEVER;
    return;
  }
  if (dl >= u->armed) return; /* the armed timer fires first; it re-arms */
  now = uv_now(u->loop);
  u->armed = dl;
  uv_timer_start(&u->timer, timer_cb, dl > now ? dl - now : 0, 0);
}

static void timer_cb(uv_timer_t *t) {
  tcu *u = (tcu *)t->data;
  uint64_t now = uv_now(u->loop);
  int a;
  u->armed = NEVER;
  if (u->closing) return;
  while ((a = timer_of(u, now)) > 0)
    if (!act(u, a)) return;
  dispatch(u);
  if (u->closing) return;
  send_txq(u);
  if (deadline_of(u) <= uv_now(u->loop)) {
    /* still due after bounded rounds: retry soon rather than spin */
    u->armed = uv_now(u->loop) + 1;
    uv_timer_start(&u->timer, timer_cb, 1, 0);
    return;
  }
  rearm(u);
}

/* The end of a loop turn with records or datagrams pending (tcd_pending). */
static void check_cb(uv_check_t *c) {
  tcu *u = (tcu *)c->data;
  uv_check_stop(c);
  u->check_on = 0;
  if (u->closing) return;
  dispatch(u);
  if (u->closing) return;
  send_txq(u);
  rearm(u);
}

/* ------------------------------------------------------------------ receiving */

static void schedule_check(tcu *u) {
  if (pending_of(u) && !u->check_on) {
    u->check_on = 1;
    uv_check_start(&u->check, check_cb);
  }
}

#if defined(__linux__)
/* The socket's error queue (IP_RECVERR / IPV6_RECVERR, set at bind): each ICMP port unreachable
 * goes to the driver (tcd_unreachable) with the destination it answered, so that requests to a
 * closed port fail at once. Drained completely (a non-empty queue keeps the socket
 * readable). */
static void read_errqueue(tcu *u) {
  uv_os_fd_t fd;
  int i;
  if (uv_fileno((const uv_handle_t *)&u->udp, &fd) != 0) return;
  for (i = 0; i < 256 && !u->closing; i++) {
    struct sockaddr_in6 sa;
    union {
      char buf[512];
      struct cmsghdr align;
    } ctl;
    uint8_t byte;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t r;
    memset(&mh, 0, sizeof mh);
    iov.iov_base = &byte;
    iov.iov_len = 1;
    mh.msg_name = &sa;
    mh.msg_namelen = sizeof sa;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    do {
      r = recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) break;
    for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
      const struct sock_extended_err *e;
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen;
      int a;
      if (!(c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) &&
          !(c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR))
        continue;
      e = (const struct sock_extended_err *)(const void *)CMSG_DATA(c);
      if (e->ee_errno != ECONNREFUSED ||
          (e->ee_origin != SO_EE_ORIGIN_ICMP && e->ee_origin != SO_EE_ORIGIN_ICMP6))
        continue;
      alen = tcb_sockaddr_to_addr((const struct sockaddr *)&sa, addr);
      if (alen == 0) continue;
      while ((a = tcd_unreachable(u->d, uv_now(u->loop), addr, alen)) > 0)
        if (!act(u, a)) return;
    }
  }
  schedule_check(u);
}
#endif

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tcu *u = (tcu *)h->data;
  (void)suggested;
  buf->base = (char *)u->recvbuf;
  buf->len = RECV_CHUNK * RECV_CHUNKS;
}

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *sa,
                    unsigned flags) {
  tcu *u = (tcu *)h->data;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen;
  uint64_t now;
  int a;
  if (u->closing || (flags & UV_UDP_MMSG_FREE)) return;
  if (nread < 0) {
#if defined(__linux__)
    if (nread == UV_ECONNREFUSED) { /* an ICMP error in the queue (IP_RECVERR) */
      read_errqueue(u);
      return;
    }
#endif
    u->d->stats.drv.recv_errors++;
    return;
  }
  if (sa == NULL || (flags & UV_UDP_PARTIAL)) return;
  alen = tcb_sockaddr_to_addr(sa, addr);
  if (alen == 0) return;
  now = uv_now(u->loop);
#ifdef TC_WITH_TLS
  if (u->t != NULL) {
    while ((a = tcdt_recv(u->t, now, addr, alen, (const uint8_t *)buf->base, (uint32_t)nread)) > 0)
      if (!act(u, a)) return;
    schedule_check(u);
    return;
  }
#endif
  while ((a = tcd_recv(u->d, now, addr, alen, (const uint8_t *)buf->base, (uint32_t)nread)) > 0)
    if (!act(u, a)) return;
  schedule_check(u);
}

/* ------------------------------------------------------------------ lifetime */

static void free_state(tcu *u) {
  if (u->d != NULL) u->last = *tcd_get_stats(u->d); /* stats() still answers after close */
#ifdef TC_WITH_TLS
  tcdt_destroy(u->t);
  u->t = NULL;
#endif
  tcd_destroy(u->d);
  u->d = NULL;
  free(u->recvbuf);
  u->recvbuf = NULL;
}

static void drop_refs(tcu *u) {
  napi_env env = u->env;
  napi_ref *refs[] = {&u->self_ref, &u->cb_ref, &u->txw_ref, &u->txb_ref, &u->close_cb_ref,
#ifdef TC_WITH_TLS
                      &u->psk_cb_ref,
#endif
  };
  tcg_drop_refs(env, refs, sizeof refs / sizeof refs[0], &u->actx);
}

static void env_cleanup(void *arg);

static void closed_cb(uv_handle_t *h) {
  tcu *u = (tcu *)h->data;
  if (--u->handles > 0) return;
  free_state(u);
  if (!u->env_gone && u->ext_mem != 0) {
    int64_t left;
    napi_adjust_external_memory(u->env, -u->ext_mem, &left);
  }
  u->ext_mem = 0;
  if (u->ext_gone) { /* nobody else points at u */
    free(u);
    return;
  }
  if (u->env_gone) return; /* the external's finalizer (if it ever runs) frees u */
  napi_remove_env_cleanup_hook(u->env, env_cleanup, u);
  tcg_call_ref(u->env, u->actx, u->self_ref, u->close_cb_ref);
  drop_refs(u);
}

static void start_close(tcu *u) {
  if (u->closing) return;
  u->closing = 1;
  uv_udp_recv_stop(&u->udp);
  uv_close((uv_handle_t *)&u->udp, closed_cb);
  uv_close((uv_handle_t *)&u->timer, closed_cb);
  uv_close((uv_handle_t *)&u->check, closed_cb);
}

/* The environment is going away (worker exit, process exit) without close(). */
static void env_cleanup(void *arg) {
  tcu *u = (tcu *)arg;
  u->env_gone = 1; /* no JS from now on */
  drop_refs(u);
  start_close(u);
}

static void finalize(napi_env env, void *data, void *hint) {
  tcu *u = (tcu *)data;
  (void)hint;
  (void)env;
  u->ext_gone = 1;
  if (u->handles == 0) { /* closed already */
    free(u);
    return;
  }
  /* collected while open (only possible when unref'd) or while closing: the last close
   * callback frees u */
  if (!u->env_gone) {
    napi_remove_env_cleanup_hook(u->env, env_cleanup, u);
    drop_refs(u);
    u->env_gone = 1; /* no JS callbacks for an object nobody can see */
  }
  start_close(u);
}

/* ------------------------------------------------------------------ JS API */

static int get_state(napi_env env, napi_value v, tcu **out) {
  void *p;
  if (!tcg_external(env, v, "turbocoap: expected a UDP driver handle", &p)) return 0;
  *out = (tcu *)p;
  return 1;
}

/* an empty (NULL-data) array is refused */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  return tcg_typed(env, v, want, data, n, 1);
}


#ifdef TC_WITH_TLS
/* ------------------------------------------------------------------ DTLS mode */

/* A string property as a malloc'd NUL-terminated copy (NULL when absent or not a string). */
static char *str_prop(napi_env env, napi_value o, const char *name, size_t *len) {
  napi_value v;
  napi_valuetype t;
  size_t n = 0;
  char *p;
  if (len != NULL) *len = 0;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok ||
      t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok)
    return NULL;
  p = (char *)malloc(n + 1);
  if (p == NULL) return NULL;
  napi_get_value_string_utf8(env, v, p, n + 1, &n);
  if (len != NULL) *len = n;
  return p;
}

static int bool_prop(napi_env env, napi_value o, const char *name, int dflt) {
  napi_value v;
  bool b;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b ? 1 : 0;
}

static uint32_t u32_prop(napi_env env, napi_value o, const char *name) {
  napi_value v;
  uint32_t x = 0;
  if (napi_get_named_property(env, o, name, &v) != napi_ok || napi_get_value_uint32(env, v, &x) != napi_ok) return 0;
  return x;
}

/* A Uint8Array property's bytes (borrowed; NULL when absent). */
static const uint8_t *bytes_prop(napi_env env, napi_value o, const char *name, size_t *len) {
  napi_value v;
  napi_typedarray_type t;
  void *p = NULL;
  *len = 0;
  if (napi_get_named_property(env, o, name, &v) != napi_ok ||
      napi_get_typedarray_info(env, v, &t, len, &p, NULL, NULL) != napi_ok || t != napi_uint8_array) {
    *len = 0;
    return NULL;
  }
  return (const uint8_t *)p;
}

/* The server's PSK callback: JS pskCallback(identity) -> Uint8Array | undefined. Runs inside
 * tcdt_recv (a libuv callback), so it opens its own handle scope; a throw counts as unknown. */
static size_t psk_js(void *user, const char *identity, uint8_t *key, size_t cap) {
  tcu *u = (tcu *)user;
  napi_env env = u->env;
  napi_handle_scope scope;
  napi_value fn = NULL, arg, res, undef;
  napi_typedarray_type t;
  void *p = NULL;
  size_t n = 0, out = 0;
  if (u->env_gone || u->psk_cb_ref == NULL) return 0;
  napi_open_handle_scope(env, &scope);
  if (napi_get_reference_value(env, u->psk_cb_ref, &fn) == napi_ok && fn != NULL &&
      napi_create_string_utf8(env, identity, NAPI_AUTO_LENGTH, &arg) == napi_ok) {
    napi_get_undefined(env, &undef);
    if (napi_call_function(env, undef, fn, 1, &arg, &res) == napi_ok) {
      if (napi_get_typedarray_info(env, res, &t, &n, &p, NULL, NULL) == napi_ok && t == napi_uint8_array &&
          p != NULL && n > 0 && n <= cap) {
        memcpy(key, p, n);
        out = n;
      }
    } else {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e); /* a throwing callback: unknown identity */
    }
  }
  napi_close_handle_scope(env, scope);
  return out;
}

/* DTLS mode from the security object (TS: ts/transport/dtls.ts normalizes TlsSettings into it):
 *   certPem, keyPem, caPem: string; requestCert, rejectUnauthorized: boolean;
 *   pskIdentity: string, pskKey: Uint8Array (client); pskIdentities: string[], pskKeys:
 *   Uint8Array[], pskCallback: function (server); servername: string (client);
 *   mtu, retransmitMs, maxSessions, maxPerHost, maxHalfOpen, idleMs, handshakeMs: number.
 * Throws (returns 0) on a bad configuration, with OpenSSL's reason. */
static int dtls_attach(napi_env env, tcu *u, napi_value server_v, napi_value o) {
  tc_tls_config c;
  tc_tls_ctx *ctx = NULL;
  tcdt_limits lim;
  bool server = false;
  char err[320], *cert, *key, *ca, *pid, *sni, *hint;
  size_t klen = 0;
  const uint8_t *pkey;
  napi_value v;
  napi_valuetype vt;
  int rc, e;
  napi_get_value_bool(env, server_v, &server);
  memset(&c, 0, sizeof c);
  memset(&lim, 0, sizeof lim);
  c.role = server ? TC_TLS_SERVER : TC_TLS_CLIENT;
  c.transport = TC_TLS_DATAGRAM;
  cert = str_prop(env, o, "certPem", &c.cert_len);
  key = str_prop(env, o, "keyPem", &c.key_len);
  ca = str_prop(env, o, "caPem", &c.ca_len);
  pid = str_prop(env, o, "pskIdentity", NULL);
  sni = str_prop(env, o, "servername", NULL);
  hint = str_prop(env, o, "pskHint", NULL);
  c.cert_pem = cert;
  c.key_pem = key;
  c.ca_pem = ca;
  c.request_cert = bool_prop(env, o, "requestCert", 0);
  c.reject_unauthorized = bool_prop(env, o, "rejectUnauthorized", server ? 0 : 1);
  c.alpn = TC_TLS_ALPN_OFF;
  pkey = bytes_prop(env, o, "pskKey", &klen);
  if (!server && pid != NULL && pkey != NULL) {
    c.psk_identity = pid;
    c.psk_key = pkey;
    c.psk_key_len = klen;
    lim.flags |= TCDT_PSK;
  }
  c.psk_hint = server ? hint : NULL;
  if (server && napi_get_named_property(env, o, "pskCallback", &v) == napi_ok && napi_typeof(env, v, &vt) == napi_ok &&
      vt == napi_function) {
    napi_create_reference(env, v, 1, &u->psk_cb_ref);
    c.psk_fn = psk_js;
    c.psk_user = u;
  }
  c.mtu = u32_prop(env, o, "mtu");
  c.retransmit_ms = u32_prop(env, o, "retransmitMs");
  rc = tc_tls_ctx_new(&c, &ctx, err, sizeof err);
  if (rc == 0 && server && napi_get_named_property(env, o, "pskIdentities", &v) == napi_ok) {
    napi_value keys;
    uint32_t i, n = 0;
    bool isarr = false;
    napi_is_array(env, v, &isarr);
    if (isarr && napi_get_named_property(env, o, "pskKeys", &keys) == napi_ok) {
      napi_get_array_length(env, v, &n);
      for (i = 0; i < n && rc == 0; i++) {
        napi_value idv, kv;
        char id[160];
        size_t idl = 0, kl = 0;
        void *kp = NULL;
        napi_typedarray_type kt;
        if (napi_get_element(env, v, i, &idv) != napi_ok || napi_get_element(env, keys, i, &kv) != napi_ok ||
            napi_get_value_string_utf8(env, idv, id, sizeof id, &idl) != napi_ok ||
            napi_get_typedarray_info(env, kv, &kt, &kl, &kp, NULL, NULL) != napi_ok || kt != napi_uint8_array ||
            tc_tls_ctx_add_psk(ctx, id, (const uint8_t *)kp, kl) != 0) {
          rc = TC_TLS_E_CONFIG;
          snprintf(err, sizeof err, "bad PSK entry %u (identity 1..128 bytes, key 1..64 bytes, at most 64 entries)", i);
        }
      }
    }
  }
  free(cert);
  free(key);
  free(ca);
  free(pid);
  free(hint);
  if (rc != 0) {
    napi_value msg, code, ex;
    tc_tls_ctx_free(ctx);
    free(sni);
    if (u->psk_cb_ref != NULL) napi_delete_reference(env, u->psk_cb_ref);
    u->psk_cb_ref = NULL;
    napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, tc_tls_error_name(rc), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &ex);
    napi_throw(env, ex);
    return 0;
  }
  lim.max_sessions = u32_prop(env, o, "maxSessions");
  lim.max_per_host = u32_prop(env, o, "maxPerHost");
  lim.max_half_open = u32_prop(env, o, "maxHalfOpen");
  lim.idle_ms = u32_prop(env, o, "idleMs");
  lim.handshake_ms = u32_prop(env, o, "handshakeMs");
  u->t = tcdt_create(u->d, ctx, server ? 1 : 0, server ? NULL : sni, &lim, &e); /* takes ctx */
  free(sni);
  if (u->t == NULL) {
    throw_err(env, e == TC_E_FULL ? "turbocoap: out of memory" : "turbocoap: bad DTLS configuration");
    return 0;
  }
  return 1;
}

/* dtlsStats(h): the DTLS layer's counters as an object (undefined for a plain UDP driver). */
static napi_value dtls_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  size_t argc = 1;
  tcu *u;
  const tcdt_stats *st;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_state(env, argv[0], &u))
    return NULL;
  if (u->t == NULL) return NULL;
  st = tcdt_get_stats(u->t);
  napi_create_object(env, &out);
#define DS_(f) napi_set_named_property(env, out, #f, tcg_num(env, (double)st->f))
  DS_(sessions); DS_(half_open); DS_(hosts); DS_(hello_verify); DS_(handshakes); DS_(handshake_failures);
  DS_(refused); DS_(evicted); DS_(expired); DS_(closed); DS_(dropped_in); DS_(dropped_out);
  DS_(records_in); DS_(records_out); DS_(bytes_in); DS_(bytes_out); DS_(handshake_bytes); DS_(resumed);
#undef DS_
  napi_set_named_property(env, out, "memory", tcg_num(env, (double)tcdt_memory(u->t)));
  return out;
}
#endif

/* udpCreate(family 4|6, config: Uint32Array(CONFIG_WORDS), seed: Uint8Array(TCA_SEED_BYTES),
 *           self: object, onBatch: function, txWords: Uint32Array, txBytes: Uint8Array
 *           [, server: boolean, security: object]): external. With security: DTLS mode
 *           (dtls_attach: the object's fields). */
static napi_value udp_create(napi_env env, napi_callback_info info) {
  static const tcd_limits lim = {RX_WORDS, RX_DATA, TXQ_ITEMS, TXQ_BYTES};
  napi_value argv[9], ext, name;
  size_t argc = 9, ncfg, nseed, n;
  uint32_t family;
  void *cfg, *seed, *p;
  tcu *u;
  napi_valuetype t;
  int err;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) {
    napi_throw_type_error(env, NULL, "turbocoap: udpCreate: missing arguments");
    return NULL;
  }
  if (!tcg_u32arg(env, argv[0], &family)) return NULL;
  if (family != 4 && family != 6) {
    napi_throw_range_error(env, NULL, "turbocoap: family must be 4 or 6");
    return NULL;
  }
  if (!typed(env, argv[1], napi_uint32_array, &cfg, &ncfg) ||
      !typed(env, argv[2], napi_uint8_array, &seed, &nseed))
    return NULL;
  napi_typeof(env, argv[4], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, NULL, "turbocoap: onBatch must be a function");
    return NULL;
  }
  /* the tx areas are only checked here; udp_flush looks them up again on every call */
  if (!typed(env, argv[5], napi_uint32_array, &p, &n) || !typed(env, argv[6], napi_uint8_array, &p, &n))
    return NULL;
  u = (tcu *)calloc(1, sizeof *u);
  if (u == NULL) {
    throw_err(env, "turbocoap: out of memory");
    return NULL;
  }
  u->env = env;
  u->family = (int)family;
  u->armed = NEVER;
#if TCU_MMSG
  u->gso = getenv("TURBOCOAP_NO_GSO") == NULL;
#endif
  u->d = tcd_create((const uint32_t *)cfg, ncfg > UINT32_MAX ? 0 : (uint32_t)ncfg,
                    (const uint8_t *)seed, nseed > UINT32_MAX ? 0 : (uint32_t)nseed, &lim, &err);
  u->recvbuf = (uint8_t *)malloc(RECV_CHUNK * RECV_CHUNKS);
  if (u->d == NULL || u->recvbuf == NULL) {
    if (u->d == NULL && err == TC_E_INVALID)
      napi_throw_range_error(env, NULL, "turbocoap: invalid endpoint configuration");
    else
      throw_err(env, "turbocoap: out of memory");
    goto fail_js;
  }
#ifdef TC_WITH_TLS
  if (argc >= 9) {
    napi_valuetype st;
    napi_typeof(env, argv[8], &st);
    if (st == napi_object && !dtls_attach(env, u, argv[7], argv[8])) goto fail_js;
  }
#endif
  if (napi_get_uv_event_loop(env, &u->loop) != napi_ok) {
    throw_err(env, "turbocoap: no event loop");
    goto fail_js;
  }
  err = uv_udp_init_ex(u->loop, &u->udp, (family == 4 ? AF_INET : AF_INET6) | UV_UDP_RECVMMSG);
  if (err != 0) {
    throw_err(env, uv_strerror(err));
    goto fail_js;
  }
  u->udp.data = u;
  uv_timer_init(u->loop, &u->timer);
  u->timer.data = u;
  uv_check_init(u->loop, &u->check);
  u->check.data = u;
  uv_unref((uv_handle_t *)&u->timer);
  uv_unref((uv_handle_t *)&u->check);
  uv_unref((uv_handle_t *)&u->udp); /* JS refs it while it has a reason to live */
  u->handles = 3;
  napi_create_reference(env, argv[3], 0, &u->self_ref);
  napi_create_reference(env, argv[4], 0, &u->cb_ref);
  napi_create_reference(env, argv[5], 1, &u->txw_ref);
  napi_create_reference(env, argv[6], 1, &u->txb_ref);
  napi_create_string_utf8(env, "turbocoap:udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &u->actx);
  napi_add_env_cleanup_hook(env, env_cleanup, u);
  {
    /* tell V8 what an endpoint costs, so that unreachable idle ones are collected soon */
    int64_t total;
    u->ext_mem = (int64_t)u->d->memory + RECV_CHUNK * RECV_CHUNKS;
    napi_adjust_external_memory(env, u->ext_mem, &total);
  }
  if (napi_create_external(env, u, finalize, NULL, &ext) != napi_ok) {
    throw_err(env, "turbocoap: cannot create handle");
    return NULL; /* u stays with the loop; closed at env cleanup */
  }
  return ext;
fail_js:
  free_state(u);
  free(u);
  return NULL;
}

/* udpBind(h, host: string, port, flags: 1 ipv6Only | 2 reuseAddr): 0 or a negative errno */
static napi_value udp_bind(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4, hl;
  tcu *u;
  char host[128];
  uint32_t port, flags, uvf = 0;
  struct sockaddr_storage ss;
  int err, size;
  uv_os_fd_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      !get_state(env, argv[0], &u) || !tcg_u32arg(env, argv[2], &port) ||
      !tcg_u32arg(env, argv[3], &flags))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[1], host, sizeof host, &hl) != napi_ok) {
    napi_throw_type_error(env, NULL, "turbocoap: host must be a string");
    return NULL;
  }
  if (u->closing) return tcg_num(env, UV_EBADF);
  if (port > 65535) return tcg_num(env, UV_EINVAL);
  if (u->family == 4) err = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
  else err = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss);
  if (err != 0) return tcg_num(env, err);
  if (flags & 1u) uvf |= UV_UDP_IPV6ONLY;
  if (flags & 2u) uvf |= UV_UDP_REUSEADDR;
  uvf |= UV_UDP_LINUX_RECVERR; /* ICMP port unreachable reported (Linux; elsewhere a no-op) */
  err = uv_udp_bind(&u->udp, (const struct sockaddr *)&ss, uvf);
  if (err != 0) return tcg_num(env, err);
  if (uv_fileno((const uv_handle_t *)&u->udp, &fd) == 0) {
    size = SOCK_BUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    size = SOCK_BUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  err = uv_udp_recv_start(&u->udp, alloc_cb, recv_cb);
  if (err == 0 && !u->refd) uv_unref((uv_handle_t *)&u->udp);
  return tcg_num(env, err);
}

/* udpAddress(h): [family, port, address] or a negative errno */
static napi_value udp_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  tcu *u;
  struct sockaddr_storage ss;
  int len = sizeof ss, err;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      !get_state(env, argv[0], &u))
    return NULL;
  if (u->closing) return tcg_num(env, UV_EBADF);
  err = uv_udp_getsockname(&u->udp, (struct sockaddr *)&ss, &len);
  if (err != 0) return tcg_num(env, err);
  return tcg_sockname(env, &ss);
}

/* udpFlush(h, nwords, nbytes): number of records that failed (rc != 0), or a negative
 * TC_E_* for a malformed table, or TC_E_STALE once closed. Runs in rounds: whenever the tx
 * queue fills (a long run of records, an Observe fan-out to many observers) it is sent and
 * reset and the run goes on. Bounded: every TCB_TX_DRAIN comes with datagrams queued, and
 * the records and pending observers produce finitely many. */
static napi_value udp_flush(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  tcu *u;
  uint32_t nwords, nbytes, txw_cap = 0, txb_cap = 0;
  uint32_t *txw;
  uint8_t *txb;
  void *p;
  uint64_t now;
  int rc;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_state(env, argv[0], &u) || !tcg_u32arg(env, argv[1], &nwords) ||
      !tcg_u32arg(env, argv[2], &nbytes))
    return NULL;
  if (u->closing || u->d == NULL) return tcg_num(env, TC_E_STALE);
  (void)tcg_area(env, u->txw_ref, napi_uint32_array, &p, &txw_cap);
  txw = (uint32_t *)p;
  (void)tcg_area(env, u->txb_ref, napi_uint8_array, &p, &txb_cap);
  txb = (uint8_t *)p;
  if (nwords > 0 && (txw == NULL || txb == NULL)) {
    napi_throw_type_error(env, NULL, "turbocoap: the tx areas are detached");
    return NULL;
  }
  if (nwords > txw_cap || nbytes > txb_cap) {
    napi_throw_range_error(env, NULL, "turbocoap: flush past the tx areas");
    return NULL;
  }
  uv_update_time(u->loop);
  now = uv_now(u->loop);
  while ((rc = tcd_flush(u->d, now, txw, nwords, txb, nbytes)) == TCD_SEND) send_txq(u);
  send_txq(u);
  rearm(u);
  return tcg_num(env, rc < 0 ? rc : (double)u->d->tx_failed);
}

/* udpReadBody(h, id, length): the Block1 body id of a delivered request (TC_SRVF_BODY,
 * length from its record) as a Uint8Array, released from the pipeline; or a negative TC_E_*
 * (TC_E_STALE: unknown, expired or already read). */
static napi_value udp_read_body(napi_env env, napi_callback_info info) {
  napi_value argv[3], ab, out;
  size_t argc = 3;
  tcu *u;
  uint32_t id, length;
  void *p = NULL;
  int rc;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      !get_state(env, argv[0], &u) || !tcg_u32arg(env, argv[1], &id) ||
      !tcg_u32arg(env, argv[2], &length))
    return NULL;
  if (u->closing || u->d == NULL) return tcg_num(env, TC_E_STALE);
  if (length > u->d->max_body) length = u->d->max_body; /* no body is longer */
  if (napi_create_arraybuffer(env, length > 0 ? length : 1, &p, &ab) != napi_ok || p == NULL) {
    throw_err(env, "turbocoap: out of memory");
    return NULL;
  }
  rc = tcd_read_body(u->d, id, (uint8_t *)p, length);
  if (rc < 0) return tcg_num(env, rc);
  if (napi_create_typedarray(env, napi_uint8_array, (size_t)rc, ab, 0, &out) != napi_ok) {
    throw_err(env, "turbocoap: cannot create the body array");
    return NULL;
  }
  return out;
}

/* udpRef(h, on: boolean) */
static napi_value udp_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcu *u;
  bool on;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &u))
    return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "turbocoap: expected a boolean");
    return NULL;
  }
  if (u->closing || (on ? 1 : 0) == u->refd) return NULL;
  u->refd = on ? 1 : 0;
  if (on) uv_ref((uv_handle_t *)&u->udp);
  else uv_unref((uv_handle_t *)&u->udp);
  tcg_ref_pair(env, u->self_ref, u->cb_ref, on);
  return NULL;
}

/* udpClose(h, done: function): closes the socket; done() once every handle is closed. */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcu *u;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &u))
    return NULL;
  if (u->closing) return NULL;
  napi_create_reference(env, argv[1], 1, &u->close_cb_ref);
#ifdef TC_WITH_TLS
  if (u->t != NULL) { /* close_notify to every open session, as far as the socket takes them */
    while (tcdt_close_all(u->t) == TCD_SEND) send_out(u);
    send_out(u);
  }
#endif
  if (u->refd) { /* the close callback keeps what it needs alive */
    u->refd = 0;
    tcg_ref_pair(env, u->self_ref, u->cb_ref, 0);
  }
  start_close(u);
  return NULL;
}

/* udpStats(h, out: Uint8Array(sizeof(tcd_stats))): the driver's stats struct, read by JS at
 * the generated offsets (ts/driver/abi.ts ST_*); after close, the counters at close. */
static napi_value udp_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  tcu *u;
  void *p;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_state(env, argv[0], &u) || !tcg_out_bytes(env, argv[1], sizeof(tcd_stats), &p, 1))
    return NULL;
  memcpy(p, u->d != NULL ? tcd_get_stats(u->d) : &u->last, sizeof(tcd_stats));
  return NULL;
}

/* Registers the driver functions on exports (called by addon.cc). */
napi_value tc_udp_register(napi_env env, napi_value exports);
napi_value tc_udp_register(napi_env env, napi_value exports) {
  static const tcg_fn fns[] = {
      {"udpCreate", udp_create}, {"udpBind", udp_bind},   {"udpAddress", udp_address},
      {"udpFlush", udp_flush},   {"udpRef", udp_ref},     {"udpClose", udp_close},
      {"udpStats", udp_stats},   {"udpReadBody", udp_read_body},
#ifdef TC_WITH_TLS
      {"dtlsStats", dtls_stats},
#endif
  };
  napi_value v;
  tcg_register(env, exports, fns, sizeof fns / sizeof fns[0]);
  /* the layout this addon was compiled with (abi.h), for ts/driver/abi.ts to compare */
  napi_create_uint32(env, tca_hash(), &v);
  napi_set_named_property(env, exports, "abiHash", v);
  {
    napi_value ab, arr;
    void *p;
    size_t bytes = (size_t)tca_layout_words() * 4u;
    if (napi_create_arraybuffer(env, bytes, &p, &ab) == napi_ok &&
        napi_create_typedarray(env, napi_uint32_array, tca_layout_words(), ab, 0, &arr) == napi_ok) {
      memcpy(p, tca_layout(), bytes);
      napi_set_named_property(env, exports, "abiLayout", arr);
    }
  }
  return exports;
}

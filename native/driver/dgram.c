/*
 * dgram.c — the datagram driver shared by the native addon and the WebAssembly module
 * (dgram.h: the drain and retry policies).
 */
#include "dgram.h"

#include <stdlib.h>
#include <string.h>

/* the tx queue an empty batch and queue must take (tc_srv_recv wants room for two) */
#define TCD_MAX_DATAGRAM 65535u

static void *tcd_alloc8(size_t n, size_t *total) {
  size_t r = (n + 7u) & ~(size_t)7u;
  void *p = aligned_alloc(8, r ? r : 8);
  if (p != NULL) *total += r;
  return p;
}

void tcd_destroy(tcd_dgram *d) {
  if (d == NULL) return;
  free(d->ep);
  free(d->srv);
  free(d->txq.buf);
  free(d->txq.items);
  free(d->rx.words);
  free(d->rx.data);
  free(d);
}

tcd_dgram *tcd_create(const uint32_t *cfg, uint32_t cfg_words, const uint8_t *seed,
                      uint32_t seed_len, const tcd_limits *lim, int *err) {
  tc_ep_config ecfg;
  tc_srv_config scfg;
  size_t esize, ssize;
  tcd_dgram *d;
  *err = TC_E_INVALID;
  if (cfg == NULL || seed == NULL || lim == NULL ||
      cfg_words != (sizeof ecfg + sizeof scfg) / 4u || seed_len != TCA_SEED_BYTES)
    return NULL;
  memcpy(&ecfg, cfg, sizeof ecfg);
  memcpy(&scfg, cfg + sizeof ecfg / 4u, sizeof scfg);
  esize = tc_ep_size(&ecfg);
  ssize = tc_srv_size(&scfg);
  if (esize == 0 || ssize == 0 || scfg.max_in_progress != ecfg.max_in_progress ||
      scfg.max_message_size != ecfg.max_message_size)
    return NULL;
  if (lim->rx_words < TCB_RX_MAX_WORDS || lim->rx_words > (1u << 28) ||
      lim->rx_bytes < TCD_MAX_DATAGRAM + 3u || lim->txq_items < 2u ||
      lim->txq_bytes / 2u < TC_ADDR_MAX + ecfg.max_message_size)
    return NULL;
  *err = TC_E_FULL;
  d = (tcd_dgram *)calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  d->memory = sizeof *d;
  d->ep = (tc_ep *)tcd_alloc8(esize, &d->memory);
  d->srv = (tc_srv *)tcd_alloc8(ssize, &d->memory);
  d->txq.buf = (uint8_t *)tcd_alloc8(lim->txq_bytes, &d->memory);
  d->txq.items = (tc_tx *)tcd_alloc8((size_t)lim->txq_items * sizeof(tc_tx), &d->memory);
  d->txq.cap = lim->txq_bytes;
  d->txq.item_cap = lim->txq_items;
  d->rx.words = (uint32_t *)tcd_alloc8((size_t)lim->rx_words * 4u, &d->memory);
  d->rx.word_cap = lim->rx_words;
  d->rx.data = (uint8_t *)tcd_alloc8(lim->rx_bytes, &d->memory);
  d->rx.data_cap = lim->rx_bytes;
  if (d->ep == NULL || d->srv == NULL || d->txq.buf == NULL || d->txq.items == NULL ||
      d->rx.words == NULL || d->rx.data == NULL) {
    tcd_destroy(d);
    return NULL;
  }
  if (tc_ep_init(d->ep, esize, &ecfg, seed) != 0 ||
      tc_srv_init(d->srv, ssize, &scfg, seed + 32) != 0 ||
      tc_ep_messaging(d->ep, &d->txq, &d->ms) != 0) {
    *err = TC_E_INVALID;
    tcd_destroy(d);
    return NULL;
  }
  d->max_body = scfg.bw1.max_body;
  *err = 0;
  return d;
}

int tcd_recv(tcd_dgram *d, uint64_t now, const uint8_t *addr, uint32_t alen, const uint8_t *data,
             uint32_t len) {
  tc_ep_event ev;
  tc_rx rx;
  int rc;
  if (alen < 1u || alen > TC_ADDR_MAX || len > TCD_MAX_DATAGRAM) return TC_E_INVALID;
  /* drain: a batch without room for this datagram goes to JS first */
  if (!tcb_rx_room(&d->rx, len)) return TCD_DELIVER;
  rx.addr = addr;
  rx.addr_len = alen;
  rx.data = data;
  rx.len = len;
  rx.msg = &d->msg;
  rx.opts = d->opts;
  rx.opt_cap = TCB_OPT_CAP;
  rc = tc_srv_recv(d->srv, &d->ms, now, &rx, &ev, &d->req);
  if (rc == TC_E_FULL) {
    /* retry: the pipeline wants room for two datagrams, which an emptied queue has */
    if (d->txq.count > 0) return TCD_SEND;
    d->stats.drv.dropped++;
    return rc;
  }
  if (rc < 0) return rc;
  if (ev.kind != TC_EV_NONE)
    tcb_rx_put(&d->rx, &ev, addr, alen, data, len, &d->msg, d->opts, &d->req);
  return TCD_DONE;
}

int tcd_unreachable(tcd_dgram *d, uint64_t now, const uint8_t *addr, uint32_t alen) {
  uint32_t room, cap, i;
  int n;
  if (alen < 1u || alen > TC_ADDR_MAX) return TC_E_INVALID;
  for (;;) {
    room = (d->rx.word_cap - d->rx.word_used) / TCB_RX_WORDS;
    if (room == 0) return TCD_DELIVER;
    cap = room < TCD_TIMER_EVENTS ? room : TCD_TIMER_EVENTS;
    n = tc_ep_unreachable(d->ep, now, addr, alen, d->evs, cap);
    if (n < 0) return n;
    for (i = 0; i < (uint32_t)n; i++)
      tcb_rx_put(&d->rx, &d->evs[i], NULL, 0, NULL, 0, NULL, NULL, NULL);
    if ((uint32_t)n < cap) return TCD_DONE;
  }
}

int tcd_timer(tcd_dgram *d, uint64_t now) {
  uint32_t room, cap, i;
  int n;
  if (d->rounds >= TCD_TIMER_ROUNDS) {
    d->rounds = 0; /* still due: the host retries soon rather than spin */
    return TCD_DONE;
  }
  d->rounds++;
  if (tc_srv_next_deadline(d->srv) <= now) (void)tc_srv_timer(d->srv, now);
  room = (d->rx.word_cap - d->rx.word_used) / TCB_RX_WORDS;
  if (room < TCD_TIMER_ROOM) return TCD_DELIVER; /* an empty batch has room (checked) */
  cap = room < TCD_TIMER_EVENTS ? room : TCD_TIMER_EVENTS;
  n = tc_ep_timer(d->ep, now, &d->txq, d->evs, cap);
  d->stats.drv.timer_runs++;
  for (i = 0; i < (uint32_t)(n > 0 ? n : 0); i++)
    if (!tc_srv_on_timer_event(d->srv, now, &d->evs[i])) /* else about a notification */
      tcb_rx_put(&d->rx, &d->evs[i], NULL, 0, NULL, 0, NULL, NULL, NULL);
  if (tc_ep_next_deadline(d->ep) > now) {
    d->rounds = 0;
    return TCD_DONE;
  }
  /* work left over: the tx queue or the event room ran out */
  return d->txq.count > 0 ? TCD_SEND : TCD_DELIVER;
}

int tcd_flush(tcd_dgram *d, uint64_t now, uint32_t *w, uint32_t nwords, const uint8_t *b,
              uint32_t nbytes) {
  int rc;
  if (d->tx_pos == 0) d->tx_failed = 0;
  if (d->tx_pos > nwords || (nwords > 0 && (w == NULL || (nbytes > 0 && b == NULL)))) {
    d->tx_pos = 0;
    return TC_E_INVALID;
  }
  rc = tcb_tx_run(d->srv, d->ep, now, w, nwords, b, nbytes, &d->txq, &d->tx_pos, &d->tx_failed);
  if (rc == TCB_TX_DRAIN) return TCD_SEND;
  d->tx_pos = 0;
  return rc < 0 ? rc : TCD_DONE;
}

void tcd_tx_sent(tcd_dgram *d, uint32_t sent, uint32_t send_calls) {
  d->stats.drv.sent += sent;
  d->stats.drv.send_calls += send_calls;
  d->txq.count = 0;
  d->txq.used = 0;
}

void tcd_delivered(tcd_dgram *d) {
  if (d->rx.count > 0) {
    d->stats.drv.batches++;
    d->stats.drv.records += d->rx.count;
  }
  tcb_rx_reset(&d->rx);
}

int tcd_pending(const tcd_dgram *d) { return d->rx.count > 0 || d->txq.count > 0; }

uint64_t tcd_deadline(const tcd_dgram *d) {
  uint64_t a = tc_ep_next_deadline(d->ep), b = tc_srv_next_deadline(d->srv);
  return a < b ? a : b;
}

int tcd_read_body(tcd_dgram *d, uint32_t id, uint8_t *out, uint32_t cap) {
  return tc_srv_read_body(d->srv, id, out, cap);
}

const tcd_stats *tcd_get_stats(tcd_dgram *d) {
  tc_ep_get_stats(d->ep, &d->stats.ep);
  tc_srv_get_stats(d->srv, &d->stats.srv);
  return &d->stats;
}

/*
 * srv_udp.c — the server pipeline over datagrams: tc_srv_recv runs tc_ep_recv and hands what
 * it reports to the transport-neutral pipeline (tc_srv_input). The only place where tc_srv
 * and tc_ep meet; srv.c itself talks to the messaging layer through the seam alone.
 */
#include <string.h>

#include "internal.h"

/* Room in tx for two datagrams to a peer of alen bytes. */
static int tx_room2(const tc_txq *tx, uint32_t alen, uint32_t mms) {
  uint64_t need = 2u * ((uint64_t)alen + mms);
  return tx->count <= tx->item_cap && tx->item_cap - tx->count >= 2u && tx->used <= tx->cap &&
         (uint64_t)(tx->cap - tx->used) >= need;
}

int tc_srv_recv(tc_srv *s, const tc_messaging *m, uint64_t now, const tc_rx *rx,
                tc_ep_event *ev, tc_srv_req *req) {
  tc_ep *ep = tc_messaging_ep(m);
  tc_txq *tx;
  int rc;
  if (req != NULL) memset(req, 0, sizeof *req);
  if (s == NULL || ep == NULL || req == NULL || ev == NULL || rx == NULL || rx->msg == NULL ||
      !addr_ok(rx->addr, rx->addr_len))
    return TC_E_INVALID;
  tx = (tc_txq *)m->out;
  if (!tx_room2(tx, rx->addr_len, m->max_message_size)) return TC_E_FULL;
  rc = tc_ep_recv(ep, now, rx, tx, ev);
  if (rc < 0) return rc;
  if (ev->kind == TC_EV_NONE || ev->kind == TC_EV_RESPONSE) return 0;
  return tc_srv_input(s, m, now, rx, ev, req);
}

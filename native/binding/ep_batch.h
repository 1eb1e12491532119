/*
 * ep_batch.h — the batch records that carry tc_ep traffic between a UDP driver and
 * JavaScript. Shared (header-only, static functions) by the native driver
 * (native/binding/udp.c) and the WebAssembly glue (wasm/glue.c), so that both backends
 * hand JS byte-identical records and run JS's replies through the same code. Glue only:
 * every protocol decision is tc_ep's.
 *
 * Addresses given to tc_ep are canonical byte strings (opaque to the core):
 *   IPv4: 4, port_hi, port_lo, a, b, c, d                        (7 bytes)
 *   IPv6: 6, port_hi, port_lo, 16 address bytes, scope id (LE)  (23 bytes)
 *
 * RX (driver -> JS). A batch is a uint32 record table plus a byte area holding the
 * datagrams of REQUEST / RESPONSE records. Each record is TCB_RX_WORDS words followed,
 * for REQUEST / RESPONSE, by option_count tc_opt triples:
 *   [0] kind (tc_ep_kind)  [1] id  [2] status (int32)  [3] flags (TC_EVF_*)
 *   [4] family (4, 6; 0 = no address)  [5] port  [6..9] address bytes (network order;
 *   IPv4 in the first word)  [10] IPv6 scope id  [11] datagram offset in the byte area
 *   [12] datagram length  [13..21] tc_msg  [22..] tc_opt x option_count
 * The tc_msg / tc_opt offsets are rewritten to be offsets into the byte area (not into
 * the datagram), so JS reads values without adding anything.
 *
 * TX (JS -> driver). JS writes records into a uint32 table and their bytes (payloads,
 * option values) into a byte area; the driver runs them in order:
 *   RESPOND  [0]=1 [1] id [2] rc out [3] code [4] payload off [5] payload len
 *            [6] option count [7..] tc_opt x count      (offsets into the byte area)
 *   REQUEST  [0]=2 [1] id out [2] rc out [3] TC_REQ_* flags [4] code [5] family [6] port
 *            [7..10] address bytes [11] scope id [12] token length to generate
 *            [13] payload off [14] payload len [15] option count [16..] tc_opt x count
 *   CANCEL   [0]=3 [1] id [2] rc out                          (tc_ep_cancel)
 *   DROP     [0]=4 [1] id [2] rc out                          (tc_ep_drop)
 *   PING     [0]=5 [1] id out [2] rc out [3] family [4] port [5..8] address [9] scope
 * rc out: 0 or a TC_E_* code; id out: 0 unless rc is 0. A RESPOND that fails with TC_E_FULL
 * even with an empty tx queue (every CON slot busy) drops the exchange (rc reports
 * TC_E_FULL); other failures leave it open for JS to answer again (e.g. 5.00 after
 * TC_E_MESSAGE_TOO_LARGE).
 */
#ifndef TURBOCOAP_EP_BATCH_H
#define TURBOCOAP_EP_BATCH_H

#include <stdint.h>
#include <string.h>

#include "turbocoap.h"

/** Layout version: bump on any change; TS checks it (ts/transport/udp-records.ts). */
#define TCB_ABI 1u

#define TCB_ADDR4_LEN 7u
#define TCB_ADDR6_LEN 23u

#define TCB_RX_WORDS 22u
#define TCB_RX_MSG 13u
/** Options per received message the drivers decode (more: a format error for the core). */
#define TCB_OPT_CAP 128u
/** Worst-case words one received message needs. */
#define TCB_RX_MAX_WORDS (TCB_RX_WORDS + TC_OPT_WORDS * TCB_OPT_CAP)

#define TCB_TX_RESPOND 1u
#define TCB_TX_REQUEST 2u
#define TCB_TX_CANCEL 3u
#define TCB_TX_DROP 4u
#define TCB_TX_PING 5u
#define TCB_TX_RESPOND_WORDS 7u
#define TCB_TX_REQUEST_WORDS 16u
#define TCB_TX_SMALL_WORDS 3u
#define TCB_TX_PING_WORDS 10u

/** A batch under construction. */
typedef struct tcb_rx {
  uint32_t *words;
  uint32_t word_cap, word_used;
  uint8_t *data;
  uint32_t data_cap, data_used;
  uint32_t count;
} tcb_rx;

/** Whether the batch can take any message of len bytes (or an event without one). */
static inline int tcb_rx_room(const tcb_rx *b, uint32_t len) {
  return b->word_cap - b->word_used >= TCB_RX_MAX_WORDS && b->data_cap - b->data_used >= len + 3u;
}

static inline void tcb_rx_reset(tcb_rx *b) {
  b->word_used = 0;
  b->data_used = 0;
  b->count = 0;
}

/** Canonical address -> record words (family, port, address, scope). */
static inline void tcb_addr_to_words(const uint8_t *a, uint32_t alen, uint32_t *w) {
  w[0] = w[1] = w[2] = w[3] = w[4] = w[5] = w[6] = 0;
  if (alen == TCB_ADDR4_LEN && a[0] == 4u) {
    w[0] = 4;
    w[1] = (uint32_t)a[1] << 8 | a[2];
    memcpy(&w[2], a + 3, 4);
  } else if (alen == TCB_ADDR6_LEN && a[0] == 6u) {
    w[0] = 6;
    w[1] = (uint32_t)a[1] << 8 | a[2];
    memcpy(&w[2], a + 3, 16);
    w[6] = (uint32_t)a[19] | (uint32_t)a[20] << 8 | (uint32_t)a[21] << 16 | (uint32_t)a[22] << 24;
  }
}

/** Record words (family, port, address, scope) -> canonical address; its length, or 0. */
static inline uint32_t tcb_words_to_addr(const uint32_t *w, uint8_t *a) {
  if (w[1] > 65535u) return 0;
  a[1] = (uint8_t)(w[1] >> 8);
  a[2] = (uint8_t)w[1];
  if (w[0] == 4u) {
    a[0] = 4;
    memcpy(a + 3, &w[2], 4);
    return TCB_ADDR4_LEN;
  }
  if (w[0] == 6u) {
    a[0] = 6;
    memcpy(a + 3, &w[2], 16);
    a[19] = (uint8_t)w[6];
    a[20] = (uint8_t)(w[6] >> 8);
    a[21] = (uint8_t)(w[6] >> 16);
    a[22] = (uint8_t)(w[6] >> 24);
    return TCB_ADDR6_LEN;
  }
  return 0;
}

/**
 * Append a record for ev (kind != NONE). For REQUEST / RESPONSE, data[0..len) is copied
 * and msg/opts (offsets into data) are rewritten to offsets into the byte area. The caller
 * checked tcb_rx_room(b, len) before tc_ep_recv.
 */
static inline void tcb_rx_put(tcb_rx *b, const tc_ep_event *ev, const uint8_t *addr,
                              uint32_t alen, const uint8_t *data, uint32_t len,
                              const tc_msg *msg, const tc_opt *opts) {
  uint32_t *w = b->words + b->word_used;
  uint32_t n = TCB_RX_WORDS, i;
  w[0] = ev->kind;
  w[1] = ev->id;
  w[2] = (uint32_t)ev->status;
  w[3] = ev->flags;
  if (addr != NULL) tcb_addr_to_words(addr, alen, w + 4);
  else w[4] = w[5] = w[6] = w[7] = w[8] = w[9] = w[10] = 0;
  if (msg != NULL && (ev->kind == TC_EV_REQUEST || ev->kind == TC_EV_RESPONSE)) {
    uint32_t base = b->data_used;
    uint32_t *m = w + TCB_RX_MSG;
    const uint32_t *o = (const uint32_t *)opts;
    uint32_t no = msg->option_count;
    memcpy(b->data + base, data, len);
    b->data_used += (len + 3u) & ~3u;
    w[11] = base;
    w[12] = len;
    m[0] = msg->type;
    m[1] = msg->code;
    m[2] = msg->message_id;
    m[3] = msg->token_offset + base;
    m[4] = msg->token_length;
    m[5] = no;
    m[6] = msg->payload_offset + base;
    m[7] = msg->payload_length;
    m[8] = msg->length;
    for (i = 0; i < no; i++) {
      w[n] = o[3 * i];
      w[n + 1] = o[3 * i + 1] + base;
      w[n + 2] = o[3 * i + 2];
      n += 3;
    }
  } else {
    memset(w + 11, 0, (TCB_RX_WORDS - 11) * 4);
  }
  b->word_used += n;
  b->count++;
}

/* ------------------------------------------------------------------------- TX */

/** Checks that a tc_opt table of count entries at o, and a span, lie inside the areas. */
static inline int tcb_opts_ok(const uint32_t *o, uint32_t count, uint32_t nbytes) {
  uint32_t i;
  for (i = 0; i < count; i++) {
    uint32_t off = o[3 * i + 1], len = o[3 * i + 2];
    if (off > nbytes || len > nbytes - off) return 0;
  }
  return 1;
}

static inline int tcb_span_ok(uint32_t off, uint32_t len, uint32_t nbytes) {
  return off <= nbytes && len <= nbytes - off;
}

/**
 * Whether the sources tc_encode reads for m (token, payload, the values of its option_count
 * options at o) lie inside a byte area of nbytes bytes. tc_encode takes no source length, so
 * the glues check JS-written tables with this first. Empty spans are not checked.
 */
static inline int tcb_msg_sources_ok(const tc_msg *m, const tc_opt *o, uint64_t nbytes) {
  uint32_t i;
  if (m->token_length != 0u &&
      (m->token_offset > nbytes || m->token_length > nbytes - m->token_offset))
    return 0;
  if (m->payload_length != 0u &&
      (m->payload_offset > nbytes || m->payload_length > nbytes - m->payload_offset))
    return 0;
  for (i = 0; i < m->option_count; i++)
    if (o[i].length != 0u && (o[i].offset > nbytes || o[i].length > nbytes - o[i].offset))
      return 0;
  return 1;
}

/** Outcome of tcb_tx_run. */
#define TCB_TX_DONE 0
#define TCB_TX_DRAIN 1 /**< the tx queue is full: send it, reset it, call again at *pos */

/**
 * Run the JS records w[*pos .. nwords) against ep. Stops with TCB_TX_DRAIN (and *pos at
 * the record to retry) when a call found the tx queue full while it held datagrams;
 * returns TCB_TX_DONE when every record ran, or TC_E_INVALID for a malformed table
 * (records before it ran). *failed counts records whose rc is not 0.
 */
static inline int tcb_tx_run(tc_ep *ep, uint64_t now, uint32_t *w, uint32_t nwords,
                             const uint8_t *bytes, uint32_t nbytes, tc_txq *tx, uint32_t *pos,
                             uint32_t *failed) {
  while (*pos < nwords) {
    uint32_t *r = w + *pos;
    uint32_t left = nwords - *pos, size;
    int rc;
    switch (r[0]) {
    case TCB_TX_RESPOND: {
      tc_msg m;
      if (left < TCB_TX_RESPOND_WORDS || r[6] > (left - TCB_TX_RESPOND_WORDS) / 3u)
        return TC_E_INVALID;
      size = TCB_TX_RESPOND_WORDS + 3u * r[6];
      if (!tcb_span_ok(r[4], r[5], nbytes) || !tcb_opts_ok(r + 7, r[6], nbytes)) {
        rc = TC_E_INVALID;
        break;
      }
      memset(&m, 0, sizeof m);
      m.code = r[3];
      m.payload_offset = r[4];
      m.payload_length = r[5];
      m.option_count = r[6];
      rc = tc_ep_respond(ep, now, r[1], &m, (tc_opt *)(r + 7), bytes, tx);
      if (rc == TC_E_FULL) {
        if (tx->count > 0) return TCB_TX_DRAIN;
        (void)tc_ep_drop(ep, r[1]); /* every CON slot is busy: give the exchange up */
      }
      break;
    }
    case TCB_TX_REQUEST: {
      tc_msg m;
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen, id = 0;
      if (left < TCB_TX_REQUEST_WORDS || r[15] > (left - TCB_TX_REQUEST_WORDS) / 3u)
        return TC_E_INVALID;
      size = TCB_TX_REQUEST_WORDS + 3u * r[15];
      r[1] = 0; /* the id out is 0 unless the request went out */
      alen = tcb_words_to_addr(r + 5, addr);
      if (alen == 0 || r[12] > TC_EP_TOKEN_MAX || !tcb_span_ok(r[13], r[14], nbytes) ||
          !tcb_opts_ok(r + 16, r[15], nbytes)) {
        rc = TC_E_INVALID;
        break;
      }
      memset(&m, 0, sizeof m);
      m.code = r[4];
      m.payload_offset = r[13];
      m.payload_length = r[14];
      m.option_count = r[15];
      rc = tc_ep_request(ep, now, addr, alen, r[3], &m, (tc_opt *)(r + 16), bytes, (int)r[12],
                         tx, &id, NULL, NULL);
      if (rc == TC_E_FULL && tx->count > 0) return TCB_TX_DRAIN; /* maybe only the queue */
      r[1] = rc == 0 ? id : 0;
      break;
    }
    case TCB_TX_CANCEL:
    case TCB_TX_DROP:
      if (left < TCB_TX_SMALL_WORDS) return TC_E_INVALID;
      size = TCB_TX_SMALL_WORDS;
      rc = r[0] == TCB_TX_CANCEL ? tc_ep_cancel(ep, r[1]) : tc_ep_drop(ep, r[1]);
      break;
    case TCB_TX_PING: {
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen, id = 0;
      if (left < TCB_TX_PING_WORDS) return TC_E_INVALID;
      size = TCB_TX_PING_WORDS;
      r[1] = 0;
      alen = tcb_words_to_addr(r + 3, addr);
      if (alen == 0) {
        rc = TC_E_INVALID;
        break;
      }
      rc = tc_ep_ping(ep, now, addr, alen, tx, &id);
      if (rc == TC_E_FULL && tx->count > 0) return TCB_TX_DRAIN;
      r[1] = rc == 0 ? id : 0;
      break;
    }
    default:
      return TC_E_INVALID;
    }
    r[2] = (uint32_t)rc;
    if (rc != 0) (*failed)++;
    *pos += size;
  }
  return TCB_TX_DONE;
}

#endif /* TURBOCOAP_EP_BATCH_H */

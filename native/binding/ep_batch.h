/*
 * ep_batch.h — the batch records that carry server-pipeline (tc_srv: tc_ep + block-wise +
 * Observe) traffic between a UDP driver and JavaScript. Shared (header-only, static
 * functions) by the native driver (native/binding/udp.c) and the WebAssembly glue
 * (wasm/glue.c), so that both backends hand JS byte-identical records and run JS's replies
 * through the same code. Glue only: every protocol decision is tc_ep's / tc_srv's.
 *
 * Addresses given to the core are canonical byte strings (opaque to it):
 *   IPv4: 4, port_hi, port_lo, a, b, c, d                        (7 bytes)
 *   IPv6: 6, port_hi, port_lo, 16 address bytes, scope id (LE)  (23 bytes)
 *
 * RX (driver -> JS). A batch is a uint32 record table plus a byte area holding the
 * datagrams of REQUEST / RESPONSE records. Each record is TCB_RX_WORDS words followed,
 * for REQUEST / RESPONSE, by option_count tc_opt triples:
 *   [0] kind (tc_ep_kind)  [1] id  [2] status (int32)  [3] flags (TC_EVF_*)
 *   [4] family (4, 6; 0 = no address)  [5] port  [6..9] address bytes (network order;
 *   IPv4 in the first word)  [10] IPv6 scope id  [11] datagram offset in the byte area
 *   [12] datagram length  [13..21] tc_msg  [22] srv flags (TC_SRVF_*)  [23] body id
 *   [24] body length (tc_srv_req; 0 for everything but a REQUEST)  [25..] tc_opt x option_count
 * The tc_msg / tc_opt offsets are rewritten to be offsets into the byte area (not into
 * the datagram), so JS reads values without adding anything. A REQUEST with TC_SRVF_BODY
 * has its Block1 body waiting in the pipeline (read with tc_srv_read_body: the datagram's
 * payload is then only the last block).
 *
 * TX (JS -> driver). JS writes records into a uint32 table and their bytes (payloads,
 * option values) into a byte area; the driver runs them in order:
 *   RESPOND  [0]=1 [1] id [2] rc out [3] code [4] payload off [5] payload len
 *            [6] option count [7] resource (0 = none) [8..] tc_opt x count  (tc_srv_respond)
 *   REQUEST  [0]=2 [1] id out [2] rc out [3] TC_REQ_* flags | TCB_REQ_TOKEN [4] code
 *            [5] family [6] port [7..10] address bytes [11] scope id [12] token
 *            [13] payload off [14] payload len [15] option count [16..] tc_opt x count
 *            (tc_ep_request). Token word: without TCB_REQ_TOKEN the length of a token the
 *            core generates (0..TC_EP_TOKEN_MAX); with it the caller's token in the byte
 *            area, offset << 6 | length (0..TC_EP_TOKEN_MAX): e.g. an Observe re-registration
 *            or deregistration (RFC 7641 §3.3.1, §3.6), which fails with TC_E_INVALID while
 *            another outstanding request to the peer has that token (records run in order:
 *            CANCEL the old one first).
 *   CANCEL   [0]=3 [1] id [2] rc out                          (tc_ep_cancel)
 *   DROP     [0]=4 [1] id [2] rc out                          (tc_srv_drop)
 *   PING     [0]=5 [1] id out [2] rc out [3] family [4] port [5..8] address [9] scope
 *   NOTIFY   [0]=6 [1] resource [2] rc out [3] flags (TC_OBS_CON) [4] code [5] payload off
 *            [6] payload len [7] option count [8..] tc_opt x count  (tc_srv_notify)
 * Offsets are into the byte area. rc out: 0 or a TC_E_* code; id out: 0 unless rc is 0.
 * A RESPOND that fails with TC_E_FULL even with an empty tx queue (every CON slot busy)
 * drops the exchange (rc reports TC_E_FULL); other failures leave it open for JS to answer
 * again (e.g. 5.00 after TC_E_MESSAGE_TOO_LARGE).
 * Observe fan-outs larger than the tx queue: tcb_tx_run resumes pending fan-outs
 * (tc_srv_resume) before it runs any record, and stops with TCB_TX_DRAIN while observers
 * remain; a NOTIFY that leaves observers pending stops it the same way (*pos past the NOTIFY).
 * The driver sends the queue, resets it and calls again, until TCB_TX_DONE.
 */
#ifndef TURBOCOAP_EP_BATCH_H
#define TURBOCOAP_EP_BATCH_H

#include <stdint.h>
#include <string.h>

#include "turbocoap.h"

/** Layout version: bump on any change; TS checks it (ts/transport/udp-records.ts). */
#define TCB_ABI 2u

#define TCB_ADDR4_LEN 7u
#define TCB_ADDR6_LEN 23u

#define TCB_RX_WORDS 25u
#define TCB_RX_MSG 13u
#define TCB_RX_SRV 22u
/** Options per received message the drivers decode (more: a format error for the core). */
#define TCB_OPT_CAP 128u
/** Worst-case words one received message needs. */
#define TCB_RX_MAX_WORDS (TCB_RX_WORDS + TC_OPT_WORDS * TCB_OPT_CAP)

#define TCB_TX_RESPOND 1u
#define TCB_TX_REQUEST 2u
#define TCB_TX_CANCEL 3u
#define TCB_TX_DROP 4u
#define TCB_TX_PING 5u
#define TCB_TX_NOTIFY 6u
#define TCB_TX_RESPOND_WORDS 8u
#define TCB_TX_NOTIFY_WORDS 8u
#define TCB_TX_REQUEST_WORDS 16u
#define TCB_TX_SMALL_WORDS 3u
#define TCB_TX_PING_WORDS 10u
/** REQUEST flag (with the TC_REQ_* flags in word 3): word 12 is the caller's token,
 *  offset << 6 | length, in the byte area. */
#define TCB_REQ_TOKEN 0x100u
#define TCB_REQ_TOKEN_SHIFT 6u

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
 * and msg/opts (offsets into data) are rewritten to offsets into the byte area; req (from
 * tc_srv_recv; NULL for timer events) fills the srv words. The caller checked
 * tcb_rx_room(b, len) before tc_srv_recv.
 */
static inline void tcb_rx_put(tcb_rx *b, const tc_ep_event *ev, const uint8_t *addr,
                              uint32_t alen, const uint8_t *data, uint32_t len,
                              const tc_msg *msg, const tc_opt *opts, const tc_srv_req *req) {
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
    memset(w + 11, 0, (TCB_RX_SRV - 11) * 4);
  }
  if (req != NULL) {
    w[TCB_RX_SRV] = req->flags;
    w[TCB_RX_SRV + 1] = req->body_id;
    w[TCB_RX_SRV + 2] = req->body_length;
  } else {
    w[TCB_RX_SRV] = w[TCB_RX_SRV + 1] = w[TCB_RX_SRV + 2] = 0;
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

/** A response-shaped record (RESPOND, NOTIFY): code, payload and count words at r[c],
 *  r[c+1], r[c+2], r[c+3]; options at r + hdr. 0 with *m filled, or TC_E_INVALID for spans
 *  outside the byte area. The caller checked that the option table lies in the record table. */
static inline int tcb_resp_msg(const uint32_t *r, uint32_t c, uint32_t hdr, uint32_t nbytes,
                               tc_msg *m) {
  if (!tcb_span_ok(r[c + 1], r[c + 2], nbytes) || !tcb_opts_ok(r + hdr, r[c + 3], nbytes))
    return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  m->code = r[c];
  m->payload_offset = r[c + 1];
  m->payload_length = r[c + 2];
  m->option_count = r[c + 3];
  return 0;
}

/**
 * Run the JS records w[*pos .. nwords) against s and ep. First resumes pending Observe
 * fan-outs (tc_srv_resume) while tc_srv_pending(s) > 0. Stops with TCB_TX_DRAIN when the tx
 * queue is full while it holds datagrams: observers remain, a call found the queue full (*pos
 * at the record to retry), or a NOTIFY left observers pending (*pos past it). Returns
 * TCB_TX_DONE when every record ran, or TC_E_INVALID for a malformed table (records before it
 * ran). *failed counts records whose rc is not 0. Every TCB_TX_DRAIN comes with a non-empty
 * queue, so a driver that sends it between calls always makes progress.
 */
static inline int tcb_tx_run(tc_srv *s, tc_ep *ep, uint64_t now, uint32_t *w, uint32_t nwords,
                             const uint8_t *bytes, uint32_t nbytes, tc_txq *tx, uint32_t *pos,
                             uint32_t *failed) {
  tc_messaging ms; /* the pipeline's seam to ep: its messages go to tx */
  if (tc_ep_messaging(ep, tx, &ms) != 0) return TC_E_INVALID;
  if (tc_srv_pending(s) > 0) {
    (void)tc_srv_resume(s, &ms, now);
    /* with an empty queue and nothing queued the rest stays pending for the next flush */
    if (tc_srv_pending(s) > 0 && tx->count > 0) return TCB_TX_DRAIN;
  }
  while (*pos < nwords) {
    uint32_t *r = w + *pos;
    uint32_t left = nwords - *pos, size;
    int rc;
    switch (r[0]) {
    case TCB_TX_RESPOND: {
      tc_msg m;
      tc_outmsg out;
      if (left < TCB_TX_RESPOND_WORDS || r[6] > (left - TCB_TX_RESPOND_WORDS) / 3u)
        return TC_E_INVALID;
      size = TCB_TX_RESPOND_WORDS + 3u * r[6];
      rc = tcb_resp_msg(r, 3, TCB_TX_RESPOND_WORDS, nbytes, &m);
      if (rc != 0) break;
      out.msg = &m;
      out.opts = (tc_opt *)(r + TCB_TX_RESPOND_WORDS);
      out.src = bytes;
      rc = tc_srv_respond(s, &ms, now, r[1], &out, r[7]);
      if (rc == TC_E_FULL) {
        if (tx->count > 0) return TCB_TX_DRAIN;
        (void)tc_srv_drop(s, &ms, r[1]); /* every CON slot is busy: give the exchange up */
      }
      break;
    }
    case TCB_TX_REQUEST: {
      tc_msg m;
      tc_req_args ra;
      tc_req_result res;
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen, caller, tok_off = 0, tok_len;
      if (left < TCB_TX_REQUEST_WORDS || r[15] > (left - TCB_TX_REQUEST_WORDS) / 3u)
        return TC_E_INVALID;
      size = TCB_TX_REQUEST_WORDS + 3u * r[15];
      r[1] = 0; /* the id out is 0 unless the request went out */
      /* the caller's token (offset << 6 | length in the byte area), or a length to generate */
      caller = r[3] & TCB_REQ_TOKEN;
      tok_len = r[12];
      if (caller) {
        tok_off = r[12] >> TCB_REQ_TOKEN_SHIFT;
        tok_len = r[12] & ((1u << TCB_REQ_TOKEN_SHIFT) - 1u);
      }
      alen = tcb_words_to_addr(r + 5, addr);
      if (alen == 0 || tok_len > TC_EP_TOKEN_MAX ||
          (caller && !tcb_span_ok(tok_off, tok_len, nbytes)) ||
          !tcb_span_ok(r[13], r[14], nbytes) || !tcb_opts_ok(r + 16, r[15], nbytes)) {
        rc = TC_E_INVALID;
        break;
      }
      memset(&m, 0, sizeof m);
      m.code = r[4];
      if (caller) {
        m.token_offset = tok_off;
        m.token_length = tok_len;
      }
      m.payload_offset = r[13];
      m.payload_length = r[14];
      m.option_count = r[15];
      ra.addr = addr;
      ra.addr_len = alen;
      ra.flags = r[3] & ~TCB_REQ_TOKEN;
      ra.gen_token_length = caller ? -1 : (int32_t)tok_len;
      ra.reserved = 0;
      ra.req.msg = &m;
      ra.req.opts = (tc_opt *)(r + 16);
      ra.req.src = bytes;
      rc = tc_ep_request(ep, now, &ra, tx, &res);
      if (rc == TC_E_FULL && tx->count > 0) return TCB_TX_DRAIN; /* maybe only the queue */
      r[1] = rc == 0 ? res.id : 0;
      break;
    }
    case TCB_TX_CANCEL:
    case TCB_TX_DROP:
      if (left < TCB_TX_SMALL_WORDS) return TC_E_INVALID;
      size = TCB_TX_SMALL_WORDS;
      rc = r[0] == TCB_TX_CANCEL ? tc_ep_cancel(ep, r[1]) : tc_srv_drop(s, &ms, r[1]);
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
    case TCB_TX_NOTIFY: {
      tc_msg m;
      tc_outmsg out;
      if (left < TCB_TX_NOTIFY_WORDS || r[7] > (left - TCB_TX_NOTIFY_WORDS) / 3u)
        return TC_E_INVALID;
      size = TCB_TX_NOTIFY_WORDS + 3u * r[7];
      rc = tcb_resp_msg(r, 4, TCB_TX_NOTIFY_WORDS, nbytes, &m);
      if (rc != 0) break;
      out.msg = &m;
      out.opts = (tc_opt *)(r + TCB_TX_NOTIFY_WORDS);
      out.src = bytes;
      rc = tc_srv_notify(s, &ms, now, r[1], r[3], &out);
      if (rc > 0) rc = 0; /* datagrams queued */
      if (rc == 0 && tc_srv_pending(s) > 0 && tx->count > 0) {
        r[2] = 0;
        *pos += size;
        return TCB_TX_DRAIN; /* the fan-out filled the queue: the next call resumes it */
      }
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

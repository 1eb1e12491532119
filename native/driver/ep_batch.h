/*
 * ep_batch.h — the batch records that carry server-pipeline (tc_srv: tc_ep + block-wise +
 * Observe) traffic between the datagram driver (dgram.c, run by the native addon and by the
 * WebAssembly module alike) and JavaScript. Header-only (static functions). Every protocol
 * decision is tc_ep's / tc_srv's.
 *
 * The layout of every record is declared once in abi.h (TCA_RX, TCA_TX_*); addresses are
 * converted by addr.h.
 *
 * RX (driver -> JS). A batch is a uint32 record table plus a byte area holding the datagrams
 * of REQUEST / RESPONSE records. Each record is TCB_RX_WORDS words followed, for REQUEST /
 * RESPONSE, by RX_OPT_COUNT tc_opt triples. The tc_msg / tc_opt offsets are rewritten to be
 * offsets into the byte area (not into the datagram), so JS reads values without adding
 * anything. A REQUEST with TC_SRVF_BODY has its Block1 body waiting in the pipeline (read
 * with tc_srv_read_body: the datagram's payload is then only the last block).
 *
 * TX (JS -> driver). JS writes records into a uint32 table and their bytes (payloads, option
 * values) into a byte area; the driver runs them in order:
 *   RESPOND  tc_srv_respond (RESOURCE 0 = none)
 *   REQUEST  tc_ep_request. TOKEN: without TCB_REQ_TOKEN in FLAGS the length of a token the
 *            core generates (0..TC_EP_TOKEN_MAX); with it the caller's token in the byte
 *            area, offset << TCB_REQ_TOKEN_SHIFT | length (0..TC_EP_TOKEN_MAX): e.g. an
 *            Observe re-registration or deregistration (RFC 7641 §3.3.1, §3.6), which fails
 *            with TC_E_INVALID while another outstanding request to the peer has that token
 *            (records run in order: CANCEL the old one first).
 *   CANCEL   tc_ep_cancel          DROP  tc_srv_drop         PING  tc_ep_ping
 *   NOTIFY   tc_srv_notify (FLAGS: TC_OBS_CON)
 *   OBSERVERS  (TX_SMALL layout) tc_obs_count of resource ID, written to RC (never a failure):
 *            run in order with the RESPONDs before it, so a count of 0 means that no
 *            observer of ID is left, and JS may forget the resource (a later registration
 *            of its path gets a new id).
 * (stream.h runs the same records against connections.)
 * RC out: 0 or a TC_E_* code (OBSERVERS: the count); ID out: 0 unless RC is 0.
 * A RESPOND that fails with TC_E_FULL even with an empty tx queue (every CON slot busy)
 * drops the exchange (RC reports TC_E_FULL); other failures leave it open for JS to answer
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

#include "abi.h"
#include "addr.h"
#include "turbocoap.h"

/** Worst-case words one received message needs. */
#define TCB_RX_MAX_WORDS (TCB_RX_WORDS + TC_OPT_WORDS * TCB_OPT_CAP)

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
  w[TCB_RX_KIND] = ev->kind;
  w[TCB_RX_ID] = ev->id;
  w[TCB_RX_STATUS] = (uint32_t)ev->status;
  w[TCB_RX_FLAGS] = ev->flags;
  if (addr != NULL) tcb_addr_to_words(addr, alen, w + TCB_RX_FAMILY);
  else memset(w + TCB_RX_FAMILY, 0, TCB_ADDR_WORDS * 4u);
  if (msg != NULL && (ev->kind == TC_EV_REQUEST || ev->kind == TC_EV_RESPONSE)) {
    uint32_t base = b->data_used;
    const uint32_t *o = (const uint32_t *)opts;
    uint32_t no = msg->option_count;
    memcpy(b->data + base, data, len);
    b->data_used += (len + 3u) & ~3u;
    w[TCB_RX_DATA] = base;
    w[TCB_RX_LEN] = len;
    w[TCB_RX_TYPE] = msg->type;
    w[TCB_RX_CODE] = msg->code;
    w[TCB_RX_MID] = msg->message_id;
    w[TCB_RX_TOKEN_OFF] = msg->token_offset + base;
    w[TCB_RX_TOKEN_LEN] = msg->token_length;
    w[TCB_RX_OPT_COUNT] = no;
    w[TCB_RX_PAYLOAD_OFF] = msg->payload_offset + base;
    w[TCB_RX_PAYLOAD_LEN] = msg->payload_length;
    w[TCB_RX_MSG_LEN] = msg->length;
    for (i = 0; i < no; i++) {
      w[n] = o[3 * i];
      w[n + 1] = o[3 * i + 1] + base;
      w[n + 2] = o[3 * i + 2];
      n += 3;
    }
  } else {
    memset(w + TCB_RX_DATA, 0, (TCB_RX_SRV_FLAGS - TCB_RX_DATA) * 4u);
  }
  if (req != NULL) {
    w[TCB_RX_SRV_FLAGS] = req->flags;
    w[TCB_RX_BODY_ID] = req->body_id;
    w[TCB_RX_BODY_LEN] = req->body_length;
  } else {
    w[TCB_RX_SRV_FLAGS] = w[TCB_RX_BODY_ID] = w[TCB_RX_BODY_LEN] = 0;
  }
  b->word_used += n;
  b->count++;
}

/* ------------------------------------------------------------------------- TX */

/** Whether the span of len bytes at off lies inside a byte area of nbytes bytes. */
static inline int tcb_span_ok(uint32_t off, uint32_t len, uint32_t nbytes) {
  return off <= nbytes && len <= nbytes - off;
}

/** Whether the values of a tc_opt table of count entries at o lie inside the byte area. */
static inline int tcb_opts_ok(const uint32_t *o, uint32_t count, uint32_t nbytes) {
  uint32_t i;
  for (i = 0; i < count; i++)
    if (!tcb_span_ok(o[3 * i + 1], o[3 * i + 2], nbytes)) return 0;
  return 1;
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

/** The size in words of the record at r (hdr header words, then r[count] option triples),
 *  or 0 when it does not fit in the left words of the table. */
static inline uint32_t tcb_rec_size(const uint32_t *r, uint32_t left, uint32_t hdr,
                                    uint32_t count) {
  if (left < hdr || r[count] > (left - hdr) / 3u) return 0;
  return hdr + 3u * r[count];
}

/** A response-shaped record (RESPOND, NOTIFY): code, payload offset, payload length and
 *  option count at r[code], r[poff], r[plen], r[count]; options at r + hdr; sources in bytes.
 *  0 with *m and *out filled, or TC_E_INVALID for spans outside the byte area. The caller
 *  checked that the option table lies in the record table (tcb_rec_size). */
static inline int tcb_resp_msg(uint32_t *r, uint32_t code, uint32_t poff, uint32_t plen,
                               uint32_t count, uint32_t hdr, const uint8_t *bytes,
                               uint32_t nbytes, tc_msg *m, tc_outmsg *out) {
  if (!tcb_span_ok(r[poff], r[plen], nbytes) || !tcb_opts_ok(r + hdr, r[count], nbytes))
    return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  m->code = r[code];
  m->payload_offset = r[poff];
  m->payload_length = r[plen];
  m->option_count = r[count];
  out->msg = m;
  out->opts = (tc_opt *)(r + hdr);
  out->src = bytes;
  return 0;
}

/** A REQUEST record's message and request arguments, everything but the address: the caller's
 *  token (TCB_REQ_TOKEN: offset << 6 | length in the byte area) or a length to generate,
 *  payload and options (r + TCB_TX_REQUEST_WORDS; sources in bytes). 0 with *m and *ra
 *  filled (ra->addr unset), or TC_E_INVALID for a bad token length or spans outside the byte
 *  area. The caller checked that the option table lies in the record table (tcb_rec_size). */
static inline int tcb_req_args(uint32_t *r, const uint8_t *bytes, uint32_t nbytes, tc_msg *m,
                               tc_req_args *ra) {
  uint32_t tok = r[TCB_TX_REQUEST_TOKEN], tok_off = 0, tok_len = tok;
  uint32_t caller = r[TCB_TX_REQUEST_FLAGS] & (uint32_t)TCB_REQ_TOKEN;
  if (caller) {
    tok_off = tok >> TCB_REQ_TOKEN_SHIFT;
    tok_len = tok & ((1u << TCB_REQ_TOKEN_SHIFT) - 1u);
  }
  if (tok_len > TC_EP_TOKEN_MAX || (caller && !tcb_span_ok(tok_off, tok_len, nbytes)) ||
      !tcb_span_ok(r[TCB_TX_REQUEST_PAYLOAD_OFF], r[TCB_TX_REQUEST_PAYLOAD_LEN], nbytes) ||
      !tcb_opts_ok(r + TCB_TX_REQUEST_WORDS, r[TCB_TX_REQUEST_OPT_COUNT], nbytes))
    return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  m->code = r[TCB_TX_REQUEST_CODE];
  if (caller) {
    m->token_offset = tok_off;
    m->token_length = tok_len;
  }
  m->payload_offset = r[TCB_TX_REQUEST_PAYLOAD_OFF];
  m->payload_length = r[TCB_TX_REQUEST_PAYLOAD_LEN];
  m->option_count = r[TCB_TX_REQUEST_OPT_COUNT];
  memset(ra, 0, sizeof *ra);
  ra->flags = r[TCB_TX_REQUEST_FLAGS] & ~(uint32_t)TCB_REQ_TOKEN;
  ra->gen_token_length = caller ? -1 : (int32_t)tok_len;
  ra->req.msg = m;
  ra->req.opts = (tc_opt *)(r + TCB_TX_REQUEST_WORDS);
  ra->req.src = bytes;
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
      size = tcb_rec_size(r, left, TCB_TX_RESPOND_WORDS, TCB_TX_RESPOND_OPT_COUNT);
      if (size == 0) return TC_E_INVALID;
      rc = tcb_resp_msg(r, TCB_TX_RESPOND_CODE, TCB_TX_RESPOND_PAYLOAD_OFF,
                        TCB_TX_RESPOND_PAYLOAD_LEN, TCB_TX_RESPOND_OPT_COUNT,
                        TCB_TX_RESPOND_WORDS, bytes, nbytes, &m, &out);
      if (rc != 0) break;
      rc = tc_srv_respond(s, &ms, now, r[TCB_TX_RESPOND_ID], &out, r[TCB_TX_RESPOND_RESOURCE]);
      if (rc == TC_E_FULL) {
        if (tx->count > 0) return TCB_TX_DRAIN;
        /* every CON slot is busy: give the exchange up */
        (void)tc_srv_drop(s, &ms, r[TCB_TX_RESPOND_ID]);
      }
      break;
    }
    case TCB_TX_REQUEST: {
      tc_msg m;
      tc_req_args ra;
      tc_req_result res;
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen;
      size = tcb_rec_size(r, left, TCB_TX_REQUEST_WORDS, TCB_TX_REQUEST_OPT_COUNT);
      if (size == 0) return TC_E_INVALID;
      r[TCB_TX_REQUEST_ID] = 0; /* the id out is 0 unless the request went out */
      alen = tcb_words_to_addr(r + TCB_TX_REQUEST_FAMILY, addr);
      if (alen == 0 || tcb_req_args(r, bytes, nbytes, &m, &ra) != 0) {
        rc = TC_E_INVALID;
        break;
      }
      ra.addr = addr;
      ra.addr_len = alen;
      rc = tc_ep_request(ep, now, &ra, tx, &res);
      if (rc == TC_E_FULL && tx->count > 0) return TCB_TX_DRAIN; /* maybe only the queue */
      r[TCB_TX_REQUEST_ID] = rc == 0 ? res.id : 0;
      break;
    }
    case TCB_TX_CANCEL:
    case TCB_TX_DROP:
      if (left < TCB_TX_SMALL_WORDS) return TC_E_INVALID;
      size = TCB_TX_SMALL_WORDS;
      rc = r[0] == TCB_TX_CANCEL ? tc_ep_cancel(ep, r[TCB_TX_SMALL_ID])
                                 : tc_srv_drop(s, &ms, r[TCB_TX_SMALL_ID]);
      break;
    case TCB_TX_OBSERVERS:
      if (left < TCB_TX_SMALL_WORDS) return TC_E_INVALID;
      r[TCB_TX_SMALL_RC] = tc_obs_count(tc_srv_obs(s), r[TCB_TX_SMALL_ID]);
      *pos += TCB_TX_SMALL_WORDS;
      continue; /* a count, not a status */
    case TCB_TX_PING: {
      uint8_t addr[TC_ADDR_MAX];
      uint32_t alen, id = 0;
      if (left < TCB_TX_PING_WORDS) return TC_E_INVALID;
      size = TCB_TX_PING_WORDS;
      r[TCB_TX_PING_ID] = 0;
      alen = tcb_words_to_addr(r + TCB_TX_PING_FAMILY, addr);
      if (alen == 0) {
        rc = TC_E_INVALID;
        break;
      }
      rc = tc_ep_ping(ep, now, addr, alen, tx, &id);
      if (rc == TC_E_FULL && tx->count > 0) return TCB_TX_DRAIN;
      r[TCB_TX_PING_ID] = rc == 0 ? id : 0;
      break;
    }
    case TCB_TX_NOTIFY: {
      tc_msg m;
      tc_outmsg out;
      size = tcb_rec_size(r, left, TCB_TX_NOTIFY_WORDS, TCB_TX_NOTIFY_OPT_COUNT);
      if (size == 0) return TC_E_INVALID;
      rc = tcb_resp_msg(r, TCB_TX_NOTIFY_CODE, TCB_TX_NOTIFY_PAYLOAD_OFF,
                        TCB_TX_NOTIFY_PAYLOAD_LEN, TCB_TX_NOTIFY_OPT_COUNT, TCB_TX_NOTIFY_WORDS,
                        bytes, nbytes, &m, &out);
      if (rc != 0) break;
      rc = tc_srv_notify(s, &ms, now, r[TCB_TX_NOTIFY_RESOURCE], r[TCB_TX_NOTIFY_FLAGS], &out);
      if (rc > 0) rc = 0; /* datagrams queued */
      if (rc == 0 && tc_srv_pending(s) > 0 && tx->count > 0) {
        r[TCB_TX_NOTIFY_RC] = 0;
        *pos += size;
        return TCB_TX_DRAIN; /* the fan-out filled the queue: the next call resumes it */
      }
      break;
    }
    default:
      return TC_E_INVALID;
    }
    r[TCB_TX_SMALL_RC] = (uint32_t)rc; /* RC is word 2 of every record */
    if (rc != 0) (*failed)++;
    *pos += size;
  }
  return TCB_TX_DONE;
}

#endif /* TURBOCOAP_EP_BATCH_H */

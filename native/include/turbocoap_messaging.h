/*
 * turbocoap_messaging.h — the messaging seam: the argument structs of the messaging calls and
 * the small interface through which the application layer (the server pipeline tc_srv and the
 * Observe registry tc_obs) talks to a messaging layer, whatever carries the messages.
 * Included by turbocoap.h before turbocoap_ep.h; do not include it directly.
 *
 * Layers: socket -> security -> framing -> messaging -> application.
 * A messaging layer owns exchanges (ids), message IDs and reliability:
 *  - tc_ep (turbocoap_ep.h): RFC 7252 over datagrams: CON/NON, ACKs, retransmission,
 *    deduplication. It implements the seam with tc_ep_messaging().
 *  - a connection layer for RFC 8323 (TCP, TLS, WebSockets) implements it next: no message
 *    IDs, no CON/ACK/RST (TC_MSGF_RELIABLE), requests matched by token alone.
 * The application layer above the seam names no transport: it answers exchanges, fans out
 * notifications and gives exchanges up through tc_messaging, and takes message sizes and the
 * framing from it.
 *
 * Peers are opaque byte strings of 1..TC_ADDR_MAX bytes for every messaging layer: a socket
 * address for tc_ep, a connection handle (e.g. a connection id) for a connection layer. The
 * application layer compares and copies them, never interprets them.
 */
#ifndef TURBOCOAP_MESSAGING_H
#define TURBOCOAP_MESSAGING_H

#ifdef __cplusplus
extern "C" {
#endif

/** Largest opaque address, in bytes (sizeof(struct sockaddr_in6) is 28). */
#define TC_ADDR_MAX 28
/** Longest token the messaging layer stores (RFC 8974 extended tokens up to this size).
 *  A request with a longer token is a message format error (CON: RST; NON: ignored). */
#define TC_EP_TOKEN_MAX 32

/* ------------------------------------------------------------- argument structs */

/**
 * One received message (tc_ep_recv, tc_srv_recv, tc_srv_input). All pointers are borrowed for
 * the call; nothing is kept.
 */
typedef struct tc_rx {
  const uint8_t *addr;  /**< the peer, addr_len bytes (1..TC_ADDR_MAX) */
  uint32_t addr_len;
  uint32_t opt_cap;     /**< entries of opts */
  const uint8_t *data;  /**< the message bytes (one datagram for tc_ep) */
  size_t len;
  tc_msg *msg;          /**< caller-owned. tc_ep_recv / tc_srv_recv: written (offsets into
                             data). tc_srv_input: the decoded message, read */
  tc_opt *opts;         /**< caller-owned, opt_cap entries; written or read like msg */
} tc_rx;

/**
 * A message to send: header fields in msg, option values, token (if it comes from src) and
 * payload at offsets into src. All borrowed for the call (the messaging layer copies what it
 * keeps). The encoder SORTS opts IN PLACE by number (stable), so tc_ep_* may reorder them;
 * tc_srv_* and tc_obs_* never modify them.
 */
typedef struct tc_outmsg {
  const tc_msg *msg; /**< code, option_count, payload_offset/length (and token for
                          tc_ep_request with a caller token); type and message id are ignored */
  tc_opt *opts;      /**< msg->option_count entries (may be NULL when 0) */
  const uint8_t *src;/**< option values, token and payload (may be NULL when all are empty) */
} tc_outmsg;

/** tc_ep_request flags. */
#define TC_REQ_CON 1u   /**< confirmable (else NON) */
#define TC_REQ_KEEP 2u  /**< keep matching responses after the first (Observe); finish with
                             tc_ep_cancel */

/** Arguments of a client request (tc_ep_request). Borrowed for the call. */
typedef struct tc_req_args {
  const uint8_t *addr;      /**< the server, addr_len bytes (1..TC_ADDR_MAX) */
  uint32_t addr_len;
  uint32_t flags;           /**< TC_REQ_CON | TC_REQ_KEEP */
  int32_t gen_token_length; /**< >= 0: the core generates that many unpredictable token bytes
                                 (0..TC_EP_TOKEN_MAX); < 0: req.msg's token (from req.src) */
  uint32_t reserved;        /**< 0 */
  tc_outmsg req;            /**< the request: code is a method (0.01..0.31) */
} tc_req_args;

/** What tc_ep_request reports (caller-owned, written on success). */
typedef struct tc_req_result {
  uint32_t id;                      /**< the client request id (TC_EV_RESPONSE / FAILED) */
  uint32_t token_length;            /**< the token used */
  uint8_t token[TC_EP_TOKEN_MAX];   /**< its bytes */
} tc_req_result;

/** tc_notify_args.flags (TC_REQ_CON also applies). */
#define TC_NOTIFY_NON_IF_BUSY 4u /**< with TC_REQ_CON: when no CON slot is free, send it NON
                                      (tc_notify_result says which went out) */

/** Arguments of a notification (tc_ep_notify, tc_messaging_ops.notify). Borrowed for the
 *  call. */
typedef struct tc_notify_args {
  const uint8_t *addr;  /**< the observer, addr_len bytes (1..TC_ADDR_MAX) */
  uint32_t addr_len;
  uint32_t token_len;   /**< <= TC_EP_TOKEN_MAX */
  const uint8_t *token; /**< the token of the registration request */
  uint32_t flags;       /**< TC_REQ_CON (ignored by reliable transports), TC_NOTIFY_NON_IF_BUSY */
  uint32_t reserved;    /**< 0 */
  tc_outmsg resp;       /**< code (class 2, 4, 5), options, payload; the Observe option is the
                             caller's to include */
} tc_notify_args;

/** tc_notify_result.flags */
#define TC_NOTIFY_SENT_CON 1u /**< went out confirmable: id will be reported by TC_EV_ACKED or
                                   TC_EV_FAILED */
#define TC_NOTIFY_HAS_MID 2u  /**< went out NON with Message ID mid: a RST to it is reported
                                   as TC_EV_NOTIFY_RESET (tc_ep) */

/** What a notification became (caller-owned, written on success). */
typedef struct tc_notify_result {
  uint32_t flags; /**< TC_NOTIFY_* */
  uint32_t id;    /**< TC_NOTIFY_SENT_CON: the notification id; else 0 */
  uint32_t mid;   /**< TC_NOTIFY_HAS_MID: its Message ID; else 0 */
} tc_notify_result;

/* -------------------------------------------------------------------- the seam */

typedef struct tc_messaging tc_messaging;

/**
 * What a messaging layer does for the application layer. Every function gets the seam it was
 * called through (m->state, m->out). Errors are the TC_E_* codes of turbocoap_ep.h.
 */
typedef struct tc_messaging_ops {
  /** Answer exchange id (a delivered request) with resp: as tc_ep_respond. Returns 0,
   *  TC_E_STALE, TC_E_FULL (no room in m->out or no CON slot: the exchange stays open),
   *  TC_E_MESSAGE_TOO_LARGE or TC_E_INVALID. */
  int (*respond)(const tc_messaging *m, uint64_t now, uint32_t id, const tc_outmsg *resp);
  /** Send a notification outside an exchange: as tc_ep_notify. Returns 0 (res written),
   *  TC_E_FULL (no room in m->out; nothing changed), TC_E_MESSAGE_TOO_LARGE or
   *  TC_E_INVALID. */
  int (*notify)(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                tc_notify_result *res);
  /** Give exchange id up without answering: as tc_ep_drop. Returns 0 or TC_E_STALE. */
  int (*drop)(const tc_messaging *m, uint32_t id);
} tc_messaging_ops;

/** tc_messaging.flags */
#define TC_MSGF_RELIABLE 1u /**< a reliable transport (RFC 8323): no CON/NON, no ACK/RST, no
                                 message IDs; notifications are never confirmable (RFC 8323
                                 §7.1: the connection tells whether the client is there) */
#define TC_MSGF_BERT 2u     /**< with TC_MSGF_RELIABLE: both sides' CSMs offered
                                 Block-Wise-Transfer, so BERT (SZX 7, RFC 8323 §6) may be used */

/**
 * A messaging layer as the application layer sees it. Caller-owned and filled by the layer
 * (tc_ep_messaging); the application layer reads it during each call and keeps nothing.
 * It may be built once and reused for as long as state and out stay where they are.
 */
struct tc_messaging {
  const tc_messaging_ops *ops; /**< static, owned by the messaging layer */
  void *state;                 /**< borrowed: the layer's state (tc_ep *) */
  void *out;                   /**< borrowed: where its messages go (tc_txq *) */
  uint32_t transport;          /**< enum tc_transport: the framing messages are encoded with */
  uint32_t flags;              /**< TC_MSGF_* */
  uint32_t max_message_size;   /**< the largest message the layer sends (encoded, token
                                    included); the application layer sizes blocks and
                                    notifications by it */
  uint32_t max_exchanges;      /**< exchange ids are non-zero and their low 16 bits are a
                                    slot < max_exchanges (unique among live exchanges, a
                                    generation in the other bits) */
};

/** m->ops->respond(m, ...). */
static inline int tc_messaging_respond(const tc_messaging *m, uint64_t now, uint32_t id,
                                       const tc_outmsg *resp) {
  return m->ops->respond(m, now, id, resp);
}
/** m->ops->notify(m, ...). */
static inline int tc_messaging_notify(const tc_messaging *m, uint64_t now,
                                      const tc_notify_args *a, tc_notify_result *res) {
  return m->ops->notify(m, now, a, res);
}
/** m->ops->drop(m, id). */
static inline int tc_messaging_drop(const tc_messaging *m, uint32_t id) {
  return m->ops->drop(m, id);
}

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_MESSAGING_H */

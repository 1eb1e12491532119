/*
 * turbocoap_ep.h — the CoAP/UDP messaging layer of the turbocoap core (RFC 7252 §4, §5.3,
 * §5.4.1, §8 unicast), sans-IO. Included by turbocoap.h; do not include it directly.
 *
 * One tc_ep is the messaging state of one local UDP endpoint (socket), acting as server,
 * client or both: deduplication with cached-response replay, piggybacked and separate
 * responses, confirmable retransmission, Message ID and token generation, response
 * matching, NSTART, and the RFC's reactions to bad input.
 *
 * Sans-IO contract:
 *  - Time enters as `now` (milliseconds, any monotonic origin, never decreasing).
 *    tc_ep_next_deadline() says when tc_ep_timer() must be called next.
 *  - Randomness enters once, as a 32-byte seed to tc_ep_init(); tokens are derived from
 *    it with a keyed PRF, so they are unpredictable without the seed.
 *  - Addresses are OPAQUE byte strings of 1..TC_ADDR_MAX bytes (e.g. a struct sockaddr as
 *    the driver has it); the core compares and copies them, never interprets them.
 *  - Datagrams to send are appended to a caller-owned tc_txq; the caller sends them.
 *  - No allocation: all state lives in ONE caller-owned block of tc_ep_size(cfg) bytes,
 *    holding no pointers (it may live in a JS ArrayBuffer or WASM memory).
 *  - Every table is bounded by the config; when one is full the RFC's reaction applies
 *    (5.03 Service Unavailable with Max-Age for requests it cannot take) or a call
 *    returns TC_E_FULL.
 */
#ifndef TURBOCOAP_EP_H
#define TURBOCOAP_EP_H

#ifdef __cplusplus
extern "C" {
#endif

/* TC_ADDR_MAX, TC_EP_TOKEN_MAX and the argument structs (tc_rx, tc_outmsg, tc_req_args,
 * tc_notify_args) are in turbocoap_messaging.h. */

/* The errors of the messaging layer (TC_E_STALE .. TC_E_BAD_OPTION) are in TC_ERRORS
 * (turbocoap.h). */

/** Transmission parameters and table bounds. Get defaults from tc_ep_config_default(). */
typedef struct tc_ep_config {
  /* RFC 7252 §4.8 transmission parameters */
  uint32_t ack_timeout_ms;         /**< ACK_TIMEOUT, default 2000 */
  uint32_t ack_random_factor_x1000;/**< ACK_RANDOM_FACTOR * 1000, default 1500 */
  uint32_t max_retransmit;         /**< MAX_RETRANSMIT, default 4 */
  uint32_t nstart;                 /**< NSTART: outstanding CON requests per peer, default 1 */
  uint32_t max_latency_ms;         /**< MAX_LATENCY, default 100000 */
  uint32_t processing_delay_ms;    /**< PROCESSING_DELAY, default = ack_timeout_ms */
  /* server behaviour */
  uint32_t separate_ack_delay_ms;  /**< send an empty ACK if no response within this, default 1000 */
  uint32_t overload_max_age;       /**< Max-Age (s) on 5.03 when a request can't be taken, default 2 */
  /* bounds */
  uint32_t dedup_entries;          /**< remembered (peer, MID) pairs, oldest evicted first (a
                                        request still in progress is never evicted), default
                                        16384; must exceed max_in_progress, at most 2^26 */
  uint32_t response_cache_bytes;   /**< bytes of cached responses for replay, default 2 MiB;
                                        0 disables replay (duplicates of a CON get an empty ACK) */
  uint32_t max_in_progress;        /**< requests handed to the app and not yet answered,
                                        default 4096, at most 65535 */
  uint32_t max_in_progress_per_peer;/**< the same per peer, default 256 */
  uint32_t max_client_requests;    /**< outstanding client requests (CON or NON), default 1024,
                                        at most 65535 */
  uint32_t con_slots;              /**< CON messages awaiting ACK (client requests, including
                                        ones held by NSTART, + separate responses), each holding
                                        a copy, default 256, at most 65535 */
  uint32_t max_message_size;       /**< largest message the endpoint sends (requests and
                                        responses; also the size of each CON copy), default
                                        1280, range 96..65507 */
  uint32_t response_timeout_ms;    /**< client: give up waiting for a (separate or NON) response
                                        after this, default MAX_TRANSMIT_WAIT (93000 with defaults) */
  /* amplification defence (RFC 9175 §2.4) */
  uint32_t amplification_factor;   /**< toward an endpoint (address and port) that has not shown
                                        it receives, a response is at most this many times the
                                        request's bytes, else it is replaced by 4.01 with an Echo
                                        option; an Observe registration from such an endpoint
                                        gets 4.01 + Echo before the application sees it, and so
                                        does a request of an unsafe method (not GET/FETCH) unless
                                        factor x its bytes >= max_message_size + 4 (so that no
                                        handler runs twice because of the challenge). Strict per
                                        request: an empty ACK sent counts, a separate CON
                                        response is retransmitted only within the budget, the
                                        core's diagnostic payloads are dropped to fit, a shorter
                                        duplicate gets no cached replay over it, and when not
                                        even 4.01 + Echo fits a CON gets RST, a NON nothing.
                                        Default 3; 0 disables the defence. At most 1000 */
  uint32_t verified_peers;         /**< endpoints remembered as verified (they echoed a value we
                                        sent), 4-way set-associative, the entry expiring soonest
                                        replaced; default 4096, 4..2^20 */
  uint32_t echo_lifetime_ms;       /**< how long an Echo value we sent is accepted, default
                                        30000, 1000..3600000 */
  uint32_t verified_lifetime_ms;   /**< how long an endpoint stays verified after it echoed,
                                        default 3600000 (1 h), >= 1000 */
  uint32_t flags;                  /**< TC_EPF_*, default 0 */
} tc_ep_config;

/** tc_ep_config.flags: deliver requests carrying Proxy-Uri or Proxy-Scheme to the application
 *  (a proxy, RFC 7252 §5.7) instead of answering them 5.05 Proxying Not Supported. */
#define TC_EPF_PROXY 1u

/** Fill cfg with the defaults above. */
void tc_ep_config_default(tc_ep_config *cfg);

/** Derived lifetimes (RFC 7252 §4.8.2), in ms, from a config. */
uint64_t tc_ep_exchange_lifetime(const tc_ep_config *cfg); /**< 247000 with defaults */
uint64_t tc_ep_non_lifetime(const tc_ep_config *cfg);      /**< 145000 with defaults */
uint64_t tc_ep_max_transmit_span(const tc_ep_config *cfg); /**< 45000 with defaults */
uint64_t tc_ep_max_transmit_wait(const tc_ep_config *cfg); /**< 93000 with defaults */

/** The messaging state: an opaque block of tc_ep_size() bytes. */
typedef struct tc_ep tc_ep;

/** Bytes of state a config needs, or 0 if the config is invalid: a zero bound (other than
 *  response_cache_bytes), dedup_entries <= max_in_progress, ack_timeout_ms outside
 *  1..600000, ack_random_factor_x1000 outside 1000..10000, max_retransmit > 20, or a bound
 *  above its documented maximum. Also 0 if the size does not fit in size_t. */
size_t tc_ep_size(const tc_ep_config *cfg);

/** Initialise state in mem (mem_len >= tc_ep_size(cfg), mem 8-byte aligned); cfg is copied;
 *  seed is 32 bytes of the caller's entropy (borrowed): bytes 0..15 key the token/MID/timeout
 *  PRF, bytes 16..31 key the table hashes. Returns 0 or TC_E_INVALID. */
int tc_ep_init(tc_ep *ep, size_t mem_len, const tc_ep_config *cfg, const uint8_t seed[32]);

/* ------------------------------------------------------------------- tx queue */

/** One datagram to send: destination address and bytes, as offsets into tc_txq.buf. */
typedef struct tc_tx {
  uint32_t addr_offset, addr_length;
  uint32_t offset, length;
} tc_tx;

/** A caller-owned queue of datagrams to send. The core appends; the caller sends and resets
 *  (count = 0, used = 0). A call that finds too little room returns TC_E_FULL having changed
 *  nothing, or (tc_ep_timer) leaves the remaining work due for the next call. */
typedef struct tc_txq {
  uint8_t *buf;    /**< caller-owned byte area */
  uint32_t cap;    /**< its size */
  uint32_t used;   /**< bytes used */
  tc_tx *items;    /**< caller-owned item array */
  uint32_t item_cap;
  uint32_t count;  /**< items used */
} tc_txq;

/* --------------------------------------------------------------------- events */

enum tc_ep_kind {
  TC_EV_NONE = 0,     /**< nothing for the application */
  TC_EV_REQUEST = 1,  /**< a new request: answer it with tc_ep_respond(id) */
  TC_EV_RESPONSE = 2, /**< a response to client request id */
  TC_EV_FAILED = 3,   /**< client request (or CON notification) id failed; status says why */
  TC_EV_ACKED = 4,    /**< CON notification id (tc_ep_notify) was acknowledged */
  TC_EV_NOTIFY_RESET = 5 /**< a RST answered a recent NON notification (RFC 7641 §3.6: the
                              client cancelled the Observe relation): id is
                              TC_EP_NON_NOTIFY_ID(its Message ID), status TC_E_RESET, flags
                              TC_EVF_LAST; the RST came from rx->addr of tc_ep_recv.
                              Hand it to tc_obs_on_recv(o, now, addr, addr_len, &ev). */
};

/** NON notifications remembered per ep for matching a RST (TC_EV_NOTIFY_RESET): a table
 *  direct-mapped by Message ID, so it holds the NON notifications among the last 1024 Message
 *  IDs the ep allocated (requests, CON and NON notifications share one MID sequence), each for
 *  NON_LIFETIME after it was sent; 40 bytes an entry (40 KiB of tc_ep_size). A RST to an
 *  older NON notification is only counted (stats.unmatched); the next notification to that
 *  client (every con_every-th one is CON) ends the relation. Each entry is reported once. */
#define TC_EP_NON_NOTIFY_RING 1024u
/** The id of a TC_EV_NOTIFY_RESET event for the NON notification with Message ID mid (bit 30
 *  set like CON notification ids, but the generation bits 16..29 are 0, which no CON
 *  notification id has). */
#define TC_EP_NON_NOTIFY_ID(mid) (0x40000000u | ((uint32_t)(mid) & 0xFFFFu))
/** The Message ID in a TC_EV_NOTIFY_RESET id. */
#define TC_EP_NON_NOTIFY_MID(id) ((uint32_t)(id) & 0xFFFFu)

/** What a call tells the application.
 *  Ids are never 0. Server exchange ids have bits 31 and 30 clear, client request (and ping)
 *  ids have bit 31 set, CON notification ids (tc_ep_notify) have bit 30 set; all encode a
 *  table slot and a generation, so an id that is finished (or whose slot was
 *  reused) is reported as TC_E_STALE. */
typedef struct tc_ep_event {
  uint32_t kind;   /**< tc_ep_kind */
  uint32_t id;     /**< exchange id (REQUEST) or client request id (RESPONSE, FAILED) */
  int32_t status;  /**< FAILED: TC_E_TIMEOUT, TC_E_RESET, TC_E_BAD_OPTION or
                        TC_E_UNREACHABLE (tc_ep_unreachable); NOTIFY_RESET:
                        TC_E_RESET; else 0. A CON
                        notification fails with TC_E_RESET (the client cancelled the Observe
                        relation, RFC 7641 §3.6) or TC_E_TIMEOUT */
  uint32_t flags;  /**< REQUEST: TC_EVF_CONFIRMABLE; RESPONSE: TC_EVF_CONFIRMABLE (the
                        response came as a CON, already ACKed by the core), TC_EVF_LAST (the
                        request is finished; absent for kept requests); FAILED, NOTIFY_RESET:
                        TC_EVF_LAST */
} tc_ep_event;

#define TC_EVF_CONFIRMABLE 1u
#define TC_EVF_LAST 2u

/* ------------------------------------------------------------------- receiving */

/**
 * Process one received datagram: rx->data (rx->len bytes) from rx->addr (all borrowed).
 *
 * rx->msg, rx->opts: on TC_EV_REQUEST / TC_EV_RESPONSE the message was decoded into them
 *        (offsets into rx->data), so the caller need not decode it again.
 * tx:    replies the core sends at once (RST, ACK, replayed response, 4.02, 4.05, 5.03,
 *        5.05) are appended: at most ONE datagram per call; the call needs one free item and
 *        rx->addr_len + max_message_size free bytes, else it returns TC_E_FULL having looked at
 *        nothing and changed nothing.
 * rx->opts: rx->opt_cap entries; a message with more options than that is treated like a message
 *        format error (CON: RST; otherwise ignored), so give room for plenty (e.g. 64).
 * ev:    written (kind TC_EV_NONE when nothing is for the application).
 * Returns 0, or TC_E_FULL / TC_E_INVALID (rx->addr_len out of range) for caller errors. Malformed
 * datagrams are not errors of the call: they get the RFC's reaction and ev->kind = NONE.
 *
 * Reactions (RFC 7252 unless noted):
 *  - message format error (undecodable, Code class 1/3/6/7, token over TC_EP_TOKEN_MAX,
 *    Empty message with content): CON -> RST; otherwise ignored (stats.format_errors).
 *    Unknown version, ACK carrying a request, non-empty RST, Empty NON: ignored.
 *  - Empty CON (ping) -> RST.
 *  - duplicate (same peer and Message ID within EXCHANGE_LIFETIME / NON_LIFETIME): a NON is
 *    ignored (RFC 7252 §4.5, stats.non_duplicates); for a CON the cached response is
 *    replayed; while the request is in progress it is ignored (a CON gets the
 *    empty ACK again if one was already sent); once the response has left the cache a CON
 *    gets an empty ACK. Never delivered twice while its record lives (dedup_entries later
 *    records evict it, completed POST/PATCH ones only after three more passes of the cursor).
 *  - request with an unknown method (0.08..0.31) -> 4.05; with an unrecognized critical
 *    option (also OSCORE, Q-Block1, Q-Block2: known but not implemented), a critical option
 *    of bad length or a non-repeatable critical option repeated: CON -> 4.02 with a diagnostic payload, NON -> rejected (ignored, §5.4.1);
 *    with Proxy-Uri or Proxy-Scheme -> 5.05 unless cfg.flags has TC_EPF_PROXY; amplification defence on
 *    (amplification_factor) and a GET/FETCH with Observe 0 from an endpoint neither verified
 *    nor carrying a valid Echo -> 4.01 with a fresh Echo option (RFC 9175 §2.4); table full
 *    -> 5.03 with Max-Age overload_max_age. Checked in that order. These responses are piggybacked for a
 *    CON, NON for a NON, cached for duplicates, and subject to No-Response.
 *  - RST (Empty) matching a NON notification sent to addr (tc_ep_notify) among the last
 *    TC_EP_NON_NOTIFY_RING Message IDs, within NON_LIFETIME: ev->kind = TC_EV_NOTIFY_RESET
 *    (once per notification); any other unmatched ACK/RST is only counted (stats.unmatched).
 *  - response (CON/NON) matching no outstanding request by (peer, token): RST (CON and NON:
 *    the latter tells an Observe server to stop, RFC 7641 §3.6).
 *  - CON response matched: empty ACK; a duplicate of it gets the empty ACK again.
 *  - response with an unrecognized critical option: rejected (CON: RST) and the request
 *    fails with TC_E_BAD_OPTION.
 */
int tc_ep_recv(tc_ep *ep, uint64_t now, const tc_rx *rx, tc_txq *tx, tc_ep_event *ev);

/** The peer address of an exchange (server) or request (client): copies up to cap bytes into
 *  out and returns the address length, or TC_E_STALE. */
int tc_ep_peer(const tc_ep *ep, uint32_t id, uint8_t *out, uint32_t cap);

/* -------------------------------------------------------------------- serving */

/**
 * Answer request exchange `id` (from a TC_EV_REQUEST).
 *
 * resp:  borrowed (tc_outmsg); code, options and payload (offsets into resp->src) are used;
 *        type, message id and token come from the request: a piggybacked ACK while the
 *        request is unacknowledged, else a separate CON (retransmitted until ACKed) for a CON
 *        request, NON for a NON. resp->opts are sorted in place (stable).
 * The response is cached for replay to duplicates; No-Response (RFC 7967) is honoured (for
 * a suppressed response to a CON only an empty ACK goes out).
 * resp->msg->code must be a response code (class 2, 4 or 5), else TC_E_INVALID.
 * Returns 0, TC_E_STALE (unknown/finished id), TC_E_FULL (tx queue or CON slots full: the
 * exchange stays open, try again), TC_E_MESSAGE_TOO_LARGE (response over max_message_size),
 * or TC_E_INVALID.
 */
int tc_ep_respond(tc_ep *ep, uint64_t now, uint32_t id, const tc_outmsg *resp, tc_txq *tx);

/** Forget request exchange `id` without answering it (e.g. the app gave up or shuts down).
 *  Duplicates of the request are then ignored until it expires. Returns 0 or TC_E_STALE. */
int tc_ep_drop(tc_ep *ep, uint32_t id);

/* ------------------------------------------------------------------- requesting */

/* tc_ep_request flags TC_REQ_CON, TC_REQ_KEEP: turbocoap_messaging.h */

/**
 * Send a client request to a->addr.
 *
 * a:     borrowed (tc_req_args). a->req: code, payload (offsets into a->req.src) and options
 *        are used (opts sorted in place, stable); message id is generated. token: if
 *        a->gen_token_length >= 0 the core generates that many unpredictable bytes
 *        (0..TC_EP_TOKEN_MAX), else a->req.msg's token (from src) is used.
 * res:   caller-owned, written on success: the client request id (reported back in
 *        TC_EV_RESPONSE / TC_EV_FAILED) and the token used. May be NULL.
 * The code must be a method code (0.01..0.31), flags only TC_REQ_CON | TC_REQ_KEEP.
 * The token must not be in use by another outstanding request to the same peer (a caller
 * token that is: TC_E_INVALID; a generated one is redrawn, so generated tokens of length 0
 * allow one outstanding request per peer).
 * NSTART counts CON requests (and pings) to a peer until they are ACKed, answered, reset or
 * given up; a CON request beyond NSTART is held (it keeps its CON slot and Message ID) and
 * sent by tc_ep_timer when an earlier one stops counting. NON requests are not held.
 * Returns 0, TC_E_FULL (client table, CON slots or tx queue; nothing changed),
 * TC_E_MESSAGE_TOO_LARGE (encoded request over max_message_size), TC_E_INVALID.
 */
int tc_ep_request(tc_ep *ep, uint64_t now, const tc_req_args *a, tc_txq *tx,
                  tc_req_result *res);

/** Forget client request id (abandoned or, for TC_REQ_KEEP, done). A late response to it
 *  is answered with RST. With a notification id (tc_ep_notify): stop retransmitting it, no
 *  event follows. Returns 0 or TC_E_STALE. */
int tc_ep_cancel(tc_ep *ep, uint32_t id);

/**
 * Send a response outside an exchange: an Observe notification (RFC 7641) to a->addr with the
 * token of the client's registration request (a->token, a->token_len <= TC_EP_TOKEN_MAX).
 * Message ID is generated. a: borrowed (tc_notify_args).
 *
 * a->flags: TC_REQ_CON for a confirmable notification (uses a CON slot, retransmitted until
 *        ACKed: then TC_EV_ACKED; a RST or MAX_RETRANSMIT exhaustion gives TC_EV_FAILED with
 *        TC_E_RESET / TC_E_TIMEOUT, all with res->id), else 0 for NON (no retransmission;
 *        its Message ID, res->mid, is remembered so that a RST answering it gives
 *        TC_EV_NOTIFY_RESET, see TC_EP_NON_NOTIFY_RING). TC_REQ_CON | TC_NOTIFY_NON_IF_BUSY:
 *        NON when every CON slot is taken.
 * a->resp: code (class 2, 4, 5), options and payload as in tc_ep_respond.
 * res:   caller-owned, written on success (may be NULL): TC_NOTIFY_SENT_CON with the
 *        notification id, or TC_NOTIFY_HAS_MID with the NON's Message ID.
 * Returns 0, TC_E_FULL (tx queue, or CON slots without TC_NOTIFY_NON_IF_BUSY; nothing
 * changed), TC_E_MESSAGE_TOO_LARGE or TC_E_INVALID.
 */
int tc_ep_notify(tc_ep *ep, uint64_t now, const tc_notify_args *a, tc_txq *tx,
                 tc_notify_result *res);

/** Fill *m with ep's implementation of the messaging seam (turbocoap_messaging.h): responses
 *  and notifications go to tx. ep and tx are borrowed by m: m is valid while both are (build
 *  it once per ep and tx queue). transport TC_UDP, flags 0, max_message_size and
 *  max_exchanges from ep's config (max_message_size, max_in_progress). Returns 0, or
 *  TC_E_INVALID (ep not initialised, tx or m NULL; *m is then zeroed). */
int tc_ep_messaging(tc_ep *ep, tc_txq *tx, tc_messaging *m);

/** The tc_ep behind a seam filled by tc_ep_messaging, or NULL for any other seam. */
tc_ep *tc_messaging_ep(const tc_messaging *m);

/** Send a CoAP ping (empty CON) to addr; the RST answering it (or an empty ACK, which some
 *  peers send) completes id with TC_EV_RESPONSE (msg holds the empty message), no answer with
 *  TC_EV_FAILED/TC_E_TIMEOUT. Pings count against NSTART and use a CON slot.
 *  Returns 0, TC_E_FULL or TC_E_INVALID. */
int tc_ep_ping(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t addr_len, tc_txq *tx,
               uint32_t *id);

/**
 * The host learned that addr (addr_len bytes) refused a datagram (ICMP port unreachable, e.g.
 * from a socket's error queue): every client request and ping outstanding to that address
 * (sent, held by NSTART, or kept for Observe) fails at once with TC_EV_FAILED, status
 * TC_E_UNREACHABLE, flags TC_EVF_LAST, written to events (ev_cap entries) instead of waiting
 * out its retransmissions. Server exchanges and notifications to addr are not touched.
 * Returns the number of events written (>= 0); when it equals ev_cap more may be left: call
 * again (failed requests are gone, so each call makes progress). TC_E_INVALID for bad
 * arguments.
 */
int tc_ep_unreachable(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t addr_len,
                      tc_ep_event *events, uint32_t ev_cap);

/* ---------------------------------------------------------------------- time */

/**
 * Do what is due at `now` (a call before tc_ep_next_deadline() does nothing): retransmissions (doubling timeout, up to MAX_RETRANSMIT), empty
 * ACKs for requests not answered within separate_ack_delay_ms, held NSTART requests, client
 * timeouts, expiry of remembered exchanges.
 * events: caller-owned, ev_cap entries; TC_EV_FAILED for each client request given up.
 * Returns the number of events written (>= 0). Work that found no room in tx or events stays
 * due: call again after draining (tc_ep_next_deadline() will be <= now).
 */
int tc_ep_timer(tc_ep *ep, uint64_t now, tc_txq *tx, tc_ep_event *events, uint32_t ev_cap);

/** The earliest time tc_ep_timer must be called, or UINT64_MAX if nothing is pending. May be
 *  early (a spurious call is harmless), never late. */
uint64_t tc_ep_next_deadline(const tc_ep *ep);

/** Counters for observability and tests. */
typedef struct tc_ep_stats {
  uint64_t rx;              /**< datagrams passed to tc_ep_recv (that it looked at) */
  uint64_t tx;              /**< datagrams queued */
  uint64_t duplicates;      /**< duplicate CON/NON messages detected */
  uint64_t replays;         /**< cached responses replayed to duplicates */
  uint64_t retransmits;     /**< CON retransmissions */
  uint64_t resets_sent;     /**< RST messages queued */
  uint64_t format_errors;   /**< messages rejected as malformed */
  uint64_t overloads;       /**< requests answered 5.03 because a table was full */
  uint64_t bad_options;     /**< requests (4.02 / rejected) or responses with bad critical options */
  uint64_t dedup_evictions; /**< dedup records evicted before their lifetime ended */
  uint64_t timeouts;        /**< client requests given up (TC_E_TIMEOUT) */
  uint64_t unmatched;       /**< ACK/RST/responses matching nothing outstanding */
  uint32_t in_progress, client_requests, con_slots_used;
  uint32_t dedup_used;      /**< live dedup records (expired ones count until swept) */
  uint32_t peers;           /**< entries in the per-peer counter table */
  uint32_t reserved;
  uint64_t echo_challenges; /**< 4.01 + Echo sent instead of a response (amplification defence) */
  uint64_t responses_non;   /**< separate responses to CON requests sent NON because every CON
                                 slot was busy (RFC 7252 §5.2.3 allows it; nothing is dropped) */
  uint64_t responses_dropped;/**< tc_ep_respond calls that found no room even in an empty tx
                                 queue (the driver then drops the exchange); stays 0 */
  uint64_t non_duplicates;  /**< duplicate NON requests ignored (RFC 7252 §4.5), counted in
                                 duplicates too */
  uint32_t verified;        /**< live entries of the verified-endpoint table */
  uint32_t reserved2;
} tc_ep_stats;

/** Copy the counters into *out. */
void tc_ep_get_stats(const tc_ep *ep, tc_ep_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_EP_H */

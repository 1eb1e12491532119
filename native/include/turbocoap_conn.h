/*
 * turbocoap_conn.h — one RFC 8323 connection (CoAP over TCP, TLS or WebSockets), sans-IO:
 * the messaging layer of a reliable transport. Included by turbocoap.h after turbocoap_srv.h;
 * do not include it directly.
 *
 * A tc_conn holds the state of ONE connection: the streaming deframer (TC_TCP) or whole-message
 * input (TC_WS), the Capabilities and Settings of both sides (CSM, §5.3), Ping/Pong (§5.4),
 * Release (§5.5) and Abort (§5.6), the requests the peer sent us (exchanges, answered through
 * the messaging seam so tc_srv runs over it unchanged) and the requests we sent it (matched by
 * token alone: no message IDs, no CON/ACK/RST), and a bounded output buffer.
 *
 * Sans-IO contract (as tc_ep):
 *  - ONE caller-owned block of tc_conn_size(cfg) bytes (8-byte aligned), holding no pointers;
 *    no allocation, no globals.
 *  - Time enters as `now` (ms, monotonic, never decreasing); tc_conn_next_deadline() says when
 *    tc_conn_timer() is due (CSM wait, idle Ping, Pong wait, request timeouts).
 *  - Entropy enters once, as a 32-byte seed to tc_conn_init (tokens and Ping tokens).
 *  - Bytes to send are appended to the connection's output buffer; the driver writes them
 *    (tc_conn_out / tc_conn_out_done). Nothing here touches a socket.
 *
 * Driver loop: per chunk read from the transport, call tc_conn_recv until it consumed the chunk
 * (at most twice per chunk when the event table is large enough: a message that spanned chunks
 * is returned from the connection's buffer, and the call stops after it so that the caller can
 * use it); per writable socket, write what tc_conn_out gives and report it with
 * tc_conn_out_done; when tc_conn_next_deadline() passes, tc_conn_timer. Once tc_conn_state()
 * is TC_CONN_CLOSED, drain the output (an Abort may be in it) and close the transport.
 *
 * Reactions (RFC 8323):
 *  - our CSM (Max-Message-Size = cfg.max_message_size, Block-Wise-Transfer with
 *    TC_CONNF_BERT) is the first thing in the output, queued by tc_conn_init;
 *  - the peer's first message must be a valid CSM: anything else first, a CSM option of bad
 *    length, an unknown critical CSM option (Abort carries Bad-CSM-Option) or no CSM within
 *    cfg.csm_timeout_ms is a connection error: Abort with a diagnostic payload, CLOSED;
 *  - message format errors (undecodable, Code class 1, 3 or 6, a frame over our
 *    Max-Message-Size, in WS mode a non-zero Len nibble, an unknown critical option in a
 *    signal, a response or Empty message with more options than TC_CONN_OPT_MAX): Abort, CLOSED;
 *  - Empty messages (0.00) are ignored (§3.4); unknown signal codes (7.00, 7.06..7.31) too;
 *  - requests: unknown method (0.08..0.31) 4.05, unrecognized/bad critical option 4.02,
 *    Proxy-Uri/Proxy-Scheme 5.05, a token over TC_EP_TOKEN_MAX 4.00 (the token echoed), no free exchange slot
 *    5.03 with Max-Age cfg.overload_max_age; otherwise TC_EV_REQUEST (all of them answered by
 *    the connection itself, not delivered); after we sent Release they are still served;
 *  - responses are matched to our requests by token; an unmatched one is ignored (counted);
 *  - Ping: Pong with the same token; a Ping with Custody gets a Pong with Custody once every
 *    request received before it has been answered or dropped (§5.4.1);
 *  - Release: TC_CONN_EV_RELEASE; no new requests from us (tc_conn_request: TC_E_STALE);
 *  - Abort: TC_CONN_EV_ABORT, then CLOSED;
 *  - nothing received for cfg.idle_ms: a Ping; no Pong within cfg.ping_timeout_ms: the
 *    connection is dead, CLOSED with status TC_E_TIMEOUT (also when the Ping found no room in
 *    the output: a peer that reads nothing of what we send is treated as gone).
 * When the connection closes, one TC_CONN_EV_CLOSED event is reported; every client request
 * still outstanding has failed with it (no TC_EV_FAILED per request) and every exchange is gone
 * (a tc_srv above: tc_srv_forget_peer(srv, peer handle) ends the peer's Observe registrations).
 *
 * Memory: tc_conn_size() is about out_bytes + max_message_size + 48 * max_exchanges +
 * 56 * max_requests + 200 bytes (about 19 KiB with the defaults; about 6.5 KiB with
 * out_bytes 4096, 8 exchanges and 8 requests for many idle connections).
 */
#ifndef TURBOCOAP_CONN_H
#define TURBOCOAP_CONN_H

#ifdef __cplusplus
extern "C" {
#endif

/** RFC 8323 §5.3.1: the Max-Message-Size assumed until the peer's CSM says otherwise. */
#define TC_CONN_BASE_MMS 1152u
/** Options a received message may carry: more is a message format error (Abort). */
#define TC_CONN_OPT_MAX 64u

/** tc_conn_config.flags */
#define TC_CONNF_BERT 1u /**< offer BERT: our CSM carries Block-Wise-Transfer (§5.3.2) */
#define TC_CONNF_PROXY 2u /**< deliver requests carrying Proxy-Uri or Proxy-Scheme (a proxy,
                               RFC 8323 §8) instead of answering them 5.05 */

/** Bounds and behaviour of a connection. Defaults from tc_conn_config_default(). All uint32
 *  words (bindings pass a flat table of TC_CONN_CONFIG_WORDS). */
typedef struct tc_conn_config {
  uint32_t transport;        /**< TC_TCP (TCP, TLS: a byte stream) or TC_WS (one WebSocket
                                  message per tc_conn_recv call), default TC_TCP */
  uint32_t flags;            /**< TC_CONNF_*, default TC_CONNF_BERT */
  uint32_t max_message_size; /**< our Max-Message-Size: the largest message we accept (the
                                  deframer's buffer) and advertise, 64..16 MiB, default 1152 */
  uint32_t out_bytes;        /**< output buffer bytes, 1024..2^30, default 16384; a message we
                                  send never exceeds out_bytes - 256 (tc_conn_send_limit) */
  uint32_t max_exchanges;    /**< requests from the peer in progress, 1..65535, default 16 */
  uint32_t exchange_base;    /**< exchange ids use slots exchange_base .. + max_exchanges - 1
                                  (so several connections can share one tc_srv with disjoint
                                  slot ranges), exchange_base + max_exchanges <= 65536,
                                  default 0 */
  uint32_t max_requests;     /**< our requests outstanding, 1..65535, default 16 */
  uint32_t request_timeout_ms; /**< a request of ours without a response fails after this
                                  (TC_EV_FAILED, TC_E_TIMEOUT), default 60000, >= 1 */
  uint32_t csm_timeout_ms;   /**< the peer's CSM must arrive within this of tc_conn_init,
                                  default 10000, >= 1 */
  uint32_t idle_ms;          /**< send a Ping when nothing was received for this long,
                                  default 30000; 0 = never */
  uint32_t ping_timeout_ms;  /**< a Ping unanswered for this long: dead, default 10000, >= 1 */
  uint32_t overload_max_age; /**< Max-Age (s) on a 5.03 when no exchange slot is free,
                                  default 2 */
} tc_conn_config;
#define TC_CONN_CONFIG_WORDS 12

/** Fill cfg with the defaults above. */
void tc_conn_config_default(tc_conn_config *cfg);

/** A connection: an opaque block of tc_conn_size() bytes. */
typedef struct tc_conn tc_conn;

/** Bytes a connection needs for cfg, or 0 if cfg is invalid. */
size_t tc_conn_size(const tc_conn_config *cfg);

/**
 * Initialise a connection in mem (mem_len >= tc_conn_size(cfg), 8-byte aligned). cfg copied.
 * seed: 32 bytes of the caller's entropy (borrowed), keying the token PRF.
 * peer: the connection's opaque handle, 1..TC_ADDR_MAX bytes (copied): the address the
 *       application layer sees for this peer (tc_rx.addr, observers), e.g. a connection id.
 * Our CSM is queued in the output at once. now: the start of the CSM wait.
 * Returns 0 or TC_E_INVALID.
 */
int tc_conn_init(tc_conn *c, size_t mem_len, const tc_conn_config *cfg, const uint8_t seed[32],
                 const uint8_t *peer, uint32_t peer_len, uint64_t now);

/** Connection states (tc_conn_state). */
enum tc_conn_state {
  TC_CONN_WAIT_CSM = 1, /**< our CSM sent, the peer's not yet received (requests may already
                             be sent, sized for the base Max-Message-Size) */
  TC_CONN_READY = 2,    /**< both CSMs exchanged */
  TC_CONN_CLOSED = 3    /**< aborted (by either side), dead, or closed: drain and close */
};

/** tc_conn_state() flags in the upper bits (state & 0xFF is enum tc_conn_state). */
#define TC_CONN_S_PEER_RELEASED 0x100u /**< the peer sent Release */
#define TC_CONN_S_RELEASED 0x200u      /**< we sent Release */
#define TC_CONN_S_PEER_BERT 0x400u     /**< the peer's CSM offered BERT */

/** The state and flags. */
uint32_t tc_conn_state(const tc_conn *c);

/** The peer's Max-Message-Size (TC_CONN_BASE_MMS until its CSM says otherwise). */
uint32_t tc_conn_peer_mms(const tc_conn *c);

/** The largest message we send now: min(peer's MMS, out_bytes - 256). */
uint32_t tc_conn_send_limit(const tc_conn *c);

/* ------------------------------------------------------------------------- events */

/** Connection events (tc_conn_event.kind), after the tc_ep_kind values reused here:
 *  TC_EV_REQUEST (a request from the peer: id is its exchange id; answer it through the seam,
 *  tc_conn_respond or tc_srv), TC_EV_RESPONSE (a response to our request id; flags
 *  TC_EVF_LAST unless the request was made with TC_REQ_KEEP), TC_EV_FAILED (our request id
 *  timed out: status TC_E_TIMEOUT). */
enum tc_conn_kind {
  TC_CONN_EV_READY = 16,  /**< the peer's first CSM: value = its Max-Message-Size, flags
                               TC_CONN_EVF_BERT if it offered BERT. Refresh the seam
                               (tc_conn_messaging) */
  TC_CONN_EV_CSM = 17,    /**< a later CSM changed the settings (as READY) */
  TC_CONN_EV_PONG = 18,   /**< a Pong answered our Ping id (tc_conn_ping, or an idle Ping of
                               tc_conn_timer): value = round-trip ms, flags
                               TC_CONN_EVF_CUSTODY if it carried Custody */
  TC_CONN_EV_RELEASE = 19,/**< the peer sent Release (message: its options, Alternative-Address
                               values, Hold-Off): value = Hold-Off seconds, or
                               TC_CONN_NO_VALUE; we send no new requests */
  TC_CONN_EV_ABORT = 20,  /**< the peer sent Abort (message: its diagnostic payload): value =
                               its Bad-CSM-Option or TC_CONN_NO_VALUE. CLOSED follows */
  TC_CONN_EV_CLOSED = 21  /**< the connection is closed: status 0 (the peer aborted, or
                               tc_conn_close), TC_E_TIMEOUT (no Pong), or the connection error
                               we aborted with: TC_E_INVALID (no/invalid CSM first, a bad
                               CSM option), TC_E_MESSAGE_TOO_LARGE (a frame over our
                               Max-Message-Size), TC_E_BAD_OPTION (unknown critical signal
                               option), or the decoder's format error. Outstanding requests
                               have failed, exchanges are gone */
};

#define TC_CONN_NO_VALUE 0xFFFFFFFFu
/** tc_conn_event.flags (besides TC_EVF_LAST) */
#define TC_CONN_EVF_BERT 4u
#define TC_CONN_EVF_CUSTODY 8u

/** One event of tc_conn_recv / tc_conn_timer, a flat uint32 table. The message it is about
 *  (REQUEST, RESPONSE, READY, CSM, RELEASE, ABORT) lies at [offset, +length) of the chunk
 *  passed to that tc_conn_recv call (where == TC_FRAME_CHUNK) or of tc_conn_buffer(c)
 *  (TC_FRAME_BUFFER, valid until the next tc_conn_recv); length 0 when there is none. Decode
 *  it with tc_decode(.., cfg.transport, ..) or tc_conn_event_rx. */
typedef struct tc_conn_event {
  uint32_t kind;   /**< tc_ep_kind / tc_conn_kind */
  uint32_t id;     /**< exchange id (REQUEST), request id (RESPONSE, FAILED), ping id (PONG) */
  int32_t status;  /**< FAILED, CLOSED: why; else 0 */
  uint32_t flags;  /**< TC_EVF_LAST, TC_CONN_EVF_* */
  uint32_t where;  /**< tc_frame_where */
  uint32_t offset;
  uint32_t length;
  uint32_t value;  /**< see the kinds */
} tc_conn_event;
#define TC_CONN_EVENT_WORDS 8

/* ------------------------------------------------------------------------- input */

/**
 * Process received bytes. TC_TCP: data is the next chunk of the stream, any size. TC_WS: data
 * is one whole WebSocket message (one CoAP message, §4.2).
 * consumed: out, bytes of data used; call again with the rest (the call stops early after an
 * event from the connection's buffer, when ev_cap events are written, or when the output has
 * less than 256 bytes free for the connection's own answers: drain it first).
 * ev: caller-owned, ev_cap (>= 2) entries. Returns the number of events, or TC_E_INVALID.
 * On a closed connection every byte is consumed and ignored.
 */
int tc_conn_recv(tc_conn *c, uint64_t now, const uint8_t *data, size_t len, size_t *consumed,
                 tc_conn_event *ev, uint32_t ev_cap);

/** The connection's input buffer (TC_FRAME_BUFFER events). */
const uint8_t *tc_conn_buffer(const tc_conn *c);

/** Build the tc_rx of an event's message (for tc_srv_input): addr = the connection's peer
 *  handle, data = the message (chunk is the data of the tc_conn_recv call that produced ev),
 *  msg/opts (caller-owned, opt_cap entries) decoded. Returns 0 or a negative TC_E_*. */
int tc_conn_event_rx(const tc_conn *c, const uint8_t *chunk, const tc_conn_event *ev,
                     tc_msg *msg, tc_opt *opts, uint32_t opt_cap, tc_rx *rx);

/* ------------------------------------------------------------------------ output */

/** The bytes to write next: TC_TCP: everything pending (contiguous); TC_WS: the next whole
 *  message (send it as one binary WebSocket message). *len = 0 and NULL when nothing is
 *  pending. The pointer is valid until the next call that appends or tc_conn_out_done. */
const uint8_t *tc_conn_out(const tc_conn *c, uint32_t *len);

/** n bytes of what tc_conn_out gave were written (TC_WS: n must be the whole message).
 *  Returns 0 or TC_E_INVALID. */
int tc_conn_out_done(tc_conn *c, uint32_t n);

/** Bytes pending in the output. */
uint32_t tc_conn_out_pending(const tc_conn *c);

/* ---------------------------------------------------------------- the peer's requests */

/** Answer exchange id (a TC_EV_REQUEST) with resp (borrowed; code class 2, 4 or 5; token from
 *  the request; opts sorted in place). Returns 0, TC_E_STALE, TC_E_FULL (no room in the
 *  output: the exchange stays open), TC_E_MESSAGE_TOO_LARGE (over tc_conn_send_limit),
 *  TC_E_INVALID. */
int tc_conn_respond(tc_conn *c, uint64_t now, uint32_t id, const tc_outmsg *resp);

/** Forget exchange id unanswered. Returns 0 or TC_E_STALE. */
int tc_conn_drop(tc_conn *c, uint32_t id);

/** A notification (Observe) to a->addr, which must be this connection's peer handle (else
 *  TC_E_STALE); never confirmable (res->flags 0). Returns 0, TC_E_FULL,
 *  TC_E_MESSAGE_TOO_LARGE, TC_E_STALE (closed, other peer) or TC_E_INVALID. */
int tc_conn_notify(tc_conn *c, uint64_t now, const tc_notify_args *a, tc_notify_result *res);

/** Fill *m with the connection's seam: respond / notify / drop above, transport cfg.transport,
 *  flags TC_MSGF_RELIABLE (| TC_MSGF_BERT when both sides offered it), max_message_size =
 *  tc_conn_send_limit, max_exchanges = exchange_base + max_exchanges. Rebuild it after
 *  TC_CONN_EV_READY / TC_CONN_EV_CSM (the size and BERT change). Returns 0 or TC_E_INVALID. */
int tc_conn_messaging(tc_conn *c, tc_messaging *m);

/**
 * Many connections under ONE tc_srv (a server): give each connection a disjoint exchange slot
 * range (cfg.exchange_base) within the tc_srv's max_in_progress, and pass
 *  - the connection's own seam (tc_conn_messaging) to tc_srv_input / tc_srv_respond /
 *    tc_srv_drop for its exchanges (block sizes and BERT follow that connection's peer), and
 *  - a router seam (tc_conn_router_messaging) to tc_srv_notify / tc_srv_resume, which fan out
 *    to observers on every connection: notify finds the connection by the observer's peer
 *    handle, respond / drop by the exchange slot, through the caller's lookups.
 * The router (caller-owned) is borrowed by the seam for as long as it is used.
 */
typedef struct tc_conn_router {
  /** The open connection whose peer handle is peer, or NULL (gone: TC_E_STALE). */
  tc_conn *(*by_peer)(void *ctx, const uint8_t *peer, uint32_t peer_len);
  /** The connection owning exchange slot (id & 0xFFFF), or NULL. */
  tc_conn *(*by_slot)(void *ctx, uint32_t slot);
  void *ctx;
  uint32_t transport;        /**< TC_TCP or TC_WS (the framing of every connection) */
  uint32_t max_message_size; /**< what notifications are sized by: the smallest send limit
                                  of the connections (e.g. TC_CONN_BASE_MMS) */
  uint32_t max_exchanges;    /**< the slots of all connections (<= tc_srv max_in_progress) */
  uint32_t reserved;
} tc_conn_router;

/** Fill *m with the router seam: flags TC_MSGF_RELIABLE, the router's transport, size and
 *  slot count. Returns 0 or TC_E_INVALID. */
int tc_conn_router_messaging(tc_conn_router *r, tc_messaging *m);

/* --------------------------------------------------------------------- our requests */

/**
 * Send a request: a (borrowed) as for tc_ep_request; addr/addr_len and TC_REQ_CON ignored,
 * TC_REQ_KEEP keeps matching responses (Observe) until tc_conn_cancel. Tokens are generated
 * (a->gen_token_length 0..TC_EP_TOKEN_MAX, unique among our outstanding requests) or the
 * caller's (must be unique: else TC_E_INVALID). res (may be NULL): the request id (bit 31 set)
 * and token. Returns 0, TC_E_FULL (max_requests, or no room in the output), TC_E_STALE (the
 * connection is closed, or released by either side), TC_E_MESSAGE_TOO_LARGE, TC_E_INVALID.
 */
int tc_conn_request(tc_conn *c, uint64_t now, const tc_req_args *a, tc_req_result *res);

/** Forget request id (a late response is ignored). Returns 0 or TC_E_STALE. */
int tc_conn_cancel(tc_conn *c, uint32_t id);

/** Send a Ping (one at a time); its Pong gives TC_CONN_EV_PONG with the RTT. custody: ask for
 *  Custody. *id: the ping id. Returns 0, TC_E_FULL (a Ping is outstanding, or no room),
 *  TC_E_STALE (closed). Unanswered within ping_timeout_ms: the connection is dead. */
int tc_conn_ping(tc_conn *c, uint64_t now, int custody, uint32_t *id);

/** Send Release (§5.5) with an optional Alternative-Address (alt, alt_len 1..255, else NULL/0)
 *  and Hold-Off (hold_off_s, or TC_CONN_NO_VALUE), and a diagnostic (diag, may be NULL). We
 *  send no new requests afterwards; responses to open exchanges still go out. Returns 0,
 *  TC_E_FULL, TC_E_STALE (closed), TC_E_INVALID. */
int tc_conn_release(tc_conn *c, uint64_t now, const uint8_t *alt, uint32_t alt_len,
                    uint32_t hold_off_s, const char *diag);

/** Abort (§5.6) with a diagnostic (may be NULL) and close: CLOSED at once (no event: the
 *  caller knows). The Abort is in the output (room is reserved for it). Returns 0 or
 *  TC_E_STALE (already closed). */
int tc_conn_abort(tc_conn *c, uint64_t now, const char *diag);

/* ---------------------------------------------------------------------------- time */

/** Do what is due at now: Abort when the peer's CSM is late, an idle Ping, CLOSED when a Ping
 *  went unanswered, TC_EV_FAILED (TC_E_TIMEOUT) for requests that timed out (ev_cap >= 1;
 *  the rest stays due). Returns the number of events. */
int tc_conn_timer(tc_conn *c, uint64_t now, tc_conn_event *ev, uint32_t ev_cap);

/** When tc_conn_timer is due next, or UINT64_MAX. May be early, never late. */
uint64_t tc_conn_next_deadline(const tc_conn *c);

/** Counters (a flat table). */
typedef struct tc_conn_stats {
  uint64_t rx_bytes, tx_bytes;
  uint32_t rx_msgs, tx_msgs;
  uint32_t exchanges;    /**< requests from the peer in progress now */
  uint32_t requests;     /**< our requests outstanding now */
  uint32_t auto_replies; /**< 4.00 / 4.02 / 4.05 / 5.03 / 5.05 answered by the connection */
  uint32_t unmatched;    /**< responses and Pongs matching nothing */
  uint32_t pings_rx, pongs_rx;
  uint32_t out_full;     /**< sends refused for want of output room */
  uint32_t reserved;
} tc_conn_stats;

void tc_conn_get_stats(const tc_conn *c, tc_conn_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_CONN_H */

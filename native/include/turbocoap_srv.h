/*
 * turbocoap_srv.h — the server pipeline (srv.c): the block-wise stores and the Observe registry
 * of turbocoap_bw.h above a messaging layer, joined so that a driver makes ONE core call per
 * received message, per application response and per notification. Included by turbocoap.h
 * after turbocoap_bw.h; do not include it directly.
 *
 * The pipeline names no transport: every call takes the messaging seam (tc_messaging,
 * turbocoap_messaging.h) and answers, notifies and drops through it; message sizes and the
 * framing come from it. Over datagrams the seam is tc_ep_messaging(ep, tx) and tc_srv_recv
 * runs tc_ep_recv first; a connection layer (RFC 8323) decodes its own messages and calls
 * tc_srv_input with the same events (TC_EV_REQUEST; no ACKED / NOTIFY_RESET over a reliable
 * transport).
 *
 * What it does on its own, without the application:
 *  - Block1 (RFC 7959 §2.5): every block but the last is stored and answered (2.31, 4.08, 4.13,
 *    5.03, 4.00); the application sees ONE request whose body waits in the store
 *    (tc_srv_req.body_id, read with tc_srv_read_body), and its response gets Block1 added.
 *  - Block2 (RFC 7959 §2.4): a response whose payload is larger than the block size (the
 *    request's Block2 SZX or the preferred one), or any response to a request that carried
 *    Block2, is cached in the Block2 store and answered block by block; requests for block
 *    NUM > 0 of a live representation are answered from the cache and never reach the
 *    application. ETag (generated unless the application gave one), Size2 on block 0 and when
 *    asked, a client's smaller SZX honoured.
 *  - Observe (RFC 7641): a GET/FETCH with Observe 0 is flagged (TC_SRVF_OBSERVE); if the
 *    application answers it with a resource id (tc_srv_respond resource != 0) and a 2.xx code,
 *    the client is registered and the response carries the Observe sequence value. Observe 1
 *    deregisters before the request is delivered (as a plain GET). Notifications fan out in one
 *    call (tc_srv_notify); a notification larger than a block carries block 0 (with Block2 and
 *    ETag) and the rest is served from the Block2 store under the key of the registration
 *    request. RSTs and CON failures of notifications are consumed here.
 *
 * Same contract as the rest of the core: ONE caller-owned block of tc_srv_size(cfg) bytes
 * (8-byte aligned), holding no pointers; borrowed inputs; counts or negative TC_E_* codes;
 * time enters as `now` (ms); bounded by the config.
 */
#ifndef TURBOCOAP_SRV_H
#define TURBOCOAP_SRV_H

#ifdef __cplusplus
extern "C" {
#endif

/** Bounds of a server pipeline. Defaults from tc_srv_config_default(). All uint32 words, so
 *  bindings pass it as a flat table of TC_SRV_CONFIG_WORDS words. */
typedef struct tc_srv_config {
  tc_bw1_config bw1;          /**< Block1 reassembly store (12 words) */
  tc_bw2_config bw2;          /**< Block2 serving store (8 words) */
  tc_obs_config obs;          /**< Observe registry (11 words) */
  uint32_t max_in_progress;   /**< pending records, one per exchange slot (request key, peer,
                                   token, Block options kept until the application answers):
                                   at least the messaging layer's max_exchanges (tc_ep:
                                   max_in_progress; a request in a slot beyond it is delivered
                                   without block-wise or Observe handling), default 4096,
                                   1..65535 */
  uint32_t max_message_size;  /**< the largest message the pipeline builds (sizes its scratch
                                   buffer), 96..65507, default 1280; each call uses the smaller
                                   of this and the seam's max_message_size, so it need not
                                   equal the transport's */
  uint32_t max_resource_keys; /**< observed resources whose registration request key is kept
                                   (for Block2 of large notifications), default 256, 1..65535;
                                   a resource beyond it still notifies, but a notification
                                   larger than a block then fails with TC_E_MESSAGE_TOO_LARGE */
} tc_srv_config;
#define TC_SRV_CONFIG_WORDS 34

/** A server pipeline: opaque, tc_srv_size() bytes. */
typedef struct tc_srv tc_srv;

/** Fill cfg with the defaults (the stores' own defaults, and the fields above). */
void tc_srv_config_default(tc_srv_config *cfg);

/** Bytes a pipeline needs for cfg, or 0 if cfg is invalid or does not fit size_t. */
size_t tc_srv_size(const tc_srv_config *cfg);

/** Initialise in mem (mem_len >= tc_srv_size(cfg), 8-byte aligned); cfg copied; seed: 16 bytes
 *  of entropy (borrowed). Returns 0 or TC_E_INVALID. */
int tc_srv_init(tc_srv *s, size_t mem_len, const tc_srv_config *cfg, const uint8_t seed[16]);

/** The stores inside s (for stats and tests); pointers into s, valid while s is. */
tc_bw1 *tc_srv_bw1(tc_srv *s);
tc_bw2 *tc_srv_bw2(tc_srv *s);
tc_obs *tc_srv_obs(tc_srv *s);

/** tc_srv_req.flags */
#define TC_SRVF_OBSERVE 1u  /**< GET/FETCH with Observe 0: answer with a resource id to register */
#define TC_SRVF_BODY 2u     /**< the body of a Block1 upload waits in the store: body_id */
#define TC_SRVF_BLOCK2 4u   /**< the request carried Block2 (the response will be block-wise) */

/** What the application needs beyond the decoded message, a flat uint32 table. */
typedef struct tc_srv_req {
  uint32_t flags;       /**< TC_SRVF_* */
  uint32_t body_id;     /**< TC_SRVF_BODY: id for tc_srv_read_body / tc_srv_release_body */
  uint32_t body_length; /**< TC_SRVF_BODY: body bytes (the message's own payload is then the
                             last block only: use the body instead) */
} tc_srv_req;
#define TC_SRV_REQ_WORDS 3

/**
 * The pipeline's share of one received message: the messaging layer already processed it and
 * reported ev (a tc_ep_event: TC_EV_REQUEST with the exchange id, or an event about a
 * notification). rx (borrowed): the peer and the decoded message (rx->msg, rx->opts,
 * offsets into rx->data). req: caller-owned, always written (zeroes unless ev->kind is
 * TC_EV_REQUEST and the request is delivered).
 * Events the pipeline consumes come back as ev->kind = TC_EV_NONE: requests it answered itself
 * through m (Block1 continuations and rejections, Block2 blocks from the cache, 4.02 for a
 * Block option of bad length), and TC_EV_ACKED / TC_EV_FAILED / TC_EV_NOTIFY_RESET about
 * notifications (tc_obs_on_recv). Other events pass through unchanged. For a delivered
 * TC_EV_REQUEST the pipeline keeps the exchange's state until tc_srv_respond / tc_srv_drop (or
 * the slot's reuse). The seam's output must have room for one answer.
 * Returns 0 or TC_E_INVALID (also when m->max_exchanges exceeds the config's max_in_progress:
 * the pipeline could not track every exchange).
 */
int tc_srv_input(tc_srv *s, const tc_messaging *m, uint64_t now, const tc_rx *rx,
                 tc_ep_event *ev, tc_srv_req *req);

/**
 * Over datagrams: tc_ep_recv(ep, now, rx, tx, ev), then tc_srv_input. m must be a seam from
 * tc_ep_messaging(ep, tx) (else TC_E_INVALID). rx as for tc_ep_recv (rx->msg, rx->opts
 * written); req: caller-owned, always written.
 * tx must have room for TWO datagrams (2 items, 2 * (addr_len + max_message_size) bytes; the
 * pipeline may answer a request itself), else TC_E_FULL and nothing was looked at.
 * Returns 0, TC_E_FULL or TC_E_INVALID.
 */
int tc_srv_recv(tc_srv *s, const tc_messaging *m, uint64_t now, const tc_rx *rx,
                tc_ep_event *ev, tc_srv_req *req);

/** The peer is gone (e.g. its RFC 8323 connection closed): its Observe registrations end
 *  (tc_obs_forget_peer). Its open exchanges are the messaging layer's to close (tc_srv_drop
 *  each, or let their slots be reused). Returns the observers removed, or TC_E_INVALID. */
int tc_srv_forget_peer(tc_srv *s, const uint8_t *peer, uint32_t peer_len);

/** Copy the body of a delivered upload (TC_SRVF_BODY) into out (caller-owned, cap bytes) and
 *  release it. Read it before answering: a body still unread when its exchange ends
 *  (tc_srv_respond, tc_srv_drop, or the reuse of the exchange's slot after a respond / drop
 *  behind the pipeline's back) is released then, and an idle one expires with the
 *  Block1 store's idle_timeout_ms. Returns its length, TC_E_STALE or TC_E_BUFFER_TOO_SMALL
 *  (nothing released). */
int tc_srv_read_body(tc_srv *s, uint32_t body_id, uint8_t *out, uint32_t cap);

/** Release an upload body without reading it. Returns 0 or TC_E_STALE. */
int tc_srv_release_body(tc_srv *s, uint32_t body_id);

/**
 * Answer exchange id (a delivered TC_EV_REQUEST) with the application's response through the
 * seam m (out: borrowed, not modified: out->msg code and payload offsets into out->src;
 * out->opts: option_count entries into src), adding what the pipeline owes: Block1 (end of an upload),
 * Observe (resource != 0, TC_SRVF_OBSERVE was set and the code is 2.xx: the client is
 * registered for `resource`, a caller-chosen id > 0; when the registry is full the response
 * goes without Observe; a non-2.xx answer to a TC_SRVF_OBSERVE request ends the client's
 * registration, if it had one), and Block2 / Size2 / ETag when the response is served
 * block-wise (also when it is small but does not fit one message). The cached representation
 * is shared by all peers for GET/FETCH, scoped to the peer otherwise. A request whose key is
 * longer than the Block2 store's max_key is never answered block-wise.
 * At most 62 options in out. Without a pending record for id (e.g. a stale id) this is
 * the seam's respond.
 * Returns 0, TC_E_STALE, TC_E_FULL (tx queue or CON slots: the exchange stays open, try again
 * after draining), TC_E_MESSAGE_TOO_LARGE (the response fits neither a message nor the Block2
 * store: the exchange stays open, answer e.g. 5.00), TC_E_INVALID.
 */
int tc_srv_respond(tc_srv *s, const tc_messaging *m, uint64_t now, uint32_t id,
                   const tc_outmsg *out, uint32_t resource);

/** Forget exchange id without answering (the seam's drop) and its pipeline state (an unread
 *  upload body is released). Returns 0 or TC_E_STALE. */
int tc_srv_drop(tc_srv *s, const tc_messaging *m, uint32_t id);

/**
 * Notify every observer of resource through the seam m (tc_obs_notify; flags TC_OBS_CON; out
 * borrowed, not modified). A payload larger than
 * a block (bw2 preferred size) is stored in the Block2 store, shared, under the request key of
 * the resource's latest registration (see max_resource_keys) and the notification carries its
 * block 0, sized to fit with any token (TC_EP_TOKEN_MAX bytes) and the Observe option; observers
 * whose registration had another key (other options) fetch the later blocks from the
 * application. Returns as tc_obs_notify (datagrams queued, 0 when nobody observes the resource,
 * TC_E_FULL, TC_E_MESSAGE_TOO_LARGE (also: larger than a block and no key kept for the
 * resource), TC_E_INVALID). If tc_srv_pending() is then non-zero, the output (tx queue)
 * filled: send it, reset it, call tc_srv_resume.
 */
int tc_srv_notify(tc_srv *s, const tc_messaging *m, uint64_t now, uint32_t resource,
                  uint32_t flags, const tc_outmsg *out);

/** tc_obs_resume. */
int tc_srv_resume(tc_srv *s, const tc_messaging *m, uint64_t now);

/** tc_obs_pending: observers still to be notified. */
uint32_t tc_srv_pending(const tc_srv *s);

/** An ep event from tc_ep_timer: 1 if it was about a notification (consumed: do not deliver),
 *  else 0. */
int tc_srv_on_timer_event(tc_srv *s, uint64_t now, const tc_ep_event *ev);

/** Expire idle uploads and stale representations. Returns how many were dropped. */
int tc_srv_timer(tc_srv *s, uint64_t now);

/** When tc_srv_timer is next due, or UINT64_MAX. */
uint64_t tc_srv_next_deadline(const tc_srv *s);

/** Counters, a flat uint32 table (snapshot). */
typedef struct tc_srv_stats {
  uint32_t uploads;          /**< Block1 uploads stored now */
  uint32_t uploads_done;     /**< uploads completed */
  uint32_t blocks_in;        /**< Block1 requests answered by the pipeline (2.31 and errors) */
  uint32_t reps;             /**< Block2 representations cached */
  uint32_t blocks_out;       /**< Block2 blocks served (from the cache or the first) */
  uint32_t observers;        /**< Observe registrations now */
  uint32_t notifications;    /**< notification datagrams queued */
  uint32_t observers_removed;/**< removed on RST, timeout or a final notification */
  uint32_t observers_refused;/**< registrations served without Observe (a bound: in total, per
                                  resource or per host) */
  uint32_t uploads_refused;  /**< Block1 requests answered 5.03 (a bound: slots, pool, per
                                  peer or per host) */
  uint32_t uploads_reclaimed;/**< stalled uploads dropped to make room for another */
  uint32_t notifications_skipped; /**< notifications not sent to observers that have not
                                  confirmed one yet (tc_obs_config.confirm_first) */
  uint32_t blocks_reused;    /**< GET/FETCH block-0 requests answered from a cached
                                  representation still within its Max-Age, without the
                                  application */
} tc_srv_stats;
#define TC_SRV_STATS_WORDS 13

/** Copy the counters into *out. */
void tc_srv_get_stats(const tc_srv *s, tc_srv_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_SRV_H */

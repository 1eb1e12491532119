/*
 * turbocoap_bw.h — block-wise transfer (RFC 7959; BERT, RFC 8323 §6) and server-side Observe
 * (RFC 7641) for the turbocoap core, sans-IO. Included by turbocoap.h after turbocoap_ep.h;
 * do not include it directly.
 *
 * Three stores and a few helpers:
 *  - Block option helpers: Block1/Block2 values, SZX <-> size, the request key.
 *  - tc_bw1: server-side Block1 reassembly (uploads), keyed by (peer, request key).
 *  - tc_bw2: server-side Block2 serving cache, keyed by request key, SHARED across peers (or
 *    scoped to one peer, e.g. for the response to a POST).
 *  - tc_obs: the Observe registry with notification fan-out through the messaging seam
 *    (tc_messaging, turbocoap_messaging.h), so through a tc_ep or a connection layer.
 *
 * Same contract as the rest of the core:
 *  - each store lives in ONE caller-owned block of *_size(cfg) bytes (8-byte aligned), holding
 *    no pointers (it may live in a JS ArrayBuffer or WASM memory); no allocation;
 *  - pointers passed in are BORROWED for the call only, output goes to caller-owned memory;
 *  - addresses are opaque byte strings of 1..TC_ADDR_MAX bytes compared as bytes;
 *  - time enters as `now` (ms, monotonic, never decreasing); *_next_deadline() says when the
 *    store's *_timer() is due;
 *  - every table is bounded by the config (documented defaults);
 *  - return values are counts / statuses (>= 0) or negative TC_E_* codes (no new codes).
 *  - structs shared with bindings are flat uint32_t tables.
 * Bodies are stored in fixed-size chunks from a bounded pool, so a large body never needs a
 * contiguous region reserved up front.
 */
#ifndef TURBOCOAP_BW_H
#define TURBOCOAP_BW_H

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------- numbers used */

#define TC_OPT_ETAG 4u
#define TC_OPT_OBSERVE 6u
#define TC_OPT_CONTENT_FORMAT 12u
#define TC_OPT_MAX_AGE 14u
#define TC_OPT_BLOCK2 23u
#define TC_OPT_BLOCK1 27u
#define TC_OPT_SIZE2 28u
#define TC_OPT_SIZE1 60u
#define TC_OPT_REQUEST_TAG 292u

#define TC_CODE_CONTINUE 0x5Fu    /**< 2.31 Continue (RFC 7959 §2.9.1) */
#define TC_CODE_BAD_REQUEST 0x80u /**< 4.00 */
#define TC_CODE_BAD_OPTION 0x82u  /**< 4.02 */
#define TC_CODE_INCOMPLETE 0x88u  /**< 4.08 Request Entity Incomplete (RFC 7959 §2.9.2) */
#define TC_CODE_TOO_LARGE 0x8Du   /**< 4.13 Request Entity Too Large (RFC 7959 §2.9.3) */
#define TC_CODE_UNAVAILABLE 0xA3u /**< 5.03 Service Unavailable */

/* ------------------------------------------------------- Block option values */

#define TC_BLOCK_NUM_MAX 0xFFFFFu /**< NUM is at most 20 bits */
#define TC_SZX_BERT 7u            /**< SZX 7: BERT on reliable transports (RFC 8323 §6);
                                       reserved elsewhere (RFC 7959 §2.2: 4.00 in a request) */

/** A decoded Block1/Block2 value. */
typedef struct tc_block {
  uint32_t num;  /**< block number, 0..TC_BLOCK_NUM_MAX */
  uint32_t more; /**< M bit, 0 or 1 */
  uint32_t szx;  /**< 0..7 (7 = BERT) */
} tc_block;

/** Block size of an SZX: 16 << szx for 0..6; 1024 for 7 (BERT's unit). */
static inline uint32_t tc_szx_size(uint32_t szx) { return szx >= 6u ? 1024u : 16u << szx; }

/** The uint option value (NUM << 4 | M << 3 | SZX) of a block, without range checks. */
static inline uint32_t tc_block_value(uint32_t num, uint32_t more, uint32_t szx) {
  return num << 4 | (more & 1u) << 3 | (szx & 7u);
}

/** Decode a Block option value of len 0..3 bytes (val borrowed). Returns 0, or TC_E_INVALID for
 *  len > 3 (a critical option of bad length: answer 4.02) or b == NULL. SZX 7 is returned
 *  as is: whether it is BERT or an error depends on the transport. */
int tc_block_decode(const uint8_t *val, uint32_t len, tc_block *b);

/** Split a uint option value into a block (v > 0xFFFFFF: TC_E_INVALID). */
int tc_block_from_value(uint32_t v, tc_block *b);

/** Encode b minimally into out (3 bytes, caller-owned). Returns the length 0..3 or TC_E_INVALID
 *  (num > TC_BLOCK_NUM_MAX, more > 1, szx > 7). */
int tc_block_encode(const tc_block *b, uint8_t out[3]);

/** The largest SZX 0..6 whose block size is <= size, or TC_E_INVALID for size < 16. */
int tc_szx_for_size(uint32_t size);

/** Encode a uint option value minimally (RFC 7252 §3.2) into out (4 bytes). Returns 0..4. */
int tc_uint_encode(uint32_t v, uint8_t out[4]);

/** Decode a uint option value of 0..4 bytes. Returns 0 or TC_E_INVALID (len > 4, NULL). */
int tc_uint_decode(const uint8_t *val, uint32_t len, uint32_t *v);

/* ------------------------------------------------------ request inspection */

/** tc_bw_info.flags: which options the request carries. */
#define TC_BWI_BLOCK1 1u
#define TC_BWI_BLOCK2 2u
#define TC_BWI_SIZE1 4u
#define TC_BWI_SIZE2 8u
#define TC_BWI_OBSERVE 16u
#define TC_BWI_REQUEST_TAG 32u

/** The block-wise and Observe options of a request, as a flat uint32 table. */
typedef struct tc_bw_info {
  uint32_t flags;   /**< TC_BWI_* */
  uint32_t block1;  /**< Block1 value (tc_block_from_value), if TC_BWI_BLOCK1 */
  uint32_t block2;  /**< Block2 value, if TC_BWI_BLOCK2 */
  uint32_t size1;   /**< Size1, if TC_BWI_SIZE1 */
  uint32_t size2;   /**< Size2, if TC_BWI_SIZE2 (0 in a request: "tell me the size") */
  uint32_t observe; /**< Observe, if TC_BWI_OBSERVE (0 register, 1 deregister) */
} tc_bw_info;
#define TC_BW_INFO_WORDS 6

/**
 * Read the Block1, Block2, Size1, Size2, Observe and Request-Tag options of a decoded message.
 * msg, opts (msg->option_count entries), src: borrowed; values at offsets into src.
 * The first occurrence of each counts. Elective options (Size1, Size2, Observe) of bad length
 * are ignored (RFC 7252 §5.4.1); a Block option longer than 3 bytes gives TC_E_INVALID (it is
 * critical: answer 4.02). Returns 0 or TC_E_INVALID.
 */
int tc_bw_parse(const tc_msg *msg, const tc_opt *opts, const uint8_t *src, tc_bw_info *out);

/** tc_bw_key flags */
#define TC_BW_KEY_PAYLOAD 1u /**< include the payload (FETCH: the body is part of the key) */

/**
 * The request key of a block-wise operation: the method code and every option of the request
 * except those that legitimately differ between the requests of one operation: If-Match (1),
 * ETag (4), If-None-Match (5), Observe (6), OSCORE (9), Max-Age (14), Hop-Limit (16), Q-Block1
 * (19), Block2 (23), Block1 (27), Size2 (28), Q-Block2 (31), Size1 (60), Echo (252),
 * No-Response (258) and all NoCacheKey options (RFC 7252 §5.4.6). So Uri-Host/Port/Path/Query,
 * Content-Format, Accept and Request-Tag (292, RFC 9175: a different or absent Request-Tag is a
 * different operation) are in it, in message order. With TC_BW_KEY_PAYLOAD the payload is too.
 * msg/opts/src: borrowed (offsets into src). out: caller-owned, cap bytes; out == NULL returns
 * the length needed. Returns the key length, TC_E_BUFFER_TOO_SMALL or TC_E_INVALID.
 * The key is an opaque byte string; only compare it with keys made by this function.
 */
int tc_bw_key(const tc_msg *msg, const tc_opt *opts, const uint8_t *src, uint32_t flags,
              uint8_t *out, uint32_t cap);

/* Flags for tc_bw1_feed / tc_bw2_serve. */
#define TC_BW_BERT 1u        /**< SZX 7 means BERT here (reliable transport whose CSM carried
                                  Block-Wise-Transfer); else SZX 7 is answered 4.00 */
#define TC_BW_HAS_SIZE1 2u   /**< tc_bw1_feed: the request carried Size1 (the size1 argument) */
#define TC_BW_HAS_BLOCK2 4u  /**< tc_bw2_serve: the request carried Block2 (the block2 argument) */
#define TC_BW_SIZE2 8u       /**< tc_bw2_serve: the request carried Size2: answer with Size2 */
#define TC_BW_ECHO_BLOCK1 16u/**< tc_bw2_serve: add Block1 = block1_echo (RFC 7959 §2.7: the
                                  first Block2 response to the final block of a Block1 upload) */

/* --------------------------------------------------- Block1 reassembly store */

/** port_offset value (tc_bw1_config, tc_obs_config): addresses carry no port (each address is
 *  its own host). */
#define TC_NO_PORT 0xFFFFFFFFu

/** Bounds and behaviour of a Block1 store. Defaults from tc_bw1_config_default(). */
typedef struct tc_bw1_config {
  uint32_t max_transfers;   /**< concurrent uploads, default 64, 1..65535 */
  uint32_t max_per_peer;    /**< concurrent uploads per peer, default 4, 1..max_transfers */
  uint32_t max_body;        /**< largest body accepted, default 1 MiB, 1..2^30 */
  uint32_t pool_bytes;      /**< body bytes stored at once over all uploads, default 4 MiB,
                                 chunk_size..2^31 (rounded down to whole chunks) */
  uint32_t chunk_size;      /**< pool granule, default 1024, a power of two 16..65536 */
  uint32_t max_key;         /**< longest request key (tc_bw_key), default 256, 1..65535 */
  uint32_t idle_timeout_ms; /**< an upload with no block for this long is dropped, default
                                 120000, >= 1 */
  uint32_t preferred_szx;   /**< block size the server asks for (RFC 7959 §2.3), default 6
                                 (1024), 0..6; a client's smaller SZX is kept */
  uint32_t busy_max_age;    /**< Max-Age (s) on 5.03 when a bound is exhausted, default 2 */
  uint32_t max_per_host;    /**< concurrent uploads per host (the address without its port,
                                 see port_offset), default 16, >= 1; beyond it: 5.03 */
  uint32_t port_offset;     /**< byte offset of the 2-byte port in the opaque address (left out
                                 when grouping by host), default 1; TC_NO_PORT: none */
  uint32_t reclaim_idle_ms; /**< when the store or its pool is full, an upload idle for at
                                 least this long may be reclaimed to make room: the least
                                 recently active one of the host holding the most uploads
                                 (stats.reclaimed), default 10000, >= 1 */
} tc_bw1_config;

/** A Block1 store: opaque, tc_bw1_size() bytes. */
typedef struct tc_bw1 tc_bw1;

/** Fill cfg with the defaults above. */
void tc_bw1_config_default(tc_bw1_config *cfg);

/** Bytes a store needs for cfg, or 0 if cfg is invalid or the size does not fit size_t. */
size_t tc_bw1_size(const tc_bw1_config *cfg);

/** Initialise a store in mem (mem_len >= tc_bw1_size(cfg), 8-byte aligned); cfg is copied;
 *  seed: 16 bytes of the caller's entropy (borrowed), keying the table hashes.
 *  Returns 0 or TC_E_INVALID. */
int tc_bw1_init(tc_bw1 *s, size_t mem_len, const tc_bw1_config *cfg, const uint8_t seed[16]);

/** What tc_bw1_feed decided. */
enum tc_bw1_status {
  TC_BW1_CONTINUE = 1, /**< block stored: answer res.code (2.31) with Block1 res.block1 */
  TC_BW1_COMPLETE = 2, /**< last block stored: the body (res.body_length bytes) is ready; read
                            it with tc_bw1_read(res.id) and run the handler; its response
                            must carry Block1 res.block1 */
  TC_BW1_WHOLE = 3,    /**< NUM 0 without M: the request's own payload is the whole body
                            (nothing stored); the response carries Block1 res.block1 */
  TC_BW1_REJECT = 4    /**< answer res.code now (tc_bw1_response builds it) */
};

/** tc_bw1_result.flags: options the answer carries. */
#define TC_BW1F_BLOCK1 1u    /**< Block1 = block1 */
#define TC_BW1F_SIZE1 2u     /**< Size1 = size1 (4.13: the largest body accepted) */
#define TC_BW1F_MAX_AGE 4u   /**< Max-Age = max_age (5.03) */
#define TC_BW1F_DUPLICATE 8u /**< the block repeated the last one: answered as before, nothing
                                  stored */

/** Result of tc_bw1_feed, a flat uint32 table. */
typedef struct tc_bw1_result {
  uint32_t status;      /**< enum tc_bw1_status */
  uint32_t code;        /**< CONTINUE: 2.31; REJECT: 4.00 (bad block: SZX 7 without BERT,
                             wrong payload size), 4.08 (missing/out-of-order block or unknown
                             upload), 4.13 (body over max_body, also when Size1 says so up
                             front), 5.03 (a bound is exhausted: upload count, per peer,
                             pool); COMPLETE/WHOLE: 0 (the handler decides) */
  uint32_t block1;      /**< Block1 value for the answer (TC_BW1F_BLOCK1): NUM of the request,
                             M = 1 for CONTINUE (atomic) else 0, SZX = min(request's,
                             preferred_szx) (BERT stays 7 when preferred_szx is 6) */
  uint32_t size1;       /**< TC_BW1F_SIZE1: max_body */
  uint32_t max_age;     /**< TC_BW1F_MAX_AGE: busy_max_age */
  uint32_t id;          /**< COMPLETE: upload id for tc_bw1_read / tc_bw1_release; else 0 */
  uint32_t body_length; /**< COMPLETE: body bytes; WHOLE: payload length */
  uint32_t flags;       /**< TC_BW1F_* */
} tc_bw1_result;
#define TC_BW1_RESULT_WORDS 8

/** One request's Block1 block, as tc_bw1_feed takes it. All pointers borrowed for the call. */
typedef struct tc_bw1_block {
  const uint8_t *peer;    /**< the client address, peer_len bytes (1..TC_ADDR_MAX) */
  uint32_t peer_len;
  uint32_t key_len;       /**< <= max_key */
  const uint8_t *key;     /**< the request key (tc_bw_key) */
  uint32_t block1;        /**< the Block1 option value */
  uint32_t flags;         /**< TC_BW_BERT, TC_BW_HAS_SIZE1 */
  uint32_t size1;         /**< the request's Size1, with TC_BW_HAS_SIZE1 */
  uint32_t payload_len;
  const uint8_t *payload; /**< the request payload (copied) */
} tc_bw1_block;

/**
 * Feed one request that carries a Block1 option: b (borrowed) as tc_bw1_block describes.
 * Rules (RFC 7959 §2.3, §2.5, §2.9; RFC 8323 §6; RFC 9175 §3.3):
 *  - blocks are accepted in order: NUM * block size must equal the bytes received, so the block
 *    size may change between blocks (the client adopting a smaller SZX); a non-final block
 *    carries exactly one block (BERT: a non-zero multiple of 1024 bytes), a final block at most
 *    one (BERT: any length); else 4.00;
 *  - a repetition of the last block (same offset, length and M) is answered as before
 *    (TC_BW1F_DUPLICATE); NUM 0 starts the upload afresh; any other gap or step back is 4.08
 *    (the upload is kept, except when the final block finds blocks missing);
 *  - an unknown upload with NUM > 0: 4.08; a body (or Size1) over max_body: 4.13 with Size1
 *    and the upload is dropped; a request key longer than max_key: 4.13 without Size1;
 *  - no room (max_transfers, max_per_peer for a new upload, or pool chunks): 5.03 with Max-Age
 *    busy_max_age and nothing stored, so the client may retry the same block. (RFC 7959 §2.9.3
 *    also allows 4.13 for this; we use 5.03 because 4.13 with Size1 would tell the client its
 *    body is too large when the server is merely busy.)
 * res: caller-owned, always written. Returns res->status (> 0), or TC_E_INVALID for bad
 * arguments (peer length, block1 > 0xFFFFFF, NULL pointers, unknown flags).
 */
int tc_bw1_feed(tc_bw1 *s, uint64_t now, const tc_bw1_block *b, tc_bw1_result *res);

/**
 * Build the answer for a CONTINUE or REJECT result: code, Block1 / Size1 / Max-Age as
 * res->flags say, and for errors a short diagnostic payload. (For COMPLETE / WHOLE the
 * handler's response carries Block1 res->block1; other statuses give TC_E_INVALID.)
 * msg: caller-owned, written (token and type left 0: the messaging layer's respond fills them
 * in); opts: caller-owned, opt_cap >= 3; buf: caller-owned, cap bytes (64 is plenty), holds
 * the option values and payload (msg/opts offsets index into it).
 * Returns the bytes of buf used, TC_E_BUFFER_TOO_SMALL or TC_E_INVALID.
 */
int tc_bw1_response(const tc_bw1_result *res, tc_msg *msg, tc_opt *opts, uint32_t opt_cap,
                    uint8_t *buf, uint32_t cap);

/** Copy the body of completed upload id into out (caller-owned, cap bytes) and release the
 *  upload. Returns the body length, TC_E_STALE (unknown/expired/released id) or
 *  TC_E_BUFFER_TOO_SMALL (nothing released). */
int tc_bw1_read(tc_bw1 *s, uint32_t id, uint8_t *out, uint32_t cap);

/** Release upload id (completed or not) without reading it. Returns 0 or TC_E_STALE. */
int tc_bw1_release(tc_bw1 *s, uint32_t id);

/** Drop uploads idle for idle_timeout_ms at `now`. Returns how many were dropped. */
int tc_bw1_timer(tc_bw1 *s, uint64_t now);

/** When tc_bw1_timer is next due, or UINT64_MAX if no upload is stored. Exact. */
uint64_t tc_bw1_next_deadline(const tc_bw1 *s);

/** Counters of a Block1 store. */
typedef struct tc_bw1_stats {
  uint32_t transfers;      /**< uploads stored now */
  uint32_t chunks_used;    /**< pool chunks in use */
  uint32_t chunks_total;   /**< pool chunks */
  uint32_t completed;      /**< uploads completed (COMPLETE) */
  uint32_t expired;        /**< uploads dropped by tc_bw1_timer */
  uint32_t duplicates;     /**< repeated blocks answered idempotently */
  uint32_t incomplete;     /**< 4.08 answers */
  uint32_t too_large;      /**< 4.13 answers */
  uint32_t busy;           /**< 5.03 answers */
  uint32_t bad;            /**< 4.00 answers */
  uint32_t reclaimed;      /**< stalled uploads dropped to make room for another */
  uint32_t refused_host;   /**< new uploads refused (5.03, counted in busy too) for max_per_host */
} tc_bw1_stats;

/** Copy the counters into *out. */
void tc_bw1_get_stats(const tc_bw1 *s, tc_bw1_stats *out);

/* ------------------------------------------------------ Block2 serving store */

/** Bounds and behaviour of a Block2 store. Defaults from tc_bw2_config_default(). */
typedef struct tc_bw2_config {
  uint32_t max_reps;          /**< representations cached, default 64, 1..65535 */
  uint32_t pool_bytes;        /**< body bytes cached over all representations (data + chunk
                                   index), default 8 MiB, chunk_size..2^31 */
  uint32_t chunk_size;        /**< pool granule, default 1024, a power of two 16..65536 */
  uint32_t max_key;           /**< longest request key, default 256, 1..65535 */
  uint32_t max_opt_bytes;     /**< stored response option bytes per representation (values +
                                   4 bytes each), default 256, 0..65535 */
  uint32_t max_opts;          /**< stored response options per representation, default 16,
                                   0..64 */
  uint32_t preferred_szx;     /**< block size served when the client asks none or a larger
                                   one, default 6 (1024), 0..6 */
  uint32_t default_lifetime_ms;/**< lifetime when tc_bw2_put gets 0, default 60000, >= 1 */
} tc_bw2_config;

/** A Block2 store: opaque, tc_bw2_size() bytes. */
typedef struct tc_bw2 tc_bw2;

/** Fill cfg with the defaults above. */
void tc_bw2_config_default(tc_bw2_config *cfg);

/** Bytes a store needs for cfg, or 0 if cfg is invalid or the size does not fit size_t. */
size_t tc_bw2_size(const tc_bw2_config *cfg);

/** Initialise a store in mem (mem_len >= tc_bw2_size(cfg), 8-byte aligned); cfg is copied;
 *  seed: 16 bytes of entropy (borrowed) keying the hashes and the generated ETags.
 *  Returns 0 or TC_E_INVALID. */
int tc_bw2_init(tc_bw2 *s, size_t mem_len, const tc_bw2_config *cfg, const uint8_t seed[16]);

/** A representation to cache (tc_bw2_put). All pointers borrowed for the call; all input is
 *  copied. */
typedef struct tc_bw2_rep {
  const uint8_t *peer;  /**< NULL / 0 for a representation SHARED by every peer (a GET), else
                             scoped to that peer (e.g. the response to a POST) */
  uint32_t peer_len;
  uint32_t key_len;     /**< <= max_key */
  const uint8_t *key;   /**< the request key (tc_bw_key) */
  uint32_t lifetime_ms; /**< 0 = default_lifetime_ms */
  uint32_t reserved;    /**< 0 */
  tc_outmsg resp;       /**< the handler's response; not modified */
} tc_bw2_rep;

/**
 * Cache the handler's response r->resp as a representation to serve block by block.
 *
 * Scope and key as tc_bw2_rep says. resp: code (class 2, 4 or 5) and payload (offsets into
 * src); options (offsets into src), stored except ETag, Observe, Block1, Block2, Size1 and
 * Size2.
 * The first ETag in opts becomes the representation's ETag; without one an 8-byte ETag is
 * generated, different for every new representation, so clients detect a change.
 * A representation with the same (scope, key) is replaced, unless code, stored options and
 * body are identical: then it is kept (same id and ETag) and its lifetime extended, so a handler
 * that runs again for another client does not restart everyone's transfer.
 * Room is made by dropping expired, then least recently used representations.
 * *id (optional) receives the representation id.
 * Returns 0, TC_E_MESSAGE_TOO_LARGE (body, options or key over the bounds: nothing changed),
 * or TC_E_INVALID.
 */
int tc_bw2_put(tc_bw2 *s, uint64_t now, const tc_bw2_rep *r, uint32_t *id);

/** Whether representation id is still fresh at now: its response carried a Max-Age option
 *  (> 0) and that many seconds have not passed since it was stored (or last put with the same
 *  body). *remaining_s (may be NULL) gets the seconds left, rounded up. 1 or 0. */
int tc_bw2_fresh(const tc_bw2 *s, uint64_t now, uint32_t id, uint32_t *remaining_s);

/** Find the live representation for (peer, key): one scoped to peer first, else a shared one.
 *  peer may be NULL / 0 (shared only). Returns 0 with *id set, or TC_E_STALE (none, or
 *  expired: run the handler and tc_bw2_put), or TC_E_INVALID. */
int tc_bw2_find(tc_bw2 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                const uint8_t *key, uint32_t key_len, uint32_t *id);

/** What a request asks of a cached representation (tc_bw2_serve). */
typedef struct tc_bw2_ask {
  uint32_t block2;      /**< the request's Block2 value, with TC_BW_HAS_BLOCK2 */
  uint32_t flags;       /**< TC_BW_HAS_BLOCK2, TC_BW_SIZE2, TC_BW_ECHO_BLOCK1, TC_BW_BERT */
  uint32_t block1_echo; /**< the Block1 value to add, with TC_BW_ECHO_BLOCK1 */
  uint32_t msg_limit;   /**< the largest encoded message without its token, 0 = no limit */
} tc_bw2_ask;

/** Caller-owned room for a message being built: msg, opt_cap option entries, and cap bytes of
 *  buf for the option values and payload (msg/opts offsets index into buf). */
typedef struct tc_msgbuf {
  tc_msg *msg;
  tc_opt *opts;
  uint8_t *buf;
  uint32_t opt_cap;
  uint32_t cap;
} tc_msgbuf;

/**
 * Build the response carrying one block of representation id into caller memory (out).
 *
 * ask->block2: the request's Block2 value when ask->flags has TC_BW_HAS_BLOCK2 (else block 0
 * at preferred_szx; with TC_BW_BERT and preferred_szx 6, block 0 as BERT). The block size is the smaller of the client's and preferred_szx (RFC 7959
 * §2.4 early negotiation), reduced further until the message fits msg_limit; NUM is rescaled
 * to the chosen size. SZX 7 with TC_BW_BERT: BERT, as many 1024-byte blocks as fit msg_limit
 * (at least one; one when msg_limit is 0). msg_limit: the largest encoded message without
 * its token (e.g. max_message_size - token length), 0 = no limit.
 * The response: the representation's code and stored options, ETag, Block2 (NUM, M, SZX),
 * Size2 (total length) on block 0 or when flags has TC_BW_SIZE2, Block1 = block1_echo with
 * TC_BW_ECHO_BLOCK1, and the block as payload.
 * Errors answered in the message itself: SZX 7 without TC_BW_BERT -> 4.00 (RFC 7959 §2.2);
 * a block starting at or past the end of the body (other than block 0 of an empty body) ->
 * 4.02 Bad Option with a diagnostic (RFC 7959 does not name a code for this; the Block2 value
 * cannot be honoured).
 * out->msg: written (type, token, message id 0); out->opts: opt_cap >= stored options + 4
 * entries; out->buf: cap bytes, option values + payload (msg/opts offsets index into it).
 * Returns the bytes of buf used, TC_E_STALE (id unknown or expired), TC_E_BUFFER_TOO_SMALL,
 * TC_E_MESSAGE_TOO_LARGE (not even 16 bytes of payload fit msg_limit) or TC_E_INVALID.
 */
int tc_bw2_serve(tc_bw2 *s, uint64_t now, uint32_t id, const tc_bw2_ask *ask,
                 const tc_msgbuf *out);

/** Body length of representation id, or TC_E_STALE. */
int tc_bw2_length(const tc_bw2 *s, uint32_t id);

/** Copy the ETag of representation id into out (8 bytes); returns its length or TC_E_STALE. */
int tc_bw2_etag(const tc_bw2 *s, uint32_t id, uint8_t out[8]);

/** Drop representation id now. Returns 0 or TC_E_STALE. */
int tc_bw2_drop(tc_bw2 *s, uint32_t id);

/** Drop expired representations. Returns how many were dropped. */
int tc_bw2_timer(tc_bw2 *s, uint64_t now);

/** When tc_bw2_timer is next due (a lower bound: may be early), or UINT64_MAX. */
uint64_t tc_bw2_next_deadline(const tc_bw2 *s);

/** Counters of a Block2 store. */
typedef struct tc_bw2_stats {
  uint32_t reps;         /**< representations cached */
  uint32_t chunks_used;  /**< pool chunks in use (data + index) */
  uint32_t chunks_total;
  uint32_t puts;         /**< new representations stored */
  uint32_t kept;         /**< puts that found an identical representation */
  uint32_t evicted;      /**< representations dropped to make room */
  uint32_t expired;      /**< representations dropped because their lifetime ended */
  uint32_t served;       /**< blocks served */
} tc_bw2_stats;

/** Copy the counters into *out. */
void tc_bw2_get_stats(const tc_bw2 *s, tc_bw2_stats *out);

/* ------------------------------------------------------------ Observe registry */

/** Bounds and behaviour of an Observe registry. Defaults from tc_obs_config_default(). */
typedef struct tc_obs_config {
  uint32_t max_observers;    /**< registrations in total, default 16384, 1..2^24 */
  uint32_t max_per_resource; /**< registrations per resource, default 16384, 1..max_observers */
  uint32_t max_resources;    /**< resources with observers, default 1024, 1..2^24 */
  uint32_t con_every;        /**< every con_every-th notification to an observer is CON
                                  (1 = all CON), default 20; 0 = only by time */
  uint32_t con_interval_ms;  /**< an observer that has not been sent a CON for this long gets
                                  the next one as CON (RFC 7641 §4.5: at least every 24 h),
                                  default 86400000, >= 1 */
  uint32_t max_jobs;         /**< notifications being fanned out at once (one per resource),
                                  default 8, 1..256 */
  uint32_t max_message_size; /**< option value + payload bytes of one notification, default
                                  1280, 16..65535 */
  uint32_t max_opts;         /**< options of one notification (Observe added), default 16,
                                  1..64 */
  uint32_t max_per_host;     /**< registrations per host (the address without its port, see
                                  port_offset), default 64, >= 1; beyond it:
                                  TC_E_FULL (served without Observe), counted rejected_host */
  uint32_t port_offset;      /**< byte offset of a 2-byte port inside the opaque address, left
                                  out when grouping by host: default 1 (the drivers' canonical
                                  addresses: family, port, address); TC_NO_PORT: the whole
                                  address is the host */
  uint32_t confirm_first;    /**< 1 (default): an observer that has not yet acknowledged a
                                  notification gets CON ones only, each newer one replacing
                                  the one in flight (RFC 7641 §4.5.2), at most 8, then none
                                  until it acknowledges (counted skipped_unconfirmed); when no
                                  CON slot is free it gets NON like anyone. A vanished
                                  observer thus costs at most 8 CONs and one CON's
                                  retransmissions and is then removed. 0: con_every alone.
                                  Over a reliable transport it does not apply */
} tc_obs_config;


/** An Observe registry: opaque, tc_obs_size() bytes. */
typedef struct tc_obs tc_obs;

/** Fill cfg with the defaults above. */
void tc_obs_config_default(tc_obs_config *cfg);

/** Bytes a registry needs for cfg, or 0 if cfg is invalid or does not fit size_t. */
size_t tc_obs_size(const tc_obs_config *cfg);

/** Initialise a registry in mem (mem_len >= tc_obs_size(cfg), 8-byte aligned); cfg copied;
 *  seed: 16 bytes of entropy (borrowed) keying the table hashes. Returns 0 or TC_E_INVALID. */
int tc_obs_init(tc_obs *o, size_t mem_len, const tc_obs_config *cfg, const uint8_t seed[16]);

/** An observer: the client (peer) and the token of its registration request. Borrowed. */
typedef struct tc_observer {
  const uint8_t *peer;  /**< peer_len bytes (1..TC_ADDR_MAX) */
  uint32_t peer_len;
  uint32_t token_len;   /**< <= TC_EP_TOKEN_MAX */
  const uint8_t *token;
} tc_observer;

/**
 * Register who (peer, token) as an observer of `resource` (a caller-chosen id, e.g. the route), for
 * a GET/FETCH with Observe = 0 (RFC 7641 §4.1). A registration with the same (peer, token)
 * replaces the previous one (possibly moving it to another resource). *seq receives the
 * Observe value to put in the response: a fresh value of the resource's 24-bit sequence, newer
 * than every notification sent for it so far.
 * token: borrowed, <= TC_EP_TOKEN_MAX bytes. Returns the observer id (> 0), or TC_E_FULL
 * (max_observers, max_per_resource or max_resources reached: serve the request without
 * Observe, as RFC 7641 §4.1 allows; nothing changed), or TC_E_INVALID.
 */
int tc_obs_register(tc_obs *o, uint64_t now, const tc_observer *who, uint32_t resource,
                    uint32_t *seq);

/** Deregister (peer, token) (a GET with Observe = 1, RFC 7641 §3.6; then serve it as a plain
 *  GET). Returns 0 or TC_E_STALE (no such registration). */
int tc_obs_deregister(tc_obs *o, const uint8_t *peer, uint32_t peer_len, const uint8_t *token,
                      uint32_t token_len);

/** The observer id of (peer, token), or TC_E_STALE. */
int tc_obs_find(const tc_obs *o, const uint8_t *peer, uint32_t peer_len, const uint8_t *token,
                uint32_t token_len);

/** Remove observer id. Its CON notification in flight, if any, is left to the ep (its event is
 *  then ignored). Returns 0 or TC_E_STALE. */
int tc_obs_remove(tc_obs *o, uint32_t id);

/** Remove every observer of peer: the peer is gone (e.g. its RFC 8323 connection closed, which
 *  ends its registrations, RFC 8323 §7). Scans the registry (max_observers records); counted
 *  in stats.removed_reset. Returns how many were removed, or TC_E_INVALID. */
int tc_obs_forget_peer(tc_obs *o, const uint8_t *peer, uint32_t peer_len);

/** Observers of resource now. */
uint32_t tc_obs_count(const tc_obs *o, uint32_t resource);

/** tc_obs_notify flags */
#define TC_OBS_CON 1u /**< send this notification as CON to every observer */

/**
 * Notify every observer of `resource`: one call fans the response out through the messaging
 * seam m (its notify; with tc_ep_messaging the datagrams go to the ep's tx queue).
 *
 * out: borrowed, not modified: out->msg code (class 2, 4, 5) and payload (offsets into
 * out->src); out->opts: option_count entries (offsets into src; Max-Age and the rest pass
 * through; an Observe option in it is dropped).
 * Everything is copied into the registry (max_message_size, max_opts), so src need not outlive
 * the call. A 2.xx notification carries Observe = the resource's next sequence value (one
 * value for all observers); any other code carries no Observe and ends every registration of
 * the resource once sent (RFC 7641 §3.2, §4.2).
 * Per observer: CON if flags has TC_OBS_CON, if it is the con_every-th since its last CON, or
 * if con_interval_ms passed since its last CON (or registration); else NON. Over a reliable
 * transport (TC_MSGF_RELIABLE) every notification is plain (RFC 8323 §7.1: no CON, no
 * Message IDs; flags TC_OBS_CON is ignored). While a CON
 * notification to the observer is still in flight, newer ones go NON (the CON still checks
 * liveness; the client orders them by sequence). When the ep has no free CON slot the
 * notification goes NON and the CON stays due.
 * If the output fills up (TC_E_FULL from the seam), the fan-out stops and stays pending: send
 * and reset the output (tx) and call tc_obs_resume with the same seam; each observer gets the notification exactly once. Observers registered while
 * it is pending are not included (their response was fresher). A newer notify for a resource
 * whose fan-out is pending replaces it (everyone gets the newer one, with a newer sequence
 * value); other resources queue behind (max_jobs).
 * Returns the datagrams queued by this call (>= 0; 0 also when nobody observes the resource),
 * TC_E_FULL (max_jobs fan-outs pending: nothing changed), TC_E_MESSAGE_TOO_LARGE (over
 * max_message_size / max_opts, or not encodable with m->transport) or TC_E_INVALID.
 * Observers whose notification the seam refuses (TC_E_MESSAGE_TOO_LARGE) are skipped and
 * counted in stats.errors.
 */
int tc_obs_notify(tc_obs *o, const tc_messaging *m, uint64_t now, uint32_t resource,
                  uint32_t flags, const tc_outmsg *out);

/** Continue pending fan-outs (after the caller sent and reset the output). Returns
 *  notifications queued. */
int tc_obs_resume(tc_obs *o, const tc_messaging *m, uint64_t now);

/** Observers still to be notified by pending fan-outs (0: nothing pending). */
uint32_t tc_obs_pending(const tc_obs *o);

/**
 * Feed an ep event. TC_EV_ACKED for a CON notification of ours: the observer is alive.
 * TC_EV_FAILED (TC_E_RESET or TC_E_TIMEOUT) for one: the observer is removed (RFC 7641 §3.6,
 * §4.5). Returns 1 if the event was about one of our notifications, else 0 (also for
 * TC_EV_NOTIFY_RESET: use tc_obs_on_recv, which knows the peer).
 */
int tc_obs_on_event(tc_obs *o, uint64_t now, const tc_ep_event *ev);

/**
 * A Reset from peer with Message ID mid: if it answers the last NON notification sent to one of
 * peer's observers, that observer is removed (RFC 7641 §3.6). (The ep reports RSTs to CON
 * notifications as TC_EV_FAILED, and RSTs to recent NON ones as TC_EV_NOTIFY_RESET: feed both
 * with tc_obs_on_recv, which calls this.)
 * Returns 1 if an observer was removed, else 0.
 */
int tc_obs_on_reset(tc_obs *o, const uint8_t *peer, uint32_t peer_len, uint32_t mid);

/**
 * Feed the event of a tc_ep_recv call about a message from peer: TC_EV_NOTIFY_RESET removes
 * the observer whose last NON notification (to peer) had that Message ID (tc_obs_on_reset);
 * every other event goes to tc_obs_on_event (which alone cannot handle TC_EV_NOTIFY_RESET: it
 * lacks the peer, and returns 0 for it). Returns 1 if the event was about one of our
 * notifications and was acted on, else 0.
 */
int tc_obs_on_recv(tc_obs *o, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                   const tc_ep_event *ev);

/** Counters of a registry. */
typedef struct tc_obs_stats {
  uint32_t observers;        /**< registrations now */
  uint32_t resources;        /**< resources with observers now */
  uint32_t pending;          /**< observers still to notify (tc_obs_pending) */
  uint32_t jobs;             /**< fan-outs pending */
  uint64_t sent_con;         /**< CON notifications queued */
  uint64_t sent_non;         /**< NON notifications queued */
  uint64_t con_deferred;     /**< due CONs sent NON because the ep had no CON slot */
  uint64_t removed_reset;    /**< observers removed on RST */
  uint64_t removed_timeout;  /**< observers removed on an unacknowledged CON */
  uint64_t removed_final;    /**< observers removed after a non-2.xx notification */
  uint64_t rejected;         /**< registrations refused (TC_E_FULL) */
  uint64_t errors;           /**< notifications the ep refused (observer skipped) */
  uint64_t rejected_host;    /**< of those, refused for max_per_host */
  uint64_t skipped_unconfirmed; /**< notifications not sent to an observer that has not yet
                                  acknowledged one (its first, CON, is still in flight) */
  uint32_t hosts;            /**< hosts with observers now */
  uint32_t pad;
} tc_obs_stats;

/** Copy the counters into *out. */
void tc_obs_get_stats(const tc_obs *o, tc_obs_stats *out);

/* ============================================================================================
 * CLIENT SIDE (blockwise_client.c): one block-wise transfer driven by a client, and the
 * client's Observe freshness rules. Sans-IO like the rest: the caller builds and sends the
 * requests (with the Block1/Block2 values, offsets and Request-Tag these functions give) and
 * feeds each response in. The state is ONE caller-owned block of tc_bwc_size(cfg) bytes, no
 * pointers; body memory is the caller's, passed in on each call (never kept).
 * ========================================================================================== */

/** Bounds and behaviour of a client transfer. Defaults from tc_bwc_config_default(). */
typedef struct tc_bwc_config {
  uint32_t max_body;      /**< download: largest body accepted (also capped by the caller's
                               body memory), default 1 MiB, 1..2^30 */
  uint32_t preferred_szx; /**< block size asked for: 0..6 (16..1024 bytes), or 7 = BERT (needs
                               TC_BWC_BERT), default 6. Downloads ask it in the first request
                               (early negotiation, RFC 7959 §2.4) and adopt a smaller SZX the
                               server picks; uploads start with it and adopt the server's
                               smaller SZX from 2.31 (RFC 7959 §2.3) */
  uint32_t max_restarts;  /**< downloads restarted from block 0 after the representation changed
                               (ETag or code differs between blocks), default 3, 0..255; one
                               more change fails the transfer with TC_E_STALE. Also bounds
                               4.13-with-smaller-SZX upload restarts */
  uint32_t flags;         /**< TC_BWC_BERT: a reliable transport whose peer offered BERT (RFC
                               8323 §6): SZX 7 allowed */
  uint32_t bert_bytes;    /**< BERT uploads: payload bytes per request, a multiple of 1024,
                               default 1024, 1024..2^24 */
} tc_bwc_config;
#define TC_BWC_CONFIG_WORDS 5

#define TC_BWC_BERT 1u /**< tc_bwc_config.flags */

/** A client transfer: opaque, tc_bwc_size() bytes (8-byte aligned), no pointers. */
typedef struct tc_bwc tc_bwc;

/** Fill cfg with the defaults above. */
void tc_bwc_config_default(tc_bwc_config *cfg);

/** Bytes a transfer needs for cfg (a small constant), or 0 if cfg is invalid. */
size_t tc_bwc_size(const tc_bwc_config *cfg);

/** Initialise a transfer in mem (mem_len >= tc_bwc_size(cfg), 8-byte aligned); cfg is copied.
 *  It is idle until tc_bwc_get_begin / tc_bwc_put_begin. Returns 0 or TC_E_INVALID. */
int tc_bwc_init(tc_bwc *c, size_t mem_len, const tc_bwc_config *cfg);

/** What a client call decided. */
enum tc_bwc_status {
  TC_BWC_NEXT = 1,    /**< send the next request: res.block is its Block2 (download) or Block1
                           (upload, with body bytes [res.offset, +res.length)) value */
  TC_BWC_DONE = 2,    /**< the transfer is over: res.code is the final response's code.
                           Download: the body holds res.length bytes (the reassembled body, or
                           the payload of a response without Block2, which is a whole body:
                           also for a 4.xx/5.xx). Upload: the server answered the last block
                           (or, TC_BWCF_EARLY, answered finally before it); see TC_BWCF_BLOCK2 */
  TC_BWC_RESTART = 3, /**< start again from block 0: res.block (download: Block2 NUM 0 after the
                           representation changed, the body so far is discarded; upload: Block1
                           NUM 0 at the smaller SZX a 4.13 asked for, with res.offset/length) */
  TC_BWC_IGNORED = 4, /**< the response is not for the block outstanding (duplicate, late or
                           out of order, TC_BWCF_DUPLICATE when it is for an earlier block), or
                           the transfer is over: nothing changed. res.block is the value still
                           wanted (resend it if the real answer does not come) */
  TC_BWC_FAILED = 5   /**< the transfer failed, res.error says why: TC_E_MESSAGE_TOO_LARGE
                           (download: body or Size2 over max_body / the body memory, or past
                           block NUM 2^20 - 1; upload: 4.13, the server's limit in res.size
                           with TC_BWCF_SIZE when it sent Size1), TC_E_STALE (download: the
                           representation changed more than max_restarts times; upload: 4.08
                           Request Entity Incomplete, the server lost the upload),
                           TC_E_BAD_OPTION (the server broke RFC 7959: a Block option longer
                           than 3 bytes, SZX 7 without BERT, a block of the wrong size, 2.31 to
                           the last block, an ETag over 8 bytes). Later calls return it again */
};

/** tc_bwc_result.flags */
#define TC_BWCF_SIZE 1u      /**< res.size holds Size2 (download: the total, for progress) or
                                  Size1 (upload 4.13: the largest body the server accepts) */
#define TC_BWCF_DUPLICATE 2u /**< IGNORED: the response was for an earlier block */
#define TC_BWCF_BLOCK2 4u    /**< upload DONE: the response carries Block2, its body comes
                                  block-wise. Hand-over: call tc_bwc_get_begin(c) then feed
                                  this same response to tc_bwc_get_response; send the further
                                  requests (same method, options and Request-Tag, no payload,
                                  no Block1) with the Block2 values it gives (RFC 7959 §2.7) */
#define TC_BWCF_EARLY 8u     /**< upload DONE: the final response came before the last block */
#define TC_BWCF_LAST 16u     /**< NEXT/RESTART (upload): the block to send is the last (M = 0) */

/** Result of a client call, a flat uint32 table. */
typedef struct tc_bwc_result {
  uint32_t status; /**< enum tc_bwc_status */
  int32_t error;   /**< FAILED: a negative TC_E_* (see TC_BWC_FAILED); else 0 */
  uint32_t code;   /**< the response's code (0 from *_begin) */
  uint32_t block;  /**< NEXT, RESTART, IGNORED: the Block1/Block2 option value to send */
  uint32_t offset; /**< upload NEXT/RESTART: body offset of the block to send; else 0 */
  uint32_t length; /**< upload NEXT/RESTART: bytes of that block; download DONE: body length */
  uint32_t size;   /**< TC_BWCF_SIZE: Size2 / Size1 */
  uint32_t flags;  /**< TC_BWCF_* */
} tc_bwc_result;
#define TC_BWC_RESULT_WORDS 8

/**
 * Start (or, after an upload's TC_BWCF_BLOCK2, continue with) a Block2 download. res: NEXT with
 * res.block = Block2 NUM 0 at preferred_szx: put it in the first request for early negotiation
 * (or send the request without Block2: the server then picks the size). The Request-Tag of a
 * preceding upload is kept. Returns TC_BWC_NEXT or TC_E_INVALID.
 */
int tc_bwc_get_begin(tc_bwc *c, tc_bwc_result *res);

/**
 * Feed a response of the download. msg/opts/src: the decoded response (borrowed; offsets into
 * src). body: caller-owned memory of body_cap bytes, the same on every call of one download;
 * block payloads are appended at their offset (the transfer's size is bounded by
 * min(max_body, body_cap)).
 * Rules: a block is accepted when its byte offset (NUM * block size) is what was received so
 * far; a non-final block carries exactly one block (BERT: a non-zero multiple of 1024 bytes),
 * a final one at most one (BERT: any length). The next request asks NUM for the received byte
 * count at the smaller of the SZX asked and the SZX the server answered with. Block 0 fixes
 * the ETag (absent counts as a value) and the code; a later block with another one means the
 * representation changed: RESTART (up to max_restarts). Size2 over the bound fails early.
 * A response without Block2 is a whole body (DONE). Earlier blocks again: IGNORED with
 * TC_BWCF_DUPLICATE; later ones (a gap): IGNORED.
 * Returns res->status (> 0), or TC_E_INVALID (NULL arguments, no download begun).
 */
int tc_bwc_get_response(tc_bwc *c, const tc_msg *msg, const tc_opt *opts, const uint8_t *src,
                        uint8_t *body, uint32_t body_cap, tc_bwc_result *res);

/**
 * Start a Block1 upload of body_length bytes (0..2^30). tag: tag_len (0..8) bytes of the
 * caller's randomness, used as the Request-Tag (RFC 9175) of every request of the transfer so
 * that concurrent uploads of the same resource are told apart (tag_len 0: no Request-Tag);
 * read it back with tc_bwc_request_tag. res: NEXT with the first block (offset 0, length,
 * Block1 value with M; TC_BWCF_LAST when it is the only one). Put Size1 = body_length in the
 * first request if the server should refuse early (RFC 7959 §4).
 * Returns TC_BWC_NEXT, TC_BWC_FAILED (TC_E_MESSAGE_TOO_LARGE: more than 2^20 blocks at that
 * SZX) or TC_E_INVALID.
 */
int tc_bwc_put_begin(tc_bwc *c, uint32_t body_length, const uint8_t *tag, uint32_t tag_len,
                     tc_bwc_result *res);

/**
 * Feed the response to the block sent last. 2.31 Continue whose Block1 NUM is that block's:
 * the block is acknowledged, the server's smaller SZX adopted (NUM recomputed from the byte
 * offset), NEXT gives the next block (2.31 without Block1 or to the last block: FAILED
 * TC_E_BAD_OPTION; with another NUM: IGNORED). 4.13: FAILED TC_E_MESSAGE_TOO_LARGE with Size1
 * (res.size), unless its Block1 asks a smaller SZX than used: RESTART from offset 0 at that
 * size (up to max_restarts). 4.08: FAILED TC_E_STALE. Any other response (2.xx with a Block1
 * NUM other than the block sent: IGNORED): DONE, the final response (TC_BWCF_EARLY if blocks
 * were still to come; TC_BWCF_BLOCK2: a Block2 download of its body follows, see there).
 * Returns res->status (> 0) or TC_E_INVALID (NULL arguments, no upload begun).
 */
int tc_bwc_put_response(tc_bwc *c, const tc_msg *msg, const tc_opt *opts, const uint8_t *src,
                        tc_bwc_result *res);

/** Copy the transfer's Request-Tag into out (8 bytes); returns its length 0..8, or
 *  TC_E_INVALID. */
int tc_bwc_request_tag(const tc_bwc *c, uint8_t out[8]);

/** Progress, readable at any time: *done = body bytes received (download) or acknowledged by
 *  the server (upload); *total = the body length (upload), the download's Size2 (0 while
 *  unknown), or *done once a download is DONE. Returns the status of the last call
 *  (enum tc_bwc_status; 0 when idle) or TC_E_INVALID. */
int tc_bwc_progress(const tc_bwc *c, uint32_t *done, uint32_t *total);

/* --------------------------------------------------------- client Observe (RFC 7641 §3) */

/**
 * RFC 7641 §3.4: is a notification with Observe value v2 (24 bits used) that arrived at t2_ms
 * newer than the freshest one so far (v1, arriving at t1_ms)? 1 if
 *   (v1 < v2 and v2 - v1 < 2^23) or (v1 > v2 and v1 - v2 > 2^23) or t2_ms > t1_ms + 128000,
 * else 0 (stale: ignore it, or use it only if it is not older than what the app has).
 * Equal values within 128 s are not fresh (a duplicate).
 */
int tc_obs_fresh(uint32_t v1, uint64_t t1_ms, uint32_t v2, uint64_t t2_ms);

/** The RFC 7641 §3.3.1 re-registration deadline of an observation: the latest notification
 *  arrived at arrival_ms with Max-Age max_age_s (pass TC_OBS_NO_MAX_AGE when absent: the
 *  default 60 s applies); the client re-registers (GET with Observe 0, same token) lead_ms
 *  before it goes stale (lead_ms is capped at the Max-Age). Saturates at UINT64_MAX. */
uint64_t tc_obs_reregister_at(uint64_t arrival_ms, uint32_t max_age_s, uint32_t lead_ms);
#define TC_OBS_NO_MAX_AGE 0xFFFFFFFFu

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_BW_H */

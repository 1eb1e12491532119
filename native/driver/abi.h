/*
 * abi.h — the layout shared by the C drivers and TypeScript, declared ONCE.
 *
 * Every list below is an X-macro. C expands them into enums, structs and compile-time checks
 * against the core's structs; scripts/gen-abi.mjs reads this file (and TC_ERRORS in
 * turbocoap.h) and writes ts/driver/abi.ts. Edit a list, then run
 *   node scripts/gen-abi.mjs            (rewrites ts/driver/abi.ts)
 * `node scripts/gen-abi.mjs --check` (part of npm test) fails while the two disagree, and at
 * load time TypeScript compares the layout table each backend was compiled with
 * (tca_layout: the native addon's `abiLayout`, the module's `tcw_abi_layout`) with its own.
 *
 * Format (the generator relies on it): `#define TCA_<LIST>(X) \` followed by one `X(...)`
 * per line, arguments as shown, comments allowed.
 *
 * Records are uint32 words. RX records (driver -> JS) are TCA_RX words followed by
 * RX_OPT_COUNT tc_opt triples; TX records (JS -> driver) are TCA_TX_<KIND> words followed,
 * for RESPOND / REQUEST / NOTIFY, by OPT_COUNT tc_opt triples. Offsets in records are into
 * the batch's (or the tx) byte area. See ep_batch.h for what each record does.
 */
#ifndef TURBOCOAP_DRIVER_ABI_H
#define TURBOCOAP_DRIVER_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "turbocoap.h"

/* ----------------------------------------------------------------------- constants */

/* X(NAME, value, C expression it must equal): constants of the core TypeScript reads. */
#define TCA_CORE_CONSTANTS(X) \
  X(MSG_WORDS, 9, TC_MSG_WORDS) \
  X(OPT_WORDS, 3, TC_OPT_WORDS) \
  X(FRAME_WORDS, 3, TC_FRAME_WORDS) \
  X(ERROR_COUNT, 22, TC_ERROR_COUNT) \
  X(ADDR_MAX, 28, TC_ADDR_MAX) \
  X(TOKEN_MAX, 32, TC_EP_TOKEN_MAX) \
  X(EV_NONE, 0, TC_EV_NONE) \
  X(EV_REQUEST, 1, TC_EV_REQUEST) \
  X(EV_RESPONSE, 2, TC_EV_RESPONSE) \
  X(EV_FAILED, 3, TC_EV_FAILED) \
  X(EV_ACKED, 4, TC_EV_ACKED) \
  X(EV_NOTIFY_RESET, 5, TC_EV_NOTIFY_RESET) \
  X(EVF_CONFIRMABLE, 1, TC_EVF_CONFIRMABLE) \
  X(EVF_LAST, 2, TC_EVF_LAST) \
  X(SRVF_OBSERVE, 1, TC_SRVF_OBSERVE) \
  X(SRVF_BODY, 2, TC_SRVF_BODY) \
  X(SRVF_BLOCK2, 4, TC_SRVF_BLOCK2) \
  X(REQ_CON, 1, TC_REQ_CON) \
  X(REQ_KEEP, 2, TC_REQ_KEEP) \
  X(OBS_CON, 1, TC_OBS_CON) \
  X(CONN_EV_READY, 16, TC_CONN_EV_READY) /* connection records (stream.h): ID = value */ \
  X(CONN_EV_CSM, 17, TC_CONN_EV_CSM) \
  X(CONN_EV_PONG, 18, TC_CONN_EV_PONG) \
  X(CONN_EV_RELEASE, 19, TC_CONN_EV_RELEASE) \
  X(CONN_EV_ABORT, 20, TC_CONN_EV_ABORT) \
  X(CONN_EV_CLOSED, 21, TC_CONN_EV_CLOSED) \
  X(CONN_EVF_BERT, 4, TC_CONN_EVF_BERT) \
  X(CONN_EVF_CUSTODY, 8, TC_CONN_EVF_CUSTODY) \
  X(EPF_PROXY, 1, TC_EPF_PROXY)       /* tc_ep_config.flags: deliver Proxy-Uri/-Scheme requests */ \
  X(CONNF_BERT, 1, TC_CONNF_BERT)     /* tc_conn_config.flags */ \
  X(CONNF_PROXY, 2, TC_CONNF_PROXY)

/* X(NAME, value): the records' own constants (C: TCB_<NAME>). */
#define TCA_CONSTANTS(X) \
  X(ADDR4_LEN, 7)      /* canonical IPv4 address: 4, port_hi, port_lo, a, b, c, d */ \
  X(ADDR6_LEN, 23)     /* canonical IPv6: 6, port_hi, port_lo, 16 bytes, scope id (LE) */ \
  X(OPT_CAP, 128)      /* options per received message the drivers decode */ \
  X(REQ_TOKEN, 256)    /* TX REQUEST flag: TOKEN is the caller's, offset << 6 | length */ \
  X(REQ_TOKEN_SHIFT, 6) \
  X(TX_RESPOND, 1)     /* TX record kinds */ \
  X(TX_REQUEST, 2) \
  X(TX_CANCEL, 3) \
  X(TX_DROP, 4) \
  X(TX_PING, 5) \
  X(TX_NOTIFY, 6) \
  X(TX_OBSERVERS, 7)   /* TX_SMALL layout: ID a resource, RC out its observer count */ \
  X(FAMILY_CONN, 255)  /* FAMILY of a record about a connection (stream.h): PORT = its id */ \
  X(CONN_EV_OPEN, 22)  /* host record (tcs_host_event): a connection's transport is up (TCP \
                          connected; TLS: handshake done). ID = connection id, FAMILY..SCOPE = \
                          the peer's real address, DATA/LEN = the peer's identity (UTF-8: PSK \
                          identity or certificate subject CN), STATUS = listener index */ \
  X(CONN_EVF_TLS, 16)  /* OPEN: the connection is secured */ \
  X(CONN_EVF_SYSERR, 32) /* CLOSED: STATUS is a negative errno (Linux numbering) */ \
  X(CONN_EVF_TLSERR, 64) /* CLOSED: STATUS is a TC_TLS_E_* code */ \
  X(WASM_IN_DATA, 32)  /* WebAssembly input area: the datagram's byte offset (address words first) */ \
  X(TLS_E_HANDSHAKE, -104) /* TC_TLS_E_* (tls.h) a JavaScript TLS host reports in CLOSED STATUS */ \
  X(TLS_E_VERIFY, -105) \
  X(TLS_E_PEER_CERT_REQUIRED, -106) \
  X(TLS_E_PSK, -107) \
  X(TLS_E_ALPN, -108) \
  X(TLS_E_ALERT, -109) \
  X(TLS_E_PROTOCOL, -110)

/* --------------------------------------------------------------------------- records */

/* X(FIELD, words). RX record: C TCB_RX_<FIELD>, TypeScript RX_<FIELD>; RX_WORDS in all. */
#define TCA_RX(X) \
  X(KIND, 1)         /* tc_ep_kind */ \
  X(ID, 1) \
  X(STATUS, 1)       /* int32 */ \
  X(FLAGS, 1)        /* TC_EVF_* */ \
  X(FAMILY, 1)       /* 4, 6; 0 = no address */ \
  X(PORT, 1) \
  X(IP, 4)           /* address bytes in network order; IPv4 in the first word */ \
  X(SCOPE, 1)        /* IPv6 scope id */ \
  X(DATA, 1)         /* datagram offset in the byte area */ \
  X(LEN, 1)          /* datagram length */ \
  X(TYPE, 1)         /* tc_msg from here (offsets rewritten into the byte area) */ \
  X(CODE, 1) \
  X(MID, 1) \
  X(TOKEN_OFF, 1) \
  X(TOKEN_LEN, 1) \
  X(OPT_COUNT, 1) \
  X(PAYLOAD_OFF, 1) \
  X(PAYLOAD_LEN, 1) \
  X(MSG_LEN, 1) \
  X(SRV_FLAGS, 1)    /* tc_srv_req from here: TC_SRVF_* */ \
  X(BODY_ID, 1) \
  X(BODY_LEN, 1)

/* TX records: C TCB_TX_<KIND>_<FIELD>, TypeScript TX_<KIND>_<FIELD>; TX_<KIND>_WORDS. */
#define TCA_TX_RESPOND(X) /* tc_srv_respond */ \
  X(KIND, 1) \
  X(ID, 1) \
  X(RC, 1)           /* out: 0 or TC_E_* */ \
  X(CODE, 1) \
  X(PAYLOAD_OFF, 1) \
  X(PAYLOAD_LEN, 1) \
  X(OPT_COUNT, 1) \
  X(RESOURCE, 1)     /* 0 = none */

#define TCA_TX_REQUEST(X) /* tc_ep_request */ \
  X(KIND, 1) \
  X(ID, 1)           /* out */ \
  X(RC, 1)           /* out */ \
  X(FLAGS, 1)        /* TC_REQ_* | REQ_TOKEN */ \
  X(CODE, 1) \
  X(FAMILY, 1) \
  X(PORT, 1) \
  X(IP, 4) \
  X(SCOPE, 1) \
  X(TOKEN, 1)        /* a length to generate, or (REQ_TOKEN) offset << 6 | length */ \
  X(PAYLOAD_OFF, 1) \
  X(PAYLOAD_LEN, 1) \
  X(OPT_COUNT, 1)

#define TCA_TX_SMALL(X) /* CANCEL (tc_ep_cancel), DROP (tc_srv_drop), OBSERVERS (tc_obs_count) */ \
  X(KIND, 1) \
  X(ID, 1) \
  X(RC, 1) \
  X(CONN, 1)         /* streams (stream.h): CANCEL's connection id; ignored over datagrams */

#define TCA_TX_PING(X) /* tc_ep_ping */ \
  X(KIND, 1) \
  X(ID, 1)           /* out */ \
  X(RC, 1) \
  X(FAMILY, 1) \
  X(PORT, 1) \
  X(IP, 4) \
  X(SCOPE, 1)

#define TCA_TX_NOTIFY(X) /* tc_srv_notify */ \
  X(KIND, 1) \
  X(RESOURCE, 1) \
  X(RC, 1) \
  X(FLAGS, 1)        /* TC_OBS_CON */ \
  X(CODE, 1) \
  X(PAYLOAD_OFF, 1) \
  X(PAYLOAD_LEN, 1) \
  X(OPT_COUNT, 1)

/* The WebAssembly host's handle (wasm/glue.c): words JS reads after every call (pointers are
 * offsets into linear memory). C TCB_WASM_INFO_<FIELD>, TypeScript WASM_INFO_<FIELD>. */
#define TCA_WASM_INFO(X) \
  X(RX_WORDS, 1)     /* the batch: record table */ \
  X(RX_USED, 1)      /* words used */ \
  X(RX_DATA, 1)      /* byte area */ \
  X(RX_DATA_USED, 1) /* bytes used */ \
  X(RX_COUNT, 1)     /* records */ \
  X(TX_COUNT, 1)     /* datagrams in the tx queue */ \
  X(DEADLINE, 2)     /* tcd_deadline: low word, high word (0xFFFFFFFF: none) */ \
  X(IN, 1)           /* input area: sender address words (TCA_WASM_SEND FAMILY..SCOPE), then \
                        the datagram at WASM_IN_DATA */ \
  X(IN_CAP, 1)       /* its size */ \
  X(TXW, 1)          /* tx record table */ \
  X(TXW_CAP, 1)      /* its words */ \
  X(TXB, 1)          /* tx byte area */ \
  X(TXB_CAP, 1)      /* its size */ \
  X(TX_FAILED, 1)    /* tcd_flush: records that failed */ \
  X(SEND_LIST, 1)    /* the tx queue as TCA_WASM_SEND entries (tcw_udp_send_list) */ \
  X(STATS, 1)        /* tcd_stats */ \
  X(MAX_BODY, 1)     /* the largest Block1 body */

/* One datagram to send, as the WebAssembly host hands it to JS (address words as in records;
 * OFF is an offset into linear memory). */
#define TCA_WASM_SEND(X) \
  X(FAMILY, 1) \
  X(PORT, 1) \
  X(IP, 4) \
  X(SCOPE, 1) \
  X(OFF, 1) \
  X(LEN, 1)

/* The WebAssembly stream host's handle (wasm/glue_stream.c): words JS reads after every call
 * (pointers are offsets into linear memory). C TCB_WASM_STREAM_<FIELD>, TypeScript
 * WASM_STREAM_<FIELD>. */
#define TCA_WASM_STREAM(X) \
  X(RX_WORDS, 1)     /* the batch: record table */ \
  X(RX_USED, 1)      /* words used */ \
  X(RX_DATA, 1)      /* byte area */ \
  X(RX_DATA_USED, 1) /* bytes used */ \
  X(RX_COUNT, 1)     /* records */ \
  X(IN, 1)           /* input area: a chunk or WebSocket message; or address words (TCA_RX \
                        FAMILY..SCOPE) and identity bytes after them */ \
  X(IN_CAP, 1)       /* its size */ \
  X(IN_USED, 1)      /* tcw_stream_recv: bytes taken */ \
  X(TXW, 1)          /* tx record table */ \
  X(TXW_CAP, 1)      /* its words */ \
  X(TXB, 1)          /* tx byte area */ \
  X(TXB_CAP, 1)      /* its size */ \
  X(TX_FAILED, 1)    /* tcw_stream_flush: records that failed */ \
  X(OUT, 1)          /* the out list (TCA_WASM_OUT entries, tcw_stream_collect) */ \
  X(STATS, 1)        /* tcs_host_stats (tcw_stream_stats) */ \
  X(MAX_BODY, 1)     /* the largest Block1 body */

/* One out list entry of the WebAssembly stream host: what a connection has for its socket. */
#define TCA_WASM_OUT(X) \
  X(ID, 1)           /* connection id */ \
  X(OP, 1)           /* 1 write the bytes; 2 closed and drained: close the socket */ \
  X(OFF, 1)          /* the bytes: offset into linear memory */ \
  X(LEN, 1) \
  X(DONE, 1)         /* JS: bytes the socket took (0: congested, they stay) */

#define TCA_FIELD_(P, name, words) P##name, P##name##_LAST_ = P##name + (words)-1,
#define TCB_RX_F_(n, w) TCA_FIELD_(TCB_RX_, n, w)
#define TCB_TXR_F_(n, w) TCA_FIELD_(TCB_TX_RESPOND_, n, w)
#define TCB_TXQ_F_(n, w) TCA_FIELD_(TCB_TX_REQUEST_, n, w)
#define TCB_TXS_F_(n, w) TCA_FIELD_(TCB_TX_SMALL_, n, w)
#define TCB_TXP_F_(n, w) TCA_FIELD_(TCB_TX_PING_, n, w)
#define TCB_TXN_F_(n, w) TCA_FIELD_(TCB_TX_NOTIFY_, n, w)
#define TCB_WI_F_(n, w) TCA_FIELD_(TCB_WASM_INFO_, n, w)
#define TCB_WS_F_(n, w) TCA_FIELD_(TCB_WASM_SEND_, n, w)
#define TCB_WST_F_(n, w) TCA_FIELD_(TCB_WASM_STREAM_, n, w)
#define TCB_WO_F_(n, w) TCA_FIELD_(TCB_WASM_OUT_, n, w)
enum tcb_rx_word { TCA_RX(TCB_RX_F_) TCB_RX_WORDS };
enum tcb_tx_respond_word { TCA_TX_RESPOND(TCB_TXR_F_) TCB_TX_RESPOND_WORDS };
enum tcb_tx_request_word { TCA_TX_REQUEST(TCB_TXQ_F_) TCB_TX_REQUEST_WORDS };
enum tcb_tx_small_word { TCA_TX_SMALL(TCB_TXS_F_) TCB_TX_SMALL_WORDS };
enum tcb_tx_ping_word { TCA_TX_PING(TCB_TXP_F_) TCB_TX_PING_WORDS };
enum tcb_tx_notify_word { TCA_TX_NOTIFY(TCB_TXN_F_) TCB_TX_NOTIFY_WORDS };
enum tcb_wasm_info_word { TCA_WASM_INFO(TCB_WI_F_) TCB_WASM_INFO_WORDS };
enum tcb_wasm_send_word { TCA_WASM_SEND(TCB_WS_F_) TCB_WASM_SEND_WORDS };
enum tcb_wasm_stream_word { TCA_WASM_STREAM(TCB_WST_F_) TCB_WASM_STREAM_WORDS };
enum tcb_wasm_out_word { TCA_WASM_OUT(TCB_WO_F_) TCB_WASM_OUT_WORDS };

#define TCA_CONST_(name, value) TCB_##name = (value),
enum tcb_constant { TCA_CONSTANTS(TCA_CONST_) };
#undef TCA_CONST_

/* ---------------------------------------------------------------------- configuration */

/* X(field): tc_ep_config, word by word (TypeScript EPC_<FIELD>, an index into the driver
 * config). The driver config (TypeScript CONFIG_WORDS) is tc_ep_config then tc_srv_config. */
#define TCA_EP_CONFIG(X) \
  X(ack_timeout_ms) \
  X(ack_random_factor_x1000) \
  X(max_retransmit) \
  X(nstart) \
  X(max_latency_ms) \
  X(processing_delay_ms) \
  X(separate_ack_delay_ms) \
  X(overload_max_age) \
  X(dedup_entries) \
  X(response_cache_bytes) \
  X(max_in_progress) \
  X(max_in_progress_per_peer) \
  X(max_client_requests) \
  X(con_slots) \
  X(max_message_size) \
  X(response_timeout_ms) \
  X(amplification_factor) \
  X(verified_peers) \
  X(echo_lifetime_ms) \
  X(verified_lifetime_ms) \
  X(flags)

/* X(field): tc_srv_config, word by word (TypeScript SRVC_<FIELD>, dots as underscores, an
 * index into the driver config). */
#define TCA_SRV_CONFIG(X) \
  X(bw1.max_transfers) \
  X(bw1.max_per_peer) \
  X(bw1.max_body) \
  X(bw1.pool_bytes) \
  X(bw1.chunk_size) \
  X(bw1.max_key) \
  X(bw1.idle_timeout_ms) \
  X(bw1.preferred_szx) \
  X(bw1.busy_max_age) \
  X(bw1.max_per_host) \
  X(bw1.port_offset) \
  X(bw1.reclaim_idle_ms) \
  X(bw2.max_reps) \
  X(bw2.pool_bytes) \
  X(bw2.chunk_size) \
  X(bw2.max_key) \
  X(bw2.max_opt_bytes) \
  X(bw2.max_opts) \
  X(bw2.preferred_szx) \
  X(bw2.default_lifetime_ms) \
  X(obs.max_observers) \
  X(obs.max_per_resource) \
  X(obs.max_resources) \
  X(obs.con_every) \
  X(obs.con_interval_ms) \
  X(obs.max_jobs) \
  X(obs.max_message_size) \
  X(obs.max_opts) \
  X(obs.max_per_host) \
  X(obs.port_offset) \
  X(obs.confirm_first) \
  X(max_in_progress) \
  X(max_message_size) \
  X(max_resource_keys)

/* X(field): tc_conn_config, word by word (TypeScript CONNC_<FIELD>: the index within the conn
 * block of a stream config). A stream config (what JS hands a stream host; TypeScript
 * STREAM_CONFIG_WORDS) is tc_conn_config words (at STREAM_CONFIG_CONN), then tc_srv_config
 * words (at STREAM_CONFIG_SRV; word SRVC_X is at STREAM_CONFIG_SRV + SRVC_X - EP_CONFIG_WORDS),
 * then tcs_limits words (at STREAM_CONFIG_LIMITS). */
#define TCA_CONN_CONFIG(X) \
  X(transport) \
  X(flags) \
  X(max_message_size) \
  X(out_bytes) \
  X(max_exchanges) \
  X(exchange_base) \
  X(max_requests) \
  X(request_timeout_ms) \
  X(csm_timeout_ms) \
  X(idle_ms) \
  X(ping_timeout_ms) \
  X(overload_max_age)

/* X(field): tcs_limits (stream.h), word by word (TypeScript SLIM_<FIELD>: the index within the
 * limits block of a stream config). */
#define TCA_STREAM_LIMITS(X) \
  X(max_conns) \
  X(max_per_host) \
  X(rx_words) \
  X(rx_bytes)

/* Seed bytes a driver takes: 32 for tc_ep, 16 for tc_srv. */
#define TCA_SEED_BYTES 48u

/* ------------------------------------------------------------------------------ stats */

/* X(type, field): the driver's stats struct (tcd_stats, byte offsets in TypeScript
 * ST_<FIELD>; U64 fields are little-endian 64-bit, U32 32-bit). TypeScript reads it through a
 * view, never through a copy per field. First tc_ep_stats, then tc_srv_stats, then the
 * driver's own counters (tcd_counters). */
#define TCA_EP_STATS(X) \
  X(U64, rx) \
  X(U64, tx) \
  X(U64, duplicates) \
  X(U64, replays) \
  X(U64, retransmits) \
  X(U64, resets_sent) \
  X(U64, format_errors) \
  X(U64, overloads) \
  X(U64, bad_options) \
  X(U64, dedup_evictions) \
  X(U64, timeouts) \
  X(U64, unmatched) \
  X(U32, in_progress) \
  X(U32, client_requests) \
  X(U32, con_slots_used) \
  X(U32, dedup_used) \
  X(U32, peers) \
  X(U32, reserved) \
  X(U64, echo_challenges) \
  X(U64, responses_non) \
  X(U64, responses_dropped) \
  X(U64, non_duplicates) \
  X(U32, verified) \
  X(U32, reserved2)

#define TCA_SRV_STATS(X) \
  X(U32, uploads) \
  X(U32, uploads_done) \
  X(U32, blocks_in) \
  X(U32, reps) \
  X(U32, blocks_out) \
  X(U32, observers) \
  X(U32, notifications) \
  X(U32, observers_removed) \
  X(U32, observers_refused) \
  X(U32, uploads_refused) \
  X(U32, uploads_reclaimed) \
  X(U32, notifications_skipped) \
  X(U32, blocks_reused)

#define TCA_DRIVER_STATS(X) \
  X(U64, batches)      /* batches handed to JS */ \
  X(U64, records)      /* records in them */ \
  X(U64, sent)         /* datagrams the socket took */ \
  X(U64, send_calls)   /* send system calls (sendmmsg; one per datagram elsewhere) */ \
  X(U64, send_errors)  /* datagrams that could not be sent */ \
  X(U64, dropped)      /* datagrams dropped before the socket (overload, bad address) */ \
  X(U64, fallback)     /* datagrams sent through the host's queue (libuv) after EAGAIN */ \
  X(U64, gso_sends)    /* UDP GSO messages (several datagrams to one peer) */ \
  X(U64, recv_errors)  /* failed receives */ \
  X(U64, timer_runs)   /* tc_ep_timer rounds */

/* X(type, field): the stream driver's counters (tcs_stats, stream.h). A stream host's stats
 * struct (tcs_host_stats, TypeScript SST_<FIELD> byte offsets, STREAM_STATS_BYTES) is
 * tcs_stats, then tc_srv_stats, then the host's own counters (tcs_host_counters). */
#define TCA_STREAM_STATS(X) \
  X(U64, batches)        /* batches handed to JS */ \
  X(U64, records)        /* records in them */ \
  X(U64, rx_bytes)       /* stream bytes in (ciphertext with TLS) */ \
  X(U64, tx_bytes)       /* stream bytes out */ \
  X(U32, conns)          /* open now */ \
  X(U32, opened)         /* in total */ \
  X(U32, closed) \
  X(U32, refused_total)  /* tcs_open refused: max_conns */ \
  X(U32, refused_host)   /* tcs_open refused: max_per_host */ \
  X(U32, paused)         /* tcs_recv answered TCS_PAUSE */ \
  X(U32, notify_skipped) /* notifications not sent: the observer's output was full */ \
  X(U32, respond_full)   /* RESPOND records failed TC_E_FULL after a write attempt */ \
  X(U32, timer_runs) \
  X(U32, stale_ids)      /* RESPOND / DROP records for an exchange of a closed connection */

#define TCA_STREAM_HOST_STATS(X) \
  X(U64, accepted)       /* connections accepted by listeners */ \
  X(U64, connects)       /* connections started by connect() */ \
  X(U64, connect_errors) /* connects that failed before OPEN (TCP or TLS) */ \
  X(U64, refused)        /* accepted sockets closed at once: over a connection bound */ \
  X(U64, read_errors)    /* connections ended by a read error (not EOF) */ \
  X(U64, write_errors)   /* connections ended by a write error */ \
  X(U64, writes)         /* socket writes (uv_try_write and uv_write) */ \
  X(U64, writes_queued)  /* writes that waited in libuv's queue (the socket was full) */ \
  X(U64, read_pauses)    /* reads stopped until the output drained (TCS_PAUSE) */

#define TCA_U64 uint64_t
#define TCA_U32 uint32_t
#define TCA_MEMBER_(type, name) TCA_##type name;
/** The driver's own counters. */
typedef struct tcd_counters {
  TCA_DRIVER_STATS(TCA_MEMBER_)
} tcd_counters;

/** A stream host's own counters. */
typedef struct tcs_host_counters {
  TCA_STREAM_HOST_STATS(TCA_MEMBER_)
} tcs_host_counters;
/** The stream driver's counters (stream.h). */
typedef struct tcs_stats {
  TCA_STREAM_STATS(TCA_MEMBER_)
} tcs_stats;
#undef TCA_MEMBER_

/** Everything stats() reports, one struct read by JS at the generated offsets. */
typedef struct tcd_stats {
  tc_ep_stats ep;
  tc_srv_stats srv;
  tcd_counters drv;
} tcd_stats;

/** Everything a stream host's stats() reports (TypeScript SST_*, STREAM_STATS_BYTES). */
typedef struct tcs_host_stats {
  tcs_stats st;
  tc_srv_stats srv;
  tcs_host_counters host;
} tcs_host_stats;

/* ------------------------------------------------------------------------ layout table */

/**
 * The layout as this compilation sees it (enum values, offsetof, sizeof), in the order
 * scripts/gen-abi.mjs writes ABI_LAYOUT: both hosts export it and TypeScript compares it
 * word by word. tca_layout_words() words; tca_hash() is their FNV-1a hash (ABI_HASH).
 */
#ifdef __cplusplus
extern "C" {
#endif
const uint32_t *tca_layout(void);
uint32_t tca_layout_words(void);
uint32_t tca_hash(void);
#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_DRIVER_ABI_H */

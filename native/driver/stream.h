/*
 * stream.h — the connection driver: what both hosts (the native addon over libuv TCP, the
 * WebAssembly module under node:net) run between MANY RFC 8323 connections of one listener (or
 * one client agent) and JavaScript, once.
 *
 * One object holds a bounded table of connections (each a tc_conn; with TC_WITH_TLS, optionally
 * a tc_tls session under it), ONE tc_srv shared by all of them (each connection owns a disjoint
 * exchange slot range; notifications are routed by the observer's peer handle), the receive
 * batch (ep_batch.h records) and the list of connections with bytes to write.
 *
 * Records (ep_batch.h layout): where a datagram record has an address, a stream record has
 * FAMILY = TCB_FAMILY_CONN and PORT = the host's connection id (IP and SCOPE 0). RX kinds are
 * TC_EV_REQUEST / RESPONSE / FAILED as over UDP, and the connection's own events
 * TC_CONN_EV_READY .. CLOSED (ID = the event's value: the peer's Max-Message-Size for READY /
 * CSM, the RTT for PONG, Hold-Off for RELEASE, Bad-CSM-Option for ABORT; STATUS = why for
 * CLOSED; FLAGS = TC_CONN_EVF_*). TX records are ep_batch.h's: RESPOND / DROP find the
 * connection by the exchange id, REQUEST / PING / CANCEL by FAMILY_CONN + PORT (REQUEST,
 * PING) or the request id's connection (CANCEL: the id carries it, see tcs_flush), NOTIFY
 * fans out over every connection.
 *
 * Calls answer with an action instead of calling the host back (no re-entry):
 *   TCS_DONE     done
 *   TCS_WRITE    connections have bytes to write: loop tcs_next_out / tcs_out / tcs_written,
 *                then call again
 *   TCS_DELIVER  the batch is full: hand it to JS, tcs_delivered, call again
 *   TCS_OPEN     (tcs_recv, TLS) the handshake just completed: add the OPEN record, call again
 *   TCS_PAUSE    (tcs_recv) this connection's output has no room for the answers its next
 *                message may need: keep the rest of the chunk, stop reading this socket, write
 *                its output; call tcs_recv with the rest once tcs_written made room. A peer
 *                that never reads is then closed by tc_conn's idle Ping (dead, TC_E_TIMEOUT).
 * Fairness: a call works on one connection's chunk (at most the host's read size) or on one
 * round of TX records; a full connection never blocks the others (a notification that finds
 * a connection's output full skips that observer; a RESPOND that finds it full after one
 * write attempt reports TC_E_FULL with the exchange still open).
 *
 * Bounds: max_conns in total and max_per_host per host address (tcs_open: TC_E_FULL), per
 * connection its tc_conn_config (max_message_size = its input buffer, out_bytes = its output,
 * max_exchanges / max_requests = pending requests each way), with TLS the session's in_cap /
 * out_cap. Every connection is checked for liveness by tc_conn's idle Ping.
 *
 * Time is the host's clock in ms (`now`); nothing here reads a clock or a socket.
 */
#ifndef TURBOCOAP_DRIVER_STREAM_H
#define TURBOCOAP_DRIVER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"
#include "ep_batch.h"
#include "turbocoap.h"

#ifdef TC_WITH_TLS
#include "tls.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define TCS_DONE 0
#define TCS_WRITE 1
#define TCS_DELIVER 2
#define TCS_PAUSE 3
#define TCS_OPEN 4 /* (tcs_recv, TLS) the handshake completed: the host adds its OPEN record
                      (tcs_host_event) before any record of the connection, then calls
                      tcs_recv again with the rest (possibly none) */

/** tcs_next_out: what to do with a connection. */
#define TCS_OUT_NONE 0  /**< nothing (no connection has work) */
#define TCS_OUT_WRITE 1 /**< write tcs_out's bytes, then tcs_written */
#define TCS_OUT_CLOSE 2 /**< the connection is closed and its output drained: close the socket,
                             then tcs_close */

/** The object's own bounds and the host's buffer sizes. */
typedef struct tcs_limits {
  uint32_t max_conns;    /**< connections open at once, >= 1; max_conns * the connection
                              config's max_exchanges <= 65535 (the shared exchange slots) */
  uint32_t max_per_host; /**< connections per host address (port ignored), >= 1 */
  uint32_t rx_words;     /**< batch record table, >= 2 * TCB_RX_MAX_WORDS */
  uint32_t rx_bytes;     /**< batch byte area, >= max_message_size + 3 */
} tcs_limits;

/* tcs_stats, the object's counters (the core's are per connection: tcs_conn_stats), is
 * declared in abi.h (TCA_STREAM_STATS): JS reads it. */

typedef struct tcs_stream tcs_stream;

/**
 * An object for connections configured by cc (every connection; exchange_base is set per
 * connection) and a pipeline by sc (its max_in_progress must be >= max_conns *
 * cc->max_exchanges), seed: TCA_SEED_BYTES bytes of entropy (borrowed). Returns it, or NULL
 * with *err = TC_E_INVALID (bad config or limits) or TC_E_FULL (out of memory).
 */
tcs_stream *tcs_create(const tc_conn_config *cc, const tc_srv_config *sc, const tcs_limits *lim,
                       const uint8_t *seed, uint32_t seed_len, int *err);

/** Frees s and every connection (NULL: nothing). */
void tcs_destroy(tcs_stream *s);

/**
 * A new connection (accepted, or connected by a client) with the host's id (any uint32 not
 * open now) from the canonical address addr[0..alen) (addr.h, alen >= 3: the peer's; the
 * per-host bound compares it without its port). The core sees the connection as that address
 * with the table slot in place of the port: unique per connection, and the pipeline's own
 * per-host bounds (Observe, Block1) still count by host. Its CSM is queued at once (TCS_WRITE). Returns TCS_WRITE, or TC_E_FULL (a bound:
 * close the socket), TC_E_INVALID (bad arguments, id in use).
 */
int tcs_open(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *addr, uint32_t alen);

#ifdef TC_WITH_TLS
/** As tcs_open, with a TLS session from ctx under the connection (server: host NULL; client:
 *  the server's name for SNI and verification). The connection's bytes are then ciphertext.
 *  TC_TLS_E_* on a session failure. */
int tcs_open_tls(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *addr, uint32_t alen,
                 tc_tls_ctx *ctx, const char *host);
/** The connection's TLS session (NULL: none, or no such connection), e.g. for tc_tls_get_info. */
tc_tls *tcs_tls(tcs_stream *s, uint32_t id);
#endif

/**
 * Bytes read from connection id's socket: data[0..len). *used: how many were taken. Returns
 * TCS_DONE (all taken), TCS_WRITE (all taken, output to write), TCS_DELIVER / TCS_PAUSE (act,
 * call again with the rest), or TC_E_INVALID (no such connection). On a closed connection the
 * bytes are taken and ignored.
 */
int tcs_recv(tcs_stream *s, uint64_t now, uint32_t id, const uint8_t *data, uint32_t len,
             uint32_t *used);

/** The next connection with work, in FIFO order (each connection once until it is served
 *  again): TCS_OUT_WRITE / TCS_OUT_CLOSE with *id, or TCS_OUT_NONE. */
int tcs_next_out(tcs_stream *s, uint32_t *id);

/** The bytes to write to connection id (contiguous), *len = 0 / NULL when none. Valid until
 *  the next call on s. */
const uint8_t *tcs_out(tcs_stream *s, uint32_t id, uint32_t *len);

/** n bytes of what tcs_out gave were written (a partial write: call tcs_out again later, when
 *  the socket is writable). Returns TCS_DONE, TCS_WRITE (more to write), or TC_E_INVALID. */
int tcs_written(tcs_stream *s, uint32_t id, uint32_t n);

/**
 * The host closed connection id (socket error, EOF, or after TCS_OUT_CLOSE): the connection
 * is removed, its Observe registrations end (tc_srv_forget_peer), its exchanges are gone; if
 * it was not closed already a TC_CONN_EV_CLOSED record (status 0) is added, unless the batch
 * is full. Returns TCS_DONE, or TC_E_INVALID (no such connection).
 */
int tcs_close(tcs_stream *s, uint64_t now, uint32_t id);

/**
 * The host closes connection id gracefully (JS asked: no Release, no Abort): a CLOSED record
 * (status 0) now, its observers and exchanges end, input is ignored from now on; its output
 * drains (with TLS: then close_notify), then tcs_next_out gives TCS_OUT_CLOSE (send FIN, close
 * the socket, tcs_close). Returns TCS_WRITE, TCS_DELIVER (the batch has no room for the
 * record: hand it over, call again), or TC_E_INVALID. On a closed connection: TCS_WRITE.
 */
int tcs_shutdown(tcs_stream *s, uint64_t now, uint32_t id);

/** As tcs_shutdown, after an Abort signal (RFC 8323 §5.6) with the diagnostic diag (may be
 *  NULL) queued. */
int tcs_abort(tcs_stream *s, uint64_t now, uint32_t id, const char *diag);

/** A Release signal (§5.5) with Hold-Off hold_off_s (TC_CONN_NO_VALUE: none) and a diagnostic
 *  (may be NULL): no new requests from us; the peer closes. TCS_WRITE, TC_E_STALE (closed),
 *  TC_E_FULL (no room in the output), TC_E_INVALID. */
int tcs_release(tcs_stream *s, uint64_t now, uint32_t id, uint32_t hold_off_s, const char *diag);

/** As tcs_close, with status and flags in its CLOSED record (e.g. TCB_CONN_EVF_SYSERR with a
 *  negative errno when the socket failed); tcs_close is status 0, flags 0. */
int tcs_close_status(tcs_stream *s, uint64_t now, uint32_t id, int32_t status, uint32_t flags);

/**
 * A host record about a connection, appended to the batch:
 *  - TCB_CONN_EV_OPEN: connection id's transport is up (TCP connected; TLS: handshake done).
 *    ID = id, FAMILY..SCOPE = the peer's real address addr[0..alen) (canonical, addr.h),
 *    STATUS = the listener index (0 for a client), FLAGS = TCB_CONN_EVF_TLS when secured,
 *    DATA/LEN = data[0..dlen) copied into the byte area (the peer's identity, UTF-8).
 *  - TC_CONN_EV_CLOSED: a connection the host never opened here (a connect that failed
 *    before tcs_open, an accepted socket refused): FAMILY = TCB_FAMILY_CONN, PORT = id,
 *    STATUS / FLAGS as given (TCB_CONN_EVF_SYSERR, TCB_CONN_EVF_TLSERR); addr, data ignored.
 * Returns 0, TC_E_FULL (the batch is full: deliver it first, then call again) or
 * TC_E_INVALID.
 */
int tcs_host_event(tcs_stream *s, uint32_t kind, uint32_t id, const uint8_t *addr, uint32_t alen,
                   int32_t status, uint32_t flags, const uint8_t *data, uint32_t dlen);

/** Runs what is due at now on every connection (CSM waits, idle Pings, dead peers, request
 *  timeouts) and the pipeline's timers. TCS_DONE, TCS_WRITE or TCS_DELIVER (act, call again:
 *  the run resumes where it stopped). */
int tcs_timer(tcs_stream *s, uint64_t now);

/** When tcs_timer is next needed (host clock, ms); UINT64_MAX: never. */
uint64_t tcs_deadline(const tcs_stream *s);

/**
 * Runs the TX records w[.. nwords) with their bytes b[0..nbytes) (ep_batch.h) from where the
 * last call stopped. TCS_WRITE: a connection's output is full (write, call again with the same
 * table: the record is retried once); TCS_DONE: every record ran, tcs_tx_failed of them
 * failed (their output waits in tcs_next_out); or a negative TC_E_* for a malformed table
 * (records before it ran).
 */
int tcs_flush(tcs_stream *s, uint64_t now, uint32_t *w, uint32_t nwords, const uint8_t *b,
              uint32_t nbytes);

/** Records of the last complete tcs_flush whose RC is not 0. */
uint32_t tcs_tx_failed(const tcs_stream *s);

/** The host handed the batch to JS: empties it. */
void tcs_delivered(tcs_stream *s);

/** The batch (JS reads its words and bytes). */
const tcb_rx *tcs_batch(const tcs_stream *s);

/** Whether there are records to hand over or bytes to write. */
int tcs_pending(const tcs_stream *s);

/** The Block1 body of a delivered request (TC_SRVF_BODY): tc_srv_read_body. */
int tcs_read_body(tcs_stream *s, uint32_t body_id, uint8_t *out, uint32_t cap);

/** The shared pipeline (stats, tests). */
tc_srv *tcs_srv(tcs_stream *s);

/** The object's counters (refreshed). */
const tcs_stats *tcs_get_stats(tcs_stream *s);

/** Connection id's counters: 0, or TC_E_INVALID (no such connection). */
int tcs_conn_stats(const tcs_stream *s, uint32_t id, tc_conn_stats *out);

/** Connection id's tc_conn_state, or 0 (no such connection). */
uint32_t tcs_conn_state(const tcs_stream *s, uint32_t id);

/** Bytes allocated now (the object and its connections). */
size_t tcs_memory(const tcs_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* TURBOCOAP_DRIVER_STREAM_H */

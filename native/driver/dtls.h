/*
 * dtls.h — CoAP over DTLS 1.2 (RFC 7252 §9): a layer between the UDP socket and the datagram
 * driver (dgram.h). Addon only (TC_WITH_TLS; it links against OpenSSL through tls.h).
 *
 *   socket --ciphertext--> tcdt_recv --plaintext--> tcd_recv (tc_srv / tc_ep, unchanged)
 *   tc_ep --plaintext d->txq--> tcdt_seal --ciphertext t->out--> socket
 *
 * Sessions are keyed by the peer's canonical address (addr.h) in a bounded hash table: bounds
 * in total, per host (IP without port) and on half-open handshakes (when those are full, the
 * oldest half-open one is evicted, so a flood of cookie-completing handshakes cannot lock a
 * legitimate client out). A server answers a ClientHello from an unknown peer statelessly with
 * a HelloVerifyRequest (tc_dtls_listen): no state exists before the cookie returns. Handshake
 * flights are retransmitted from tcdt_deadline (folded with the driver's deadline): nothing of
 * OpenSSL's own runs on a timer. Decrypted application data reaches tcd_recv exactly as a
 * plain UDP datagram would, so block-wise, Observe, deduplication and separate responses work
 * unchanged. Forged, replayed (OpenSSL's replay window) and truncated records are dropped.
 *
 * Client role: a datagram for a peer without a session starts a handshake (SNI / name check:
 * the configured servername, else the peer's IP literal) and waits, bounded, in the session
 * until it completes. A handshake that fails fails the peer's outstanding requests at once:
 * TC_EV_FAILED records whose status is the TC_TLS_E_* code (HANDSHAKE, VERIFY, PSK, ...).
 * Server role: a datagram for a peer without a session is dropped.
 *
 * Open sessions idle for idle_ms are closed (close_notify); a peer's close_notify is answered
 * and its session freed. A new ClientHello (epoch 0) from the address of an open session goes
 * through the cookie exchange again and, once proven, replaces it (a restarted client).
 *
 * Actions follow dgram.h: every call answers TCD_DONE, TCD_SEND (send t->out with the host's
 * sender, then tcdt_out_sent; when the driver's own tx queue is involved the host's send step
 * is `while (tcdt_seal(t, now) == TCD_SEND) send out; send out`), TCD_DELIVER (hand d->rx to
 * JS, tcd_delivered) or a negative code; then the host calls again with the same arguments.
 */
#ifndef TURBOCOAP_DRIVER_DTLS_H
#define TURBOCOAP_DRIVER_DTLS_H

#include <stddef.h>
#include <stdint.h>

#include "dgram.h"
#include "tls.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bounds; a zero field takes its default. */
typedef struct tcdt_limits {
  uint32_t max_sessions;  /**< sessions in total (default 4096) */
  uint32_t max_per_host;  /**< sessions per IP address (default 1024) */
  uint32_t max_half_open; /**< handshakes in progress (default 256; the oldest is evicted) */
  uint32_t idle_ms;       /**< an open session idle this long is closed (default 600000) */
  uint32_t handshake_ms;  /**< a handshake older than this is given up (default 30000 server, 15000 client) */
  uint32_t queue_bytes;   /**< client: plaintext held per session during its handshake (16384) */
  uint32_t flags;         /**< TCDT_PSK: the credentials are a PSK (a client handshake that stalls
                               after the server's flight then fails with TC_TLS_E_PSK) */
} tcdt_limits;
#define TCDT_PSK 1u

/** Counters (also read by JS through the addon's dtlsStats). */
typedef struct tcdt_stats {
  uint32_t sessions;        /**< now */
  uint32_t half_open;       /**< now: handshakes in progress */
  uint32_t hosts;           /**< now: distinct IP addresses with sessions */
  uint32_t pad_;
  uint64_t hello_verify;    /**< HelloVerifyRequests sent (stateless) */
  uint64_t handshakes;      /**< completed */
  uint64_t handshake_failures;
  uint64_t refused;         /**< sessions not created: a bound was reached */
  uint64_t evicted;         /**< half-open handshakes evicted for a newer one */
  uint64_t expired;         /**< idle sessions closed, and handshakes given up */
  uint64_t closed;          /**< sessions ended by the peer's close_notify or an alert */
  uint64_t dropped_in;      /**< datagrams dropped: no session (not a ClientHello), or a bad one */
  uint64_t dropped_out;     /**< plaintext datagrams dropped: no session (server), queue full, too large */
  uint64_t records_in;      /**< application records decrypted */
  uint64_t records_out;     /**< application records sealed */
  uint64_t bytes_in, bytes_out; /**< ciphertext bytes received / queued to send */
  uint64_t handshake_bytes; /**< ciphertext bytes of handshake flights, both ways */
  uint64_t resumed;         /**< handshakes that resumed an earlier session (abbreviated) */
} tcdt_stats;

typedef struct tcdt tcdt;

/**
 * A DTLS layer over d (borrowed; it must outlive the layer) with the datagram context ctx
 * (ownership moves to the layer: freed by tcdt_destroy, also on failure). server: role.
 * servername (client, NUL-terminated, copied; NULL: the peer's IP literal) is sent as SNI and
 * checked against the server's certificate. Returns NULL with *err (TC_E_INVALID, TC_E_FULL).
 */
tcdt *tcdt_create(tcd_dgram *d, tc_tls_ctx *ctx, int server, const char *servername,
                  const tcdt_limits *lim, int *err);
/** Frees every session (no close_notify: call tcdt_close_all first for that) and the context. */
void tcdt_destroy(tcdt *t);

/** The ciphertext queue the host sends (tc_tx items, as d->txq). */
tc_txq *tcdt_out(tcdt *t);
/** The host sent tcdt_out (sent of its datagrams left, in send_calls calls): empties it. */
void tcdt_out_sent(tcdt *t, uint32_t sent, uint32_t send_calls);

/** One received datagram (ciphertext) from addr. Actions as above; the same arguments again
 *  after TCD_SEND / TCD_DELIVER (the layer resumes where it stopped). */
int tcdt_recv(tcdt *t, uint64_t now, const uint8_t *addr, uint32_t alen, const uint8_t *data,
              uint32_t len);
/** Seals d->txq (plaintext) into tcdt_out per peer and empties d->txq. TCD_SEND: tcdt_out is
 *  full (send it, call again); TCD_DONE. */
int tcdt_seal(tcdt *t, uint64_t now);
/** Handshake retransmissions, given-up handshakes, idle expiry, then tcd_timer(d). */
int tcdt_timer(tcdt *t, uint64_t now);
/** The earliest of the driver's deadline and the sessions' (host clock, ms). */
uint64_t tcdt_deadline(const tcdt *t);
/** Whether the host's end-of-turn hook has work (tcd_pending, or ciphertext queued). */
int tcdt_pending(const tcdt *t);
/** close_notify to every open session (as far as tcdt_out has room: TCD_SEND, call again). */
int tcdt_close_all(tcdt *t);

const tcdt_stats *tcdt_get_stats(tcdt *t);
/** Bytes the layer holds: its tables and queues, and the sessions' buffered records (the SSL
 *  objects themselves are OpenSSL's: measure the process for those). */
size_t tcdt_memory(const tcdt *t);

#ifdef __cplusplus
}
#endif
#endif

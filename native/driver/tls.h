/*
 * tls.h — the OpenSSL record layer of the driver: a sans-IO TLS endpoint over memory BIOs.
 *
 * Compiled into the Node addon only (it links against the OpenSSL that Node carries), never
 * into the WebAssembly build. No sockets inside OpenSSL and no timers of OpenSSL's own:
 * ciphertext enters through tc_tls_feed() and leaves through tc_tls_take_out(); plaintext
 * enters through tc_tls_write() and leaves through tc_tls_read().
 *
 * Two objects:
 *  - tc_tls_ctx: credentials and policy made once from a tc_tls_config (role, certificate
 *    chain + key, CA bundle, requestCert / rejectUnauthorized, ALPN policy, PSK, SNI
 *    alternatives). Shared by many sessions; reference-counted.
 *  - tc_tls: one connection. Batched: one feed may carry many records, one take_out drains
 *    every pending record. Buffers are bounded per session (tc_tls_config.in_cap/out_cap).
 *
 * DTLS 1.2 (tc_tls_config.transport = TC_TLS_DATAGRAM) shares the context, credentials,
 * verification, PSK/SNI and error code; only the I/O differs: a BIO that keeps datagram
 * boundaries (a memory BIO merges records) in two bounded queues, so feed() takes one
 * datagram, take_out() gives one datagram, read() gives one message and write() sends one
 * message as one record. A server answers unknown ClientHellos statelessly with
 * tc_dtls_listen() (HelloVerifyRequest, cookie = HMAC of the peer's address) and creates the
 * session only once the cookie comes back. Retransmission is the caller's: it asks
 * tc_tls_timeout_ms() after each call and calls tc_tls_on_timeout() when that time has passed.
 * ALPN is not used over DTLS.
 *
 * Conventions: pointers passed in are borrowed for the call only (the context copies what it
 * keeps); counts are returned as >= 0, errors as negative TC_TLS_E_* codes. Error codes live
 * at -100 and below so they never collide with the core's TC_E_* codes. Every call clears
 * OpenSSL's (thread-local) error queue before it returns, so Node's own TLS never sees our
 * leftovers. Not thread-safe per object: one session is used by one thread at a time.
 */
#ifndef TC_DRIVER_TLS_H
#define TC_DRIVER_TLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------- errors */

enum tc_tls_error {
  TC_TLS_E_INVALID = -100,          /**< an argument out of range, or a call in the wrong state */
  TC_TLS_E_NOMEM = -101,            /**< OpenSSL or malloc could not allocate */
  TC_TLS_E_CONFIG = -102,           /**< bad certificate, key, CA bundle, cipher list or PSK */
  TC_TLS_E_UNSUPPORTED = -103,      /**< a feature this build or OpenSSL lacks (named in the message);
                                         reserved: nothing returns it today */
  TC_TLS_E_HANDSHAKE = -104,        /**< handshake failed (no shared cipher/version, bad message, ...) */
  TC_TLS_E_VERIFY = -105,           /**< the peer's certificate failed verification (chain or name);
                                         tc_tls_info.verify_result has the X509_V_ERR_* code */
  TC_TLS_E_PEER_CERT_REQUIRED = -106, /**< server: requestCert + rejectUnauthorized, client sent none */
  TC_TLS_E_PSK = -107,              /**< PSK: unknown identity, or wrong key (Finished did not verify) */
  TC_TLS_E_ALPN = -108,             /**< ALPN policy: the peer did not offer/select "coap" */
  TC_TLS_E_ALERT = -109,            /**< the peer sent a fatal alert (tc_tls_info.alert_received) */
  TC_TLS_E_PROTOCOL = -110,         /**< bad or forged record after the handshake */
  TC_TLS_E_CLOSED = -111            /**< write after close_notify was sent (or the session failed) */
};
#define TC_TLS_ERROR_FIRST (-100)
#define TC_TLS_ERROR_LAST (-111)

/** Stable upper-case name of a TC_TLS_E_* code ("VERIFY", ...); "UNKNOWN" otherwise. */
const char *tc_tls_error_name(int err);

/* -------------------------------------------------------------------- config */

typedef enum { TC_TLS_CLIENT = 0, TC_TLS_SERVER = 1 } tc_tls_role;
/** TLS over a stream; DTLS 1.2 over datagrams. */
typedef enum { TC_TLS_STREAM = 0, TC_TLS_DATAGRAM = 1 } tc_tls_transport;

/** ALPN "coap" (RFC 8323 §8.2): clients offer it, servers select it. The policy says what
 *  happens when the peer does not take part. */
typedef enum {
  TC_TLS_ALPN_OPTIONAL = 0, /**< offer/select "coap"; a peer without ALPN is accepted. A client
                                 that offers other protocols only gets no_application_protocol. */
  TC_TLS_ALPN_REQUIRE = 1,  /**< the peer must offer/select "coap": server refuses a ClientHello
                                 without it (alert no_application_protocol), client fails with
                                 TC_TLS_E_ALPN when the server selected nothing */
  TC_TLS_ALPN_OFF = 2       /**< neither offer nor select (plain TLS, tests, odd peers) */
} tc_tls_alpn_policy;

/** Server: the key for a PSK identity. Write at most `cap` bytes to `key`; return the key
 *  length (1..cap), or 0 when the identity is unknown (the handshake then fails with
 *  TC_TLS_E_PSK). `identity` is NUL-terminated. Called synchronously inside feed(). */
typedef size_t (*tc_tls_psk_fn)(void *user, const char *identity, uint8_t *key, size_t cap);

typedef struct tc_tls_ctx tc_tls_ctx;

/** Server: the context for an SNI name not in the table (tc_tls_ctx_add_sni); return NULL to
 *  keep the default. The returned context stays owned by the caller and must live as long as
 *  the sessions (the session takes its own OpenSSL reference). Called inside feed(). */
typedef tc_tls_ctx *(*tc_tls_sni_fn)(void *user, const char *servername);

typedef struct tc_tls_config {
  tc_tls_role role;
  tc_tls_transport transport;   /**< TC_TLS_STREAM */
  /* X.509: PEM text, not NUL-terminated necessarily (lengths given). The chain is the leaf
   * first, then intermediates. cert and key go together. */
  const char *cert_pem; size_t cert_len;
  const char *key_pem; size_t key_len;
  const char *ca_pem; size_t ca_len;     /**< trust anchors; none: OpenSSL's default paths */
  int request_cert;             /**< server: ask the client for a certificate (mutual auth) */
  int reject_unauthorized;      /**< fail the handshake when the peer's certificate does not
                                     verify (client: chain + host name/IP; server: with
                                     request_cert, also when the client sends none) */
  tc_tls_alpn_policy alpn;
  /* PSK (TLS 1.2 PSK cipher suites). Client: identity + key. Server: hint, table, callback. */
  const char *psk_identity;     /**< client: NUL-terminated, 1..128 bytes */
  const uint8_t *psk_key; size_t psk_key_len; /**< client: 1..64 bytes */
  const char *psk_hint;         /**< server: optional identity hint, NUL-terminated */
  tc_tls_psk_fn psk_fn; void *psk_user; /**< server: consulted after tc_tls_ctx_add_psk()'s table */
  tc_tls_sni_fn sni_fn; void *sni_user; /**< server: consulted after tc_tls_ctx_add_sni()'s table */
  const char *ciphers;          /**< TLS 1.2 cipher list; NULL: a default (PSK suites first,
                                     PSK-AES128-CCM8 leading, when PSK is configured) */
  const char *ciphersuites;     /**< TLS 1.3 suites; NULL: OpenSSL's default */
  int min_version, max_version; /**< 0x0303 = TLS 1.2, 0x0304 = TLS 1.3; 0: defaults (1.2 .. 1.3;
                                     a PSK client without a certificate stops at 1.2). Datagram:
                                     0 or 0xFEFD (DTLS 1.2) */
  size_t in_cap;                /**< ciphertext accepted but not yet decrypted, per session;
                                     0: 64 KiB; at least 20 KiB (one full record + header) */
  size_t out_cap;               /**< ciphertext produced but not yet taken, per session (write()
                                     stops accepting plaintext beyond it); 0: 64 KiB; >= 20 KiB */
  /* DTLS only */
  size_t mtu;                   /**< the largest UDP payload: 0 = 1232 (IPv6 minimum MTU); 256..65507 */
  unsigned retransmit_ms;       /**< first handshake retransmission timeout, doubling to 60 s;
                                     0 = 1000 (RFC 6347 §4.2.4.1) */
} tc_tls_config;

/** Make a context. On failure returns a negative code, sets *out = NULL and writes a message
 *  (OpenSSL's reason included) into err (NUL-terminated, truncated to errcap; err may be NULL). */
int tc_tls_ctx_new(const tc_tls_config *cfg, tc_tls_ctx **out, char *err, size_t errcap);
/** Drop the caller's reference; the context is freed with its last session. */
void tc_tls_ctx_free(tc_tls_ctx *ctx);
/** Server: add a PSK identity -> key (bounded: 64 entries; TC_TLS_E_INVALID when full, identity
 *  not 1..128 bytes, or key not 1..64 bytes). A later entry for the same identity replaces it. */
int tc_tls_ctx_add_psk(tc_tls_ctx *ctx, const char *identity, const uint8_t *key, size_t key_len);
/** Server: serve `alt` (a server context) to ClientHellos whose SNI equals `name`
 *  (case-insensitive; "*.example.com" matches one leftmost label). Takes a reference on alt.
 *  Bounded: 32 names. */
int tc_tls_ctx_add_sni(tc_tls_ctx *ctx, const char *name, tc_tls_ctx *alt);

/* -------------------------------------------------------------------- session */

typedef struct tc_tls tc_tls;

typedef enum {
  TC_TLS_HANDSHAKING = 0,
  TC_TLS_OPEN = 1,        /**< handshake done: read and write */
  TC_TLS_CLOSING = 2,     /**< we sent close_notify; the peer's may still come (reads still work) */
  TC_TLS_PEER_CLOSED = 3, /**< the peer sent close_notify; answer with tc_tls_close() */
  TC_TLS_CLOSED = 4,      /**< close_notify both ways */
  TC_TLS_FAILED = 5       /**< fatal error: tc_tls_error(); pending_out may still hold our alert */
} tc_tls_state;

/** A session. Client: `host` is the server's name or IP literal: a name is sent as SNI and
 *  checked against the certificate's DNS names; an IP literal is checked against its IP
 *  addresses and is not sent as SNI. NULL: no SNI and no name check. The client's first flight
 *  (ClientHello) is pending in the output as soon as this returns. Server: host must be NULL.
 *  Returns NULL on allocation failure or bad arguments (message in err as for tc_tls_ctx_new). */
tc_tls *tc_tls_new(tc_tls_ctx *ctx, const char *host, char *err, size_t errcap);
/** tc_tls_new with a resume key (client; e.g. the server's address bytes, at most 64): the
 *  context keeps the last resumable TLS 1.2 / DTLS 1.2 session per key (the
 *  TC_TLS_RESUME_MAX = 32 most recently used) and offers it on the next session with the same
 *  key; tc_tls_info.session_reused tells whether the server resumed it. tc_tls_new keys by
 *  `host` (none when NULL). A server keeps up to TC_TLS_SERVER_CACHE sessions for
 *  TC_TLS_SESSION_TIMEOUT seconds (OpenSSL's session-ID cache; no tickets). */
tc_tls *tc_tls_new_keyed(tc_tls_ctx *ctx, const char *host, const uint8_t *rkey, size_t rkey_len, char *err, size_t errcap);
#define TC_TLS_SERVER_CACHE 4096
#define TC_TLS_SESSION_TIMEOUT 7200
void tc_tls_free(tc_tls *s);

/** Bytes received from the socket. Accepts at most in_cap minus what is buffered and returns
 *  how many it took (the caller keeps the rest and feeds it after reading); drives the
 *  handshake. Returns a negative code once the session failed. Datagram: one datagram per
 *  call, len or 0 (queue full: dropped, as a socket would). */
long tc_tls_feed(tc_tls *s, const uint8_t *ct, size_t len);
/** Plaintext for the layer above, up to cap bytes, as many records as are buffered (datagram:
 *  one record, one message; cap should be tc_tls_max_plaintext()). Returns 0
 *  when nothing is ready (more ciphertext needed, or the peer closed: see tc_tls_state()). A
 *  failure is reported after the plaintext decrypted before it. */
long tc_tls_read(tc_tls *s, uint8_t *out, size_t cap);
/** Encrypt application data. Returns the bytes accepted: all of them unless the pending
 *  ciphertext reached out_cap (take it out and write the rest) or the handshake is not done
 *  (0). TC_TLS_E_CLOSED after tc_tls_close(). Datagram: one message of at most
 *  tc_tls_max_plaintext() bytes (else TC_TLS_E_INVALID), all or 0. */
long tc_tls_write(tc_tls *s, const uint8_t *pt, size_t len);
/** Ciphertext waiting to be sent (handshake flights, records, alerts, close_notify). */
size_t tc_tls_pending_out(const tc_tls *s);
/** Move up to cap bytes of pending ciphertext to out; returns the count. Datagram: exactly one
 *  datagram (TC_TLS_E_INVALID when it does not fit in cap; it stays queued). */
long tc_tls_take_out(tc_tls *s, uint8_t *out, size_t cap);
/** Send close_notify (once; idempotent). Pending plaintext writes stay valid before it. */
int tc_tls_close(tc_tls *s);

/** Bytes of buffer the session's BIOs hold (capacity, for memory accounting). An open stream
 *  session drops any buffer over 4 KiB once it is drained, so an idle one holds at most 8 KiB
 *  here (OpenSSL's record buffers are released too: SSL_MODE_RELEASE_BUFFERS). */
size_t tc_tls_buffer_bytes(const tc_tls *s);

tc_tls_state tc_tls_get_state(const tc_tls *s);
/** The latched error code (0 when none) and its message: OpenSSL's reason, the X.509 verify
 *  reason, or the alert. The message stays valid until tc_tls_free(). */
int tc_tls_error(const tc_tls *s);
const char *tc_tls_errmsg(const tc_tls *s);

typedef struct tc_tls_info {
  int version;            /**< 0x0303 TLS 1.2, 0x0304 TLS 1.3; 0 before the handshake */
  char cipher[64];        /**< OpenSSL's cipher name, e.g. "TLS_AES_128_GCM_SHA256" */
  char alpn[32];          /**< negotiated ALPN protocol ("coap") or "" */
  char servername[256];   /**< SNI: sent (client) or received (server), "" if none */
  char psk_identity[129]; /**< PSK identity used, "" if none */
  int peer_cert;          /**< 1 when the peer presented a certificate */
  long verify_result;     /**< X509_V_OK (0) or the first X509_V_ERR_* code; -1 when nothing was
                               verified (no peer certificate, PSK) */
  int alert_sent;         /**< last alert we sent: (level << 8) | description, 0 if none */
  int alert_received;     /**< last alert received, as above (close_notify = 0x100) */
  int session_reused;
  char peer_cn[129];      /**< the peer certificate's subject CN (UTF-8, truncated), "" if none */
} tc_tls_info;
int tc_tls_get_info(const tc_tls *s, tc_tls_info *out);
/** 1 when the handshake resumed an earlier session (SSL_session_reused), else 0. */
int tc_tls_session_reused(const tc_tls *s);

/* -------------------------------------------------------------------- DTLS */

/** tc_dtls_listen() outcomes. */
enum { TC_DTLS_DROP = 0, TC_DTLS_HELLO_VERIFY = 1, TC_DTLS_ACCEPT = 2 };

/** Server, datagram context: a datagram from a peer that has no session yet. `peer` is the
 *  peer's address as opaque bytes (1..64; the cookie is bound to it). Returns
 *  TC_DTLS_HELLO_VERIFY with a HelloVerifyRequest in out[0..*out_len) to send back (nothing
 *  is kept), TC_DTLS_ACCEPT with a new session in *accepted (the ClientHello carried a valid
 *  cookie; its first flight is pending in tc_tls_take_out), or TC_TLS_E_* / TC_DTLS_DROP
 *  (not a ClientHello, a bad cookie, garbage: ignore it). */
int tc_dtls_listen(tc_tls_ctx *ctx, const uint8_t *dgram, size_t len, const uint8_t *peer, size_t peer_len,
                   uint8_t *out, size_t cap, size_t *out_len, tc_tls **accepted);
/** Datagram session: milliseconds until tc_tls_on_timeout() is due (0 = now), or -1 when no
 *  retransmission is pending. Ask again after every feed/write/on_timeout. Stream: -1. */
long tc_tls_timeout_ms(tc_tls *s);
/** Datagram session: retransmit the last flight if its time has come (1), nothing to do (0),
 *  or a negative code when the handshake gave up (12 timeouts). Stream: 0. */
int tc_tls_on_timeout(tc_tls *s);
/** The largest plaintext one write() takes: the DTLS record payload for the MTU (what CoAP's
 *  message size must stay under), or 16384 for TLS (larger TLS writes are split). */
size_t tc_tls_max_plaintext(const tc_tls *s);

#ifdef __cplusplus
}
#endif
#endif

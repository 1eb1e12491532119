/*
 * tls.c — the OpenSSL record layer (see tls.h), TLS and DTLS 1.2 sharing all but the I/O:
 *   1. context: credentials, verification, ALPN, PSK and SNI policy, built into an SSL_CTX;
 *   2. session core: the SSL object, its callbacks, the handshake driver, error mapping, info;
 *   3. stream I/O: two memory BIOs with bounds (feed / read / write / take_out / close);
 *   4. datagram I/O: a BIO_METHOD that keeps one record per datagram (a plain memory BIO
 *      merges them) over two bounded queues, stateless cookies through DTLSv1_listen before
 *      any session exists, and retransmission driven by the caller (DTLSv1_get_timeout /
 *      DTLSv1_handle_timeout): OpenSSL never owns a socket or a timer. (OpenSSL still reads
 *      the clock: a read after the deadline retransmits by itself, which is harmless.)
 * Not here: Connection ID, raw public keys (OpenSSL 3.0 has neither for DTLS).
 */
#include "tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/time.h> /* struct timeval for DTLSv1_get_timeout */
#else
#include <winsock2.h>
#endif

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TC_TLS_CAP_DEFAULT ((size_t)64 * 1024)
#define TC_TLS_CAP_MIN ((size_t)20 * 1024) /* one full record (16 KiB + expansion) must fit */
#define TC_TLS_PSK_ID_MAX 128
#define TC_TLS_PSK_KEY_MAX 64
#define TC_TLS_PSK_TABLE_MAX 64
#define TC_TLS_SNI_TABLE_MAX 32
#define TC_TLS_RECORD_SLACK 256 /* the most a record adds to its plaintext (header, IV, tag, pad) */
#define TC_DTLS_MTU_DEFAULT 1232  /* IPv6 minimum MTU 1280 - 40 (IPv6) - 8 (UDP) */
#define TC_DTLS_QUEUE_MAX 64      /* datagrams queued per direction per session */
#define TC_DTLS_PEER_MAX 64

static const char *const tc_tls_error_names[] = {
  "INVALID", "NOMEM", "CONFIG", "UNSUPPORTED", "HANDSHAKE", "VERIFY", "PEER_CERT_REQUIRED",
  "PSK", "ALPN", "ALERT", "PROTOCOL", "CLOSED"
};

const char *tc_tls_error_name(int err) {
  if (err <= TC_TLS_ERROR_FIRST && err >= TC_TLS_ERROR_LAST) return tc_tls_error_names[TC_TLS_ERROR_FIRST - err];
  return "UNKNOWN";
}

/* RFC 8323 §8.2: the ALPN protocol ID "coap", in wire format. */
static const unsigned char coap_alpn[] = { 4, 'c', 'o', 'a', 'p' };

#define CERT_SUITES                                                                     \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
  "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"   \
  "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-CCM"
/* RFC 7925 §4.2 makes TLS_PSK_WITH_AES_128_CCM_8 the CoAP suite; the others for peers without it. */
#define PSK_SUITES                                                                      \
  "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CCM:PSK-AES256-GCM-SHA384:"         \
  "PSK-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305"

typedef struct { char id[TC_TLS_PSK_ID_MAX + 1]; uint8_t key[TC_TLS_PSK_KEY_MAX]; size_t key_len; } psk_entry;
typedef struct { char name[256]; tc_tls_ctx *ctx; } sni_entry;

/* Client session resumption: the last resumable session per server (key: the caller's
 * resume key, else the host), TC_TLS_RESUME_MAX entries, the least recently used replaced. */
#define TC_TLS_RESUME_MAX 32
#define TC_TLS_RESUME_KEY_MAX 64
typedef struct {
  uint8_t key[TC_TLS_RESUME_KEY_MAX];
  size_t len;
  SSL_SESSION *sess;
  uint64_t used;
} resume_entry;

struct tc_tls_ctx {
  SSL_CTX *ssl_ctx;
  resume_entry resume[TC_TLS_RESUME_MAX]; /* client */
  uint64_t resume_tick;
  BIO_METHOD *dgram_meth; /* datagram contexts: the record-preserving BIO */
  int refs;
  size_t mtu;                   /* datagram: the largest UDP payload */
  unsigned retransmit_us;       /* datagram: first retransmission timeout */
  uint8_t cookie_key[32];       /* datagram server: HMAC key of the stateless cookies */
  tc_tls_role role;
  tc_tls_transport transport;
  tc_tls_alpn_policy alpn;
  int request_cert, reject_unauthorized;
  size_t in_cap, out_cap;
  /* client PSK */
  int has_client_psk;
  char psk_identity[TC_TLS_PSK_ID_MAX + 1];
  uint8_t psk_key[TC_TLS_PSK_KEY_MAX];
  size_t psk_key_len;
  /* server PSK and SNI */
  tc_tls_psk_fn psk_fn; void *psk_user;
  tc_tls_sni_fn sni_fn; void *sni_user;
  psk_entry *psk_tab; unsigned psk_n;
  sni_entry *sni_tab; unsigned sni_n;
};

/* A bounded FIFO of datagrams (one per slot, boundaries kept). */
typedef struct {
  uint8_t *p[TC_DTLS_QUEUE_MAX];
  size_t n[TC_DTLS_QUEUE_MAX];
  unsigned head, count;
  size_t bytes;
} dq;

struct tc_tls {
  tc_tls_ctx *ctx; /* holds a reference */
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl (the same BIO for a datagram session) */
  int dgram;
  dq din, dout;     /* datagram session: records in, records out */
  uint8_t peer[TC_DTLS_PEER_MAX]; /* datagram server: the address the cookie is bound to */
  size_t peer_len;
  tc_tls_state state;
  int err;
  int alert_sent, alert_received;
  int psk_used, psk_unknown, alpn_failed, sent_close;
  int host_is_ip;
  uint8_t rkey[TC_TLS_RESUME_KEY_MAX]; /* client: the resume key ("" = none) */
  size_t rkey_len;
  long first_verify_error; /* X509_V_ERR_* of the first failure when failures are allowed */
  char host[256];
  char psk_id[TC_TLS_PSK_ID_MAX + 1]; /* server: the identity the client sent */
  char errmsg[320];
};

/* ================================================================ helpers */

static void set_msg(char *dst, size_t cap, const char *a, const char *b) {
  if (dst == NULL || cap == 0) return;
  snprintf(dst, cap, "%s%s%s", a, (b != NULL && b[0] != '\0') ? ": " : "", b != NULL ? b : "");
}

/* The reason text of the first queued OpenSSL error (or `fallback`); clears the queue. */
static const char *openssl_reason(char *buf, size_t cap, const char *fallback) {
  unsigned long e = ERR_peek_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  if (r != NULL) snprintf(buf, cap, "%s", r);
  else if (e != 0) ERR_error_string_n(e, buf, cap);
  else snprintf(buf, cap, "%s", fallback);
  ERR_clear_error();
  return buf;
}

static int ctx_fail(tc_tls_ctx *c, int code, char *err, size_t errcap, const char *what) {
  char reason[200];
  set_msg(err, errcap, what, openssl_reason(reason, sizeof reason, ""));
  if (c != NULL) tc_tls_ctx_free(c);
  return code;
}

static int lower_ascii(int ch) { return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch; }

static int name_eq(const char *a, const char *b) {
  for (; *a != '\0' && *b != '\0'; a++, b++)
    if (lower_ascii((unsigned char)*a) != lower_ascii((unsigned char)*b)) return 0;
  return *a == *b;
}

/* "*.example.com" matches exactly one leftmost label. */
static int sni_match(const char *pattern, const char *name) {
  if (pattern[0] == '*' && pattern[1] == '.') {
    const char *dot = strchr(name, '.');
    return dot != NULL && dot != name && name_eq(pattern + 1, dot);
  }
  return name_eq(pattern, name);
}

/* ================================================================ 2. session callbacks */

static void info_cb(const SSL *ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) == 0) return;
  tc_tls *s = SSL_get_app_data(ssl);
  if (s == NULL) return;
  if (where & SSL_CB_READ) s->alert_received = ret;
  else s->alert_sent = ret;
}

/* rejectUnauthorized = false: record the first failure (the root cause; OpenSSL's own result
 * is the last one seen), carry on. */
static int verify_accept_all(int preverify_ok, X509_STORE_CTX *x) {
  SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
  tc_tls *s = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
  if (!preverify_ok && s != NULL && s->first_verify_error == 0) s->first_verify_error = X509_STORE_CTX_get_error(x);
  return 1;
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity_len,
                                  unsigned char *psk, unsigned int max_psk_len) {
  (void)hint;
  tc_tls *s = SSL_get_app_data(ssl);
  if (s == NULL || !s->ctx->has_client_psk) return 0;
  size_t idlen = strlen(s->ctx->psk_identity);
  if (idlen + 1 > max_identity_len || s->ctx->psk_key_len > max_psk_len) return 0;
  memcpy(identity, s->ctx->psk_identity, idlen + 1);
  memcpy(psk, s->ctx->psk_key, s->ctx->psk_key_len);
  s->psk_used = 1;
  return (unsigned int)s->ctx->psk_key_len;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len) {
  tc_tls *s = SSL_get_app_data(ssl);
  if (s == NULL || identity == NULL) return 0;
  tc_tls_ctx *c = s->ctx;
  s->psk_used = 1;
  snprintf(s->psk_id, sizeof s->psk_id, "%s", identity);
  for (unsigned i = 0; i < c->psk_n; i++) {
    if (strcmp(c->psk_tab[i].id, identity) == 0 && c->psk_tab[i].key_len <= max_psk_len) {
      memcpy(psk, c->psk_tab[i].key, c->psk_tab[i].key_len);
      return (unsigned int)c->psk_tab[i].key_len;
    }
  }
  if (c->psk_fn != NULL) {
    uint8_t key[TC_TLS_PSK_KEY_MAX];
    size_t cap = max_psk_len < sizeof key ? max_psk_len : sizeof key;
    size_t n = c->psk_fn(c->psk_user, identity, key, cap);
    if (n > 0 && n <= cap) {
      memcpy(psk, key, n);
      OPENSSL_cleanse(key, sizeof key);
      return (unsigned int)n;
    }
    OPENSSL_cleanse(key, sizeof key);
  }
  s->psk_unknown = 1;
  return 0;
}

/* Server ALPN: select "coap" from the client's list; a list without it is refused. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
  (void)arg;
  tc_tls *s = SSL_get_app_data(ssl);
  if (s == NULL || s->ctx->alpn == TC_TLS_ALPN_OFF) return SSL_TLSEXT_ERR_NOACK;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int n = in[i];
    if (n == 0 || i + 1 + n > inlen) break;
    if (n == coap_alpn[0] && memcmp(in + i + 1, coap_alpn + 1, n) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)n;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  s->alpn_failed = 1;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Server, ALPN required: a ClientHello without ALPN is refused before any work is done. */
static int client_hello_cb(SSL *ssl, int *al, void *arg) {
  (void)arg;
  tc_tls *s = SSL_get_app_data(ssl);
  const unsigned char *p;
  size_t len;
  if (s != NULL && s->ctx->alpn == TC_TLS_ALPN_REQUIRE &&
      !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &len)) {
    s->alpn_failed = 1;
    *al = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

/* Server SNI: the session's context table first, then its callback; unknown names keep the
 * default certificate (as Node does). Verification settings follow the chosen context. */
static int servername_cb(SSL *ssl, int *al, void *arg) {
  (void)al;
  (void)arg;
  tc_tls *s = SSL_get_app_data(ssl);
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (s == NULL || name == NULL || name[0] == '\0') return SSL_TLSEXT_ERR_NOACK;
  tc_tls_ctx *c = s->ctx, *alt = NULL;
  for (unsigned i = 0; i < c->sni_n && alt == NULL; i++)
    if (sni_match(c->sni_tab[i].name, name)) alt = c->sni_tab[i].ctx;
  if (alt == NULL && c->sni_fn != NULL) alt = c->sni_fn(c->sni_user, name);
  if (alt != NULL && alt != c && alt->role == TC_TLS_SERVER) {
    if (SSL_set_SSL_CTX(ssl, alt->ssl_ctx) == NULL) return SSL_TLSEXT_ERR_ALERT_FATAL;
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(alt->ssl_ctx), SSL_CTX_get_verify_callback(alt->ssl_ctx));
  }
  return SSL_TLSEXT_ERR_OK;
}

/* ================================================================ 1. context */

static int load_chain(SSL_CTX *ctx, const char *pem, size_t len) {
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return 0;
  X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
  int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x == NULL) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ERR_clear_error();
      else ok = 0;
      break;
    }
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { X509_free(x); ok = 0; }
  }
  BIO_free(b);
  return ok;
}

static int load_key(SSL_CTX *ctx, const char *pem, size_t len) {
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return 0;
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(k);
  BIO_free(b);
  return ok;
}

/* Trust anchors; for a server that asks for client certificates they are also the CA names
 * it sends in CertificateRequest. Returns the number loaded (0 = error). */
static int load_ca(SSL_CTX *ctx, const char *pem, size_t len, int as_client_ca) {
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  if (b == NULL) return 0;
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int n = 0;
  for (;;) {
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x == NULL) break;
    if (X509_STORE_add_cert(store, x) != 1 || (as_client_ca && SSL_CTX_add_client_CA(ctx, x) != 1)) {
      X509_free(x);
      n = 0;
      break;
    }
    X509_free(x);
    n++;
  }
  if (n > 0) ERR_clear_error(); /* the PEM_R_NO_START_LINE that ends the loop */
  BIO_free(b);
  return n;
}

static int version_ok(int dgram, int v) {
  return v == 0 || (dgram ? v == DTLS1_2_VERSION : (v == TLS1_2_VERSION || v == TLS1_3_VERSION));
}

static int dgram_meth_new(tc_tls_ctx *c);
static int cookie_generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *len);
static int cookie_verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int len);

int tc_tls_ctx_new(const tc_tls_config *cfg, tc_tls_ctx **out, char *err, size_t errcap) {
  if (err != NULL && errcap > 0) err[0] = '\0';
  if (out == NULL) return TC_TLS_E_INVALID;
  *out = NULL;
  ERR_clear_error();
  int dgram = cfg != NULL && cfg->transport == TC_TLS_DATAGRAM;
  if (cfg == NULL || (cfg->role != TC_TLS_CLIENT && cfg->role != TC_TLS_SERVER) ||
      (cfg->transport != TC_TLS_STREAM && cfg->transport != TC_TLS_DATAGRAM) ||
      (cfg->alpn != TC_TLS_ALPN_OPTIONAL && cfg->alpn != TC_TLS_ALPN_REQUIRE && cfg->alpn != TC_TLS_ALPN_OFF) ||
      !version_ok(dgram, cfg->min_version) || !version_ok(dgram, cfg->max_version) ||
      (cfg->min_version != 0 && cfg->max_version != 0 && cfg->min_version > cfg->max_version)) {
    set_msg(err, errcap, "invalid TLS config (role, transport, alpn policy or version)", NULL);
    return TC_TLS_E_INVALID;
  }
  if (dgram && ((cfg->mtu != 0 && (cfg->mtu < 256 || cfg->mtu > 65507)) || cfg->retransmit_ms > 60000)) {
    set_msg(err, errcap, "DTLS: mtu must be 0 or 256..65507, retransmit_ms 0..60000", NULL);
    return TC_TLS_E_INVALID;
  }
  if ((cfg->in_cap != 0 && cfg->in_cap < TC_TLS_CAP_MIN) || (cfg->out_cap != 0 && cfg->out_cap < TC_TLS_CAP_MIN) ||
      cfg->in_cap > INT_MAX || cfg->out_cap > INT_MAX) {
    set_msg(err, errcap, "in_cap/out_cap must be 0 or 20 KiB .. 2 GiB", NULL);
    return TC_TLS_E_INVALID;
  }
  if ((cfg->cert_pem == NULL) != (cfg->key_pem == NULL) || cfg->cert_len > INT_MAX || cfg->key_len > INT_MAX ||
      cfg->ca_len > INT_MAX) {
    set_msg(err, errcap, "cert and key go together", NULL);
    return TC_TLS_E_CONFIG;
  }
  int client_psk = cfg->role == TC_TLS_CLIENT && (cfg->psk_identity != NULL || cfg->psk_key != NULL);
  if (client_psk && (cfg->psk_identity == NULL || cfg->psk_key == NULL || cfg->psk_key_len == 0 ||
                     cfg->psk_key_len > TC_TLS_PSK_KEY_MAX || strlen(cfg->psk_identity) == 0 ||
                     strlen(cfg->psk_identity) > TC_TLS_PSK_ID_MAX)) {
    set_msg(err, errcap, "PSK: identity must be 1..128 bytes and key 1..64 bytes", NULL);
    return TC_TLS_E_CONFIG;
  }

  tc_tls_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) return TC_TLS_E_NOMEM;
  c->refs = 1;
  c->role = cfg->role;
  c->transport = cfg->transport;
  c->alpn = dgram ? TC_TLS_ALPN_OFF : cfg->alpn; /* "coap" is registered for TLS only (RFC 8323 §8.2) */
  c->request_cert = cfg->request_cert != 0;
  c->reject_unauthorized = cfg->reject_unauthorized != 0;
  c->in_cap = cfg->in_cap != 0 ? cfg->in_cap : TC_TLS_CAP_DEFAULT;
  c->out_cap = cfg->out_cap != 0 ? cfg->out_cap : TC_TLS_CAP_DEFAULT;
  c->mtu = cfg->mtu != 0 ? cfg->mtu : TC_DTLS_MTU_DEFAULT;
  c->retransmit_us = (cfg->retransmit_ms != 0 ? cfg->retransmit_ms : 1000) * 1000u;
  c->psk_fn = cfg->psk_fn;
  c->psk_user = cfg->psk_user;
  c->sni_fn = cfg->sni_fn;
  c->sni_user = cfg->sni_user;
  if (client_psk) {
    c->has_client_psk = 1;
    memcpy(c->psk_identity, cfg->psk_identity, strlen(cfg->psk_identity) + 1);
    memcpy(c->psk_key, cfg->psk_key, cfg->psk_key_len);
    c->psk_key_len = cfg->psk_key_len;
  }
  int server = cfg->role == TC_TLS_SERVER;
  SSL_CTX *ctx = SSL_CTX_new(dgram ? (server ? DTLS_server_method() : DTLS_client_method())
                                   : (server ? TLS_server_method() : TLS_client_method()));
  if (ctx == NULL) return ctx_fail(c, TC_TLS_E_NOMEM, err, errcap, "SSL_CTX_new");
  c->ssl_ctx = ctx;
  SSL_CTX_set_app_data(ctx, c);

  int has_cert = cfg->cert_pem != NULL;
  int min_v = cfg->min_version != 0 ? cfg->min_version : dgram ? DTLS1_2_VERSION : TLS1_2_VERSION;
  int max_v = cfg->max_version != 0 ? cfg->max_version
              : dgram ? DTLS1_2_VERSION : (client_psk && !has_cert ? TLS1_2_VERSION : TLS1_3_VERSION);
  if (SSL_CTX_set_min_proto_version(ctx, min_v) != 1 || SSL_CTX_set_max_proto_version(ctx, max_v) != 1)
    return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "protocol version");
  /* Idle connections keep no record buffers. The chain sent is the configured one (leaf +
   * intermediates), not one completed from the trust store with its root (bytes on the wire).
   * No renegotiation, no compression. Resumption (TLS 1.2 / DTLS 1.2) by session ID, no
   * tickets: a server keeps a bounded cache (TC_TLS_SERVER_CACHE sessions, TC_TLS_SESSION_TIMEOUT
   * s), a client the last session per server in the context (TC_TLS_RESUME_MAX). */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  SSL_CTX_set_session_cache_mode(ctx, server ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
  if (server) {
    SSL_CTX_sess_set_cache_size(ctx, TC_TLS_SERVER_CACHE);
    SSL_CTX_set_timeout(ctx, TC_TLS_SESSION_TIMEOUT);
  }
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  if (dgram) {
    /* MTU from the config, never queried from a socket; a server answers a ClientHello without
     * a valid cookie with a HelloVerifyRequest (see tc_dtls_listen). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU | (server ? SSL_OP_COOKIE_EXCHANGE : 0));
    if (!dgram_meth_new(c)) return ctx_fail(c, TC_TLS_E_NOMEM, err, errcap, "datagram BIO");
    if (server) {
      if (RAND_bytes(c->cookie_key, (int)sizeof c->cookie_key) != 1)
        return ctx_fail(c, TC_TLS_E_NOMEM, err, errcap, "cookie key");
      SSL_CTX_set_cookie_generate_cb(ctx, cookie_generate_cb);
      SSL_CTX_set_cookie_verify_cb(ctx, cookie_verify_cb);
    }
  }

  const char *ciphers = cfg->ciphers;
  if (ciphers == NULL) {
    if (server) ciphers = has_cert ? CERT_SUITES ":" PSK_SUITES : PSK_SUITES;
    else ciphers = client_psk ? (has_cert ? PSK_SUITES ":" CERT_SUITES : PSK_SUITES) : CERT_SUITES;
  }
  if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "cipher list");
  if (cfg->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
    return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "TLS 1.3 ciphersuites");

  if (has_cert) {
    if (!load_chain(ctx, cfg->cert_pem, cfg->cert_len)) return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "certificate");
    if (!load_key(ctx, cfg->key_pem, cfg->key_len)) return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "private key");
  }
  if (cfg->ca_pem != NULL) {
    if (load_ca(ctx, cfg->ca_pem, cfg->ca_len, server && c->request_cert) == 0)
      return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "CA bundle (no certificate read)");
  } else {
    (void)SSL_CTX_set_default_verify_paths(ctx);
    ERR_clear_error();
  }

  int mode = SSL_VERIFY_NONE;
  if (!server) mode = SSL_VERIFY_PEER;
  else if (c->request_cert) mode = SSL_VERIFY_PEER | (c->reject_unauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
  SSL_CTX_set_verify(ctx, mode, c->reject_unauthorized ? NULL : verify_accept_all);

  if (server) {
    static const unsigned char sid_ctx[] = "turbocoap";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    if (cfg->psk_hint != NULL && SSL_CTX_use_psk_identity_hint(ctx, cfg->psk_hint) != 1)
      return ctx_fail(c, TC_TLS_E_CONFIG, err, errcap, "PSK identity hint");
  } else {
    if (c->alpn != TC_TLS_ALPN_OFF && SSL_CTX_set_alpn_protos(ctx, coap_alpn, sizeof coap_alpn) != 0)
      return ctx_fail(c, TC_TLS_E_NOMEM, err, errcap, "ALPN");
    if (client_psk) SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
  }
  ERR_clear_error();
  *out = c;
  return 0;
}

void tc_tls_ctx_free(tc_tls_ctx *c) {
  if (c == NULL || --c->refs > 0) return;
  for (unsigned i = 0; i < c->sni_n; i++) tc_tls_ctx_free(c->sni_tab[i].ctx);
  free(c->sni_tab);
  if (c->psk_tab != NULL) {
    OPENSSL_cleanse(c->psk_tab, sizeof(psk_entry) * TC_TLS_PSK_TABLE_MAX);
    free(c->psk_tab);
  }
  for (unsigned i = 0; i < TC_TLS_RESUME_MAX; i++) SSL_SESSION_free(c->resume[i].sess);
  OPENSSL_cleanse(c->psk_key, sizeof c->psk_key);
  OPENSSL_cleanse(c->cookie_key, sizeof c->cookie_key);
  SSL_CTX_free(c->ssl_ctx);
  if (c->dgram_meth != NULL) BIO_meth_free(c->dgram_meth);
  free(c);
}

int tc_tls_ctx_add_psk(tc_tls_ctx *c, const char *identity, const uint8_t *key, size_t key_len) {
  if (c == NULL || c->role != TC_TLS_SERVER || identity == NULL || key == NULL || key_len == 0 ||
      key_len > TC_TLS_PSK_KEY_MAX)
    return TC_TLS_E_INVALID;
  size_t idlen = strlen(identity);
  if (idlen == 0 || idlen > TC_TLS_PSK_ID_MAX) return TC_TLS_E_INVALID;
  if (c->psk_tab == NULL && (c->psk_tab = calloc(TC_TLS_PSK_TABLE_MAX, sizeof(psk_entry))) == NULL)
    return TC_TLS_E_NOMEM;
  unsigned i = 0;
  while (i < c->psk_n && strcmp(c->psk_tab[i].id, identity) != 0) i++;
  if (i == c->psk_n) {
    if (c->psk_n == TC_TLS_PSK_TABLE_MAX) return TC_TLS_E_INVALID;
    c->psk_n++;
  }
  memcpy(c->psk_tab[i].id, identity, idlen + 1);
  OPENSSL_cleanse(c->psk_tab[i].key, sizeof c->psk_tab[i].key);
  memcpy(c->psk_tab[i].key, key, key_len);
  c->psk_tab[i].key_len = key_len;
  return 0;
}

int tc_tls_ctx_add_sni(tc_tls_ctx *c, const char *name, tc_tls_ctx *alt) {
  if (c == NULL || alt == NULL || alt == c || name == NULL || c->role != TC_TLS_SERVER ||
      alt->role != TC_TLS_SERVER || strlen(name) == 0 || strlen(name) >= sizeof c->sni_tab[0].name)
    return TC_TLS_E_INVALID;
  if (c->sni_tab == NULL && (c->sni_tab = calloc(TC_TLS_SNI_TABLE_MAX, sizeof(sni_entry))) == NULL)
    return TC_TLS_E_NOMEM;
  if (c->sni_n == TC_TLS_SNI_TABLE_MAX) return TC_TLS_E_INVALID;
  memcpy(c->sni_tab[c->sni_n].name, name, strlen(name) + 1);
  c->sni_tab[c->sni_n].ctx = alt;
  alt->refs++;
  c->sni_n++;
  return 0;
}

/* ================================================================ 2. session core */

static void fail(tc_tls *s, int code, const char *msg) {
  if (s->state == TC_TLS_FAILED) return;
  s->state = TC_TLS_FAILED;
  s->err = code;
  snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
}

static int alert_desc(int alert) { return alert & 0xff; }
static int alert_fatal(int alert) { return (alert >> 8) == SSL3_AL_FATAL; }

/* Map a failed SSL call to a TC_TLS_E_* code with a message; empties the error queue. */
static void fail_from_openssl(tc_tls *s, int ssl_error, int in_handshake) {
  unsigned long e = ERR_peek_error();
  int reason = e != 0 ? ERR_GET_REASON(e) : 0;
  char why[200], msg[320];
  openssl_reason(why, sizeof why, ssl_error == SSL_ERROR_ZERO_RETURN ? "peer closed during the handshake"
                                                                      : "TLS error");
  int code = in_handshake ? TC_TLS_E_HANDSHAKE : TC_TLS_E_PROTOCOL;
  int got_alert = alert_fatal(s->alert_received) ? alert_desc(s->alert_received) : -1;
  if (s->alpn_failed) {
    code = TC_TLS_E_ALPN;
    snprintf(msg, sizeof msg, "ALPN: the client did not offer \"coap\" (%s)", why);
  } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(s->ssl);
    code = TC_TLS_E_VERIFY;
    snprintf(msg, sizeof msg, "certificate verification failed: %s (X509 error %ld)",
             X509_verify_cert_error_string(v), v);
  } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    code = TC_TLS_E_PEER_CERT_REQUIRED;
    snprintf(msg, sizeof msg, "the client sent no certificate, and one is required (%s)", why);
  } else if (s->psk_unknown) {
    code = TC_TLS_E_PSK;
    snprintf(msg, sizeof msg, "PSK: unknown identity \"%s\"", s->psk_id);
  } else if (s->psk_used && in_handshake &&
             (got_alert < 0 || got_alert == SSL_AD_BAD_RECORD_MAC || got_alert == SSL_AD_DECRYPT_ERROR ||
              got_alert == SSL_AD_UNKNOWN_PSK_IDENTITY)) {
    /* The identity was known (or we are the client): what fails after the key is in use is the
     * first record protected with it, i.e. the keys differ. */
    code = TC_TLS_E_PSK;
    snprintf(msg, sizeof msg, "PSK handshake failed (wrong key or unknown identity): %s", why);
  } else if (got_alert >= 0) {
    code = TC_TLS_E_ALERT;
    snprintf(msg, sizeof msg, "the peer sent a fatal alert: %s (%d): %s", SSL_alert_desc_string_long(s->alert_received),
             got_alert, why);
  } else {
    snprintf(msg, sizeof msg, "%s", why);
  }
  fail(s, code, msg);
}

static resume_entry *resume_find(tc_tls_ctx *c, const uint8_t *key, size_t len) {
  for (unsigned i = 0; i < TC_TLS_RESUME_MAX; i++)
    if (c->resume[i].sess != NULL && c->resume[i].len == len && memcmp(c->resume[i].key, key, len) == 0) return &c->resume[i];
  return NULL;
}

/* Client: keep the session just established as the one to offer to this server next time. */
static void resume_store(tc_tls *s) {
  tc_tls_ctx *c = s->ctx;
  if (s->rkey_len == 0) return;
  SSL_SESSION *ss = SSL_get1_session(s->ssl);
  if (ss == NULL || !SSL_SESSION_is_resumable(ss)) {
    SSL_SESSION_free(ss);
    return;
  }
  resume_entry *e = resume_find(c, s->rkey, s->rkey_len);
  if (e == NULL) { /* a free entry, else the least recently used */
    e = &c->resume[0];
    for (unsigned i = 0; i < TC_TLS_RESUME_MAX; i++) {
      if (c->resume[i].sess == NULL) {
        e = &c->resume[i];
        break;
      }
      if (c->resume[i].used < e->used) e = &c->resume[i];
    }
  }
  SSL_SESSION_free(e->sess);
  e->sess = ss;
  memcpy(e->key, s->rkey, s->rkey_len);
  e->len = s->rkey_len;
  e->used = ++c->resume_tick;
}

static void handshake_done(tc_tls *s) {
  s->state = TC_TLS_OPEN;
  if (s->ctx->role == TC_TLS_CLIENT) resume_store(s);
  if (s->ctx->role == TC_TLS_CLIENT && s->ctx->alpn == TC_TLS_ALPN_REQUIRE) {
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(s->ssl, &p, &n);
    if (n == 0) fail(s, TC_TLS_E_ALPN, "ALPN: the server did not select \"coap\"");
  }
}

/* Advance the handshake with what is buffered. */
static void drive(tc_tls *s) {
  if (s->state != TC_TLS_HANDSHAKING) return;
  int r = SSL_do_handshake(s->ssl);
  if (r == 1) {
    handshake_done(s);
    return;
  }
  int e = SSL_get_error(s->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  fail_from_openssl(s, e, 1);
}

/* ================================================================ 3. stream I/O */

/* Two memory BIOs: ciphertext in (rbio), ciphertext out (wbio). An empty BIO means "retry",
 * never EOF. A datagram session attaches the record-preserving BIO of part 4 instead. */
static int attach_stream_bios(tc_tls *s) {
  BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
  if (r == NULL || w == NULL) {
    BIO_free(r);
    BIO_free(w);
    return 0;
  }
  BIO_set_mem_eof_return(r, -1);
  BIO_set_mem_eof_return(w, -1);
  SSL_set_bio(s->ssl, r, w);
  s->rbio = r;
  s->wbio = w;
  return 1;
}

/* ================================================================ 4. datagram I/O (DTLS) */

/* A plain memory BIO merges records; this one keeps one datagram per BIO_write/BIO_read, in
 * two bounded FIFOs of the session. No socket, no address: the driver owns both. */

static int dq_push(dq *q, const void *data, size_t n, size_t cap_bytes) {
  if (q->count == TC_DTLS_QUEUE_MAX || q->bytes + n > cap_bytes) return 0;
  uint8_t *p = malloc(n > 0 ? n : 1);
  if (p == NULL) return 0;
  memcpy(p, data, n);
  unsigned i = (q->head + q->count) % TC_DTLS_QUEUE_MAX;
  q->p[i] = p;
  q->n[i] = n;
  q->count++;
  q->bytes += n;
  return 1;
}

/* Pop one datagram into out; a datagram longer than cap is truncated (as recv() would).
 * Returns its length as copied, or -1 when the queue is empty. */
static long dq_pop(dq *q, void *out, size_t cap) {
  if (q->count == 0) return -1;
  unsigned i = q->head;
  size_t n = q->n[i] < cap ? q->n[i] : cap;
  memcpy(out, q->p[i], n);
  free(q->p[i]);
  q->bytes -= q->n[i];
  q->p[i] = NULL;
  q->head = (q->head + 1) % TC_DTLS_QUEUE_MAX;
  q->count--;
  return (long)n;
}

static void dq_clear(dq *q) {
  uint8_t sink[1];
  while (dq_pop(q, sink, 0) >= 0) {}
}

static int dgram_bio_write(BIO *b, const char *in, int n) {
  tc_tls *s = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (s == NULL || n < 0) return -1;
  if (!dq_push(&s->dout, in, (size_t)n, s->ctx->out_cap)) {
    BIO_set_retry_write(b);
    return -1;
  }
  return n;
}

static int dgram_bio_read(BIO *b, char *out, int cap) {
  tc_tls *s = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (s == NULL || cap < 0) return -1;
  long n = dq_pop(&s->din, out, (size_t)cap);
  if (n < 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  return (int)n;
}

static int dgram_bio_puts(BIO *b, const char *str) { return dgram_bio_write(b, str, (int)strlen(str)); }

static long dgram_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  tc_tls *s = BIO_get_data(b);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
  case BIO_CTRL_DUP:
  case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT: /* the caller owns the clock (tc_tls_timeout_ms) */
  case BIO_CTRL_DGRAM_SET_PEER:
  case BIO_CTRL_DGRAM_SET_CONNECTED:
    return 1;
  case BIO_CTRL_PENDING:
    return s != NULL && s->din.count > 0 ? (long)s->din.n[s->din.head] : 0;
  case BIO_CTRL_WPENDING:
    return 0;
  case BIO_CTRL_DGRAM_QUERY_MTU:
  case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
    return s != NULL ? (long)s->ctx->mtu : TC_DTLS_MTU_DEFAULT;
  case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: /* mtu already excludes the IP and UDP headers */
  case BIO_CTRL_DGRAM_MTU_EXCEEDED:
  case BIO_CTRL_DGRAM_GET_PEER:         /* addresses are the driver's business */
  default:
    return 0;
  }
}

static int dgram_bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int dgram_bio_destroy(BIO *b) {
  BIO_set_data(b, NULL);
  return 1;
}

static int dgram_meth_new(tc_tls_ctx *c) {
  BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "turbocoap-dgram");
  if (m == NULL) return 0;
  c->dgram_meth = m;
  return BIO_meth_set_write(m, dgram_bio_write) == 1 && BIO_meth_set_read(m, dgram_bio_read) == 1 &&
         BIO_meth_set_puts(m, dgram_bio_puts) == 1 && BIO_meth_set_ctrl(m, dgram_bio_ctrl) == 1 &&
         BIO_meth_set_create(m, dgram_bio_create) == 1 && BIO_meth_set_destroy(m, dgram_bio_destroy) == 1;
}

static int attach_dgram_bio(tc_tls *s) {
  BIO *b = BIO_new(s->ctx->dgram_meth);
  if (b == NULL) return 0;
  BIO_set_data(b, s);
  SSL_set_bio(s->ssl, b, b); /* one BIO both ways: SSL takes the one reference */
  s->rbio = s->wbio = b;
  s->dgram = 1;
  return 1;
}

/* Stateless cookies (RFC 6347 §4.2.1): HMAC-SHA256(ctx key, peer address). */
static int cookie_make(tc_tls *s, unsigned char *out, unsigned int *len) {
  unsigned int n = 0;
  if (s->peer_len == 0 ||
      HMAC(EVP_sha256(), s->ctx->cookie_key, (int)sizeof s->ctx->cookie_key, s->peer, s->peer_len, out, &n) == NULL)
    return 0;
  *len = n;
  return 1;
}

static int cookie_generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *len) {
  tc_tls *s = SSL_get_app_data(ssl);
  return s != NULL && cookie_make(s, cookie, len);
}

static int cookie_verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int len) {
  tc_tls *s = SSL_get_app_data(ssl);
  unsigned char want[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  return s != NULL && cookie_make(s, want, &n) && n == len && CRYPTO_memcmp(want, cookie, n) == 0;
}

/* The retransmission schedule: retransmit_ms, doubling, at most 60 s. */
static unsigned int dtls_timer_cb(SSL *ssl, unsigned int prev_us) {
  tc_tls *s = SSL_get_app_data(ssl);
  unsigned int first = s != NULL ? s->ctx->retransmit_us : 1000000u;
  if (prev_us == 0) return first;
  return prev_us >= 30000000u ? 60000000u : prev_us * 2;
}

/* The SSL object, its BIO(s) and callbacks; no handshake step yet. */
static tc_tls *session_alloc(tc_tls_ctx *c) {
  tc_tls *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->ctx = c;
  c->refs++;
  s->ssl = SSL_new(c->ssl_ctx);
  if (s->ssl == NULL || !(c->transport == TC_TLS_DATAGRAM ? attach_dgram_bio(s) : attach_stream_bios(s))) {
    tc_tls_free(s);
    return NULL;
  }
  SSL_set_app_data(s->ssl, s);
  SSL_set_info_callback(s->ssl, info_cb);
  if (s->dgram) {
    DTLS_set_timer_cb(s->ssl, dtls_timer_cb);
    SSL_set_mtu(s->ssl, (long)c->mtu);
    /* a record never exceeds the MTU: the write buffer need not be sized for 16 KiB records */
    SSL_set_max_send_fragment(s->ssl, (unsigned)c->mtu);
  }
  return s;
}

/* A memory BIO keeps the largest buffer it ever held. When an open session's BIO is empty and
 * that buffer is larger than 4 KiB, a fresh BIO replaces it: an idle connection holds no
 * transfer-sized buffers (and SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers). */
#define TC_TLS_SHRINK_ABOVE ((size_t)4 * 1024)

static size_t mem_capacity(BIO *b) {
  BUF_MEM *m = NULL;
  BIO_get_mem_ptr(b, &m);
  return m != NULL ? m->max : 0;
}

static void shrink_if_idle(tc_tls *s) {
  if (s->dgram || s->state == TC_TLS_HANDSHAKING) return;
  if (BIO_ctrl_pending(s->rbio) == 0 && mem_capacity(s->rbio) > TC_TLS_SHRINK_ABOVE) {
    BIO *r = BIO_new(BIO_s_mem());
    if (r != NULL) {
      BIO_set_mem_eof_return(r, -1);
      SSL_set0_rbio(s->ssl, r); /* frees the old one */
      s->rbio = r;
    }
  }
  if (BIO_ctrl_pending(s->wbio) == 0 && mem_capacity(s->wbio) > TC_TLS_SHRINK_ABOVE) {
    BIO *w = BIO_new(BIO_s_mem());
    if (w != NULL) {
      BIO_set_mem_eof_return(w, -1);
      SSL_set0_wbio(s->ssl, w);
      s->wbio = w;
    }
  }
}

size_t tc_tls_buffer_bytes(const tc_tls *s) {
  if (s == NULL) return 0;
  if (s->dgram) return s->din.bytes + s->dout.bytes;
  return mem_capacity(s->rbio) + mem_capacity(s->wbio);
}

tc_tls *tc_tls_new(tc_tls_ctx *c, const char *host, char *err, size_t errcap) {
  return tc_tls_new_keyed(c, host, NULL, 0, err, errcap);
}

tc_tls *tc_tls_new_keyed(tc_tls_ctx *c, const char *host, const uint8_t *rkey, size_t rkey_len, char *err, size_t errcap) {
  if (err != NULL && errcap > 0) err[0] = '\0';
  if (c != NULL && c->transport == TC_TLS_DATAGRAM && c->role == TC_TLS_SERVER) {
    set_msg(err, errcap, "tc_tls_new: a DTLS server session starts from tc_dtls_listen (cookie exchange)", NULL);
    return NULL;
  }
  if (c == NULL || (host != NULL && (c->role == TC_TLS_SERVER || strlen(host) == 0 || strlen(host) > 253))) {
    set_msg(err, errcap, "tc_tls_new: no context, or a host on a server / of a bad length", NULL);
    return NULL;
  }
  ERR_clear_error();
  tc_tls *s = session_alloc(c);
  if (s == NULL) {
    set_msg(err, errcap, "out of memory", NULL);
    ERR_clear_error();
    return NULL;
  }
  if (c->role == TC_TLS_CLIENT) {
    SSL_set_connect_state(s->ssl);
    if (rkey == NULL && host != NULL) {
      rkey = (const uint8_t *)host;
      rkey_len = strlen(host);
    }
    if (rkey != NULL && rkey_len > 0 && rkey_len <= sizeof s->rkey) {
      memcpy(s->rkey, rkey, rkey_len);
      s->rkey_len = rkey_len;
      resume_entry *e = resume_find(c, rkey, rkey_len);
      if (e != NULL) {
        e->used = ++c->resume_tick;
        (void)SSL_set_session(s->ssl, e->sess); /* offered; a server that lost it does a full handshake */
      }
    }
    if (host != NULL) {
      memcpy(s->host, host, strlen(host) + 1);
      ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
      s->host_is_ip = ip != NULL;
      ASN1_OCTET_STRING_free(ip);
      ERR_clear_error();
      int ok;
      if (s->host_is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host) == 1;
      } else {
        SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(s->ssl, s->host) == 1 && SSL_set1_host(s->ssl, s->host) == 1;
      }
      if (!ok) {
        char reason[200];
        set_msg(err, errcap, "host name", openssl_reason(reason, sizeof reason, ""));
        tc_tls_free(s);
        return NULL;
      }
    }
    drive(s); /* the ClientHello */
  } else {
    SSL_set_accept_state(s->ssl);
  }
  ERR_clear_error();
  return s;
}

void tc_tls_free(tc_tls *s) {
  if (s == NULL) return;
  SSL_free(s->ssl); /* frees the BIO(s) */
  dq_clear(&s->din);
  dq_clear(&s->dout);
  tc_tls_ctx_free(s->ctx);
  free(s);
}

long tc_tls_feed(tc_tls *s, const uint8_t *ct, size_t len) {
  if (s == NULL || (ct == NULL && len > 0)) return TC_TLS_E_INVALID;
  if (s->state == TC_TLS_FAILED) return s->err;
  if (s->dgram) { /* one datagram; dropped (0) when the queue is full, as a socket would */
    if (len == 0 || !dq_push(&s->din, ct, len, s->ctx->in_cap)) return 0;
    drive(s);
    ERR_clear_error();
    return s->state == TC_TLS_FAILED ? s->err : (long)len;
  }
  size_t buffered = BIO_ctrl_pending(s->rbio);
  size_t room = s->ctx->in_cap > buffered ? s->ctx->in_cap - buffered : 0;
  size_t n = len < room ? len : room;
  if (n > 0 && BIO_write(s->rbio, ct, (int)n) != (int)n) {
    ERR_clear_error();
    fail(s, TC_TLS_E_NOMEM, "out of memory buffering ciphertext");
    return s->err;
  }
  drive(s);
  ERR_clear_error();
  return s->state == TC_TLS_FAILED ? s->err : (long)n;
}

long tc_tls_read(tc_tls *s, uint8_t *out, size_t cap) {
  if (s == NULL || (out == NULL && cap > 0)) return TC_TLS_E_INVALID;
  if (s->state == TC_TLS_FAILED) return s->err;
  drive(s);
  if (s->state == TC_TLS_HANDSHAKING || s->state == TC_TLS_FAILED) {
    ERR_clear_error();
    return s->state == TC_TLS_FAILED ? s->err : 0;
  }
  size_t got = 0;
  while (got < cap) {
    size_t n = 0;
    size_t want = cap - got < (size_t)INT_MAX ? cap - got : (size_t)INT_MAX;
    int r = SSL_read_ex(s->ssl, out + got, want, &n);
    if (r == 1) {
      got += n;
      if (s->dgram) break; /* one record is one message */
      continue;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
      if (s->state == TC_TLS_OPEN) s->state = TC_TLS_PEER_CLOSED;
      else if (s->state == TC_TLS_CLOSING) s->state = TC_TLS_CLOSED;
      break;
    }
    fail_from_openssl(s, e, 0);
    break;
  }
  shrink_if_idle(s);
  ERR_clear_error();
  if (got > 0) return (long)got;
  return s->state == TC_TLS_FAILED ? s->err : 0;
}

long tc_tls_write(tc_tls *s, const uint8_t *pt, size_t len) {
  if (s == NULL || (pt == NULL && len > 0)) return TC_TLS_E_INVALID;
  if (s->state == TC_TLS_FAILED) return s->err;
  if (s->sent_close) return TC_TLS_E_CLOSED;
  drive(s);
  if (s->state == TC_TLS_HANDSHAKING || s->state == TC_TLS_FAILED) {
    ERR_clear_error();
    return s->state == TC_TLS_FAILED ? s->err : 0;
  }
  if (s->dgram) { /* one message, one record, one datagram */
    size_t n = 0;
    if (len == 0 || len > DTLS_get_data_mtu(s->ssl)) return TC_TLS_E_INVALID;
    if (SSL_write_ex(s->ssl, pt, len, &n) != 1) {
      int e = SSL_get_error(s->ssl, 0);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) fail_from_openssl(s, e, 0);
      ERR_clear_error();
      return s->state == TC_TLS_FAILED ? s->err : 0;
    }
    return (long)n;
  }
  size_t off = 0;
  while (off < len) {
    size_t pending = BIO_ctrl_pending(s->wbio);
    if (pending + TC_TLS_RECORD_SLACK >= s->ctx->out_cap) break;
    size_t room = s->ctx->out_cap - pending - TC_TLS_RECORD_SLACK;
    size_t chunk = len - off;
    if (chunk > SSL3_RT_MAX_PLAIN_LENGTH) chunk = SSL3_RT_MAX_PLAIN_LENGTH;
    if (chunk > room) chunk = room;
    size_t n = 0;
    if (SSL_write_ex(s->ssl, pt + off, chunk, &n) != 1) {
      int e = SSL_get_error(s->ssl, 0);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      fail_from_openssl(s, e, 0);
      break;
    }
    off += n;
  }
  ERR_clear_error();
  if (off > 0) return (long)off;
  return s->state == TC_TLS_FAILED ? s->err : 0;
}

size_t tc_tls_pending_out(const tc_tls *s) {
  if (s == NULL) return 0;
  return s->dgram ? s->dout.bytes : BIO_ctrl_pending(s->wbio);
}

long tc_tls_take_out(tc_tls *s, uint8_t *out, size_t cap) {
  if (s == NULL || (out == NULL && cap > 0)) return TC_TLS_E_INVALID;
  if (s->dgram) { /* one datagram; it never splits */
    if (s->dout.count == 0) return 0;
    if (cap < s->dout.n[s->dout.head]) return TC_TLS_E_INVALID;
    return dq_pop(&s->dout, out, cap);
  }
  if (cap == 0 || BIO_ctrl_pending(s->wbio) == 0) return 0;
  int n = BIO_read(s->wbio, out, cap > (size_t)INT_MAX ? INT_MAX : (int)cap);
  shrink_if_idle(s);
  ERR_clear_error();
  return n > 0 ? (long)n : 0;
}

int tc_tls_close(tc_tls *s) {
  if (s == NULL) return TC_TLS_E_INVALID;
  if (s->state == TC_TLS_FAILED) return s->err;
  if (s->sent_close) return 0;
  s->sent_close = 1;
  if (s->state == TC_TLS_HANDSHAKING) { /* nothing to protect yet: the transport's close says it */
    s->state = TC_TLS_CLOSED;
    return 0;
  }
  (void)SSL_shutdown(s->ssl); /* queues close_notify in wbio */
  ERR_clear_error();
  s->state = s->state == TC_TLS_PEER_CLOSED ? TC_TLS_CLOSED : TC_TLS_CLOSING;
  return 0;
}

tc_tls_state tc_tls_get_state(const tc_tls *s) { return s != NULL ? s->state : TC_TLS_FAILED; }
int tc_tls_error(const tc_tls *s) { return s != NULL ? s->err : TC_TLS_E_INVALID; }
const char *tc_tls_errmsg(const tc_tls *s) { return s != NULL ? s->errmsg : "no session"; }

int tc_tls_get_info(const tc_tls *s, tc_tls_info *o) {
  if (s == NULL || o == NULL) return TC_TLS_E_INVALID;
  memset(o, 0, sizeof *o);
  int done = SSL_is_init_finished(s->ssl);
  o->version = done ? SSL_version(s->ssl) : 0;
  const SSL_CIPHER *ci = done ? SSL_get_current_cipher(s->ssl) : NULL;
  if (ci != NULL) snprintf(o->cipher, sizeof o->cipher, "%s", SSL_CIPHER_get_name(ci));
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(s->ssl, &p, &n);
  if (p != NULL && n < sizeof o->alpn) {
    memcpy(o->alpn, p, n);
    o->alpn[n] = '\0';
  }
  const char *sn = s->ctx->role == TC_TLS_CLIENT ? (s->host_is_ip ? NULL : s->host)
                                                 : SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
  if (sn != NULL) snprintf(o->servername, sizeof o->servername, "%s", sn);
  const SSL_CIPHER *cs = SSL_get_current_cipher(s->ssl);
  if (s->psk_used || (SSL_session_reused(s->ssl) && cs != NULL && SSL_CIPHER_get_auth_nid(cs) == NID_auth_psk)) {
    const char *id = s->ctx->role == TC_TLS_CLIENT ? s->ctx->psk_identity : SSL_get_psk_identity(s->ssl);
    if (id != NULL) snprintf(o->psk_identity, sizeof o->psk_identity, "%s", id);
  }
  X509 *pc = SSL_get0_peer_certificate(s->ssl);
  o->peer_cert = pc != NULL;
  if (pc != NULL) {
    X509_NAME *subj = X509_get_subject_name(pc);
    int k = subj != NULL ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    ASN1_STRING *d = k >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, k)) : NULL;
    unsigned char *u = NULL;
    int ul = d != NULL ? ASN1_STRING_to_UTF8(&u, d) : -1;
    if (ul > 0) {
      size_t n = (size_t)ul < sizeof o->peer_cn - 1u ? (size_t)ul : sizeof o->peer_cn - 1u;
      memcpy(o->peer_cn, u, n);
      o->peer_cn[n] = '\0';
    }
    OPENSSL_free(u);
    ERR_clear_error();
  }
  o->verify_result = !o->peer_cert ? -1 : s->first_verify_error != 0 ? s->first_verify_error : SSL_get_verify_result(s->ssl);
  o->alert_sent = s->alert_sent;
  o->alert_received = s->alert_received;
  o->session_reused = SSL_session_reused(s->ssl);
  return 0;
}

int tc_tls_session_reused(const tc_tls *s) { return s != NULL && SSL_session_reused(s->ssl) == 1; }

/* ================================================================ DTLS: timers and listen */

long tc_tls_timeout_ms(tc_tls *s) {
  if (s == NULL || !s->dgram || s->state == TC_TLS_FAILED) return -1;
  struct timeval tv;
  if (DTLSv1_get_timeout(s->ssl, &tv) != 1) return -1;
  return (long)tv.tv_sec * 1000 + ((long)tv.tv_usec + 999) / 1000;
}

int tc_tls_on_timeout(tc_tls *s) {
  if (s == NULL) return TC_TLS_E_INVALID;
  if (s->state == TC_TLS_FAILED) return s->err;
  if (!s->dgram) return 0;
  long r = DTLSv1_handle_timeout(s->ssl);
  if (r < 0) fail_from_openssl(s, SSL_ERROR_SSL, s->state == TC_TLS_HANDSHAKING);
  ERR_clear_error();
  return s->state == TC_TLS_FAILED ? s->err : (r > 0 ? 1 : 0);
}

size_t tc_tls_max_plaintext(const tc_tls *s) {
  if (s == NULL) return 0;
  return s->dgram ? DTLS_get_data_mtu(s->ssl) : SSL3_RT_MAX_PLAIN_LENGTH;
}

int tc_dtls_listen(tc_tls_ctx *c, const uint8_t *dgram, size_t len, const uint8_t *peer, size_t peer_len,
                   uint8_t *out, size_t cap, size_t *out_len, tc_tls **accepted) {
  if (out_len != NULL) *out_len = 0;
  if (accepted != NULL) *accepted = NULL;
  if (c == NULL || c->transport != TC_TLS_DATAGRAM || c->role != TC_TLS_SERVER || dgram == NULL || peer == NULL ||
      peer_len == 0 || peer_len > TC_DTLS_PEER_MAX || out_len == NULL || accepted == NULL || (out == NULL && cap > 0))
    return TC_TLS_E_INVALID;
  /* Only a handshake record (content type 22, DTLS version major 0xFE) can open a session;
   * anything else is dropped before a byte is allocated. */
  if (len < 13 + 12 || dgram[0] != 22 || dgram[1] != 0xFE) return TC_DTLS_DROP;
  ERR_clear_error();
  tc_tls *s = session_alloc(c);
  if (s == NULL) return TC_TLS_E_NOMEM;
  memcpy(s->peer, peer, peer_len);
  s->peer_len = peer_len;
  SSL_set_accept_state(s->ssl);
  BIO_ADDR *client = BIO_ADDR_new();
  int r = -1;
  if (client != NULL && dq_push(&s->din, dgram, len, c->in_cap)) r = DTLSv1_listen(s->ssl, client);
  BIO_ADDR_free(client);
  int ret = TC_DTLS_DROP;
  if (r == 1) { /* a valid cookie: the session continues from this ClientHello */
    drive(s);
    *accepted = s;
    ERR_clear_error();
    return TC_DTLS_ACCEPT;
  }
  if (s->dout.count > 0 && cap >= s->dout.n[s->dout.head]) {
    long n = dq_pop(&s->dout, out, cap);
    *out_len = (size_t)n;
    ret = TC_DTLS_HELLO_VERIFY;
  }
  tc_tls_free(s);
  ERR_clear_error();
  return ret;
}

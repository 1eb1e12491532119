/*
 * glue_stream.c — the WebAssembly exports of the connection driver (native/driver/stream.h,
 * built without TC_WITH_TLS: TLS and WebSockets are JavaScript's) for
 * ts/transport/stream-wasm.ts, which owns the sockets (node:net, node:tls, ws, the browser's
 * WebSocket) and does what the driver's answers ask.
 *
 * Thin like glue.c: argument conversion and the handle's memory. A handle starts with the
 * TCB_WASM_STREAM_WORDS info words JS reads after every call (pointers are offsets into
 * linear memory):
 *  - the batch (record table and byte area, as tcw_udp's);
 *  - an input area: a chunk of a connection's byte stream, or one WebSocket message, or the
 *    address words (and identity bytes) of tcw_stream_open / tcw_stream_event;
 *  - the tx record areas tcw_stream_flush runs;
 *  - the out list: what tcw_stream_collect found for JS to write (TCB_WASM_OUT entries:
 *    connection id, WRITE or CLOSE, the bytes). JS writes an entry's bytes to the socket
 *    and puts the count it took into the entry's DONE word (0: the socket is congested, the
 *    bytes stay with the connection until tcw_stream_kick), then tcw_stream_wrote reports
 *    them. Every pointer in the list stays valid until the next call (stream.c without TLS
 *    hands out each connection's own buffer, which only the connection's next input,
 *    request, response or timer appends to).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "addr.h"
#include "stream.h"

/* Exported to JS; scripts/build-wasm.mjs lists every TCW_API function. */
#define TCW_API __attribute__((used, visibility("default")))

#define TCW_OUT_ITEMS 1024u
#define TCW_IN_MIN 65536u

#define OUT_WRITE 1u
#define OUT_CLOSE 2u

_Static_assert(sizeof(tc_conn_config) == 4u * TC_CONN_CONFIG_WORDS, "tc_conn_config words");
_Static_assert(sizeof(tcs_limits) == 16u, "tcs_limits words");

typedef struct tcw_stream {
  uint32_t info[TCB_WASM_STREAM_WORDS];
  tcs_stream *s;
  uint8_t *in;
  uint32_t *txw;
  uint8_t *txb;
  uint32_t *out;
  uint32_t out_count;
  tcs_host_stats stats;
} tcw_stream;

static void st_info(tcw_stream *h) {
  const tcb_rx *b = tcs_batch(h->s);
  h->info[TCB_WASM_STREAM_RX_USED] = b->word_used;
  h->info[TCB_WASM_STREAM_RX_DATA_USED] = b->data_used;
  h->info[TCB_WASM_STREAM_RX_COUNT] = b->count;
}

static void st_free(tcw_stream *h) {
  if (h == NULL) return;
  tcs_destroy(h->s);
  free(h->in);
  free(h->txw);
  free(h->txb);
  free(h->out);
  free(h);
}

/**
 * A new driver: cfg_words words of stream config (tc_conn_config, tc_srv_config, tcs_limits:
 * TypeScript STREAM_CONFIG_WORDS), seed TCA_SEED_BYTES bytes (both borrowed, e.g. staged in
 * tcw_table / tcw_bytes); txw_words / txb_bytes size the tx record areas. Returns the handle
 * (its info words), or 0 for an invalid config or no memory.
 */
TCW_API tcw_stream *tcw_stream_create(const uint32_t *cfg, uint32_t cfg_words, const uint8_t *seed,
                                      uint32_t txw_words, uint32_t txb_bytes) {
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  tcw_stream *h;
  uint32_t in_cap;
  int err;
  if (cfg == NULL || cfg_words != (sizeof cc + sizeof sc + sizeof lim) / 4u || txw_words == 0 ||
      txb_bytes == 0 || txw_words > (1u << 26))
    return NULL;
  memcpy(&cc, cfg, sizeof cc);
  memcpy(&sc, cfg + sizeof cc / 4u, sizeof sc);
  memcpy(&lim, cfg + (sizeof cc + sizeof sc) / 4u, sizeof lim);
  if (cc.max_message_size > (1u << 24)) return NULL;
  in_cap = cc.max_message_size + 1024u > TCW_IN_MIN ? cc.max_message_size + 1024u : TCW_IN_MIN;
  h = (tcw_stream *)calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->s = tcs_create(&cc, &sc, &lim, seed, TCA_SEED_BYTES, &err);
  h->in = (uint8_t *)malloc(in_cap);
  h->txw = (uint32_t *)malloc((size_t)txw_words * 4u);
  h->txb = (uint8_t *)malloc(txb_bytes);
  h->out = (uint32_t *)malloc(TCW_OUT_ITEMS * TCB_WASM_OUT_WORDS * 4u);
  if (h->s == NULL || h->in == NULL || h->txw == NULL || h->txb == NULL || h->out == NULL) {
    st_free(h);
    return NULL;
  }
  h->info[TCB_WASM_STREAM_RX_WORDS] = (uint32_t)(uintptr_t)tcs_batch(h->s)->words;
  h->info[TCB_WASM_STREAM_RX_DATA] = (uint32_t)(uintptr_t)tcs_batch(h->s)->data;
  h->info[TCB_WASM_STREAM_IN] = (uint32_t)(uintptr_t)h->in;
  h->info[TCB_WASM_STREAM_IN_CAP] = in_cap;
  h->info[TCB_WASM_STREAM_TXW] = (uint32_t)(uintptr_t)h->txw;
  h->info[TCB_WASM_STREAM_TXW_CAP] = txw_words;
  h->info[TCB_WASM_STREAM_TXB] = (uint32_t)(uintptr_t)h->txb;
  h->info[TCB_WASM_STREAM_TXB_CAP] = txb_bytes;
  h->info[TCB_WASM_STREAM_OUT] = (uint32_t)(uintptr_t)h->out;
  h->info[TCB_WASM_STREAM_MAX_BODY] = sc.bw1.max_body;
  h->info[TCB_WASM_STREAM_STATS] = (uint32_t)(uintptr_t)&h->stats;
  st_info(h);
  return h;
}

TCW_API void tcw_stream_free(tcw_stream *h) { st_free(h); }

/** A connection is up (accepted, or connected): id, the peer's address words at in[0..).
 *  tcs_open's answer (TCS_WRITE, or TC_E_FULL: a bound, close the socket). */
TCW_API int tcw_stream_open(tcw_stream *h, double now, uint32_t id) {
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen = tcb_words_to_addr((const uint32_t *)(void *)h->in, addr);
  int rc;
  if (alen == 0) return TC_E_INVALID;
  rc = tcs_open(h->s, (uint64_t)now, id, addr, alen);
  st_info(h);
  return rc;
}

/** Bytes of connection id at in[off..off+len): tcs_recv's answer; info IN_USED = bytes taken
 *  (TCS_DELIVER / TCS_PAUSE: call again with the rest, from the input area or restaged). */
TCW_API int tcw_stream_recv(tcw_stream *h, double now, uint32_t id, uint32_t off, uint32_t len) {
  uint32_t used = 0;
  int rc;
  if (off > h->info[TCB_WASM_STREAM_IN_CAP] || len > h->info[TCB_WASM_STREAM_IN_CAP] - off)
    return TC_E_INVALID;
  rc = tcs_recv(h->s, (uint64_t)now, id, h->in + off, len, &used);
  h->info[TCB_WASM_STREAM_IN_USED] = used;
  st_info(h);
  return rc;
}

/**
 * The connections with work, in order (tcs_next_out), as out list entries: WRITE with the
 * bytes of tcs_out (TCP: everything pending; WS: the next message), CLOSE (closed and
 * drained: close the socket, then tcw_stream_close). Returns the count.
 */
TCW_API uint32_t tcw_stream_collect(tcw_stream *h) {
  uint32_t n = 0, id;
  int what;
  while (n < TCW_OUT_ITEMS && (what = tcs_next_out(h->s, &id)) != TCS_OUT_NONE) {
    uint32_t *e = h->out + n * TCB_WASM_OUT_WORDS, len = 0;
    const uint8_t *p = NULL;
    if (what == TCS_OUT_WRITE) p = tcs_out(h->s, id, &len);
    e[TCB_WASM_OUT_ID] = id;
    e[TCB_WASM_OUT_OP] = what == TCS_OUT_WRITE ? OUT_WRITE : OUT_CLOSE;
    e[TCB_WASM_OUT_OFF] = (uint32_t)(uintptr_t)p;
    e[TCB_WASM_OUT_LEN] = len;
    e[TCB_WASM_OUT_DONE] = 0;
    n++;
  }
  h->out_count = n;
  return n;
}

/** The first count entries of the out list were handled: tcs_written with each WRITE entry's
 *  DONE word (0: none written, the connection waits for tcw_stream_kick). Connections with
 *  more to do are queued again (call tcw_stream_collect until it finds none). Returns the
 *  entries whose connection has more bytes to write. */
TCW_API uint32_t tcw_stream_wrote(tcw_stream *h, uint32_t count) {
  uint32_t i, more = 0;
  if (count > h->out_count) count = h->out_count;
  for (i = 0; i < count; i++) {
    const uint32_t *e = h->out + i * TCB_WASM_OUT_WORDS;
    uint32_t done = e[TCB_WASM_OUT_DONE];
    if (e[TCB_WASM_OUT_OP] != OUT_WRITE || done == 0u) continue;
    if (done > e[TCB_WASM_OUT_LEN]) done = e[TCB_WASM_OUT_LEN];
    if (tcs_written(h->s, e[TCB_WASM_OUT_ID], done) == TCS_WRITE) more++;
  }
  h->out_count = 0;
  return more;
}

/** The socket of connection id can take bytes again: queue what it has (tcs_written 0). */
TCW_API int tcw_stream_kick(tcw_stream *h, uint32_t id) { return tcs_written(h->s, id, 0); }

/** tcs_timer. */
TCW_API int tcw_stream_timer(tcw_stream *h, double now) {
  int rc = tcs_timer(h->s, (uint64_t)now);
  st_info(h);
  return rc;
}

/** tcs_deadline (ms on the host's clock; Infinity: none). */
TCW_API double tcw_stream_deadline(tcw_stream *h) {
  uint64_t d = tcs_deadline(h->s);
  return d == UINT64_MAX ? __builtin_inf() : (double)d;
}

/** tcs_flush over the records staged in the handle's tx areas: words [.., nwords), bytes
 *  [0, nbytes). TCS_WRITE (write, call again), TCS_DONE (info TX_FAILED) or a TC_E_*. */
TCW_API int tcw_stream_flush(tcw_stream *h, double now, uint32_t nwords, uint32_t nbytes) {
  int rc;
  if (nwords > h->info[TCB_WASM_STREAM_TXW_CAP] || nbytes > h->info[TCB_WASM_STREAM_TXB_CAP])
    return TC_E_INVALID;
  rc = tcs_flush(h->s, (uint64_t)now, h->txw, nwords, h->txb, nbytes);
  h->info[TCB_WASM_STREAM_TX_FAILED] = tcs_tx_failed(h->s);
  st_info(h);
  return rc;
}

/** tcs_delivered: JS copied the batch out. */
TCW_API void tcw_stream_delivered(tcw_stream *h) {
  tcs_delivered(h->s);
  st_info(h);
}

/** tcs_read_body into out (cap bytes, e.g. a tcw_malloc block). */
TCW_API int tcw_stream_read_body(tcw_stream *h, uint32_t id, uint8_t *out, uint32_t cap) {
  return tcs_read_body(h->s, id, out, cap);
}

/** The room a CLOSED record needs (stream.c drops it silently without). */
static int room_for_record(const tcw_stream *h) {
  const tcb_rx *b = tcs_batch(h->s);
  return b->word_cap - b->word_used >= TCB_RX_MAX_WORDS;
}

/**
 * tcs_host_event: an OPEN record (the peer's address words at in[0..), its identity at
 * in[TCB_ADDR_WORDS * 4..+dlen)) or a CLOSED record of a connection the driver never had
 * (dlen < 0: no address). 0, TC_E_FULL (deliver, call again) or TC_E_INVALID.
 */
TCW_API int tcw_stream_event(tcw_stream *h, uint32_t kind, uint32_t id, int32_t status,
                             uint32_t flags, int32_t dlen) {
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen = 0;
  int rc;
  if (dlen > (int32_t)(h->info[TCB_WASM_STREAM_IN_CAP] - TCB_ADDR_WORDS * 4u)) return TC_E_INVALID;
  if (dlen >= 0) {
    alen = tcb_words_to_addr((const uint32_t *)(void *)h->in, addr);
    if (alen == 0) return TC_E_INVALID;
  }
  rc = tcs_host_event(h->s, kind, id, dlen >= 0 ? addr : NULL, alen, status, flags,
                      h->in + TCB_ADDR_WORDS * 4u, dlen > 0 ? (uint32_t)dlen : 0u);
  st_info(h);
  return rc;
}

/** The socket of connection id is gone: tcs_close_status (its CLOSED record carries status
 *  and flags unless the driver closed it first). TC_E_FULL: deliver the batch first. */
TCW_API int tcw_stream_close(tcw_stream *h, double now, uint32_t id, int32_t status,
                             uint32_t flags) {
  int rc;
  if (!room_for_record(h)) return TC_E_FULL;
  rc = tcs_close_status(h->s, (uint64_t)now, id, status, flags);
  st_info(h);
  return rc;
}

/** tcs_shutdown: close connection id gracefully (TCS_WRITE, or TCS_DELIVER: call again). */
TCW_API int tcw_stream_shutdown(tcw_stream *h, double now, uint32_t id) {
  int rc = tcs_shutdown(h->s, (uint64_t)now, id);
  st_info(h);
  return rc;
}

/** tcs_abort with the diagnostic at in[0..dlen) (UTF-8, at most 255 bytes): TCS_WRITE, or
 *  TCS_DELIVER (deliver, call again). */
TCW_API int tcw_stream_abort(tcw_stream *h, double now, uint32_t id, uint32_t dlen) {
  char diag[256];
  int rc;
  if (dlen > 255u) dlen = 255u;
  memcpy(diag, h->in, dlen);
  diag[dlen] = '\0';
  rc = tcs_abort(h->s, (uint64_t)now, id, dlen > 0u ? diag : NULL);
  st_info(h);
  return rc;
}

/** Refreshes the stats struct at info STATS (the host block is JS's own: left 0 here). */
TCW_API void tcw_stream_stats(tcw_stream *h) {
  h->stats.st = *tcs_get_stats(h->s);
  tc_srv_get_stats(tcs_srv(h->s), &h->stats.srv);
}

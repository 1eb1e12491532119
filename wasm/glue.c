/*
 * glue.c — the WebAssembly exports: the codec, deframer and option registry (as the native
 * addon offers them), the driver ABI and the datagram driver.
 *
 * Thin by design: argument conversion only, one core call per function. The
 * scratch area is static here (the glue may own statics; the core may not):
 *   tcw_table: TC_MSG_WORDS + TC_OPT_WORDS * TCW_CAP words
 *   tcw_bytes: TCW_BYTES bytes
 * with the same layout and meaning as the native addon's scratch. JS reads
 * and writes them through views of the linear memory, re-created whenever the
 * memory grows. Larger inputs, tables and deframer instances live in blocks
 * from tcw_malloc / tcw_free.
 *
 * Every pointer argument is an offset into linear memory that JS obtained from
 * tcw_table(), tcw_bytes() or tcw_malloc().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dgram.h"
#include "ep_batch.h"
#include "turbocoap.h"

/* Exported to JS; scripts/build-wasm.mjs lists every TCW_API function. */
#define TCW_API __attribute__((used, visibility("default")))

#define TCW_CAP 1024u
#define TCW_BYTES 65536u

_Static_assert(sizeof(size_t) == 4, "wasm32");
_Static_assert(sizeof(tc_msg) == TC_MSG_WORDS * 4, "tc_msg layout");
_Static_assert(sizeof(tc_opt) == TC_OPT_WORDS * 4, "tc_opt layout");
_Static_assert(sizeof(tc_frame) == TC_FRAME_WORDS * 4, "tc_frame layout");
_Static_assert(TC_FRAME_WORDS == TC_OPT_WORDS, "frames share the option area");

static uint32_t tcw_table_[TC_MSG_WORDS + TC_OPT_WORDS * TCW_CAP];
static uint8_t tcw_bytes_[TCW_BYTES];

static uint32_t cap_of(uint32_t words) {
  return words < TC_MSG_WORDS ? 0u : (words - TC_MSG_WORDS) / TC_OPT_WORDS;
}

/* ------------------------------------------------------------------ layout */

TCW_API uint32_t *tcw_table(void) { return tcw_table_; }
TCW_API uint32_t tcw_table_words(void) { return TC_MSG_WORDS + TC_OPT_WORDS * TCW_CAP; }
TCW_API uint8_t *tcw_bytes(void) { return tcw_bytes_; }
TCW_API uint32_t tcw_bytes_size(void) { return TCW_BYTES; }

/** Heap blocks for large inputs/tables and deframers; 0 when out of memory. */
TCW_API void *tcw_malloc(uint32_t n) { return malloc(n ? n : 1); }
TCW_API void tcw_free(void *p) { free(p); }

/* ------------------------------------------------------------------- codec */

/** Decode in[0..len) into the static table. */
TCW_API int tcw_decode(const uint8_t *in, uint32_t len, int transport) {
  return tc_decode(in, len, transport, (tc_msg *)tcw_table_,
                   (tc_opt *)(tcw_table_ + TC_MSG_WORDS), TCW_CAP);
}

/** Decode in[0..len) into a caller table of `words` words. */
TCW_API int tcw_decode_with(const uint8_t *in, uint32_t len, int transport, uint32_t *table,
                                uint32_t words) {
  if (cap_of(words) == 0) return TC_E_INVALID;
  return tc_decode(in, len, transport, (tc_msg *)table, (tc_opt *)(table + TC_MSG_WORDS),
                   cap_of(words));
}

/** Encode from a table of `words` words; sources at buf[0..), output at
 *  buf[out_offset..len). */
TCW_API int tcw_encode_with(int transport, uint32_t *table, uint32_t words, uint8_t *buf,
                                uint32_t len, uint32_t out_offset) {
  const tc_msg *msg = (const tc_msg *)table;
  tc_opt *opts = (tc_opt *)(table + TC_MSG_WORDS);
  if (out_offset > len || msg->option_count > cap_of(words) ||
      !tcb_msg_sources_ok(msg, opts, len)) /* tc_encode reads the sources unchecked */
    return TC_E_INVALID;
  return tc_encode(buf + out_offset, len - out_offset, transport, msg, opts, buf);
}

/** Encode from the static scratch; output at tcw_bytes + out_offset. */
TCW_API int tcw_encode(int transport, uint32_t out_offset) {
  return tcw_encode_with(transport, tcw_table_, TC_MSG_WORDS + TC_OPT_WORDS * TCW_CAP, tcw_bytes_,
                         TCW_BYTES, out_offset);
}

/* ---------------------------------------------------------------- deframer */

TCW_API uint32_t tcw_deframer_size(uint32_t max) {
  return (uint32_t)tc_deframer_size(max); /* wasm32: size_t is 32 bits, 0 if too large */
}

TCW_API int tcw_deframer_init(tc_deframer *d, uint32_t mem_len, uint32_t max) {
  return tc_deframer_init(d, mem_len, max);
}

/** Feed chunk[0..len): consumed to table[0], frames from table[TC_MSG_WORDS]. */
TCW_API int tcw_deframer_feed(tc_deframer *d, const uint8_t *chunk, uint32_t len) {
  size_t consumed = 0;
  int n = tc_deframer_feed(d, chunk, len, &consumed, (tc_frame *)(tcw_table_ + TC_MSG_WORDS),
                           TCW_CAP);
  tcw_table_[0] = (uint32_t)consumed;
  return n;
}

TCW_API uint8_t *tcw_deframer_buffer(tc_deframer *d) { return tc_deframer_buffer(d); }

TCW_API uint32_t tcw_deframer_pending(const tc_deframer *d) { return tc_deframer_pending(d); }

/* ------------------------------------------------------- registry, names */

static int put_name(const char *name) {
  size_t n = strlen(name);
  if (n > TCW_BYTES) return -1;
  memcpy(tcw_bytes_, name, n);
  return (int)n;
}

TCW_API uint32_t tcw_option_count(void) { return tc_option_registry_count(); }

/** Entry i: table[0..5] = number, format, repeatable, min, max, signal_code;
 *  name in tcw_bytes; returns the name length or -1. */
TCW_API int tcw_option_at(uint32_t i) {
  const tc_option_def *def = tc_option_registry_at(i);
  if (def == NULL) return -1;
  tcw_table_[0] = def->number;
  tcw_table_[1] = def->format;
  tcw_table_[2] = def->repeatable;
  tcw_table_[3] = def->min_length;
  tcw_table_[4] = def->max_length;
  tcw_table_[5] = def->signal_code;
  return put_name(def->name);
}

/** Registry index of tc_option_find(code, number), or -1. */
TCW_API int tcw_option_find(uint32_t code, uint32_t number) {
  const tc_option_def *def = tc_option_find(code, number);
  uint32_t i, count = tc_option_registry_count();
  if (def == NULL) return -1;
  for (i = 0; i < count; i++)
    if (tc_option_registry_at(i) == def) return (int)i;
  return -1;
}

/** Name of an error code into tcw_bytes; returns its length. */
TCW_API int tcw_error_name(int err) { return put_name(tc_error_name(err)); }

/* ------------------------------------------------------------------ driver ABI */

/** The layout this module was compiled with (native/driver/abi.h): ts/driver/abi.ts compares. */
TCW_API uint32_t tcw_abi_hash(void) { return tca_hash(); }
TCW_API const uint32_t *tcw_abi_layout(void) { return tca_layout(); }
TCW_API uint32_t tcw_abi_layout_words(void) { return tca_layout_words(); }

/* ------------------------------------------------------- CoAP/UDP endpoint */
/*
 * The datagram driver (native/driver/dgram.h) for ts/transport/udp-wasm.ts, which owns the
 * node:dgram socket and does what the driver's calls ask (TCD_SEND, TCD_DELIVER). A handle
 * starts with the TCB_WASM_INFO_WORDS info words JS reads after every call.
 */
#define TCW_RX_WORDS (1u << 15)
#define TCW_RX_DATA (256u * 1024u)
#define TCW_TXQ_ITEMS 256u
#define TCW_TXQ_BYTES (512u * 1024u)
#define TCW_IN_CAP (TCB_WASM_IN_DATA + 65536u)

typedef struct tcw_udp {
  uint32_t info[TCB_WASM_INFO_WORDS];
  tcd_dgram *d;
  uint8_t *in;
  uint32_t *txw;
  uint8_t *txb;
  uint32_t *send; /* TCW_TXQ_ITEMS send list entries */
} tcw_udp;

_Static_assert(TCB_ADDR_WORDS * 4u <= TCB_WASM_IN_DATA, "the address words fit before the datagram");
_Static_assert(TCB_WASM_SEND_FAMILY == 0 && TCB_WASM_SEND_SCOPE == TCB_ADDR_WORDS - 1,
               "a send entry starts with the address words");

static void udp_info(tcw_udp *u) {
  uint64_t dl = tcd_deadline(u->d);
  u->info[TCB_WASM_INFO_RX_WORDS] = (uint32_t)(uintptr_t)u->d->rx.words;
  u->info[TCB_WASM_INFO_RX_USED] = u->d->rx.word_used;
  u->info[TCB_WASM_INFO_RX_DATA] = (uint32_t)(uintptr_t)u->d->rx.data;
  u->info[TCB_WASM_INFO_RX_DATA_USED] = u->d->rx.data_used;
  u->info[TCB_WASM_INFO_RX_COUNT] = u->d->rx.count;
  u->info[TCB_WASM_INFO_TX_COUNT] = u->d->txq.count;
  u->info[TCB_WASM_INFO_DEADLINE] = (uint32_t)dl;
  u->info[TCB_WASM_INFO_DEADLINE + 1] = (uint32_t)(dl >> 32);
  u->info[TCB_WASM_INFO_TX_FAILED] = u->d->tx_failed;
}

static void udp_free(tcw_udp *u) {
  if (u == NULL) return;
  tcd_destroy(u->d);
  free(u->in);
  free(u->txw);
  free(u->txb);
  free(u->send);
  free(u);
}

/**
 * A new endpoint: cfg_words words of driver config (tc_ep_config then tc_srv_config), seed
 * TCA_SEED_BYTES bytes of entropy (both borrowed, e.g. staged in tcw_table / tcw_bytes);
 * txw_words / txb_bytes size the tx record areas. Returns the handle (its info words), or 0
 * for an invalid config or no memory.
 */
TCW_API tcw_udp *tcw_udp_create(const uint32_t *cfg, uint32_t cfg_words, const uint8_t *seed,
                                uint32_t txw_words, uint32_t txb_bytes) {
  static const tcd_limits lim = {TCW_RX_WORDS, TCW_RX_DATA, TCW_TXQ_ITEMS, TCW_TXQ_BYTES};
  tcw_udp *u;
  int err;
  if (txw_words == 0 || txb_bytes == 0 || txw_words > (1u << 26)) return NULL;
  u = (tcw_udp *)calloc(1, sizeof *u);
  if (u == NULL) return NULL;
  u->d = tcd_create(cfg, cfg_words, seed, TCA_SEED_BYTES, &lim, &err);
  u->in = (uint8_t *)malloc(TCW_IN_CAP);
  u->txw = (uint32_t *)malloc((size_t)txw_words * 4u);
  u->txb = (uint8_t *)malloc(txb_bytes);
  u->send = (uint32_t *)malloc(TCW_TXQ_ITEMS * TCB_WASM_SEND_WORDS * 4u);
  if (u->d == NULL || u->in == NULL || u->txw == NULL || u->txb == NULL || u->send == NULL) {
    udp_free(u);
    return NULL;
  }
  u->info[TCB_WASM_INFO_IN] = (uint32_t)(uintptr_t)u->in;
  u->info[TCB_WASM_INFO_IN_CAP] = TCW_IN_CAP;
  u->info[TCB_WASM_INFO_TXW] = (uint32_t)(uintptr_t)u->txw;
  u->info[TCB_WASM_INFO_TXW_CAP] = txw_words;
  u->info[TCB_WASM_INFO_TXB] = (uint32_t)(uintptr_t)u->txb;
  u->info[TCB_WASM_INFO_TXB_CAP] = txb_bytes;
  u->info[TCB_WASM_INFO_SEND_LIST] = (uint32_t)(uintptr_t)u->send;
  u->info[TCB_WASM_INFO_STATS] = (uint32_t)(uintptr_t)&u->d->stats;
  u->info[TCB_WASM_INFO_MAX_BODY] = u->d->max_body;
  udp_info(u);
  return u;
}

TCW_API void tcw_udp_free(tcw_udp *u) { udp_free(u); }

/** One received datagram: the sender's address words at in[0..), the datagram at
 *  in[TCB_WASM_IN_DATA..+len). tcd_recv's answer (an action, or a negative TC_E_*). */
TCW_API int tcw_udp_recv(tcw_udp *u, double now, uint32_t len) {
  uint8_t addr[TC_ADDR_MAX];
  uint32_t alen = tcb_words_to_addr((const uint32_t *)(void *)u->in, addr);
  int rc;
  if (alen == 0 || len > TCW_IN_CAP - TCB_WASM_IN_DATA) return TC_E_INVALID;
  rc = tcd_recv(u->d, (uint64_t)now, addr, alen, u->in + TCB_WASM_IN_DATA, len);
  udp_info(u);
  return rc;
}

/** tcd_timer. */
TCW_API int tcw_udp_timer(tcw_udp *u, double now) {
  int rc = tcd_timer(u->d, (uint64_t)now);
  udp_info(u);
  return rc;
}

/** tcd_flush over the records staged in the handle's tx areas: words [.., nwords), bytes
 *  [0, nbytes). TCD_SEND (send, call again), TCD_DONE (info TX_FAILED) or a TC_E_*. */
TCW_API int tcw_udp_flush(tcw_udp *u, double now, uint32_t nwords, uint32_t nbytes) {
  int rc;
  if (nwords > u->info[TCB_WASM_INFO_TXW_CAP] || nbytes > u->info[TCB_WASM_INFO_TXB_CAP])
    return TC_E_INVALID;
  rc = tcd_flush(u->d, (uint64_t)now, u->txw, nwords, u->txb, nbytes);
  udp_info(u);
  return rc;
}

/** The tx queue as send list entries (TCA_WASM_SEND) at info SEND_LIST; their count. */
TCW_API uint32_t tcw_udp_send_list(tcw_udp *u) {
  const tc_txq *q = &u->d->txq;
  uint32_t i;
  for (i = 0; i < q->count; i++) {
    const tc_tx *t = &q->items[i];
    uint32_t *e = u->send + i * TCB_WASM_SEND_WORDS;
    tcb_addr_to_words(q->buf + t->addr_offset, t->addr_length, e + TCB_WASM_SEND_FAMILY);
    e[TCB_WASM_SEND_OFF] = (uint32_t)(uintptr_t)(q->buf + t->offset);
    e[TCB_WASM_SEND_LEN] = t->length;
  }
  return q->count;
}

/** tcd_tx_sent: JS handed the queue's datagrams to the socket. */
TCW_API void tcw_udp_tx_sent(tcw_udp *u, uint32_t sent, uint32_t calls) {
  tcd_tx_sent(u->d, sent, calls);
  udp_info(u);
}

/** tcd_delivered: JS copied the batch out. */
TCW_API void tcw_udp_delivered(tcw_udp *u) {
  tcd_delivered(u->d);
  udp_info(u);
}

/** tcd_read_body into out (cap bytes, e.g. a tcw_malloc block). */
TCW_API int tcw_udp_read_body(tcw_udp *u, uint32_t id, uint8_t *out, uint32_t cap) {
  return tcd_read_body(u->d, id, out, cap);
}

/** Refreshes the stats struct (info STATS), with the socket's send errors counted by JS. */
TCW_API void tcw_udp_stats(tcw_udp *u, double send_errors) {
  u->d->stats.drv.send_errors = (uint64_t)send_errors;
  (void)tcd_get_stats(u->d);
}

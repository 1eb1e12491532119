/*
 * glue.c — the WebAssembly twin of native/binding/addon.cc.
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

#include "turbocoap.h"
#include "ep_batch.h"

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

/** TC_MSG_WORDS | TC_OPT_WORDS << 8 | TC_FRAME_WORDS << 16 | TC_ERROR_COUNT << 24 */
TCW_API uint32_t tcw_abi(void) {
  return TC_MSG_WORDS | TC_OPT_WORDS << 8 | TC_FRAME_WORDS << 16 | (uint32_t)TC_ERROR_COUNT << 24;
}
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

/* ------------------------------------------------------- CoAP/UDP endpoint */
/*
 * The WebAssembly UDP driver's half (ts/transport/udp-wasm.ts owns the node:dgram socket):
 * a server pipeline (tc_srv: a tc_ep with the block-wise stores and the Observe registry)
 * with its tx queue and a batch of records (ep_batch.h, the same records the native driver
 * hands JS). JS stages each datagram in the handle's input area, calls tcw_udp_recv, sends
 * the tx queue, and hands the batch to the server/client code; replies come back as tx
 * records staged in the handle's tx areas and run by tcw_udp_flush. Block1 bodies stay in
 * the pipeline until JS copies them out (tcw_udp_read_body into a tcw_malloc block).
 *
 * A handle starts with TCW_UDP_INFO words that JS reads after every call (pointers are
 * offsets into linear memory):
 *   [0] record table  [1] words used  [2] byte area  [3] bytes used  [4] records
 *   [5] tx queue bytes  [6] tx queue items (tc_tx)  [7] tx queue count
 *   [8] next deadline (tc_ep and tc_srv), low word  [9] high word (0xFFFFFFFF: none)
 *   [10] input area  [11] its size  [12] tx record table  [13] its words
 *   [14] tx byte area  [15] its size  [16] flush position  [17] records failed
 */
#define TCW_UDP_INFO 18u
#define TCW_RX_WORDS (1u << 15)
#define TCW_RX_DATA (256u * 1024u)
#define TCW_TXQ_ITEMS 256u
#define TCW_TXQ_BYTES (512u * 1024u)
#define TCW_IN_ADDR 32u /* the datagram starts here in the input area */
#define TCW_IN_CAP (TCW_IN_ADDR + 65536u)
#define TCW_TIMER_EVENTS 64u
#define TCW_EP_CONFIG_WORDS 20u
#define TCW_SEED_BYTES 48u /* 32 for the ep, 16 for the pipeline */

/* tcw_udp_recv / tcw_udp_timer outcomes */
#define TCW_OK 0
#define TCW_BATCH_FULL 1 /* hand the batch to JS, reset it (tcw_udp_rx_reset), call again */
#define TCW_TX_FULL 2    /* send the tx queue, reset it (tcw_udp_tx_reset), call again */

typedef struct tcw_udp {
  uint32_t info[TCW_UDP_INFO];
  tc_ep *ep;
  tc_srv *srv;
  tc_txq txq;
  tcb_rx rx;
  uint8_t *in;
  uint32_t *txw;
  uint32_t txw_cap;
  uint8_t *txb;
  uint32_t txb_cap;
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_srv_req req;
  tc_ep_event evs[TCW_TIMER_EVENTS];
} tcw_udp;

_Static_assert(sizeof(tc_ep_config) == TCW_EP_CONFIG_WORDS * 4, "tc_ep_config is 20 words");
_Static_assert(sizeof(tc_srv_config) == TC_SRV_CONFIG_WORDS * 4, "tc_srv_config layout");
_Static_assert(sizeof(tc_srv_stats) == TC_SRV_STATS_WORDS * 4, "tc_srv_stats layout");
_Static_assert(2u * (TC_ADDR_MAX + 65535u) <= TCW_TXQ_BYTES && TCW_TXQ_ITEMS >= 2u,
               "an empty tx queue takes the two datagrams tc_srv_recv may queue");

static void udp_info(tcw_udp *u) {
  uint64_t dl = tc_ep_next_deadline(u->ep), sdl = tc_srv_next_deadline(u->srv);
  if (sdl < dl) dl = sdl;
  u->info[0] = (uint32_t)(uintptr_t)u->rx.words;
  u->info[1] = u->rx.word_used;
  u->info[2] = (uint32_t)(uintptr_t)u->rx.data;
  u->info[3] = u->rx.data_used;
  u->info[4] = u->rx.count;
  u->info[5] = (uint32_t)(uintptr_t)u->txq.buf;
  u->info[6] = (uint32_t)(uintptr_t)u->txq.items;
  u->info[7] = u->txq.count;
  u->info[8] = (uint32_t)dl;
  u->info[9] = (uint32_t)(dl >> 32);
  u->info[10] = (uint32_t)(uintptr_t)u->in;
  u->info[11] = TCW_IN_CAP;
  u->info[12] = (uint32_t)(uintptr_t)u->txw;
  u->info[13] = u->txw_cap;
  u->info[14] = (uint32_t)(uintptr_t)u->txb;
  u->info[15] = u->txb_cap;
}

static void udp_free(tcw_udp *u) {
  if (u == NULL) return;
  free(u->ep);
  free(u->srv);
  free(u->txq.buf);
  free(u->txq.items);
  free(u->rx.words);
  free(u->rx.data);
  free(u->in);
  free(u->txw);
  free(u->txb);
  free(u);
}

/** Bytes of layout the JS side expects: TCB_ABI | TCW_UDP_INFO << 8. */
TCW_API uint32_t tcw_udp_abi(void) { return TCB_ABI | TCW_UDP_INFO << 8; }

/**
 * A new endpoint: cfg_words is a tc_ep_config (20 words) then a tc_srv_config
 * (TC_SRV_CONFIG_WORDS; its max_in_progress and max_message_size equal the ep's), seed 48
 * bytes of entropy (32 for the ep, 16 for the pipeline; both borrowed, e.g. staged in
 * tcw_table / tcw_bytes); txw_words / txb_bytes size the tx record areas. Returns the handle
 * (its info words), or 0 for an invalid config or no memory.
 */
TCW_API tcw_udp *tcw_udp_create(const uint32_t *cfg_words, const uint8_t *seed,
                                uint32_t txw_words, uint32_t txb_bytes) {
  tc_ep_config cfg;
  tc_srv_config scfg;
  size_t size, ssize;
  tcw_udp *u;
  memcpy(&cfg, cfg_words, sizeof cfg);
  memcpy(&scfg, cfg_words + TCW_EP_CONFIG_WORDS, sizeof scfg);
  size = tc_ep_size(&cfg);
  ssize = tc_srv_size(&scfg);
  if (size == 0 || ssize == 0 || scfg.max_in_progress != cfg.max_in_progress ||
      scfg.max_message_size != cfg.max_message_size || txw_words == 0 || txb_bytes == 0 ||
      txw_words > (1u << 26))
    return NULL;
  u = (tcw_udp *)calloc(1, sizeof *u);
  if (u == NULL) return NULL;
  u->ep = (tc_ep *)aligned_alloc(8, (size + 7u) & ~(size_t)7u);
  u->srv = (tc_srv *)aligned_alloc(8, (ssize + 7u) & ~(size_t)7u);
  u->txq.buf = (uint8_t *)malloc(TCW_TXQ_BYTES);
  u->txq.items = (tc_tx *)malloc(TCW_TXQ_ITEMS * sizeof(tc_tx));
  u->txq.cap = TCW_TXQ_BYTES;
  u->txq.item_cap = TCW_TXQ_ITEMS;
  u->rx.words = (uint32_t *)malloc(TCW_RX_WORDS * 4u);
  u->rx.word_cap = TCW_RX_WORDS;
  u->rx.data = (uint8_t *)malloc(TCW_RX_DATA);
  u->rx.data_cap = TCW_RX_DATA;
  u->in = (uint8_t *)malloc(TCW_IN_CAP);
  u->txw = (uint32_t *)malloc((size_t)txw_words * 4u);
  u->txw_cap = txw_words;
  u->txb = (uint8_t *)malloc(txb_bytes);
  u->txb_cap = txb_bytes;
  if (u->ep == NULL || u->srv == NULL || u->txq.buf == NULL || u->txq.items == NULL ||
      u->rx.words == NULL || u->rx.data == NULL || u->in == NULL || u->txw == NULL ||
      u->txb == NULL || tc_ep_init(u->ep, size, &cfg, seed) != 0 ||
      tc_srv_init(u->srv, ssize, &scfg, seed + 32) != 0) {
    udp_free(u);
    return NULL;
  }
  udp_info(u);
  return u;
}

TCW_API void tcw_udp_free(tcw_udp *u) { udp_free(u); }

/**
 * One received datagram: the canonical address (ep_batch.h) in in[0..alen), the datagram in
 * in[TCW_IN_ADDR..+len). Returns TCW_OK, TCW_BATCH_FULL or TCW_TX_FULL (nothing was done:
 * make room and call again), or a negative TC_E_* for bad arguments.
 */
TCW_API int tcw_udp_recv(tcw_udp *u, double now, uint32_t alen, uint32_t len) {
  tc_ep_event ev;
  int rc;
  if (alen < 1u || alen > TC_ADDR_MAX || len > TCW_IN_CAP - TCW_IN_ADDR) return TC_E_INVALID;
  if (!tcb_rx_room(&u->rx, len)) return TCW_BATCH_FULL;
  {
    tc_messaging ms;
    tc_rx rx = {.addr = u->in, .addr_len = alen, .opt_cap = TCB_OPT_CAP,
                .data = u->in + TCW_IN_ADDR, .len = len, .msg = &u->msg, .opts = u->opts};
    (void)tc_ep_messaging(u->ep, &u->txq, &ms);
    rc = tc_srv_recv(u->srv, &ms, (uint64_t)now, &rx, &ev, &u->req);
  }
  if (rc == TC_E_FULL) return TCW_TX_FULL; /* it wants room for two datagrams */
  if (rc < 0) return rc;
  if (ev.kind != TC_EV_NONE)
    tcb_rx_put(&u->rx, &ev, u->in, alen, u->in + TCW_IN_ADDR, len, &u->msg, u->opts, &u->req);
  udp_info(u);
  return TCW_OK;
}

/** Run what is due at now (tc_srv_timer, tc_ep_timer; events about notifications are the
 *  pipeline's). TCW_OK, or TCW_TX_FULL / TCW_BATCH_FULL: work is left (drain, reset, call
 *  again). */
TCW_API int tcw_udp_timer(tcw_udp *u, double now) {
  uint32_t room = (u->rx.word_cap - u->rx.word_used) / TCB_RX_WORDS, i;
  int n;
  if (tc_srv_next_deadline(u->srv) <= (uint64_t)now) (void)tc_srv_timer(u->srv, (uint64_t)now);
  if (room == 0) return TCW_BATCH_FULL;
  n = tc_ep_timer(u->ep, (uint64_t)now, &u->txq, u->evs,
                  room < TCW_TIMER_EVENTS ? room : TCW_TIMER_EVENTS);
  for (i = 0; i < (uint32_t)(n > 0 ? n : 0); i++)
    if (!tc_srv_on_timer_event(u->srv, (uint64_t)now, &u->evs[i]))
      tcb_rx_put(&u->rx, &u->evs[i], NULL, 0, NULL, 0, NULL, NULL, NULL);
  udp_info(u);
  if (tc_ep_next_deadline(u->ep) > (uint64_t)now) return TCW_OK;
  return u->txq.count > 0 ? TCW_TX_FULL : TCW_BATCH_FULL;
}

/**
 * Run the tx records staged in the handle's tx areas, words [pos, nwords) (bytes [0, nbytes)).
 * Returns TCB_TX_DONE, TCB_TX_DRAIN (send and reset the tx queue, then call again with
 * pos = info[16]; also while an Observe fan-out is pending) or a negative TC_E_* for a
 * malformed table. info[17] counts failed records since the call with pos 0.
 */
TCW_API int tcw_udp_flush(tcw_udp *u, double now, uint32_t pos, uint32_t nwords,
                          uint32_t nbytes) {
  int rc;
  if (nwords > u->txw_cap || nbytes > u->txb_cap || pos > nwords) return TC_E_INVALID;
  if (pos == 0) u->info[17] = 0;
  rc = tcb_tx_run(u->srv, u->ep, (uint64_t)now, u->txw, nwords, u->txb, nbytes, &u->txq, &pos,
                  &u->info[17]);
  u->info[16] = pos;
  udp_info(u);
  return rc;
}

TCW_API void tcw_udp_tx_reset(tcw_udp *u) {
  u->txq.count = 0;
  u->txq.used = 0;
  u->info[7] = 0;
}

TCW_API void tcw_udp_rx_reset(tcw_udp *u) {
  tcb_rx_reset(&u->rx);
  udp_info(u);
}

/** The Block1 body id of a delivered request (TC_SRVF_BODY) into out (cap bytes, e.g. a
 *  tcw_malloc block), released from the pipeline: its length, or TC_E_STALE /
 *  TC_E_BUFFER_TOO_SMALL (tc_srv_read_body). */
TCW_API int tcw_udp_read_body(tcw_udp *u, uint32_t id, uint8_t *out, uint32_t cap) {
  return tc_srv_read_body(u->srv, id, out, cap);
}

static tc_ep_stats tcw_stats_;
static tc_srv_stats tcw_srv_stats_;

/** tc_ep_get_stats into a static struct; returns it. */
TCW_API tc_ep_stats *tcw_udp_stats(tcw_udp *u) {
  tc_ep_get_stats(u->ep, &tcw_stats_);
  return &tcw_stats_;
}

/** tc_srv_get_stats into a static struct (TC_SRV_STATS_WORDS words); returns it. */
TCW_API tc_srv_stats *tcw_udp_srv_stats(tcw_udp *u) {
  tc_srv_get_stats(u->srv, &tcw_srv_stats_);
  return &tcw_srv_stats_;
}

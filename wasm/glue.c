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
  if (out_offset > len || msg->option_count > cap_of(words)) return TC_E_INVALID;
  return tc_encode(buf + out_offset, len - out_offset, transport, msg,
                   (tc_opt *)(table + TC_MSG_WORDS), buf);
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

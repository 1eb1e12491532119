// addon.cc — Node-API glue for the turbocoap C core.
//
// Thin by design: every function converts its arguments, calls one core
// function (the client-transfer calls decode the datagram they are given first)
// and returns a number. No protocol logic lives here.
//
// Data crosses the boundary through ONE scratch area that JS allocates and
// registers once with setScratch(table, bytes):
//   table: Uint32Array of TC_MSG_WORDS + TC_OPT_WORDS * cap words
//          ([tc_msg][tc_opt x cap], or [consumed][.. ][tc_frame x cap] for the
//          deframer, or the fields of one registry entry)
//   bytes: Uint8Array; encoder sources and output, registry/error names.
// The addon keeps references to both (so they stay alive) and raw pointers
// into their backing stores, which never move.
//
// Every function is context-aware: each Node environment (main thread, each
// worker) gets its own scratch state.

#include <napi.h>

#include <cstdint>
#include <cstring>

#include "ep_batch.h"
#include "turbocoap.h"

// The CoAP/UDP driver (udp.c): registers udpCreate, udpBind, ... on exports.
extern "C" napi_value tc_udp_register(napi_env env, napi_value exports);
// The CoAP over TCP/TLS host (stream.c): streamCreate, streamListen, ..., tlsContext.
extern "C" napi_value tc_stream_register(napi_env env, napi_value exports);
// The connection driver for JS-owned sockets (stream_feed.c): streamFeed*.
extern "C" napi_value tc_stream_feed_register(napi_env env, napi_value exports);

namespace {

struct Scratch {
  napi_ref table_ref = nullptr;
  napi_ref bytes_ref = nullptr;
  uint32_t *table = nullptr;
  size_t table_words = 0;
  uint32_t opt_cap = 0;  // entries of TC_OPT_WORDS (or TC_FRAME_WORDS) after the tc_msg
  uint8_t *bytes = nullptr;
  size_t bytes_len = 0;
};

static_assert(sizeof(tc_msg) == TC_MSG_WORDS * 4, "tc_msg layout");
static_assert(sizeof(tc_opt) == TC_OPT_WORDS * 4, "tc_opt layout");
static_assert(sizeof(tc_frame) == TC_FRAME_WORDS * 4, "tc_frame layout");
static_assert(TC_FRAME_WORDS == TC_OPT_WORDS, "frames share the option area");

const uint8_t kEmpty[1] = {0};

// ------------------------------------------------------------ conversions

napi_value Int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

napi_value Num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// Fetches up to N arguments and the Scratch passed as callback data.
template <size_t N>
bool Args(napi_env env, napi_callback_info info, napi_value (&argv)[N], Scratch **s) {
  size_t argc = N;
  void *data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) != napi_ok) return false;
  if (argc < N) {
    napi_throw_type_error(env, nullptr, "turbocoap: missing arguments");
    return false;
  }
  *s = static_cast<Scratch *>(data);
  return true;
}

bool Bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  void *p = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, nullptr, nullptr) != napi_ok ||
      (type != napi_uint8_array && type != napi_uint8_clamped_array)) {
    napi_throw_type_error(env, nullptr, "turbocoap: expected a Uint8Array");
    return false;
  }
  *data = p != nullptr ? static_cast<uint8_t *>(p) : const_cast<uint8_t *>(kEmpty);
  *len = p != nullptr ? n : 0;
  return true;
}

bool Words(napi_env env, napi_value v, uint32_t **data, size_t *words) {
  napi_typedarray_type type;
  void *p = nullptr;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, nullptr, nullptr) != napi_ok ||
      type != napi_uint32_array || p == nullptr) {
    napi_throw_type_error(env, nullptr, "turbocoap: expected a Uint32Array");
    return false;
  }
  *data = static_cast<uint32_t *>(p);
  *words = n;
  return true;
}

bool U32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, nullptr, "turbocoap: expected a number");
    return false;
  }
  return true;
}

bool HasScratch(napi_env env, Scratch *s) {
  if (s->table == nullptr) {
    napi_throw_error(env, nullptr, "turbocoap: setScratch() was not called");
    return false;
  }
  return true;
}

// Option-table capacity of a table of `words` words (0 if too small).
uint32_t CapOf(size_t words) {
  if (words < TC_MSG_WORDS) return 0;
  size_t cap = (words - TC_MSG_WORDS) / TC_OPT_WORDS;
  return cap > 0x7fffffffu ? 0x7fffffffu : static_cast<uint32_t>(cap);
}

// Deframer memory: a Uint8Array, 4-byte aligned, at least sizeof(tc_deframer).
bool Deframer(napi_env env, napi_value v, tc_deframer **d, size_t *len) {
  uint8_t *p;
  if (!Bytes(env, v, &p, len)) return false;
  if (*len < sizeof(tc_deframer) || (reinterpret_cast<uintptr_t>(p) & 3u) != 0) {
    napi_throw_range_error(env, nullptr, "turbocoap: bad deframer memory");
    return false;
  }
  *d = reinterpret_cast<tc_deframer *>(p);
  return true;
}

// --------------------------------------------------------------- scratch

// setScratch(table: Uint32Array, bytes: Uint8Array): void
napi_value SetScratch(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  uint32_t *table;
  size_t words, len;
  uint8_t *bytes;
  if (!Args(env, info, argv, &s) || !Words(env, argv[0], &table, &words) ||
      !Bytes(env, argv[1], &bytes, &len))
    return nullptr;
  if (CapOf(words) == 0 || len == 0) {
    napi_throw_range_error(env, nullptr, "turbocoap: scratch area too small");
    return nullptr;
  }
  if (s->table_ref != nullptr) napi_delete_reference(env, s->table_ref);
  if (s->bytes_ref != nullptr) napi_delete_reference(env, s->bytes_ref);
  napi_create_reference(env, argv[0], 1, &s->table_ref);
  napi_create_reference(env, argv[1], 1, &s->bytes_ref);
  s->table = table;
  s->table_words = words;
  s->opt_cap = CapOf(words);
  s->bytes = bytes;
  s->bytes_len = len;
  return nullptr;
}

// ---------------------------------------------------------------- codec

// decode(input: Uint8Array, transport: number): number
napi_value Decode(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  uint8_t *in;
  size_t len;
  uint32_t transport;
  if (!Args(env, info, argv, &s) || !HasScratch(env, s) || !Bytes(env, argv[0], &in, &len) ||
      !U32(env, argv[1], &transport))
    return nullptr;
  tc_msg *msg = reinterpret_cast<tc_msg *>(s->table);
  tc_opt *opts = reinterpret_cast<tc_opt *>(s->table + TC_MSG_WORDS);
  return Int(env, tc_decode(in, len, static_cast<int>(transport), msg, opts, s->opt_cap));
}

// decodeWith(input: Uint8Array, transport: number, table: Uint32Array): number
// Same as decode with a caller-supplied (larger) table.
napi_value DecodeWith(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Scratch *s;
  uint8_t *in;
  size_t len, words;
  uint32_t transport, *table;
  if (!Args(env, info, argv, &s) || !Bytes(env, argv[0], &in, &len) ||
      !U32(env, argv[1], &transport) || !Words(env, argv[2], &table, &words))
    return nullptr;
  if (CapOf(words) == 0) {
    napi_throw_range_error(env, nullptr, "turbocoap: table too small");
    return nullptr;
  }
  return Int(env, tc_decode(in, len, static_cast<int>(transport), reinterpret_cast<tc_msg *>(table),
                            reinterpret_cast<tc_opt *>(table + TC_MSG_WORDS), CapOf(words)));
}

// Shared by encode / encodeWith: sources at buf[0..), output at buf[out_offset..).
napi_value EncodeIn(napi_env env, uint32_t transport, uint32_t *table, size_t words,
                    uint8_t *buf, size_t len, uint32_t out_offset) {
  tc_msg *msg = reinterpret_cast<tc_msg *>(table);
  tc_opt *opts = reinterpret_cast<tc_opt *>(table + TC_MSG_WORDS);
  if (out_offset > len || msg->option_count > CapOf(words)) {
    napi_throw_range_error(env, nullptr, "turbocoap: encode arguments out of range");
    return nullptr;
  }
  // tc_encode reads token, option values and payload at these offsets: keep them in buf
  if (!tcb_msg_sources_ok(msg, opts, len)) return Int(env, TC_E_INVALID);
  return Int(env, tc_encode(buf + out_offset, len - out_offset, static_cast<int>(transport), msg,
                            opts, buf));
}

// encode(transport: number, outOffset: number): number
// The tc_msg and tc_opt entries are in the scratch table; token, option values
// and payload in the scratch bytes (offsets into it). Output goes to
// bytes[outOffset..].
napi_value Encode(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  uint32_t transport, out_offset;
  if (!Args(env, info, argv, &s) || !HasScratch(env, s) || !U32(env, argv[0], &transport) ||
      !U32(env, argv[1], &out_offset))
    return nullptr;
  return EncodeIn(env, transport, s->table, s->table_words, s->bytes, s->bytes_len, out_offset);
}

// encodeWith(transport, table: Uint32Array, buf: Uint8Array, outOffset): number
// Same as encode with caller-supplied (larger) table and byte area.
napi_value EncodeWith(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Scratch *s;
  uint32_t transport, out_offset, *table;
  size_t words, len;
  uint8_t *buf;
  if (!Args(env, info, argv, &s) || !U32(env, argv[0], &transport) ||
      !Words(env, argv[1], &table, &words) || !Bytes(env, argv[2], &buf, &len) ||
      !U32(env, argv[3], &out_offset))
    return nullptr;
  if (CapOf(words) == 0) {
    napi_throw_range_error(env, nullptr, "turbocoap: table too small");
    return nullptr;
  }
  return EncodeIn(env, transport, table, words, buf, len, out_offset);
}

// ------------------------------------------------------------- deframer

// deframerSize(maxMessageSize: number): number (0 if not representable)
napi_value DeframerSize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  uint32_t max;
  if (!Args(env, info, argv, &s) || !U32(env, argv[0], &max)) return nullptr;
  return Num(env, static_cast<double>(tc_deframer_size(max)));
}

// deframerInit(mem: Uint8Array, maxMessageSize: number): number
napi_value DeframerInit(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  tc_deframer *d;
  size_t len;
  uint32_t max;
  if (!Args(env, info, argv, &s) || !Deframer(env, argv[0], &d, &len) || !U32(env, argv[1], &max))
    return nullptr;
  return Int(env, tc_deframer_init(d, len, max));
}

// deframerFeed(mem: Uint8Array, chunk: Uint8Array, start: number): number
// Feeds chunk[start..]. Writes bytes consumed to table[0] and the frames as
// tc_frame triples from table[TC_MSG_WORDS]; frame offsets are relative to
// chunk[start] (TC_FRAME_CHUNK) or to the deframer buffer (TC_FRAME_BUFFER).
napi_value DeframerFeed(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Scratch *s;
  tc_deframer *d;
  size_t mem_len, len, consumed = 0;
  uint8_t *chunk;
  uint32_t start;
  if (!Args(env, info, argv, &s) || !HasScratch(env, s) || !Deframer(env, argv[0], &d, &mem_len) ||
      !Bytes(env, argv[1], &chunk, &len) || !U32(env, argv[2], &start))
    return nullptr;
  if (start > len) {
    napi_throw_range_error(env, nullptr, "turbocoap: start past the chunk");
    return nullptr;
  }
  int n = tc_deframer_feed(d, chunk + start, len - start, &consumed,
                           reinterpret_cast<tc_frame *>(s->table + TC_MSG_WORDS), s->opt_cap);
  s->table[0] = static_cast<uint32_t>(consumed);
  return Int(env, n);
}

// deframerBufferOffset(mem: Uint8Array): number — where the buffer starts in mem
napi_value DeframerBufferOffset(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  tc_deframer *d;
  size_t len;
  if (!Args(env, info, argv, &s) || !Deframer(env, argv[0], &d, &len)) return nullptr;
  return Num(env, static_cast<double>(tc_deframer_buffer(d) - reinterpret_cast<uint8_t *>(d)));
}

// deframerPending(mem: Uint8Array): number
napi_value DeframerPending(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  tc_deframer *d;
  size_t len;
  if (!Args(env, info, argv, &s) || !Deframer(env, argv[0], &d, &len)) return nullptr;
  return Num(env, tc_deframer_pending(d));
}

// -------------------------------------------------------- registry, names

// Copies a C string into the scratch bytes; returns its length or -1.
napi_value PutName(napi_env env, Scratch *s, const char *name) {
  size_t n = std::strlen(name);
  if (n > s->bytes_len) return Int(env, -1);
  std::memcpy(s->bytes, name, n);
  return Int(env, static_cast<int64_t>(n));
}

// optionCount(): number
napi_value OptionCount(napi_env env, napi_callback_info /*info*/) {
  return Num(env, tc_option_registry_count());
}

// optionAt(i): name length (name in bytes[0..]) or -1; table[0..5] =
// number, format, repeatable, min_length, max_length, signal_code.
napi_value OptionAt(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  uint32_t i;
  if (!Args(env, info, argv, &s) || !HasScratch(env, s) || !U32(env, argv[0], &i)) return nullptr;
  const tc_option_def *def = tc_option_registry_at(i);
  if (def == nullptr) return Int(env, -1);
  s->table[0] = def->number;
  s->table[1] = def->format;
  s->table[2] = def->repeatable;
  s->table[3] = def->min_length;
  s->table[4] = def->max_length;
  s->table[5] = def->signal_code;
  return PutName(env, s, def->name);
}

// optionFind(code, number): registry index of tc_option_find(code, number), or -1.
napi_value OptionFind(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  uint32_t code, number;
  if (!Args(env, info, argv, &s) || !U32(env, argv[0], &code) || !U32(env, argv[1], &number))
    return nullptr;
  const tc_option_def *def = tc_option_find(code, number);
  if (def == nullptr) return Int(env, -1);
  uint32_t count = tc_option_registry_count();
  for (uint32_t i = 0; i < count; i++)
    if (tc_option_registry_at(i) == def) return Int(env, i);
  return Int(env, -1);
}

// errorName(err): name length, name in bytes[0..]
napi_value ErrorName(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  int32_t err;
  if (!Args(env, info, argv, &s) || !HasScratch(env, s)) return nullptr;
  if (napi_get_value_int32(env, argv[0], &err) != napi_ok) {
    napi_throw_type_error(env, nullptr, "turbocoap: expected a number");
    return nullptr;
  }
  return PutName(env, s, tc_error_name(err));
}

// ------------------------------------------------- client transfers (tc_bwc)
//
// A transfer's state is a JS-owned Uint8Array of tc_bwc_size() bytes (8-byte aligned; it
// holds no pointers), its download body a JS Uint8Array that JS grows between calls (the core
// keeps no pointer to it). Every call writes the tc_bwc_result and the progress into a
// Uint32Array of kBwcResWords words: [0..7] tc_bwc_result, [8] done, [9] total
// (tc_bwc_progress). The *Response calls take a received datagram and decode it here.

constexpr uint32_t kBwcResWords = TC_BWC_RESULT_WORDS + 2;
static_assert(sizeof(tc_bwc_config) == TC_BWC_CONFIG_WORDS * 4, "tc_bwc_config layout");
static_assert(sizeof(tc_bwc_result) == TC_BWC_RESULT_WORDS * 4, "tc_bwc_result layout");

// A tc_bwc_config from a Uint32Array of TC_BWC_CONFIG_WORDS words.
bool BwcConfig(napi_env env, napi_value v, tc_bwc_config *cfg) {
  uint32_t *w;
  size_t n;
  if (!Words(env, v, &w, &n)) return false;
  if (n < TC_BWC_CONFIG_WORDS) {
    napi_throw_range_error(env, nullptr, "turbocoap: bad tc_bwc_config");
    return false;
  }
  std::memcpy(cfg, w, sizeof *cfg);
  return true;
}

// Transfer state: a Uint8Array, 8-byte aligned, of at least tc_bwc_size() bytes (the same
// for every valid config; tc_bwc_init stamps it, later calls check the stamp).
bool BwcState(napi_env env, napi_value v, tc_bwc **c, size_t *len) {
  uint8_t *p;
  tc_bwc_config d;
  tc_bwc_config_default(&d);
  if (!Bytes(env, v, &p, len)) return false;
  if (*len < tc_bwc_size(&d) || (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    napi_throw_range_error(env, nullptr, "turbocoap: bad transfer state memory");
    return false;
  }
  *c = reinterpret_cast<tc_bwc *>(p);
  return true;
}

bool BwcRes(napi_env env, napi_value v, uint32_t **res) {
  size_t n;
  if (!Words(env, v, res, &n)) return false;
  if (n < kBwcResWords) {
    napi_throw_range_error(env, nullptr, "turbocoap: result table too small");
    return false;
  }
  return true;
}

// Writes the result and the progress into res; returns rc.
napi_value BwcOut(napi_env env, const tc_bwc *c, const tc_bwc_result *r, uint32_t *res, int rc) {
  if (rc >= 0) {
    std::memcpy(res, r, sizeof *r);
    (void)tc_bwc_progress(c, &res[TC_BWC_RESULT_WORDS], &res[TC_BWC_RESULT_WORDS + 1]);
  }
  return Int(env, rc);
}

// bwcSize(cfg: Uint32Array): number (0: invalid config)
napi_value BwcSize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Scratch *s;
  tc_bwc_config cfg;
  if (!Args(env, info, argv, &s) || !BwcConfig(env, argv[0], &cfg)) return nullptr;
  return Num(env, static_cast<double>(tc_bwc_size(&cfg)));
}

// bwcInit(state: Uint8Array, cfg: Uint32Array): number
napi_value BwcInit(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  tc_bwc *c;
  size_t len;
  tc_bwc_config cfg;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) ||
      !BwcConfig(env, argv[1], &cfg))
    return nullptr;
  return Int(env, tc_bwc_init(c, len, &cfg));
}

// bwcGetBegin(state, res: Uint32Array): number
napi_value BwcGetBegin(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  tc_bwc *c;
  size_t len;
  uint32_t *res;
  tc_bwc_result r;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) || !BwcRes(env, argv[1], &res))
    return nullptr;
  return BwcOut(env, c, &r, res, tc_bwc_get_begin(c, &r));
}

// Decodes a received CoAP/UDP datagram into msg/opts; returns the option count or an error.
int DecodeUdp(const uint8_t *d, size_t len, tc_msg *msg, tc_opt *opts) {
  return tc_decode(d, len, TC_UDP, msg, opts, TCB_OPT_CAP);
}

// bwcGetResponse(state, datagram: Uint8Array, body: Uint8Array, res): number
// Decodes the datagram and feeds it to tc_bwc_get_response with the body memory.
napi_value BwcGetResponse(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Scratch *s;
  tc_bwc *c;
  size_t len, dlen, blen;
  uint8_t *d, *body;
  uint32_t *res;
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_bwc_result r;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) ||
      !Bytes(env, argv[1], &d, &dlen) || !Bytes(env, argv[2], &body, &blen) ||
      !BwcRes(env, argv[3], &res))
    return nullptr;
  int rc = DecodeUdp(d, dlen, &msg, opts);
  if (rc < 0) return Int(env, rc);
  uint32_t cap = blen > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(blen);
  return BwcOut(env, c, &r, res, tc_bwc_get_response(c, &msg, opts, d, body, cap, &r));
}

// bwcPutBegin(state, bodyLength: number, tag: Uint8Array, res): number
napi_value BwcPutBegin(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Scratch *s;
  tc_bwc *c;
  size_t len, tlen;
  uint32_t body_len, *res;
  uint8_t *tag;
  tc_bwc_result r;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) ||
      !U32(env, argv[1], &body_len) || !Bytes(env, argv[2], &tag, &tlen) ||
      !BwcRes(env, argv[3], &res))
    return nullptr;
  if (tlen > 8) return Int(env, TC_E_INVALID);
  return BwcOut(env, c, &r, res,
                tc_bwc_put_begin(c, body_len, tag, static_cast<uint32_t>(tlen), &r));
}

// bwcPutResponse(state, datagram: Uint8Array, res): number
napi_value BwcPutResponse(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Scratch *s;
  tc_bwc *c;
  size_t len, dlen;
  uint8_t *d;
  uint32_t *res;
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_bwc_result r;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) ||
      !Bytes(env, argv[1], &d, &dlen) || !BwcRes(env, argv[2], &res))
    return nullptr;
  int rc = DecodeUdp(d, dlen, &msg, opts);
  if (rc < 0) return Int(env, rc);
  return BwcOut(env, c, &r, res, tc_bwc_put_response(c, &msg, opts, d, &r));
}

// bwcRequestTag(state, out: Uint8Array (>= 8 bytes)): number (the tag length)
napi_value BwcRequestTag(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Scratch *s;
  tc_bwc *c;
  size_t len, olen;
  uint8_t *out;
  if (!Args(env, info, argv, &s) || !BwcState(env, argv[0], &c, &len) ||
      !Bytes(env, argv[1], &out, &olen))
    return nullptr;
  if (olen < 8) return Int(env, TC_E_INVALID);
  return Int(env, tc_bwc_request_tag(c, out));
}

// Milliseconds (a JS number) as uint64 (negative or NaN: 0).
uint64_t Ms(napi_env env, napi_value v, bool *ok) {
  double d;
  *ok = napi_get_value_double(env, v, &d) == napi_ok;
  if (!*ok) napi_throw_type_error(env, nullptr, "turbocoap: expected a number");
  if (!(d > 0)) return 0;
  return d >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(d);
}

// obsFresh(v1, t1Ms, v2, t2Ms): 1 if the notification (v2, t2) is fresher, else 0
napi_value ObsFresh(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Scratch *s;
  uint32_t v1, v2;
  bool ok1, ok2;
  if (!Args(env, info, argv, &s) || !U32(env, argv[0], &v1) || !U32(env, argv[2], &v2)) return nullptr;
  uint64_t t1 = Ms(env, argv[1], &ok1);
  if (!ok1) return nullptr;
  uint64_t t2 = Ms(env, argv[3], &ok2);
  if (!ok2) return nullptr;
  return Int(env, tc_obs_fresh(v1, t1, v2, t2));
}

// obsReregisterAt(arrivalMs, maxAgeS (0xFFFFFFFF: absent), leadMs): number (ms)
napi_value ObsReregisterAt(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Scratch *s;
  uint32_t max_age, lead;
  bool ok;
  if (!Args(env, info, argv, &s)) return nullptr;
  uint64_t at = Ms(env, argv[0], &ok);
  if (!ok || !U32(env, argv[1], &max_age) || !U32(env, argv[2], &lead)) return nullptr;
  return Num(env, static_cast<double>(tc_obs_reregister_at(at, max_age, lead)));
}

// ------------------------------------------------------------------ init

// Node frees an environment's references when it tears down; only the
// struct itself is ours to delete.
void FreeScratch(napi_env /*env*/, void *data, void * /*hint*/) { delete static_cast<Scratch *>(data); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Scratch *s = new Scratch();
  napi_set_instance_data(env, s, FreeScratch, nullptr);

  struct Fn {
    const char *name;
    napi_callback cb;
  };
  static const Fn fns[] = {
      {"setScratch", SetScratch},
      {"decode", Decode},
      {"decodeWith", DecodeWith},
      {"encode", Encode},
      {"encodeWith", EncodeWith},
      {"deframerSize", DeframerSize},
      {"deframerInit", DeframerInit},
      {"deframerFeed", DeframerFeed},
      {"deframerBufferOffset", DeframerBufferOffset},
      {"deframerPending", DeframerPending},
      {"optionCount", OptionCount},
      {"optionAt", OptionAt},
      {"optionFind", OptionFind},
      {"errorName", ErrorName},
      {"bwcSize", BwcSize},
      {"bwcInit", BwcInit},
      {"bwcGetBegin", BwcGetBegin},
      {"bwcGetResponse", BwcGetResponse},
      {"bwcPutBegin", BwcPutBegin},
      {"bwcPutResponse", BwcPutResponse},
      {"bwcRequestTag", BwcRequestTag},
      {"obsFresh", ObsFresh},
      {"obsReregisterAt", ObsReregisterAt},
  };
  for (const Fn &f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, s, &fn);
    exports.Set(f.name, Napi::Value(env, fn));
  }
  exports.Set("bwcResWords", Napi::Number::New(env, kBwcResWords));
  tc_udp_register(env, exports); /* also abiHash / abiLayout (native/driver/abi.h) */
  tc_stream_register(env, exports);
  tc_stream_feed_register(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(turbocoap, Init)

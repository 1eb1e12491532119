/* fuzz_blockwise_client.c — libFuzzer harness for blockwise_client.c.
 *
 * The input is a program: a client transfer (config from the first bytes) is driven with
 * fuzzer-chosen begins and responses: built ones (any code, Block1/Block2 value, ETag, Size1,
 * Size2, payload length, a Block option of bad length) whose payload bytes are the pattern of
 * their body offset, and raw fuzzer bytes decoded as a message; plus the Observe freshness
 * helpers. Checks after every step: results are consistent (NEXT blocks lie inside the body at
 * offset NUM * size, progress never passes the total or the bound), a download that is DONE
 * from built responses holds the pattern, and tc_obs_fresh is antisymmetric. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"


static uint8_t pat(uint32_t i) { return (uint8_t)(i % 251u); }

#define BODY_CAP 70000u

static uint8_t g_body[BODY_CAP];

typedef struct built {
  tc_msg m;
  tc_opt o[12];
  uint8_t src[9000];
  uint32_t w;
} built;

static void opt(built *b, uint32_t number, const void *val, uint32_t len) {
  tc_opt *o = &b->o[b->m.option_count++];
  o->number = number;
  o->offset = b->w;
  o->length = len;
  if (len) memcpy(b->src + b->w, val, len);
  b->w += len;
}
static void opt_uint(built *b, uint32_t number, uint32_t v) {
  uint8_t x[4];
  int n = tc_uint_encode(v, x);
  opt(b, number, x, (uint32_t)n);
}

static const uint32_t CODES[8] = {0x45, 0x44, 0x41, TC_CODE_CONTINUE, TC_CODE_TOO_LARGE,
                                  TC_CODE_INCOMPLETE, 0x84, 0xA0};

/* Build a response from the input; payload bytes are pattern bytes of the block's offset. */
static void build(input *in, built *b) {
  uint32_t sel = take(in), v, plen, start = 0;
  memset(&b->m, 0, sizeof b->m);
  b->w = 0;
  b->m.code = CODES[sel & 7u];
  if (sel & 8u) { /* ETag: one of three, or a bad 9-byte one */
    uint32_t e = take(in) % 4u;
    opt(b, TC_OPT_ETAG, "abcdefghi", e == 3u ? 9u : e + 1u);
  }
  if (sel & 16u) opt_uint(b, TC_OPT_BLOCK2, take24(in) & 0xFFFFFFu);
  if (sel & 32u) opt_uint(b, TC_OPT_BLOCK1, take24(in) & 0xFFFFFFu);
  if (sel & 64u) opt_uint(b, (take(in) & 1u) ? TC_OPT_SIZE2 : TC_OPT_SIZE1, take24(in) << 2);
  if (sel & 128u) opt(b, (take(in) & 1u) ? TC_OPT_BLOCK2 : TC_OPT_BLOCK1, "\1\2\3\4", 4);
  /* the payload: the pattern at the offset its Block2 names (if any) */
  {
    uint32_t i;
    for (i = 0; i < b->m.option_count; i++) {
      if (b->o[i].number == TC_OPT_BLOCK2 && b->o[i].length <= 3u) {
        tc_block k;
        if (tc_block_decode(b->src + b->o[i].offset, b->o[i].length, &k) == 0)
          start = k.num * tc_szx_size(k.szx);
        break;
      }
    }
  }
  v = take(in);
  plen = v < 200u ? (16u << (v % 7u)) * (v >= 100u ? 2u : 1u) : v - 200u; /* sizes, multiples */
  if (v >= 100u && v < 200u && (v % 3u) == 0u) plen = 1024u * (1u + v % 8u); /* BERT-ish */
  if (plen > sizeof b->src - b->w) plen = (uint32_t)(sizeof b->src - b->w);
  b->m.payload_offset = b->w;
  b->m.payload_length = plen;
  for (v = 0; v < plen; v++) b->src[b->w + v] = pat(start + v);
  b->w += plen;
}

static void check_result(const tc_bwc *c, int st, const tc_bwc_result *r, int get,
                         uint32_t body_len, uint32_t bound, int clean) {
  uint32_t done = 0, total = 0;
  tc_block k;
  int last;
  REQUIRE(st >= TC_BWC_NEXT && st <= TC_BWC_FAILED);
  REQUIRE(r->status == (uint32_t)st);
  REQUIRE((st == TC_BWC_FAILED) == (r->error != 0));
  if (st == TC_BWC_FAILED)
    REQUIRE(r->error == TC_E_MESSAGE_TOO_LARGE || r->error == TC_E_STALE ||
            r->error == TC_E_BAD_OPTION);
  last = tc_bwc_progress(c, &done, &total);
  if (st == TC_BWC_IGNORED && (last == TC_BWC_DONE || last == TC_BWC_FAILED)) return; /* over */
  if (get) {
    REQUIRE(done <= bound);
    if (st == TC_BWC_NEXT || st == TC_BWC_RESTART || st == TC_BWC_IGNORED) {
      REQUIRE(tc_block_from_value(r->block, &k) == 0);
      REQUIRE(k.more == 0);
      REQUIRE((uint64_t)k.num * tc_szx_size(k.szx) == done);
    }
    if (st == TC_BWC_DONE) {
      uint32_t i;
      REQUIRE(r->length == done && r->length <= bound);
      if (clean)
        for (i = 0; i < r->length; i++) REQUIRE(g_body[i] == pat(i));
    }
  } else {
    REQUIRE(total == body_len && done <= total);
    if (st == TC_BWC_NEXT || st == TC_BWC_RESTART || (st == TC_BWC_IGNORED && r->length)) {
      REQUIRE(tc_block_from_value(r->block, &k) == 0);
      REQUIRE((uint64_t)r->offset + r->length <= body_len);
      REQUIRE(r->offset == done || st == TC_BWC_IGNORED);
      REQUIRE((uint64_t)k.num * tc_szx_size(k.szx) == r->offset);
      REQUIRE(k.more == (r->offset + r->length < body_len ? 1u : 0u));
      REQUIRE(k.more == ((r->flags & TC_BWCF_LAST) ? 0u : 1u) || st == TC_BWC_IGNORED);
      if (k.more)
        REQUIRE(k.szx == 7u ? r->length % 1024u == 0u && r->length > 0u
                            : r->length == tc_szx_size(k.szx));
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  tc_bwc_config cfg;
  uint64_t mem[64];
  tc_bwc *c = (tc_bwc *)mem;
  tc_bwc_result r;
  static built b;
  uint32_t cap, body_len = 0, steps = 0;
  int mode = 0, clean = 1, st;
  tc_bwc_config_default(&cfg);
  {
    uint32_t x = take(&in);
    cfg.preferred_szx = x & 7u;
    cfg.flags = (x & 8u) ? TC_BWC_BERT : 0u;
    if (cfg.preferred_szx == 7u) cfg.flags = TC_BWC_BERT;
    cfg.max_restarts = (x >> 4) & 3u;
    cfg.max_body = 1u + take16(&in) * 2u;
    cfg.bert_bytes = 1024u * (1u + take(&in) % 4u);
  }
  REQUIRE(tc_bwc_size(&cfg) > 0 && tc_bwc_size(&cfg) <= sizeof mem);
  REQUIRE(tc_bwc_init(c, sizeof mem, &cfg) == 0);
  cap = take16(&in) + 4000u;
  if (cap > BODY_CAP) cap = BODY_CAP;
  while (in.n > 0 && steps++ < 4000u) {
    uint32_t op = take(&in) % 6u;
    switch (op) {
    case 0:
      st = tc_bwc_get_begin(c, &r);
      REQUIRE(st == TC_BWC_NEXT);
      mode = 1;
      clean = 1;
      check_result(c, st, &r, 1, 0, cfg.max_body < cap ? cfg.max_body : cap, clean);
      break;
    case 1:
      st = tc_bwc_put_begin(c, body_len = take24(&in), (const uint8_t *)"tagtagta", take(&in) % 9u,
                            &r);
      REQUIRE(st == TC_BWC_NEXT || st == TC_BWC_FAILED);
      mode = 2;
      check_result(c, st, &r, 0, body_len, 0, 0);
      break;
    case 2:
    case 3:
    case 4: {
      int get = mode == 1;
      if (op == 4) { /* raw bytes as a message */
        uint32_t n = take(&in) % 64u, i;
        tc_msg m;
        tc_opt o[12];
        uint8_t raw[64];
        for (i = 0; i < n; i++) raw[i] = (uint8_t)take(&in);
        if (tc_decode(raw, n, TC_UDP, &m, o, 12) < 0) break;
        if (mode == 1) clean = 0;
        if (mode == 1) st = tc_bwc_get_response(c, &m, o, raw, g_body, cap, &r);
        else if (mode == 2) st = tc_bwc_put_response(c, &m, o, raw, &r);
        else {
          REQUIRE(tc_bwc_get_response(c, &m, o, raw, g_body, cap, &r) == TC_E_INVALID);
          break;
        }
      } else {
        build(&in, &b);
        if (mode == 1) st = tc_bwc_get_response(c, &b.m, b.o, b.src, g_body, cap, &r);
        else if (mode == 2) st = tc_bwc_put_response(c, &b.m, b.o, b.src, &r);
        else {
          REQUIRE(tc_bwc_put_response(c, &b.m, b.o, b.src, &r) == TC_E_INVALID);
          break;
        }
      }
      check_result(c, st, &r, get, body_len, cfg.max_body < cap ? cfg.max_body : cap, clean);
      break;
    }
    default: {
      uint32_t v1 = take24(&in), v2 = take24(&in);
      uint64_t t = take16(&in);
      int a = tc_obs_fresh(v1, 1000, v2, 1000 + t), z = tc_obs_fresh(v2, 1000, v1, 1000 + t);
      uint32_t d = (v1 - v2) & 0xFFFFFFu;
      if (t <= 128000u) {
        REQUIRE(!(a && z));
        if (v1 != v2 && d != (1u << 23)) REQUIRE(a + z == 1);
        if (v1 == v2) REQUIRE(a == 0);
      }
      REQUIRE(tc_obs_reregister_at(t, v1, v2) >= t);
      break;
    }
    }
  }
  return 0;
}

/* test_codec.c — tc_decode / tc_encode / tc_error_name against the shared
 * vectors, encoder validation, sort stability, size-only mode, short buffers,
 * extended lengths at their limits and a seeded random round trip. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "vectors.h"

#define MAX_OPTS 64

/* Copy a vector's bytes into an exactly-sized heap block so ASan/valgrind
 * catch any read past the end. */
static uint8_t *exact_copy(const uint8_t *p, size_t n) {
  uint8_t *q = malloc(n ? n : 1);
  if (q == NULL) abort();
  if (n) memcpy(q, p, n);
  return q;
}

/* Lay out a vector's token, option values and payload in one src buffer and
 * fill msg/opts to encode it. Returns the src (caller frees). */
static uint8_t *vector_to_msg(const tv_vector *v, tc_msg *m, tc_opt *opts) {
  size_t total = v->token_length + v->payload_length, pos = 0;
  uint32_t i;
  uint8_t *src;
  for (i = 0; i < v->option_count; i++) total += v->opts[i].length;
  src = malloc(total ? total : 1);
  if (src == NULL) abort();
  memset(m, 0, sizeof *m);
  m->type = v->type;
  m->code = v->code;
  m->message_id = v->message_id;
  m->token_offset = 0;
  m->token_length = v->token_length;
  memcpy(src, v->token, v->token_length);
  pos = v->token_length;
  for (i = 0; i < v->option_count; i++) {
    opts[i].number = v->opts[i].number;
    opts[i].offset = (uint32_t)pos;
    opts[i].length = v->opts[i].length;
    memcpy(src + pos, v->opts[i].value, v->opts[i].length);
    pos += v->opts[i].length;
  }
  m->option_count = v->option_count;
  m->payload_offset = (uint32_t)pos;
  m->payload_length = v->payload_length;
  memcpy(src + pos, v->payload, v->payload_length);
  return src;
}

static void test_vectors_decode(void) {
  uint32_t i, j;
  uint32_t seen_errors[TC_ERROR_COUNT + 1] = {0};
  for (i = 0; i < TV_COUNT; i++) {
    const tv_vector *v = &tv_vectors[i];
    tc_msg m;
    tc_opt opts[MAX_OPTS];
    uint8_t *buf = exact_copy(v->bytes, v->length);
    int r = tc_decode(buf, v->length, v->transport, &m, opts, MAX_OPTS);
    if (v->error) {
      CHECK(r == v->error, "%s: got %d (%s), want %s", v->name, r, tc_error_name(r),
            tc_error_name(v->error));
      if (v->error < 0 && v->error >= -TC_ERROR_COUNT) seen_errors[-v->error]++;
      free(buf);
      continue;
    }
    CHECK(r == (int)v->option_count, "%s: decode returned %d (%s)", v->name, r, tc_error_name(r));
    if (r < 0) {
      free(buf);
      continue;
    }
    CHECK_EQ(m.type, v->type, v->name);
    CHECK_EQ(m.code, v->code, v->name);
    CHECK_EQ(m.message_id, v->message_id, v->name);
    CHECK_EQ(m.length, v->length, v->name);
    CHECK_EQ(m.option_count, v->option_count, v->name);
    CHECK_EQ(m.token_length, v->token_length, v->name);
    CHECK(m.token_offset + m.token_length <= v->length &&
              memcmp(buf + m.token_offset, v->token, v->token_length) == 0,
          "%s: token", v->name);
    CHECK_EQ(m.payload_length, v->payload_length, v->name);
    CHECK(m.payload_offset + m.payload_length <= v->length &&
              memcmp(buf + m.payload_offset, v->payload, v->payload_length) == 0,
          "%s: payload", v->name);
    for (j = 0; j < v->option_count && j < (uint32_t)r; j++) {
      CHECK_EQ(opts[j].number, v->opts[j].number, v->name);
      CHECK(opts[j].length == v->opts[j].length && opts[j].offset + opts[j].length <= v->length &&
                memcmp(buf + opts[j].offset, v->opts[j].value, v->opts[j].length) == 0,
            "%s: option %u value", v->name, j);
    }
    /* Zero-copy: decoding the same bytes with a table of exactly the right
     * size works, one entry short gives TOO_MANY_OPTIONS. */
    CHECK_EQ(tc_decode(buf, v->length, v->transport, &m, opts, v->option_count), r, v->name);
    if (v->option_count > 0)
      CHECK_EQ(tc_decode(buf, v->length, v->transport, &m, opts, v->option_count - 1),
               TC_E_TOO_MANY_OPTIONS, v->name);
    free(buf);
  }
  /* Every decoder error except the caller-dependent ones has a vector (the codec's errors
   * end at TC_E_INVALID; the messaging layer's follow). */
  for (i = 1; i <= (uint32_t)-TC_E_INVALID; i++) {
    int e = -(int)i;
    if (e == TC_E_TOO_MANY_OPTIONS || e == TC_E_MESSAGE_TOO_LARGE || e == TC_E_BUFFER_TOO_SMALL ||
        e == TC_E_INVALID)
      continue;
    CHECK(seen_errors[i] > 0, "no vector for %s", tc_error_name(e));
  }
}

static void test_vectors_encode(void) {
  uint32_t i;
  for (i = 0; i < TV_COUNT; i++) {
    const tv_vector *v = &tv_vectors[i];
    tc_msg m, d;
    tc_opt opts[MAX_OPTS], dopts[MAX_OPTS];
    uint8_t *src, *out;
    size_t cap;
    int r, n, k;
    if (v->error) continue;
    src = vector_to_msg(v, &m, opts);

    /* size-only */
    n = tc_encode(NULL, 0, v->transport, &m, opts, src);
    CHECK(n == (int)v->length, "%s: size-only %d, want %u", v->name, n, v->length);

    /* exact buffer */
    out = malloc(v->length);
    if (out == NULL) abort();
    r = tc_encode(out, v->length, v->transport, &m, opts, src);
    CHECK(r == (int)v->length && memcmp(out, v->bytes, v->length) == 0, "%s: encode %d", v->name, r);
    free(out);

    /* every short size fails without writing past the buffer */
    for (cap = 0; cap < v->length; cap++) {
      out = malloc(cap ? cap : 1);
      if (out == NULL) abort();
      r = tc_encode(out, cap, v->transport, &m, opts, src);
      free(out);
      if (r != TC_E_BUFFER_TOO_SMALL) {
        CHECK(0, "%s: cap %zu returned %d", v->name, cap, r);
        break;
      }
    }
    CHECK(cap == v->length, "%s: BUFFER_TOO_SMALL at every short size", v->name);

    /* options given in reverse number order (repeats kept in order) come out
     * sorted: the sort is stable */
    if (v->option_count > 1) {
      tc_opt shuffled[MAX_OPTS];
      uint32_t a = v->option_count, w = 0;
      while (a > 0) { /* copy groups of equal numbers from the back */
        uint32_t b = a;
        while (b > 0 && opts[b - 1].number == opts[a - 1].number) b--;
        memcpy(&shuffled[w], &opts[b], (a - b) * sizeof(tc_opt));
        w += a - b;
        a = b;
      }
      out = malloc(v->length);
      if (out == NULL) abort();
      r = tc_encode(out, v->length, v->transport, &m, shuffled, src);
      CHECK(r == (int)v->length && memcmp(out, v->bytes, v->length) == 0, "%s: shuffled", v->name);
      CHECK(memcmp(shuffled, opts, v->option_count * sizeof(tc_opt)) == 0,
            "%s: table sorted stably in place", v->name);
      free(out);
    }

    /* decode, then re-encode straight from the decoded offset tables */
    k = tc_decode(v->bytes, v->length, v->transport, &d, dopts, MAX_OPTS);
    if (k >= 0) {
      out = malloc(v->length);
      if (out == NULL) abort();
      r = tc_encode(out, v->length, v->transport, &d, dopts, v->bytes);
      CHECK(r == (int)v->length && memcmp(out, v->bytes, v->length) == 0, "%s: re-encode", v->name);
      free(out);
    }
    free(src);
  }
}

static void test_error_names(void) {
  static const char *const want[TC_ERROR_COUNT] = {
      "TRUNCATED_HEADER", "BAD_VERSION", "RESERVED_TKL", "TOKEN_PAST_END", "RESERVED_NIBBLE",
      "OPTION_PAST_END", "OPTION_NUMBER_OVERFLOW", "EMPTY_PAYLOAD", "EMPTY_WITH_CONTENT",
      "LENGTH_PAST_END", "TRAILING_BYTES", "TOO_MANY_OPTIONS", "MESSAGE_TOO_LARGE", "WS_LENGTH",
      "BUFFER_TOO_SMALL", "INVALID", "STALE", "FULL", "TIMEOUT", "RESET", "BAD_OPTION",
      "UNREACHABLE"};
  int i;
  CHECK_EQ(TC_E_UNREACHABLE, -TC_ERROR_COUNT, "error count");
  for (i = 1; i <= TC_ERROR_COUNT; i++)
    CHECK(strcmp(tc_error_name(-i), want[i - 1]) == 0, "%d -> %s", -i, tc_error_name(-i));
  CHECK(strcmp(tc_error_name(0), "UNKNOWN") == 0, "0");
  CHECK(strcmp(tc_error_name(1), "UNKNOWN") == 0, "1");
  CHECK(strcmp(tc_error_name(-TC_ERROR_COUNT - 1), "UNKNOWN") == 0, "-23");
  CHECK(strcmp(tc_error_name(-2147483647 - 1), "UNKNOWN") == 0, "INT_MIN");
}

static void test_encode_invalid(void) {
  static const uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t out[64];
  tc_msg m;
  tc_opt o[2];
  memset(&m, 0, sizeof m);
  m.code = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), 4, "minimal GET");
  CHECK_EQ(tc_encode(out, sizeof out, 3, &m, NULL, src), TC_E_INVALID, "transport 3");
  CHECK_EQ(tc_encode(out, sizeof out, -1, &m, NULL, src), TC_E_INVALID, "transport -1");
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, NULL, NULL, src), TC_E_INVALID, "msg NULL");
  m.type = 4;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "type 4");
  CHECK_EQ(tc_encode(out, sizeof out, TC_TCP, &m, NULL, src), 2, "type ignored on TCP");
  CHECK_EQ(tc_encode(out, sizeof out, TC_WS, &m, NULL, src), 2, "type ignored on WS");
  m.type = 3;
  m.message_id = 65536;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "mid 65536");
  CHECK_EQ(tc_encode(out, sizeof out, TC_TCP, &m, NULL, src), 2, "mid ignored on TCP");
  m.message_id = 65535;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), 4, "mid 65535");
  CHECK(out[0] == 0x70 && out[1] == 1 && out[2] == 0xff && out[3] == 0xff, "RST header");
  m.code = 256;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "code 256");
  CHECK_EQ(tc_encode(out, sizeof out, TC_TCP, &m, NULL, src), TC_E_INVALID, "code 256 tcp");
  m.code = 255;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), 4, "code 255");
  m.token_length = TC_MAX_TOKEN_LENGTH + 1;
  CHECK_EQ(tc_encode(NULL, 0, TC_UDP, &m, NULL, src), TC_E_INVALID, "token 65805");
  m.token_length = 2;
  m.option_count = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "opts NULL");
  o[0].number = 65536;
  o[0].offset = 0;
  o[0].length = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, o, src), TC_E_INVALID, "option 65536");
  o[0].number = 65535;
  o[0].length = TC_MAX_OPTION_LENGTH + 1;
  CHECK_EQ(tc_encode(NULL, 0, TC_UDP, &m, o, src), TC_E_INVALID, "option length 65805");
  o[0].length = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, o, src), 4 + 2 + 3 + 1, "option 65535");
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, o, NULL), TC_E_INVALID, "src NULL");
  /* UDP empty message with content */
  m.code = 0;
  m.option_count = 0;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "0.00 with token");
  CHECK_EQ(tc_encode(out, sizeof out, TC_TCP, &m, NULL, src), 4, "TCP 0.00 with token ok");
  m.token_length = 0;
  m.option_count = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, o, src), TC_E_INVALID, "0.00 with option");
  m.option_count = 0;
  m.payload_length = 1;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, src), TC_E_INVALID, "0.00 with payload");
  m.payload_length = 0;
  CHECK_EQ(tc_encode(out, sizeof out, TC_UDP, &m, NULL, NULL), 4, "0.00 empty, src NULL ok");
  /* size-only ignores out_cap */
  CHECK_EQ(tc_encode(NULL, 1u << 20, TC_UDP, &m, NULL, NULL), 4, "size-only");
  /* length msg field is not read */
  m.length = 12345;
  CHECK_EQ(tc_encode(out, 4, TC_UDP, &m, NULL, NULL), 4, "length ignored");
}

static void test_decode_args(void) {
  static const uint8_t get[4] = {0x40, 0x01, 0x00, 0x01};
  static const uint8_t two[6] = {0x40, 0x01, 0x00, 0x01, 0xb0, 0x10};
  tc_msg m;
  tc_opt o[2];
  CHECK_EQ(tc_decode(get, 4, TC_UDP, NULL, o, 2), TC_E_INVALID, "msg NULL");
  CHECK_EQ(tc_decode(get, 4, 3, &m, o, 2), TC_E_INVALID, "transport 3");
  CHECK_EQ(tc_decode(NULL, 4, TC_UDP, &m, o, 2), TC_E_INVALID, "buf NULL");
  CHECK_EQ(tc_decode(NULL, 0, TC_UDP, &m, o, 2), TC_E_TRUNCATED_HEADER, "empty NULL buf");
  CHECK_EQ(tc_decode(get, 4, TC_UDP, &m, NULL, 2), TC_E_INVALID, "opts NULL with cap");
  CHECK_EQ(tc_decode(get, 4, TC_UDP, &m, NULL, 0), 0, "no options, no table");
  CHECK_EQ(tc_decode(two, 6, TC_UDP, &m, NULL, 0), TC_E_TOO_MANY_OPTIONS, "cap 0");
  CHECK_EQ(tc_decode(two, 6, TC_UDP, &m, o, 1), TC_E_TOO_MANY_OPTIONS, "cap 1");
  CHECK_EQ(tc_decode(two, 6, TC_UDP, &m, o, 2), 2, "cap 2");
  CHECK(o[0].number == 11 && o[1].number == 12 && o[0].length == 0, "two empty options");
  CHECK(m.payload_length == 0 && m.payload_offset == 6, "no payload: offset at end");
}

/* Build a message with the given token/body sizes, encode, check the header
 * bytes and decode it back. */
static void roundtrip_code(int transport, uint32_t code, uint32_t token_len, uint32_t opt_len,
                           uint32_t payload_len, const uint8_t *want_head, size_t want_head_len,
                           const char *what) {
  size_t src_len = (size_t)token_len + opt_len + payload_len;
  uint8_t *src = malloc(src_len ? src_len : 1), *out;
  tc_msg m, d;
  tc_opt o[1], dopt[2];
  size_t i;
  int n, r;
  if (src == NULL) abort();
  for (i = 0; i < src_len; i++) src[i] = (uint8_t)(i * 7 + 3);
  memset(&m, 0, sizeof m);
  m.type = TC_NON;
  m.code = code;
  m.message_id = 0x1234;
  m.token_length = token_len;
  m.option_count = opt_len ? 1 : 0;
  o[0].number = 2048;
  o[0].offset = token_len;
  o[0].length = opt_len;
  m.payload_offset = token_len + opt_len;
  m.payload_length = payload_len;
  n = tc_encode(NULL, 0, transport, &m, o, src);
  CHECK(n > 0, "%s: size %d", what, n);
  if (n <= 0) {
    free(src);
    return;
  }
  out = malloc((size_t)n);
  if (out == NULL) abort();
  r = tc_encode(out, (size_t)n, transport, &m, o, src);
  CHECK_EQ(r, n, what);
  CHECK(memcmp(out, want_head, want_head_len) == 0, "%s: header bytes", what);
  r = tc_decode(out, (size_t)n, transport, &d, dopt, 2);
  CHECK_EQ(r, (int)m.option_count, what);
  if (r >= 0) {
    CHECK(d.token_length == token_len && memcmp(out + d.token_offset, src, token_len) == 0,
          "%s: token", what);
    CHECK(d.payload_length == payload_len &&
              memcmp(out + d.payload_offset, src + token_len + opt_len, payload_len) == 0,
          "%s: payload", what);
    if (r == 1)
      CHECK(dopt[0].number == 2048 && dopt[0].length == opt_len &&
                memcmp(out + dopt[0].offset, src + token_len, opt_len) == 0,
            "%s: option", what);
    CHECK_EQ(d.length, n, what);
  }
  if (transport == TC_TCP) { /* one byte short / long */
    uint8_t *longer = malloc((size_t)n + 1);
    if (longer == NULL) abort();
    memcpy(longer, out, (size_t)n);
    longer[n] = 0;
    CHECK_EQ(tc_decode(out, (size_t)n - 1, transport, &d, dopt, 2), TC_E_LENGTH_PAST_END, what);
    CHECK_EQ(tc_decode(longer, (size_t)n + 1, transport, &d, dopt, 2), TC_E_TRAILING_BYTES, what);
    free(longer);
  }
  free(out);
  free(src);
}

static void roundtrip_big(int transport, uint32_t token_len, uint32_t opt_len, uint32_t payload_len,
                          const uint8_t *want_head, size_t want_head_len, const char *what) {
  roundtrip_code(transport, 0x45, token_len, opt_len, payload_len, want_head, want_head_len, what);
}

static void test_big(void) {
  /* TCP Len nibble 15: body of exactly 65805 bytes (ext 0) and 70000 bytes. */
  static const uint8_t h1[] = {0xf0, 0, 0, 0, 0, 0x45, 0xff};
  static const uint8_t h2[] = {0xf1, 0, 0, 0x10, 0x63, 0x45, 0x03 /* token */};
  static const uint8_t h3[] = {0xe0, 0xff, 0xff, 0x45, 0xff}; /* Len 65804: largest 2-byte */
  static const uint8_t h4[] = {0x5e, 0x45, 0x12, 0x34, 0xff, 0xff}; /* UDP TKL 65804 */
  static const uint8_t h5[] = {0x0e, 0x45, 0xff, 0xff};              /* WS TKL 65804 */
  static const uint8_t h6[] = {0xf0, 0, 0, 0, 0x04, 0x45, 0xee, 0x06, 0xf3, 0xff, 0xff};
  roundtrip_big(TC_TCP, 0, 0, 65804, h1, sizeof h1, "tcp Len 15 ext 0");
  roundtrip_big(TC_TCP, 1, 0, 69999, h2, sizeof h2, "tcp Len 15 body 70000");
  roundtrip_big(TC_TCP, 0, 0, 65803, h3, sizeof h3, "tcp Len 14 max");
  roundtrip_big(TC_UDP, TC_MAX_TOKEN_LENGTH, 0, 0, h4, sizeof h4, "udp max token");
  roundtrip_big(TC_WS, TC_MAX_TOKEN_LENGTH, 0, 0, h5, sizeof h5, "ws max token");
  /* option 2048 (delta ext 0x06f3), length 65804 (ext 0xffff): body 65809 */
  roundtrip_big(TC_TCP, 0, TC_MAX_OPTION_LENGTH, 0, h6, sizeof h6, "tcp max option length");
  {
    /* TCP GET with every framing length size: Len 0..12, 13 (+1), 14 (+2), 15 (+4) */
    static const uint8_t g0[] = {0xc1, 0x01, 0x03};             /* body 12 */
    static const uint8_t g1[] = {0xd1, 0x00, 0x01, 0x03};       /* body 13 */
    static const uint8_t g2[] = {0xe1, 0x00, 0x00, 0x01, 0x03}; /* body 269 */
    static const uint8_t g3[] = {0xf1, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03}; /* body 65805 */
    /* option 2048 with a 9-byte value is 12 bytes on the wire (3-byte header) */
    roundtrip_code(TC_TCP, 1, 1, 9, 0, g0, sizeof g0, "tcp GET Len 12");
    roundtrip_code(TC_TCP, 1, 1, 10, 0, g1, sizeof g1, "tcp GET Len 13");
    roundtrip_code(TC_TCP, 1, 1, 9, 256, g2, sizeof g2, "tcp GET Len 14");
    roundtrip_code(TC_TCP, 1, 1, 9, 65792, g3, sizeof g3, "tcp GET Len 15");
  }
  roundtrip_big(TC_UDP, 300, TC_MAX_OPTION_LENGTH, 100000, h4, 1, "udp large everything");
  roundtrip_big(TC_TCP, 65804, 65804, 1 << 20, h2, 0, "tcp large everything");

  /* A 4-byte TCP length near 4 GiB must not wrap: decode reports the body as
   * missing rather than mis-framing it. */
  {
    static const uint8_t huge[] = {0xf0, 0xff, 0xff, 0xff, 0xff, 0x01, 0xb1, 0x61};
    static const uint8_t wrap[] = {0xf0, 0xff, 0xfe, 0xfe, 0xf3, 0x01}; /* Len = 2^32 exactly */
    tc_msg d;
    tc_opt o[2];
    CHECK_EQ(tc_decode(huge, sizeof huge, TC_TCP, &d, o, 2), TC_E_LENGTH_PAST_END, "huge Len");
    CHECK_EQ(tc_decode(wrap, sizeof wrap, TC_TCP, &d, o, 2), TC_E_LENGTH_PAST_END, "Len 2^32");
  }
}

/* Seeded random messages on all transports: encode, decode, compare. */
static void test_random_roundtrip(void) {
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  uint8_t src[8192], out[16384];
  int iter;
  for (iter = 0; iter < 3000; iter++) {
    tc_msg m, d;
    tc_opt o[20], sorted[20], dopt[20];
    uint32_t i, n = tc_rand(&seed) % 20, pos;
    int transport = (int)(tc_rand(&seed) % 3), r, k;
    for (i = 0; i < sizeof src; i++) src[i] = (uint8_t)tc_rand(&seed);
    memset(&m, 0, sizeof m);
    m.type = tc_rand(&seed) & 3;
    m.code = 1 + tc_rand(&seed) % 255;
    m.message_id = tc_rand(&seed) & 0xffff;
    m.token_length = (tc_rand(&seed) & 3) ? tc_rand(&seed) % 9 : tc_rand(&seed) % 400;
    pos = m.token_length;
    for (i = 0; i < n; i++) {
      uint32_t sel = tc_rand(&seed) % 4;
      o[i].number = sel == 0 ? tc_rand(&seed) % 16 : sel == 1 ? tc_rand(&seed) % 300
                  : sel == 2 ? tc_rand(&seed) % 65536 : 11;
      o[i].length = (tc_rand(&seed) & 7) ? tc_rand(&seed) % 14 : tc_rand(&seed) % 300;
      o[i].offset = pos;
      pos += o[i].length;
    }
    m.option_count = n;
    m.payload_offset = pos;
    m.payload_length = (tc_rand(&seed) & 1) ? tc_rand(&seed) % (uint32_t)(sizeof src - pos) : 0;
    memcpy(sorted, o, sizeof o);
    r = tc_encode(out, sizeof out, transport, &m, sorted, src);
    CHECK(r > 0, "random %d: encode %d", iter, r);
    if (r <= 0) continue;
    CHECK_EQ(tc_encode(NULL, 0, transport, &m, sorted, src), r, "random size-only");
    k = tc_decode(out, (size_t)r, transport, &d, dopt, 20);
    CHECK(k == (int)n, "random %d: decode %d (%s)", iter, k, tc_error_name(k));
    if (k != (int)n) continue;
    CHECK(d.code == m.code && d.token_length == m.token_length &&
              memcmp(out + d.token_offset, src, m.token_length) == 0 &&
              d.payload_length == m.payload_length &&
              memcmp(out + d.payload_offset, src + m.payload_offset, m.payload_length) == 0,
          "random %d: fields", iter);
    if (transport == TC_UDP)
      CHECK(d.type == m.type && d.message_id == m.message_id, "random %d: udp header", iter);
    else
      CHECK(d.type == 0 && d.message_id == 0, "random %d: reliable header zeroed", iter);
    for (i = 0; i < n; i++) {
      CHECK(dopt[i].number == sorted[i].number && dopt[i].length == sorted[i].length &&
                memcmp(out + dopt[i].offset, src + sorted[i].offset, sorted[i].length) == 0,
            "random %d: option %u", iter, i);
      if (i > 0) CHECK(sorted[i - 1].number <= sorted[i].number, "random %d: sorted", iter);
    }
    /* stability: among equal numbers, offsets (assigned increasing) keep order */
    for (i = 1; i < n; i++)
      if (sorted[i - 1].number == sorted[i].number)
        CHECK(sorted[i - 1].offset <= sorted[i].offset, "random %d: stable", iter);
  }
}

static void test_sort_stability(void) {
  static const uint8_t src[] = "abcxy";
  tc_msg m;
  tc_opt o[5] = {{11, 0, 1}, {4, 3, 1}, {11, 1, 1}, {4, 4, 1}, {11, 2, 1}};
  uint8_t out[64];
  static const uint8_t want[] = {0x40, 0x01, 0x00, 0x07, 0x41, 'x', 0x01, 'y',
                                 0x71, 'a',  0x01, 'b',  0x01, 'c'};
  int r;
  memset(&m, 0, sizeof m);
  m.code = 1;
  m.message_id = 7;
  m.option_count = 5;
  r = tc_encode(out, sizeof out, TC_UDP, &m, o, src);
  CHECK(r == (int)sizeof want && memcmp(out, want, sizeof want) == 0, "stable encode %d", r);
  CHECK(o[0].offset == 3 && o[1].offset == 4 && o[2].offset == 0 && o[3].offset == 1 &&
            o[4].offset == 2,
        "in-place stable order");
}

void test_codec(void) {
  test_error_names();
  test_vectors_decode();
  test_vectors_encode();
  test_encode_invalid();
  test_decode_args();
  test_sort_stability();
  test_big();
  test_random_roundtrip();
}

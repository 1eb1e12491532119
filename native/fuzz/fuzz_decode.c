/* fuzz_decode.c — libFuzzer harness for tc_decode / tc_encode.
 *
 * Input: byte 0 selects the transport (low 2 bits, mod 3) and the option
 * table size (bits 2..7); the rest is the message. When decoding succeeds the
 * message is re-encoded (size-only, exact, one byte short), decoded again and
 * compared field by field; it is also carried over to the other transports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"

#define MAX_OPTS 300
static void same(const uint8_t *a, const tc_msg *ma, const tc_opt *oa, const uint8_t *b,
                 const tc_msg *mb, const tc_opt *ob, int compare_udp) {
  uint32_t i;
  REQUIRE(ma->code == mb->code);
  if (compare_udp) REQUIRE(ma->type == mb->type && ma->message_id == mb->message_id);
  REQUIRE(ma->token_length == mb->token_length);
  REQUIRE(memcmp(a + ma->token_offset, b + mb->token_offset, ma->token_length) == 0);
  REQUIRE(ma->option_count == mb->option_count);
  for (i = 0; i < ma->option_count; i++) {
    REQUIRE(oa[i].number == ob[i].number && oa[i].length == ob[i].length);
    REQUIRE(memcmp(a + oa[i].offset, b + ob[i].offset, oa[i].length) == 0);
  }
  REQUIRE(ma->payload_length == mb->payload_length);
  REQUIRE(memcmp(a + ma->payload_offset, b + mb->payload_offset, ma->payload_length) == 0);
}

static void check_layout(const tc_msg *m, const tc_opt *o, size_t len) {
  uint32_t i;
  REQUIRE(m->length == len);
  REQUIRE((uint64_t)m->token_offset + m->token_length <= len);
  REQUIRE(m->token_length <= TC_MAX_TOKEN_LENGTH);
  REQUIRE((uint64_t)m->payload_offset + m->payload_length <= len);
  REQUIRE(m->code <= 255 && m->type <= 3 && m->message_id <= 65535);
  for (i = 0; i < m->option_count; i++) {
    REQUIRE(o[i].number <= 65535 && o[i].length <= TC_MAX_OPTION_LENGTH);
    REQUIRE((uint64_t)o[i].offset + o[i].length <= len);
    REQUIRE(o[i].offset >= m->token_offset + m->token_length);
    if (i > 0) REQUIRE(o[i - 1].number <= o[i].number && o[i - 1].offset < o[i].offset);
    if (m->payload_length) REQUIRE(o[i].offset + o[i].length < m->payload_offset);
  }
}

/* Encode msg/opts (src = buf) for transport, decode the result and compare. */
static void reencode(const uint8_t *buf, size_t len, int from, int to, const tc_msg *m,
                     tc_opt *opts) {
  tc_msg m2;
  tc_opt *o2;
  uint8_t *out;
  int n, r, k;
  n = tc_encode(NULL, 0, to, m, opts, buf);
  if (to == TC_UDP && m->code == 0 &&
      (m->token_length || m->option_count || m->payload_length)) {
    REQUIRE(n == TC_E_INVALID);
    return;
  }
  REQUIRE(n > 0);
  if (from == to) REQUIRE((size_t)n <= len); /* minimal encodings never grow */
  out = malloc((size_t)n);
  REQUIRE(out != NULL);
  REQUIRE(tc_encode(out, (size_t)n - 1, to, m, opts, buf) == TC_E_BUFFER_TOO_SMALL);
  r = tc_encode(out, (size_t)n, to, m, opts, buf);
  REQUIRE(r == n);
  o2 = malloc(sizeof(tc_opt) * (m->option_count + 1));
  REQUIRE(o2 != NULL);
  k = tc_decode(out, (size_t)n, to, &m2, o2, m->option_count);
  REQUIRE(k == (int)m->option_count);
  check_layout(&m2, o2, (size_t)n);
  same(buf, m, opts, out, &m2, o2, from == TC_UDP && to == TC_UDP);
  /* encoding the decoded tables again gives the same bytes */
  {
    uint8_t *again = malloc((size_t)n);
    REQUIRE(again != NULL);
    REQUIRE(tc_encode(again, (size_t)n, to, &m2, o2, out) == n);
    REQUIRE(memcmp(again, out, (size_t)n) == 0);
    free(again);
  }
  free(o2);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static tc_opt opts[MAX_OPTS];
  tc_msg m;
  int transport, r, t;
  uint32_t cap;
  if (size < 1) return 0;
  transport = (data[0] & 3) % 3;
  cap = (data[0] >> 2) == 63 ? MAX_OPTS : (uint32_t)(data[0] >> 2);
  data++;
  size--;
  r = tc_decode(data, size, transport, &m, opts, cap);
  if (r < 0) {
    REQUIRE(r >= -TC_ERROR_COUNT && r != TC_E_BUFFER_TOO_SMALL && r != TC_E_INVALID);
    REQUIRE(strcmp(tc_error_name(r), "UNKNOWN") != 0);
    if (r == TC_E_TOO_MANY_OPTIONS) { /* a bigger table may succeed */
      r = tc_decode(data, size, transport, &m, opts, MAX_OPTS);
      if (r < 0) return 0;
    } else {
      return 0;
    }
  }
  REQUIRE((uint32_t)r == m.option_count && m.option_count <= MAX_OPTS);
  check_layout(&m, opts, size);
  if (transport != TC_UDP) REQUIRE(m.type == 0 && m.message_id == 0);
  for (t = 0; t < 3; t++) reencode(data, size, transport, t, &m, opts);
  return 0;
}

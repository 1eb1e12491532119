/* fuzz_deframer.c — libFuzzer harness for the TCP stream deframer.
 *
 * Input: byte 0 = split count (low 4 bits) and max_message_size choice (high
 * 4 bits); then `split count` chunk sizes (1..256), one frame-table size byte,
 * then the stream. The stream is fed in chunks of those sizes (cycled) and
 * every frame is compared with an independent one-shot reference framing;
 * errors must match too, and each frame must decode as a TCP message without
 * a framing error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"

static const uint32_t max_sizes[16] = {2,   3,    7,    8,    9,    16,    64,    100,
                                       256, 1000, 4096, 4097, 65536, 65805, 70000, 200000};

#define MAX_REF 8192
static size_t ref_off[MAX_REF + 1];

/* Independent reference: frame the whole stream in one pass. Returns the number
 * of complete messages; *err gets the error that stops the stream (or 0). */
static uint32_t reference(const uint8_t *s, size_t len, uint32_t max, int *err, size_t *end) {
  size_t pos = 0;
  uint32_t n = 0;
  *err = 0;
  while (pos < len && n < MAX_REF) {
    unsigned b0 = s[pos], ln = b0 >> 4, tkl = b0 & 15;
    size_t lext = ln == 13 ? 1 : ln == 14 ? 2 : ln == 15 ? 4 : 0;
    size_t text = tkl == 13 ? 1 : tkl == 14 ? 2 : 0;
    size_t hlen = 2 + lext + text;
    uint64_t body = 0, tok = 0, total;
    const uint8_t *p = s + pos;
    if (tkl == 15) {
      *err = TC_E_RESERVED_TKL;
      break;
    }
    if (len - pos < hlen) break;
    if (ln < 13) body = ln;
    else if (ln == 13) body = p[1] + 13u;
    else if (ln == 14) body = (p[1] * 256u + p[2]) + 269u;
    else body = ((uint64_t)p[1] << 24) + ((uint64_t)p[2] << 16) + ((uint64_t)p[3] << 8) + p[4] + 65805u;
    if (tkl < 13) tok = tkl;
    else if (tkl == 13) tok = p[1 + lext + 1] + 13u;
    else tok = (p[1 + lext + 1] * 256u + p[1 + lext + 2]) + 269u;
    total = hlen + tok + body;
    if (total > max) {
      *err = TC_E_MESSAGE_TOO_LARGE;
      break;
    }
    if (len - pos < total) break;
    ref_off[n++] = pos;
    pos += (size_t)total;
  }
  ref_off[n] = pos;
  *end = pos;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned nsplit, i;
  uint32_t max, cap, got = 0, nref;
  const uint8_t *splits, *stream;
  size_t slen, pos = 0, end;
  int ref_err, err = 0, r;
  tc_deframer *d;
  tc_frame frames[16];
  if (size < 2) return 0;
  nsplit = data[0] & 15;
  max = max_sizes[data[0] >> 4];
  if (size < 2u + nsplit) return 0;
  splits = data + 1;
  cap = 1u + data[1 + nsplit] % 16u;
  stream = data + 2 + nsplit;
  slen = size - 2 - nsplit;

  nref = reference(stream, slen, max, &ref_err, &end);
  if (nref >= MAX_REF) return 0;

  d = malloc(tc_deframer_size(max));
  REQUIRE(d != NULL);
  REQUIRE(tc_deframer_init(d, tc_deframer_size(max), max) == 0);

  for (i = 0; pos < slen && err == 0; i++) {
    size_t clen = nsplit ? (size_t)splits[i % nsplit] + 1 : slen, off = 0;
    uint8_t *chunk;
    if (clen > slen - pos) clen = slen - pos;
    chunk = malloc(clen);
    REQUIRE(chunk != NULL);
    memcpy(chunk, stream + pos, clen);
    while (off < clen) {
      size_t consumed = 0;
      int k;
      r = tc_deframer_feed(d, chunk + off, clen - off, &consumed, frames, cap);
      if (r < 0) {
        err = r;
        break;
      }
      REQUIRE(consumed <= clen - off);
      REQUIRE(r > 0 || consumed > 0);
      for (k = 0; k < r; k++) {
        const uint8_t *p;
        tc_msg m;
        tc_opt o[8];
        int dr;
        REQUIRE(got < nref);
        REQUIRE(frames[k].length == ref_off[got + 1] - ref_off[got]);
        if (frames[k].where == TC_FRAME_CHUNK) {
          REQUIRE((size_t)frames[k].offset + frames[k].length <= consumed);
          p = chunk + off + frames[k].offset;
        } else {
          REQUIRE(frames[k].where == TC_FRAME_BUFFER && k == r - 1);
          p = tc_deframer_buffer(d) + frames[k].offset;
        }
        REQUIRE(memcmp(p, stream + ref_off[got], frames[k].length) == 0);
        dr = tc_decode(p, frames[k].length, TC_TCP, &m, o, 8);
        REQUIRE(dr != TC_E_TRUNCATED_HEADER && dr != TC_E_LENGTH_PAST_END &&
                dr != TC_E_TRAILING_BYTES && dr != TC_E_RESERVED_TKL &&
                dr != TC_E_TOKEN_PAST_END);
        got++;
      }
      off += consumed;
    }
    free(chunk);
    pos += clen;
  }
  if (err == 0) { /* an error found after frames in the same call shows up next */
    size_t consumed;
    r = tc_deframer_feed(d, NULL, 0, &consumed, frames, cap);
    if (r < 0) err = r;
    else REQUIRE(r == 0);
  }
  REQUIRE(err == ref_err);
  REQUIRE(got == nref);
  if (err == 0) REQUIRE(tc_deframer_pending(d) == slen - end);
  else {
    size_t consumed;
    REQUIRE(tc_deframer_feed(d, stream, slen, &consumed, frames, cap) == err); /* sticky */
  }
  free(d);
  return 0;
}

/* test_deframer.c — the RFC 8323 TCP stream deframer: all-in-one, byte-at-a-
 * time and random splits over a stream of many messages, table limits,
 * MESSAGE_TOO_LARGE, RESERVED_TKL, sticky errors and argument checks. */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "vectors.h"

typedef struct stream {
  uint8_t *bytes;
  size_t len, cap;
  size_t *off; /* message start offsets; off[count] == len */
  uint32_t count, max_msg;
} stream;

static void stream_add(stream *s, const uint8_t *p, size_t n) {
  if (s->len + n > s->cap) {
    s->cap = (s->len + n) * 2;
    s->bytes = realloc(s->bytes, s->cap);
    if (s->bytes == NULL) abort();
  }
  s->off = realloc(s->off, (s->count + 2) * sizeof(size_t));
  if (s->off == NULL) abort();
  memcpy(s->bytes + s->len, p, n);
  s->off[s->count++] = s->len;
  s->len += n;
  s->off[s->count] = s->len;
  if (n > s->max_msg) s->max_msg = (uint32_t)n;
}

/* Every valid vector, re-encoded for TCP, plus a few large messages. */
static void build_stream(stream *s) {
  uint32_t i;
  uint8_t *tmp = malloc(200000), *src = malloc(150000);
  if (tmp == NULL || src == NULL) abort();
  memset(s, 0, sizeof *s);
  for (i = 0; i < TV_COUNT; i++) {
    const tv_vector *v = &tv_vectors[i];
    tc_msg m;
    tc_opt o[64];
    int r;
    if (v->error) continue;
    r = tc_decode(v->bytes, v->length, v->transport, &m, o, 64);
    if (r < 0) continue; /* reported by the codec tests */
    r = tc_encode(tmp, 200000, TC_TCP, &m, o, v->bytes);
    CHECK(r > 0, "%s: tcp re-encode %d", v->name, r);
    if (r > 0) stream_add(s, tmp, (size_t)r);
  }
  for (i = 0; i < 150000; i++) src[i] = (uint8_t)(i ^ (i >> 8));
  {
    static const uint32_t payloads[] = {70000, 300, 65803, 65804, 1, 12, 13, 268, 269};
    for (i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
      tc_msg m;
      int r;
      memset(&m, 0, sizeof m);
      m.code = 0x45;
      m.token_length = i * 40; /* includes extended TKL 13 and 14 */
      m.payload_offset = m.token_length;
      m.payload_length = payloads[i];
      r = tc_encode(tmp, 200000, TC_TCP, &m, NULL, src);
      CHECK(r > 0, "big %u", i);
      if (r > 0) stream_add(s, tmp, (size_t)r);
    }
  }
  free(tmp);
  free(src);
}

enum { MODE_ALL = 0, MODE_BYTE = 1, MODE_RANDOM = 2 };

static tc_deframer *new_deframer(uint32_t max) {
  size_t sz = tc_deframer_size(max);
  tc_deframer *d = malloc(sz);
  if (d == NULL) abort();
  CHECK_EQ(tc_deframer_init(d, sz, max), 0, "init");
  return d;
}

/* Feed the stream in chunks chosen by mode; check every frame against the
 * expected message and the pending count after every call. */
static void run_stream(const stream *s, int mode, uint32_t cap, uint64_t seed, const char *what) {
  tc_deframer *d = new_deframer(s->max_msg);
  tc_frame frames[64];
  size_t pos = 0;
  uint32_t next = 0, chunk_frames = 0, buffer_frames = 0;
  int ok = 1;
  while (pos < s->len && ok) {
    size_t clen, off = 0;
    uint8_t *chunk;
    if (mode == MODE_ALL) clen = s->len - pos;
    else if (mode == MODE_BYTE) clen = 1;
    else {
      uint32_t r = tc_rand(&seed);
      clen = (r & 7) == 0 ? 1 + r % 100000 : (r & 3) == 0 ? 0 : 1 + (r >> 8) % 64;
    }
    if (clen > s->len - pos) clen = s->len - pos;
    chunk = malloc(clen ? clen : 1); /* exact size: ASan catches overreads */
    if (chunk == NULL) abort();
    memcpy(chunk, s->bytes + pos, clen);
    do {
      size_t consumed = 12345;
      int n = tc_deframer_feed(d, chunk + off, clen - off, &consumed, frames, cap), k;
      if (n < 0 || consumed > clen - off) {
        CHECK(0, "%s: feed returned %d consumed %zu", what, n, consumed);
        ok = 0;
        break;
      }
      for (k = 0; k < n; k++) {
        const uint8_t *p;
        if (next >= s->count) {
          CHECK(0, "%s: extra frame", what);
          ok = 0;
          break;
        }
        if (frames[k].where == TC_FRAME_CHUNK) {
          p = chunk + off + frames[k].offset;
          CHECK(frames[k].offset + frames[k].length <= consumed, "%s: chunk frame in range", what);
          chunk_frames++;
        } else {
          p = tc_deframer_buffer(d) + frames[k].offset;
          CHECK(k == n - 1, "%s: a buffer frame ends the batch", what);
          buffer_frames++;
        }
        if (frames[k].length != s->off[next + 1] - s->off[next] ||
            memcmp(p, s->bytes + s->off[next], frames[k].length) != 0) {
          CHECK(0, "%s: frame %u differs (len %u want %zu)", what, next, frames[k].length,
                s->off[next + 1] - s->off[next]);
          ok = 0;
          break;
        }
        next++;
      }
      off += consumed;
      /* pending == stream bytes consumed past the start of the next message */
      if (ok && next < s->count)
        CHECK_EQ(tc_deframer_pending(d), pos + off - s->off[next], what);
      if (n == 0 && consumed == 0 && off < clen) {
        CHECK(0, "%s: no progress", what);
        ok = 0;
      }
    } while (ok && off < clen);
    free(chunk);
    pos += clen;
  }
  CHECK(next == s->count, "%s: got %u of %u messages", what, next, s->count);
  CHECK_EQ(tc_deframer_pending(d), 0, what);
  if (mode == MODE_ALL) CHECK(buffer_frames == 0, "%s: all zero-copy (%u buffered)", what, buffer_frames);
  if (mode == MODE_BYTE) CHECK(chunk_frames == 0, "%s: all buffered (%u chunk)", what, chunk_frames);
  if (mode == MODE_RANDOM && s->count > 50)
    CHECK(chunk_frames > 0 && buffer_frames > 0, "%s: both kinds of frame", what);
  free(d);
}

static void test_streams(void) {
  stream s;
  int i;
  build_stream(&s);
  CHECK(s.count > 60, "stream has %u messages", s.count);
  run_stream(&s, MODE_ALL, 64, 0, "all-in-one");
  run_stream(&s, MODE_ALL, 1, 0, "all-in-one, table of 1");
  run_stream(&s, MODE_ALL, 3, 0, "all-in-one, table of 3");
  run_stream(&s, MODE_BYTE, 64, 0, "byte-at-a-time");
  for (i = 0; i < 40; i++) run_stream(&s, MODE_RANDOM, 1 + (uint32_t)i % 5, 0x1234567ULL + (uint64_t)i, "random splits");
  free(s.bytes);
  free(s.off);
}

static void test_init_and_args(void) {
  tc_deframer *d;
  size_t consumed;
  tc_frame f[2];
  static const uint8_t msg[] = {0x00, 0x01};
  uint8_t *mem;
  CHECK(tc_deframer_size(100) >= sizeof(tc_deframer) + 100, "size 100");
  CHECK(tc_deframer_size(2) >= sizeof(tc_deframer) + 8, "size covers a full header");
  CHECK(tc_deframer_size(0xffffffffu) == 0 || tc_deframer_size(0xffffffffu) > 0xffffffffu,
        "size of 4 GiB either unrepresentable (0) or large enough");
  mem = malloc(tc_deframer_size(100));
  if (mem == NULL) abort();
  d = (tc_deframer *)mem;
  CHECK_EQ(tc_deframer_init(d, tc_deframer_size(100) - 1, 100), TC_E_INVALID, "mem too small");
  CHECK_EQ(tc_deframer_init(d, tc_deframer_size(100), 1), TC_E_INVALID, "max 1");
  CHECK_EQ(tc_deframer_init(d, tc_deframer_size(100), 0), TC_E_INVALID, "max 0");
  CHECK_EQ(tc_deframer_init(NULL, tc_deframer_size(100), 100), TC_E_INVALID, "NULL");
  CHECK_EQ(tc_deframer_init(d, tc_deframer_size(100), 100), 0, "init");
  CHECK_EQ(tc_deframer_pending(d), 0, "fresh pending");
  CHECK_EQ(tc_deframer_feed(d, msg, 2, NULL, f, 2), TC_E_INVALID, "consumed NULL");
  CHECK_EQ(tc_deframer_feed(d, msg, 2, &consumed, NULL, 2), TC_E_INVALID, "frames NULL");
  CHECK_EQ(tc_deframer_feed(d, NULL, 2, &consumed, f, 2), TC_E_INVALID, "chunk NULL");
  CHECK_EQ(tc_deframer_feed(d, NULL, 0, &consumed, f, 2), 0, "empty NULL chunk");
  CHECK_EQ(tc_deframer_feed(d, msg, 2, &consumed, f, 0), 0, "cap 0");
  CHECK_EQ(consumed, 0, "cap 0 consumes nothing");
  CHECK_EQ(tc_deframer_feed(d, msg, 2, &consumed, f, 2), 1, "one frame");
  CHECK(consumed == 2 && f[0].where == TC_FRAME_CHUNK && f[0].offset == 0 && f[0].length == 2,
        "zero-copy frame");
  /* buffer frame stays valid until the next call; the next call releases it */
  CHECK_EQ(tc_deframer_feed(d, msg, 1, &consumed, f, 2), 0, "half");
  CHECK_EQ(tc_deframer_pending(d), 1, "one byte pending");
  CHECK_EQ(tc_deframer_feed(d, NULL, 0, &consumed, f, 2), 0, "empty feed while buffering");
  CHECK_EQ(tc_deframer_pending(d), 1, "still one byte pending");
  CHECK_EQ(tc_deframer_feed(d, msg + 1, 1, &consumed, f, 2), 1, "completed");
  CHECK(f[0].where == TC_FRAME_BUFFER && f[0].length == 2 &&
            memcmp(tc_deframer_buffer(d) + f[0].offset, msg, 2) == 0,
        "buffer frame");
  CHECK_EQ(tc_deframer_pending(d), 0, "returned message is not pending");
  CHECK_EQ(tc_deframer_feed(d, NULL, 0, &consumed, f, 2), 0, "release");
  CHECK_EQ(tc_deframer_pending(d), 0, "released");
  free(mem);

  /* max_message_size below the header size: the buffer still fits a header */
  mem = malloc(tc_deframer_size(2));
  if (mem == NULL) abort();
  d = (tc_deframer *)mem;
  CHECK_EQ(tc_deframer_init(d, tc_deframer_size(2), 2), 0, "init max 2");
  {
    static const uint8_t big_hdr[] = {0xf0, 0, 0, 0}; /* Len 15: header 6 bytes */
    size_t k;
    int r = 0;
    CHECK_EQ(tc_deframer_feed(d, msg, 2, &consumed, f, 2), 1, "2-byte message at max 2");
    for (k = 0; k < sizeof big_hdr && r == 0; k++) r = tc_deframer_feed(d, big_hdr + k, 1, &consumed, f, 2);
    CHECK_EQ(r, 0, "header still incomplete");
    CHECK_EQ(tc_deframer_pending(d), 4, "4 header bytes buffered");
  }
  free(mem);
}

static void test_too_large(void) {
  uint8_t msg[80];
  tc_msg m;
  tc_deframer *d;
  tc_frame f[4];
  size_t consumed, k;
  int r;
  static const uint8_t src[80] = {0};
  memset(&m, 0, sizeof m);
  m.code = 1;
  m.payload_length = 60; /* body 61 -> Len 13: header 3 bytes, total 64 */
  CHECK_EQ(tc_encode(msg, sizeof msg, TC_TCP, &m, NULL, src), 64, "64-byte message");

  d = new_deframer(64);
  CHECK_EQ(tc_deframer_feed(d, msg, 64, &consumed, f, 4), 1, "exactly max accepted");
  for (k = 0; k < 64; k++) {
    r = tc_deframer_feed(d, msg + k, 1, &consumed, f, 4);
    if (r != 0) break;
  }
  CHECK(k == 63 && r == 1 && f[0].where == TC_FRAME_BUFFER, "exactly max, byte at a time");
  free(d);

  d = new_deframer(63);
  /* byte at a time: rejected as soon as the 3-byte header is complete */
  CHECK_EQ(tc_deframer_feed(d, msg, 1, &consumed, f, 4), 0, "byte 1");
  CHECK_EQ(tc_deframer_feed(d, msg + 1, 1, &consumed, f, 4), 0, "byte 2");
  CHECK_EQ(tc_deframer_feed(d, msg + 2, 1, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "byte 3");
  /* sticky */
  CHECK_EQ(tc_deframer_feed(d, msg, 64, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "sticky");
  CHECK_EQ(consumed, 0, "sticky consumes nothing");
  CHECK_EQ(tc_deframer_feed(d, NULL, 0, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "sticky empty");
  free(d);

  /* all in one chunk: the header alone decides, nothing is buffered */
  d = new_deframer(63);
  CHECK_EQ(tc_deframer_feed(d, msg, 3, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "header only");
  CHECK_EQ(tc_deframer_pending(d), 0, "nothing buffered");
  free(d);

  /* a 4 GiB Len 15 claim is rejected from its 6-byte header */
  {
    static const uint8_t huge[6] = {0xf0, 0xff, 0xff, 0xff, 0xff, 0x01};
    d = new_deframer(1u << 20);
    CHECK_EQ(tc_deframer_feed(d, huge, 6, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "4 GiB");
    free(d);
  }

  /* frames before the bad message come first; the error on the next call */
  {
    uint8_t two[2 + 64];
    two[0] = 0x00;
    two[1] = 0x01;
    memcpy(two + 2, msg, 64);
    d = new_deframer(63);
    CHECK_EQ(tc_deframer_feed(d, two, sizeof two, &consumed, f, 4), 1, "good frame first");
    CHECK_EQ(consumed, 2, "consumed up to the bad message");
    CHECK_EQ(tc_deframer_feed(d, two + 2, 64, &consumed, f, 4), TC_E_MESSAGE_TOO_LARGE, "then error");
    free(d);
  }
}

static void test_reserved_tkl(void) {
  static const uint8_t good_then_bad[] = {0x00, 0x01, 0x0f, 0x01};
  static const uint8_t bad_len[] = {0xdf, 0x05};
  tc_deframer *d = new_deframer(1000);
  tc_frame f[4];
  size_t consumed;
  CHECK_EQ(tc_deframer_feed(d, good_then_bad, 4, &consumed, f, 4), 1, "good first");
  CHECK_EQ(tc_deframer_feed(d, good_then_bad + consumed, 4 - consumed, &consumed, f, 4),
           TC_E_RESERVED_TKL, "TKL 15");
  CHECK_EQ(tc_deframer_feed(d, good_then_bad, 2, &consumed, f, 4), TC_E_RESERVED_TKL, "sticky");
  free(d);
  d = new_deframer(1000);
  CHECK_EQ(tc_deframer_feed(d, bad_len, 1, &consumed, f, 4), TC_E_RESERVED_TKL, "from byte 0");
  free(d);
  /* after buffering a partial message */
  d = new_deframer(1000);
  CHECK_EQ(tc_deframer_feed(d, good_then_bad, 1, &consumed, f, 4), 0, "partial");
  CHECK_EQ(tc_deframer_feed(d, good_then_bad + 1, 3, &consumed, f, 4), 1, "completes");
  CHECK(f[0].where == TC_FRAME_BUFFER, "buffered frame");
  CHECK_EQ(tc_deframer_feed(d, good_then_bad + 2, 2, &consumed, f, 4), TC_E_RESERVED_TKL, "then TKL 15");
  free(d);
}

/* Frames decode as TCP messages without framing errors. */
static void test_frames_decode(void) {
  stream s;
  uint32_t i;
  build_stream(&s);
  for (i = 0; i < s.count; i++) {
    tc_msg m;
    tc_opt o[64];
    int r = tc_decode(s.bytes + s.off[i], s.off[i + 1] - s.off[i], TC_TCP, &m, o, 64);
    CHECK(r >= 0, "stream message %u decodes: %s", i, tc_error_name(r));
  }
  free(s.bytes);
  free(s.off);
}

void test_deframer(void) {
  test_init_and_args();
  test_streams();
  test_too_large();
  test_reserved_tkl();
  test_frames_decode();
}

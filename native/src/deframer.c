/*
 * deframer.c — streaming RFC 8323 §3.2 (TCP/TLS) message deframer.
 *
 * State lives in one caller-owned block: struct tc_deframer followed by a
 * buffer of max(max_message_size, 8) bytes. No pointers are stored, so the
 * block may live in a JS ArrayBuffer or WASM memory.
 *
 * A message that lies whole inside the chunk while nothing is buffered is
 * returned zero-copy (TC_FRAME_CHUNK). Otherwise up to 8 header bytes are
 * copied to learn the size, then the rest, and the message is returned from
 * the buffer (TC_FRAME_BUFFER), which stays valid until the next feed.
 */
#include <string.h>

#include "turbocoap.h"

/* Largest TCP header: byte0 + 4 length bytes + Code + 2 extended TKL bytes. */
#define TC_TCP_MAX_HEADER 8u

static inline uint32_t buffer_capacity(uint32_t max) {
  return max < TC_TCP_MAX_HEADER ? TC_TCP_MAX_HEADER : max;
}

size_t tc_deframer_size(uint32_t max_message_size) {
  uint32_t cap = buffer_capacity(max_message_size);
#if SIZE_MAX <= UINT32_MAX
  if ((size_t)cap > SIZE_MAX - sizeof(tc_deframer)) return 0; /* not representable */
#endif
  return sizeof(tc_deframer) + (size_t)cap;
}

int tc_deframer_init(tc_deframer *d, size_t mem_len, uint32_t max_message_size) {
  size_t need;
  if (d == NULL || max_message_size < 2u) return TC_E_INVALID;
  need = tc_deframer_size(max_message_size);
  if (need == 0 || mem_len < need) return TC_E_INVALID;
  d->max_message_size = max_message_size;
  d->have = 0;
  d->need = 0;
  d->total = 0;
  d->ready = 0;
  d->failed = 0;
  return 0;
}

uint8_t *tc_deframer_buffer(tc_deframer *d) { return (uint8_t *)(d + 1); }

uint32_t tc_deframer_pending(const tc_deframer *d) { return d->ready ? 0u : d->have; }

/*
 * Look at the first n (>= 1) bytes of a message. Returns an error, 0 with
 * *total set when the header is complete, or the header length (> n) still
 * needed otherwise.
 */
static int peek_header(const uint8_t *p, size_t n, uint64_t *total) {
  uint32_t b0 = p[0];
  uint32_t lnib = b0 >> 4, tkl = b0 & 15u;
  uint32_t lext = lnib < 13u ? 0u : (lnib == 13u ? 1u : (lnib == 14u ? 2u : 4u));
  uint32_t text = tkl < 13u ? 0u : (tkl == 13u ? 1u : 2u);
  uint32_t hlen = 1u + lext + 1u + text;
  uint64_t body, token;
  if (tkl == 15u) return TC_E_RESERVED_TKL;
  if (n < hlen) return (int)hlen;
  if (lnib < 13u) body = lnib;
  else if (lnib == 13u) body = (uint64_t)p[1] + 13u;
  else if (lnib == 14u) body = ((uint64_t)p[1] << 8 | p[2]) + 269u;
  else
    body = ((uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 8 | p[4]) + 65805u;
  if (tkl < 13u) token = tkl;
  else if (tkl == 13u) token = (uint64_t)p[2 + lext] + 13u;
  else token = ((uint64_t)p[2 + lext] << 8 | p[3 + lext]) + 269u;
  *total = hlen + token + body; /* < 2^33 */
  return 0;
}

static int fail(tc_deframer *d, int err, int n) {
  d->failed = (uint32_t)err;
  /* Frames already found in this call are still good: return them first;
   * the next call reports the error. */
  return n > 0 ? n : err;
}

int tc_deframer_feed(tc_deframer *d, const uint8_t *chunk, size_t len, size_t *consumed,
                     tc_frame *frames, uint32_t cap) {
  uint8_t *buf;
  size_t pos = 0;
  int n = 0;
  int r;
  uint64_t total;

  if (consumed != NULL) *consumed = 0;
  if (d == NULL || consumed == NULL || (chunk == NULL && len != 0) ||
      (frames == NULL && cap != 0))
    return TC_E_INVALID;
  if (d->failed != 0) return (int)d->failed;
  if (cap > (uint32_t)INT32_MAX) cap = (uint32_t)INT32_MAX;
#if SIZE_MAX > UINT32_MAX
  if (len > (size_t)UINT32_MAX) len = (size_t)UINT32_MAX; /* offsets are uint32; see consumed */
#endif
  buf = tc_deframer_buffer(d);

  /* Release the message returned from the buffer by the previous call. */
  if (d->ready) {
    d->ready = 0;
    d->have = 0;
    d->need = 0;
    d->total = 0;
  }

  while ((uint32_t)n < cap) {
    size_t avail = len - pos;
    size_t take;
    uint32_t want;

    if (d->have == 0) {
      if (avail == 0) break;
      r = peek_header(chunk + pos, avail, &total);
      if (r < 0) {
        *consumed = pos;
        return fail(d, r, n);
      }
      if (r == 0) {
        if (total > d->max_message_size) {
          *consumed = pos;
          return fail(d, TC_E_MESSAGE_TOO_LARGE, n);
        }
        if (total <= avail) { /* whole message in the chunk: zero-copy */
          frames[n].where = TC_FRAME_CHUNK;
          frames[n].offset = (uint32_t)pos;
          frames[n].length = (uint32_t)total;
          n++;
          pos += (size_t)total;
          continue;
        }
        d->total = (uint32_t)total;
        d->need = (uint32_t)total;
      } else {
        d->total = 0;
        d->need = (uint32_t)r; /* header bytes first */
      }
    }

    want = d->need - d->have;
    take = avail < want ? avail : want;
    if (take != 0) { /* chunk may be NULL when len == 0 */
      memcpy(buf + d->have, chunk + pos, take);
      d->have += (uint32_t)take;
      pos += take;
    }
    if (d->have < d->need) break; /* chunk used up */

    if (d->total == 0) { /* header complete: learn the size */
      r = peek_header(buf, d->have, &total);
      if (r != 0 || total > d->max_message_size) {
        *consumed = pos;
        return fail(d, r < 0 ? r : TC_E_MESSAGE_TOO_LARGE, n);
      }
      d->total = (uint32_t)total;
      d->need = (uint32_t)total;
      continue;
    }

    frames[n].where = TC_FRAME_BUFFER;
    frames[n].offset = 0;
    frames[n].length = d->total;
    n++;
    d->ready = 1;
    break;
  }
  *consumed = pos;
  return n;
}

/*
 * codec.c — CoAP message decoder and encoder for UDP (RFC 7252 §3), TCP/TLS
 * (RFC 8323 §3.2) and WebSocket (RFC 8323 §4.2) framings, with RFC 8974
 * extended token lengths. Sans-IO, no allocation, bounds-checked everywhere.
 */
#include <limits.h>
#include <string.h>

#include "turbocoap.h"

/* ------------------------------------------------------------------ decode */

/* Parse options (and payload) in buf[pos, end). Writes msg->option_count,
 * payload_offset and payload_length. Returns the option count or an error. */
static int decode_options(const uint8_t *buf, size_t pos, size_t end, tc_msg *msg,
                          tc_opt *opts, uint32_t opt_cap) {
  uint32_t number = 0;
  uint32_t count = 0;
  msg->payload_offset = (uint32_t)end;
  msg->payload_length = 0;
  while (pos < end) {
    uint32_t b = buf[pos++];
    uint32_t delta, length;
    if (b == 0xFFu) {
      if (pos == end) return TC_E_EMPTY_PAYLOAD;
      msg->payload_offset = (uint32_t)pos;
      msg->payload_length = (uint32_t)(end - pos);
      break;
    }
    delta = b >> 4;
    length = b & 15u;
    if (delta == 15u || length == 15u) return TC_E_RESERVED_NIBBLE;
    if (delta == 13u) {
      if (pos >= end) return TC_E_OPTION_PAST_END;
      delta = (uint32_t)buf[pos++] + 13u;
    } else if (delta == 14u) {
      if (end - pos < 2) return TC_E_OPTION_PAST_END;
      delta = ((uint32_t)buf[pos] << 8 | buf[pos + 1]) + 269u;
      pos += 2;
    }
    if (length == 13u) {
      if (pos >= end) return TC_E_OPTION_PAST_END;
      length = (uint32_t)buf[pos++] + 13u;
    } else if (length == 14u) {
      if (end - pos < 2) return TC_E_OPTION_PAST_END;
      length = ((uint32_t)buf[pos] << 8 | buf[pos + 1]) + 269u;
      pos += 2;
    }
    number += delta; /* both <= 65804: no wrap */
    if (number > 65535u) return TC_E_OPTION_NUMBER_OVERFLOW;
    if (length > end - pos) return TC_E_OPTION_PAST_END;
    if (count >= opt_cap) return TC_E_TOO_MANY_OPTIONS;
    opts[count].number = number;
    opts[count].offset = (uint32_t)pos;
    opts[count].length = length;
    count++;
    pos += length;
  }
  msg->option_count = count;
  return count > (uint32_t)INT_MAX ? TC_E_TOO_MANY_OPTIONS : (int)count;
}

/* Read the token (extended TKL bytes first) starting at *pos. */
static int decode_token(const uint8_t *buf, size_t len, size_t *pos, uint32_t tkl,
                        tc_msg *msg) {
  size_t p = *pos;
  if (tkl == 13u) {
    if (p >= len) return TC_E_TOKEN_PAST_END;
    tkl = (uint32_t)buf[p++] + 13u;
  } else if (tkl == 14u) {
    if (len - p < 2) return TC_E_TOKEN_PAST_END;
    tkl = ((uint32_t)buf[p] << 8 | buf[p + 1]) + 269u;
    p += 2;
  }
  if (tkl > len - p) return TC_E_TOKEN_PAST_END;
  msg->token_offset = (uint32_t)p;
  msg->token_length = tkl;
  *pos = p + tkl;
  return 0;
}

int tc_decode(const uint8_t *buf, size_t len, int transport, tc_msg *msg, tc_opt *opts,
              uint32_t opt_cap) {
  size_t pos;
  uint32_t b0, tkl;
  int r;
  if (msg == NULL || (opts == NULL && opt_cap != 0) || (buf == NULL && len != 0))
    return TC_E_INVALID;
#if SIZE_MAX > UINT32_MAX
  /* Offsets are uint32: a buffer this large cannot be described. */
  if (len > (size_t)UINT32_MAX) return TC_E_MESSAGE_TOO_LARGE;
#endif

  if (transport == TC_UDP) {
    if (len < 4) return TC_E_TRUNCATED_HEADER;
    b0 = buf[0];
    if ((b0 >> 6) != 1u) return TC_E_BAD_VERSION;
    tkl = b0 & 15u;
    if (tkl == 15u) return TC_E_RESERVED_TKL;
    msg->type = (b0 >> 4) & 3u;
    msg->code = buf[1];
    msg->message_id = (uint32_t)buf[2] << 8 | buf[3];
    msg->length = (uint32_t)len;
    if (msg->code == 0u) {
      /* RFC 7252 §4.1: an Empty message is the 4-byte header only. */
      if (len != 4 || tkl != 0u) return TC_E_EMPTY_WITH_CONTENT;
      msg->token_offset = 4;
      msg->token_length = 0;
      msg->option_count = 0;
      msg->payload_offset = 4;
      msg->payload_length = 0;
      return 0;
    }
    pos = 4;
    r = decode_token(buf, len, &pos, tkl, msg);
    if (r < 0) return r;
    return decode_options(buf, pos, len, msg, opts, opt_cap);
  }

  if (transport == TC_TCP) {
    uint32_t lnib;
    uint64_t body, total;
    if (len < 1) return TC_E_TRUNCATED_HEADER;
    b0 = buf[0];
    lnib = b0 >> 4;
    tkl = b0 & 15u;
    if (tkl == 15u) return TC_E_RESERVED_TKL; /* as the deframer: byte 0 decides */
    pos = 1;
    if (lnib < 13u) {
      body = lnib;
    } else if (lnib == 13u) {
      if (len < 2) return TC_E_LENGTH_PAST_END;
      body = (uint64_t)buf[1] + 13u;
      pos = 2;
    } else if (lnib == 14u) {
      if (len < 3) return TC_E_LENGTH_PAST_END;
      body = ((uint64_t)buf[1] << 8 | buf[2]) + 269u;
      pos = 3;
    } else {
      if (len < 5) return TC_E_LENGTH_PAST_END;
      body = ((uint64_t)buf[1] << 24 | (uint64_t)buf[2] << 16 | (uint64_t)buf[3] << 8 |
              buf[4]) + 65805u;
      pos = 5;
    }
    if (len <= pos) return TC_E_TRUNCATED_HEADER; /* no Code byte */
    msg->code = buf[pos++];
    r = decode_token(buf, len, &pos, tkl, msg);
    if (r < 0) return r;
    total = (uint64_t)pos + body; /* < 2^33: no wrap */
    if (total > (uint64_t)len) return TC_E_LENGTH_PAST_END;
    if (total < (uint64_t)len) return TC_E_TRAILING_BYTES;
    msg->type = 0;
    msg->message_id = 0;
    msg->length = (uint32_t)len;
    return decode_options(buf, pos, len, msg, opts, opt_cap);
  }

  if (transport == TC_WS) {
    if (len < 1) return TC_E_TRUNCATED_HEADER;
    b0 = buf[0];
    if ((b0 >> 4) != 0u) return TC_E_WS_LENGTH;
    tkl = b0 & 15u;
    if (tkl == 15u) return TC_E_RESERVED_TKL;
    if (len < 2) return TC_E_TRUNCATED_HEADER;
    msg->code = buf[1];
    pos = 2;
    r = decode_token(buf, len, &pos, tkl, msg);
    if (r < 0) return r;
    msg->type = 0;
    msg->message_id = 0;
    msg->length = (uint32_t)len;
    return decode_options(buf, pos, len, msg, opts, opt_cap);
  }

  return TC_E_INVALID;
}

/* ------------------------------------------------------------------ encode */

/* Extension bytes needed for a delta/length/TKL value (0..65804). */
static inline uint32_t ext_bytes(uint32_t v) { return v < 13u ? 0u : (v < 269u ? 1u : 2u); }
static inline uint32_t ext_nibble(uint32_t v) { return v < 13u ? v : (v < 269u ? 13u : 14u); }

static inline uint8_t *put_ext(uint8_t *p, uint32_t v) {
  if (v >= 269u) {
    v -= 269u;
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
  }
  if (v >= 13u) *p++ = (uint8_t)(v - 13u);
  return p;
}

/* Copy that avoids a library call for the short values typical of options. */
static inline uint8_t *put_bytes(uint8_t *p, const uint8_t *s, uint32_t n) {
  if (n <= 16u) {
    uint32_t i;
    for (i = 0; i < n; i++) p[i] = s[i];
  } else {
    memcpy(p, s, n);
  }
  return p + n;
}

/* Stable insertion sort by number; a sorted table costs one compare per entry. */
static void sort_options(tc_opt *opts, uint32_t n) {
  uint32_t i;
  for (i = 1; i < n; i++) {
    if (opts[i].number < opts[i - 1].number) {
      tc_opt t = opts[i];
      uint32_t j = i;
      do {
        opts[j] = opts[j - 1];
        j--;
      } while (j > 0 && opts[j - 1].number > t.number);
      opts[j] = t;
    }
  }
}

int tc_encode(uint8_t *out, size_t out_cap, int transport, const tc_msg *msg, tc_opt *opts,
              const uint8_t *src) {
  uint32_t n, i, prev, tkl;
  uint64_t body, head, total;
  uint32_t lnib = 0, lext = 0;
  uint8_t *p;

  if (msg == NULL || (unsigned)transport > (unsigned)TC_WS) return TC_E_INVALID;
  n = msg->option_count;
  tkl = msg->token_length;
  if (msg->code > 255u || tkl > TC_MAX_TOKEN_LENGTH) return TC_E_INVALID;
  if (n != 0 && opts == NULL) return TC_E_INVALID;
  if (transport == TC_UDP) {
    if (msg->type > 3u || msg->message_id > 65535u) return TC_E_INVALID;
    if (msg->code == 0u && (tkl != 0u || n != 0u || msg->payload_length != 0u))
      return TC_E_INVALID;
  }

  sort_options(opts, n);

  /* Size of options + payload (validates each option on the way). */
  body = 0;
  prev = 0;
  for (i = 0; i < n; i++) {
    uint32_t num = opts[i].number, l = opts[i].length;
    if (num > 65535u || l > TC_MAX_OPTION_LENGTH) return TC_E_INVALID;
    if (l != 0u && src == NULL) return TC_E_INVALID;
    body += 1u + ext_bytes(num - prev) + ext_bytes(l) + l;
    prev = num;
  }
  if (msg->payload_length != 0u) {
    if (src == NULL) return TC_E_INVALID;
    body += 1u + (uint64_t)msg->payload_length;
  }
  if (tkl != 0u && src == NULL) return TC_E_INVALID;

  head = 2u + ext_bytes(tkl); /* byte0 + Code + extended TKL */
  if (transport == TC_UDP) {
    head += 2u; /* Message ID */
  } else if (transport == TC_TCP) {
    if (body < 13u) {
      lnib = (uint32_t)body;
    } else if (body < 269u) {
      lnib = 13u;
      lext = 1u;
    } else if (body < 65805u) {
      lnib = 14u;
      lext = 2u;
    } else {
      lnib = 15u;
      lext = 4u;
    }
    head += lext;
  }
  total = head + tkl + body;
  if (total > (uint64_t)INT_MAX) return TC_E_INVALID;
  if (out == NULL) return (int)total;
  if (total > (uint64_t)out_cap) return TC_E_BUFFER_TOO_SMALL;

  p = out;
  if (transport == TC_UDP) {
    p[0] = (uint8_t)(0x40u | msg->type << 4 | ext_nibble(tkl));
    p[1] = (uint8_t)msg->code;
    p[2] = (uint8_t)(msg->message_id >> 8);
    p[3] = (uint8_t)msg->message_id;
    p += 4;
  } else if (transport == TC_TCP) {
    *p++ = (uint8_t)(lnib << 4 | ext_nibble(tkl));
    if (lext == 1u) {
      *p++ = (uint8_t)(body - 13u);
    } else if (lext == 2u) {
      uint32_t v = (uint32_t)(body - 269u);
      p[0] = (uint8_t)(v >> 8);
      p[1] = (uint8_t)v;
      p += 2;
    } else if (lext == 4u) {
      uint32_t v = (uint32_t)(body - 65805u);
      p[0] = (uint8_t)(v >> 24);
      p[1] = (uint8_t)(v >> 16);
      p[2] = (uint8_t)(v >> 8);
      p[3] = (uint8_t)v;
      p += 4;
    }
    *p++ = (uint8_t)msg->code;
  } else {
    p[0] = (uint8_t)ext_nibble(tkl);
    p[1] = (uint8_t)msg->code;
    p += 2;
  }
  p = put_ext(p, tkl);
  if (tkl != 0u) p = put_bytes(p, src + msg->token_offset, tkl);
  prev = 0;
  for (i = 0; i < n; i++) {
    uint32_t num = opts[i].number, l = opts[i].length, d = num - prev;
    *p++ = (uint8_t)(ext_nibble(d) << 4 | ext_nibble(l));
    p = put_ext(p, d);
    p = put_ext(p, l);
    p = put_bytes(p, src + opts[i].offset, l);
    prev = num;
  }
  if (msg->payload_length != 0u) {
    *p++ = 0xFFu;
    p = put_bytes(p, src + msg->payload_offset, msg->payload_length);
  }
  return (int)(p - out);
}

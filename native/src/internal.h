/*
 * internal.h — helpers shared by the core's sources (native/src only; not part of the public
 * API, never included by bindings or tests). One definition of each: SipHash, the index and
 * time sentinels, address and code checks, layout arithmetic.
 *
 * Everything here is static inline, so the hot paths (ep.c's address hash) compile exactly as
 * when each file had its own copy.
 */
#ifndef TURBOCOAP_INTERNAL_H
#define TURBOCOAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "turbocoap.h"

/** "No index": the end of a chain or free list in the index-linked tables. */
#define NONE 0xFFFFFFFFu
/** "Never": a deadline that is not pending. */
#define NEVER UINT64_MAX

/** An opaque peer address of 1..TC_ADDR_MAX bytes. */
static inline int addr_ok(const uint8_t *a, uint32_t n) {
  return a != NULL && n >= 1u && n <= TC_ADDR_MAX;
}

/** A response code: class 2, 4 or 5. */
static inline int response_code_ok(uint32_t code) {
  uint32_t cls = code >> 5;
  return code <= 255u && (cls == 2u || cls == 4u || cls == 5u);
}

/** a + b, saturating at NEVER. */
static inline uint64_t add_sat(uint64_t a, uint64_t b) { return a > NEVER - b ? NEVER : a + b; }

/** x rounded up to a multiple of 8 (block layouts). */
static inline uint64_t up8(uint64_t x) { return (x + 7u) & ~(uint64_t)7u; }

/** The least power of two >= n (capped at 2^31). */
static inline uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n && p < 0x80000000u) p <<= 1;
  return p;
}

/** 64-bit little-endian load. */
static inline uint64_t rd64le(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
         (uint64_t)p[7] << 56;
}

/** The murmur3 64-bit finalizer (a bijective mixer for integer keys). */
static inline uint64_t fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* ------------------------------------------------------------------ SipHash */

static inline uint64_t rotl64(uint64_t x, unsigned b) { return (x << b) | (x >> (64u - b)); }

/** SipHash-c-d (Aumasson & Bernstein) of a byte string, in one call or fed in parts. */
typedef struct tc_sip {
  uint64_t v0, v1, v2, v3;
  uint64_t tail;  /* bytes not yet compressed, little-endian */
  uint32_t ntail; /* how many */
  uint32_t total; /* bytes fed so far (mod 256 goes into the last word) */
  int c, d;       /* compression and finalization rounds */
} tc_sip;

static inline void tc_sip_round(tc_sip *s) {
  s->v0 += s->v1; s->v1 = rotl64(s->v1, 13); s->v1 ^= s->v0; s->v0 = rotl64(s->v0, 32);
  s->v2 += s->v3; s->v3 = rotl64(s->v3, 16); s->v3 ^= s->v2;
  s->v0 += s->v3; s->v3 = rotl64(s->v3, 21); s->v3 ^= s->v0;
  s->v2 += s->v1; s->v1 = rotl64(s->v1, 17); s->v1 ^= s->v2; s->v2 = rotl64(s->v2, 32);
}

static inline void tc_sip_init(tc_sip *s, uint64_t k0, uint64_t k1, int c, int d) {
  s->v0 = k0 ^ 0x736f6d6570736575ull;
  s->v1 = k1 ^ 0x646f72616e646f6dull;
  s->v2 = k0 ^ 0x6c7967656e657261ull;
  s->v3 = k1 ^ 0x7465646279746573ull;
  s->tail = 0;
  s->ntail = 0;
  s->total = 0;
  s->c = c;
  s->d = d;
}

static inline void tc_sip_word(tc_sip *s, uint64_t m) {
  int r;
  s->v3 ^= m;
  for (r = 0; r < s->c; r++) tc_sip_round(s);
  s->v0 ^= m;
}

/** Feed n bytes. */
static inline void tc_sip_add(tc_sip *s, const uint8_t *p, size_t n) {
  size_t i = 0;
  s->total += (uint32_t)n;
  if (s->ntail == 0u)
    for (; i + 8u <= n; i += 8u) tc_sip_word(s, rd64le(p + i));
  for (; i < n; i++) {
    s->tail |= (uint64_t)p[i] << (8u * s->ntail);
    if (++s->ntail == 8u) {
      tc_sip_word(s, s->tail);
      s->tail = 0;
      s->ntail = 0;
    }
  }
}

/** The hash of everything fed. */
static inline uint64_t tc_sip_end(tc_sip *s) {
  int r;
  tc_sip_word(s, s->tail | (uint64_t)(s->total & 0xFFu) << 56);
  s->v2 ^= 0xFFu;
  for (r = 0; r < s->d; r++) tc_sip_round(s);
  return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/** SipHash-c-d of in[0..len) with key (k0, k1). */
static inline uint64_t tc_siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len, int c,
                                  int d) {
  tc_sip s;
  tc_sip_init(&s, k0, k1, c, d);
  tc_sip_add(&s, in, len);
  return tc_sip_end(&s);
}

#endif /* TURBOCOAP_INTERNAL_H */

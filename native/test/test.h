/* test.h — a tiny assertion harness for the turbocoap C unit tests. */
#ifndef TC_TEST_H
#define TC_TEST_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "turbocoap.h"

extern unsigned long tc_test_passed, tc_test_failed;

/* Count one check; on failure print where and why (a bounded number of times). */
#define CHECK(cond, ...)                                                        \
  do {                                                                          \
    if (cond) {                                                                 \
      tc_test_passed++;                                                         \
    } else {                                                                    \
      tc_test_failed++;                                                         \
      if (tc_test_failed <= 50) {                                               \
        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
      }                                                                         \
    }                                                                           \
  } while (0)

/* Integer equality; `what` (a const char *) names the case in the message. */
#define CHECK_EQ(a, b, what)                                                    \
  do {                                                                          \
    long long tc_a_ = (long long)(a), tc_b_ = (long long)(b);                   \
    CHECK(tc_a_ == tc_b_, "%lld != %lld (%s)", tc_a_, tc_b_, (what));           \
  } while (0)

/* Deterministic PRNG (xorshift64*) so runs are reproducible. */
static inline uint32_t tc_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A message built by hand: header fields, an option table and the source area that the
 * options and payload point into (offsets as tc_encode and the stores expect them). */
#define TC_TMSG_OPTS 32
typedef struct tc_tmsg {
  tc_msg msg;
  tc_opt opts[TC_TMSG_OPTS];
  uint8_t src[4096];
  uint32_t w; /* bytes of src used */
} tc_tmsg;

static inline void tmsg_init(tc_tmsg *r, uint32_t code) {
  memset(r, 0, sizeof *r);
  r->msg.code = code;
}

static inline void tmsg_opt(tc_tmsg *r, uint32_t number, const void *val, uint32_t len) {
  tc_opt *o = &r->opts[r->msg.option_count++];
  o->number = number;
  o->offset = r->w;
  o->length = len;
  if (len) memcpy(r->src + r->w, val, len);
  r->w += len;
}

static inline void tmsg_uint(tc_tmsg *r, uint32_t number, uint32_t v) {
  uint8_t b[4];
  int n = tc_uint_encode(v, b);
  tmsg_opt(r, number, b, (uint32_t)n);
}

static inline void tmsg_payload(tc_tmsg *r, const void *p, uint32_t len) {
  r->msg.payload_offset = r->w;
  r->msg.payload_length = len;
  if (len) memcpy(r->src + r->w, p, len);
  r->w += len;
}

void test_codec(void);
void test_deframer(void);
void test_options(void);

#endif

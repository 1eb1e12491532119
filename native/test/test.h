/* test.h — a tiny assertion harness for the turbocoap C unit tests. */
#ifndef TC_TEST_H
#define TC_TEST_H
#include <stdint.h>
#include <stdio.h>

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

void test_codec(void);
void test_deframer(void);
void test_options(void);

#endif

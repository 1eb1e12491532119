/* fuzz.h — shared by the libFuzzer harnesses: a hard assertion and a reader that turns the
 * fuzzer's input into a stream of small integers (0 once the input is used up). */
#ifndef TC_FUZZ_H
#define TC_FUZZ_H
#include <stddef.h>
#include <stdint.h>

/* A failed property: stop the run so libFuzzer records the input. */
#define REQUIRE(c)              \
  do {                          \
    if (!(c)) __builtin_trap(); \
  } while (0)

typedef struct input {
  const uint8_t *p;
  size_t n;
} input;

static inline uint32_t take(input *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

/* Little-endian multi-byte reads; each byte is taken in its own statement so the order is
 * defined (the operands of | are unsequenced). */
static inline uint32_t take16(input *in) {
  uint32_t v = take(in);
  return v | take(in) << 8;
}
static inline uint32_t take24(input *in) {
  uint32_t v = take16(in);
  return v | take(in) << 16;
}
static inline uint32_t take32(input *in) {
  uint32_t v = take24(in);
  return v | take(in) << 24;
}

#endif

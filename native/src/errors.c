/* errors.c — stable names for the TC_E_* error codes. */
#include "turbocoap.h"

static const char *const tc_error_names[TC_ERROR_COUNT] = {
  "TRUNCATED_HEADER",       /* -1 */
  "BAD_VERSION",            /* -2 */
  "RESERVED_TKL",           /* -3 */
  "TOKEN_PAST_END",         /* -4 */
  "RESERVED_NIBBLE",        /* -5 */
  "OPTION_PAST_END",        /* -6 */
  "OPTION_NUMBER_OVERFLOW", /* -7 */
  "EMPTY_PAYLOAD",          /* -8 */
  "EMPTY_WITH_CONTENT",     /* -9 */
  "LENGTH_PAST_END",        /* -10 */
  "TRAILING_BYTES",         /* -11 */
  "TOO_MANY_OPTIONS",       /* -12 */
  "MESSAGE_TOO_LARGE",      /* -13 */
  "WS_LENGTH",              /* -14 */
  "BUFFER_TOO_SMALL",       /* -15 */
  "INVALID",                /* -16 */
  "STALE",                  /* -17 */
  "FULL",                   /* -18 */
  "TIMEOUT",                /* -19 */
  "RESET",                  /* -20 */
  "BAD_OPTION"              /* -21 */
};

const char *tc_error_name(int err) {
  if (err < 0 && err >= -TC_ERROR_COUNT) return tc_error_names[-err - 1];
  return "UNKNOWN";
}

/* errors.c — stable names for the TC_E_* error codes (from TC_ERRORS, turbocoap.h). */
#include "turbocoap.h"

#define TC_ERROR_NAME_(name, value, doc) [-(value)-1] = #name,
static const char *const tc_error_names[TC_ERROR_COUNT] = {TC_ERRORS(TC_ERROR_NAME_)};
#undef TC_ERROR_NAME_

#define TC_ERROR_ONE_(name, value, doc) +1
_Static_assert(TC_ERROR_COUNT == 0 TC_ERRORS(TC_ERROR_ONE_), "TC_ERROR_COUNT counts TC_ERRORS");
#undef TC_ERROR_ONE_
#define TC_ERROR_DENSE_(name, value, doc) \
  _Static_assert((value) < 0 && (value) >= -TC_ERROR_COUNT, "TC_E_" #name " in -1..-TC_ERROR_COUNT");
TC_ERRORS(TC_ERROR_DENSE_)
#undef TC_ERROR_DENSE_

const char *tc_error_name(int err) {
  if (err < 0 && err >= -TC_ERROR_COUNT) return tc_error_names[-err - 1];
  return "UNKNOWN";
}

/* test_options.c — the option registry and the critical/unsafe/no-cache-key
 * helpers. Expected values are taken from the RFC option tables. */
#include <string.h>

#include "test.h"
#include "turbocoap.h"

struct want {
  uint32_t code, number;
  const char *name;
  uint8_t format, repeatable;
  uint16_t min, max;
};

static const struct want wants[] = {
  {0x01, 1, "If-Match", TC_FMT_OPAQUE, 1, 0, 8},
  {0x01, 3, "Uri-Host", TC_FMT_STRING, 0, 1, 255},
  {0x01, 4, "ETag", TC_FMT_OPAQUE, 1, 1, 8},
  {0x45, 5, "If-None-Match", TC_FMT_EMPTY, 0, 0, 0},
  {0x45, 6, "Observe", TC_FMT_UINT, 0, 0, 3},
  {0x01, 7, "Uri-Port", TC_FMT_UINT, 0, 0, 2},
  {0x41, 8, "Location-Path", TC_FMT_STRING, 1, 0, 255},
  {0x02, 9, "OSCORE", TC_FMT_OPAQUE, 0, 0, 255},
  {0x01, 11, "Uri-Path", TC_FMT_STRING, 1, 0, 255},
  {0x45, 12, "Content-Format", TC_FMT_UINT, 0, 0, 2},
  {0x45, 14, "Max-Age", TC_FMT_UINT, 0, 0, 4},
  {0x01, 15, "Uri-Query", TC_FMT_STRING, 1, 0, 255},
  {0x01, 16, "Hop-Limit", TC_FMT_UINT, 0, 1, 1},
  {0x01, 17, "Accept", TC_FMT_UINT, 0, 0, 2},
  {0x02, 19, "Q-Block1", TC_FMT_UINT, 0, 0, 3},
  {0x41, 20, "Location-Query", TC_FMT_STRING, 1, 0, 255},
  {0x45, 23, "Block2", TC_FMT_UINT, 0, 0, 3},
  {0x02, 27, "Block1", TC_FMT_UINT, 0, 0, 3},
  {0x45, 28, "Size2", TC_FMT_UINT, 0, 0, 4},
  {0x01, 31, "Q-Block2", TC_FMT_UINT, 1, 0, 3},
  {0x01, 35, "Proxy-Uri", TC_FMT_STRING, 0, 1, 1034},
  {0x01, 39, "Proxy-Scheme", TC_FMT_STRING, 0, 1, 255},
  {0x02, 60, "Size1", TC_FMT_UINT, 0, 0, 4},
  {0x01, 252, "Echo", TC_FMT_OPAQUE, 0, 1, 40},
  {0x01, 258, "No-Response", TC_FMT_UINT, 0, 0, 1},
  {0x02, 292, "Request-Tag", TC_FMT_OPAQUE, 1, 0, 8},
  {0xE1, 2, "Max-Message-Size", TC_FMT_UINT, 0, 0, 4},
  {0xE1, 4, "Block-Wise-Transfer", TC_FMT_EMPTY, 0, 0, 0},
  {0xE2, 2, "Custody", TC_FMT_EMPTY, 0, 0, 0},
  {0xE3, 2, "Custody", TC_FMT_EMPTY, 0, 0, 0},
  {0xE4, 2, "Alternative-Address", TC_FMT_STRING, 1, 1, 255},
  {0xE4, 4, "Hold-Off", TC_FMT_UINT, 0, 0, 3},
  {0xE5, 2, "Bad-CSM-Option", TC_FMT_UINT, 0, 0, 2},
};

static void test_lookups(void) {
  uint32_t i, n = tc_option_registry_count();
  uint32_t ordinary = 0, prev = 0;
  CHECK_EQ(n, sizeof wants / sizeof wants[0], "registry count");
  for (i = 0; i < sizeof wants / sizeof wants[0]; i++) {
    const struct want *w = &wants[i];
    const tc_option_def *d = tc_option_find(w->code, w->number);
    CHECK(d != NULL, "find(0x%02x, %u) %s", w->code, w->number, w->name);
    if (d == NULL) continue;
    CHECK(strcmp(d->name, w->name) == 0, "%s: name %s", w->name, d->name);
    CHECK(d->number == w->number && d->format == w->format && d->repeatable == w->repeatable &&
              d->min_length == w->min && d->max_length == w->max,
          "%s: fields", w->name);
    CHECK(d->signal_code == (w->code >= 0xE1 ? w->code : 0u), "%s: signal code", w->name);
  }
  for (i = 0; i < n; i++) {
    const tc_option_def *d = tc_option_registry_at(i);
    CHECK(d != NULL && d->name != NULL && d->name[0] != 0, "entry %u", i);
    if (d == NULL) continue;
    CHECK(d->min_length <= d->max_length, "%s: min <= max", d->name);
    if (d->format == TC_FMT_EMPTY) CHECK(d->max_length == 0, "%s: empty", d->name);
    if (d->format == TC_FMT_UINT) CHECK(d->max_length <= 4, "%s: uint <= 4 bytes", d->name);
    if (d->signal_code == 0) {
      CHECK(ordinary == i, "ordinary entries come first (%s)", d->name);
      CHECK(i == 0 || d->number > prev, "ordinary entries ascending (%s)", d->name);
      prev = d->number;
      ordinary++;
      CHECK(tc_option_find(0x01, d->number) == d, "%s found by number", d->name);
    } else {
      CHECK(d->signal_code >= 0xE1 && d->signal_code <= 0xE5, "%s: signal code", d->name);
      CHECK(tc_option_find(d->signal_code, d->number) == d, "%s found", d->name);
    }
  }
  CHECK(tc_option_registry_at(n) == NULL, "past the end");
  CHECK(tc_option_registry_at(0xffffffffu) == NULL, "far past the end");

  /* signal codes see only their own options; other codes only ordinary ones */
  CHECK(tc_option_find(0xE1, 11) == NULL, "CSM has no Uri-Path");
  CHECK(tc_option_find(0xE5, 4) == NULL, "Abort has no option 4");
  CHECK(tc_option_find(0xE2, 4) == NULL, "Ping has no option 4");
  CHECK(tc_option_find(0x01, 2) == NULL, "no ordinary option 2");
  CHECK(tc_option_find(0x45, 4) != NULL && strcmp(tc_option_find(0x45, 4)->name, "ETag") == 0,
        "option 4 outside signaling is ETag");
  CHECK(tc_option_find(0xE0, 11) != NULL, "7.00 is not a defined signal: ordinary options");
  CHECK(tc_option_find(0x01, 0) == NULL, "option 0 reserved");
  CHECK(tc_option_find(0x01, 13) == NULL, "option 13 unassigned");
  CHECK(tc_option_find(0x01, 65535) == NULL, "option 65535");
  CHECK(tc_option_find(0x01, 65536 + 11) == NULL, "number above 65535");
  CHECK(tc_option_find(0x01, 0xffffffffu) == NULL, "number 2^32-1");
}

static void test_properties(void) {
  /* RFC 7252 §5.4.6 / table 4 */
  CHECK(tc_option_is_critical(1) && !tc_option_is_unsafe(1), "If-Match C");
  CHECK(tc_option_is_critical(3) && tc_option_is_unsafe(3), "Uri-Host C U");
  CHECK(!tc_option_is_critical(4) && !tc_option_is_unsafe(4) && !tc_option_is_no_cache_key(4), "ETag");
  CHECK(!tc_option_is_critical(6) && tc_option_is_unsafe(6), "Observe U");
  CHECK(tc_option_is_critical(11) && tc_option_is_unsafe(11), "Uri-Path C U");
  CHECK(!tc_option_is_critical(12) && !tc_option_is_unsafe(12), "Content-Format");
  CHECK(!tc_option_is_critical(14) && tc_option_is_unsafe(14), "Max-Age U");
  CHECK(tc_option_is_critical(17) && !tc_option_is_unsafe(17), "Accept C");
  CHECK(tc_option_is_critical(35) && tc_option_is_unsafe(35), "Proxy-Uri C U");
  CHECK(tc_option_is_no_cache_key(60) && !tc_option_is_unsafe(60), "Size1 N");
  CHECK(tc_option_is_no_cache_key(28), "Size2 N");
  CHECK(tc_option_is_no_cache_key(252), "Echo N");
  CHECK(!tc_option_is_no_cache_key(292) && !tc_option_is_critical(292), "Request-Tag");
  CHECK(!tc_option_is_no_cache_key(31) && !tc_option_is_no_cache_key(30), "0x1e is not N");
  CHECK(tc_option_is_unsafe(258) && !tc_option_is_critical(258), "No-Response U");
  CHECK(tc_option_is_critical(65535) && tc_option_is_unsafe(65535), "65535");
}

void test_options(void) {
  test_lookups();
  test_properties();
}

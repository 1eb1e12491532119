/*
 * options.c — the CoAP option registry as static const data.
 *
 * Ordinary options are sorted by number (binary-searched); RFC 8323 signaling
 * options follow, grouped by the signal code they belong to. Formats, lengths
 * and repeatability follow the option tables of the defining RFCs.
 */
#include "turbocoap.h"

#define E TC_FMT_EMPTY
#define O TC_FMT_OPAQUE
#define U TC_FMT_UINT
#define S TC_FMT_STRING

/* number, format, repeatable, min, max, signal_code, name */
static const tc_option_def tc_registry[] = {
  /* ordinary options, ascending */
  {1, O, 1, 0, 8, 0, "If-Match"},          /* RFC 7252 */
  {3, S, 0, 1, 255, 0, "Uri-Host"},        /* RFC 7252 */
  {4, O, 1, 1, 8, 0, "ETag"},              /* RFC 7252 */
  {5, E, 0, 0, 0, 0, "If-None-Match"},     /* RFC 7252 */
  {6, U, 0, 0, 3, 0, "Observe"},           /* RFC 7641 */
  {7, U, 0, 0, 2, 0, "Uri-Port"},          /* RFC 7252 */
  {8, S, 1, 0, 255, 0, "Location-Path"},   /* RFC 7252 */
  {9, O, 0, 0, 255, 0, "OSCORE"},          /* RFC 8613 */
  {11, S, 1, 0, 255, 0, "Uri-Path"},       /* RFC 7252 */
  {12, U, 0, 0, 2, 0, "Content-Format"},   /* RFC 7252 */
  {14, U, 0, 0, 4, 0, "Max-Age"},          /* RFC 7252 */
  {15, S, 1, 0, 255, 0, "Uri-Query"},      /* RFC 7252 */
  {16, U, 0, 1, 1, 0, "Hop-Limit"},        /* RFC 8768 */
  {17, U, 0, 0, 2, 0, "Accept"},           /* RFC 7252 */
  {19, U, 0, 0, 3, 0, "Q-Block1"},         /* RFC 9177 */
  {20, S, 1, 0, 255, 0, "Location-Query"}, /* RFC 7252 */
  {23, U, 0, 0, 3, 0, "Block2"},           /* RFC 7959 */
  {27, U, 0, 0, 3, 0, "Block1"},           /* RFC 7959 */
  {28, U, 0, 0, 4, 0, "Size2"},            /* RFC 7959 */
  {31, U, 1, 0, 3, 0, "Q-Block2"},         /* RFC 9177: repeatable (missing blocks) */
  {35, S, 0, 1, 1034, 0, "Proxy-Uri"},     /* RFC 7252 */
  {39, S, 0, 1, 255, 0, "Proxy-Scheme"},   /* RFC 7252 */
  {60, U, 0, 0, 4, 0, "Size1"},            /* RFC 7252 */
  {252, O, 0, 1, 40, 0, "Echo"},           /* RFC 9175 */
  {258, U, 0, 0, 1, 0, "No-Response"},     /* RFC 7967 */
  {292, O, 1, 0, 8, 0, "Request-Tag"},     /* RFC 9175 */
  /* RFC 8323 §5 signaling options, by signal code */
  {2, U, 0, 0, 4, 0xE1, "Max-Message-Size"},     /* 7.01 CSM */
  {4, E, 0, 0, 0, 0xE1, "Block-Wise-Transfer"},  /* 7.01 CSM */
  {2, E, 0, 0, 0, 0xE2, "Custody"},              /* 7.02 Ping */
  {2, E, 0, 0, 0, 0xE3, "Custody"},              /* 7.03 Pong */
  {2, S, 1, 1, 255, 0xE4, "Alternative-Address"},/* 7.04 Release */
  {4, U, 0, 0, 3, 0xE4, "Hold-Off"},             /* 7.04 Release */
  {2, U, 0, 0, 2, 0xE5, "Bad-CSM-Option"},       /* 7.05 Abort */
};

#undef E
#undef O
#undef U
#undef S

#define TC_REGISTRY_COUNT ((uint32_t)(sizeof tc_registry / sizeof tc_registry[0]))
#define TC_ORDINARY_COUNT 26u /* entries before the signaling block */

uint32_t tc_option_registry_count(void) { return TC_REGISTRY_COUNT; }

const tc_option_def *tc_option_registry_at(uint32_t i) {
  return i < TC_REGISTRY_COUNT ? &tc_registry[i] : NULL;
}

const tc_option_def *tc_option_find(uint32_t code, uint32_t number) {
  if (number > 65535u) return NULL;
  if (code >= 0xE1u && code <= 0xE5u) {
    uint32_t i;
    for (i = TC_ORDINARY_COUNT; i < TC_REGISTRY_COUNT; i++) {
      if (tc_registry[i].signal_code == code && tc_registry[i].number == number)
        return &tc_registry[i];
    }
    return NULL;
  }
  {
    uint32_t lo = 0, hi = TC_ORDINARY_COUNT;
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      uint32_t n = tc_registry[mid].number;
      if (n == number) return &tc_registry[mid];
      if (n < number) lo = mid + 1;
      else hi = mid;
    }
  }
  return NULL;
}

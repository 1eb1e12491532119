/*
 * glue_client.c — the WebAssembly twin of the client-transfer functions of
 * native/binding/addon.cc (tc_bwc_*, tc_obs_fresh, tc_obs_reregister_at).
 *
 * Thin like glue.c: argument conversion and the memory of a transfer. A transfer is ONE
 * malloc'd handle (tcw_bwc_create, freed by tcw_bwc_free) whose first words JS reads after
 * every call (pointers are offsets into linear memory):
 *   [0..7] tc_bwc_result of the last call   [8] progress: done   [9] progress: total
 *   [10] body pointer   [11] body capacity   [12..13] Request-Tag bytes (tcw_bwc_request_tag)
 * followed by the tc_bwc state. The download body is a separate malloc'd block that grows
 * when JS asks (body_need); JS copies it out at the end. Datagrams are staged by JS (e.g. in
 * tcw_bytes) for the call only; the *_response calls decode them (CoAP over UDP) and feed
 * the result to the core.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "turbocoap.h"
#include "ep_batch.h"

/* Exported to JS; scripts/build-wasm.mjs lists every TCW_API function. */
#define TCW_API __attribute__((used, visibility("default")))

#define TCW_BWC_INFO 14u  /* words before the state (see above) */
#define TCW_BWC_STATE 64u /* byte offset of the tc_bwc state (8-byte aligned) */

_Static_assert(sizeof(tc_bwc_config) == TC_BWC_CONFIG_WORDS * 4, "tc_bwc_config layout");
_Static_assert(sizeof(tc_bwc_result) == TC_BWC_RESULT_WORDS * 4, "tc_bwc_result layout");
_Static_assert(TC_BWC_RESULT_WORDS + 2u <= 10u, "result and progress fit words 0..9");
_Static_assert(TCW_BWC_INFO * 4u <= TCW_BWC_STATE, "info words fit before the state");

typedef struct tcw_bwc {
  uint32_t info[TCW_BWC_INFO];
} tcw_bwc;

static tc_bwc *bwc_state(tcw_bwc *h) { return (tc_bwc *)((uint8_t *)h + TCW_BWC_STATE); }

/* Writes the result and the progress into the info words; returns rc. */
static int bwc_out(tcw_bwc *h, const tc_bwc_result *r, int rc) {
  if (rc >= 0) {
    memcpy(h->info, r, sizeof *r);
    (void)tc_bwc_progress(bwc_state(h), &h->info[TC_BWC_RESULT_WORDS],
                          &h->info[TC_BWC_RESULT_WORDS + 1]);
  }
  return rc;
}

/**
 * A new transfer: cfg is a tc_bwc_config (TC_BWC_CONFIG_WORDS words, borrowed, e.g. staged in
 * tcw_table). Returns the handle, or 0 for an invalid config or no memory.
 */
TCW_API tcw_bwc *tcw_bwc_create(const uint32_t *cfg_words) {
  tc_bwc_config cfg;
  size_t size;
  tcw_bwc *h;
  memcpy(&cfg, cfg_words, sizeof cfg);
  size = tc_bwc_size(&cfg);
  if (size == 0) return NULL;
  h = (tcw_bwc *)aligned_alloc(8, (TCW_BWC_STATE + size + 7u) & ~(size_t)7u);
  if (h == NULL) return NULL;
  memset(h->info, 0, sizeof h->info);
  if (tc_bwc_init(bwc_state(h), size, &cfg) != 0) {
    free(h);
    return NULL;
  }
  return h;
}

/** Frees a transfer and its body. */
TCW_API void tcw_bwc_free(tcw_bwc *h) {
  if (h == NULL) return;
  free((void *)(uintptr_t)h->info[10]);
  free(h);
}

TCW_API int tcw_bwc_get_begin(tcw_bwc *h) {
  tc_bwc_result r;
  return bwc_out(h, &r, tc_bwc_get_begin(bwc_state(h), &r));
}

/**
 * Feed the received datagram d[0..len) to the download. body_need > the body capacity grows
 * the body to body_need bytes first (its bytes kept). Returns the status, a decode error, or
 * TC_E_BUFFER_TOO_SMALL when the body cannot grow (no memory).
 */
TCW_API int tcw_bwc_get_response(tcw_bwc *h, const uint8_t *d, uint32_t len,
                                 uint32_t body_need) {
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_bwc_result r;
  int rc;
  if (body_need > h->info[11]) {
    void *b = realloc((void *)(uintptr_t)h->info[10], body_need);
    if (b == NULL) return TC_E_BUFFER_TOO_SMALL;
    h->info[10] = (uint32_t)(uintptr_t)b;
    h->info[11] = body_need;
  }
  rc = tc_decode(d, len, TC_UDP, &msg, opts, TCB_OPT_CAP);
  if (rc < 0) return rc;
  return bwc_out(h, &r,
                 tc_bwc_get_response(bwc_state(h), &msg, opts, d,
                                     (uint8_t *)(uintptr_t)h->info[10], h->info[11], &r));
}

/** Start an upload of body_len bytes with the Request-Tag tag[0..tag_len) (borrowed). */
TCW_API int tcw_bwc_put_begin(tcw_bwc *h, uint32_t body_len, const uint8_t *tag,
                              uint32_t tag_len) {
  tc_bwc_result r;
  return bwc_out(h, &r, tc_bwc_put_begin(bwc_state(h), body_len, tag, tag_len, &r));
}

/** Feed the received datagram d[0..len) to the upload. */
TCW_API int tcw_bwc_put_response(tcw_bwc *h, const uint8_t *d, uint32_t len) {
  tc_msg msg;
  tc_opt opts[TCB_OPT_CAP];
  tc_bwc_result r;
  int rc = tc_decode(d, len, TC_UDP, &msg, opts, TCB_OPT_CAP);
  if (rc < 0) return rc;
  return bwc_out(h, &r, tc_bwc_put_response(bwc_state(h), &msg, opts, d, &r));
}

/** The transfer's Request-Tag into info words 12..13; returns its length. */
TCW_API int tcw_bwc_request_tag(tcw_bwc *h) {
  return tc_bwc_request_tag(bwc_state(h), (uint8_t *)&h->info[12]);
}

/* ------------------------------------------------------------ client Observe */

static uint64_t ms(double d) {
  if (!(d > 0)) return 0;
  return d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
}

TCW_API int tcw_obs_fresh(uint32_t v1, double t1, uint32_t v2, double t2) {
  return tc_obs_fresh(v1, ms(t1), v2, ms(t2));
}

TCW_API double tcw_obs_reregister_at(double arrival, uint32_t max_age, uint32_t lead) {
  return (double)tc_obs_reregister_at(ms(arrival), max_age, lead);
}

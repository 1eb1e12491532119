/*
 * stream_feed.c — the connection driver (native/driver/stream.h) for sockets JavaScript owns
 * (WebSockets with the `ws` package, or any socket the addon does not hold): the addon's side
 * of ts/transport/stream-feed.ts's StreamFeed, as the WebAssembly module's glue_stream.c is
 * for the WASM backend. N-API argument conversion only; what each call does is stream.h's.
 *
 * Shared memory (typed arrays JS hands over at creation, looked up again on every call):
 *  - info: Uint32Array(4): [0] bytes the last recv took, [1] records in the last taken batch,
 *    [2] the batch's word bytes (the data base), [3] entries of the last collect;
 *  - out:  Uint32Array(4 * OUT_MAX): collect's entries, id, op (1 WRITE, 2 CLOSE), offset and
 *    length of its bytes in the ArrayBuffer collect returned; JS writes how many bytes the
 *    socket took back into the length word before streamFeedWrote;
 *  - txWords / txBytes: the TX record areas, run in place by streamFeedFlush.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#include "addr.h"
#include "glue.h"
#include "stream.h"
#include "turbocoap.h"

#define OUT_MAX 1024u
#define INFO_WORDS 4u

typedef struct tcf {
  tcs_stream *s;
  napi_ref info_ref, out_ref, txw_ref, txb_ref;
  uint32_t max_body;
  uint32_t flush_words, flush_bytes;
} tcf;

static void tcf_finalize(napi_env env, void *data, void *hint) {
  tcf *f = (tcf *)data;
  (void)hint;
  tcs_destroy(f->s);
  if (f->info_ref) napi_delete_reference(env, f->info_ref);
  if (f->out_ref) napi_delete_reference(env, f->out_ref);
  if (f->txw_ref) napi_delete_reference(env, f->txw_ref);
  if (f->txb_ref) napi_delete_reference(env, f->txb_ref);
  free(f);
}

/* an empty array passes (with *n 0) */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  return tcg_typed(env, v, want, data, n, 0);
}

/* Arguments: the feed handle first, then numbers (as doubles: `now` exceeds 32 bits). */
static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, tcf **f) {
  size_t argc = want;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, NULL, "turbocoap: expected a stream feed handle and arguments");
    return 0;
  }
  *f = (tcf *)p;
  if ((*f)->s == NULL) {
    napi_throw_error(env, NULL, "turbocoap: the stream feed was freed");
    return 0;
  }
  return 1;
}

static uint64_t u64(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d <= 0 ? 0 : d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
}

static uint32_t u32(napi_env env, napi_value v) {
  uint32_t x = 0;
  napi_get_value_uint32(env, v, &x);
  return x;
}

static int32_t i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

/* Record address words (FAMILY..SCOPE) -> canonical address; its length, or 0. */
static uint32_t addr_arg(napi_env env, napi_value v, uint8_t *a) {
  void *p;
  size_t n;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t == napi_null || t == napi_undefined) return 0;
  if (!typed(env, v, napi_uint32_array, &p, &n) || n < TCB_ADDR_WORDS) return 0;
  return tcb_words_to_addr((const uint32_t *)p, a);
}

/* streamFeedCreate(config: Uint32Array(STREAM_CONFIG_WORDS), seed: Uint8Array(SEED_BYTES),
 *                  info: Uint32Array(4), out: Uint32Array(4 * 1024), txWords, txBytes) */
static napi_value feed_create(napi_env env, napi_callback_info info) {
  napi_value argv[6], ext;
  size_t argc = 6, ncfg, nseed, n;
  void *cfgp, *seed, *p;
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  tcf *f;
  int err = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "turbocoap: streamFeedCreate: missing arguments");
    return NULL;
  }
  if (!typed(env, argv[0], napi_uint32_array, &cfgp, &ncfg) || !typed(env, argv[1], napi_uint8_array, &seed, &nseed))
    return NULL;
  if (!typed(env, argv[2], napi_uint32_array, &p, &n)) return NULL;
  if (n < INFO_WORDS) goto range;
  if (!typed(env, argv[3], napi_uint32_array, &p, &n)) return NULL;
  if (n < 4u * OUT_MAX) goto range;
  if (!typed(env, argv[4], napi_uint32_array, &p, &n) || !typed(env, argv[5], napi_uint8_array, &p, &n)) return NULL;
  if (ncfg != TC_CONN_CONFIG_WORDS + TC_SRV_CONFIG_WORDS + 4u || nseed != TCA_SEED_BYTES) goto range;
  memcpy(&cc, cfgp, sizeof cc);
  memcpy(&sc, (const uint32_t *)cfgp + TC_CONN_CONFIG_WORDS, sizeof sc);
  memcpy(&lim, (const uint32_t *)cfgp + TC_CONN_CONFIG_WORDS + TC_SRV_CONFIG_WORDS, sizeof lim);
  f = (tcf *)calloc(1, sizeof *f);
  if (f == NULL) {
    napi_throw_error(env, NULL, "turbocoap: out of memory");
    return NULL;
  }
  f->s = tcs_create(&cc, &sc, &lim, (const uint8_t *)seed, (uint32_t)nseed, &err);
  if (f->s == NULL) {
    free(f);
    if (err == TC_E_INVALID) napi_throw_range_error(env, NULL, "turbocoap: invalid stream configuration");
    else napi_throw_error(env, NULL, "turbocoap: out of memory");
    return NULL;
  }
  f->max_body = sc.bw1.max_body;
  napi_create_reference(env, argv[2], 1, &f->info_ref);
  napi_create_reference(env, argv[3], 1, &f->out_ref);
  napi_create_reference(env, argv[4], 1, &f->txw_ref);
  napi_create_reference(env, argv[5], 1, &f->txb_ref);
  if (napi_create_external(env, f, tcf_finalize, NULL, &ext) != napi_ok) {
    tcf_finalize(env, f, NULL);
    return NULL;
  }
  return ext;
range:
  napi_throw_range_error(env, NULL, "turbocoap: streamFeedCreate: an array of the wrong size");
  return NULL;
}

/* streamFeedFree(f): frees the driver now (the handle stays, unusable). */
static napi_value feed_free(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tcf *f;
  if (!args(env, info, 1, argv, &f)) return NULL;
  tcs_destroy(f->s);
  f->s = NULL;
  return NULL;
}

/* streamFeedOpen(f, now, id, addrWords): tcs_open */
static napi_value feed_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  tcf *f;
  uint8_t a[TC_ADDR_MAX];
  uint32_t alen;
  if (!args(env, info, 4, argv, &f)) return NULL;
  alen = addr_arg(env, argv[3], a);
  if (alen == 0) return tcg_num(env, TC_E_INVALID);
  return tcg_num(env, tcs_open(f->s, u64(env, argv[1]), u32(env, argv[2]), a, alen));
}

/* streamFeedRecv(f, now, id, chunk: Uint8Array, start): an action; info[0] = bytes taken */
static napi_value feed_recv(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  tcf *f;
  void *p, *ip;
  size_t n;
  uint32_t start, used = 0, ni;
  int r;
  if (!args(env, info, 5, argv, &f) || !typed(env, argv[3], napi_uint8_array, &p, &n)) return NULL;
  start = u32(env, argv[4]);
  if (start > n) start = (uint32_t)n;
  r = tcs_recv(f->s, u64(env, argv[1]), u32(env, argv[2]), n > 0 ? (const uint8_t *)p + start : NULL,
               (uint32_t)(n - start), &used);
  if (tcg_area(env, f->info_ref, napi_uint32_array, &ip, &ni) && ni >= INFO_WORDS) ((uint32_t *)ip)[0] = used;
  return tcg_num(env, r);
}

/* streamFeedHostEvent(f, kind, id, addrWords | null, status, flags, data: Uint8Array | null) */
static napi_value feed_host_event(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  tcf *f;
  uint8_t a[TC_ADDR_MAX];
  uint32_t alen;
  void *p = NULL;
  size_t n = 0;
  napi_valuetype t;
  if (!args(env, info, 7, argv, &f)) return NULL;
  alen = addr_arg(env, argv[3], a);
  if (napi_typeof(env, argv[6], &t) == napi_ok && t != napi_null && t != napi_undefined &&
      !typed(env, argv[6], napi_uint8_array, &p, &n))
    return NULL;
  return tcg_num(env, tcs_host_event(f->s, u32(env, argv[1]), u32(env, argv[2]), alen ? a : NULL, alen,
                                 i32(env, argv[4]), u32(env, argv[5]), (const uint8_t *)p, (uint32_t)n));
}

/* streamFeedClose(f, now, id, status, flags): tcs_close_status */
static napi_value feed_close(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  tcf *f;
  if (!args(env, info, 5, argv, &f)) return NULL;
  return tcg_num(env, tcs_close_status(f->s, u64(env, argv[1]), u32(env, argv[2]), i32(env, argv[3]), u32(env, argv[4])));
}

/* streamFeedShutdown(f, now, id) / streamFeedAbort(f, now, id, diagnostic) */
static napi_value feed_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  tcf *f;
  if (!args(env, info, 3, argv, &f)) return NULL;
  return tcg_num(env, tcs_shutdown(f->s, u64(env, argv[1]), u32(env, argv[2])));
}

static napi_value feed_abort(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  tcf *f;
  char diag[128];
  size_t n = 0;
  if (!args(env, info, 4, argv, &f)) return NULL;
  diag[0] = '\0';
  napi_get_value_string_utf8(env, argv[3], diag, sizeof diag, &n);
  return tcg_num(env, tcs_abort(f->s, u64(env, argv[1]), u32(env, argv[2]), diag[0] ? diag : NULL));
}

/* streamFeedCollect(f): ArrayBuffer with every connection's bytes to write (entries in out,
 * their count in info[3]), or undefined when there is nothing. One copy per round. */
static napi_value feed_collect(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab = NULL;
  tcf *f;
  void *op, *ip, *p;
  uint32_t no, ni, count = 0, id, total = 0, k;
  int a;
  if (!args(env, info, 1, argv, &f)) return NULL;
  if (!tcg_area(env, f->out_ref, napi_uint32_array, &op, &no) || no < 4u * OUT_MAX ||
      !tcg_area(env, f->info_ref, napi_uint32_array, &ip, &ni) || ni < INFO_WORDS) {
    napi_throw_type_error(env, NULL, "turbocoap: the feed's arrays are detached");
    return NULL;
  }
  {
    uint32_t *out = (uint32_t *)op;
    while (count < OUT_MAX && (a = tcs_next_out(f->s, &id)) != TCS_OUT_NONE) {
      uint32_t len = 0;
      if (a == TCS_OUT_WRITE) (void)tcs_out(f->s, id, &len);
      out[4 * count] = id;
      out[4 * count + 1] = (uint32_t)a;
      out[4 * count + 2] = total;
      out[4 * count + 3] = len;
      total += len;
      count++;
    }
    ((uint32_t *)ip)[3] = count;
    if (count == 0) return NULL;
    if (napi_create_arraybuffer(env, total > 0 ? total : 1, &p, &ab) != napi_ok) return NULL;
    for (k = 0; k < count; k++)
      if (out[4 * k + 1] == TCS_OUT_WRITE && out[4 * k + 3] > 0) {
        uint32_t len = 0;
        const uint8_t *b = tcs_out(f->s, out[4 * k], &len);
        if (b != NULL && len == out[4 * k + 3]) memcpy((uint8_t *)p + out[4 * k + 2], b, len);
      }
  }
  return ab;
}

/* streamFeedWrote(f): the out entries' length words now say how many bytes each socket took
 * (0: congested, kept until streamFeedKick); returns how many connections have more. */
static napi_value feed_wrote(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tcf *f;
  void *op, *ip;
  uint32_t no, ni, k, count, more = 0;
  if (!args(env, info, 1, argv, &f)) return NULL;
  if (!tcg_area(env, f->out_ref, napi_uint32_array, &op, &no) || !tcg_area(env, f->info_ref, napi_uint32_array, &ip, &ni))
    return tcg_num(env, 0);
  count = ((uint32_t *)ip)[3];
  for (k = 0; k < count && k < OUT_MAX; k++) {
    const uint32_t *e = (const uint32_t *)op + 4 * k;
    if (e[1] == TCS_OUT_WRITE && e[3] > 0 && tcs_written(f->s, e[0], e[3]) == TCS_WRITE) more++;
  }
  ((uint32_t *)ip)[3] = 0;
  return tcg_num(env, more);
}

/* streamFeedKick(f, id): the socket drained: its connection's output is queued again */
static napi_value feed_kick(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tcf *f;
  if (!args(env, info, 2, argv, &f)) return NULL;
  return tcg_num(env, tcs_written(f->s, u32(env, argv[1]), 0));
}

/* streamFeedTimer(f, now): an action; streamFeedDeadline(f): ms, or Infinity */
static napi_value feed_timer(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tcf *f;
  if (!args(env, info, 2, argv, &f)) return NULL;
  return tcg_num(env, tcs_timer(f->s, u64(env, argv[1])));
}

static napi_value feed_deadline(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tcf *f;
  uint64_t d;
  if (!args(env, info, 1, argv, &f)) return NULL;
  d = tcs_deadline(f->s);
  return tcg_num(env, d == UINT64_MAX ? (double)INFINITY : (double)d);
}

/* streamFeedFlush(f, now, nwords, nbytes): one tcs_flush round over the TX areas in place: an
 * action (TCS_WRITE: collect/write, then call again), or a negative TC_E_*. */
static napi_value feed_flush(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  tcf *f;
  void *wp, *bp;
  uint32_t wcap, bcap, nw, nb;
  if (!args(env, info, 4, argv, &f)) return NULL;
  nw = u32(env, argv[2]);
  nb = u32(env, argv[3]);
  (void)tcg_area(env, f->txw_ref, napi_uint32_array, &wp, &wcap);
  (void)tcg_area(env, f->txb_ref, napi_uint8_array, &bp, &bcap);
  if (nw > wcap || nb > bcap || (nw > 0 && (wp == NULL || bp == NULL))) {
    napi_throw_range_error(env, NULL, "turbocoap: flush past the tx areas");
    return NULL;
  }
  return tcg_num(env, tcs_flush(f->s, u64(env, argv[1]), (uint32_t *)wp, nw, (const uint8_t *)bp, nb));
}

/* streamFeedTxFailed(f): records of the last complete flush that failed */
static napi_value feed_tx_failed(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tcf *f;
  if (!args(env, info, 1, argv, &f)) return NULL;
  return tcg_num(env, tcs_tx_failed(f->s));
}

/* streamFeedBatchCount(f) */
static napi_value feed_batch_count(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tcf *f;
  if (!args(env, info, 1, argv, &f)) return NULL;
  return tcg_num(env, tcs_batch(f->s)->count);
}

/* streamFeedTakeBatch(f): the batch as one ArrayBuffer (words, then data; info[1] = count,
 * info[2] = word bytes), emptied; undefined when empty */
static napi_value feed_take_batch(napi_env env, napi_callback_info info) {
  napi_value argv[1], ab;
  tcf *f;
  const tcb_rx *rx;
  void *p, *ip;
  uint32_t ni;
  size_t wbytes;
  if (!args(env, info, 1, argv, &f)) return NULL;
  rx = tcs_batch(f->s);
  if (rx->count == 0) return NULL;
  wbytes = (size_t)rx->word_used * 4u;
  if (napi_create_arraybuffer(env, wbytes + rx->data_used, &p, &ab) != napi_ok) return NULL;
  memcpy(p, rx->words, wbytes);
  memcpy((uint8_t *)p + wbytes, rx->data, rx->data_used);
  if (tcg_area(env, f->info_ref, napi_uint32_array, &ip, &ni) && ni >= INFO_WORDS) {
    ((uint32_t *)ip)[1] = rx->count;
    ((uint32_t *)ip)[2] = (uint32_t)wbytes;
  }
  tcs_delivered(f->s);
  return ab;
}

/* streamFeedReadBody(f, id, length) */
static napi_value feed_read_body(napi_env env, napi_callback_info info) {
  napi_value argv[3], ab, out;
  tcf *f;
  uint32_t length;
  void *p = NULL;
  int rc;
  if (!args(env, info, 3, argv, &f)) return NULL;
  length = u32(env, argv[2]);
  if (length > f->max_body) length = f->max_body;
  if (napi_create_arraybuffer(env, length > 0 ? length : 1, &p, &ab) != napi_ok) return NULL;
  rc = tcs_read_body(f->s, u32(env, argv[1]), (uint8_t *)p, length);
  if (rc < 0) return tcg_num(env, rc);
  if (napi_create_typedarray(env, napi_uint8_array, (size_t)rc, ab, 0, &out) != napi_ok) return NULL;
  return out;
}

/* streamFeedStats(f, out: Uint8Array(STREAM_STATS_BYTES)): tcs_stats and tc_srv_stats (the
 * host's counters are JS's: it writes them at SST_ACCEPTED.. itself) */
static napi_value feed_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tcf *f;
  void *p;
  if (!args(env, info, 2, argv, &f) || !tcg_out_bytes(env, argv[1], sizeof(tcs_host_stats), &p, 0))
    return NULL;
  {
    tcs_host_stats st;
    memset(&st, 0, sizeof st);
    st.st = *tcs_get_stats(f->s);
    tc_srv_get_stats(tcs_srv(f->s), &st.srv);
    memcpy(p, &st, sizeof st);
  }
  return NULL;
}

napi_value tc_stream_feed_register(napi_env env, napi_value exports);
napi_value tc_stream_feed_register(napi_env env, napi_value exports) {
  static const tcg_fn fns[] = {
      {"streamFeedCreate", feed_create},   {"streamFeedFree", feed_free},
      {"streamFeedOpen", feed_open},       {"streamFeedRecv", feed_recv},
      {"streamFeedHostEvent", feed_host_event}, {"streamFeedClose", feed_close},
      {"streamFeedShutdown", feed_shutdown}, {"streamFeedAbort", feed_abort},
      {"streamFeedCollect", feed_collect}, {"streamFeedWrote", feed_wrote},
      {"streamFeedKick", feed_kick},       {"streamFeedTimer", feed_timer},
      {"streamFeedDeadline", feed_deadline}, {"streamFeedFlush", feed_flush},
      {"streamFeedTxFailed", feed_tx_failed}, {"streamFeedBatchCount", feed_batch_count},
      {"streamFeedTakeBatch", feed_take_batch}, {"streamFeedReadBody", feed_read_body},
      {"streamFeedStats", feed_stats},
  };
  tcg_register(env, exports, fns, sizeof fns / sizeof fns[0]);
  return exports;
}

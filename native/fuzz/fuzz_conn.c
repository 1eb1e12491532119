/* fuzz_conn.c — libFuzzer harness for an RFC 8323 connection (tc_conn) with a tc_srv above it.
 *
 * Input: byte 0 picks the config (bit 0: TC_WS, bit 1: offer BERT, bits 2..3: Max-Message-Size,
 * bit 4: a tiny output buffer); then operations, one byte each followed by their arguments:
 *   0..3  feed the next (arg + 1) bytes as a chunk (TC_WS: as one message)
 *   4     drain the output (arg: how many bytes, 0 = all; WS: whole messages)
 *   5     advance time by arg * 37 ms and run the timer
 *   6     answer an open exchange through tc_srv (arg: payload length * 16)
 *   7     drop an open exchange
 *   8     send a request (arg: payload length * 8; bit 0 of the flag byte: TC_REQ_KEEP)
 *   9     Ping (arg bit 0: Custody), Release, Abort (arg % 3)
 *   10    notify resource 1 through tc_srv
 * Properties: no crash or sanitizer report; the output never exceeds the buffer; every message
 * we send frames and decodes with the connection's transport and fits the send limit; events
 * with a message decode; a closed connection has no deadline and emits no further events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"

static const uint32_t mms_choice[4] = {64, 1152, 4096, 20000};

typedef struct fz {
  tc_conn *c;
  tc_srv *s;
  tc_messaging m;
  tc_conn_config cfg;
  uint32_t open[16];
  uint32_t nopen;
  uint64_t now;
  int closed_seen;
  tc_deframer *df; /* checks our output (TC_TCP) */
} fz;

static uint8_t g_payload[70000];
#define CONN_MEM (192u << 10)
static void *g_c, *g_s, *g_df;

/* Check and discard n bytes (0 = all) of the output. */
static void drain(fz *f, uint32_t want) {
  uint32_t len;
  const uint8_t *p;
  while ((p = tc_conn_out(f->c, &len)) != NULL && len > 0) {
    uint32_t n = len;
    REQUIRE(len <= f->cfg.out_bytes);
    if (f->cfg.transport == TC_WS) {
      tc_msg m;
      tc_opt o[80];
      REQUIRE(tc_decode(p, len, TC_WS, &m, o, 80) >= 0);
    } else {
      size_t used = 0, pos = 0;
      tc_frame fr;
      if (want && want < n) n = want;
      while (pos < n) {
        int r = tc_deframer_feed(f->df, p + pos, n - pos, &used, &fr, 1);
        REQUIRE(r >= 0);
        if (r == 1) {
          tc_msg m;
          tc_opt o[80];
          const uint8_t *mp = fr.where == TC_FRAME_CHUNK ? p + pos + fr.offset
                                                         : tc_deframer_buffer(f->df) + fr.offset;
          REQUIRE(tc_decode(mp, fr.length, TC_TCP, &m, o, 80) >= 0);
        }
        pos += used;
        if (r == 0) break;
      }
    }
    REQUIRE(tc_conn_out_done(f->c, n) == 0);
    if (want) break;
  }
}

static void on_events(fz *f, const uint8_t *chunk, tc_conn_event *ev, int n) {
  int i;
  for (i = 0; i < n; i++) {
    tc_msg msg;
    tc_opt opts[80];
    tc_rx rx;
    REQUIRE(!f->closed_seen);
    if (ev[i].length) REQUIRE(tc_conn_event_rx(f->c, chunk, &ev[i], &msg, opts, 80, &rx) == 0);
    switch (ev[i].kind) {
    case TC_EV_REQUEST: {
      tc_ep_event e = {TC_EV_REQUEST, ev[i].id, 0, 0};
      tc_srv_req req;
      REQUIRE(tc_srv_input(f->s, &f->m, f->now, &rx, &e, &req) == 0);
      if (e.kind == TC_EV_REQUEST) {
        if (f->nopen < 16u) f->open[f->nopen++] = e.id;
        else (void)tc_srv_drop(f->s, &f->m, e.id);
      }
      break;
    }
    case TC_CONN_EV_READY:
    case TC_CONN_EV_CSM:
      REQUIRE(tc_conn_messaging(f->c, &f->m) == 0);
      break;
    case TC_CONN_EV_CLOSED:
      f->closed_seen = 1;
      f->nopen = 0;
      (void)tc_srv_forget_peer(f->s, (const uint8_t *)"peer", 4);
      break;
    default:
      break;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t seed[32] = {1, 2, 3};
  input in = {data, size};
  uint32_t sel = take(&in);
  fz f;
  tc_srv_config sc;
  size_t cn, sn;
  memset(&f, 0, sizeof f);
  tc_conn_config_default(&f.cfg);
  f.cfg.transport = (sel & 1u) ? TC_WS : TC_TCP;
  f.cfg.flags = (sel & 2u) ? TC_CONNF_BERT : 0u;
  f.cfg.max_message_size = mms_choice[(sel >> 2) & 3u];
  f.cfg.out_bytes = (sel & 16u) ? 1024u : 65536u;
  f.cfg.max_exchanges = 8;
  f.cfg.max_requests = 4;
  f.cfg.idle_ms = 500;
  f.cfg.ping_timeout_ms = 300;
  f.cfg.csm_timeout_ms = 1000;
  f.cfg.request_timeout_ms = 700;
  tc_srv_config_default(&sc);
  sc.max_in_progress = 8;
  sc.max_message_size = 20000;
  sc.bw1.max_transfers = 2;
  sc.bw1.max_per_peer = 2;
  sc.bw1.pool_bytes = 64u << 10;
  sc.bw2.max_reps = 2;
  sc.bw2.pool_bytes = 64u << 10;
  sc.obs.max_observers = 4;
  sc.obs.max_per_resource = 4;
  sc.obs.max_resources = 2;
  sc.max_resource_keys = 2;
  cn = tc_conn_size(&f.cfg);
  sn = tc_srv_size(&sc);
  /* allocated once, initialised every run (large blocks are slow to allocate under ASan) */
  if (g_c == NULL) {
    g_c = malloc(CONN_MEM);
    g_s = malloc(sn);
    g_df = malloc(tc_deframer_size(70000));
  }
  REQUIRE(g_c && g_s && g_df && cn <= CONN_MEM);
  f.c = (tc_conn *)g_c;
  f.s = (tc_srv *)g_s;
  f.df = (tc_deframer *)g_df;
  REQUIRE(tc_deframer_init(f.df, tc_deframer_size(70000), 70000) == 0);
  REQUIRE(tc_conn_init(f.c, cn, &f.cfg, seed, (const uint8_t *)"peer", 4, 0) == 0);
  REQUIRE(tc_srv_init(f.s, sn, &sc, seed) == 0);
  REQUIRE(tc_conn_messaging(f.c, &f.m) == 0);
  while (in.n > 0) {
    uint32_t op = take(&in), arg = take(&in);
    switch (op % 11u) {
    case 0: case 1: case 2: case 3: {
      uint32_t len = arg + 1u;
      const uint8_t *p = in.p;
      size_t pos = 0;
      tc_conn_event ev[6];
      int guard = 0;
      if (len > in.n) len = (uint32_t)in.n;
      in.p += len;
      in.n -= len;
      while (pos < len && guard++ < 64) {
        size_t used = 0;
        int n = tc_conn_recv(f.c, f.now, p + pos, len - pos, &used, ev, 6);
        REQUIRE(n >= 0 && used <= len - pos);
        on_events(&f, p + pos, ev, n);
        pos += used;
        if (used == 0 && n == 0) drain(&f, 0); /* backpressure */
      }
      break;
    }
    case 4:
      drain(&f, arg);
      break;
    case 5: {
      tc_conn_event ev[6];
      int n;
      f.now += (uint64_t)arg * 37u;
      n = tc_conn_timer(f.c, f.now, ev, 6);
      REQUIRE(n >= 0);
      on_events(&f, NULL, ev, n);
      (void)tc_srv_timer(f.s, f.now);
      break;
    }
    case 6:
    case 7:
      if (f.nopen) {
        uint32_t k = arg % f.nopen, id = f.open[k];
        int rc;
        if (op % 11u == 6u) {
          tc_msg r;
          tc_outmsg out;
          memset(&r, 0, sizeof r);
          r.code = 0x45;
          r.payload_length = (arg * 16u) % 4096u;
          out.msg = &r;
          out.opts = NULL;
          out.src = g_payload;
          rc = tc_srv_respond(f.s, &f.m, f.now, id, &out, arg & 1u);
        } else {
          rc = tc_srv_drop(f.s, &f.m, id);
        }
        if (rc != TC_E_FULL && rc != TC_E_MESSAGE_TOO_LARGE) f.open[k] = f.open[--f.nopen];
      }
      break;
    case 8: {
      tc_msg m;
      tc_opt o[1];
      tc_req_args a;
      uint32_t fl = take(&in);
      memset(&m, 0, sizeof m);
      m.code = 1u + (fl >> 1) % 4u;
      m.option_count = 1;
      o[0].number = 11;
      o[0].offset = 0;
      o[0].length = 3;
      m.payload_offset = 3;
      m.payload_length = arg * 8u;
      memset(&a, 0, sizeof a);
      a.flags = (fl & 1u) ? TC_REQ_KEEP : 0u;
      a.gen_token_length = (int32_t)(fl % 9u);
      a.req.msg = &m;
      a.req.opts = o;
      a.req.src = g_payload;
      (void)tc_conn_request(f.c, f.now, &a, NULL);
      break;
    }
    case 9:
      if (arg % 3u == 0u) (void)tc_conn_ping(f.c, f.now, (int)(arg & 4u), NULL);
      else if (arg % 3u == 1u)
        (void)tc_conn_release(f.c, f.now, (const uint8_t *)"alt", arg & 4u ? 3u : 0u, arg, "r");
      else if (tc_conn_abort(f.c, f.now, "a") == 0)
        f.closed_seen = 1; /* no event for our own Abort */
      break;
    case 10: {
      tc_msg r;
      tc_outmsg out;
      memset(&r, 0, sizeof r);
      r.code = 0x45;
      r.payload_length = arg * 8u;
      out.msg = &r;
      out.opts = NULL;
      out.src = g_payload;
      (void)tc_srv_notify(f.s, &f.m, f.now, 1, 0, &out);
      break;
    }
    }
    REQUIRE(tc_conn_out_pending(f.c) <= f.cfg.out_bytes);
    if ((tc_conn_state(f.c) & 0xFFu) == TC_CONN_CLOSED)
      REQUIRE(tc_conn_next_deadline(f.c) == UINT64_MAX);
  }
  drain(&f, 0);
  return 0;
}

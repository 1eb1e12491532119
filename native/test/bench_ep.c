/*
 * bench_ep.c — hot-path micro-benchmark of the messaging layer (not part of the test suite).
 *
 * Server: 1,000,000 new CON GET requests from 1,000 peers (16-byte addresses), each
 * tc_ep_recv -> TC_EV_REQUEST -> tc_ep_respond (piggybacked 2.05), with the driver calling
 * tc_ep_timer whenever tc_ep_next_deadline() is due. Default config (dedup ring of 16384, so
 * the ring is evicting in steady state). Also a client+server round trip for comparison.
 * Build: cc -std=c11 -O2 -DTC_EP_BENCH_MAIN -Inative/include <core sources> native/test/bench_ep.c
 * Prints ns per request (best of 3 runs).
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "turbocoap.h"

#define PEERS 1000u
#define REQUESTS 1000000u

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static tc_ep *make_ep(const tc_ep_config *cfg, uint8_t s) {
  uint8_t seed[32];
  size_t sz = tc_ep_size(cfg);
  tc_ep *ep = malloc(sz);
  int i;
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(s + i);
  if (ep == NULL || tc_ep_init(ep, sz, cfg, seed) != 0) {
    fprintf(stderr, "bench: init failed\n");
    exit(2);
  }
  return ep;
}

static uint8_t g_buf[1 << 16];
static uint64_t g_dedup_evictions;
static tc_tx g_items[64];

/* srv: 0 = tc_ep_recv/tc_ep_respond; 1 = the server pipeline (tc_srv_recv/tc_srv_respond,
 * through the messaging seam) */
static double bench_server(int srv) {
  tc_ep_config cfg;
  tc_srv_config scfg;
  tc_srv *sv = NULL;
  tc_srv_req sreq;
  tc_messaging seam;
  tc_rx rx;
  tc_outmsg out;
  tc_ep *ep;
  uint8_t addrs[PEERS][16], dgram[PEERS][32], src[8] = {'2', '2', '.', '5'};
  uint32_t dlen = 0, i, sink = 0;
  tc_txq tx = {g_buf, sizeof g_buf, 0, g_items, 64, 0};
  tc_msg msg, resp;
  tc_opt opts[16], ro[1];
  tc_ep_event ev, evs[16];
  double t0, t1;
  tc_ep_config_default(&cfg);
  ep = make_ep(&cfg, 7);
  if (tc_ep_messaging(ep, &tx, &seam) != 0) exit(2);
  if (srv) {
    uint8_t seed[16] = {9};
    size_t sz;
    tc_srv_config_default(&scfg);
    sz = tc_srv_size(&scfg);
    sv = malloc(sz);
    if (sv == NULL || tc_srv_init(sv, sz, &scfg, seed) != 0) exit(2);
  }
  for (i = 0; i < PEERS; i++) { /* sockaddr_in-like: family, port, IPv4, zero padding */
    tc_msg m;
    tc_opt o[1];
    uint8_t s[16] = {0xA1, 0xB2, 0xC3, 0xD4, 't', 'e', 'm', 'p'};
    memset(addrs[i], 0, 16);
    addrs[i][0] = 2;
    addrs[i][2] = (uint8_t)((40000u + i) >> 8);
    addrs[i][3] = (uint8_t)(40000u + i);
    addrs[i][4] = 10;
    addrs[i][6] = (uint8_t)(i >> 8);
    addrs[i][7] = (uint8_t)i;
    memset(&m, 0, sizeof m);
    m.type = TC_CON;
    m.code = 1;
    m.token_length = 4;
    o[0].number = 11;
    o[0].offset = 4;
    o[0].length = 4;
    m.option_count = 1;
    dlen = (uint32_t)tc_encode(dgram[i], sizeof dgram[i], TC_UDP, &m, o, s);
  }
  memset(&resp, 0, sizeof resp);
  resp.code = 0x45;
  resp.payload_length = 4;
  resp.option_count = 1;
  out.msg = &resp;
  out.opts = ro;
  out.src = src;
  rx.addr_len = 16;
  rx.msg = &msg;
  rx.opts = opts;
  rx.opt_cap = 16;
  rx.len = dlen;
  t0 = now_ns();
  for (i = 0; i < REQUESTS; i++) {
    uint32_t p = i % PEERS, mid = i / PEERS;
    uint64_t now = 1000u + i / 100u; /* 100 requests per ms */
    uint8_t *d = dgram[p];
    d[2] = (uint8_t)(mid >> 8);
    d[3] = (uint8_t)mid;
    if (now >= tc_ep_next_deadline(ep)) sink += (uint32_t)tc_ep_timer(ep, now, &tx, evs, 16);
    rx.addr = addrs[p];
    rx.data = d;
    if ((srv ? tc_srv_recv(sv, &seam, now, &rx, &ev, &sreq) : tc_ep_recv(ep, now, &rx, &tx, &ev)) !=
            0 ||
        ev.kind != TC_EV_REQUEST) {
      fprintf(stderr, "bench: recv failed at %u\n", i);
      exit(2);
    }
    ro[0].number = 12;
    ro[0].offset = 0;
    ro[0].length = 0;
    if ((srv ? tc_srv_respond(sv, &seam, now, ev.id, &out, 0)
             : tc_ep_respond(ep, now, ev.id, &out, &tx)) != 0) {
      fprintf(stderr, "bench: respond failed at %u\n", i);
      exit(2);
    }
    sink += tx.items[tx.count - 1].length;
    if (tx.count >= 32) tx.count = tx.used = 0; /* "sent" */
  }
  t1 = now_ns();
  {
    tc_ep_stats st;
    tc_ep_get_stats(ep, &st);
    if (st.in_progress != 0 || st.overloads != 0 || sink == 0) {
      fprintf(stderr, "bench: unexpected state\n");
      exit(2);
    }
    g_dedup_evictions = st.dedup_evictions;
  }
  free(ep);
  free(sv);
  return (t1 - t0) / REQUESTS;
}

/* client request -> server recv -> respond -> client recv, 100 peers' worth of clients
 * simulated by one client ep talking to one server ep */
static double bench_roundtrip(void) {
  tc_ep_config cfg;
  tc_ep *c, *s;
  static uint8_t cbuf[1 << 16], sbuf[1 << 16];
  static tc_tx citems[64], sitems[64];
  tc_txq ctx = {cbuf, sizeof cbuf, 0, citems, 64, 0}, stx = {sbuf, sizeof sbuf, 0, sitems, 64, 0};
  uint8_t caddr[16] = {2, 0, 0x9c, 0x40, 10, 0, 0, 1}, saddr[16] = {2, 0, 0x16, 0x33, 10, 0, 0, 2};
  uint8_t path[4] = {'t', 'e', 'm', 'p'}, pay[4] = {'2', '2', '.', '5'};
  tc_msg req, resp, msg;
  tc_opt o[1], opts[16], ro[1];
  tc_ep_event ev, evs[16];
  uint32_t i, id, n = REQUESTS / 2;
  tc_req_args ra;
  tc_req_result rr;
  tc_rx rx;
  tc_outmsg out;
  double t0, t1;
  tc_ep_config_default(&cfg);
  cfg.nstart = 64;
  c = make_ep(&cfg, 1);
  s = make_ep(&cfg, 2);
  memset(&req, 0, sizeof req);
  req.code = 1;
  req.option_count = 1;
  memset(&resp, 0, sizeof resp);
  resp.code = 0x45;
  resp.payload_length = 4;
  resp.option_count = 1;
  t0 = now_ns();
  for (i = 0; i < n; i++) {
    uint64_t now = 1000u + i / 100u;
    o[0].number = 11;
    o[0].offset = 0;
    o[0].length = 4;
    if (now >= tc_ep_next_deadline(c)) (void)tc_ep_timer(c, now, &ctx, evs, 16);
    if (now >= tc_ep_next_deadline(s)) (void)tc_ep_timer(s, now, &stx, evs, 16);
    ctx.count = ctx.used = 0;
    stx.count = stx.used = 0;
    memset(&ra, 0, sizeof ra);
    ra.addr = saddr;
    ra.addr_len = 16;
    ra.flags = TC_REQ_CON;
    ra.gen_token_length = 4;
    ra.req.msg = &req;
    ra.req.opts = o;
    ra.req.src = path;
    if (tc_ep_request(c, now, &ra, &ctx, &rr) != 0) exit(3);
    id = rr.id;
    rx.addr = caddr;
    rx.addr_len = 16;
    rx.data = cbuf + citems[0].offset;
    rx.len = citems[0].length;
    rx.msg = &msg;
    rx.opts = opts;
    rx.opt_cap = 16;
    if (tc_ep_recv(s, now, &rx, &stx, &ev) != 0 || ev.kind != TC_EV_REQUEST) exit(4);
    ro[0].number = 12;
    ro[0].offset = 0;
    ro[0].length = 0;
    out.msg = &resp;
    out.opts = ro;
    out.src = pay;
    if (tc_ep_respond(s, now, ev.id, &out, &stx) != 0) exit(5);
    rx.addr = saddr;
    rx.data = sbuf + sitems[0].offset;
    rx.len = sitems[0].length;
    if (tc_ep_recv(c, now, &rx, &ctx, &ev) != 0 || ev.kind != TC_EV_RESPONSE || ev.id != id)
      exit(6);
  }
  t1 = now_ns();
  free(c);
  free(s);
  return (t1 - t0) / n;
}

int bench_ep_run(void);
int bench_ep_run(void) {
  double best = 1e18, best_rt = 1e18, best_srv = 1e18;
  int r;
  for (r = 0; r < 3; r++) {
    double x = bench_server(0), y = bench_roundtrip(), z = bench_server(1);
    if (x < best) best = x;
    if (y < best_rt) best_rt = y;
    if (z < best_srv) best_srv = z;
  }
  printf("bench-ep: server recv(new CON GET) + respond piggybacked: %.1f ns/request "
         "(%u requests, %u peers, best of 3)\n",
         best, REQUESTS, PEERS);
  printf("bench-ep: server pipeline tc_srv_recv + tc_srv_respond (same traffic): %.1f ns/request\n",
         best_srv);
  printf("bench-ep: (server dedup ring evicting in steady state: %llu evictions per run)\n",
         (unsigned long long)g_dedup_evictions);
  printf("bench-ep: client request + server recv/respond + client recv: %.1f ns/round trip\n",
         best_rt);
  return 0;
}

#ifdef TC_EP_BENCH_MAIN
int main(void) { return bench_ep_run(); }
#endif

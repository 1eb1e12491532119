/* test_blockwise_client.c — the client side of block-wise transfer (blockwise_client.c), run
 * against the server-side stores (tc_bw1_*, tc_bw2_*), and the client Observe freshness rules.
 * Prints "blockwise-client-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "calls.h"

#define MIB (1u << 20)
#define OPTN 24

static const uint8_t SEED[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
static const uint8_t PEER[4] = {10, 0, 0, 9};
static const uint8_t KEY[3] = {'r', 'e', 's'};

static uint8_t *g_src;  /* the 1 MiB body: byte i = i % 251 */
static uint8_t *g_src2; /* a different body of the same length */
static uint8_t *g_body; /* the client's body memory */
static uint8_t g_buf[70000];

static tc_bwc *bwc_new(const tc_bwc_config *cfg) {
  size_t n = tc_bwc_size(cfg);
  tc_bwc *c = n ? malloc(n) : NULL;
  if (c == NULL || tc_bwc_init(c, n, cfg) != 0) {
    free(c);
    return NULL;
  }
  return c;
}

static tc_bw2 *bw2_new(uint32_t szx) {
  tc_bw2_config cfg;
  size_t n;
  tc_bw2 *s;
  tc_bw2_config_default(&cfg);
  cfg.preferred_szx = szx;
  cfg.pool_bytes = 4u * MIB;
  n = tc_bw2_size(&cfg);
  s = n ? malloc(n) : NULL;
  if (s == NULL || tc_bw2_init(s, n, &cfg, SEED) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

/* Store body (len bytes) as the 2.05 representation of KEY; returns its id. */
static uint32_t bw2_store(tc_bw2 *s, const uint8_t *body, uint32_t len) {
  tc_msg m;
  uint32_t id = 0;
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  m.payload_length = len;
  CHECK_EQ(t_bw2_put(s, 0, NULL, 0, KEY, sizeof KEY, &m, NULL, body, 0, &id), 0, "bw2 put");
  return id;
}

typedef struct served {
  tc_msg m;
  tc_opt o[OPTN];
} served;

static int serve(tc_bw2 *s, uint32_t id, uint32_t block2, uint32_t flags, uint32_t limit,
                 served *sv) {
  return t_bw2_serve(s, 0, id, block2, flags, 0, limit, &sv->m, sv->o, OPTN, g_buf,
                      sizeof g_buf);
}

/* Remove every option `number` from a served response. */
static void strip(served *sv, uint32_t number) {
  uint32_t i, k = 0;
  for (i = 0; i < sv->m.option_count; i++)
    if (sv->o[i].number != number) sv->o[k++] = sv->o[i];
  sv->m.option_count = k;
}

/* ------------------------------------------------------------------ downloads */

/* Download the 1 MiB body from a store serving at server_szx with a client preferring
 * client_szx; early: ask Block2 in the first request. Checks body, block count, progress. */
static void t_download_one(uint32_t server_szx, uint32_t client_szx, int early) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw2 *s = bw2_new(server_szx);
  tc_bwc_result res;
  served sv;
  uint32_t id, block2, steps = 0, done = 0, total = 0, want_szx, flags;
  int st = 0;
  char what[64];
  snprintf(what, sizeof what, "download server %u client %u early %d", server_szx, client_szx,
           early);
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = client_szx;
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL) {
    CHECK(0, "%s: setup", what);
    free(c);
    free(s);
    return;
  }
  id = bw2_store(s, g_src, MIB);
  CHECK_EQ(tc_bwc_get_begin(c, &res), TC_BWC_NEXT, what);
  CHECK_EQ(res.block, tc_block_value(0, 0, client_szx), what);
  block2 = res.block;
  flags = early ? TC_BW_HAS_BLOCK2 : 0u;
  memset(g_body, 0xEE, MIB);
  want_szx = early ? (client_szx < server_szx ? client_szx : server_szx) : server_szx;
  want_szx = want_szx < client_szx ? want_szx : client_szx;
  while (steps < (1u << 17) + 8u) {
    int n = serve(s, id, block2, flags, 0, &sv);
    if (n < 0) {
      CHECK(0, "%s: serve %d", what, n);
      break;
    }
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
    if (st != TC_BWC_NEXT) break;
    if (steps == 1) {
      CHECK(res.flags & TC_BWCF_SIZE, "%s: Size2 on block 0", what);
      CHECK_EQ(res.size, MIB, what);
      tc_bwc_progress(c, &done, &total);
      CHECK(total == MIB && done == tc_szx_size(early ? want_szx : server_szx), "%s: progress",
            what);
    }
    {
      tc_block b;
      tc_block_from_value(res.block, &b);
      if (steps > 1 && b.szx != want_szx) {
        CHECK(0, "%s: szx %u", what, b.szx);
        break;
      }
    }
    block2 = res.block;
    flags = TC_BW_HAS_BLOCK2;
  }
  CHECK_EQ(st, TC_BWC_DONE, what);
  CHECK_EQ(res.length, MIB, what);
  CHECK_EQ(res.code, 0x45, what);
  CHECK(memcmp(g_body, g_src, MIB) == 0, "%s: body", what);
  /* blocks: the first at the size the first request got, then want_szx */
  {
    uint32_t first = tc_szx_size(early ? want_szx : server_szx);
    CHECK_EQ(steps, 1u + (MIB - first) / tc_szx_size(want_szx), what);
  }
  CHECK_EQ(tc_bwc_progress(c, &done, &total), TC_BWC_DONE, what);
  CHECK(done == MIB && total == MIB, "%s: final progress", what);
  /* after DONE: ignored */
  CHECK_EQ(tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res), TC_BWC_IGNORED, what);
  free(c);
  free(s);
}

static void t_downloads(void) {
  uint32_t szx;
  for (szx = 0; szx <= 6; szx++) {
    t_download_one(szx, szx, 1);                   /* same size */
    if (szx > 0) t_download_one(szx, szx - 1, 1); /* client prefers smaller */
    if (szx < 6) t_download_one(szx, szx + 1, 1); /* client prefers larger: adopts server's */
  }
  t_download_one(3, 6, 0); /* no early negotiation: server's size, then kept */
  t_download_one(6, 2, 0); /* no early negotiation, client smaller: switches after block 0 */
}

/* BERT on a reliable transport: several 1024-byte blocks per response. */
static void t_download_bert(void) {
  tc_bwc_config cfg;
  tc_bwc *c, *c2;
  tc_bw2 *s = bw2_new(6);
  tc_bwc_result res;
  served sv;
  uint32_t id, steps = 0;
  int st = 0;
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = 7;
  CHECK_EQ(tc_bwc_size(&cfg), 0, "BERT needs TC_BWC_BERT");
  cfg.flags = TC_BWC_BERT;
  c = bwc_new(&cfg);
  tc_bwc_config_default(&cfg);
  c2 = bwc_new(&cfg);
  if (c == NULL || c2 == NULL || s == NULL) {
    CHECK(0, "bert setup");
    goto out;
  }
  id = bw2_store(s, g_src, MIB);
  tc_bwc_get_begin(c, &res);
  CHECK_EQ(res.block, tc_block_value(0, 0, 7), "BERT ask");
  memset(g_body, 0, MIB);
  while (steps < 2000u) {
    if (serve(s, id, res.block, TC_BW_HAS_BLOCK2 | TC_BW_BERT, 8300, &sv) < 0) break;
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_DONE, "BERT done");
  CHECK(memcmp(g_body, g_src, MIB) == 0, "BERT body");
  CHECK_EQ(steps, 128, "BERT: 8 KiB per response");
  /* a client without BERT given SZX 7: protocol error */
  tc_bwc_get_begin(c2, &res);
  serve(s, id, tc_block_value(0, 0, 7), TC_BW_HAS_BLOCK2 | TC_BW_BERT, 8300, &sv);
  CHECK_EQ(tc_bwc_get_response(c2, &sv.m, sv.o, g_buf, g_body, MIB, &res), TC_BWC_FAILED,
           "SZX 7 without BERT");
  CHECK_EQ(res.error, TC_E_BAD_OPTION, "bad option");
out:
  free(c);
  free(c2);
  free(s);
}

/* The representation changes mid-transfer: restart from block 0, bounded. */
static void t_download_etag_change(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw2 *s = bw2_new(6);
  tc_bwc_result res;
  served sv;
  uint32_t id, steps = 0, restarts = 0, done, total;
  int st = 0;
  tc_bwc_config_default(&cfg);
  cfg.max_restarts = 2;
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL) {
    CHECK(0, "etag setup");
    free(c);
    free(s);
    return;
  }
  id = bw2_store(s, g_src, MIB);
  tc_bwc_get_begin(c, &res);
  while (steps < 4000u) {
    if (serve(s, id, res.block, TC_BW_HAS_BLOCK2, 0, &sv) < 0) break;
    steps++;
    if (steps == 300) { /* change it: new body, new ETag */
      id = bw2_store(s, g_src2, MIB);
    }
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
    if (steps == 300) {
      CHECK_EQ(st, TC_BWC_NEXT, "served from the old one before the change");
      st = TC_BWC_NEXT;
    }
    if (st == TC_BWC_RESTART) {
      restarts++;
      CHECK_EQ(res.block, tc_block_value(0, 0, 6), "restart at block 0");
      tc_bwc_progress(c, &done, &total);
      CHECK(done == 0 && total == 0, "progress reset");
      continue;
    }
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_DONE, "done after restart");
  CHECK_EQ(restarts, 1, "one restart");
  CHECK(memcmp(g_body, g_src2, MIB) == 0, "the new body");
  CHECK_EQ(steps, 301 + 1024, "blocks");

  /* changes beyond max_restarts: TC_E_STALE */
  tc_bwc_get_begin(c, &res);
  restarts = 0;
  steps = 0;
  while (steps < 100u) {
    if (serve(s, id, res.block, TC_BW_HAS_BLOCK2, 0, &sv) < 0) break;
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
    if (st == TC_BWC_RESTART) restarts++;
    if (st != TC_BWC_NEXT && st != TC_BWC_RESTART) break;
    if (steps % 5 == 2) id = bw2_store(s, (steps / 5) % 2 ? g_src : g_src2, MIB);
  }
  CHECK_EQ(st, TC_BWC_FAILED, "too many changes");
  CHECK_EQ(res.error, TC_E_STALE, "stale");
  CHECK_EQ(restarts, 2, "max_restarts restarts first");
  CHECK_EQ(tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res), TC_BWC_FAILED,
           "failed stays failed");
  CHECK_EQ(res.error, TC_E_STALE, "same error");
  free(c);
  free(s);
}

/* The body bound: Size2 over it fails at once; without Size2 when the body passes it. */
static void t_download_bound(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw2 *s = bw2_new(6);
  tc_bwc_result res;
  served sv;
  uint32_t id, steps = 0;
  int st = 0;
  tc_bwc_config_default(&cfg);
  cfg.max_body = MIB - 1u;
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL) {
    CHECK(0, "bound setup");
    free(c);
    free(s);
    return;
  }
  id = bw2_store(s, g_src, MIB);
  tc_bwc_get_begin(c, &res);
  serve(s, id, res.block, TC_BW_HAS_BLOCK2, 0, &sv);
  CHECK_EQ(tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res), TC_BWC_FAILED,
           "Size2 over max_body");
  CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "too large");
  /* without Size2 and with body memory of 5000 bytes: fails on the 5th block */
  tc_bwc_get_begin(c, &res);
  while (steps < 100u) {
    serve(s, id, res.block, TC_BW_HAS_BLOCK2, 0, &sv);
    strip(&sv, TC_OPT_SIZE2);
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, 5000, &res);
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_FAILED, "body memory bound");
  CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "too large");
  CHECK_EQ(steps, 5, "at the block that passes it");
  /* exactly at the bound: fine */
  {
    uint32_t id2 = bw2_store(s, g_src, 4096);
    steps = 0;
    tc_bwc_get_begin(c, &res);
    while (steps < 100u) {
      serve(s, id2, res.block, TC_BW_HAS_BLOCK2, 0, &sv);
      steps++;
      st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, 4096, &res);
      if (st != TC_BWC_NEXT) break;
    }
    CHECK_EQ(st, TC_BWC_DONE, "exactly the bound");
    CHECK_EQ(res.length, 4096, "length");
  }
  free(c);
  free(s);
}

/* Duplicated, late and out-of-order responses (a lossy, reordering network). */
static void t_download_reorder(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw2 *s = bw2_new(4);
  tc_bwc_result res;
  served sv;
  uint32_t id, steps = 0, dups = 0, gaps = 0, want;
  uint64_t rng = 0x1234567;
  int st = 0;
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = 4;
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL) {
    CHECK(0, "reorder setup");
    free(c);
    free(s);
    return;
  }
  id = bw2_store(s, g_src, 100000);
  tc_bwc_get_begin(c, &res);
  want = res.block;
  while (steps < 20000u) {
    uint32_t r = tc_rand(&rng) % 10, ask = want;
    tc_block b;
    tc_block_from_value(want, &b);
    if (r == 0 && b.num > 0) ask = tc_block_value(tc_rand(&rng) % b.num, 0, 4); /* old */
    else if (r == 1) ask = tc_block_value(b.num + 1 + tc_rand(&rng) % 3, 0, 4);  /* ahead */
    if (serve(s, id, ask, TC_BW_HAS_BLOCK2, 0, &sv) < 0) {
      steps++;
      continue; /* past the end */
    }
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
    if (ask != want) {
      CHECK_EQ(st, TC_BWC_IGNORED, "not the block wanted");
      CHECK_EQ(res.block, want, "still wanted");
      if (res.flags & TC_BWCF_DUPLICATE) dups++;
      else gaps++;
      continue;
    }
    if (st != TC_BWC_NEXT) break;
    want = res.block;
  }
  CHECK_EQ(st, TC_BWC_DONE, "reordered download done");
  CHECK_EQ(res.length, 100000, "length");
  CHECK(memcmp(g_body, g_src, 100000) == 0, "body");
  CHECK(dups > 20 && gaps > 20, "both kinds seen (%u, %u)", dups, gaps);
  free(c);
  free(s);
}

/* Hand-made responses: no Block2, wrong block sizes, bad options. */
static void t_download_edges(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bwc_result res;
  tc_tmsg r;
  uint8_t pl[64];
  uint32_t done, total;
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = 2; /* 64 */
  c = bwc_new(&cfg);
  if (c == NULL) {
    CHECK(0, "edges setup");
    return;
  }
  memset(pl, 'x', sizeof pl);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_E_INVALID,
           "not begun");
  /* a whole body without Block2 */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_payload(&r, "hello", 5);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_DONE, "whole");
  CHECK(res.length == 5 && memcmp(g_body, "hello", 5) == 0, "whole body");
  tc_bwc_progress(c, &done, &total);
  CHECK(done == 5 && total == 5, "progress");
  /* a 4.04 without Block2: DONE with its code */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x84);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_DONE, "4.04");
  CHECK(res.code == 0x84 && res.length == 0, "4.04 code");
  /* a whole body over the bound */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_payload(&r, pl, 64);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, 63, &res), TC_BWC_FAILED, "whole>");
  CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "too large");
  /* M=1 with a short block */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(0, 1, 2));
  tmsg_payload(&r, pl, 63);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_FAILED, "short");
  CHECK_EQ(res.error, TC_E_BAD_OPTION, "bad");
  /* last block larger than the size */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(0, 0, 1));
  tmsg_payload(&r, pl, 33);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_FAILED, "long");
  /* Block2 of 4 bytes */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_opt(&r, TC_OPT_BLOCK2, "\0\0\0\x0a", 4);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_FAILED, "4B");
  CHECK_EQ(res.error, TC_E_BAD_OPTION, "bad");
  /* ETag of 9 bytes */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_opt(&r, TC_OPT_ETAG, "123456789", 9);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(0, 0, 2));
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_FAILED, "etag9");
  /* an ETag appearing on block 1 (none on block 0) is a change; so is a code change */
  tc_bwc_get_begin(c, &res);
  tmsg_init(&r, 0x45);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(0, 1, 2));
  tmsg_payload(&r, pl, 64);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_NEXT, "b0");
  tmsg_init(&r, 0x45);
  tmsg_opt(&r, TC_OPT_ETAG, "e", 1);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(1, 1, 2));
  tmsg_payload(&r, pl, 64);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_RESTART, "etag+");
  tmsg_init(&r, 0x45);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(0, 1, 2));
  tmsg_payload(&r, pl, 64);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_NEXT, "b0 again");
  tmsg_init(&r, 0x44);
  tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(1, 0, 2));
  tmsg_payload(&r, pl, 10);
  CHECK_EQ(tc_bwc_get_response(c, &r.msg, r.opts, r.src, g_body, MIB, &res), TC_BWC_RESTART, "code");
  /* config bounds */
  {
    tc_bwc_config b;
    tc_bwc_config_default(&b);
    CHECK(tc_bwc_size(&b) > 0, "default ok");
    b.max_body = 0;
    CHECK_EQ(tc_bwc_size(&b), 0, "max_body 0");
    b.max_body = (1u << 30) + 1u;
    CHECK_EQ(tc_bwc_size(&b), 0, "max_body > 2^30");
    tc_bwc_config_default(&b);
    b.max_restarts = 256;
    CHECK_EQ(tc_bwc_size(&b), 0, "restarts");
    tc_bwc_config_default(&b);
    b.bert_bytes = 1000;
    CHECK_EQ(tc_bwc_size(&b), 0, "bert_bytes");
    tc_bwc_config_default(&b);
    b.flags = 2;
    CHECK_EQ(tc_bwc_size(&b), 0, "flags");
    CHECK_EQ(tc_bwc_size(NULL), 0, "NULL");
    tc_bwc_config_default(&b);
    CHECK_EQ(tc_bwc_init(c, 8, &b), TC_E_INVALID, "short mem");
  }
  free(c);
}


/* Download NUM bound: at SZX 0 no block past NUM 2^20 - 1 can be asked for (16 MiB). */
static void t_download_num_bound(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bwc_result res;
  tc_tmsg r;
  uint8_t *big = malloc((16u << 20) + 1024u);
  uint32_t k;
  int st = 0;
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = 0;
  cfg.max_body = 1u << 30;
  c = bwc_new(&cfg);
  if (c == NULL || big == NULL) {
    CHECK(0, "num bound setup");
    free(c);
    free(big);
    return;
  }
  tc_bwc_get_begin(c, &res);
  /* the server answers with 1024-byte blocks the client keeps asking at 16 */
  for (k = 0; k < 16384u; k++) {
    tmsg_init(&r, 0x45);
    tmsg_uint(&r, TC_OPT_BLOCK2, tc_block_value(k, 1, 6));
    tmsg_payload(&r, g_src, 1024);
    st = tc_bwc_get_response(c, &r.msg, r.opts, r.src, big, (16u << 20) + 1024u, &res);
    if (st != TC_BWC_NEXT) break;
    if (res.block != tc_block_value((k + 1u) * 64u, 0, 0)) {
      CHECK(0, "asks at SZX 0");
      break;
    }
  }
  CHECK_EQ(k, 16383, "fails on the block reaching 16 MiB");
  CHECK_EQ(st, TC_BWC_FAILED, "NUM 2^20 not askable");
  CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "too large");
  free(c);
  free(big);
}

/* ------------------------------------------------------------------- uploads */

static tc_bw1 *bw1_new(uint32_t szx, uint32_t max_body) {
  tc_bw1_config cfg;
  size_t n;
  tc_bw1 *s;
  tc_bw1_config_default(&cfg);
  cfg.preferred_szx = szx;
  cfg.max_body = max_body;
  cfg.pool_bytes = 4u * MIB;
  n = tc_bw1_size(&cfg);
  s = n ? malloc(n) : NULL;
  if (s == NULL || tc_bw1_init(s, n, &cfg, SEED) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

/* The server's answer to one block; for COMPLETE a 2.04 with Block1 (and the body read into
 * out when out != NULL). */
static int server_answer(tc_bw1 *s, const uint8_t *key, uint32_t klen, const tc_bwc_result *blk,
                         const uint8_t *body, tc_tmsg *r, uint8_t *out, uint32_t *out_len) {
  tc_bw1_result br;
  int st = t_bw1_feed(s, 0, PEER, 4, key, klen, blk->block, 0, 0, body + blk->offset,
                       blk->length, &br);
  tmsg_init(r, 0);
  if (st == TC_BW1_CONTINUE || st == TC_BW1_REJECT) {
    int n = tc_bw1_response(&br, &r->msg, r->opts, OPTN, r->src, sizeof r->src);
    CHECK(n >= 0, "bw1 response %d", n);
  } else if (st == TC_BW1_COMPLETE || st == TC_BW1_WHOLE) {
    r->msg.code = 0x44;
    tmsg_uint(r, TC_OPT_BLOCK1, br.block1);
    if (st == TC_BW1_COMPLETE && out) {
      int n = tc_bw1_read(s, br.id, out, MIB);
      if (out_len) *out_len = (uint32_t)n;
    } else if (st == TC_BW1_COMPLETE) {
      tc_bw1_release(s, br.id);
    }
  }
  return st;
}

static void t_upload_one(uint32_t client_szx, uint32_t server_szx) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw1 *s = bw1_new(server_szx, 2u * MIB);
  tc_bwc_result res;
  tc_tmsg r;
  uint32_t steps = 0, got = 0, done, total, eff;
  int st = 0, sst = 0;
  char what[64];
  snprintf(what, sizeof what, "upload client %u server %u", client_szx, server_szx);
  tc_bwc_config_default(&cfg);
  cfg.preferred_szx = client_szx;
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL) {
    CHECK(0, "%s: setup", what);
    free(c);
    free(s);
    return;
  }
  eff = client_szx < server_szx ? client_szx : server_szx;
  CHECK_EQ(tc_bwc_put_begin(c, MIB, NULL, 0, &res), TC_BWC_NEXT, what);
  CHECK(res.offset == 0 && res.length == tc_szx_size(client_szx) &&
            res.block == tc_block_value(0, 1, client_szx),
        "%s: first block", what);
  memset(g_body, 0, MIB);
  while (steps < (1u << 17) + 8u) {
    steps++;
    sst = server_answer(s, KEY, sizeof KEY, &res, g_src, &r, g_body, &got);
    st = tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res);
    if (st != TC_BWC_NEXT) break;
    if (steps == 1) {
      tc_block b;
      tc_block_from_value(res.block, &b);
      CHECK_EQ(b.szx, eff, what);
      CHECK_EQ(res.offset, tc_szx_size(client_szx), what);
      CHECK_EQ(b.num, tc_szx_size(client_szx) / tc_szx_size(eff), what);
    }
    tc_bwc_progress(c, &done, &total);
    if (done != res.offset || total != MIB) {
      CHECK(0, "%s: progress %u/%u", what, done, total);
      break;
    }
  }
  CHECK_EQ(sst, TC_BW1_COMPLETE, what);
  CHECK_EQ(st, TC_BWC_DONE, what);
  CHECK_EQ(res.code, 0x44, what);
  CHECK_EQ(res.flags & (TC_BWCF_EARLY | TC_BWCF_BLOCK2), 0, what);
  CHECK_EQ(got, MIB, what);
  CHECK(memcmp(g_body, g_src, MIB) == 0, "%s: body", what);
  CHECK_EQ(steps, 1u + (MIB - tc_szx_size(client_szx)) / tc_szx_size(eff), what);
  tc_bwc_progress(c, &done, &total);
  CHECK(done == MIB && total == MIB, "%s: final progress", what);
  free(c);
  free(s);
}

static void t_uploads(void) {
  uint32_t szx;
  for (szx = 0; szx <= 6; szx++) {
    t_upload_one(szx, szx);
    if (szx >= 1) t_upload_one(szx, szx - 1); /* server asks smaller */
    if (szx >= 3) t_upload_one(szx, szx - 3);
  }
  t_upload_one(2, 6); /* server's preference larger: the client keeps its own */
}

static void t_upload_errors(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw1 *s = bw1_new(6, 3000), *s2 = bw1_new(6, MIB);
  tc_bwc_result res, first;
  tc_tmsg r;
  uint32_t steps = 0;
  int st = 0;
  tc_bwc_config_default(&cfg);
  c = bwc_new(&cfg);
  if (c == NULL || s == NULL || s2 == NULL) {
    CHECK(0, "upload errors setup");
    goto out;
  }
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_E_INVALID, "not begun");
  /* 4.13 with Size1: the server's limit */
  tc_bwc_put_begin(c, 5000, NULL, 0, &res);
  while (steps < 10u) {
    steps++;
    server_answer(s, KEY, sizeof KEY, &res, g_src, &r, NULL, NULL);
    st = tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res);
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_FAILED, "4.13");
  CHECK_EQ(res.code, TC_CODE_TOO_LARGE, "4.13 code");
  CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "too large");
  CHECK(res.flags & TC_BWCF_SIZE, "Size1");
  CHECK_EQ(res.size, 3000, "the server's limit");
  CHECK_EQ(steps, 3, "on the block passing it");
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_FAILED, "stays failed");
  /* 4.13 whose Block1 asks smaller blocks: restart at that size */
  tc_bwc_put_begin(c, 5000, NULL, 0, &res);
  tmsg_init(&r, TC_CODE_TOO_LARGE);
  tmsg_uint(&r, TC_OPT_BLOCK1, tc_block_value(0, 0, 2));
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_RESTART, "4.13 smaller");
  CHECK(res.offset == 0 && res.length == 64 && res.block == tc_block_value(0, 1, 2), "at 64");
  /* 4.08: the server lost the upload (block 1 goes to a store that never saw block 0) */
  tc_bwc_put_begin(c, 5000, NULL, 0, &res);
  server_answer(s2, KEY, sizeof KEY, &res, g_src, &r, NULL, NULL);
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_NEXT, "block 0 taken");
  first = res;
  {
    tc_bw1 *s3 = bw1_new(6, MIB);
    if (s3) {
      server_answer(s3, KEY, sizeof KEY, &res, g_src, &r, NULL, NULL);
      free(s3);
    }
  }
  CHECK_EQ(r.msg.code, TC_CODE_INCOMPLETE, "server says 4.08");
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_FAILED, "4.08");
  CHECK_EQ(res.error, TC_E_STALE, "stale");
  (void)first;
  /* a duplicate 2.31 (for block 0 again) is ignored; 2.31 to the last block is an error */
  tc_bwc_put_begin(c, 2048, NULL, 0, &res);
  tmsg_init(&r, TC_CODE_CONTINUE);
  tmsg_uint(&r, TC_OPT_BLOCK1, tc_block_value(0, 1, 6));
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_NEXT, "2.31");
  CHECK(res.flags & TC_BWCF_LAST, "last block next");
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_IGNORED, "dup 2.31");
  CHECK(res.flags & TC_BWCF_DUPLICATE, "dup flag");
  CHECK(res.offset == 1024 && res.length == 1024 && res.block == tc_block_value(1, 0, 6),
        "still block 1");
  tmsg_init(&r, TC_CODE_CONTINUE);
  tmsg_uint(&r, TC_OPT_BLOCK1, tc_block_value(1, 1, 6));
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_FAILED, "2.31 to last");
  CHECK_EQ(res.error, TC_E_BAD_OPTION, "bad");
  /* 2.31 without Block1 */
  tc_bwc_put_begin(c, 2048, NULL, 0, &res);
  tmsg_init(&r, TC_CODE_CONTINUE);
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_FAILED, "2.31 no Block1");
  /* a final response before the last block */
  tc_bwc_put_begin(c, 2048, NULL, 0, &res);
  tmsg_init(&r, 0x44);
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_DONE, "early final");
  CHECK(res.flags & TC_BWCF_EARLY, "early flag");
  /* 5.00: final, code says */
  tc_bwc_put_begin(c, 10, NULL, 0, &res);
  CHECK(res.flags & TC_BWCF_LAST, "one block");
  CHECK(res.block == tc_block_value(0, 0, 6) && res.length == 10, "single");
  tmsg_init(&r, 0xA0);
  CHECK_EQ(tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res), TC_BWC_DONE, "5.00");
  CHECK_EQ(res.code, 0xA0, "code");
  /* empty body, bad arguments */
  CHECK_EQ(tc_bwc_put_begin(c, 0, NULL, 0, &res), TC_BWC_NEXT, "empty body");
  CHECK(res.length == 0 && (res.flags & TC_BWCF_LAST), "empty block");
  CHECK_EQ(tc_bwc_put_begin(c, (1u << 30) + 1u, NULL, 0, &res), TC_E_INVALID, "too long");
  CHECK_EQ(tc_bwc_put_begin(c, 10, (const uint8_t *)"123456789", 9, &res), TC_E_INVALID, "tag 9");
  CHECK_EQ(tc_bwc_put_begin(c, 10, NULL, 1, &res), TC_E_INVALID, "tag NULL");
  {
    tc_bwc_config b;
    tc_bwc *cb;
    tc_bwc_config_default(&b);
    b.preferred_szx = 0;
    cb = bwc_new(&b);
    if (cb) {
      CHECK_EQ(tc_bwc_put_begin(cb, 1u << 30, NULL, 0, &res), TC_BWC_FAILED, "2^26 blocks");
      CHECK_EQ(res.error, TC_E_MESSAGE_TOO_LARGE, "NUM bound at begin");
      CHECK_EQ(tc_bwc_put_begin(cb, 16u << 20, NULL, 0, &res), TC_BWC_NEXT, "2^20 blocks ok");
      CHECK_EQ(tc_bwc_put_begin(cb, (16u << 20) + 1u, NULL, 0, &res), TC_BWC_FAILED,
               "2^20 + 1 blocks");
      free(cb);
    }
  }
out:
  free(c);
  free(s);
  free(s2);
}

/* Two uploads of the same resource at once, told apart by Request-Tag (in the request key). */
static void t_upload_request_tag(void) {
  tc_bwc_config cfg;
  tc_bwc *a, *b;
  tc_bw1 *s = bw1_new(4, MIB);
  tc_bwc_result ra, rb;
  tc_tmsg r;
  uint8_t ka[64], kb[64], tag[8];
  uint8_t *outa = malloc(70000), *outb = malloc(70000);
  uint32_t la = 0, lb = 0, steps = 0;
  int ka_len, kb_len, sa = TC_BWC_NEXT, sb = TC_BWC_NEXT;
  tc_bwc_config_default(&cfg);
  a = bwc_new(&cfg);
  b = bwc_new(&cfg);
  if (a == NULL || b == NULL || s == NULL || outa == NULL || outb == NULL) {
    CHECK(0, "tag setup");
    goto out;
  }
  CHECK_EQ(tc_bwc_put_begin(a, 65536, (const uint8_t *)"\x11\x22\x33\x44", 4, &ra), TC_BWC_NEXT,
           "a");
  CHECK_EQ(tc_bwc_put_begin(b, 60000, (const uint8_t *)"\x55\x66\x77\x88", 4, &rb), TC_BWC_NEXT,
           "b");
  CHECK_EQ(tc_bwc_request_tag(a, tag), 4, "tag a");
  CHECK(memcmp(tag, "\x11\x22\x33\x44", 4) == 0, "tag a bytes");
  /* request keys: POST /up with the Request-Tag */
  {
    tc_tmsg q;
    uint8_t t[8];
    int n = tc_bwc_request_tag(a, t);
    tmsg_init(&q, 0x02);
    tmsg_opt(&q, 11, "up", 2);
    tmsg_opt(&q, TC_OPT_REQUEST_TAG, t, (uint32_t)n);
    ka_len = tc_bw_key(&q.msg, q.opts, q.src, 0, ka, sizeof ka);
    n = tc_bwc_request_tag(b, t);
    tmsg_init(&q, 0x02);
    tmsg_opt(&q, 11, "up", 2);
    tmsg_opt(&q, TC_OPT_REQUEST_TAG, t, (uint32_t)n);
    kb_len = tc_bw_key(&q.msg, q.opts, q.src, 0, kb, sizeof kb);
  }
  CHECK(ka_len > 0 && kb_len > 0 && (ka_len != kb_len || memcmp(ka, kb, (size_t)ka_len) != 0),
        "keys differ");
  while ((sa == TC_BWC_NEXT || sb == TC_BWC_NEXT) && steps < 10000u) {
    steps++;
    if (sa == TC_BWC_NEXT) {
      server_answer(s, ka, (uint32_t)ka_len, &ra, g_src, &r, outa, &la);
      sa = tc_bwc_put_response(a, &r.msg, r.opts, r.src, &ra);
    }
    if (sb == TC_BWC_NEXT) {
      server_answer(s, kb, (uint32_t)kb_len, &rb, g_src2, &r, outb, &lb);
      sb = tc_bwc_put_response(b, &r.msg, r.opts, r.src, &rb);
    }
  }
  CHECK(sa == TC_BWC_DONE && sb == TC_BWC_DONE, "both done");
  CHECK(la == 65536 && memcmp(outa, g_src, 65536) == 0, "body a");
  CHECK(lb == 60000 && memcmp(outb, g_src2, 60000) == 0, "body b");
out:
  free(a);
  free(b);
  free(s);
  free(outa);
  free(outb);
}

/* Upload, then the response body comes block-wise (RFC 7959 §2.7 hand-over). */
static void t_upload_then_download(void) {
  tc_bwc_config cfg;
  tc_bwc *c;
  tc_bw1 *s1 = bw1_new(6, MIB);
  tc_bw2 *s2 = bw2_new(5);
  tc_bwc_result res;
  served sv;
  tc_tmsg r;
  uint32_t steps = 0, rid, tl;
  uint8_t tag[8];
  int st = 0;
  tc_bwc_config_default(&cfg);
  c = bwc_new(&cfg);
  if (c == NULL || s1 == NULL || s2 == NULL) {
    CHECK(0, "hand-over setup");
    goto out;
  }
  rid = bw2_store(s2, g_src2, 10000); /* the handler's response body */
  tc_bwc_put_begin(c, 5000, (const uint8_t *)"\x01\x02", 2, &res);
  while (steps < 100u) {
    tc_bw1_result br;
    int bst;
    steps++;
    bst = t_bw1_feed(s1, 0, PEER, 4, KEY, sizeof KEY, res.block, 0, 0, g_src + res.offset,
                      res.length, &br);
    if (bst == TC_BW1_CONTINUE) {
      tmsg_init(&r, 0);
      tc_bw1_response(&br, &r.msg, r.opts, OPTN, r.src, sizeof r.src);
      st = tc_bwc_put_response(c, &r.msg, r.opts, r.src, &res);
      continue;
    }
    CHECK_EQ(bst, TC_BW1_COMPLETE, "complete");
    tc_bw1_release(s1, br.id);
    /* the first Block2 response echoes Block1 */
    t_bw2_serve(s2, 0, rid, 0, TC_BW_ECHO_BLOCK1, br.block1, 0, &sv.m, sv.o, OPTN, g_buf,
                 sizeof g_buf);
    st = tc_bwc_put_response(c, &sv.m, sv.o, g_buf, &res);
    break;
  }
  CHECK_EQ(st, TC_BWC_DONE, "upload done");
  CHECK(res.flags & TC_BWCF_BLOCK2, "hand-over flagged");
  CHECK_EQ(tc_bwc_get_begin(c, &res), TC_BWC_NEXT, "download begins");
  CHECK_EQ(tc_bwc_request_tag(c, tag), 2, "Request-Tag kept");
  st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
  steps = 1;
  while (st == TC_BWC_NEXT && steps < 1000u) {
    serve(s2, rid, res.block, TC_BW_HAS_BLOCK2, 0, &sv);
    steps++;
    st = tc_bwc_get_response(c, &sv.m, sv.o, g_buf, g_body, MIB, &res);
  }
  CHECK_EQ(st, TC_BWC_DONE, "download done");
  tl = res.length;
  CHECK(tl == 10000 && memcmp(g_body, g_src2, 10000) == 0, "response body");
  CHECK_EQ(steps, (10000 + 511) / 512, "blocks of the server's 512");
out:
  free(c);
  free(s1);
  free(s2);
}

/* -------------------------------------------------------------- Observe freshness */

static void t_freshness(void) {
  const uint32_t H = 1u << 23;
  CHECK_EQ(tc_obs_fresh(0, 0, 1, 0), 1, "newer");
  CHECK_EQ(tc_obs_fresh(1, 0, 0, 0), 0, "older");
  CHECK_EQ(tc_obs_fresh(5, 0, 5, 0), 0, "same");
  CHECK_EQ(tc_obs_fresh(0, 0, H - 1, 0), 1, "V2-V1 = 2^23-1");
  CHECK_EQ(tc_obs_fresh(0, 0, H, 0), 0, "V2-V1 = 2^23");
  CHECK_EQ(tc_obs_fresh(0, 0, H + 1, 0), 0, "V2-V1 = 2^23+1");
  CHECK_EQ(tc_obs_fresh(H, 0, 0, 0), 0, "V1-V2 = 2^23");
  CHECK_EQ(tc_obs_fresh(H + 1, 0, 0, 0), 1, "V1-V2 = 2^23+1: wrapped");
  CHECK_EQ(tc_obs_fresh(0xFFFFFF, 0, 0, 0), 1, "wrap to 0");
  CHECK_EQ(tc_obs_fresh(0xFFFFFF, 0, 5, 0), 1, "wrap past 0");
  CHECK_EQ(tc_obs_fresh(0, 0, 0xFFFFFF, 0), 0, "0 then max: older");
  CHECK_EQ(tc_obs_fresh(0x800000, 0, 0xFFFFFF, 0), 1, "2^23 -> max");
  CHECK_EQ(tc_obs_fresh(0x1000005, 0, 6, 0), 1, "24 bits used");
  CHECK_EQ(tc_obs_fresh(6, 0, 0x1000005, 0), 0, "24 bits used (older)");
  CHECK_EQ(tc_obs_fresh(10, 1000, 3, 1000 + 128000), 0, "128 s exactly: not yet");
  CHECK_EQ(tc_obs_fresh(10, 1000, 3, 1000 + 128001), 1, "after 128 s anything is fresh");
  CHECK_EQ(tc_obs_fresh(10, 1000, 10, 1000 + 128001), 1, "even the same value");
  CHECK_EQ(tc_obs_fresh(10, UINT64_MAX - 5, 3, UINT64_MAX), 0, "no overflow");
  CHECK_EQ(tc_obs_fresh(10, 5000, 3, 1000), 0, "earlier arrival");
  CHECK_EQ(tc_obs_reregister_at(1000, 30, 0), 31000, "Max-Age 30");
  CHECK_EQ(tc_obs_reregister_at(1000, TC_OBS_NO_MAX_AGE, 5000), 56000, "default 60 s");
  CHECK_EQ(tc_obs_reregister_at(1000, 2, 5000), 1000, "lead capped");
  CHECK_EQ(tc_obs_reregister_at(1000, 0, 0), 1000, "Max-Age 0");
  CHECK(tc_obs_reregister_at(UINT64_MAX - 10, 1, 0) == UINT64_MAX, "saturates");
  CHECK_EQ(tc_obs_reregister_at(0, 0xFFFFFFFEu, 0), 0xFFFFFFFEull * 1000u, "largest Max-Age");
}

void test_blockwise_client(void);
void test_blockwise_client(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  uint32_t i;
  g_src = malloc(MIB);
  g_src2 = malloc(MIB);
  g_body = malloc(MIB);
  if (g_src == NULL || g_src2 == NULL || g_body == NULL) {
    CHECK(0, "malloc");
  } else {
    for (i = 0; i < MIB; i++) {
      g_src[i] = (uint8_t)(i % 251u);
      g_src2[i] = (uint8_t)((i * 7u + 3u) % 253u);
    }
    t_downloads();
    t_download_bert();
    t_download_etag_change();
    t_download_bound();
    t_download_reorder();
    t_download_edges();
    t_download_num_bound();
    t_uploads();
    t_upload_errors();
    t_upload_request_tag();
    t_upload_then_download();
    t_freshness();
  }
  free(g_src);
  free(g_src2);
  free(g_body);
  printf("blockwise-client-tests: %lu passed, %lu failed\n", tc_test_passed - p0,
         tc_test_failed - f0);
}

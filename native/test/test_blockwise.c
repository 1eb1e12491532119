/* test_blockwise.c — block option helpers, request keys, the Block1 reassembly store and the
 * Block2 serving store (blockwise.c). Prints "blockwise-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"
#include "calls.h"

#define KEYCAP 512
#define OPTCAP 32

static const uint8_t SEED[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ------------------------------------------------------------ message building */

/* Find option number in a decoded message; returns its index or -1. */
static int find_opt(const tc_msg *m, const tc_opt *o, uint32_t number) {
  uint32_t i;
  for (i = 0; i < m->option_count; i++)
    if (o[i].number == number) return (int)i;
  return -1;
}

static uint32_t opt_uint(const tc_msg *m, const tc_opt *o, const uint8_t *src, uint32_t number) {
  int i = find_opt(m, o, number);
  uint32_t v = 0xDEADBEEFu;
  if (i < 0) return v;
  if (tc_uint_decode(src + o[i].offset, o[i].length, &v) < 0) return 0xBADu;
  return v;
}

/* ------------------------------------------------------------ option helpers */

static void t_block_values(void) {
  static const uint32_t nums[] = {0, 1, 15, 16, 4095, 4096, 0xFFFFF};
  uint32_t i, m, szx;
  uint8_t b3[3];
  tc_block b, d;
  for (i = 0; i < sizeof nums / sizeof nums[0]; i++)
    for (m = 0; m < 2; m++)
      for (szx = 0; szx < 8; szx++) {
        int n;
        uint32_t v = tc_block_value(nums[i], m, szx);
        b.num = nums[i];
        b.more = m;
        b.szx = szx;
        n = tc_block_encode(&b, b3);
        CHECK(n >= 0 && n <= 3, "encode %u/%u/%u -> %d", nums[i], m, szx, n);
        CHECK_EQ(n, v == 0 ? 0 : v < 0x100 ? 1 : v < 0x10000 ? 2 : 3, "minimal length");
        memset(&d, 0xFF, sizeof d);
        CHECK_EQ(tc_block_decode(b3, (uint32_t)n, &d), 0, "decode");
        CHECK(d.num == nums[i] && d.more == m && d.szx == szx, "round trip %u/%u/%u", nums[i], m,
              szx);
        CHECK_EQ(tc_block_from_value(v, &d), 0, "from value");
        CHECK(d.num == nums[i] && d.more == m && d.szx == szx, "from value fields");
      }
  b.num = 0x100000;
  b.more = 0;
  b.szx = 0;
  CHECK_EQ(tc_block_encode(&b, b3), TC_E_INVALID, "NUM 2^20");
  b.num = 0;
  b.szx = 8;
  CHECK_EQ(tc_block_encode(&b, b3), TC_E_INVALID, "SZX 8");
  b.szx = 0;
  b.more = 2;
  CHECK_EQ(tc_block_encode(&b, b3), TC_E_INVALID, "M 2");
  CHECK_EQ(tc_block_decode(b3, 4, &d), TC_E_INVALID, "4-byte Block value");
  CHECK_EQ(tc_block_from_value(0x1000000, &d), TC_E_INVALID, "value over 24 bits");
  /* an empty value is block 0, M 0, 16 bytes */
  CHECK(tc_block_decode(NULL, 0, &d) == 0 && d.num == 0 && d.more == 0 && d.szx == 0, "empty");
  for (szx = 0; szx < 7; szx++) CHECK_EQ(tc_szx_size(szx), 16u << szx, "szx size");
  CHECK_EQ(tc_szx_size(7), 1024, "BERT unit");
  CHECK_EQ(tc_szx_for_size(15), TC_E_INVALID, "size 15");
  CHECK_EQ(tc_szx_for_size(16), 0, "16");
  CHECK_EQ(tc_szx_for_size(31), 0, "31");
  CHECK_EQ(tc_szx_for_size(32), 1, "32");
  CHECK_EQ(tc_szx_for_size(1023), 5, "1023");
  CHECK_EQ(tc_szx_for_size(1024), 6, "1024");
  CHECK_EQ(tc_szx_for_size(70000), 6, "70000");
  {
    uint8_t u[4];
    uint32_t v;
    CHECK_EQ(tc_uint_encode(0, u), 0, "uint 0");
    CHECK_EQ(tc_uint_encode(255, u), 1, "uint 255");
    CHECK_EQ(tc_uint_encode(256, u), 2, "uint 256");
    CHECK_EQ(tc_uint_encode(0x1000000, u), 4, "uint 2^24");
    CHECK(tc_uint_decode(u, 4, &v) == 0 && v == 0x1000000, "uint decode");
    CHECK_EQ(tc_uint_decode(u, 5, &v), TC_E_INVALID, "uint 5 bytes");
  }
}

static void t_parse_and_key(void) {
  tc_tmsg a, b;
  tc_bw_info info;
  uint8_t ka[KEYCAP], kb[KEYCAP];
  int la, lb;
  static const uint8_t tag1[] = {1, 2}, tag2[] = {1, 3};

  tmsg_init(&a, 0x02); /* POST */
  tmsg_opt(&a, 3, "example", 7);
  tmsg_opt(&a, 11, "up", 2);
  tmsg_opt(&a, 11, "load", 4);
  tmsg_uint(&a, 12, 42);
  tmsg_uint(&a, 27, tc_block_value(3, 1, 4));
  tmsg_uint(&a, 60, 5000);
  tmsg_uint(&a, 6, 0);
  tmsg_opt(&a, 292, tag1, 2);
  tmsg_payload(&a, "xyz", 3);
  CHECK_EQ(tc_bw_parse(&a.msg, a.opts, a.src, &info), 0, "parse");
  CHECK_EQ(info.flags, TC_BWI_BLOCK1 | TC_BWI_SIZE1 | TC_BWI_OBSERVE | TC_BWI_REQUEST_TAG,
           "parse flags");
  CHECK_EQ(info.block1, tc_block_value(3, 1, 4), "parse block1");
  CHECK_EQ(info.size1, 5000, "parse size1");
  CHECK_EQ(info.observe, 0, "parse observe");
  {
    tc_tmsg c;
    tmsg_init(&c, 1);
    tmsg_opt(&c, 23, "\x01\x02\x03\x04", 4);
    CHECK_EQ(tc_bw_parse(&c.msg, c.opts, c.src, &info), TC_E_INVALID, "4-byte Block2");
    tmsg_init(&c, 1);
    tmsg_opt(&c, 28, "\x01\x02\x03\x04\x05", 5); /* elective of bad length: ignored */
    tmsg_uint(&c, 23, tc_block_value(7, 0, 2));
    tmsg_uint(&c, 23, tc_block_value(9, 0, 2)); /* a repetition: the first counts */
    CHECK_EQ(tc_bw_parse(&c.msg, c.opts, c.src, &info), 0, "parse c");
    CHECK_EQ(info.flags, TC_BWI_BLOCK2, "bad Size2 ignored");
    CHECK_EQ(info.block2, tc_block_value(7, 0, 2), "first Block2");
  }

  la = tc_bw_key(&a.msg, a.opts, a.src, 0, ka, sizeof ka);
  CHECK(la > 0, "key a");
  CHECK_EQ(tc_bw_key(&a.msg, a.opts, a.src, 0, NULL, 0), la, "key size query");
  CHECK_EQ(tc_bw_key(&a.msg, a.opts, a.src, 0, ka, (uint32_t)la - 1), TC_E_BUFFER_TOO_SMALL,
           "key small buffer");
  /* same operation, another block: Block1, Size1, Observe, payload differ -> same key */
  tmsg_init(&b, 0x02);
  tmsg_opt(&b, 3, "example", 7);
  tmsg_opt(&b, 11, "up", 2);
  tmsg_opt(&b, 11, "load", 4);
  tmsg_uint(&b, 12, 42);
  tmsg_uint(&b, 27, tc_block_value(4, 0, 4));
  tmsg_opt(&b, 4, "\x09", 1); /* ETag: not in the key */
  tmsg_opt(&b, 292, tag1, 2);
  tmsg_payload(&b, "other", 5);
  lb = tc_bw_key(&b.msg, b.opts, b.src, 0, kb, sizeof kb);
  CHECK(la == lb && memcmp(ka, kb, (size_t)la) == 0, "same operation, same key");
  /* different Request-Tag -> different key */
  b.src[b.opts[6].offset + 1] = tag2[1];
  lb = tc_bw_key(&b.msg, b.opts, b.src, 0, kb, sizeof kb);
  CHECK(la == lb && memcmp(ka, kb, (size_t)la) != 0, "Request-Tag separates");
  /* absent vs empty Request-Tag */
  {
    tc_tmsg c, d;
    uint8_t kc[KEYCAP], kd[KEYCAP];
    int lc, ld;
    tmsg_init(&c, 0x03);
    tmsg_opt(&c, 11, "x", 1);
    tmsg_init(&d, 0x03);
    tmsg_opt(&d, 11, "x", 1);
    tmsg_opt(&d, 292, NULL, 0);
    lc = tc_bw_key(&c.msg, c.opts, c.src, 0, kc, sizeof kc);
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc > 0 && ld > 0 && (lc != ld || memcmp(kc, kd, (size_t)lc) != 0),
          "absent and empty Request-Tag differ");
    d.msg.code = 0x02; /* method matters */
    d.msg.option_count = 1;
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) != 0, "method in the key");
    /* Uri-Path order matters */
    tmsg_init(&c, 1);
    tmsg_opt(&c, 11, "a", 1);
    tmsg_opt(&c, 11, "b", 1);
    tmsg_init(&d, 1);
    tmsg_opt(&d, 11, "b", 1);
    tmsg_opt(&d, 11, "a", 1);
    lc = tc_bw_key(&c.msg, c.opts, c.src, 0, kc, sizeof kc);
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) != 0, "path order");
    /* Accept is in the key; Block2 and Size2 are not */
    tmsg_init(&c, 1);
    tmsg_opt(&c, 11, "a", 1);
    tmsg_uint(&c, 17, 50);
    tmsg_init(&d, 1);
    tmsg_opt(&d, 11, "a", 1);
    tmsg_uint(&d, 17, 60);
    tmsg_uint(&d, 23, tc_block_value(5, 0, 6));
    tmsg_uint(&d, 28, 0);
    lc = tc_bw_key(&c.msg, c.opts, c.src, 0, kc, sizeof kc);
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) != 0, "Accept in the key");
    d.src[d.opts[1].offset] = 50;
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) == 0, "Block2/Size2 not in the key");
    /* FETCH: payload in the key on request */
    tmsg_init(&c, 5);
    tmsg_opt(&c, 11, "q", 1);
    tmsg_payload(&c, "sel1", 4);
    tmsg_init(&d, 5);
    tmsg_opt(&d, 11, "q", 1);
    tmsg_payload(&d, "sel2", 4);
    lc = tc_bw_key(&c.msg, c.opts, c.src, TC_BW_KEY_PAYLOAD, kc, sizeof kc);
    ld = tc_bw_key(&d.msg, d.opts, d.src, TC_BW_KEY_PAYLOAD, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) != 0, "FETCH payload in the key");
    lc = tc_bw_key(&c.msg, c.opts, c.src, 0, kc, sizeof kc);
    ld = tc_bw_key(&d.msg, d.opts, d.src, 0, kd, sizeof kd);
    CHECK(lc == ld && memcmp(kc, kd, (size_t)lc) == 0, "payload not in the key by default");
  }
}

/* ------------------------------------------------------------------ Block1 */

static tc_bw1 *bw1_new(const tc_bw1_config *cfg) {
  size_t sz = tc_bw1_size(cfg);
  tc_bw1 *s;
  if (sz == 0) return NULL;
  s = malloc(sz);
  if (s == NULL || tc_bw1_init(s, sz, cfg, SEED) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static uint8_t body_byte(uint32_t i) { return (uint8_t)(i % 251u); }

static const uint8_t PEER_A[4] = {10, 0, 0, 1}, PEER_B[4] = {10, 0, 0, 2};
static const uint8_t KEY1[] = "\x02\x00\x00\x0b\x00\x01u", KEY2[] = "\x02\x00\x00\x0b\x00\x01v";

/* feed block num of the body (szx), payload from the pattern at offset num*size */
static int feed(tc_bw1 *s, uint64_t now, const uint8_t *peer, const uint8_t *key, uint32_t klen,
                uint32_t num, uint32_t szx, uint32_t total, uint32_t flags, tc_bw1_result *r) {
  static uint8_t buf[8192];
  uint32_t size = tc_szx_size(szx), off = num * size, len, i, more;
  if (szx == 7 && (flags & 0x100u)) size = 3072; /* BERT: three units per message */
  len = off < total ? total - off : 0;
  if (len > size) len = size;
  more = off + len < total;
  for (i = 0; i < len; i++) buf[i] = body_byte(off + i);
  return t_bw1_feed(s, now, peer, 4, key, klen, tc_block_value(num, more, szx),
                     flags & ~0x100u, 0, buf, len, r);
}

static int body_ok(const uint8_t *b, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; i++)
    if (b[i] != body_byte(i)) return 0;
  return 1;
}

static void t_bw1_basic(void) {
  tc_bw1_config cfg;
  tc_bw1 *s;
  tc_bw1_result r;
  uint32_t num, total = 64 * 10 + 17;
  static uint8_t out[1 << 20];
  int rc;
  tc_bw1_stats st;
  tc_bw1_config_default(&cfg);
  s = bw1_new(&cfg);
  CHECK(s != NULL, "bw1 new");
  if (s == NULL) return;
  CHECK_EQ(tc_bw1_next_deadline(s), UINT64_MAX, "no deadline when empty");
  for (num = 0; num <= 10; num++) {
    rc = feed(s, 1000 + num, PEER_A, KEY1, 7, num, 2, total, 0, &r);
    if (num < 10) {
      CHECK_EQ(rc, TC_BW1_CONTINUE, "continue");
      CHECK_EQ(r.code, TC_CODE_CONTINUE, "2.31");
      CHECK_EQ(r.block1, tc_block_value(num, 1, 2), "Block1 echo NUM, M=1, SZX");
      CHECK_EQ(r.flags, TC_BW1F_BLOCK1, "flags");
    } else {
      CHECK_EQ(rc, TC_BW1_COMPLETE, "complete");
      CHECK_EQ(r.body_length, total, "body length");
      CHECK_EQ(r.block1, tc_block_value(10, 0, 2), "final Block1 M=0");
      CHECK(r.id != 0, "id");
    }
  }
  CHECK_EQ(tc_bw1_next_deadline(s), 1010 + 120000, "deadline = last activity + idle");
  CHECK_EQ(tc_bw1_read(s, r.id, out, total - 1), TC_E_BUFFER_TOO_SMALL, "small read buffer");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), (int)total, "read");
  CHECK(body_ok(out, total), "body content");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), TC_E_STALE, "read twice");
  CHECK_EQ(tc_bw1_release(s, r.id), TC_E_STALE, "release after read");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.transfers, 0, "released");
  CHECK_EQ(st.chunks_used, 0, "chunks returned");
  CHECK_EQ(st.completed, 1, "completed count");

  /* NUM 0 without M: the whole body in one request */
  rc = t_bw1_feed(s, 5000, PEER_A, 4, KEY1, 7, tc_block_value(0, 0, 6), 0, 0,
                   (const uint8_t *)"hello", 5, &r);
  CHECK_EQ(rc, TC_BW1_WHOLE, "whole");
  CHECK_EQ(r.body_length, 5, "whole length");
  CHECK_EQ(r.block1, tc_block_value(0, 0, 6), "whole Block1");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.transfers, 0, "whole stores nothing");

  /* bad arguments */
  CHECK_EQ(t_bw1_feed(s, 0, PEER_A, 0, KEY1, 7, 0, 0, 0, NULL, 0, &r), TC_E_INVALID, "alen 0");
  CHECK_EQ(t_bw1_feed(s, 0, PEER_A, 29, KEY1, 7, 0, 0, 0, NULL, 0, &r), TC_E_INVALID, "alen 29");
  CHECK_EQ(t_bw1_feed(s, 0, PEER_A, 4, KEY1, 7, 0x1000000, 0, 0, NULL, 0, &r), TC_E_INVALID,
           "block over 24 bits");
  {
    static uint8_t bigkey[300];
    CHECK_EQ(t_bw1_feed(s, 0, PEER_A, 4, bigkey, 257, 0, 0, 0, NULL, 0, &r), TC_BW1_REJECT,
             "key over max_key");
    CHECK(r.code == TC_CODE_TOO_LARGE && r.flags == 0, "4.13 without Size1");
  }
  free(s);
}

static void t_bw1_sizes_and_order(void) {
  tc_bw1_config cfg;
  tc_bw1 *s;
  tc_bw1_result r;
  static uint8_t out[1 << 16];
  uint32_t total = 5000, num;
  int rc;
  tc_bw1_stats st;
  tc_bw1_config_default(&cfg);
  cfg.preferred_szx = 4; /* the server prefers 256-byte blocks */
  s = bw1_new(&cfg);
  if (s == NULL) {
    CHECK(0, "bw1 new");
    return;
  }
  /* block 0 at 1024: the server asks for 256 (RFC 7959 §2.3 / figure 8) */
  rc = feed(s, 0, PEER_A, KEY1, 7, 0, 6, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "first block");
  CHECK_EQ(r.block1, tc_block_value(0, 1, 4), "server asks SZX 4, echoes NUM 0");
  /* the client continues at NUM 4 with 256-byte blocks */
  for (num = 4; num * 256 < total; num++) {
    rc = feed(s, 1, PEER_A, KEY1, 7, num, 4, total, 0, &r);
    if ((num + 1) * 256 < total) {
      CHECK_EQ(rc, TC_BW1_CONTINUE, "256-byte block");
      CHECK_EQ(r.block1, tc_block_value(num, 1, 4), "echo");
    }
  }
  CHECK_EQ(rc, TC_BW1_COMPLETE, "complete after size change");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), (int)total, "read");
  CHECK(body_ok(out, total), "content after size change");

  /* a smaller client SZX than preferred is kept */
  rc = feed(s, 2, PEER_A, KEY1, 7, 0, 1, total, 0, &r);
  CHECK_EQ(r.block1, tc_block_value(0, 1, 1), "client's smaller SZX kept");
  /* loss: block 2 missing -> 4.08, upload kept */
  rc = feed(s, 3, PEER_A, KEY1, 7, 1, 1, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "block 1");
  rc = feed(s, 4, PEER_A, KEY1, 7, 3, 1, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_REJECT, "gap");
  CHECK_EQ(r.code, TC_CODE_INCOMPLETE, "gap -> 4.08");
  /* reordering: block 3 came before 2; now 2 then 3 */
  rc = feed(s, 5, PEER_A, KEY1, 7, 2, 1, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "block 2 after the gap");
  /* duplicate of the last block: idempotent */
  rc = feed(s, 6, PEER_A, KEY1, 7, 2, 1, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "duplicate continues");
  CHECK_EQ(r.flags, TC_BW1F_BLOCK1 | TC_BW1F_DUPLICATE, "duplicate flagged");
  CHECK_EQ(r.block1, tc_block_value(2, 1, 1), "duplicate echo");
  /* an older block again: 4.08 (but the upload is kept) */
  rc = feed(s, 7, PEER_A, KEY1, 7, 1, 1, total, 0, &r);
  CHECK_EQ(r.code, TC_CODE_INCOMPLETE, "old block -> 4.08");
  for (num = 3; num * 32 < total; num++) rc = feed(s, 8, PEER_A, KEY1, 7, num, 1, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_COMPLETE, "complete after loss, reorder, duplicates");
  /* duplicate of the final block before reading: COMPLETE again, same upload */
  {
    uint32_t id = r.id;
    rc = feed(s, 9, PEER_A, KEY1, 7, num - 1, 1, total, 0, &r);
    CHECK_EQ(rc, TC_BW1_COMPLETE, "final duplicate");
    CHECK_EQ(r.id, id, "same id");
    CHECK(r.flags & TC_BW1F_DUPLICATE, "final duplicate flagged");
  }
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), (int)total, "read");
  CHECK(body_ok(out, total), "content");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.duplicates, 2, "duplicates counted");
  CHECK_EQ(st.incomplete, 2, "4.08 counted");

  /* final block with blocks missing: 4.08 and the upload is dropped */
  rc = feed(s, 10, PEER_A, KEY1, 7, 0, 6, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "restart");
  rc = feed(s, 11, PEER_A, KEY1, 7, 4, 6, total, 0, &r); /* last block (4096..5000), 1..3 missing */
  CHECK_EQ(r.code, TC_CODE_INCOMPLETE, "final with missing blocks");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.transfers, 0, "failed upload dropped");
  rc = feed(s, 12, PEER_A, KEY1, 7, 1, 6, total, 0, &r);
  CHECK_EQ(r.code, TC_CODE_INCOMPLETE, "unknown upload -> 4.08");

  /* restart: NUM 0 again drops what was received */
  rc = feed(s, 13, PEER_A, KEY1, 7, 0, 4, total, 0, &r);
  rc = feed(s, 13, PEER_A, KEY1, 7, 1, 4, total, 0, &r);
  rc = feed(s, 14, PEER_A, KEY1, 7, 0, 4, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_CONTINUE, "restart accepted");
  CHECK(!(r.flags & TC_BW1F_DUPLICATE), "restart is not a duplicate");
  for (num = 1; num * 256 < total; num++) rc = feed(s, 15, PEER_A, KEY1, 7, num, 4, total, 0, &r);
  CHECK_EQ(rc, TC_BW1_COMPLETE, "complete after restart");
  CHECK_EQ(r.body_length, total, "restart length");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), (int)total, "read");
  CHECK(body_ok(out, total), "restart content");

  /* wrong payload sizes -> 4.00 */
  {
    uint8_t p[300];
    memset(p, 1, sizeof p);
    rc = t_bw1_feed(s, 16, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 4), 0, 0, p, 255, &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "short non-final block");
    rc = t_bw1_feed(s, 16, PEER_A, 4, KEY1, 7, tc_block_value(0, 0, 4), 0, 0, p, 257, &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "long final block");
    rc = t_bw1_feed(s, 16, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 7), 0, 0, p, 0, &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "SZX 7 without BERT");
  }
  free(s);
}

static void t_bw1_request_tag(void) {
  tc_bw1_config cfg;
  tc_bw1 *s;
  tc_bw1_result r1, r2, r3;
  static uint8_t out[1 << 16];
  uint32_t t1 = 3000, t2 = 2100, num;
  int a = 0, b = 0, c = 0;
  tc_bw1_config_default(&cfg);
  s = bw1_new(&cfg);
  if (s == NULL) {
    CHECK(0, "bw1 new");
    return;
  }
  /* two uploads from one peer to the same resource told apart by Request-Tag (different
   * keys), and the same key from another peer: interleaved block by block */
  for (num = 0; num < 12; num++) {
    if (num * 256 < t1) a = feed(s, num, PEER_A, KEY1, 7, num, 4, t1, 0, &r1);
    if (num * 256 < t2) b = feed(s, num, PEER_A, KEY2, 7, num, 4, t2, 0, &r2);
    if (num * 256 < t2) c = feed(s, num, PEER_B, KEY1, 7, num, 4, t2, 0, &r3);
  }
  CHECK(a == TC_BW1_COMPLETE && b == TC_BW1_COMPLETE && c == TC_BW1_COMPLETE, "three complete");
  CHECK(r1.id != r2.id && r1.id != r3.id && r2.id != r3.id, "three uploads");
  CHECK_EQ(tc_bw1_read(s, r1.id, out, sizeof out), (int)t1, "read 1");
  CHECK(body_ok(out, t1), "body 1");
  CHECK_EQ(tc_bw1_read(s, r2.id, out, sizeof out), (int)t2, "read 2");
  CHECK(body_ok(out, t2), "body 2");
  CHECK_EQ(tc_bw1_read(s, r3.id, out, sizeof out), (int)t2, "read 3");
  CHECK(body_ok(out, t2), "body 3");
  free(s);
}

static void t_bw1_bounds(void) {
  tc_bw1_config cfg;
  tc_bw1 *s;
  tc_bw1_result r;
  tc_bw1_stats st;
  int rc;
  uint32_t num, i;
  static uint8_t out[1 << 21];
  uint8_t key[8];
  tc_msg m;
  tc_opt o[4];
  uint8_t rb[64];

  /* per-transfer body limit, also announced by Size1 */
  tc_bw1_config_default(&cfg);
  cfg.max_body = 1000;
  s = bw1_new(&cfg);
  if (s == NULL) {
    CHECK(0, "bw1 new");
    return;
  }
  for (num = 0; num < 4; num++) rc = feed(s, 0, PEER_A, KEY1, 7, num, 4, 2000, 0, &r);
  CHECK_EQ(rc, TC_BW1_REJECT, "over max_body");
  CHECK_EQ(r.code, TC_CODE_TOO_LARGE, "4.13");
  CHECK_EQ(r.flags, TC_BW1F_SIZE1, "4.13 carries Size1");
  CHECK_EQ(r.size1, 1000, "Size1 = limit");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.transfers, 0, "upload dropped on 4.13");
  CHECK_EQ(tc_bw1_response(&r, &m, o, 4, rb, sizeof rb) > 0, 1, "4.13 response");
  CHECK(m.code == TC_CODE_TOO_LARGE && opt_uint(&m, o, rb, TC_OPT_SIZE1) == 1000,
        "response Size1");
  {
    uint8_t p[256];
    memset(p, 0, sizeof p);
    rc = t_bw1_feed(s, 1, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 4), TC_BW_HAS_SIZE1, 5000,
                     p, 256, &r);
    CHECK(rc == TC_BW1_REJECT && r.code == TC_CODE_TOO_LARGE && r.size1 == 1000,
          "Size1 up front -> 4.13");
    rc = t_bw1_feed(s, 1, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 4), TC_BW_HAS_SIZE1, 1000,
                     p, 256, &r);
    CHECK_EQ(rc, TC_BW1_CONTINUE, "Size1 at the limit accepted");
    rc = t_bw1_feed(s, 1, PEER_A, 4, KEY1, 7, tc_block_value(0, 0, 4), 0, 0, p, 0, &r);
    rc = t_bw1_feed(s, 1, PEER_A, 4, KEY2, 7, tc_block_value(0, 0, 6), 0, 0, out, 1025, &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "a final block over its size is malformed");
  }
  free(s);

  /* per-peer and total upload counts */
  tc_bw1_config_default(&cfg);
  cfg.max_transfers = 5;
  cfg.max_per_peer = 3;
  s = bw1_new(&cfg);
  if (s == NULL) return;
  for (i = 0; i < 4; i++) {
    key[0] = (uint8_t)i;
    rc = feed(s, 0, PEER_A, key, 1, 0, 4, 1000, 0, &r);
    if (i < 3) CHECK_EQ(rc, TC_BW1_CONTINUE, "within per-peer bound");
  }
  CHECK_EQ(rc, TC_BW1_REJECT, "per-peer bound");
  CHECK_EQ(r.code, TC_CODE_UNAVAILABLE, "5.03");
  CHECK_EQ(r.flags, TC_BW1F_MAX_AGE, "5.03 carries Max-Age");
  CHECK_EQ(r.max_age, 2, "Max-Age default");
  CHECK_EQ(tc_bw1_response(&r, &m, o, 4, rb, sizeof rb) > 0, 1, "5.03 response");
  CHECK(m.code == TC_CODE_UNAVAILABLE && opt_uint(&m, o, rb, TC_OPT_MAX_AGE) == 2, "Max-Age");
  /* an existing upload of that peer still progresses */
  key[0] = 0;
  CHECK_EQ(feed(s, 1, PEER_A, key, 1, 1, 4, 1000, 0, &r), TC_BW1_CONTINUE, "existing goes on");
  key[0] = 10;
  CHECK_EQ(feed(s, 1, PEER_B, key, 1, 0, 4, 1000, 0, &r), TC_BW1_CONTINUE, "other peer 1");
  key[0] = 11;
  CHECK_EQ(feed(s, 1, PEER_B, key, 1, 0, 4, 1000, 0, &r), TC_BW1_CONTINUE, "other peer 2");
  key[0] = 12;
  rc = feed(s, 1, PEER_B, key, 1, 0, 4, 1000, 0, &r);
  CHECK(rc == TC_BW1_REJECT && r.code == TC_CODE_UNAVAILABLE, "max_transfers bound");
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.transfers, 5, "five uploads");
  CHECK_EQ(st.busy, 2, "busy counted");
  /* expiry frees them; deadline exact */
  CHECK_EQ(tc_bw1_next_deadline(s), 120000, "oldest activity at 0");
  CHECK_EQ(tc_bw1_timer(s, 119999), 0, "not yet");
  CHECK_EQ(tc_bw1_timer(s, 120000), 2, "two idle since 0");
  CHECK_EQ(tc_bw1_next_deadline(s), 120001, "next");
  CHECK_EQ(tc_bw1_timer(s, 120001), 3, "rest");
  tc_bw1_get_stats(s, &st);
  CHECK(st.transfers == 0 && st.expired == 5 && st.chunks_used == 0, "all expired");
  key[0] = 0;
  CHECK_EQ(feed(s, 200000, PEER_A, key, 1, 2, 4, 1000, 0, &r), TC_BW1_REJECT, "expired upload");
  CHECK_EQ(r.code, TC_CODE_INCOMPLETE, "expired upload -> 4.08");
  free(s);

  /* total pool: chunks, not a contiguous region; exhaustion -> 5.03, nothing stored */
  tc_bw1_config_default(&cfg);
  cfg.pool_bytes = 4096;
  cfg.chunk_size = 256;
  cfg.max_body = 1 << 20;
  s = bw1_new(&cfg);
  if (s == NULL) return;
  for (num = 0; num < 8; num++) {
    CHECK_EQ(feed(s, 0, PEER_A, KEY1, 7, num, 4, 8192, 0, &r), TC_BW1_CONTINUE, "A fills");
    CHECK_EQ(feed(s, 0, PEER_B, KEY1, 7, num, 4, 8192, 0, &r), TC_BW1_CONTINUE, "B fills");
  }
  tc_bw1_get_stats(s, &st);
  CHECK_EQ(st.chunks_used, 16, "pool full");
  CHECK_EQ(st.chunks_total, 16, "pool size");
  rc = feed(s, 1, PEER_A, KEY1, 7, 8, 4, 8192, 0, &r);
  CHECK(rc == TC_BW1_REJECT && r.code == TC_CODE_UNAVAILABLE, "pool exhausted -> 5.03");
  /* a duplicate needs no room */
  CHECK_EQ(feed(s, 1, PEER_A, KEY1, 7, 7, 4, 8192, 0, &r), TC_BW1_CONTINUE, "dup when full");
  /* B gives up; A retries the same block and goes on */
  {
    uint32_t bid;
    rc = feed(s, 2, PEER_B, KEY2, 7, 0, 4, 512, 0, &r); /* (needs a chunk: busy) */
    CHECK_EQ(r.code, TC_CODE_UNAVAILABLE, "new upload without room");
    (void)bid;
  }
  CHECK_EQ(tc_bw1_timer(s, 120001), 2, "both expire");
  for (num = 0; num < 16; num++) rc = feed(s, 120001, PEER_A, KEY1, 7, num, 4, 4096, 0, &r);
  CHECK_EQ(rc, TC_BW1_COMPLETE, "whole pool used by one upload");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), 4096, "read pool-sized body");
  CHECK(body_ok(out, 4096), "pool-sized body");
  free(s);

  /* 1 MiB upload in 1 KiB chunks, interleaved with another so chunks are not contiguous */
  tc_bw1_config_default(&cfg);
  cfg.pool_bytes = (1 << 20) + 64 * 1024;
  s = bw1_new(&cfg);
  if (s == NULL) return;
  for (num = 0; num < 1024; num++) {
    rc = feed(s, num, PEER_A, KEY1, 7, num, 6, 1 << 20, 0, &r);
    if (num < 64) feed(s, num, PEER_B, KEY1, 7, num, 6, 64 * 1024 + 1, 0, &r);
  }
  CHECK_EQ(rc, TC_BW1_COMPLETE, "1 MiB complete");
  CHECK_EQ(r.body_length, 1u << 20, "1 MiB length");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), 1 << 20, "read 1 MiB");
  CHECK(body_ok(out, 1 << 20), "1 MiB content");
  free(s);

  /* config validation */
  tc_bw1_config_default(&cfg);
  cfg.chunk_size = 100;
  CHECK_EQ(tc_bw1_size(&cfg), 0, "chunk not a power of two");
  tc_bw1_config_default(&cfg);
  cfg.max_per_peer = 65;
  CHECK_EQ(tc_bw1_size(&cfg), 0, "per peer over total");
  tc_bw1_config_default(&cfg);
  cfg.preferred_szx = 7;
  CHECK_EQ(tc_bw1_size(&cfg), 0, "preferred SZX 7");
  tc_bw1_config_default(&cfg);
  cfg.pool_bytes = 512;
  CHECK_EQ(tc_bw1_size(&cfg), 0, "pool under one chunk");
}

static void t_bw1_bert(void) {
  tc_bw1_config cfg;
  tc_bw1 *s;
  tc_bw1_result r;
  static uint8_t out[1 << 16];
  uint32_t total = 10000, off = 0;
  int rc = 0;
  tc_bw1_config_default(&cfg);
  s = bw1_new(&cfg);
  if (s == NULL) {
    CHECK(0, "bw1 new");
    return;
  }
  /* BERT: NUM counts 1024-byte units; 3072 bytes per message */
  while (off < total) {
    rc = feed(s, 0, PEER_A, KEY1, 7, off / 1024, 7, total, TC_BW_BERT | 0x100u, &r);
    if (off + 3072 < total) {
      CHECK_EQ(rc, TC_BW1_CONTINUE, "BERT continue");
      CHECK_EQ(r.block1, tc_block_value(off / 1024, 1, 7), "BERT echo keeps SZX 7");
    }
    off += 3072;
  }
  CHECK_EQ(rc, TC_BW1_COMPLETE, "BERT complete");
  CHECK_EQ(tc_bw1_read(s, r.id, out, sizeof out), (int)total, "BERT read");
  CHECK(body_ok(out, total), "BERT body");
  {
    uint8_t p[2000];
    memset(p, 0, sizeof p);
    rc = t_bw1_feed(s, 0, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 7), TC_BW_BERT, 0, p, 1500,
                     &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "BERT non-final not a multiple of 1024");
    rc = t_bw1_feed(s, 0, PEER_A, 4, KEY1, 7, tc_block_value(0, 1, 7), 0, 0, p, 1024, &r);
    CHECK_EQ(r.code, TC_CODE_BAD_REQUEST, "SZX 7 on a transport without BERT");
  }
  free(s);
}

/* ------------------------------------------------------------------ Block2 */

static tc_bw2 *bw2_new(const tc_bw2_config *cfg) {
  size_t sz = tc_bw2_size(cfg);
  tc_bw2 *s;
  if (sz == 0) return NULL;
  s = malloc(sz);
  if (s == NULL || tc_bw2_init(s, sz, cfg, SEED) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static uint8_t *pattern(uint32_t n) {
  uint8_t *p = malloc(n ? n : 1);
  uint32_t i;
  if (p == NULL) return NULL;
  for (i = 0; i < n; i++) p[i] = body_byte(i);
  return p;
}

/* Put a 2.05 with Content-Format cf and body p[0..n) under key. */
static int put_body(tc_bw2 *s, uint64_t now, const uint8_t *peer, const uint8_t *key,
                    uint32_t klen, const uint8_t *p, uint32_t n, uint32_t cf, uint32_t life,
                    uint32_t *id) {
  static uint8_t src[(1 << 20) + 64];
  tc_msg m;
  tc_opt o[2];
  uint8_t v[4];
  int l = tc_uint_encode(cf, v);
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  memcpy(src, v, (size_t)l);
  o[0].number = TC_OPT_CONTENT_FORMAT;
  o[0].offset = 0;
  o[0].length = (uint32_t)l;
  memcpy(src + l, "\x3c", 1); /* Max-Age 60 */
  o[1].number = TC_OPT_MAX_AGE;
  o[1].offset = (uint32_t)l;
  o[1].length = 1;
  m.option_count = 2;
  m.payload_offset = (uint32_t)l + 1;
  m.payload_length = n;
  if (n) memcpy(src + l + 1, p, n);
  return t_bw2_put(s, now, peer, peer ? 4 : 0, key, klen, &m, o, src, life, id);
}

typedef struct got {
  uint32_t code, num, more, szx, has_size2, size2, cf;
  uint8_t etag[8];
  uint32_t etag_len;
  uint32_t plen;
  const uint8_t *payload;
  uint32_t wire; /* encoded UDP size (no token) */
} got;

static uint8_t g_buf[8192 + 512];
static uint8_t g_wire[8192 + 512];

/* Serve and check the message round-trips through the codec. Returns serve's result. */
static int serve(tc_bw2 *s, uint64_t now, uint32_t id, uint32_t block2, uint32_t flags,
                 uint32_t limit, got *g) {
  tc_msg m, d;
  tc_opt o[OPTCAP], dopts[OPTCAP];
  int n = t_bw2_serve(s, now, id, block2, flags, 0x55, limit, &m, o, OPTCAP, g_buf,
                       sizeof g_buf);
  int e, i;
  memset(g, 0, sizeof *g);
  if (n < 0) return n;
  m.type = TC_ACK;
  e = tc_encode(g_wire, sizeof g_wire, TC_UDP, &m, o, g_buf);
  if (e < 0 || tc_decode(g_wire, (size_t)e, TC_UDP, &d, dopts, OPTCAP) < 0) return -1000;
  g->wire = (uint32_t)e;
  g->code = d.code;
  i = find_opt(&d, dopts, TC_OPT_BLOCK2);
  if (i >= 0) {
    tc_block b;
    tc_block_decode(g_wire + dopts[i].offset, dopts[i].length, &b);
    g->num = b.num;
    g->more = b.more;
    g->szx = b.szx;
  } else {
    g->szx = 99;
  }
  i = find_opt(&d, dopts, TC_OPT_SIZE2);
  g->has_size2 = i >= 0;
  g->size2 = opt_uint(&d, dopts, g_wire, TC_OPT_SIZE2);
  g->cf = opt_uint(&d, dopts, g_wire, TC_OPT_CONTENT_FORMAT);
  i = find_opt(&d, dopts, TC_OPT_ETAG);
  if (i >= 0) {
    g->etag_len = dopts[i].length;
    memcpy(g->etag, g_wire + dopts[i].offset, dopts[i].length);
  }
  g->plen = d.payload_length;
  g->payload = g_wire + d.payload_offset;
  return n;
}

static void t_bw2_every_szx(void) {
  tc_bw2_config cfg;
  tc_bw2 *s;
  uint32_t total = 1u << 20, id, szx;
  uint8_t *body = pattern(total), *copy = malloc(total);
  got g;
  tc_bw2_stats st;
  tc_bw2_config_default(&cfg);
  cfg.pool_bytes = 2u << 20;
  s = bw2_new(&cfg);
  if (s == NULL || body == NULL || copy == NULL) {
    CHECK(0, "setup");
    free(s);
    free(body);
    free(copy);
    return;
  }
  CHECK_EQ(put_body(s, 0, NULL, KEY1, 7, body, total, 42, 0, &id), 0, "put 1 MiB");
  tc_bw2_get_stats(s, &st);
  CHECK_EQ(st.chunks_used, 1024 + 4, "1024 data + 4 index chunks");
  for (szx = 0; szx <= 6; szx++) {
    uint32_t num = 0, off = 0, ok = 1, blocks = 0;
    uint8_t etag0[8];
    uint32_t elen0 = 0;
    memset(copy, 0, total);
    for (;;) {
      int n = serve(s, 1, id, tc_block_value(num, 0, szx), TC_BW_HAS_BLOCK2, 0, &g);
      if (n < 0 || g.code != 0x45 || g.szx != szx || g.num != num ||
          g.plen != (off + (16u << szx) <= total ? 16u << szx : total - off) || g.cf != 42) {
        ok = 0;
        break;
      }
      if (num == 0) {
        memcpy(etag0, g.etag, g.etag_len);
        elen0 = g.etag_len;
        if (!g.has_size2 || g.size2 != total) ok = 0;
      } else if (g.has_size2 || g.etag_len != elen0 || memcmp(etag0, g.etag, elen0) != 0) {
        ok = 0;
      }
      memcpy(copy + off, g.payload, g.plen);
      off += g.plen;
      blocks++;
      if (!g.more) break;
      num++;
    }
    CHECK(ok, "SZX %u: every block well formed", szx);
    CHECK_EQ(off, total, "SZX reassembled length");
    CHECK_EQ(blocks, total >> (4 + szx), "block count");
    CHECK(memcmp(copy, body, total) == 0, "SZX %u: body reassembled", szx);
    CHECK_EQ(elen0, 8, "generated 8-byte ETag");
  }
  /* BERT: 4 units per message within a 5000-byte limit */
  {
    uint32_t num = 0, off = 0, ok = 1;
    memset(copy, 0, total);
    for (;;) {
      int n = serve(s, 2, id, tc_block_value(num, 0, 7), TC_BW_HAS_BLOCK2 | TC_BW_BERT, 5000,
                    &g);
      if (n < 0 || g.szx != 7 || g.num != num || g.wire > 5000 ||
          (g.more && g.plen != 4096)) {
        ok = 0;
        break;
      }
      memcpy(copy + off, g.payload, g.plen);
      off += g.plen;
      if (!g.more) break;
      num += g.plen / 1024;
    }
    CHECK(ok, "BERT blocks");
    CHECK(off == total && memcmp(copy, body, total) == 0, "BERT reassembled");
  }
  /* SZX 7 without BERT -> 4.00; past the end -> 4.02 */
  serve(s, 3, id, tc_block_value(0, 0, 7), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK_EQ(g.code, TC_CODE_BAD_REQUEST, "SZX 7 without BERT");
  serve(s, 3, id, tc_block_value(1024, 0, 6), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK_EQ(g.code, TC_CODE_BAD_OPTION, "NUM past the end -> 4.02");
  serve(s, 3, id, tc_block_value(1023, 0, 6), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK(g.code == 0x45 && !g.more && g.plen == 1024, "last block");
  /* no Block2 in the request: block 0 at the preferred size, with Size2 */
  serve(s, 3, id, 0, 0, 0, &g);
  CHECK(g.code == 0x45 && g.num == 0 && g.more && g.szx == 6 && g.has_size2 &&
            g.size2 == total,
        "first block without Block2");
  /* Size2 requested on a later block */
  serve(s, 3, id, tc_block_value(5, 0, 6), TC_BW_HAS_BLOCK2 | TC_BW_SIZE2, 0, &g);
  CHECK(g.has_size2 && g.size2 == total, "Size2 on request");
  /* a message limit smaller than the block: the size shrinks, NUM rescaled */
  serve(s, 3, id, tc_block_value(2, 0, 6), TC_BW_HAS_BLOCK2, 200, &g);
  CHECK(g.szx == 3 && g.num == 16 && g.plen == 128 && g.wire <= 200, "limit -> SZX 3");
  CHECK(memcmp(g.payload, body + 2048, 128) == 0, "rescaled block content");
  CHECK_EQ(serve(s, 3, id, 0, 0, 20, &g), TC_E_MESSAGE_TOO_LARGE, "limit too small");
  /* caller buffers */
  {
    tc_msg m;
    tc_opt o[8];
    CHECK_EQ(t_bw2_serve(s, 3, id, 0, 0, 0, 0, &m, o, 2, g_buf, sizeof g_buf),
             TC_E_BUFFER_TOO_SMALL, "opt table too small");
    CHECK_EQ(t_bw2_serve(s, 3, id, 0, 0, 0, 0, &m, o, 8, g_buf, 500), TC_E_BUFFER_TOO_SMALL,
             "buffer too small");
    CHECK_EQ(t_bw2_serve(s, 3, id ^ 0x10000, 0, 0, 0, 0, &m, o, 8, g_buf, sizeof g_buf),
             TC_E_STALE, "stale id");
  }
  tc_bw2_get_stats(s, &st);
  CHECK_EQ(st.reps, 1, "one representation");
  free(s);
  free(body);
  free(copy);
}

static void t_bw2_negotiation_etag(void) {
  tc_bw2_config cfg;
  tc_bw2 *s;
  uint32_t id, id2, id3;
  uint8_t *body = pattern(5000);
  uint8_t e1[8], e2[8];
  got g;
  tc_bw2_stats st;
  tc_bw2_config_default(&cfg);
  cfg.preferred_szx = 4;
  s = bw2_new(&cfg);
  if (s == NULL || body == NULL) {
    CHECK(0, "setup");
    free(s);
    free(body);
    return;
  }
  CHECK_EQ(put_body(s, 0, NULL, KEY1, 7, body, 5000, 0, 0, &id), 0, "put");
  /* the client asks 1024 at NUM 1: served at 256 (preferred), NUM 4 */
  serve(s, 1, id, tc_block_value(1, 0, 6), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK(g.szx == 4 && g.num == 4 && g.plen == 256 && g.more, "preferred smaller than asked");
  CHECK(memcmp(g.payload, body + 1024, 256) == 0, "content at 1024");
  /* early negotiation: the client asks 64 -> 64 */
  serve(s, 1, id, tc_block_value(0, 0, 2), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK(g.szx == 2 && g.num == 0 && g.plen == 64, "client's smaller SZX honoured");
  CHECK(g.cf == 0, "Content-Format 0 passed through");
  CHECK_EQ(tc_bw2_etag(s, id, e1), 8, "etag");
  /* an identical put keeps the representation (same id, same ETag) */
  CHECK_EQ(put_body(s, 10, NULL, KEY1, 7, body, 5000, 0, 0, &id2), 0, "put same");
  CHECK_EQ(id2, id, "same id");
  tc_bw2_get_stats(s, &st);
  CHECK(st.kept == 1 && st.puts == 1, "kept, not replaced");
  /* a changed body: new representation, new ETag, the old id is stale */
  body[4000] ^= 1;
  CHECK_EQ(put_body(s, 20, NULL, KEY1, 7, body, 5000, 0, 0, &id3), 0, "put changed");
  CHECK(id3 != id, "new id");
  CHECK_EQ(tc_bw2_etag(s, id3, e2), 8, "etag 2");
  CHECK(memcmp(e1, e2, 8) != 0, "ETag changed");
  CHECK_EQ(tc_bw2_length(s, id), TC_E_STALE, "old id stale");
  CHECK(tc_bw2_find(s, 21, PEER_A, 4, KEY1, 7, &id2) == 0 && id2 == id3, "find the new one");
  serve(s, 22, id3, tc_block_value(1, 0, 4), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK(g.etag_len == 8 && memcmp(g.etag, e2, 8) == 0, "blocks carry the new ETag");
  /* a caller ETag is used as is */
  {
    tc_msg m;
    tc_opt o[1];
    uint8_t src[16] = {0xAB, 0xCD, 'h', 'i'};
    uint8_t e[8];
    memset(&m, 0, sizeof m);
    m.code = 0x45;
    o[0].number = TC_OPT_ETAG;
    o[0].offset = 0;
    o[0].length = 2;
    m.option_count = 1;
    m.payload_offset = 2;
    m.payload_length = 2;
    CHECK_EQ(t_bw2_put(s, 30, NULL, 0, KEY2, 7, &m, o, src, 0, &id), 0, "put with ETag");
    CHECK(tc_bw2_etag(s, id, e) == 2 && e[0] == 0xAB && e[1] == 0xCD, "caller ETag kept");
    serve(s, 31, id, 0, 0, 0, &g);
    CHECK(g.etag_len == 2 && g.plen == 2 && !g.more && g.num == 0, "small body, one block");
  }
  /* empty body: block 0, M 0, no payload; past it -> 4.02 */
  CHECK_EQ(put_body(s, 40, NULL, (const uint8_t *)"e", 1, NULL, 0, 0, 0, &id), 0, "empty");
  serve(s, 41, id, 0, 0, 0, &g);
  CHECK(g.code == 0x45 && g.plen == 0 && !g.more && g.has_size2 && g.size2 == 0, "empty block");
  serve(s, 41, id, tc_block_value(1, 0, 0), TC_BW_HAS_BLOCK2, 0, &g);
  CHECK_EQ(g.code, TC_CODE_BAD_OPTION, "past an empty body");
  /* Block1 echo on request (Block1 + Block2 combination) */
  {
    tc_msg m;
    tc_opt o[OPTCAP];
    int n = t_bw2_serve(s, 42, id3, 0, TC_BW_ECHO_BLOCK1, tc_block_value(7, 0, 4), 0, &m, o,
                         OPTCAP, g_buf, sizeof g_buf);
    CHECK(n > 0 && opt_uint(&m, o, g_buf, TC_OPT_BLOCK1) == tc_block_value(7, 0, 4),
          "Block1 echoed");
  }
  free(s);
  free(body);
}

static void t_bw2_shared_scoped(void) {
  tc_bw2_config cfg;
  tc_bw2 *s;
  uint32_t total = 1u << 20, id, c, rounds;
  uint8_t *body = pattern(total);
  static uint8_t *copies[100];
  static uint32_t next_num[100];
  uint8_t peer[4] = {192, 168, 0, 0};
  got g;
  tc_bw2_stats st;
  int ok = 1;
  tc_bw2_config_default(&cfg);
  cfg.pool_bytes = 2u << 20;
  s = bw2_new(&cfg);
  if (s == NULL || body == NULL) {
    CHECK(0, "setup");
    free(s);
    free(body);
    return;
  }
  CHECK_EQ(put_body(s, 0, NULL, KEY1, 7, body, total, 60, 0, &id), 0, "put shared");
  for (c = 0; c < 100; c++) {
    uint32_t fid;
    copies[c] = malloc(total);
    next_num[c] = 0;
    peer[3] = (uint8_t)c;
    if (tc_bw2_find(s, 1, peer, 4, KEY1, 7, &fid) != 0 || fid != id) ok = 0;
  }
  CHECK(ok, "100 peers find the one shared representation");
  /* 100 clients interleaved, block by block, various sizes */
  for (rounds = 0; ok && rounds < 70000; rounds++) {
    int active = 0;
    for (c = 0; c < 100; c++) {
      uint32_t szx = 4 + c % 3, num = next_num[c];
      if (num == 0xFFFFFFFFu) continue;
      active = 1;
      if (serve(s, 2, id, tc_block_value(num, 0, szx), TC_BW_HAS_BLOCK2, 0, &g) < 0 ||
          g.num != num) {
        ok = 0;
        break;
      }
      if (copies[c]) memcpy(copies[c] + (num << (szx + 4)), g.payload, g.plen);
      next_num[c] = g.more ? num + 1 : 0xFFFFFFFFu;
    }
    if (!active) break;
  }
  CHECK(ok, "interleaved serving");
  for (c = 0; c < 100; c++) {
    if (copies[c] == NULL || memcmp(copies[c], body, total) != 0) ok = 0;
    free(copies[c]);
  }
  CHECK(ok, "100 clients reassembled the body");
  tc_bw2_get_stats(s, &st);
  CHECK(st.reps == 1 && st.chunks_used == 1028, "one copy for 100 clients");
  CHECK(st.served >= 100 * 1024, "blocks served");

  /* a peer-scoped representation (e.g. the answer to a POST) is found by that peer only and is
   * preferred to a shared one */
  {
    uint32_t sid, fid;
    CHECK_EQ(put_body(s, 3, PEER_A, KEY1, 7, (const uint8_t *)"mine", 4, 0, 0, &sid), 0,
             "put scoped");
    CHECK(sid != id, "separate representation");
    CHECK(tc_bw2_find(s, 4, PEER_A, 4, KEY1, 7, &fid) == 0 && fid == sid, "peer A: scoped");
    CHECK(tc_bw2_find(s, 4, PEER_B, 4, KEY1, 7, &fid) == 0 && fid == id, "peer B: shared");
    CHECK(tc_bw2_find(s, 4, NULL, 0, KEY1, 7, &fid) == 0 && fid == id, "no peer: shared");
    CHECK_EQ(tc_bw2_find(s, 4, PEER_B, 4, KEY2, 7, &fid), TC_E_STALE, "other key");
    CHECK_EQ(tc_bw2_drop(s, sid), 0, "drop");
    CHECK(tc_bw2_find(s, 4, PEER_A, 4, KEY1, 7, &fid) == 0 && fid == id, "then shared");
  }
  free(s);
  free(body);
}

static void t_bw2_eviction_expiry(void) {
  tc_bw2_config cfg;
  tc_bw2 *s;
  uint32_t ids[6], i, fid;
  uint8_t *body = pattern(20000);
  uint8_t key[2] = {'k', 0};
  got g;
  tc_bw2_stats st;
  tc_bw2_config_default(&cfg);
  cfg.pool_bytes = 64 * 1024;
  cfg.max_reps = 4;
  s = bw2_new(&cfg);
  if (s == NULL || body == NULL) {
    CHECK(0, "setup");
    free(s);
    free(body);
    return;
  }
  /* 20000 bytes = 20 data + 1 index chunks; 64 chunks hold three */
  for (i = 0; i < 3; i++) {
    key[1] = (uint8_t)i;
    CHECK_EQ(put_body(s, i, NULL, key, 2, body, 20000, 0, 0, &ids[i]), 0, "put");
  }
  serve(s, 5, ids[0], 0, 0, 0, &g); /* 0 recently used: 1 is now the oldest */
  key[1] = 3;
  CHECK_EQ(put_body(s, 6, NULL, key, 2, body, 20000, 0, 0, &ids[3]), 0, "put 4th");
  CHECK_EQ(tc_bw2_length(s, ids[1]), TC_E_STALE, "LRU evicted");
  CHECK_EQ(tc_bw2_length(s, ids[0]), 20000, "recently used kept");
  CHECK_EQ(tc_bw2_length(s, ids[2]), 20000, "kept");
  tc_bw2_get_stats(s, &st);
  CHECK(st.evicted == 1 && st.reps == 3 && st.chunks_used == 63, "eviction counted");
  /* record bound: small bodies, four records */
  for (i = 0; i < 3; i++) {
    key[1] = (uint8_t)(10 + i);
    CHECK_EQ(put_body(s, 7, NULL, key, 2, body, 10, 0, 0, NULL), 0, "small put");
  }
  tc_bw2_get_stats(s, &st);
  CHECK_EQ(st.reps, 4, "max_reps bound");
  /* too large for the pool */
  {
    uint8_t *big = pattern(70000);
    CHECK_EQ(put_body(s, 8, NULL, key, 2, big, 70000, 0, 0, NULL), TC_E_MESSAGE_TOO_LARGE,
             "body over the pool");
    free(big);
  }
  /* lifetimes */
  key[1] = 20;
  CHECK_EQ(put_body(s, 100, NULL, key, 2, body, 100, 0, 1000, &ids[4]), 0, "put 1 s");
  CHECK(tc_bw2_next_deadline(s) <= 1100, "deadline");
  CHECK(tc_bw2_find(s, 1099, NULL, 0, key, 2, &fid) == 0, "alive at 1099");
  CHECK_EQ(tc_bw2_find(s, 1100, NULL, 0, key, 2, &fid), TC_E_STALE, "expired at 1100");
  CHECK_EQ(serve(s, 1100, ids[4], 0, 0, 0, &g), TC_E_STALE, "serve expired");
  CHECK(tc_bw2_timer(s, 1000000) >= 1, "timer drops the default-lifetime ones");
  tc_bw2_get_stats(s, &st);
  CHECK_EQ(st.reps, 0, "all expired");
  CHECK_EQ(st.chunks_used, 0, "chunks back");
  CHECK_EQ(tc_bw2_next_deadline(s), UINT64_MAX, "nothing due");
  /* bad input */
  {
    tc_msg m;
    memset(&m, 0, sizeof m);
    m.code = 0x01;
    CHECK_EQ(t_bw2_put(s, 0, NULL, 0, key, 2, &m, NULL, NULL, 0, NULL), TC_E_INVALID,
             "request code");
    m.code = 0x45;
    CHECK_EQ(t_bw2_put(s, 0, PEER_A, 29, key, 2, &m, NULL, NULL, 0, NULL), TC_E_INVALID,
             "peer length");
  }
  tc_bw2_config_default(&cfg);
  cfg.max_opts = 65;
  CHECK_EQ(tc_bw2_size(&cfg), 0, "max_opts bound");
  free(s);
  free(body);
}

void test_blockwise(void);
void test_blockwise(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  t_block_values();
  t_parse_and_key();
  t_bw1_basic();
  t_bw1_sizes_and_order();
  t_bw1_request_tag();
  t_bw1_bounds();
  t_bw1_bert();
  t_bw2_every_szx();
  t_bw2_negotiation_etag();
  t_bw2_shared_scoped();
  t_bw2_eviction_expiry();
  printf("blockwise-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

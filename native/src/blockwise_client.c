/*
 * blockwise_client.c — the client side of block-wise transfer (RFC 7959; BERT, RFC 8323 §6;
 * Request-Tag, RFC 9175) and the client's Observe freshness rules (RFC 7641 §3.3.1, §3.4).
 * Sans-IO: the caller sends the requests and feeds the responses; the state is one flat block.
 */
#include <string.h>

#include "turbocoap.h"

#define BWC_MAGIC 0x42574331u /* "BWC1" */
#define ETAG_MAX 8u
#define TAG_MAX 8u
#define BODY_MAX (1u << 30)

enum { M_IDLE = 0, M_GET = 1, M_PUT = 2 };

struct tc_bwc {
  uint32_t magic;
  uint32_t mode;   /* M_* */
  uint32_t last;   /* status of the last call (enum tc_bwc_status), 0 idle */
  int32_t error;   /* FAILED: why */
  tc_bwc_config cfg;
  uint32_t szx;    /* SZX asked / used now */
  uint32_t restarts;
  /* download */
  uint32_t received; /* body bytes received in order */
  uint32_t size2, has_size2;
  uint32_t have_first; /* block 0 seen: etag/code fixed */
  uint32_t code;
  uint32_t etag_len;   /* 0..8, or ETAG_NONE */
  uint8_t etag[ETAG_MAX];
  /* upload */
  uint32_t body_len;
  uint32_t off, len, num, more; /* the block outstanding */
  uint32_t acked;
  uint32_t tag_len;
  uint8_t tag[TAG_MAX];
};

#define ETAG_NONE 0xFFFFFFFFu

static int cfg_ok(const tc_bwc_config *c) {
  if (c == NULL) return 0;
  if (c->max_body < 1u || c->max_body > BODY_MAX) return 0;
  if ((c->flags & ~TC_BWC_BERT) != 0u) return 0;
  if (c->preferred_szx > 7u || (c->preferred_szx == 7u && !(c->flags & TC_BWC_BERT))) return 0;
  if (c->max_restarts > 255u) return 0;
  if (c->bert_bytes < 1024u || c->bert_bytes > (1u << 24) || (c->bert_bytes & 1023u) != 0u)
    return 0;
  return 1;
}

void tc_bwc_config_default(tc_bwc_config *cfg) {
  if (cfg == NULL) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->max_body = 1u << 20;
  cfg->preferred_szx = 6u;
  cfg->max_restarts = 3u;
  cfg->flags = 0;
  cfg->bert_bytes = 1024u;
}

size_t tc_bwc_size(const tc_bwc_config *cfg) { return cfg_ok(cfg) ? sizeof(struct tc_bwc) : 0; }

int tc_bwc_init(tc_bwc *c, size_t mem_len, const tc_bwc_config *cfg) {
  if (c == NULL || !cfg_ok(cfg) || mem_len < sizeof *c || ((uintptr_t)c & 7u) != 0u)
    return TC_E_INVALID;
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  c->etag_len = ETAG_NONE;
  c->magic = BWC_MAGIC;
  return 0;
}

static int bwc_ok(const tc_bwc *c) { return c != NULL && c->magic == BWC_MAGIC; }

static uint32_t min_szx(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* Record and return a result. */
static int finish(tc_bwc *c, tc_bwc_result *res, uint32_t status, int32_t error) {
  res->status = status;
  res->error = error;
  c->last = status;
  if (status == TC_BWC_FAILED) c->error = error;
  return (int)status;
}

/* A call after DONE/FAILED: FAILED again, or IGNORED after DONE. */
static int over(tc_bwc *c, uint32_t code, tc_bwc_result *res) {
  memset(res, 0, sizeof *res);
  res->code = code;
  if (c->last == TC_BWC_FAILED) {
    res->status = TC_BWC_FAILED;
    res->error = c->error;
    return TC_BWC_FAILED;
  }
  res->status = TC_BWC_IGNORED;
  return TC_BWC_IGNORED;
}

/* The first ETag option: 0 = absent, 1 = present (val/len set), -1 = over 8 bytes. */
static int find_etag(const tc_msg *msg, const tc_opt *opts, const uint8_t *src,
                     const uint8_t **val, uint32_t *len) {
  uint32_t i;
  for (i = 0; i < msg->option_count; i++) {
    if (opts[i].number == TC_OPT_ETAG) {
      if (opts[i].length > ETAG_MAX) return -1;
      *val = src + opts[i].offset;
      *len = opts[i].length;
      return 1;
    }
  }
  return 0;
}

static int msg_args_ok(const tc_msg *msg, const tc_opt *opts, const uint8_t *src) {
  return msg != NULL && (opts != NULL || msg->option_count == 0u) &&
         (src != NULL || (msg->option_count == 0u && msg->payload_length == 0u));
}

/* ---------------------------------------------------------------- download */

static uint32_t get_unit_num(const tc_bwc *c, uint32_t *num) {
  uint32_t u = tc_szx_size(c->szx);
  *num = c->received / u;
  return u;
}

int tc_bwc_get_begin(tc_bwc *c, tc_bwc_result *res) {
  if (!bwc_ok(c) || res == NULL) return TC_E_INVALID;
  c->mode = M_GET;
  c->szx = c->cfg.preferred_szx;
  c->restarts = 0;
  c->received = 0;
  c->size2 = c->has_size2 = 0;
  c->have_first = 0;
  c->code = 0;
  c->etag_len = ETAG_NONE;
  c->error = 0;
  memset(res, 0, sizeof *res);
  res->block = tc_block_value(0, 0, c->szx);
  return finish(c, res, TC_BWC_NEXT, 0);
}

int tc_bwc_get_response(tc_bwc *c, const tc_msg *msg, const tc_opt *opts, const uint8_t *src,
                        uint8_t *body, uint32_t body_cap, tc_bwc_result *res) {
  tc_bw_info info;
  tc_block b;
  const uint8_t *pl, *ev = NULL;
  uint32_t cap, plen, unit, num, el = 0;
  uint64_t off;
  int e;
  if (!bwc_ok(c) || res == NULL || !msg_args_ok(msg, opts, src) ||
      (body == NULL && body_cap != 0u) || c->mode != M_GET)
    return TC_E_INVALID;
  if (c->last == TC_BWC_DONE || c->last == TC_BWC_FAILED) return over(c, msg->code, res);
  memset(res, 0, sizeof *res);
  res->code = msg->code;
  cap = c->cfg.max_body < body_cap ? c->cfg.max_body : body_cap;
  pl = src ? src + msg->payload_offset : NULL;
  plen = msg->payload_length;
  if (tc_bw_parse(msg, opts, src, &info) < 0) return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  e = find_etag(msg, opts, src, &ev, &el);
  if (e < 0) return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  if (info.flags & TC_BWI_SIZE2) {
    res->size = info.size2;
    res->flags |= TC_BWCF_SIZE;
  }
  if (!(info.flags & TC_BWI_BLOCK2)) { /* a whole body */
    if (plen > cap) return finish(c, res, TC_BWC_FAILED, TC_E_MESSAGE_TOO_LARGE);
    if (plen) memcpy(body, pl, plen);
    c->received = plen;
    res->length = plen;
    return finish(c, res, TC_BWC_DONE, 0);
  }
  (void)tc_block_from_value(info.block2, &b);
  if (b.szx == TC_SZX_BERT && !(c->cfg.flags & TC_BWC_BERT))
    return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  unit = tc_szx_size(b.szx);
  off = (uint64_t)b.num * unit;
  if (off != c->received) { /* not the block wanted */
    (void)get_unit_num(c, &num);
    res->block = tc_block_value(num, 0, c->szx);
    if (off < c->received) res->flags |= TC_BWCF_DUPLICATE;
    res->status = TC_BWC_IGNORED;
    return TC_BWC_IGNORED; /* the state (and c->last) stays */
  }
  if (b.more ? (b.szx == TC_SZX_BERT ? plen == 0u || (plen & 1023u) != 0u : plen != unit)
             : (b.szx != TC_SZX_BERT && plen > unit))
    return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  if (!c->have_first) {
    c->have_first = 1;
    c->code = msg->code;
    c->etag_len = e ? el : ETAG_NONE;
    if (e && el) memcpy(c->etag, ev, el);
  } else if (c->code != msg->code || c->etag_len != (e ? el : ETAG_NONE) ||
             (e && el && memcmp(c->etag, ev, el) != 0)) {
    /* the representation changed under us: start over */
    if (c->restarts >= c->cfg.max_restarts) return finish(c, res, TC_BWC_FAILED, TC_E_STALE);
    c->restarts++;
    c->received = 0;
    c->have_first = 0;
    c->has_size2 = c->size2 = 0;
    c->szx = min_szx(c->szx, b.szx);
    res->block = tc_block_value(0, 0, c->szx);
    return finish(c, res, TC_BWC_RESTART, 0);
  }
  if (info.flags & TC_BWI_SIZE2) {
    c->size2 = info.size2;
    c->has_size2 = 1;
    if (info.size2 > cap) return finish(c, res, TC_BWC_FAILED, TC_E_MESSAGE_TOO_LARGE);
  }
  if ((uint64_t)c->received + plen > cap)
    return finish(c, res, TC_BWC_FAILED, TC_E_MESSAGE_TOO_LARGE);
  if (plen) memcpy(body + c->received, pl, plen);
  c->received += plen;
  if (!b.more) {
    res->length = c->received;
    return finish(c, res, TC_BWC_DONE, 0);
  }
  c->szx = min_szx(c->szx, b.szx);
  (void)get_unit_num(c, &num);
  if (num > TC_BLOCK_NUM_MAX) return finish(c, res, TC_BWC_FAILED, TC_E_MESSAGE_TOO_LARGE);
  res->block = tc_block_value(num, 0, c->szx);
  return finish(c, res, TC_BWC_NEXT, 0);
}

/* ------------------------------------------------------------------ upload */

/* Lay out the block starting at c->off at c->szx into res. 0, or TC_E_MESSAGE_TOO_LARGE. */
static int put_block(tc_bwc *c, tc_bwc_result *res) {
  uint32_t rem = c->body_len - c->off, n, unit = tc_szx_size(c->szx);
  if (c->szx == TC_SZX_BERT) {
    n = c->cfg.bert_bytes;
  } else {
    n = unit;
  }
  c->num = c->off / unit;
  /* the last block's NUM must fit in 20 bits */
  if (c->body_len > 0u && (c->body_len - 1u) / unit > TC_BLOCK_NUM_MAX)
    return TC_E_MESSAGE_TOO_LARGE;
  c->more = rem > n ? 1u : 0u;
  c->len = rem > n ? n : rem;
  res->block = tc_block_value(c->num, c->more, c->szx);
  res->offset = c->off;
  res->length = c->len;
  if (!c->more) res->flags |= TC_BWCF_LAST;
  return 0;
}

int tc_bwc_put_begin(tc_bwc *c, uint32_t body_length, const uint8_t *tag, uint32_t tag_len,
                     tc_bwc_result *res) {
  int r;
  if (!bwc_ok(c) || res == NULL || body_length > BODY_MAX || tag_len > TAG_MAX ||
      (tag == NULL && tag_len != 0u))
    return TC_E_INVALID;
  memset(res, 0, sizeof *res);
  c->mode = M_PUT;
  c->szx = c->cfg.preferred_szx;
  c->restarts = 0;
  c->received = 0;
  c->body_len = body_length;
  c->off = c->acked = 0;
  c->error = 0;
  c->tag_len = tag_len;
  if (tag_len) memcpy(c->tag, tag, tag_len);
  r = put_block(c, res);
  if (r < 0) return finish(c, res, TC_BWC_FAILED, r);
  return finish(c, res, TC_BWC_NEXT, 0);
}

int tc_bwc_put_response(tc_bwc *c, const tc_msg *msg, const tc_opt *opts, const uint8_t *src,
                        tc_bwc_result *res) {
  tc_bw_info info;
  tc_block b;
  uint32_t cls;
  int r, has1;
  if (!bwc_ok(c) || res == NULL || !msg_args_ok(msg, opts, src) || c->mode != M_PUT)
    return TC_E_INVALID;
  if (c->last == TC_BWC_DONE || c->last == TC_BWC_FAILED) return over(c, msg->code, res);
  memset(res, 0, sizeof *res);
  res->code = msg->code;
  cls = msg->code >> 5;
  if (tc_bw_parse(msg, opts, src, &info) < 0) return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  has1 = (info.flags & TC_BWI_BLOCK1) != 0u;
  if (has1) (void)tc_block_from_value(info.block1, &b);
  else memset(&b, 0, sizeof b);
  if (has1 && b.szx == TC_SZX_BERT && !(c->cfg.flags & TC_BWC_BERT))
    return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
  if (msg->code == TC_CODE_CONTINUE) {
    if (!has1) return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
    if (b.num != c->num) { /* for another block: a late duplicate */
      res->block = tc_block_value(c->num, c->more, c->szx);
      res->offset = c->off;
      res->length = c->len;
      if (b.num < c->num) res->flags |= TC_BWCF_DUPLICATE;
      res->status = TC_BWC_IGNORED;
      return TC_BWC_IGNORED;
    }
    if (!c->more) return finish(c, res, TC_BWC_FAILED, TC_E_BAD_OPTION);
    c->off += c->len;
    c->acked = c->off;
    c->szx = min_szx(c->szx, b.szx); /* RFC 7959 §2.3: adopt the server's smaller size */
    r = put_block(c, res);
    if (r < 0) return finish(c, res, TC_BWC_FAILED, r);
    return finish(c, res, TC_BWC_NEXT, 0);
  }
  if (msg->code == TC_CODE_TOO_LARGE) {
    if (info.flags & TC_BWI_SIZE1) {
      res->size = info.size1;
      res->flags |= TC_BWCF_SIZE;
    }
    if (has1 && b.szx < c->szx && c->restarts < c->cfg.max_restarts) {
      /* RFC 7959 §2.9.3: the server would take smaller blocks */
      c->restarts++;
      c->szx = b.szx;
      c->off = c->acked = 0;
      r = put_block(c, res);
      if (r < 0) return finish(c, res, TC_BWC_FAILED, r);
      return finish(c, res, TC_BWC_RESTART, 0);
    }
    return finish(c, res, TC_BWC_FAILED, TC_E_MESSAGE_TOO_LARGE);
  }
  if (msg->code == TC_CODE_INCOMPLETE) return finish(c, res, TC_BWC_FAILED, TC_E_STALE);
  if (cls == 2u && has1 && b.num != c->num) {
    res->block = tc_block_value(c->num, c->more, c->szx);
    res->offset = c->off;
    res->length = c->len;
    res->status = TC_BWC_IGNORED;
    return TC_BWC_IGNORED;
  }
  /* the final response */
  if (c->more) res->flags |= TC_BWCF_EARLY;
  else c->acked = c->body_len;
  if (info.flags & TC_BWI_BLOCK2) res->flags |= TC_BWCF_BLOCK2;
  if (info.flags & TC_BWI_SIZE2) {
    res->size = info.size2;
    res->flags |= TC_BWCF_SIZE;
  }
  return finish(c, res, TC_BWC_DONE, 0);
}

int tc_bwc_request_tag(const tc_bwc *c, uint8_t out[8]) {
  if (!bwc_ok(c) || out == NULL) return TC_E_INVALID;
  if (c->tag_len) memcpy(out, c->tag, c->tag_len);
  return (int)c->tag_len;
}

int tc_bwc_progress(const tc_bwc *c, uint32_t *done, uint32_t *total) {
  uint32_t d = 0, t = 0;
  if (!bwc_ok(c)) return TC_E_INVALID;
  if (c->mode == M_GET) {
    d = c->received;
    t = c->last == TC_BWC_DONE ? c->received : (c->has_size2 ? c->size2 : 0u);
  } else if (c->mode == M_PUT) {
    d = c->acked;
    t = c->body_len;
  }
  if (done) *done = d;
  if (total) *total = t;
  return (int)c->last;
}

/* ------------------------------------------------------------ client Observe */

int tc_obs_fresh(uint32_t v1, uint64_t t1_ms, uint32_t v2, uint64_t t2_ms) {
  const uint32_t half = 1u << 23;
  v1 &= 0xFFFFFFu;
  v2 &= 0xFFFFFFu;
  if (v1 < v2 && v2 - v1 < half) return 1;
  if (v1 > v2 && v1 - v2 > half) return 1;
  if (t1_ms <= UINT64_MAX - 128000u && t2_ms > t1_ms + 128000u) return 1;
  return 0;
}

uint64_t tc_obs_reregister_at(uint64_t arrival_ms, uint32_t max_age_s, uint32_t lead_ms) {
  uint64_t age = (uint64_t)(max_age_s == TC_OBS_NO_MAX_AGE ? 60u : max_age_s) * 1000u;
  uint64_t lead = lead_ms < age ? lead_ms : age;
  age -= lead;
  return arrival_ms > UINT64_MAX - age ? UINT64_MAX : arrival_ms + age;
}

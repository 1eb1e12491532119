/*
 * blockwise.c — block-wise transfer, server side (RFC 7959; BERT, RFC 8323 §6; Request-Tag,
 * RFC 9175 §3), sans-IO. See turbocoap_bw.h for the contract.
 *
 * Both stores keep bodies in a chunk pool: N chunks of C bytes (C a power of two) with a
 * `next` array of 32-bit links (free list, chains). No pointers are stored anywhere.
 *
 * Block1 store (tc_bw1), laid out by tc_bw1_init():
 *   struct tc_bw1    config, hash keys, offsets, counters
 *   xfer [T]         uploads: peer, key length, chunk chain (head, tail), progress
 *   key buckets      hash(peer, key) -> xfer chain
 *   peer buckets     hash(peer) -> xfer chain (per-peer counts)
 *   keys [T * K]     a copy of each upload's request key
 *   next [N]         chunk links
 *   data [N * C]     chunk bytes
 * Uploads are also on an LRU list ordered by last activity, so the idle timeout is O(1).
 *
 * Block2 store (tc_bw2), laid out by tc_bw2_init():
 *   struct tc_bw2    config, keys, offsets, counters
 *   rep [R]          representations: scope (peer or shared), key, code, ETag, body
 *   buckets          hash(scope, key) -> rep chain
 *   keys [R * K]     a copy of each key
 *   opts [R * O]     each representation's stored options: (number, length, value)...
 *   next [N], data [N * C]
 * A body of one chunk is referenced directly; a longer body has index chunks (chained by
 * `next`), each listing C/4 data chunk numbers, so block k is found in k / (C/4) hops (4 for
 * 1 MiB with 1 KiB chunks), whatever the access pattern of many clients.
 */
#include <string.h>

#include "turbocoap.h"

#define NONE 0xFFFFFFFFu
#define NEVER UINT64_MAX
#define BW1_MAGIC 0x74634231u /* "tcB1" */
#define BW2_MAGIC 0x74634232u /* "tcB2" */
#define MAX_POOL 0x80000000u
#define MAX_CHUNKS (1u << 24)

/* ------------------------------------------------------------------ helpers */

static inline uint64_t add_sat(uint64_t a, uint64_t b) { return a > NEVER - b ? NEVER : a + b; }

static inline int addr_ok(const uint8_t *a, uint32_t n) {
  return a != NULL && n >= 1u && n <= TC_ADDR_MAX;
}

static uint64_t up8(uint64_t x) { return (x + 7u) & ~(uint64_t)7u; }

static uint32_t pow2_at_least(uint32_t n) {
  uint32_t p = 1;
  while (p < n && p < 0x80000000u) p <<= 1;
  return p;
}

static int is_pow2(uint32_t x) { return x != 0u && (x & (x - 1u)) == 0u; }

static uint32_t log2u(uint32_t x) {
  uint32_t r = 0;
  while (x > 1u) {
    x >>= 1;
    r++;
  }
  return r;
}

/* ---------------------------------------------------------- SipHash-1-3 */

typedef struct sip {
  uint64_t v0, v1, v2, v3;
  uint64_t tail;
  uint32_t ntail;
  uint32_t total;
} sip;

static inline uint64_t rotl(uint64_t x, unsigned b) { return (x << b) | (x >> (64u - b)); }

#define SIPROUND(s)                                                                          \
  do {                                                                                       \
    (s)->v0 += (s)->v1; (s)->v1 = rotl((s)->v1, 13); (s)->v1 ^= (s)->v0;                      \
    (s)->v0 = rotl((s)->v0, 32);                                                             \
    (s)->v2 += (s)->v3; (s)->v3 = rotl((s)->v3, 16); (s)->v3 ^= (s)->v2;                      \
    (s)->v0 += (s)->v3; (s)->v3 = rotl((s)->v3, 21); (s)->v3 ^= (s)->v0;                      \
    (s)->v2 += (s)->v1; (s)->v1 = rotl((s)->v1, 17); (s)->v1 ^= (s)->v2;                      \
    (s)->v2 = rotl((s)->v2, 32);                                                             \
  } while (0)

static void sip_init(sip *s, uint64_t k0, uint64_t k1) {
  s->v0 = k0 ^ 0x736f6d6570736575ull;
  s->v1 = k1 ^ 0x646f72616e646f6dull;
  s->v2 = k0 ^ 0x6c7967656e657261ull;
  s->v3 = k1 ^ 0x7465646279746573ull;
  s->tail = 0;
  s->ntail = 0;
  s->total = 0;
}

static void sip_word(sip *s, uint64_t m) {
  s->v3 ^= m;
  SIPROUND(s);
  s->v0 ^= m;
}

static void sip_add(sip *s, const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    s->tail |= (uint64_t)p[i] << (8u * s->ntail);
    s->total++;
    if (++s->ntail == 8u) {
      sip_word(s, s->tail);
      s->tail = 0;
      s->ntail = 0;
    }
  }
}

static uint64_t sip_end(sip *s) {
  sip_word(s, s->tail | (uint64_t)(s->total & 0xFFu) << 56);
  s->v2 ^= 0xFF;
  SIPROUND(s);
  SIPROUND(s);
  SIPROUND(s);
  return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* ------------------------------------------------------- Block option values */

int tc_block_from_value(uint32_t v, tc_block *b) {
  if (b == NULL || v > 0xFFFFFFu) return TC_E_INVALID;
  b->num = v >> 4;
  b->more = (v >> 3) & 1u;
  b->szx = v & 7u;
  return 0;
}

int tc_uint_decode(const uint8_t *val, uint32_t len, uint32_t *v) {
  uint32_t i, x = 0;
  if (v == NULL || len > 4u || (val == NULL && len != 0u)) return TC_E_INVALID;
  for (i = 0; i < len; i++) x = x << 8 | val[i];
  *v = x;
  return 0;
}

int tc_uint_encode(uint32_t v, uint8_t out[4]) {
  int n = v == 0u ? 0 : v < 0x100u ? 1 : v < 0x10000u ? 2 : v < 0x1000000u ? 3 : 4;
  int i;
  if (out == NULL) return TC_E_INVALID;
  for (i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

int tc_block_decode(const uint8_t *val, uint32_t len, tc_block *b) {
  uint32_t v;
  if (b == NULL || len > 3u || tc_uint_decode(val, len, &v) < 0) return TC_E_INVALID;
  return tc_block_from_value(v, b);
}

int tc_block_encode(const tc_block *b, uint8_t out[3]) {
  uint8_t tmp[4];
  int n;
  if (b == NULL || out == NULL || b->num > TC_BLOCK_NUM_MAX || b->more > 1u || b->szx > 7u)
    return TC_E_INVALID;
  n = tc_uint_encode(tc_block_value(b->num, b->more, b->szx), tmp);
  memcpy(out, tmp, (size_t)n);
  return n;
}

int tc_szx_for_size(uint32_t size) {
  int szx = 6;
  if (size < 16u) return TC_E_INVALID;
  while (szx > 0 && (16u << szx) > size) szx--;
  return szx;
}

/* ------------------------------------------------------ request inspection */

int tc_bw_parse(const tc_msg *msg, const tc_opt *opts, const uint8_t *src, tc_bw_info *out) {
  uint32_t i, v = 0;
  if (msg == NULL || out == NULL || (opts == NULL && msg->option_count != 0u)) return TC_E_INVALID;
  memset(out, 0, sizeof *out);
  for (i = 0; i < msg->option_count; i++) {
    const tc_opt *o = &opts[i];
    const uint8_t *val = src != NULL ? src + o->offset : NULL;
    if (val == NULL && o->length != 0u) return TC_E_INVALID;
    switch (o->number) {
    case TC_OPT_BLOCK1:
    case TC_OPT_BLOCK2: {
      uint32_t bit = o->number == TC_OPT_BLOCK1 ? TC_BWI_BLOCK1 : TC_BWI_BLOCK2;
      if (out->flags & bit) break;
      if (o->length > 3u) return TC_E_INVALID;
      (void)tc_uint_decode(val, o->length, &v);
      out->flags |= bit;
      if (bit == TC_BWI_BLOCK1) out->block1 = v;
      else out->block2 = v;
      break;
    }
    case TC_OPT_SIZE1:
    case TC_OPT_SIZE2: {
      uint32_t bit = o->number == TC_OPT_SIZE1 ? TC_BWI_SIZE1 : TC_BWI_SIZE2;
      if ((out->flags & bit) || o->length > 4u) break;
      (void)tc_uint_decode(val, o->length, &v);
      out->flags |= bit;
      if (bit == TC_BWI_SIZE1) out->size1 = v;
      else out->size2 = v;
      break;
    }
    case TC_OPT_OBSERVE:
      if ((out->flags & TC_BWI_OBSERVE) || o->length > 3u) break;
      (void)tc_uint_decode(val, o->length, &v);
      out->flags |= TC_BWI_OBSERVE;
      out->observe = v;
      break;
    case TC_OPT_REQUEST_TAG:
      out->flags |= TC_BWI_REQUEST_TAG;
      break;
    default:
      break;
    }
  }
  return 0;
}

/* Options that are not part of the request key (see tc_bw_key). */
static int key_excluded(uint32_t n) {
  switch (n) {
  case 1u: case 4u: case 5u: case 6u: case 9u: case 14u: case 16u: case 19u: case 23u:
  case 27u: case 28u: case 31u: case 60u: case 252u: case 258u:
    return 1;
  default:
    return tc_option_is_no_cache_key(n);
  }
}

int tc_bw_key(const tc_msg *msg, const tc_opt *opts, const uint8_t *src, uint32_t flags,
              uint8_t *out, uint32_t cap) {
  uint64_t n = 1;
  uint32_t i, w = 0;
  if (msg == NULL || (opts == NULL && msg->option_count != 0u) || (flags & ~TC_BW_KEY_PAYLOAD))
    return TC_E_INVALID;
  for (i = 0; i < msg->option_count; i++) {
    if (key_excluded(opts[i].number)) continue;
    if (opts[i].number > 65535u || opts[i].length > 65535u) return TC_E_INVALID;
    if (src == NULL && opts[i].length != 0u) return TC_E_INVALID;
    n += 5u + opts[i].length;
  }
  if ((flags & TC_BW_KEY_PAYLOAD) && msg->payload_length != 0u) {
    if (src == NULL) return TC_E_INVALID;
    n += 5u + msg->payload_length;
  }
  if (n > 0x7FFFFFFFu) return TC_E_INVALID;
  if (out == NULL) return (int)n;
  if (n > cap) return TC_E_BUFFER_TOO_SMALL;
  out[w++] = (uint8_t)msg->code;
  for (i = 0; i < msg->option_count; i++) {
    const tc_opt *o = &opts[i];
    if (key_excluded(o->number)) continue;
    /* tag 0 = option: number (2 bytes), length (2 bytes), value */
    out[w++] = 0;
    out[w++] = (uint8_t)(o->number >> 8);
    out[w++] = (uint8_t)o->number;
    out[w++] = (uint8_t)(o->length >> 8);
    out[w++] = (uint8_t)o->length;
    if (o->length) memcpy(out + w, src + o->offset, o->length);
    w += o->length;
  }
  if ((flags & TC_BW_KEY_PAYLOAD) && msg->payload_length != 0u) {
    uint32_t pl = msg->payload_length;
    out[w++] = 1; /* tag 1 = payload */
    out[w++] = (uint8_t)(pl >> 24);
    out[w++] = (uint8_t)(pl >> 16);
    out[w++] = (uint8_t)(pl >> 8);
    out[w++] = (uint8_t)pl;
    memcpy(out + w, src + msg->payload_offset, pl);
    w += pl;
  }
  return (int)w;
}

/* ------------------------------------------------------------- chunk pools */

typedef struct pool {
  uint32_t nchunks, shift, free_head, used;
} pool;

static void pool_init(pool *pl, uint32_t *next, uint32_t nchunks, uint32_t shift) {
  uint32_t i;
  pl->nchunks = nchunks;
  pl->shift = shift;
  pl->used = 0;
  for (i = 0; i < nchunks; i++) next[i] = i + 1u < nchunks ? i + 1u : NONE;
  pl->free_head = nchunks ? 0u : NONE;
}

static inline uint32_t pool_free_count(const pool *pl) { return pl->nchunks - pl->used; }

static uint32_t pool_alloc(pool *pl, uint32_t *next) {
  uint32_t c = pl->free_head;
  if (c == NONE) return NONE;
  pl->free_head = next[c];
  next[c] = NONE;
  pl->used++;
  return c;
}

static void pool_put(pool *pl, uint32_t *next, uint32_t c) {
  next[c] = pl->free_head;
  pl->free_head = c;
  pl->used--;
}

/* ============================================================ Block1 store */

enum { X_FREE = 0, X_OPEN = 1, X_DONE = 2 };

typedef struct xfer {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t state;
  uint8_t last_more;
  uint8_t pad;
  uint32_t klen;
  uint32_t hnext, hb; /* key index: chain, bucket */
  uint32_t pnext, pb; /* peer index */
  uint32_t prev, next; /* LRU list (in use) or free list (next) */
  uint32_t head, tail; /* chunk chain */
  uint32_t received;
  uint32_t last_off, last_len, last_num, last_szx;
  uint16_t gen;
  uint16_t pad2;
  uint64_t active;
} xfer;

struct tc_bw1 {
  uint32_t magic;
  uint32_t pad;
  tc_bw1_config cfg;
  uint32_t kmask, pmask;
  uint32_t x_free, lru_head, lru_tail, x_count;
  uint32_t pad2;
  pool pl;
  uint64_t k0, k1;
  uint64_t off_x, off_kb, off_pb, off_keys, off_next, off_data, size;
  tc_bw1_stats st;
};

typedef struct bw1_layout {
  uint64_t off_x, off_kb, off_pb, off_keys, off_next, off_data, size;
  uint32_t kbuckets, nchunks, shift;
} bw1_layout;

static int bw1_config_ok(const tc_bw1_config *c) {
  return c != NULL && c->max_transfers >= 1u && c->max_transfers <= 65535u &&
         c->max_per_peer >= 1u && c->max_per_peer <= c->max_transfers && c->max_body >= 1u &&
         c->max_body <= (1u << 30) && is_pow2(c->chunk_size) && c->chunk_size >= 16u &&
         c->chunk_size <= 65536u && c->pool_bytes >= c->chunk_size &&
         c->pool_bytes <= MAX_POOL && c->pool_bytes / c->chunk_size <= MAX_CHUNKS &&
         c->max_key >= 1u && c->max_key <= 65535u && c->idle_timeout_ms >= 1u &&
         c->preferred_szx <= 6u;
}

static int bw1_layout_of(const tc_bw1_config *c, bw1_layout *l) {
  uint64_t o;
  if (!bw1_config_ok(c)) return -1;
  l->kbuckets = pow2_at_least(c->max_transfers);
  l->nchunks = c->pool_bytes / c->chunk_size;
  l->shift = log2u(c->chunk_size);
  o = up8(sizeof(struct tc_bw1));
  l->off_x = o;
  o = up8(o + (uint64_t)c->max_transfers * sizeof(xfer));
  l->off_kb = o;
  o = up8(o + (uint64_t)l->kbuckets * 4u);
  l->off_pb = o;
  o = up8(o + (uint64_t)l->kbuckets * 4u);
  l->off_keys = o;
  o = up8(o + (uint64_t)c->max_transfers * c->max_key);
  l->off_next = o;
  o = up8(o + (uint64_t)l->nchunks * 4u);
  l->off_data = o;
  o = up8(o + (uint64_t)l->nchunks * c->chunk_size);
  l->size = o;
  if (o > (uint64_t)SIZE_MAX) return -1;
  return 0;
}

void tc_bw1_config_default(tc_bw1_config *c) {
  if (c == NULL) return;
  c->max_transfers = 64;
  c->max_per_peer = 4;
  c->max_body = 1u << 20;
  c->pool_bytes = 4u << 20;
  c->chunk_size = 1024;
  c->max_key = 256;
  c->idle_timeout_ms = 120000;
  c->preferred_szx = 6;
  c->busy_max_age = 2;
}

size_t tc_bw1_size(const tc_bw1_config *cfg) {
  bw1_layout l;
  return bw1_layout_of(cfg, &l) < 0 ? 0 : (size_t)l.size;
}

#define XS(s) ((xfer *)(void *)((uint8_t *)(s) + (s)->off_x))
#define KB(s) ((uint32_t *)(void *)((uint8_t *)(s) + (s)->off_kb))
#define PB(s) ((uint32_t *)(void *)((uint8_t *)(s) + (s)->off_pb))
#define XKEY(s, i) ((uint8_t *)(s) + (s)->off_keys + (uint64_t)(i) * (s)->cfg.max_key)
#define NX(s) ((uint32_t *)(void *)((uint8_t *)(s) + (s)->off_next))
#define DATA(s, c) ((uint8_t *)(s) + (s)->off_data + ((uint64_t)(c) << (s)->pl.shift))

int tc_bw1_init(tc_bw1 *s, size_t mem_len, const tc_bw1_config *cfg, const uint8_t seed[16]) {
  bw1_layout l;
  uint32_t i;
  if (s == NULL || seed == NULL || bw1_layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)s & 7u) != 0u)
    return TC_E_INVALID;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->k0 = rd64(seed);
  s->k1 = rd64(seed + 8);
  s->off_x = l.off_x;
  s->off_kb = l.off_kb;
  s->off_pb = l.off_pb;
  s->off_keys = l.off_keys;
  s->off_next = l.off_next;
  s->off_data = l.off_data;
  s->size = l.size;
  s->kmask = l.kbuckets - 1u;
  s->pmask = l.kbuckets - 1u;
  for (i = 0; i < cfg->max_transfers; i++) {
    xfer *x = &XS(s)[i];
    memset(x, 0, sizeof *x);
    x->gen = 1;
    x->next = i + 1u < cfg->max_transfers ? i + 1u : NONE;
  }
  s->x_free = 0;
  s->lru_head = s->lru_tail = NONE;
  for (i = 0; i < l.kbuckets; i++) KB(s)[i] = PB(s)[i] = NONE;
  pool_init(&s->pl, NX(s), l.nchunks, l.shift);
  s->magic = BW1_MAGIC;
  return 0;
}

static inline int bw1_ok(const tc_bw1 *s) { return s != NULL && s->magic == BW1_MAGIC; }

static uint64_t bw1_hash(const tc_bw1 *s, const uint8_t *a, uint32_t alen, const uint8_t *k,
                         uint32_t klen) {
  sip h;
  uint8_t n = (uint8_t)alen;
  sip_init(&h, s->k0, s->k1);
  sip_add(&h, &n, 1);
  sip_add(&h, a, alen);
  if (k != NULL) sip_add(&h, k, klen);
  return sip_end(&h);
}

static uint32_t bw1_find(tc_bw1 *s, uint64_t h, const uint8_t *a, uint32_t alen,
                         const uint8_t *k, uint32_t klen) {
  uint32_t i = KB(s)[h & s->kmask];
  while (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->alen == alen && x->klen == klen && memcmp(x->addr, a, alen) == 0 &&
        (klen == 0u || memcmp(XKEY(s, i), k, klen) == 0))
      return i;
    i = x->hnext;
  }
  return NONE;
}

static uint32_t bw1_peer_count(tc_bw1 *s, uint32_t pb, const uint8_t *a, uint32_t alen) {
  uint32_t i = PB(s)[pb], n = 0;
  while (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->alen == alen && memcmp(x->addr, a, alen) == 0) n++;
    i = x->pnext;
  }
  return n;
}

static void chain_unlink(uint32_t *head, xfer *xs, uint32_t i, int peer) {
  uint32_t *p = head;
  while (*p != NONE) {
    if (*p == i) {
      *p = peer ? xs[i].pnext : xs[i].hnext;
      return;
    }
    p = peer ? &xs[*p].pnext : &xs[*p].hnext;
  }
}

static void lru_unlink(tc_bw1 *s, uint32_t i) {
  xfer *x = &XS(s)[i];
  if (x->prev != NONE) XS(s)[x->prev].next = x->next;
  else s->lru_head = x->next;
  if (x->next != NONE) XS(s)[x->next].prev = x->prev;
  else s->lru_tail = x->prev;
  x->prev = x->next = NONE;
}

static void lru_push(tc_bw1 *s, uint32_t i, uint64_t now) {
  xfer *x = &XS(s)[i];
  x->active = now;
  x->next = NONE;
  x->prev = s->lru_tail;
  if (s->lru_tail != NONE) XS(s)[s->lru_tail].next = i;
  else s->lru_head = i;
  s->lru_tail = i;
}

static void bw1_touch(tc_bw1 *s, uint32_t i, uint64_t now) {
  lru_unlink(s, i);
  lru_push(s, i, now);
}

static void bw1_free_chunks(tc_bw1 *s, uint32_t i) {
  xfer *x = &XS(s)[i];
  uint32_t c = x->head;
  while (c != NONE) {
    uint32_t n = NX(s)[c];
    pool_put(&s->pl, NX(s), c);
    c = n;
  }
  x->head = x->tail = NONE;
  x->received = 0;
}

static void bw1_release(tc_bw1 *s, uint32_t i) {
  xfer *x = &XS(s)[i];
  bw1_free_chunks(s, i);
  chain_unlink(&KB(s)[x->hb], XS(s), i, 0);
  chain_unlink(&PB(s)[x->pb], XS(s), i, 1);
  lru_unlink(s, i);
  x->state = X_FREE;
  x->gen = (uint16_t)(x->gen + 1u);
  if (x->gen == 0) x->gen = 1;
  x->next = s->x_free;
  s->x_free = i;
  s->x_count--;
}

/* Chunks needed to append len bytes to an upload holding `received` bytes in chunks of C. */
static uint32_t bw1_chunks_needed(const tc_bw1 *s, uint32_t received, uint32_t len) {
  uint32_t c = s->cfg.chunk_size;
  uint32_t room = (received & (c - 1u)) ? c - (received & (c - 1u)) : 0u;
  if (len <= room) return 0;
  return (len - room + c - 1u) >> s->pl.shift;
}

static void bw1_append(tc_bw1 *s, uint32_t i, const uint8_t *p, uint32_t len) {
  xfer *x = &XS(s)[i];
  uint32_t c = s->cfg.chunk_size;
  while (len > 0u) {
    uint32_t fill = x->received & (c - 1u), n;
    if (fill == 0u) {
      uint32_t k = pool_alloc(&s->pl, NX(s));
      if (x->tail == NONE) x->head = k;
      else NX(s)[x->tail] = k;
      x->tail = k;
    }
    n = c - fill < len ? c - fill : len;
    memcpy(DATA(s, x->tail) + fill, p, n);
    p += n;
    len -= n;
    x->received += n;
  }
}

static inline uint32_t bw1_id(tc_bw1 *s, uint32_t i) {
  return (uint32_t)XS(s)[i].gen << 16 | i;
}

static int bw1_lookup(const tc_bw1 *s, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFu;
  const xfer *x;
  if (i >= s->cfg.max_transfers) return TC_E_STALE;
  x = &((const xfer *)(const void *)((const uint8_t *)s + s->off_x))[i];
  if (x->state == X_FREE || x->gen != (id >> 16)) return TC_E_STALE;
  *slot = i;
  return 0;
}

static uint32_t bw1_resp_szx(const tc_bw1 *s, uint32_t szx) {
  uint32_t p = s->cfg.preferred_szx;
  if (szx == TC_SZX_BERT) return p >= 6u ? TC_SZX_BERT : p;
  return szx < p ? szx : p;
}

static int bw1_reject(tc_bw1 *s, tc_bw1_result *r, uint32_t code) {
  r->status = TC_BW1_REJECT;
  r->code = code;
  if (code == TC_CODE_TOO_LARGE) {
    r->flags |= TC_BW1F_SIZE1;
    r->size1 = s->cfg.max_body;
    s->st.too_large++;
  } else if (code == TC_CODE_UNAVAILABLE) {
    r->flags |= TC_BW1F_MAX_AGE;
    r->max_age = s->cfg.busy_max_age;
    s->st.busy++;
  } else if (code == TC_CODE_INCOMPLETE) {
    s->st.incomplete++;
  } else {
    s->st.bad++;
  }
  return TC_BW1_REJECT;
}

int tc_bw1_feed(tc_bw1 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                const uint8_t *key, uint32_t key_len, uint32_t block1, uint32_t flags,
                uint32_t size1, const uint8_t *payload, uint32_t payload_len,
                tc_bw1_result *r) {
  tc_block b;
  uint32_t bsize, off, i, rszx, need;
  uint64_t h, ph;
  if (r != NULL) memset(r, 0, sizeof *r);
  if (!bw1_ok(s) || r == NULL || !addr_ok(peer, peer_len) || (key == NULL && key_len != 0u) ||
      tc_block_from_value(block1, &b) < 0 ||
      (payload == NULL && payload_len != 0u) ||
      (flags & ~(TC_BW_BERT | TC_BW_HAS_SIZE1)) != 0u)
    return TC_E_INVALID;
  if (key_len > s->cfg.max_key) { /* URI and options too long to track: 4.13 without Size1 */
    s->st.too_large++;
    r->status = TC_BW1_REJECT;
    r->code = TC_CODE_TOO_LARGE;
    return TC_BW1_REJECT;
  }
  if (b.szx == TC_SZX_BERT && !(flags & TC_BW_BERT)) return bw1_reject(s, r, TC_CODE_BAD_REQUEST);
  bsize = tc_szx_size(b.szx);
  if (b.szx == TC_SZX_BERT) {
    if (b.more && (payload_len == 0u || (payload_len & 1023u) != 0u))
      return bw1_reject(s, r, TC_CODE_BAD_REQUEST);
  } else if (b.more ? payload_len != bsize : payload_len > bsize) {
    return bw1_reject(s, r, TC_CODE_BAD_REQUEST);
  }
  off = b.num * bsize; /* < 2^30 */
  rszx = bw1_resp_szx(s, b.szx);
  h = bw1_hash(s, peer, peer_len, key, key_len);
  ph = bw1_hash(s, peer, peer_len, NULL, 0);
  i = bw1_find(s, h, peer, peer_len, key, key_len);

  if ((flags & TC_BW_HAS_SIZE1) && size1 > s->cfg.max_body) {
    if (i != NONE) bw1_release(s, i);
    return bw1_reject(s, r, TC_CODE_TOO_LARGE);
  }
  if (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->received != 0u && off == x->last_off && payload_len == x->last_len &&
        b.more == x->last_more && x->received == off + payload_len &&
        (b.more ? x->state == X_OPEN : x->state == X_DONE)) {
      /* a repetition of the last block: answer as before */
      s->st.duplicates++;
      bw1_touch(s, i, now);
      r->flags = TC_BW1F_BLOCK1 | TC_BW1F_DUPLICATE;
      r->block1 = tc_block_value(b.num, b.more, rszx);
      if (b.more) {
        r->status = TC_BW1_CONTINUE;
        r->code = TC_CODE_CONTINUE;
      } else {
        r->status = TC_BW1_COMPLETE;
        r->id = bw1_id(s, i);
        r->body_length = x->received;
      }
      return (int)r->status;
    }
    if (b.num == 0u) {
      if (!b.more) {
        bw1_release(s, i);
        i = NONE;
      } else {
        bw1_free_chunks(s, i); /* the client starts over */
        x->state = X_OPEN;
        x->last_len = x->last_off = x->last_num = 0;
      }
    } else if (x->state != X_OPEN || off != x->received) {
      if (!b.more || x->state != X_OPEN) bw1_release(s, i); /* the transfer failed */
      return bw1_reject(s, r, TC_CODE_INCOMPLETE);
    }
  } else if (b.num != 0u) {
    return bw1_reject(s, r, TC_CODE_INCOMPLETE);
  }

  if (i == NONE && !b.more) { /* NUM 0, M 0: the whole body in one request */
    if (payload_len > s->cfg.max_body) return bw1_reject(s, r, TC_CODE_TOO_LARGE);
    r->status = TC_BW1_WHOLE;
    r->flags = TC_BW1F_BLOCK1;
    r->block1 = tc_block_value(0, 0, rszx);
    r->body_length = payload_len;
    return TC_BW1_WHOLE;
  }
  if ((uint64_t)off + payload_len > s->cfg.max_body) {
    if (i != NONE) bw1_release(s, i);
    return bw1_reject(s, r, TC_CODE_TOO_LARGE);
  }
  need = bw1_chunks_needed(s, i == NONE ? 0u : XS(s)[i].received, payload_len);
  if (need > pool_free_count(&s->pl)) return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
  if (i == NONE) {
    xfer *x;
    uint32_t pb = (uint32_t)(ph & s->pmask);
    if (s->x_free == NONE || bw1_peer_count(s, pb, peer, peer_len) >= s->cfg.max_per_peer)
      return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
    i = s->x_free;
    x = &XS(s)[i];
    s->x_free = x->next;
    s->x_count++;
    memcpy(x->addr, peer, peer_len);
    x->alen = (uint8_t)peer_len;
    x->klen = key_len;
    if (key_len) memcpy(XKEY(s, i), key, key_len);
    x->state = X_OPEN;
    x->head = x->tail = NONE;
    x->received = 0;
    x->hb = (uint32_t)(h & s->kmask);
    x->hnext = KB(s)[x->hb];
    KB(s)[x->hb] = i;
    x->pb = pb;
    x->pnext = PB(s)[pb];
    PB(s)[pb] = i;
    x->prev = x->next = NONE;
    lru_push(s, i, now);
  }
  bw1_append(s, i, payload, payload_len);
  {
    xfer *x = &XS(s)[i];
    x->last_off = off;
    x->last_len = payload_len;
    x->last_more = (uint8_t)b.more;
    x->last_num = b.num;
    x->last_szx = b.szx;
    bw1_touch(s, i, now);
    r->flags = TC_BW1F_BLOCK1;
    r->block1 = tc_block_value(b.num, b.more, rszx);
    if (b.more) {
      r->status = TC_BW1_CONTINUE;
      r->code = TC_CODE_CONTINUE;
      return TC_BW1_CONTINUE;
    }
    x->state = X_DONE;
    s->st.completed++;
    r->status = TC_BW1_COMPLETE;
    r->id = bw1_id(s, i);
    r->body_length = x->received;
    return TC_BW1_COMPLETE;
  }
}

/* Append an option (number, value bytes) whose value is written at buf[*w]. */
static int put_opt(tc_opt *opts, uint32_t *n, uint32_t cap, uint32_t number, uint8_t *buf,
                   uint32_t *w, uint32_t bufcap, const uint8_t *val, uint32_t len) {
  if (*n >= cap) return TC_E_BUFFER_TOO_SMALL;
  if (len > bufcap - *w) return TC_E_BUFFER_TOO_SMALL;
  if (len) memcpy(buf + *w, val, len);
  opts[*n].number = number;
  opts[*n].offset = *w;
  opts[*n].length = len;
  (*n)++;
  *w += len;
  return 0;
}

static int put_uint_opt(tc_opt *opts, uint32_t *n, uint32_t cap, uint32_t number, uint8_t *buf,
                        uint32_t *w, uint32_t bufcap, uint32_t v) {
  uint8_t t[4];
  int len = tc_uint_encode(v, t);
  return put_opt(opts, n, cap, number, buf, w, bufcap, t, (uint32_t)len);
}

int tc_bw1_response(const tc_bw1_result *res, tc_msg *msg, tc_opt *opts, uint32_t opt_cap,
                    uint8_t *buf, uint32_t cap) {
  uint32_t n = 0, w = 0;
  const char *diag = NULL;
  int e = 0;
  if (res == NULL || msg == NULL || buf == NULL || (opts == NULL && opt_cap != 0u) ||
      (res->status != TC_BW1_CONTINUE && res->status != TC_BW1_REJECT) || res->code > 255u)
    return TC_E_INVALID;
  memset(msg, 0, sizeof *msg);
  msg->code = res->code;
  if (res->flags & TC_BW1F_BLOCK1)
    e = put_uint_opt(opts, &n, opt_cap, TC_OPT_BLOCK1, buf, &w, cap, res->block1);
  if (e == 0 && (res->flags & TC_BW1F_MAX_AGE))
    e = put_uint_opt(opts, &n, opt_cap, TC_OPT_MAX_AGE, buf, &w, cap, res->max_age);
  if (e == 0 && (res->flags & TC_BW1F_SIZE1))
    e = put_uint_opt(opts, &n, opt_cap, TC_OPT_SIZE1, buf, &w, cap, res->size1);
  if (e < 0) return e;
  switch (res->code) {
  case TC_CODE_BAD_REQUEST: diag = "bad block"; break;
  case TC_CODE_INCOMPLETE: diag = "block missing"; break;
  case TC_CODE_TOO_LARGE: diag = "body too large"; break;
  case TC_CODE_UNAVAILABLE: diag = "busy"; break;
  default: break;
  }
  msg->option_count = n;
  msg->payload_offset = w;
  if (diag != NULL) {
    uint32_t dl = (uint32_t)strlen(diag);
    if (dl > cap - w) return TC_E_BUFFER_TOO_SMALL;
    memcpy(buf + w, diag, dl);
    msg->payload_length = dl;
    w += dl;
  }
  return (int)w;
}

int tc_bw1_read(tc_bw1 *s, uint32_t id, uint8_t *out, uint32_t cap) {
  uint32_t i, c, left, w = 0;
  xfer *x;
  if (!bw1_ok(s) || (out == NULL && cap != 0u)) return TC_E_INVALID;
  if (bw1_lookup(s, id, &i) < 0) return TC_E_STALE;
  x = &XS(s)[i];
  if (x->state != X_DONE) return TC_E_STALE;
  if (x->received > cap) return TC_E_BUFFER_TOO_SMALL;
  if (x->received > 0x7FFFFFFFu) return TC_E_INVALID;
  left = x->received;
  for (c = x->head; c != NONE && left > 0u; c = NX(s)[c]) {
    uint32_t n = left < s->cfg.chunk_size ? left : s->cfg.chunk_size;
    memcpy(out + w, DATA(s, c), n);
    w += n;
    left -= n;
  }
  bw1_release(s, i);
  return (int)w;
}

int tc_bw1_release(tc_bw1 *s, uint32_t id) {
  uint32_t i;
  if (!bw1_ok(s)) return TC_E_INVALID;
  if (bw1_lookup(s, id, &i) < 0) return TC_E_STALE;
  bw1_release(s, i);
  return 0;
}

int tc_bw1_timer(tc_bw1 *s, uint64_t now) {
  int n = 0;
  if (!bw1_ok(s)) return TC_E_INVALID;
  while (s->lru_head != NONE &&
         add_sat(XS(s)[s->lru_head].active, s->cfg.idle_timeout_ms) <= now) {
    bw1_release(s, s->lru_head);
    s->st.expired++;
    n++;
  }
  return n;
}

uint64_t tc_bw1_next_deadline(const tc_bw1 *s) {
  const xfer *x;
  if (!bw1_ok(s) || s->lru_head == NONE) return NEVER;
  x = &((const xfer *)(const void *)((const uint8_t *)s + s->off_x))[s->lru_head];
  return add_sat(x->active, s->cfg.idle_timeout_ms);
}

void tc_bw1_get_stats(const tc_bw1 *s, tc_bw1_stats *out) {
  if (out == NULL) return;
  if (!bw1_ok(s)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = s->st;
  out->transfers = s->x_count;
  out->chunks_used = s->pl.used;
  out->chunks_total = s->pl.nchunks;
}

/* ============================================================ Block2 store */

typedef struct rep {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen; /* 0: shared */
  uint8_t used;
  uint8_t etag_len;
  uint8_t nopts;
  uint8_t etag[8];
  uint32_t code;
  uint32_t klen;
  uint32_t optlen;
  uint32_t length;
  uint32_t first;   /* one data chunk, or the first index chunk; NONE for an empty body */
  uint32_t nchunks; /* data + index */
  uint32_t hnext, hb;
  uint32_t prev, next; /* LRU (in use) or free list */
  uint16_t gen;
  uint16_t pad;
  uint32_t pad2;
  uint64_t expires;
} rep;

struct tc_bw2 {
  uint32_t magic;
  uint32_t pad;
  tc_bw2_config cfg;
  uint32_t bmask;
  uint32_t r_free, lru_head, lru_tail, r_count;
  uint32_t per_index; /* chunk numbers per index chunk: C / 4 */
  pool pl;
  uint64_t k0, k1;
  uint64_t etag_ctr;
  uint64_t next_expiry; /* lower bound of every live representation's expiry */
  uint64_t off_r, off_b, off_keys, off_opts, off_next, off_data, size;
  tc_bw2_stats st;
};

typedef struct bw2_layout {
  uint64_t off_r, off_b, off_keys, off_opts, off_next, off_data, size;
  uint32_t buckets, nchunks, shift;
} bw2_layout;

static int bw2_config_ok(const tc_bw2_config *c) {
  return c != NULL && c->max_reps >= 1u && c->max_reps <= 65535u && is_pow2(c->chunk_size) &&
         c->chunk_size >= 16u && c->chunk_size <= 65536u && c->pool_bytes >= c->chunk_size &&
         c->pool_bytes <= MAX_POOL && c->pool_bytes / c->chunk_size <= MAX_CHUNKS &&
         c->max_key >= 1u && c->max_key <= 65535u && c->max_opt_bytes <= 65535u &&
         c->max_opts <= 64u && c->preferred_szx <= 6u && c->default_lifetime_ms >= 1u;
}

static int bw2_layout_of(const tc_bw2_config *c, bw2_layout *l) {
  uint64_t o;
  if (!bw2_config_ok(c)) return -1;
  l->buckets = pow2_at_least(c->max_reps);
  l->nchunks = c->pool_bytes / c->chunk_size;
  l->shift = log2u(c->chunk_size);
  o = up8(sizeof(struct tc_bw2));
  l->off_r = o;
  o = up8(o + (uint64_t)c->max_reps * sizeof(rep));
  l->off_b = o;
  o = up8(o + (uint64_t)l->buckets * 4u);
  l->off_keys = o;
  o = up8(o + (uint64_t)c->max_reps * c->max_key);
  l->off_opts = o;
  o = up8(o + (uint64_t)c->max_reps * c->max_opt_bytes);
  l->off_next = o;
  o = up8(o + (uint64_t)l->nchunks * 4u);
  l->off_data = o;
  o = up8(o + (uint64_t)l->nchunks * c->chunk_size);
  l->size = o;
  if (o > (uint64_t)SIZE_MAX) return -1;
  return 0;
}

void tc_bw2_config_default(tc_bw2_config *c) {
  if (c == NULL) return;
  c->max_reps = 64;
  c->pool_bytes = 8u << 20;
  c->chunk_size = 1024;
  c->max_key = 256;
  c->max_opt_bytes = 256;
  c->max_opts = 16;
  c->preferred_szx = 6;
  c->default_lifetime_ms = 60000;
}

size_t tc_bw2_size(const tc_bw2_config *cfg) {
  bw2_layout l;
  return bw2_layout_of(cfg, &l) < 0 ? 0 : (size_t)l.size;
}

#define RS(s) ((rep *)(void *)((uint8_t *)(s) + (s)->off_r))
#define CRS(s) ((const rep *)(const void *)((const uint8_t *)(s) + (s)->off_r))
#define RB(s) ((uint32_t *)(void *)((uint8_t *)(s) + (s)->off_b))
#define RKEY(s, i) ((uint8_t *)(s) + (s)->off_keys + (uint64_t)(i) * (s)->cfg.max_key)
#define ROPT(s, i) ((uint8_t *)(s) + (s)->off_opts + (uint64_t)(i) * (s)->cfg.max_opt_bytes)

int tc_bw2_init(tc_bw2 *s, size_t mem_len, const tc_bw2_config *cfg, const uint8_t seed[16]) {
  bw2_layout l;
  uint32_t i;
  if (s == NULL || seed == NULL || bw2_layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)s & 7u) != 0u)
    return TC_E_INVALID;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->k0 = rd64(seed);
  s->k1 = rd64(seed + 8);
  s->off_r = l.off_r;
  s->off_b = l.off_b;
  s->off_keys = l.off_keys;
  s->off_opts = l.off_opts;
  s->off_next = l.off_next;
  s->off_data = l.off_data;
  s->size = l.size;
  s->bmask = l.buckets - 1u;
  s->per_index = cfg->chunk_size / 4u;
  s->next_expiry = NEVER;
  for (i = 0; i < cfg->max_reps; i++) {
    rep *r = &RS(s)[i];
    memset(r, 0, sizeof *r);
    r->gen = 1;
    r->next = i + 1u < cfg->max_reps ? i + 1u : NONE;
  }
  s->r_free = 0;
  s->lru_head = s->lru_tail = NONE;
  for (i = 0; i < l.buckets; i++) RB(s)[i] = NONE;
  pool_init(&s->pl, NX(s), l.nchunks, l.shift);
  s->magic = BW2_MAGIC;
  return 0;
}

static inline int bw2_ok(const tc_bw2 *s) { return s != NULL && s->magic == BW2_MAGIC; }

static uint64_t bw2_hash(const tc_bw2 *s, const uint8_t *a, uint32_t alen, const uint8_t *k,
                         uint32_t klen) {
  sip h;
  uint8_t n = (uint8_t)alen;
  sip_init(&h, s->k0, s->k1);
  sip_add(&h, &n, 1);
  if (alen) sip_add(&h, a, alen);
  sip_add(&h, k, klen);
  return sip_end(&h);
}

static uint32_t bw2_find_exact(tc_bw2 *s, uint64_t h, const uint8_t *a, uint32_t alen,
                               const uint8_t *k, uint32_t klen) {
  uint32_t i = RB(s)[h & s->bmask];
  while (i != NONE) {
    rep *r = &RS(s)[i];
    if (r->alen == alen && r->klen == klen && (alen == 0u || memcmp(r->addr, a, alen) == 0) &&
        (klen == 0u || memcmp(RKEY(s, i), k, klen) == 0))
      return i;
    i = r->hnext;
  }
  return NONE;
}

static void bw2_lru_unlink(tc_bw2 *s, uint32_t i) {
  rep *r = &RS(s)[i];
  if (r->prev != NONE) RS(s)[r->prev].next = r->next;
  else s->lru_head = r->next;
  if (r->next != NONE) RS(s)[r->next].prev = r->prev;
  else s->lru_tail = r->prev;
  r->prev = r->next = NONE;
}

static void bw2_lru_push(tc_bw2 *s, uint32_t i) {
  rep *r = &RS(s)[i];
  r->next = NONE;
  r->prev = s->lru_tail;
  if (s->lru_tail != NONE) RS(s)[s->lru_tail].next = i;
  else s->lru_head = i;
  s->lru_tail = i;
}

static inline uint32_t idx_get(tc_bw2 *s, uint32_t ic, uint32_t j) {
  uint32_t v;
  memcpy(&v, DATA(s, ic) + 4u * j, 4);
  return v;
}

/* Data chunk holding body chunk k of representation r. */
static uint32_t bw2_chunk(tc_bw2 *s, const rep *r, uint32_t k) {
  uint32_t ic = r->first, hops;
  if (r->length <= s->cfg.chunk_size) return r->first;
  for (hops = k / s->per_index; hops > 0u; hops--) ic = NX(s)[ic];
  return idx_get(s, ic, k % s->per_index);
}

/* Data and index chunks for a body of len bytes. */
static uint64_t bw2_chunks_for(const tc_bw2 *s, uint32_t len) {
  uint64_t d = ((uint64_t)len + s->cfg.chunk_size - 1u) >> s->pl.shift;
  if (d <= 1u) return d;
  return d + (d + s->per_index - 1u) / s->per_index;
}

static void bw2_free_body(tc_bw2 *s, rep *r) {
  uint32_t *nx = NX(s);
  if (r->first == NONE) return;
  if (r->length <= s->cfg.chunk_size) {
    pool_put(&s->pl, nx, r->first);
  } else {
    uint32_t d = (r->length + s->cfg.chunk_size - 1u) >> s->pl.shift, k = 0, ic = r->first;
    while (ic != NONE) {
      uint32_t nic = nx[ic], j;
      for (j = 0; j < s->per_index && k < d; j++, k++) pool_put(&s->pl, nx, idx_get(s, ic, j));
      pool_put(&s->pl, nx, ic);
      ic = nic;
    }
  }
  r->first = NONE;
}

static void bw2_release(tc_bw2 *s, uint32_t i) {
  rep *r = &RS(s)[i];
  uint32_t *p = &RB(s)[r->hb];
  bw2_free_body(s, r);
  while (*p != NONE) {
    if (*p == i) {
      *p = r->hnext;
      break;
    }
    p = &RS(s)[*p].hnext;
  }
  bw2_lru_unlink(s, i);
  r->used = 0;
  r->gen = (uint16_t)(r->gen + 1u);
  if (r->gen == 0) r->gen = 1;
  r->next = s->r_free;
  s->r_free = i;
  s->r_count--;
}

static inline uint32_t bw2_id(const tc_bw2 *s, uint32_t i) {
  return (uint32_t)CRS(s)[i].gen << 16 | i;
}

static int bw2_lookup(const tc_bw2 *s, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFu;
  const rep *r;
  if (i >= s->cfg.max_reps) return TC_E_STALE;
  r = &CRS(s)[i];
  if (!r->used || r->gen != (id >> 16)) return TC_E_STALE;
  *slot = i;
  return 0;
}

/* Options a representation stores: all but ETag, Observe, Block1/2, Size1/2. */
static int stored_opt(uint32_t n) {
  return n != TC_OPT_ETAG && n != TC_OPT_OBSERVE && n != TC_OPT_BLOCK1 && n != TC_OPT_BLOCK2 &&
         n != TC_OPT_SIZE1 && n != TC_OPT_SIZE2;
}

/* Serialise the stored options of a response into out (cap bytes); returns bytes or -1. */
static int64_t ser_opts(const tc_msg *resp, const tc_opt *opts, const uint8_t *src, uint8_t *out,
                        uint32_t cap, uint32_t max_opts, uint32_t *count) {
  uint64_t w = 0;
  uint32_t i, n = 0;
  for (i = 0; i < resp->option_count; i++) {
    const tc_opt *o = &opts[i];
    if (!stored_opt(o->number)) continue;
    if (o->number > 65535u || o->length > 65535u || n >= max_opts || w + 4u + o->length > cap)
      return -1;
    if (out != NULL) {
      out[w] = (uint8_t)o->number;
      out[w + 1] = (uint8_t)(o->number >> 8);
      out[w + 2] = (uint8_t)o->length;
      out[w + 3] = (uint8_t)(o->length >> 8);
      if (o->length) memcpy(out + w + 4, src + o->offset, o->length);
    }
    w += 4u + o->length;
    n++;
  }
  *count = n;
  return (int64_t)w;
}

/* Whether the stored options of resp equal the serialised ones in st (stlen bytes). */
static int opts_same(const tc_msg *resp, const tc_opt *opts, const uint8_t *src,
                     const uint8_t *st, uint32_t stlen) {
  uint32_t i, w = 0;
  for (i = 0; i < resp->option_count; i++) {
    const tc_opt *o = &opts[i];
    if (!stored_opt(o->number)) continue;
    if ((uint64_t)w + 4u + o->length > stlen) return 0;
    if (st[w] != (uint8_t)o->number || st[w + 1] != (uint8_t)(o->number >> 8) ||
        st[w + 2] != (uint8_t)o->length || st[w + 3] != (uint8_t)(o->length >> 8))
      return 0;
    if (o->length && memcmp(st + w + 4, src + o->offset, o->length) != 0) return 0;
    w += 4u + o->length;
  }
  return w == stlen;
}

static int bw2_same_body(tc_bw2 *s, const rep *r, const uint8_t *p, uint32_t len) {
  uint32_t k = 0, off = 0;
  if (r->length != len) return 0;
  while (off < len) {
    uint32_t n = len - off < s->cfg.chunk_size ? len - off : s->cfg.chunk_size;
    if (memcmp(DATA(s, bw2_chunk(s, r, k)), p + off, n) != 0) return 0;
    off += n;
    k++;
  }
  return 1;
}

static void bw2_store_body(tc_bw2 *s, rep *r, const uint8_t *p, uint32_t len) {
  uint32_t *nx = NX(s);
  uint32_t d = (len + s->cfg.chunk_size - 1u) >> s->pl.shift, k, ic = NONE, last = NONE;
  r->length = len;
  r->first = NONE;
  if (d == 0u) return;
  if (d == 1u) {
    r->first = pool_alloc(&s->pl, nx);
    memcpy(DATA(s, r->first), p, len);
    return;
  }
  for (k = 0; k < d; k++) {
    uint32_t c, n = len - k * s->cfg.chunk_size;
    if (k % s->per_index == 0u) {
      ic = pool_alloc(&s->pl, nx);
      if (last == NONE) r->first = ic;
      else nx[last] = ic;
      last = ic;
    }
    c = pool_alloc(&s->pl, nx);
    memcpy(DATA(s, ic) + 4u * (k % s->per_index), &c, 4);
    if (n > s->cfg.chunk_size) n = s->cfg.chunk_size;
    memcpy(DATA(s, c), p + k * s->cfg.chunk_size, n);
  }
}

static void bw2_sweep(tc_bw2 *s, uint64_t now) {
  uint32_t i;
  uint64_t t = NEVER;
  for (i = 0; i < s->cfg.max_reps; i++) {
    rep *r = &RS(s)[i];
    if (!r->used) continue;
    if (r->expires <= now) {
      bw2_release(s, i);
      s->st.expired++;
    } else if (r->expires < t) {
      t = r->expires;
    }
  }
  s->next_expiry = t;
}

int tc_bw2_put(tc_bw2 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
               const uint8_t *key, uint32_t key_len, const tc_msg *resp, const tc_opt *opts,
               const uint8_t *src, uint32_t lifetime_ms, uint32_t *id) {
  uint32_t i, cls, nopts, j, etag_len = 0, ex;
  const uint8_t *etag = NULL;
  int64_t ol;
  uint64_t h, need, expires;
  const uint8_t *body;
  rep *r;
  if (!bw2_ok(s) || resp == NULL || (opts == NULL && resp->option_count != 0u) ||
      (peer_len != 0u && !addr_ok(peer, peer_len)) || (key == NULL && key_len != 0u) ||
      (src == NULL && (resp->payload_length != 0u || resp->option_count != 0u)))
    return TC_E_INVALID;
  cls = resp->code >> 5;
  if (resp->code > 255u || (cls != 2u && cls != 4u && cls != 5u)) return TC_E_INVALID;
  if (key_len > s->cfg.max_key) return TC_E_MESSAGE_TOO_LARGE;
  ol = ser_opts(resp, opts, src, NULL, s->cfg.max_opt_bytes, s->cfg.max_opts, &nopts);
  if (ol < 0) return TC_E_MESSAGE_TOO_LARGE;
  need = bw2_chunks_for(s, resp->payload_length);
  if (need > s->pl.nchunks) return TC_E_MESSAGE_TOO_LARGE;
  for (j = 0; j < resp->option_count; j++)
    if (opts[j].number == TC_OPT_ETAG && opts[j].length >= 1u && opts[j].length <= 8u) {
      etag = src + opts[j].offset;
      etag_len = opts[j].length;
      break;
    }
  body = resp->payload_length ? src + resp->payload_offset : NULL;
  expires = add_sat(now, lifetime_ms ? lifetime_ms : s->cfg.default_lifetime_ms);
  h = bw2_hash(s, peer, peer_len, key, key_len);
  i = bw2_find_exact(s, h, peer, peer_len, key, key_len);
  if (i != NONE) {
    r = &RS(s)[i];
    if (r->expires > now && r->code == resp->code && r->nopts == nopts &&
        r->optlen == (uint32_t)ol && (etag == NULL || (etag_len == r->etag_len &&
                                                       memcmp(etag, r->etag, etag_len) == 0))) {
      int same = opts_same(resp, opts, src, ROPT(s, i), r->optlen);
      if (same && bw2_same_body(s, r, body, resp->payload_length)) {
        if (expires > r->expires) r->expires = expires;
        bw2_lru_unlink(s, i);
        bw2_lru_push(s, i);
        s->st.kept++;
        if (id) *id = bw2_id(s, i);
        return 0;
      }
    }
    bw2_release(s, i);
  }
  if (pool_free_count(&s->pl) < need || s->r_free == NONE) bw2_sweep(s, now);
  while (pool_free_count(&s->pl) < need || s->r_free == NONE) {
    bw2_release(s, s->lru_head); /* need <= nchunks, so this ends */
    s->st.evicted++;
  }
  i = s->r_free;
  r = &RS(s)[i];
  s->r_free = r->next;
  s->r_count++;
  r->used = 1;
  r->alen = (uint8_t)peer_len;
  if (peer_len) memcpy(r->addr, peer, peer_len);
  r->klen = key_len;
  if (key_len) memcpy(RKEY(s, i), key, key_len);
  r->code = resp->code;
  (void)ser_opts(resp, opts, src, ROPT(s, i), s->cfg.max_opt_bytes, s->cfg.max_opts, &nopts);
  r->nopts = (uint8_t)nopts;
  r->optlen = (uint32_t)ol;
  if (etag != NULL) {
    memcpy(r->etag, etag, etag_len);
    r->etag_len = (uint8_t)etag_len;
  } else {
    sip e;
    uint8_t ctr[8];
    uint64_t v;
    for (ex = 0; ex < 8u; ex++) ctr[ex] = (uint8_t)(s->etag_ctr >> (8u * ex));
    s->etag_ctr++;
    sip_init(&e, s->k1, s->k0);
    sip_add(&e, ctr, 8);
    v = sip_end(&e);
    for (ex = 0; ex < 8u; ex++) r->etag[ex] = (uint8_t)(v >> (8u * ex));
    r->etag_len = 8;
  }
  bw2_store_body(s, r, body, resp->payload_length);
  r->nchunks = (uint32_t)need;
  r->expires = expires;
  if (expires < s->next_expiry) s->next_expiry = expires;
  r->hb = (uint32_t)(h & s->bmask);
  r->hnext = RB(s)[r->hb];
  RB(s)[r->hb] = i;
  bw2_lru_push(s, i);
  s->st.puts++;
  if (id) *id = bw2_id(s, i);
  return 0;
}

int tc_bw2_find(tc_bw2 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                const uint8_t *key, uint32_t key_len, uint32_t *id) {
  int pass;
  if (!bw2_ok(s) || (peer_len != 0u && !addr_ok(peer, peer_len)) ||
      (key == NULL && key_len != 0u) || id == NULL)
    return TC_E_INVALID;
  if (key_len > s->cfg.max_key) return TC_E_STALE;
  for (pass = peer_len ? 0 : 1; pass < 2; pass++) {
    uint32_t al = pass == 0 ? peer_len : 0u;
    uint64_t h = bw2_hash(s, peer, al, key, key_len);
    uint32_t i = bw2_find_exact(s, h, peer, al, key, key_len);
    if (i == NONE) continue;
    if (RS(s)[i].expires <= now) {
      bw2_release(s, i);
      s->st.expired++;
      continue;
    }
    *id = bw2_id(s, i);
    return 0;
  }
  return TC_E_STALE;
}

static int bw2_error(tc_msg *msg, uint8_t *buf, uint32_t cap, uint32_t code, const char *diag) {
  uint32_t dl = (uint32_t)strlen(diag);
  if (dl > cap) return TC_E_BUFFER_TOO_SMALL;
  memset(msg, 0, sizeof *msg);
  msg->code = code;
  memcpy(buf, diag, dl);
  msg->payload_offset = 0;
  msg->payload_length = dl;
  return (int)dl;
}

int tc_bw2_serve(tc_bw2 *s, uint64_t now, uint32_t id, uint32_t block2, uint32_t flags,
                 uint32_t block1_echo, uint32_t msg_limit, tc_msg *msg, tc_opt *opts,
                 uint32_t opt_cap, uint8_t *buf, uint32_t cap) {
  uint32_t i, n = 0, w = 0, j, rszx, rnum, len, units = 1, block2_at, block2_slot;
  uint64_t off;
  tc_block b;
  rep *r;
  const uint8_t *so;
  int e = 0, bert = 0;
  if (!bw2_ok(s) || msg == NULL || buf == NULL || (opts == NULL && opt_cap != 0u) ||
      (flags & ~(TC_BW_BERT | TC_BW_HAS_BLOCK2 | TC_BW_SIZE2 | TC_BW_ECHO_BLOCK1)) != 0u ||
      ((flags & TC_BW_ECHO_BLOCK1) && block1_echo > 0xFFFFFFu))
    return TC_E_INVALID;
  if (bw2_lookup(s, id, &i) < 0) return TC_E_STALE;
  r = &RS(s)[i];
  if (r->expires <= now) {
    bw2_release(s, i);
    s->st.expired++;
    return TC_E_STALE;
  }
  if (flags & TC_BW_HAS_BLOCK2) {
    if (tc_block_from_value(block2, &b) < 0) return TC_E_INVALID;
  } else {
    b.num = 0;
    b.more = 0;
    b.szx = s->cfg.preferred_szx;
  }
  if (b.szx == TC_SZX_BERT && !(flags & TC_BW_BERT))
    return bw2_error(msg, buf, cap, TC_CODE_BAD_REQUEST, "SZX 7 is reserved");
  off = (uint64_t)b.num * tc_szx_size(b.szx);
  if (off >= r->length && off != 0u)
    return bw2_error(msg, buf, cap, TC_CODE_BAD_OPTION, "Block2 past the end");
  if (b.szx == TC_SZX_BERT && s->cfg.preferred_szx >= 6u) {
    bert = 1;
    rszx = TC_SZX_BERT;
  } else {
    rszx = b.szx < s->cfg.preferred_szx ? b.szx : s->cfg.preferred_szx;
  }

  /* options: stored ones, ETag, Block2 (placeholder of 3 bytes, fixed below), Size2, Block1 */
  memset(msg, 0, sizeof *msg);
  msg->code = r->code;
  so = ROPT(s, i);
  for (j = 0; j < r->nopts && e == 0; j++) {
    uint32_t num = (uint32_t)so[0] | (uint32_t)so[1] << 8, l = (uint32_t)so[2] | (uint32_t)so[3] << 8;
    e = put_opt(opts, &n, opt_cap, num, buf, &w, cap, so + 4, l);
    so += 4u + l;
  }
  if (e == 0) e = put_opt(opts, &n, opt_cap, TC_OPT_ETAG, buf, &w, cap, r->etag, r->etag_len);
  block2_slot = n;
  block2_at = w;
  if (e == 0) {
    static const uint8_t three[3] = {0xFF, 0xFF, 0xFF};
    e = put_opt(opts, &n, opt_cap, TC_OPT_BLOCK2, buf, &w, cap, three, 3);
  }
  if (e == 0 && (off == 0u || (flags & TC_BW_SIZE2)))
    e = put_uint_opt(opts, &n, opt_cap, TC_OPT_SIZE2, buf, &w, cap, r->length);
  if (e == 0 && (flags & TC_BW_ECHO_BLOCK1))
    e = put_uint_opt(opts, &n, opt_cap, TC_OPT_BLOCK1, buf, &w, cap, block1_echo);
  if (e < 0) return e;
  msg->option_count = n;

  if (msg_limit != 0u) {
    /* worst-case framing: 6 header bytes (TCP with extended length) + payload marker */
    tc_msg m = *msg;
    tc_opt tmp[64 + 4];
    int enc;
    uint64_t over;
    if (n > sizeof tmp / sizeof tmp[0]) return TC_E_INVALID;
    memcpy(tmp, opts, n * sizeof(tc_opt));
    m.payload_length = 0;
    enc = tc_encode(NULL, 0, TC_UDP, &m, tmp, buf);
    if (enc < 0) return enc;
    over = (uint64_t)enc - 4u + 7u;
    if (bert) {
      units = over + 1024u <= msg_limit ? (uint32_t)((msg_limit - over) / 1024u) : 0u;
      if (units == 0u) {
        bert = 0;
        rszx = 6;
      }
    }
    if (!bert) {
      while (rszx > 0u && over + tc_szx_size(rszx) > msg_limit) rszx--;
      if (over + tc_szx_size(rszx) > msg_limit) return TC_E_MESSAGE_TOO_LARGE;
    }
  }
  if (bert) {
    rnum = (uint32_t)(off / 1024u);
    len = units * 1024u;
  } else {
    rnum = (uint32_t)(off >> (rszx + 4u));
    len = tc_szx_size(rszx);
  }
  if (rnum > TC_BLOCK_NUM_MAX)
    return bw2_error(msg, buf, cap, TC_CODE_BAD_OPTION, "Block2 NUM too large for SZX");
  if (len > r->length - off) len = r->length - (uint32_t)off;
  {
    uint8_t bv[3];
    tc_block rb;
    int bl;
    rb.num = rnum;
    rb.more = off + len < r->length ? 1u : 0u;
    rb.szx = rszx;
    bl = tc_block_encode(&rb, bv);
    /* the Block2 value shrinks from its 3-byte placeholder: move the later values down */
    memmove(buf + block2_at + (uint32_t)bl, buf + block2_at + 3u, w - block2_at - 3u);
    memcpy(buf + block2_at, bv, (size_t)bl);
    opts[block2_slot].length = (uint32_t)bl;
    for (j = block2_slot + 1u; j < n; j++) opts[j].offset -= 3u - (uint32_t)bl;
    w -= 3u - (uint32_t)bl;
  }
  if (len > cap - w) return TC_E_BUFFER_TOO_SMALL;
  msg->payload_offset = w;
  msg->payload_length = len;
  {
    uint32_t k = (uint32_t)(off >> s->pl.shift), within = (uint32_t)(off & (s->cfg.chunk_size - 1u));
    uint32_t left = len, o = w;
    while (left > 0u) {
      uint32_t c = bw2_chunk(s, r, k), m2 = s->cfg.chunk_size - within;
      if (m2 > left) m2 = left;
      memcpy(buf + o, DATA(s, c) + within, m2);
      o += m2;
      left -= m2;
      within = 0;
      k++;
    }
  }
  w += len;
  bw2_lru_unlink(s, i);
  bw2_lru_push(s, i);
  s->st.served++;
  return (int)w;
}

int tc_bw2_length(const tc_bw2 *s, uint32_t id) {
  uint32_t i;
  if (!bw2_ok(s)) return TC_E_INVALID;
  if (bw2_lookup(s, id, &i) < 0) return TC_E_STALE;
  return (int)CRS(s)[i].length;
}

int tc_bw2_etag(const tc_bw2 *s, uint32_t id, uint8_t out[8]) {
  uint32_t i;
  if (!bw2_ok(s) || out == NULL) return TC_E_INVALID;
  if (bw2_lookup(s, id, &i) < 0) return TC_E_STALE;
  memcpy(out, CRS(s)[i].etag, CRS(s)[i].etag_len);
  return CRS(s)[i].etag_len;
}

int tc_bw2_drop(tc_bw2 *s, uint32_t id) {
  uint32_t i;
  if (!bw2_ok(s)) return TC_E_INVALID;
  if (bw2_lookup(s, id, &i) < 0) return TC_E_STALE;
  bw2_release(s, i);
  return 0;
}

int tc_bw2_timer(tc_bw2 *s, uint64_t now) {
  uint32_t before;
  if (!bw2_ok(s)) return TC_E_INVALID;
  if (now < s->next_expiry) return 0;
  before = s->st.expired;
  bw2_sweep(s, now);
  return (int)(s->st.expired - before);
}

uint64_t tc_bw2_next_deadline(const tc_bw2 *s) {
  if (!bw2_ok(s) || s->r_count == 0u) return NEVER;
  return s->next_expiry;
}

void tc_bw2_get_stats(const tc_bw2 *s, tc_bw2_stats *out) {
  if (out == NULL) return;
  if (!bw2_ok(s)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = s->st;
  out->reps = s->r_count;
  out->chunks_used = s->pl.used;
  out->chunks_total = s->pl.nchunks;
}

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
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define BW1_MAGIC 0x74634231u /* "tcB1" */
#define BW2_MAGIC 0x74634232u /* "tcB2" */
#define MAX_POOL 0x80000000u
#define MAX_CHUNKS (1u << 24)

/* ------------------------------------------------------------------ helpers */

static int is_pow2(uint32_t x) { return x != 0u && (x & (x - 1u)) == 0u; }

static uint32_t log2u(uint32_t x) {
  uint32_t r = 0;
  while (x > 1u) {
    x >>= 1;
    r++;
  }
  return r;
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

/* The chunk-pool and key bounds both stores' configurations share. */
static int pool_config_ok(uint32_t chunk_size, uint32_t pool_bytes, uint32_t max_key) {
  return is_pow2(chunk_size) && chunk_size >= 16u && chunk_size <= 65536u &&
         pool_bytes >= chunk_size && pool_bytes <= MAX_POOL &&
         pool_bytes / chunk_size <= MAX_CHUNKS && max_key >= 1u && max_key <= 65535u;
}

/* Lays out a store's next [N] and data [N * C] from offset o (N = pool_bytes / C); returns
 * the store's size, or 0 if it does not fit in a size_t. */
static uint64_t layout_chunks(uint64_t o, uint32_t chunk_size, uint32_t pool_bytes,
                              uint64_t *off_next, uint64_t *off_data, uint32_t *nchunks,
                              uint32_t *shift) {
  *nchunks = pool_bytes / chunk_size;
  *shift = log2u(chunk_size);
  *off_next = o;
  o = up8(o + (uint64_t)*nchunks * 4u);
  *off_data = o;
  o = up8(o + (uint64_t)*nchunks * chunk_size);
  return o > (uint64_t)SIZE_MAX ? 0u : o;
}

/* ------------------------------------------------------------ keyed slots */

/* Both stores keep a fixed array of slots (xfer, rep), each beginning with this header: the
 * peer and key length it is keyed by, its key-bucket chain, its place on the LRU list (in use)
 * or on the free list, and a generation that makes the ids handed out stale once it is reused.
 * A slot's key is kept at keys + i * max_key. */
typedef struct slot {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t state; /* 0: free */
  uint16_t pad;
  uint32_t klen;
  uint32_t hnext, hb;  /* key index: chain, bucket */
  uint32_t prev, next; /* LRU list (in use) or free list (next) */
  uint16_t gen;
  uint16_t pad2;
} slot;

/* A store's slot lists: free list; LRU list, least recently used first; slots in use. */
typedef struct slot_lists {
  uint32_t free, lru_head, lru_tail, count;
} slot_lists;

/* A store's slot array, keys and key buckets, made afresh for each call (no pointer is stored). */
typedef struct table {
  uint8_t *base;   /* slot 0 */
  size_t stride;   /* bytes per slot */
  uint8_t *keys;   /* max_key bytes per slot */
  uint32_t max_key;
  uint32_t *buckets;
  uint32_t bmask;
  slot_lists *sl;
} table;

#define SLOT(t, i) ((slot *)(void *)((t)->base + (size_t)(i) * (t)->stride))
#define CSLOT(base, stride, i) ((const slot *)(const void *)((base) + (size_t)(i) * (stride)))
#define LINK(t, i, off) ((uint32_t *)(void *)((t)->base + (size_t)(i) * (t)->stride + (off)))

static uint64_t key_hash(uint64_t k0, uint64_t k1, const uint8_t *a, uint32_t alen,
                         const uint8_t *k, uint32_t klen) {
  tc_sip h;
  uint8_t n = (uint8_t)alen;
  tc_sip_init(&h, k0, k1, 1, 3);
  tc_sip_add(&h, &n, 1);
  if (alen) tc_sip_add(&h, a, alen);
  if (klen) tc_sip_add(&h, k, klen);
  return tc_sip_end(&h);
}

static void table_init(const table *t, uint32_t nslots, uint32_t nbuckets) {
  uint32_t i;
  for (i = 0; i < nslots; i++) {
    slot *x = SLOT(t, i);
    memset(x, 0, t->stride);
    x->gen = 1;
    x->next = i + 1u < nslots ? i + 1u : NONE;
  }
  t->sl->free = 0;
  t->sl->lru_head = t->sl->lru_tail = NONE;
  for (i = 0; i < nbuckets; i++) t->buckets[i] = NONE;
}

/* The slot keyed by (a, alen) and (k, klen) in the bucket of hash h, or NONE. */
static uint32_t table_find(const table *t, uint64_t h, const uint8_t *a, uint32_t alen,
                           const uint8_t *k, uint32_t klen) {
  uint32_t i = t->buckets[h & t->bmask];
  while (i != NONE) {
    const slot *x = SLOT(t, i);
    if (x->alen == alen && x->klen == klen && (alen == 0u || memcmp(x->addr, a, alen) == 0) &&
        (klen == 0u || memcmp(t->keys + (uint64_t)i * t->max_key, k, klen) == 0))
      return i;
    i = x->hnext;
  }
  return NONE;
}

/* Removes slot i from the chain at *head, linked by the uint32_t at offset off in each slot. */
static void chain_unlink(const table *t, uint32_t *head, size_t off, uint32_t i) {
  uint32_t *p = head;
  while (*p != NONE) {
    if (*p == i) {
      *p = *LINK(t, i, off);
      return;
    }
    p = LINK(t, *p, off);
  }
}

static void lru_unlink(const table *t, uint32_t i) {
  slot *x = SLOT(t, i);
  if (x->prev != NONE) SLOT(t, x->prev)->next = x->next;
  else t->sl->lru_head = x->next;
  if (x->next != NONE) SLOT(t, x->next)->prev = x->prev;
  else t->sl->lru_tail = x->prev;
  x->prev = x->next = NONE;
}

static void lru_push(const table *t, uint32_t i) {
  slot *x = SLOT(t, i);
  x->next = NONE;
  x->prev = t->sl->lru_tail;
  if (t->sl->lru_tail != NONE) SLOT(t, t->sl->lru_tail)->next = i;
  else t->sl->lru_head = i;
  t->sl->lru_tail = i;
}

/* Takes a slot off the free list (the caller saw it is not empty), keys it by (a, alen) and
 * (k, klen) and puts it in the bucket of hash h; the caller sets its state and LRU place. */
static uint32_t table_take(const table *t, uint64_t h, const uint8_t *a, uint32_t alen,
                           const uint8_t *k, uint32_t klen) {
  uint32_t i = t->sl->free;
  slot *x = SLOT(t, i);
  t->sl->free = x->next;
  t->sl->count++;
  x->alen = (uint8_t)alen;
  if (alen) memcpy(x->addr, a, alen);
  x->klen = klen;
  if (klen) memcpy(t->keys + (uint64_t)i * t->max_key, k, klen);
  x->hb = (uint32_t)(h & t->bmask);
  x->hnext = t->buckets[x->hb];
  t->buckets[x->hb] = i;
  return i;
}

/* Unlinks slot i from its key bucket and the LRU list and frees it under a new generation. */
static void table_release(const table *t, uint32_t i) {
  slot *x = SLOT(t, i);
  chain_unlink(t, &t->buckets[x->hb], offsetof(slot, hnext), i);
  lru_unlink(t, i);
  x->state = 0;
  x->gen = (uint16_t)(x->gen + 1u);
  if (x->gen == 0) x->gen = 1;
  x->next = t->sl->free;
  t->sl->free = i;
  t->sl->count--;
}

static inline uint32_t slot_id(const uint8_t *base, size_t stride, uint32_t i) {
  return (uint32_t)CSLOT(base, stride, i)->gen << 16 | i;
}

/* The slot of a live id among n slots, or TC_E_STALE. */
static int slot_lookup(const uint8_t *base, size_t stride, uint32_t n, uint32_t id,
                       uint32_t *out) {
  uint32_t i = id & 0xFFFFu;
  const slot *x;
  if (i >= n) return TC_E_STALE;
  x = CSLOT(base, stride, i);
  if (x->state == 0u || x->gen != (id >> 16)) return TC_E_STALE;
  *out = i;
  return 0;
}

/* ============================================================ Block1 store */

enum { X_FREE = 0, X_OPEN = 1, X_DONE = 2 };

typedef struct xfer {
  slot h;             /* state: X_FREE, X_OPEN or X_DONE */
  uint32_t pnext, pb; /* peer index */
  uint32_t head, tail; /* chunk chain */
  uint32_t received;
  uint32_t last_off, last_len, last_num, last_szx;
  uint8_t last_more;
  uint8_t pad[3];
  uint64_t active;
} xfer;

struct tc_bw1 {
  uint32_t magic;
  uint32_t pad;
  tc_bw1_config cfg;
  uint32_t kmask, pmask;
  slot_lists sl;
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
         c->max_body <= (1u << 30) && pool_config_ok(c->chunk_size, c->pool_bytes, c->max_key) &&
         c->idle_timeout_ms >= 1u && c->preferred_szx <= 6u && c->max_per_host >= 1u &&
         (c->port_offset == TC_NO_PORT || c->port_offset <= TC_ADDR_MAX - 2u) &&
         c->reclaim_idle_ms >= 1u;
}

static int bw1_layout_of(const tc_bw1_config *c, bw1_layout *l) {
  uint64_t o;
  if (!bw1_config_ok(c)) return -1;
  l->kbuckets = pow2_at_least(c->max_transfers);
  o = up8(sizeof(struct tc_bw1));
  l->off_x = o;
  o = up8(o + (uint64_t)c->max_transfers * sizeof(xfer));
  l->off_kb = o;
  o = up8(o + (uint64_t)l->kbuckets * 4u);
  l->off_pb = o;
  o = up8(o + (uint64_t)l->kbuckets * 4u);
  l->off_keys = o;
  o = up8(o + (uint64_t)c->max_transfers * c->max_key);
  l->size = layout_chunks(o, c->chunk_size, c->pool_bytes, &l->off_next, &l->off_data,
                          &l->nchunks, &l->shift);
  return l->size == 0u ? -1 : 0;
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
  c->max_per_host = 16;
  c->port_offset = 1;
  c->reclaim_idle_ms = 10000;
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

static table bw1_table(tc_bw1 *s) {
  table t = {.base = (uint8_t *)XS(s), .stride = sizeof(xfer), .keys = XKEY(s, 0),
             .max_key = s->cfg.max_key, .buckets = KB(s), .bmask = s->kmask, .sl = &s->sl};
  return t;
}

int tc_bw1_init(tc_bw1 *s, size_t mem_len, const tc_bw1_config *cfg, const uint8_t seed[16]) {
  bw1_layout l;
  table t;
  uint32_t i;
  if (s == NULL || seed == NULL || bw1_layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)s & 7u) != 0u)
    return TC_E_INVALID;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->k0 = rd64le(seed);
  s->k1 = rd64le(seed + 8);
  s->off_x = l.off_x;
  s->off_kb = l.off_kb;
  s->off_pb = l.off_pb;
  s->off_keys = l.off_keys;
  s->off_next = l.off_next;
  s->off_data = l.off_data;
  s->size = l.size;
  s->kmask = l.kbuckets - 1u;
  s->pmask = l.kbuckets - 1u;
  t = bw1_table(s);
  table_init(&t, cfg->max_transfers, l.kbuckets);
  for (i = 0; i < l.kbuckets; i++) PB(s)[i] = NONE;
  pool_init(&s->pl, NX(s), l.nchunks, l.shift);
  s->magic = BW1_MAGIC;
  return 0;
}

static inline int bw1_ok(const tc_bw1 *s) { return s != NULL && s->magic == BW1_MAGIC; }

static uint32_t bw1_peer_count(tc_bw1 *s, uint32_t pb, const uint8_t *a, uint32_t alen) {
  uint32_t i = PB(s)[pb], n = 0;
  while (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->h.alen == alen && memcmp(x->h.addr, a, alen) == 0) n++;
    i = x->pnext;
  }
  return n;
}

/* The host of an address: its port (2 bytes at port_offset) zeroed. */
static void bw1_host_of(const tc_bw1 *s, const uint8_t *a, uint32_t alen, uint8_t *out) {
  uint32_t p = s->cfg.port_offset;
  memcpy(out, a, alen);
  if (p != TC_NO_PORT && p + 2u <= alen) out[p] = out[p + 1u] = 0;
}

/* Uploads of host (a, alen: an address with its port zeroed) in the peer index bucket pb (the
 * index is keyed by host, so a host's uploads share a bucket). */
static uint32_t bw1_host_count(tc_bw1 *s, uint32_t pb, const uint8_t *host, uint32_t alen) {
  uint32_t i = PB(s)[pb], n = 0;
  uint8_t h[TC_ADDR_MAX];
  while (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->h.alen == alen) {
      bw1_host_of(s, x->h.addr, alen, h);
      if (memcmp(h, host, alen) == 0) n++;
    }
    i = x->pnext;
  }
  return n;
}

static void bw1_release(tc_bw1 *s, uint32_t i);

/* Makes room by dropping a stalled upload (open, idle >= reclaim_idle_ms, not `keep`): the
 * least recently active one of the host holding the most uploads, so that one host cannot
 * keep everyone else out. Returns 1 if one was dropped. */
static int bw1_reclaim(tc_bw1 *s, uint64_t now, uint32_t keep) {
  uint32_t i, best = NONE, best_n = 0;
  uint8_t h[TC_ADDR_MAX];
  for (i = s->sl.lru_head; i != NONE; i = XS(s)[i].h.next) { /* least recently active first */
    xfer *x = &XS(s)[i];
    uint32_t n;
    if (now < x->active || now - x->active < s->cfg.reclaim_idle_ms) break;
    if (x->h.state != X_OPEN || i == keep) continue;
    bw1_host_of(s, x->h.addr, x->h.alen, h);
    n = bw1_host_count(s, x->pb, h, x->h.alen);
    if (n > best_n) {
      best = i;
      best_n = n;
    }
  }
  if (best == NONE) return 0;
  bw1_release(s, best);
  s->st.reclaimed++;
  return 1;
}

static void bw1_touch(tc_bw1 *s, uint32_t i, uint64_t now) {
  table t = bw1_table(s);
  lru_unlink(&t, i);
  XS(s)[i].active = now;
  lru_push(&t, i);
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
  table t = bw1_table(s);
  bw1_free_chunks(s, i);
  chain_unlink(&t, &PB(s)[XS(s)[i].pb], offsetof(xfer, pnext), i);
  table_release(&t, i); /* state X_FREE */
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

#define CXS(s) ((const uint8_t *)(s) + (s)->off_x)

static inline uint32_t bw1_id(const tc_bw1 *s, uint32_t i) {
  return slot_id(CXS(s), sizeof(xfer), i);
}

static int bw1_lookup(const tc_bw1 *s, uint32_t id, uint32_t *i) {
  return slot_lookup(CXS(s), sizeof(xfer), s->cfg.max_transfers, id, i);
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

static int bw1_feed(tc_bw1 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                    const uint8_t *key, uint32_t key_len, uint32_t block1, uint32_t flags,
                    uint32_t size1, const uint8_t *payload, uint32_t payload_len,
                    tc_bw1_result *r) {
  tc_block b;
  uint32_t bsize, off, i, rszx, need;
  uint64_t h, ph;
  uint8_t host[TC_ADDR_MAX];
  table t;
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
  t = bw1_table(s);
  h = key_hash(s->k0, s->k1, peer, peer_len, key, key_len);
  bw1_host_of(s, peer, peer_len, host);
  ph = key_hash(s->k0, s->k1, host, peer_len, NULL, 0);
  i = table_find(&t, h, peer, peer_len, key, key_len);

  if ((flags & TC_BW_HAS_SIZE1) && size1 > s->cfg.max_body) {
    if (i != NONE) bw1_release(s, i);
    return bw1_reject(s, r, TC_CODE_TOO_LARGE);
  }
  if (i != NONE) {
    xfer *x = &XS(s)[i];
    if (x->received != 0u && off == x->last_off && payload_len == x->last_len &&
        b.more == x->last_more && x->received == off + payload_len &&
        (b.more ? x->h.state == X_OPEN : x->h.state == X_DONE)) {
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
        x->h.state = X_OPEN;
        x->last_len = x->last_off = x->last_num = 0;
      }
    } else if (x->h.state != X_OPEN || off != x->received) {
      if (!b.more || x->h.state != X_OPEN) bw1_release(s, i); /* the transfer failed */
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
  while (need > pool_free_count(&s->pl) && bw1_reclaim(s, now, i)) {
  }
  if (need > pool_free_count(&s->pl)) return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
  if (i == NONE) {
    xfer *x;
    uint32_t pb = (uint32_t)(ph & s->pmask);
    if (bw1_peer_count(s, pb, peer, peer_len) >= s->cfg.max_per_peer)
      return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
    if (bw1_host_count(s, pb, host, peer_len) >= s->cfg.max_per_host) {
      s->st.refused_host++;
      return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
    }
    if (s->sl.free == NONE && !bw1_reclaim(s, now, NONE))
      return bw1_reject(s, r, TC_CODE_UNAVAILABLE);
    i = table_take(&t, h, peer, peer_len, key, key_len);
    x = &XS(s)[i];
    x->h.state = X_OPEN;
    x->head = x->tail = NONE;
    x->received = 0;
    x->pb = pb;
    x->pnext = PB(s)[pb];
    PB(s)[pb] = i;
    x->active = now;
    lru_push(&t, i);
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
    x->h.state = X_DONE;
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
  if (x->h.state != X_DONE) return TC_E_STALE;
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
  while (s->sl.lru_head != NONE &&
         add_sat(XS(s)[s->sl.lru_head].active, s->cfg.idle_timeout_ms) <= now) {
    bw1_release(s, s->sl.lru_head);
    s->st.expired++;
    n++;
  }
  return n;
}

uint64_t tc_bw1_next_deadline(const tc_bw1 *s) {
  const xfer *x;
  if (!bw1_ok(s) || s->sl.lru_head == NONE) return NEVER;
  x = &((const xfer *)(const void *)CXS(s))[s->sl.lru_head];
  return add_sat(x->active, s->cfg.idle_timeout_ms);
}

void tc_bw1_get_stats(const tc_bw1 *s, tc_bw1_stats *out) {
  if (out == NULL) return;
  if (!bw1_ok(s)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = s->st;
  out->transfers = s->sl.count;
  out->chunks_used = s->pl.used;
  out->chunks_total = s->pl.nchunks;
}

/* ============================================================ Block2 store */

typedef struct rep {
  slot h; /* alen 0: shared; state 1: in use */
  uint8_t etag[8];
  uint8_t etag_len;
  uint8_t nopts;
  uint16_t pad;
  uint32_t code;
  uint32_t optlen;
  uint32_t length;
  uint32_t first;   /* one data chunk, or the first index chunk; NONE for an empty body */
  uint32_t nchunks; /* data + index */
  uint64_t expires;
  uint64_t fresh_until; /* stored + its Max-Age (explicit, > 0), else 0 */
} rep;

struct tc_bw2 {
  uint32_t magic;
  uint32_t pad;
  tc_bw2_config cfg;
  uint32_t bmask;
  slot_lists sl;
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
  return c != NULL && c->max_reps >= 1u && c->max_reps <= 65535u &&
         pool_config_ok(c->chunk_size, c->pool_bytes, c->max_key) &&
         c->max_opt_bytes <= 65535u && c->max_opts <= 64u && c->preferred_szx <= 6u &&
         c->default_lifetime_ms >= 1u;
}

static int bw2_layout_of(const tc_bw2_config *c, bw2_layout *l) {
  uint64_t o;
  if (!bw2_config_ok(c)) return -1;
  l->buckets = pow2_at_least(c->max_reps);
  o = up8(sizeof(struct tc_bw2));
  l->off_r = o;
  o = up8(o + (uint64_t)c->max_reps * sizeof(rep));
  l->off_b = o;
  o = up8(o + (uint64_t)l->buckets * 4u);
  l->off_keys = o;
  o = up8(o + (uint64_t)c->max_reps * c->max_key);
  l->off_opts = o;
  o = up8(o + (uint64_t)c->max_reps * c->max_opt_bytes);
  l->size = layout_chunks(o, c->chunk_size, c->pool_bytes, &l->off_next, &l->off_data,
                          &l->nchunks, &l->shift);
  return l->size == 0u ? -1 : 0;
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

static table bw2_table(tc_bw2 *s) {
  table t = {.base = (uint8_t *)RS(s), .stride = sizeof(rep), .keys = RKEY(s, 0),
             .max_key = s->cfg.max_key, .buckets = RB(s), .bmask = s->bmask, .sl = &s->sl};
  return t;
}

int tc_bw2_init(tc_bw2 *s, size_t mem_len, const tc_bw2_config *cfg, const uint8_t seed[16]) {
  bw2_layout l;
  table t;
  if (s == NULL || seed == NULL || bw2_layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)s & 7u) != 0u)
    return TC_E_INVALID;
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->k0 = rd64le(seed);
  s->k1 = rd64le(seed + 8);
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
  t = bw2_table(s);
  table_init(&t, cfg->max_reps, l.buckets);
  pool_init(&s->pl, NX(s), l.nchunks, l.shift);
  s->magic = BW2_MAGIC;
  return 0;
}

static inline int bw2_ok(const tc_bw2 *s) { return s != NULL && s->magic == BW2_MAGIC; }

static uint32_t bw2_find_exact(tc_bw2 *s, const uint8_t *a, uint32_t alen, const uint8_t *k,
                               uint32_t klen, uint64_t *h) {
  table t = bw2_table(s);
  *h = key_hash(s->k0, s->k1, a, alen, k, klen);
  return table_find(&t, *h, a, alen, k, klen);
}

static void bw2_touch(tc_bw2 *s, uint32_t i) {
  table t = bw2_table(s);
  lru_unlink(&t, i);
  lru_push(&t, i);
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
  table t = bw2_table(s);
  bw2_free_body(s, &RS(s)[i]);
  table_release(&t, i);
}

static inline uint32_t bw2_id(const tc_bw2 *s, uint32_t i) {
  return slot_id((const uint8_t *)CRS(s), sizeof(rep), i);
}

static int bw2_lookup(const tc_bw2 *s, uint32_t id, uint32_t *i) {
  return slot_lookup((const uint8_t *)CRS(s), sizeof(rep), s->cfg.max_reps, id, i);
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
    if (!r->h.state) continue;
    if (r->expires <= now) {
      bw2_release(s, i);
      s->st.expired++;
    } else if (r->expires < t) {
      t = r->expires;
    }
  }
  s->next_expiry = t;
}

static int bw2_put(tc_bw2 *s, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                   const uint8_t *key, uint32_t key_len, const tc_msg *resp, const tc_opt *opts,
                   const uint8_t *src, uint32_t lifetime_ms, uint32_t *id) {
  uint32_t i, cls, nopts, j, etag_len = 0, ex;
  const uint8_t *etag = NULL;
  int64_t ol;
  uint64_t h, need, expires, fresh;
  const uint8_t *body;
  rep *r;
  table t;
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
  {
    uint32_t ma = 0;
    for (j = 0; j < resp->option_count; j++)
      if (opts[j].number == TC_OPT_MAX_AGE && tc_uint_decode(src + opts[j].offset, opts[j].length,
                                                             &ma) == 0)
        break;
    fresh = ma ? add_sat(now, (uint64_t)ma * 1000u) : 0u;
  }
  i = bw2_find_exact(s, peer, peer_len, key, key_len, &h);
  if (i != NONE) {
    r = &RS(s)[i];
    if (r->expires > now && r->code == resp->code && r->nopts == nopts &&
        r->optlen == (uint32_t)ol && (etag == NULL || (etag_len == r->etag_len &&
                                                       memcmp(etag, r->etag, etag_len) == 0))) {
      int same = opts_same(resp, opts, src, ROPT(s, i), r->optlen);
      if (same && bw2_same_body(s, r, body, resp->payload_length)) {
        if (expires > r->expires) r->expires = expires;
        r->fresh_until = fresh;
        bw2_touch(s, i);
        s->st.kept++;
        if (id) *id = bw2_id(s, i);
        return 0;
      }
    }
    bw2_release(s, i);
  }
  if (pool_free_count(&s->pl) < need || s->sl.free == NONE) bw2_sweep(s, now);
  while (pool_free_count(&s->pl) < need || s->sl.free == NONE) {
    bw2_release(s, s->sl.lru_head); /* need <= nchunks, so this ends */
    s->st.evicted++;
  }
  t = bw2_table(s);
  i = table_take(&t, h, peer, peer_len, key, key_len);
  r = &RS(s)[i];
  r->h.state = 1;
  r->code = resp->code;
  (void)ser_opts(resp, opts, src, ROPT(s, i), s->cfg.max_opt_bytes, s->cfg.max_opts, &nopts);
  r->nopts = (uint8_t)nopts;
  r->optlen = (uint32_t)ol;
  if (etag != NULL) {
    memcpy(r->etag, etag, etag_len);
    r->etag_len = (uint8_t)etag_len;
  } else {
    tc_sip e;
    uint8_t ctr[8];
    uint64_t v;
    for (ex = 0; ex < 8u; ex++) ctr[ex] = (uint8_t)(s->etag_ctr >> (8u * ex));
    s->etag_ctr++;
    tc_sip_init(&e, s->k1, s->k0, 1, 3);
    tc_sip_add(&e, ctr, 8);
    v = tc_sip_end(&e);
    for (ex = 0; ex < 8u; ex++) r->etag[ex] = (uint8_t)(v >> (8u * ex));
    r->etag_len = 8;
  }
  bw2_store_body(s, r, body, resp->payload_length);
  r->nchunks = (uint32_t)need;
  r->expires = expires;
  r->fresh_until = fresh;
  if (expires < s->next_expiry) s->next_expiry = expires;
  lru_push(&t, i);
  s->st.puts++;
  if (id) *id = bw2_id(s, i);
  return 0;
}

int tc_bw2_fresh(const tc_bw2 *s, uint64_t now, uint32_t id, uint32_t *remaining_s) {
  uint32_t i;
  const rep *r;
  if (!bw2_ok(s) || bw2_lookup(s, id, &i) < 0) return 0;
  r = &((const rep *)(const void *)((const uint8_t *)s + s->off_r))[i];
  if (r->fresh_until <= now || r->expires <= now) return 0;
  if (remaining_s) *remaining_s = (uint32_t)((r->fresh_until - now + 999u) / 1000u);
  return 1;
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
    uint64_t h;
    uint32_t i = bw2_find_exact(s, peer, al, key, key_len, &h);
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

static int bw2_serve(tc_bw2 *s, uint64_t now, uint32_t id, uint32_t block2, uint32_t flags,
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
    /* the client did not ask: BERT when the connection allows it (RFC 8323 §6) and the
     * preferred size is 1024, else the preferred size */
    b.num = 0;
    b.more = 0;
    b.szx = (flags & TC_BW_BERT) && s->cfg.preferred_szx >= 6u ? TC_SZX_BERT : s->cfg.preferred_szx;
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
    /* The options' bytes (the same in every framing: measured as a UDP message less its
     * 4-byte header) plus the worst-case framing of any transport: 6 header bytes (RFC 8323
     * with a 4-byte extended length) + the payload marker. So the block fits msg_limit on
     * whichever transport the caller's messaging layer uses. */
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
  bw2_touch(s, i);
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
  if (!bw2_ok(s) || s->sl.count == 0u) return NEVER;
  return s->next_expiry;
}

void tc_bw2_get_stats(const tc_bw2 *s, tc_bw2_stats *out) {
  if (out == NULL) return;
  if (!bw2_ok(s)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = s->st;
  out->reps = s->sl.count;
  out->chunks_used = s->pl.used;
  out->chunks_total = s->pl.nchunks;
}

/* ------------------------------------------------------ the argument-struct entry points */

int tc_bw1_feed(tc_bw1 *s, uint64_t now, const tc_bw1_block *b, tc_bw1_result *res) {
  if (b == NULL) {
    if (res != NULL) memset(res, 0, sizeof *res);
    return TC_E_INVALID;
  }
  return bw1_feed(s, now, b->peer, b->peer_len, b->key, b->key_len, b->block1, b->flags,
                  b->size1, b->payload, b->payload_len, res);
}

int tc_bw2_put(tc_bw2 *s, uint64_t now, const tc_bw2_rep *r, uint32_t *id) {
  if (r == NULL || r->resp.msg == NULL) return TC_E_INVALID;
  return bw2_put(s, now, r->peer, r->peer_len, r->key, r->key_len, r->resp.msg, r->resp.opts,
                 r->resp.src, r->lifetime_ms, id);
}

int tc_bw2_serve(tc_bw2 *s, uint64_t now, uint32_t id, const tc_bw2_ask *ask,
                 const tc_msgbuf *out) {
  if (ask == NULL || out == NULL) return TC_E_INVALID;
  return bw2_serve(s, now, id, ask->block2, ask->flags, ask->block1_echo, ask->msg_limit,
                   out->msg, out->opts, out->opt_cap, out->buf, out->cap);
}

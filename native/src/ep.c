/*
 * ep.c — the CoAP/UDP messaging layer (RFC 7252 §4, §5.2, §5.3.2, §5.4.1; RFC 7967;
 * RFC 8974 tokens up to TC_EP_TOKEN_MAX bytes), sans-IO. See turbocoap_ep.h for the contract.
 *
 * Everything lives in one caller-owned block laid out by tc_ep_init():
 *
 *   struct tc_ep           config copy, keys, counters, table offsets, stats
 *   dedup records [D]      (peer, MID) -> what we did with it; a clock ring (write cursor)
 *   dedup buckets          chained hash index, keyed hash of the address (flood resistant)
 *   in-progress [P]        requests handed to the app; FIFO list ordered by ACK deadline
 *   peers [P + C]          per-peer counters (in-progress, outstanding CON for NSTART, held)
 *   peer buckets
 *   clients [C]            outstanding client requests
 *   token buckets          (peer, token) -> client
 *   MID buckets            our MID -> client record or server separate-response CON slot
 *   CON slots [S]          CON messages awaiting ACK, with their bytes in CON data [S * M]
 *   response cache         byte ring of response_cache_bytes
 *
 * All links are 32-bit indices (NONE = 0xFFFFFFFF); the block holds no pointers.
 *
 * Dedup ring: records are written at a cursor that goes round the array; the record under the
 * cursor is evicted (oldest first) unless it is pinned by a request still in progress, which
 * is skipped (at most max_in_progress < dedup_entries are pinned, so the loop ends). Expiry is
 * exact at lookup time; tc_ep_timer sweeps expired records ahead of the cursor in batches.
 *
 * Deadlines: ep->next_deadline is a lower bound of every pending deadline (updated by min()
 * whenever one is set, recomputed exactly by tc_ep_timer). The server's separate-ACK deadlines
 * are kept in arrival order (a FIFO list), so the hot path never scans; tc_ep_timer scans the
 * CON slot and client tables, which are small.
 */
#include <string.h>

#include "internal.h"

#define EP_MAGIC 0x74634570u /* "tcEp" */
#define CON_TAG 0x80000000u  /* MID index: a server CON slot rather than a client record */
#define CLIENT_ID 0x80000000u
#define NOTIFY_ID 0x40000000u
#define GEN_MASK 0x3FFFu
#define SWEEP_SLACK_MS 1000u /* batch dedup sweeps: at most about one per second */
#define MIN_MESSAGE_SIZE 96u /* room for every response the layer generates itself */
#define MAX_UDP_PAYLOAD 65507u

/* CoAP codes used here */
#define CODE_BAD_OPTION 0x82u          /* 4.02 */
#define CODE_METHOD_NOT_ALLOWED 0x85u  /* 4.05 */
#define CODE_SERVICE_UNAVAILABLE 0xA3u /* 5.03 */
#define CODE_PROXYING_NOT_SUPPORTED 0xA5u /* 5.05 */
#define OPT_MAX_AGE 14u
#define OPT_PROXY_URI 35u
#define OPT_PROXY_SCHEME 39u
#define OPT_NO_RESPONSE 258u
#define OPT_OBSERVE 6u
#define OPT_ECHO 252u
#define CODE_UNAUTHORIZED 0x81u        /* 4.01 */
/* Critical options the registry knows but this endpoint does not implement: treated as
 * unrecognized (4.02 for a CON request, a rejected response), RFC 7252 §5.4.1. */
#define OPT_OSCORE 9u   /* RFC 8613 */
#define OPT_QBLOCK1 19u /* RFC 9177 */
#define OPT_QBLOCK2 31u /* RFC 9177 */
/* Echo values we send (RFC 9175 §2.4): 2 bytes of time (seconds, mod 2^16) and 6 bytes of
 * a keyed MAC over the endpoint's address and that time. */
#define ECHO_LEN 8u
#define VER_WAYS 4u
#define LAST_KNOWN_METHOD 7u /* GET POST PUT DELETE FETCH PATCH iPATCH */

/* dedup record states */
enum { D_FREE = 0, D_INPROG, D_CACHED, D_ACKONLY, D_IGNORE };
/* client record states */
enum { C_FREE = 0, C_HELD, C_SENT, C_WAIT };
/* client flags */
#define CF_CON 1u
#define CF_KEEP 2u
#define CF_PING 4u
#define CF_GOT 8u    /* a response arrived */
#define CF_INMID 16u /* linked in the MID index */
#define CF_OUT 32u   /* counted in peer->con_out (NSTART) */
#define CF_INTOK 64u /* linked in the token index */
/* in-progress flags */
#define IF_CON 1u
#define IF_ACKED 2u
#define IF_INLIST 4u
#define IF_VERIFIED 8u /* the request's endpoint has shown it receives (or the defence is off) */
/* CON slot kinds */
enum { K_FREE = 0, K_CLIENT, K_SERVER, K_NOTIFY };

typedef struct dedup_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t state;
  uint16_t mid;
  uint32_t next;   /* hash chain */
  uint32_t aux;    /* D_INPROG: in-progress index; D_CACHED: cached length */
  uint32_t bucket;
  uint32_t keep;   /* rounds of the write cursor it is still passed over (non-idempotent) */
  uint64_t expires;
  uint64_t cpos;   /* D_CACHED: absolute position in the response cache */
} dedup_rec;
/* A POST or PATCH exchange (not idempotent: running it twice is not harmless) is passed over
 * by the dedup write cursor this many times before it can be evicted, so that eviction takes
 * completed idempotent exchanges first. */
#define KEEP_NONIDEMPOTENT 3u

typedef struct ip_rec {
  uint32_t dedup;
  uint32_t peer;
  uint32_t prev, next; /* ACK list (in use) or free list (next) */
  uint64_t ack_due;
  uint16_t gen;
  uint8_t used;
  uint8_t flags;
  uint8_t tkl;
  uint8_t nores;
  uint16_t req_len; /* bytes of the request datagram (saturated), for the amplification limit */
  uint8_t token[TC_EP_TOKEN_MAX];
} ip_rec;

typedef struct peer_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t used;
  uint8_t pad[2];
  uint32_t next; /* hash chain or free list */
  uint32_t bucket;
  uint32_t ip_count;
  uint32_t con_out;
  uint32_t held_head, held_tail;
  uint32_t pad2[2];
} peer_rec;

typedef struct client_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t state;
  uint8_t flags;
  uint8_t tkl;
  uint8_t token[TC_EP_TOKEN_MAX];
  uint32_t tok_next, tok_bucket;
  uint32_t mid_next;
  uint32_t con;       /* CON slot or NONE */
  uint32_t peer;      /* peer while CF_OUT or C_HELD, else NONE */
  uint32_t held_next; /* held list, or free list */
  uint16_t mid, gen;
  uint32_t pad;
  uint64_t deadline;  /* C_WAIT: give up at */
} client_rec;

/* A NON notification recently sent (tc_ep_notify without TC_REQ_CON), so that a RST answering
 * it can be reported (RFC 7641 §3.6). Direct-mapped by Message ID: MIDs are allocated
 * sequentially per ep, so the table holds the NON notifications among the last NN_SLOTS MIDs. */
typedef struct nn_rec {
  uint64_t expires; /* sent + NON_LIFETIME; 0 = empty */
  uint16_t mid;
  uint8_t alen;
  uint8_t pad;
  uint8_t addr[TC_ADDR_MAX];
} nn_rec;
#define NN_SLOTS TC_EP_NON_NOTIFY_RING

/* An endpoint that echoed a value we sent (RFC 9175 §2.4): 4-way sets indexed by address hash. */
typedef struct ver_rec {
  uint64_t expires; /* 0 = empty */
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t pad[3];
} ver_rec;

typedef struct con_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t kind;
  uint16_t mid;
  uint32_t owner; /* K_CLIENT: client index */
  uint32_t len;
  uint16_t retrans;
  uint16_t gen;   /* generation, for notification ids */
  uint32_t next;  /* MID chain (K_SERVER) or free list */
  uint64_t timeout;
  uint64_t next_tx; /* NEVER while held */
} con_rec;

struct tc_ep {
  uint32_t magic;
  uint32_t nstart_pad;
  tc_ep_config cfg;
  uint64_t tok_k0, tok_k1, hash_k0, hash_k1;
  uint64_t prf_ctr;
  uint64_t exchange_lifetime, non_lifetime;
  uint64_t next_deadline;
  uint64_t cache_w; /* absolute write position of the response cache */
  uint64_t size;
  uint64_t off_dedup, off_dbuck, off_ip, off_peer, off_pbuck, off_client, off_tbuck, off_mbuck,
      off_con, off_condata, off_cache, off_nn;
  uint32_t dmask, pmask, tmask, mmask;
  uint32_t dwpos, dsweep, dlive;
  uint32_t cache_p; /* physical write position */
  uint32_t ip_free, ip_head, ip_tail, ip_count;
  uint32_t peer_free, peer_count;
  uint32_t cl_free, cl_count;
  uint32_t con_free, con_count;
  uint32_t next_mid;
  uint32_t pad;
  uint64_t echo_k0, echo_k1; /* MAC key of Echo values */
  uint64_t off_ver;
  uint32_t vsets, vlive;     /* verified-endpoint sets (a power of two), live entries */
  tc_ep_stats st;
};

/* ------------------------------------------------------------------ hashing */

/* Keyed PRF output number ep->prf_ctr (SipHash-2-4 of the counter). */
static uint64_t prf64(tc_ep *ep) {
  uint8_t c[8];
  uint64_t x = ep->prf_ctr++;
  int i;
  for (i = 0; i < 8; i++) c[i] = (uint8_t)(x >> (8 * i));
  return tc_siphash(ep->tok_k0, ep->tok_k1, c, 8, 2, 4);
}

static inline uint64_t hash_addr(const tc_ep *ep, const uint8_t *a, uint32_t n) {
  return tc_siphash(ep->hash_k0, ep->hash_k1, a, n, 1, 3);
}

static inline uint32_t dedup_bucket(const tc_ep *ep, uint64_t h, uint32_t mid) {
  return (uint32_t)fmix64(h ^ ((uint64_t)(mid + 1u) * 0x9E3779B97F4A7C15ull)) & ep->dmask;
}

static uint32_t token_bucket(const tc_ep *ep, const uint8_t *a, uint32_t alen, const uint8_t *t,
                             uint32_t tkl) {
  uint8_t b[TC_ADDR_MAX + TC_EP_TOKEN_MAX + 1];
  b[0] = (uint8_t)alen;
  memcpy(b + 1, a, alen);
  if (tkl) memcpy(b + 1 + alen, t, tkl);
  return (uint32_t)tc_siphash(ep->hash_k0, ep->hash_k1, b, 1u + alen + tkl, 1, 3) & ep->tmask;
}

/* ------------------------------------------------------------------ layout */

#define DD(ep) ((dedup_rec *)((uint8_t *)(ep) + (ep)->off_dedup))
#define DB(ep) ((uint32_t *)((uint8_t *)(ep) + (ep)->off_dbuck))
#define IP(ep) ((ip_rec *)((uint8_t *)(ep) + (ep)->off_ip))
#define PR(ep) ((peer_rec *)((uint8_t *)(ep) + (ep)->off_peer))
#define PB(ep) ((uint32_t *)((uint8_t *)(ep) + (ep)->off_pbuck))
#define CL(ep) ((client_rec *)((uint8_t *)(ep) + (ep)->off_client))
#define TB(ep) ((uint32_t *)((uint8_t *)(ep) + (ep)->off_tbuck))
#define MB(ep) ((uint32_t *)((uint8_t *)(ep) + (ep)->off_mbuck))
#define CS(ep) ((con_rec *)((uint8_t *)(ep) + (ep)->off_con))
#define CDATA(ep, i) \
  ((uint8_t *)(ep) + (ep)->off_condata + (uint64_t)(i) * (ep)->cfg.max_message_size)
#define CACHE(ep) ((uint8_t *)(ep) + (ep)->off_cache)
#define NN(ep) ((nn_rec *)((uint8_t *)(ep) + (ep)->off_nn))
#define VR(ep) ((ver_rec *)((uint8_t *)(ep) + (ep)->off_ver))
/* read-only views for const callers */
#define CDD(ep) ((const dedup_rec *)((const uint8_t *)(ep) + (ep)->off_dedup))
#define CIP(ep) ((const ip_rec *)((const uint8_t *)(ep) + (ep)->off_ip))
#define CCL(ep) ((const client_rec *)((const uint8_t *)(ep) + (ep)->off_client))
#define CCS(ep) ((const con_rec *)((const uint8_t *)(ep) + (ep)->off_con))

typedef struct layout {
  uint64_t dedup, dbuck, ip, peer, pbuck, client, tbuck, mbuck, con, condata, cache, nn, ver,
      total;
  uint32_t dbn, pbn, tbn, mbn, vsets;
} layout;


static int config_ok(const tc_ep_config *c) {
  if (c == NULL) return 0;
  if (c->ack_timeout_ms < 1u || c->ack_timeout_ms > 600000u) return 0;
  if (c->ack_random_factor_x1000 < 1000u || c->ack_random_factor_x1000 > 10000u) return 0;
  if (c->max_retransmit > 20u) return 0;
  if (c->nstart < 1u || c->nstart > 65535u) return 0;
  if (c->max_in_progress < 1u || c->max_in_progress > 65535u) return 0;
  if (c->max_in_progress_per_peer < 1u) return 0;
  if (c->dedup_entries <= c->max_in_progress || c->dedup_entries > (1u << 26)) return 0;
  if (c->response_cache_bytes > (1u << 31)) return 0;
  if (c->max_client_requests < 1u || c->max_client_requests > 65535u) return 0;
  if (c->con_slots < 1u || c->con_slots > 65535u) return 0;
  if (c->max_message_size < MIN_MESSAGE_SIZE || c->max_message_size > MAX_UDP_PAYLOAD) return 0;
  if (c->response_timeout_ms < 1u) return 0;
  if (c->amplification_factor > 1000u) return 0;
  if (c->verified_peers < VER_WAYS || c->verified_peers > (1u << 20)) return 0;
  if (c->echo_lifetime_ms < 1000u || c->echo_lifetime_ms > 3600000u) return 0;
  if (c->verified_lifetime_ms < 1000u) return 0;
  if ((c->flags & ~TC_EPF_PROXY) != 0u) return 0;
  return 1;
}

static int make_layout(const tc_ep_config *c, layout *l) {
  uint64_t o;
  uint32_t pc;
  if (!config_ok(c)) return 0;
  pc = c->max_in_progress + c->max_client_requests;
  l->dbn = pow2_at_least(c->dedup_entries);
  l->pbn = pow2_at_least(pc);
  l->tbn = pow2_at_least(c->max_client_requests);
  l->mbn = pow2_at_least(c->max_client_requests + c->con_slots);
  o = up8(sizeof(struct tc_ep));
  l->dedup = o; o = up8(o + (uint64_t)c->dedup_entries * sizeof(dedup_rec));
  l->dbuck = o; o = up8(o + (uint64_t)l->dbn * 4u);
  l->ip = o; o = up8(o + (uint64_t)c->max_in_progress * sizeof(ip_rec));
  l->peer = o; o = up8(o + (uint64_t)pc * sizeof(peer_rec));
  l->pbuck = o; o = up8(o + (uint64_t)l->pbn * 4u);
  l->client = o; o = up8(o + (uint64_t)c->max_client_requests * sizeof(client_rec));
  l->tbuck = o; o = up8(o + (uint64_t)l->tbn * 4u);
  l->mbuck = o; o = up8(o + (uint64_t)l->mbn * 4u);
  l->con = o; o = up8(o + (uint64_t)c->con_slots * sizeof(con_rec));
  l->condata = o; o = up8(o + (uint64_t)c->con_slots * c->max_message_size);
  l->cache = o; o = up8(o + c->response_cache_bytes);
  l->nn = o; o = up8(o + (uint64_t)NN_SLOTS * sizeof(nn_rec));
  l->vsets = pow2_at_least((c->verified_peers + VER_WAYS - 1u) / VER_WAYS);
  l->ver = o; o = up8(o + (uint64_t)l->vsets * VER_WAYS * sizeof(ver_rec));
  l->total = o;
  if (o > (uint64_t)SIZE_MAX) return 0;
  return 1;
}

/* ------------------------------------------------------------------ config */

void tc_ep_config_default(tc_ep_config *c) {
  if (c == NULL) return;
  memset(c, 0, sizeof *c);
  c->ack_timeout_ms = 2000u;
  c->ack_random_factor_x1000 = 1500u;
  c->max_retransmit = 4u;
  c->nstart = 1u;
  c->max_latency_ms = 100000u;
  c->processing_delay_ms = 2000u;
  c->separate_ack_delay_ms = 1000u;
  c->overload_max_age = 2u;
  c->dedup_entries = 16384u;
  c->response_cache_bytes = 2u * 1024u * 1024u;
  c->max_in_progress = 4096u;
  c->max_in_progress_per_peer = 256u;
  c->max_client_requests = 1024u;
  c->con_slots = 256u;
  c->max_message_size = 1280u;
  c->response_timeout_ms = 93000u;
  c->amplification_factor = 3u;
  c->verified_peers = 4096u;
  c->echo_lifetime_ms = 30000u;
  c->verified_lifetime_ms = 3600000u;
  c->flags = 0;
}

/* ACK_TIMEOUT * (2^k - 1) * ACK_RANDOM_FACTOR, in ms (k <= 21: no overflow). */
static uint64_t span_k(const tc_ep_config *c, uint32_t k) {
  if (c == NULL || k > 40u) return 0;
  return (uint64_t)c->ack_timeout_ms * ((1ull << k) - 1u) * c->ack_random_factor_x1000 / 1000u;
}

uint64_t tc_ep_max_transmit_span(const tc_ep_config *c) {
  return c ? span_k(c, c->max_retransmit) : 0;
}
uint64_t tc_ep_max_transmit_wait(const tc_ep_config *c) {
  return c ? span_k(c, c->max_retransmit + 1u) : 0;
}
uint64_t tc_ep_exchange_lifetime(const tc_ep_config *c) {
  if (c == NULL) return 0;
  return tc_ep_max_transmit_span(c) + 2u * (uint64_t)c->max_latency_ms + c->processing_delay_ms;
}
uint64_t tc_ep_non_lifetime(const tc_ep_config *c) {
  if (c == NULL) return 0;
  return tc_ep_max_transmit_span(c) + c->max_latency_ms;
}

size_t tc_ep_size(const tc_ep_config *cfg) {
  layout l;
  if (!make_layout(cfg, &l)) return 0;
  return (size_t)l.total;
}

int tc_ep_init(tc_ep *ep, size_t mem_len, const tc_ep_config *cfg, const uint8_t seed[32]) {
  layout l;
  uint32_t i, n;
  if (ep == NULL || seed == NULL || !make_layout(cfg, &l)) return TC_E_INVALID;
  if (((uintptr_t)ep & 7u) != 0 || (uint64_t)mem_len < l.total) return TC_E_INVALID;
  memset(ep, 0, (size_t)l.total);
  ep->cfg = *cfg;
  ep->size = l.total;
  ep->off_dedup = l.dedup;
  ep->off_dbuck = l.dbuck;
  ep->off_ip = l.ip;
  ep->off_peer = l.peer;
  ep->off_pbuck = l.pbuck;
  ep->off_client = l.client;
  ep->off_tbuck = l.tbuck;
  ep->off_mbuck = l.mbuck;
  ep->off_con = l.con;
  ep->off_condata = l.condata;
  ep->off_cache = l.cache;
  ep->off_nn = l.nn;
  ep->off_ver = l.ver;
  ep->vsets = l.vsets;
  ep->dmask = l.dbn - 1u;
  ep->pmask = l.pbn - 1u;
  ep->tmask = l.tbn - 1u;
  ep->mmask = l.mbn - 1u;
  memset(DB(ep), 0xFF, (size_t)l.dbn * 4u);
  memset(PB(ep), 0xFF, (size_t)l.pbn * 4u);
  memset(TB(ep), 0xFF, (size_t)l.tbn * 4u);
  memset(MB(ep), 0xFF, (size_t)l.mbn * 4u);
  n = cfg->max_in_progress;
  for (i = 0; i < n; i++) {
    IP(ep)[i].next = i + 1u < n ? i + 1u : NONE;
    IP(ep)[i].gen = 1;
  }
  ep->ip_free = 0;
  ep->ip_head = ep->ip_tail = NONE;
  n = cfg->max_in_progress + cfg->max_client_requests;
  for (i = 0; i < n; i++) PR(ep)[i].next = i + 1u < n ? i + 1u : NONE;
  ep->peer_free = 0;
  n = cfg->max_client_requests;
  for (i = 0; i < n; i++) {
    CL(ep)[i].held_next = i + 1u < n ? i + 1u : NONE;
    CL(ep)[i].gen = 1;
  }
  ep->cl_free = 0;
  n = cfg->con_slots;
  for (i = 0; i < n; i++) {
    CS(ep)[i].next = i + 1u < n ? i + 1u : NONE;
    CS(ep)[i].gen = 1;
  }
  ep->con_free = 0;
  ep->tok_k0 = rd64le(seed);
  ep->tok_k1 = rd64le(seed + 8);
  ep->hash_k0 = rd64le(seed + 16);
  ep->hash_k1 = rd64le(seed + 24);
  ep->exchange_lifetime = tc_ep_exchange_lifetime(cfg);
  ep->non_lifetime = tc_ep_non_lifetime(cfg);
  ep->next_deadline = NEVER;
  ep->next_mid = (uint32_t)(prf64(ep) & 0xFFFFu);
  {
    /* the Echo MAC key, derived from the PRF key without using up PRF outputs */
    static const uint8_t d0[8] = {'e', 'c', 'h', 'o', '-', 'k', 'e', '0'};
    static const uint8_t d1[8] = {'e', 'c', 'h', 'o', '-', 'k', 'e', '1'};
    ep->echo_k0 = tc_siphash(ep->tok_k0, ep->tok_k1, d0, 8, 2, 4);
    ep->echo_k1 = tc_siphash(ep->tok_k0, ep->tok_k1, d1, 8, 2, 4);
  }
  ep->magic = EP_MAGIC;
  return 0;
}

static inline int ep_ok(const tc_ep *ep) { return ep != NULL && ep->magic == EP_MAGIC; }

static inline void arm(tc_ep *ep, uint64_t t) {
  if (t < ep->next_deadline) ep->next_deadline = t;
}

static inline int addr_eq(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

/* ------------------------------------------------------------------ tx queue */

static inline int tx_room(const tc_txq *tx, uint64_t need) {
  return tx->count < tx->item_cap && tx->used <= tx->cap && (uint64_t)(tx->cap - tx->used) >= need;
}

static inline uint8_t *tx_data(tc_txq *tx, uint32_t alen) { return tx->buf + tx->used + alen; }

static void tx_commit(tc_ep *ep, tc_txq *tx, const uint8_t *addr, uint32_t alen, uint32_t n) {
  tc_tx *t = &tx->items[tx->count++];
  memcpy(tx->buf + tx->used, addr, alen);
  t->addr_offset = tx->used;
  t->addr_length = alen;
  t->offset = tx->used + alen;
  t->length = n;
  tx->used += alen + n;
  ep->st.tx++;
}

static int tx_ok(const tc_txq *tx) {
  return tx != NULL && tx->buf != NULL && tx->items != NULL;
}

/* Queue an Empty message (ACK or RST). */
static int send_empty(tc_ep *ep, tc_txq *tx, const uint8_t *addr, uint32_t alen, uint32_t type,
                      uint32_t mid) {
  uint8_t *p;
  if (!tx_room(tx, (uint64_t)alen + 4u)) return TC_E_FULL;
  p = tx_data(tx, alen);
  p[0] = (uint8_t)(0x40u | type << 4);
  p[1] = 0;
  p[2] = (uint8_t)(mid >> 8);
  p[3] = (uint8_t)mid;
  tx_commit(ep, tx, addr, alen, 4);
  if (type == TC_RST) ep->st.resets_sent++;
  return 0;
}

/* Queue a copy of n bytes. */
static int send_copy(tc_ep *ep, tc_txq *tx, const uint8_t *addr, uint32_t alen, const uint8_t *b,
                     uint32_t n) {
  if (!tx_room(tx, (uint64_t)alen + n)) return TC_E_FULL;
  memcpy(tx_data(tx, alen), b, n);
  tx_commit(ep, tx, addr, alen, n);
  return 0;
}

/*
 * Encode a UDP message whose token (tok, tkl <= TC_EP_TOKEN_MAX) is not in src: the message
 * is encoded without a token, shifted right by the token field, and the header rebuilt.
 * m may be NULL (no options, no payload). out == NULL: return the size needed.
 */
static int enc(uint8_t *out, size_t cap, uint32_t type, uint32_t code, uint32_t mid,
               const uint8_t *tok, uint32_t tkl, const tc_msg *m, tc_opt *opts,
               const uint8_t *src) {
  tc_msg lm;
  uint32_t ext = tkl < 13u ? 0u : 1u, shift = ext + tkl;
  uint8_t h[4];
  int r;
  memset(&lm, 0, sizeof lm);
  lm.type = type;
  lm.code = code;
  lm.message_id = mid;
  if (m != NULL) {
    lm.option_count = m->option_count;
    lm.payload_offset = m->payload_offset;
    lm.payload_length = m->payload_length;
  }
  if (out == NULL) {
    r = tc_encode(NULL, 0, TC_UDP, &lm, opts, src);
    return r < 0 ? r : r + (int)shift;
  }
  if (cap < 4u + shift) return TC_E_BUFFER_TOO_SMALL;
  r = tc_encode(out + shift, cap - shift, TC_UDP, &lm, opts, src);
  if (r < 0) return r;
  memcpy(h, out + shift, 4);
  out[0] = (uint8_t)(h[0] | (ext ? 13u : tkl));
  out[1] = h[1];
  out[2] = h[2];
  out[3] = h[3];
  if (ext) out[4] = (uint8_t)(tkl - 13u);
  if (tkl) memcpy(out + 4 + ext, tok, tkl);
  return r + (int)shift;
}

/* ------------------------------------------------------------------ dedup */

static void dedup_unlink(tc_ep *ep, uint32_t i) {
  dedup_rec *d = DD(ep);
  uint32_t *link = &DB(ep)[d[i].bucket];
  while (*link != NONE) {
    if (*link == i) {
      *link = d[i].next;
      return;
    }
    link = &d[*link].next;
  }
}

static uint32_t dedup_find(tc_ep *ep, uint64_t now, uint64_t h, const uint8_t *addr,
                           uint32_t alen, uint32_t mid) {
  dedup_rec *d = DD(ep);
  uint32_t *link = &DB(ep)[dedup_bucket(ep, h, mid)];
  while (*link != NONE) {
    uint32_t i = *link;
    dedup_rec *r = &d[i];
    if (r->mid == mid && addr_eq(r->addr, r->alen, addr, alen)) {
      if (r->state != D_INPROG && r->expires <= now) { /* expired: forget it now */
        *link = r->next;
        r->state = D_FREE;
        ep->dlive--;
        return NONE;
      }
      return i;
    }
    link = &r->next;
  }
  return NONE;
}

static uint32_t dedup_insert(tc_ep *ep, uint64_t now, uint64_t h, const uint8_t *addr,
                             uint32_t alen, uint32_t mid, uint32_t state, uint64_t lifetime) {
  dedup_rec *d = DD(ep), *r;
  uint32_t i, b, n = ep->cfg.dedup_entries;
  /* pinned (in-progress) records are skipped, fewer than n are pinned; kept (non-idempotent)
   * ones are passed over while their chances last, each pass using one up: the loop ends */
  for (;;) {
    i = ep->dwpos;
    ep->dwpos = i + 1u == n ? 0u : i + 1u;
    if (ep->dsweep) ep->dsweep--;
    r = &d[i];
    if (r->state == D_INPROG) continue;
    if (r->state != D_FREE && r->keep != 0u && r->expires > now) { /* a second chance */
      r->keep--;
      continue;
    }
    if (r->state != D_FREE) {
      dedup_unlink(ep, i);
      if (r->expires > now) ep->st.dedup_evictions++;
      ep->dlive--;
    }
    break;
  }
  b = dedup_bucket(ep, h, mid);
  memcpy(r->addr, addr, alen);
  r->alen = (uint8_t)alen;
  r->state = (uint8_t)state;
  r->mid = (uint16_t)mid;
  r->aux = 0;
  r->keep = 0;
  r->bucket = b;
  r->expires = add_sat(now, lifetime);
  r->cpos = 0;
  r->next = DB(ep)[b];
  DB(ep)[b] = i;
  ep->dlive++;
  return i;
}

/* Free expired records ahead of the write cursor (they are the oldest). */
static void dedup_sweep(tc_ep *ep, uint64_t now) {
  dedup_rec *d = DD(ep);
  uint32_t n = ep->cfg.dedup_entries;
  while (ep->dsweep < n) {
    uint32_t i = ep->dwpos + ep->dsweep;
    dedup_rec *r;
    if (i >= n) i -= n;
    r = &d[i];
    if (r->state != D_FREE && r->state != D_INPROG) {
      if (r->expires > now) break;
      dedup_unlink(ep, i);
      r->state = D_FREE;
      ep->dlive--;
    }
    ep->dsweep++;
  }
}

static uint64_t dedup_sweep_due(const tc_ep *ep) {
  const dedup_rec *d = CDD(ep);
  uint32_t n = ep->cfg.dedup_entries, i;
  if (ep->dsweep >= n || ep->dlive == 0) return NEVER;
  i = ep->dwpos + ep->dsweep;
  if (i >= n) i -= n;
  if (d[i].state == D_FREE || d[i].state == D_INPROG) return NEVER;
  return add_sat(d[i].expires, SWEEP_SLACK_MS);
}

/* ------------------------------------------------------------------ response cache */

static int cache_put(tc_ep *ep, const uint8_t *b, uint32_t n, uint64_t *pos) {
  uint32_t cap = ep->cfg.response_cache_bytes;
  if (n == 0 || n > cap) return 0;
  if (ep->cache_p + n > cap) { /* never straddle the end: skip the tail */
    ep->cache_w += cap - ep->cache_p;
    ep->cache_p = 0;
  }
  memcpy(CACHE(ep) + ep->cache_p, b, n);
  *pos = ep->cache_w;
  ep->cache_w += n;
  ep->cache_p += n;
  return 1;
}

/* A cached response is intact while the ring has not written past pos + cap. */
static inline int cache_valid(const tc_ep *ep, uint64_t pos) {
  return ep->cache_w - pos <= (uint64_t)ep->cfg.response_cache_bytes;
}

/* ------------------------------------------------------------------ peers */

static uint32_t peer_find(tc_ep *ep, uint64_t h, const uint8_t *addr, uint32_t alen) {
  peer_rec *p = PR(ep);
  uint32_t i = PB(ep)[(uint32_t)(h >> 32) & ep->pmask];
  while (i != NONE) {
    if (addr_eq(p[i].addr, p[i].alen, addr, alen)) return i;
    i = p[i].next;
  }
  return NONE;
}

/* Find or create; the table has one entry per in-progress request + client record, so a
 * free entry always exists when the caller holds a free slot in one of those tables. */
static uint32_t peer_get(tc_ep *ep, uint64_t h, const uint8_t *addr, uint32_t alen) {
  peer_rec *p = PR(ep);
  uint32_t i = peer_find(ep, h, addr, alen), b;
  if (i != NONE) return i;
  i = ep->peer_free;
  if (i == NONE) return NONE;
  ep->peer_free = p[i].next;
  b = (uint32_t)(h >> 32) & ep->pmask;
  memcpy(p[i].addr, addr, alen);
  p[i].alen = (uint8_t)alen;
  p[i].used = 1;
  p[i].bucket = b;
  p[i].ip_count = 0;
  p[i].con_out = 0;
  p[i].held_head = p[i].held_tail = NONE;
  p[i].next = PB(ep)[b];
  PB(ep)[b] = i;
  ep->peer_count++;
  return i;
}

static void peer_put(tc_ep *ep, uint32_t i) {
  peer_rec *p = PR(ep);
  uint32_t *link;
  if (p[i].ip_count || p[i].con_out || p[i].held_head != NONE) return;
  link = &PB(ep)[p[i].bucket];
  while (*link != NONE && *link != i) link = &p[*link].next;
  if (*link == i) *link = p[i].next;
  p[i].used = 0;
  p[i].next = ep->peer_free;
  ep->peer_free = i;
  ep->peer_count--;
}

/* ------------------------------------------------------------------ MID / token index */

static inline uint32_t mid_bucket(const tc_ep *ep, uint32_t mid) { return mid & ep->mmask; }

static inline uint32_t *mid_next_of(tc_ep *ep, uint32_t ref) {
  return (ref & CON_TAG) ? &CS(ep)[ref & ~CON_TAG].next : &CL(ep)[ref].mid_next;
}

static void mid_link(tc_ep *ep, uint32_t mid, uint32_t ref) {
  uint32_t b = mid_bucket(ep, mid);
  *mid_next_of(ep, ref) = MB(ep)[b];
  MB(ep)[b] = ref;
}

static void mid_unlink(tc_ep *ep, uint32_t mid, uint32_t ref) {
  uint32_t *link = &MB(ep)[mid_bucket(ep, mid)];
  while (*link != NONE) {
    if (*link == ref) {
      *link = *mid_next_of(ep, ref);
      return;
    }
    link = mid_next_of(ep, *link);
  }
}

static uint32_t mid_find(tc_ep *ep, const uint8_t *addr, uint32_t alen, uint32_t mid) {
  uint32_t ref = MB(ep)[mid_bucket(ep, mid)];
  while (ref != NONE) {
    if (ref & CON_TAG) {
      con_rec *s = &CS(ep)[ref & ~CON_TAG];
      if (s->mid == mid && addr_eq(s->addr, s->alen, addr, alen)) return ref;
    } else {
      client_rec *c = &CL(ep)[ref];
      if (c->mid == mid && addr_eq(c->addr, c->alen, addr, alen)) return ref;
    }
    ref = *mid_next_of(ep, ref);
  }
  return NONE;
}

static uint32_t token_find(tc_ep *ep, const uint8_t *addr, uint32_t alen, const uint8_t *tok,
                           uint32_t tkl) {
  client_rec *cl = CL(ep);
  uint32_t i = TB(ep)[token_bucket(ep, addr, alen, tok, tkl)];
  while (i != NONE) {
    client_rec *c = &cl[i];
    if (c->tkl == tkl && addr_eq(c->addr, c->alen, addr, alen) &&
        (tkl == 0 || memcmp(c->token, tok, tkl) == 0))
      return i;
    i = c->tok_next;
  }
  return NONE;
}

/* ------------------------------------------------------------------ CON slots */

static uint64_t initial_timeout(tc_ep *ep) {
  uint64_t base = ep->cfg.ack_timeout_ms;
  uint64_t span = base * (ep->cfg.ack_random_factor_x1000 - 1000u) / 1000u;
  return base + (span ? prf64(ep) % (span + 1u) : 0u);
}

static uint32_t con_alloc(tc_ep *ep) {
  uint32_t s = ep->con_free;
  if (s == NONE) return NONE;
  ep->con_free = CS(ep)[s].next;
  CS(ep)[s].next = NONE;
  ep->con_count++;
  return s;
}

static void con_release(tc_ep *ep, uint32_t s) {
  con_rec *r = &CS(ep)[s];
  if (r->kind == K_SERVER || r->kind == K_NOTIFY) mid_unlink(ep, r->mid, s | CON_TAG);
  if (r->kind == K_NOTIFY) r->gen = (uint16_t)(((r->gen + 1u) & GEN_MASK) ? ((r->gen + 1u) & GEN_MASK) : 1u);
  r->kind = K_FREE;
  r->next = ep->con_free;
  ep->con_free = s;
  ep->con_count--;
}

static void con_start(tc_ep *ep, uint64_t now, uint32_t s) {
  con_rec *r = &CS(ep)[s];
  r->retrans = 0;
  r->timeout = initial_timeout(ep);
  r->next_tx = now + r->timeout;
  arm(ep, r->next_tx);
}

/* ------------------------------------------------------------------ in-progress */

static void ip_list_unlink(tc_ep *ep, uint32_t i) {
  ip_rec *t = IP(ep), *r = &t[i];
  if (!(r->flags & IF_INLIST)) return;
  if (r->prev != NONE) t[r->prev].next = r->next;
  else ep->ip_head = r->next;
  if (r->next != NONE) t[r->next].prev = r->prev;
  else ep->ip_tail = r->prev;
  r->flags &= (uint8_t)~IF_INLIST;
}

static void ip_release(tc_ep *ep, uint32_t i) {
  ip_rec *r = &IP(ep)[i];
  ip_list_unlink(ep, i);
  PR(ep)[r->peer].ip_count--;
  peer_put(ep, r->peer);
  r->used = 0;
  r->gen = (uint16_t)(((r->gen + 1u) & GEN_MASK) ? ((r->gen + 1u) & GEN_MASK) : 1u);
  r->next = ep->ip_free;
  ep->ip_free = i;
  ep->ip_count--;
}

static int ip_lookup(const tc_ep *ep, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFu;
  const ip_rec *r;
  if (id & CLIENT_ID) return TC_E_STALE;
  if (i >= ep->cfg.max_in_progress) return TC_E_STALE;
  r = &CIP(ep)[i];
  if (!r->used || r->gen != ((id >> 16) & GEN_MASK)) return TC_E_STALE;
  *slot = i;
  return 0;
}

/* ------------------------------------------------------------------ clients */

static int cl_lookup(const tc_ep *ep, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFu;
  const client_rec *c;
  if (!(id & CLIENT_ID)) return TC_E_STALE;
  if (i >= ep->cfg.max_client_requests) return TC_E_STALE;
  c = &CCL(ep)[i];
  if (c->state == C_FREE || c->gen != ((id >> 16) & GEN_MASK)) return TC_E_STALE;
  *slot = i;
  return 0;
}

static inline uint32_t cl_id(const tc_ep *ep, uint32_t i) {
  return CLIENT_ID | (uint32_t)CCL(ep)[i].gen << 16 | i;
}

/* The request no longer counts against NSTART. */
static void cl_outstanding_done(tc_ep *ep, uint64_t now, uint32_t ci) {
  client_rec *c = &CL(ep)[ci];
  if (c->flags & CF_OUT) {
    uint32_t p = c->peer;
    c->flags &= (uint8_t)~CF_OUT;
    c->peer = NONE;
    PR(ep)[p].con_out--;
    if (PR(ep)[p].held_head != NONE) arm(ep, now); /* release a held request */
    peer_put(ep, p);
  }
}

/* Stop retransmitting (the CON was acknowledged, answered or given up). */
static void cl_con_done(tc_ep *ep, uint64_t now, uint32_t ci) {
  client_rec *c = &CL(ep)[ci];
  if (c->con != NONE) {
    con_release(ep, c->con);
    c->con = NONE;
  }
  if (c->flags & CF_INMID) {
    mid_unlink(ep, c->mid, ci);
    c->flags &= (uint8_t)~CF_INMID;
  }
  cl_outstanding_done(ep, now, ci);
}

static void cl_free(tc_ep *ep, uint64_t now, uint32_t ci) {
  client_rec *c = &CL(ep)[ci];
  if (c->state == C_HELD) { /* unlink from the peer's held list */
    peer_rec *p = &PR(ep)[c->peer];
    uint32_t *link = &p->held_head, prev = NONE;
    while (*link != NONE && *link != ci) {
      prev = *link;
      link = &CL(ep)[*link].held_next;
    }
    if (*link == ci) *link = c->held_next;
    if (p->held_tail == ci) p->held_tail = prev;
    {
      uint32_t pi = c->peer;
      c->peer = NONE;
      peer_put(ep, pi);
    }
  }
  cl_con_done(ep, now, ci);
  if (c->flags & CF_INTOK) {
    uint32_t *link = &TB(ep)[c->tok_bucket];
    while (*link != NONE && *link != ci) link = &CL(ep)[*link].tok_next;
    if (*link == ci) *link = c->tok_next;
  }
  c->state = C_FREE;
  c->flags = 0;
  c->gen = (uint16_t)(((c->gen + 1u) & GEN_MASK) ? ((c->gen + 1u) & GEN_MASK) : 1u);
  c->held_next = ep->cl_free;
  ep->cl_free = ci;
  ep->cl_count--;
}

/* A response for client ci arrived: fill ev, finish or keep the request. */
static void cl_response(tc_ep *ep, uint64_t now, uint32_t ci, uint32_t confirmable,
                        tc_ep_event *ev) {
  client_rec *c = &CL(ep)[ci];
  cl_con_done(ep, now, ci);
  c->flags |= CF_GOT;
  ev->kind = TC_EV_RESPONSE;
  ev->id = cl_id(ep, ci);
  ev->status = 0;
  ev->flags = confirmable ? TC_EVF_CONFIRMABLE : 0u;
  if (c->flags & CF_KEEP) {
    c->state = C_WAIT;
    c->deadline = NEVER;
  } else {
    ev->flags |= TC_EVF_LAST;
    cl_free(ep, now, ci);
  }
}

static void cl_fail(tc_ep *ep, uint64_t now, uint32_t ci, int32_t status, tc_ep_event *ev) {
  ev->kind = TC_EV_FAILED;
  ev->id = cl_id(ep, ci);
  ev->status = status;
  ev->flags = TC_EVF_LAST;
  if (status == TC_E_TIMEOUT) ep->st.timeouts++;
  cl_free(ep, now, ci);
}

/* Send held requests of peer pi while NSTART allows. Returns 0 or TC_E_FULL. */
static int release_held(tc_ep *ep, uint64_t now, tc_txq *tx, uint32_t pi) {
  peer_rec *p = &PR(ep)[pi];
  while (p->held_head != NONE && p->con_out < ep->cfg.nstart) {
    uint32_t ci = p->held_head;
    client_rec *c = &CL(ep)[ci];
    con_rec *s = &CS(ep)[c->con];
    if (send_copy(ep, tx, c->addr, c->alen, CDATA(ep, c->con), s->len) < 0) return TC_E_FULL;
    p->held_head = c->held_next;
    if (p->held_head == NONE) p->held_tail = NONE;
    c->held_next = NONE;
    c->state = C_SENT;
    c->flags |= CF_OUT | CF_INMID;
    p->con_out++;
    mid_link(ep, c->mid, ci);
    con_start(ep, now, c->con);
  }
  return 0;
}

/* ------------------------------------------------------------------ options */

/* The first critical option that is unrecognized, has a bad length or is repeated without
 * being repeatable (RFC 7252 §5.4.1, §5.4.3, §5.4.5); -1 if none. */
static int32_t bad_critical(uint32_t code, const tc_opt *o, uint32_t n) {
  uint32_t i, prev = NONE;
  for (i = 0; i < n; i++) {
    uint32_t num = o[i].number;
    if (num & 1u) {
      const tc_option_def *def = tc_option_find(code, num);
      /* known to the registry is not enough: the endpoint must act on it */
      if (num == OPT_OSCORE || num == OPT_QBLOCK1 || num == OPT_QBLOCK2) return (int32_t)num;
      if (def == NULL || o[i].length < def->min_length || o[i].length > def->max_length ||
          (num == prev && !def->repeatable))
        return (int32_t)num;
    }
    prev = num;
  }
  return -1;
}

/* RFC 7967: is a response with this code suppressed by No-Response value v? */
static inline int suppressed(uint32_t v, uint32_t code) {
  switch (code >> 5) {
  case 2: return (v & 0x02u) != 0;
  case 4: return (v & 0x08u) != 0;
  case 5: return (v & 0x10u) != 0;
  default: return 0;
  }
}

/* ------------------------------------------------------------------ Echo (RFC 9175) */

/* The Echo value for addr at time now: 2 bytes of seconds (mod 2^16), 6 bytes of MAC. */
static void echo_make(const tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                      uint32_t t, uint8_t out[ECHO_LEN]) {
  uint8_t b[TC_ADDR_MAX + 3];
  uint64_t mac;
  uint32_t i;
  (void)now;
  b[0] = (uint8_t)(t >> 8);
  b[1] = (uint8_t)t;
  b[2] = (uint8_t)alen;
  memcpy(b + 3, addr, alen);
  mac = tc_siphash(ep->echo_k0, ep->echo_k1, b, 3u + alen, 2, 4);
  out[0] = b[0];
  out[1] = b[1];
  for (i = 0; i < 6; i++) out[2 + i] = (uint8_t)(mac >> (8 * i));
}

static inline uint32_t echo_time(uint64_t now) { return (uint32_t)(now / 1000u) & 0xFFFFu; }

/* Whether v is an Echo value we gave addr within echo_lifetime_ms. */
static int echo_valid(const tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                      const uint8_t *v, uint32_t vlen) {
  uint8_t want[ECHO_LEN];
  uint32_t t, age, diff = 0, i;
  if (vlen != ECHO_LEN) return 0;
  t = (uint32_t)v[0] << 8 | v[1];
  age = (echo_time(now) - t) & 0xFFFFu;
  if ((uint64_t)age * 1000u > (uint64_t)ep->cfg.echo_lifetime_ms + 999u) return 0;
  echo_make(ep, now, addr, alen, t, want);
  for (i = 0; i < ECHO_LEN; i++) diff |= (uint32_t)(want[i] ^ v[i]);
  return diff == 0;
}

static inline ver_rec *ver_set(tc_ep *ep, uint64_t h) {
  return &VR(ep)[((uint32_t)(h >> 40) & (ep->vsets - 1u)) * VER_WAYS];
}

static int ver_find(tc_ep *ep, uint64_t now, uint64_t h, const uint8_t *addr, uint32_t alen) {
  ver_rec *v = ver_set(ep, h);
  uint32_t i;
  for (i = 0; i < VER_WAYS; i++)
    if (v[i].expires > now && addr_eq(v[i].addr, v[i].alen, addr, alen)) return 1;
  return 0;
}

/* Remember addr as verified: its own entry, else an empty or expired one, else the one that
 * expires soonest in its set. */
static void ver_add(tc_ep *ep, uint64_t now, uint64_t h, const uint8_t *addr, uint32_t alen) {
  ver_rec *v = ver_set(ep, h), *best = NULL;
  uint32_t i;
  for (i = 0; i < VER_WAYS; i++) {
    if (v[i].expires != 0u && addr_eq(v[i].addr, v[i].alen, addr, alen)) {
      best = &v[i];
      break;
    }
    if (best == NULL || v[i].expires < best->expires) best = &v[i];
  }
  if (best->expires == 0u) ep->vlive++;
  memcpy(best->addr, addr, alen);
  best->alen = (uint8_t)alen;
  best->expires = add_sat(now, ep->cfg.verified_lifetime_ms);
  if (best->expires == 0u) best->expires = 1u;
}

/* Encode 4.01 with a fresh Echo option for addr into src/o/m (src >= ECHO_LEN bytes). */
static void echo_challenge_msg(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                               uint8_t *src, tc_opt *o, tc_msg *m) {
  memset(m, 0, sizeof *m);
  m->code = CODE_UNAUTHORIZED;
  echo_make(ep, now, addr, alen, echo_time(now), src);
  o->number = OPT_ECHO;
  o->offset = 0;
  o->length = ECHO_LEN;
  m->option_count = 1;
  ep->st.echo_challenges++;
}

/* Whether addr has shown it receives (or the defence is off). */
static inline int amp_verified(tc_ep *ep, uint64_t now, uint64_t h, const uint8_t *addr,
                               uint32_t alen) {
  return ep->cfg.amplification_factor == 0u || ver_find(ep, now, h, addr, alen);
}

#define NO_BUDGET UINT64_MAX /* a verified endpoint (or the defence off): no byte budget */

/* Bytes that may still go to an unverified endpoint for a request of req_len bytes, spent
 * already bytes on it (an empty ACK): amplification_factor x req_len - spent, at least 0. */
static inline uint64_t amp_budget(const tc_ep *ep, uint32_t req_len, uint32_t spent) {
  uint64_t b = (uint64_t)ep->cfg.amplification_factor * req_len;
  return b > spent ? b - spent : 0u;
}

/* ------------------------------------------------------------------ responding */

/*
 * Send response resp to the request remembered in dedup record d (which holds the peer and
 * the request's MID). Changes state only on success: sets d's state (cached / ack-only) and
 * consumes a CON slot for a separate CON response.
 */
static int emit_response(tc_ep *ep, uint64_t now, tc_txq *tx, uint32_t d, uint32_t rtype,
                         uint32_t acked, const uint8_t *tok, uint32_t tkl, uint32_t nores,
                         const tc_msg *resp, tc_opt *opts, const uint8_t *src,
                         uint64_t budget) {
  dedup_rec *r = &DD(ep)[d];
  uint32_t alen = r->alen, n, s;
  int len;
  uint64_t pos;
  if (suppressed(nores, resp->code)) {
    if (rtype == TC_CON && !acked) {
      if (send_empty(ep, tx, r->addr, alen, TC_ACK, r->mid) < 0) return TC_E_FULL;
    }
    r->state = D_ACKONLY;
    return 0;
  }
  if (rtype == TC_CON && acked && ep->con_free == NONE) {
    /* every CON slot is busy (e.g. held by peers that never ACK): rather than leave an
     * accepted request unanswered, send the separate response NON (RFC 7252 §5.2.3) */
    rtype = TC_NON;
    ep->st.responses_non++;
  }
  if (rtype == TC_CON && acked) { /* separate response: CON, retransmitted until ACKed */
    con_rec *c;
    len = enc(CDATA(ep, ep->con_free), ep->cfg.max_message_size, TC_CON, resp->code,
              ep->next_mid & 0xFFFFu, tok, tkl, resp, opts, src);
    if (len == TC_E_BUFFER_TOO_SMALL) return TC_E_MESSAGE_TOO_LARGE;
    if (len < 0) return len;
    if (!tx_room(tx, (uint64_t)alen + (uint32_t)len)) return TC_E_FULL;
    s = con_alloc(ep);
    c = &CS(ep)[s];
    memcpy(c->addr, r->addr, alen);
    c->alen = (uint8_t)alen;
    c->kind = K_SERVER;
    c->mid = (uint16_t)ep->next_mid;
    ep->next_mid = (ep->next_mid + 1u) & 0xFFFFu;
    c->len = (uint32_t)len;
    mid_link(ep, c->mid, s | CON_TAG);
    con_start(ep, now, s);
    if (budget / (uint32_t)len <= ep->cfg.max_retransmit) {
      /* toward an unverified endpoint: only the transmissions the budget pays for (the
       * caller made sure of the first) */
      uint64_t more = budget / (uint32_t)len;
      c->retrans = (uint16_t)(ep->cfg.max_retransmit - (more > 0u ? more - 1u : 0u));
    }
    (void)send_copy(ep, tx, r->addr, alen, CDATA(ep, s), c->len);
    r->state = D_ACKONLY;
    return 0;
  }
  {
    /* encode straight into the queue, bounded by max_message_size and the room left */
    uint32_t type = rtype == TC_CON ? TC_ACK : TC_NON;
    uint32_t mid = rtype == TC_CON ? r->mid : ep->next_mid;
    uint8_t *out;
    n = 0;
    if (tx->count < tx->item_cap && tx->used <= tx->cap && tx->cap - tx->used >= alen)
      n = tx->cap - tx->used - alen;
    if (n > ep->cfg.max_message_size) n = ep->cfg.max_message_size;
    out = tx_data(tx, alen);
    len = enc(n ? out : NULL, n, type, resp->code, mid, tok, tkl, resp, opts, src);
    if (n == 0 || len == TC_E_BUFFER_TOO_SMALL) { /* why: too large, or no room? */
      if (n != 0) len = enc(NULL, 0, type, resp->code, mid, tok, tkl, resp, opts, src);
      if (len < 0) return len;
      return (uint32_t)len > ep->cfg.max_message_size ? TC_E_MESSAGE_TOO_LARGE : TC_E_FULL;
    }
    if (len < 0) return len;
    if (type == TC_NON) ep->next_mid = (ep->next_mid + 1u) & 0xFFFFu;
    tx_commit(ep, tx, r->addr, alen, (uint32_t)len);
    if (cache_put(ep, out, (uint32_t)len, &pos)) {
      r->state = D_CACHED;
      r->cpos = pos;
      r->aux = (uint32_t)len;
    } else {
      r->state = D_ACKONLY;
    }
  }
  return 0;
}

static uint32_t put_uint(uint8_t *p, uint32_t v) {
  uint32_t n = v > 0xFFFFFFu ? 4u : v > 0xFFFFu ? 3u : v > 0xFFu ? 2u : v ? 1u : 0u, i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8u * (n - 1u - i)));
  return n;
}

static uint32_t put_text(uint8_t *p, const char *s) {
  uint32_t n = 0;
  while (s[n]) {
    p[n] = (uint8_t)s[n];
    n++;
  }
  return n;
}

static uint32_t put_dec(uint8_t *p, uint32_t v) {
  uint8_t t[10];
  uint32_t n = 0, i;
  do {
    t[n++] = (uint8_t)('0' + v % 10u);
    v /= 10u;
  } while (v);
  for (i = 0; i < n; i++) p[i] = t[n - 1u - i];
  return n;
}

/* A response generated by the layer itself (4.02, 4.05, 5.03, 5.05), remembered for dedup. */
static void auto_respond(tc_ep *ep, uint64_t now, tc_txq *tx, uint64_t h, const uint8_t *addr,
                         uint32_t alen, const tc_msg *req, const uint8_t *data, uint32_t len,
                         uint32_t verified, uint32_t code, int32_t bad_opt, uint32_t nores) {
  uint8_t src[64];
  tc_opt o;
  tc_msg m;
  uint32_t n = 0, d;
  const uint8_t *tok = data + req->token_offset;
  memset(&m, 0, sizeof m);
  m.code = code;
  if (code == CODE_SERVICE_UNAVAILABLE) {
    o.number = OPT_MAX_AGE;
    o.offset = 0;
    o.length = put_uint(src, ep->cfg.overload_max_age);
    n = o.length;
    m.option_count = 1;
  } else if (code == CODE_BAD_OPTION) {
    n = put_text(src, "Bad critical option ");
    n += put_dec(src + n, (uint32_t)bad_opt);
  } else if (code == CODE_PROXYING_NOT_SUPPORTED) {
    n = put_text(src, "Not a proxy");
  } else if (code == CODE_UNAUTHORIZED) { /* RFC 9175 §2.4: prove you receive at addr */
    echo_challenge_msg(ep, now, addr, alen, src, &o, &m);
    n = 0;
  }
  if (code != CODE_SERVICE_UNAVAILABLE && code != CODE_UNAUTHORIZED) {
    m.payload_offset = 0;
    m.payload_length = n;
  }
  d = dedup_insert(ep, now, h, addr, alen, req->message_id, D_ACKONLY,
                   req->type == TC_CON ? ep->exchange_lifetime : ep->non_lifetime);
  if (!verified) { /* RFC 9175 §2.4: at most amplification_factor x the request's bytes */
    uint64_t budget = amp_budget(ep, len, 0);
    int el = enc(NULL, 0, TC_CON, m.code, 0, tok, req->token_length, &m,
                 m.option_count ? &o : NULL, src);
    if (el >= 0 && (uint64_t)el > budget && m.payload_length != 0u) {
      m.payload_length = 0; /* the diagnostic payload is optional */
      el = enc(NULL, 0, TC_CON, m.code, 0, tok, req->token_length, &m,
               m.option_count ? &o : NULL, src);
    }
    if (el < 0 || (uint64_t)el > budget) {
      /* not even that fits (a 4-byte request): a CON gets RST (4 bytes), a NON nothing */
      if (code == CODE_UNAUTHORIZED) ep->st.echo_challenges--;
      DD(ep)[d].state = D_IGNORE;
      if (req->type == TC_CON) (void)send_empty(ep, tx, addr, alen, TC_RST, req->message_id);
      return;
    }
  }
  (void)emit_response(ep, now, tx, d, req->type, 0, tok, req->token_length, nores, &m,
                      m.option_count ? &o : NULL, src, NO_BUDGET);
}

/* ------------------------------------------------------------------ receiving */

static void format_error(tc_ep *ep, tc_txq *tx, const uint8_t *addr, uint32_t alen,
                         const uint8_t *data, size_t len) {
  ep->st.format_errors++;
  /* Reject a CON with RST (needs a readable header, version 1); anything else is ignored. */
  if (len >= 4 && (data[0] >> 6) == 1u && ((data[0] >> 4) & 3u) == TC_CON)
    (void)send_empty(ep, tx, addr, alen, TC_RST, (uint32_t)data[2] << 8 | data[3]);
}

static void on_duplicate(tc_ep *ep, uint64_t now, tc_txq *tx, uint64_t h, uint32_t d,
                         uint32_t type, size_t len) {
  dedup_rec *r = &DD(ep)[d];
  ep->st.duplicates++;
  if (type == TC_NON) { /* RFC 7252 §4.5: silently ignored, never answered again */
    ep->st.non_duplicates++;
    return;
  }
  switch (r->state) {
  case D_INPROG:
    if (type == TC_CON && (IP(ep)[r->aux].flags & IF_ACKED))
      (void)send_empty(ep, tx, r->addr, r->alen, TC_ACK, r->mid);
    return;
  case D_CACHED:
    if (cache_valid(ep, r->cpos)) {
      uint32_t cap = ep->cfg.response_cache_bytes;
      /* a short datagram with the Message ID of a longer request must not fetch a response
       * over the limit toward an unverified endpoint: ignored (a true duplicate has the
       * request's length, and the response was within the limit of that) */
      if (!amp_verified(ep, now, h, r->addr, r->alen) &&
          r->aux > amp_budget(ep, len > 0xFFFFu ? 0xFFFFu : (uint32_t)len, 0))
        return;
      if (send_copy(ep, tx, r->addr, r->alen, CACHE(ep) + (r->cpos % cap), r->aux) == 0)
        ep->st.replays++;
      return;
    }
    r->state = D_ACKONLY; /* evicted from the cache */
    /* fall through */
  case D_ACKONLY:
    if (type == TC_CON) (void)send_empty(ep, tx, r->addr, r->alen, TC_ACK, r->mid);
    return;
  default:
    return;
  }
}

static void on_request(tc_ep *ep, uint64_t now, tc_txq *tx, uint64_t h, const uint8_t *addr,
                       uint32_t alen, const uint8_t *data, size_t len, tc_msg *msg,
                       const tc_opt *opts, tc_ep_event *ev) {
  uint32_t code = msg->code, i, nores = 0, proxy = 0, d, slot, pi, verified = 1, observe = 0;
  uint32_t rlen = len > 0xFFFFu ? 0xFFFFu : (uint32_t)len;
  int32_t bad = -1;
  const tc_opt *echo = NULL;
  ip_rec *r;
  for (i = 0; i < msg->option_count; i++) {
    uint32_t num = opts[i].number;
    if (num == OPT_NO_RESPONSE && opts[i].length <= 1u)
      nores = opts[i].length ? data[opts[i].offset] : 0u;
    else if (num == OPT_PROXY_URI || num == OPT_PROXY_SCHEME)
      proxy = !(ep->cfg.flags & TC_EPF_PROXY);
    else if (num == OPT_ECHO)
      echo = &opts[i];
    else if (num == OPT_OBSERVE) {
      uint32_t v = 1;
      observe = tc_uint_decode(data + opts[i].offset, opts[i].length, &v) == 0 && v == 0u;
    }
  }
  if (ep->cfg.amplification_factor != 0u) { /* RFC 9175 §2.4 */
    if (ver_find(ep, now, h, addr, alen)) {
      verified = 1;
    } else if (echo != NULL &&
               echo_valid(ep, now, addr, alen, data + echo->offset, echo->length)) {
      ver_add(ep, now, h, addr, alen);
      verified = 1;
    } else {
      verified = 0;
    }
  }
  if ((code & 31u) > LAST_KNOWN_METHOD) {
    auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, verified, CODE_METHOD_NOT_ALLOWED,
                 -1, nores);
    return;
  }
  bad = bad_critical(code, opts, msg->option_count);
  if (bad >= 0) {
    ep->st.bad_options++;
    /* §5.4.1: a CON request gets 4.02; a NON message with one is rejected (ignored). */
    if (msg->type == TC_CON)
      auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, verified, CODE_BAD_OPTION, bad,
                   nores);
    return;
  }
  if (proxy) {
    auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, verified,
                 CODE_PROXYING_NOT_SUPPORTED, -1, nores);
    return;
  }
  if (!verified) {
    uint32_t method = code & 31u, safe = method == 1u || method == 5u; /* GET, FETCH */
    /* notifications follow a registration without further requests: only toward an
     * endpoint that has shown it receives */
    if (observe && safe) {
      auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, 0, CODE_UNAUTHORIZED, -1, nores);
      return;
    }
    /* A response too large for the limit is replaced by 4.01 + Echo after the handler ran,
     * and the client repeats the request: harmless for a safe method, a second run of the
     * side effects for any other. So an unsafe request whose response might not fit (an
     * empty ACK may precede it) is challenged before the application sees it. */
    if (!safe && (uint64_t)ep->cfg.amplification_factor * rlen <
                     (uint64_t)ep->cfg.max_message_size + 4u) {
      auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, 0, CODE_UNAUTHORIZED, -1, nores);
      return;
    }
  }
  pi = peer_find(ep, h, addr, alen);
  if (ep->ip_free == NONE ||
      (pi != NONE && PR(ep)[pi].ip_count >= ep->cfg.max_in_progress_per_peer)) {
    ep->st.overloads++;
    auto_respond(ep, now, tx, h, addr, alen, msg, data, rlen, verified, CODE_SERVICE_UNAVAILABLE,
                 -1, nores);
    return;
  }
  if (pi == NONE) pi = peer_get(ep, h, addr, alen); /* cannot fail: a free ip slot exists */
  d = dedup_insert(ep, now, h, addr, alen, msg->message_id, D_INPROG,
                   msg->type == TC_CON ? ep->exchange_lifetime : ep->non_lifetime);
  if ((code & 31u) == 2u || (code & 31u) == 6u) DD(ep)[d].keep = KEEP_NONIDEMPOTENT;
  slot = ep->ip_free;
  r = &IP(ep)[slot];
  ep->ip_free = r->next;
  ep->ip_count++;
  r->used = 1;
  r->dedup = d;
  r->peer = pi;
  PR(ep)[pi].ip_count++;
  r->tkl = (uint8_t)msg->token_length;
  if (msg->token_length) memcpy(r->token, data + msg->token_offset, msg->token_length);
  r->nores = (uint8_t)nores;
  r->req_len = (uint16_t)rlen;
  r->flags = verified ? IF_VERIFIED : 0u;
  r->prev = r->next = NONE;
  DD(ep)[d].aux = slot;
  if (msg->type == TC_CON) {
    r->flags |= IF_CON | IF_INLIST;
    r->ack_due = add_sat(now, ep->cfg.separate_ack_delay_ms);
    r->prev = ep->ip_tail;
    if (ep->ip_tail != NONE) IP(ep)[ep->ip_tail].next = slot;
    else ep->ip_head = slot;
    ep->ip_tail = slot;
    arm(ep, r->ack_due);
  }
  ev->kind = TC_EV_REQUEST;
  ev->id = (uint32_t)r->gen << 16 | slot;
  ev->flags = msg->type == TC_CON ? TC_EVF_CONFIRMABLE : 0u;
}

/* A CON or NON response (separate response, NON response, notification). */
static void on_response(tc_ep *ep, uint64_t now, tc_txq *tx, uint64_t h, const uint8_t *addr,
                        uint32_t alen, const uint8_t *data, tc_msg *msg, const tc_opt *opts,
                        tc_ep_event *ev) {
  uint32_t ci = token_find(ep, addr, alen, data + msg->token_offset, msg->token_length);
  uint32_t mid = msg->message_id;
  if (ci == NONE || CL(ep)[ci].state == C_HELD) {
    /* unmatched: reject. RST for CON (RFC 7252 §4.2) and for NON too, which tells an
     * Observe server that we are no longer interested (RFC 7641 §3.6). */
    ep->st.unmatched++;
    (void)send_empty(ep, tx, addr, alen, TC_RST, mid);
    return;
  }
  if (bad_critical(msg->code, opts, msg->option_count) >= 0) {
    ep->st.bad_options++;
    if (msg->type == TC_CON) (void)send_empty(ep, tx, addr, alen, TC_RST, mid);
    cl_fail(ep, now, ci, TC_E_BAD_OPTION, ev);
    return;
  }
  if (msg->type == TC_CON) (void)send_empty(ep, tx, addr, alen, TC_ACK, mid);
  (void)dedup_insert(ep, now, h, addr, alen, mid, msg->type == TC_CON ? D_ACKONLY : D_IGNORE,
                     msg->type == TC_CON ? ep->exchange_lifetime : ep->non_lifetime);
  cl_response(ep, now, ci, msg->type == TC_CON, ev);
}

static void on_ack_rst(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                       const uint8_t *data, tc_msg *msg, const tc_opt *opts, tc_ep_event *ev) {
  uint32_t ref = mid_find(ep, addr, alen, msg->message_id), cls = msg->code >> 5;
  client_rec *c;
  if (msg->type == TC_RST && msg->code != 0u) { /* a Reset must be Empty */
    ep->st.format_errors++;
    return;
  }
  if (msg->code != 0u && cls != 2u && cls != 4u && cls != 5u) { /* ACK carrying a request.. */
    ep->st.format_errors++;
    return;
  }
  if (ref == NONE) {
    if (msg->type == TC_RST) { /* a Reset to one of our recent NON notifications? */
      nn_rec *n = &NN(ep)[msg->message_id & (NN_SLOTS - 1u)];
      if (n->expires != 0u && now < n->expires && n->mid == msg->message_id &&
          n->alen == alen && memcmp(n->addr, addr, alen) == 0) {
        n->expires = 0; /* reported once */
        ev->kind = TC_EV_NOTIFY_RESET;
        ev->id = TC_EP_NON_NOTIFY_ID(msg->message_id);
        ev->status = TC_E_RESET;
        ev->flags = TC_EVF_LAST;
        return;
      }
    }
    ep->st.unmatched++;
    return;
  }
  if (ref & CON_TAG) { /* our separate response or notification: ACK or RST ends it */
    uint32_t s = ref & ~CON_TAG;
    con_rec *r = &CS(ep)[s];
    if (msg->code != 0u) {
      ep->st.unmatched++;
      return;
    }
    if (r->kind == K_NOTIFY) {
      ev->kind = msg->type == TC_ACK ? TC_EV_ACKED : TC_EV_FAILED;
      ev->id = NOTIFY_ID | (uint32_t)r->gen << 16 | s;
      ev->status = msg->type == TC_ACK ? 0 : TC_E_RESET;
      ev->flags = TC_EVF_LAST;
    }
    con_release(ep, s);
    return;
  }
  c = &CL(ep)[ref];
  if (msg->type == TC_RST) {
    if (c->flags & CF_PING) cl_response(ep, now, ref, 0, ev);
    else cl_fail(ep, now, ref, TC_E_RESET, ev);
    return;
  }
  /* ACK */
  if (c->state != C_SENT) { /* an ACK for a NON request */
    ep->st.unmatched++;
    return;
  }
  if (msg->code == 0u) {
    if (c->flags & CF_PING) { /* pre-RFC peers may ACK a ping: alive all the same */
      cl_response(ep, now, ref, 0, ev);
      return;
    }
    cl_con_done(ep, now, ref);
    c->state = C_WAIT;
    c->deadline = add_sat(now, ep->cfg.response_timeout_ms);
    arm(ep, c->deadline);
    return;
  }
  /* piggybacked response: the token must match too (§5.3.2) */
  if (msg->token_length != c->tkl ||
      (c->tkl && memcmp(c->token, data + msg->token_offset, c->tkl) != 0) ||
      (c->flags & CF_PING)) {
    ep->st.unmatched++;
    return;
  }
  if (bad_critical(msg->code, opts, msg->option_count) >= 0) {
    ep->st.bad_options++;
    cl_fail(ep, now, ref, TC_E_BAD_OPTION, ev);
    return;
  }
  cl_response(ep, now, ref, 0, ev);
}

int tc_ep_recv(tc_ep *ep, uint64_t now, const tc_rx *rx, tc_txq *tx, tc_ep_event *ev) {
  uint32_t type, cls, addr_len, opt_cap;
  const uint8_t *addr, *data;
  size_t len;
  tc_msg *msg;
  tc_opt *opts;
  uint64_t h;
  uint32_t d;
  int r;
  if (ev != NULL) {
    ev->kind = TC_EV_NONE;
    ev->id = 0;
    ev->status = 0;
    ev->flags = 0;
  }
  if (rx == NULL) return TC_E_INVALID;
  addr = rx->addr;
  addr_len = rx->addr_len;
  data = rx->data;
  len = rx->len;
  msg = rx->msg;
  opts = rx->opts;
  opt_cap = rx->opt_cap;
  if (!ep_ok(ep) || !addr_ok(addr, addr_len) ||
      (data == NULL && len != 0) || !tx_ok(tx) || msg == NULL || ev == NULL ||
      (opts == NULL && opt_cap != 0))
    return TC_E_INVALID;
  if (!tx_room(tx, (uint64_t)addr_len + ep->cfg.max_message_size)) return TC_E_FULL;
  ep->st.rx++;
  r = tc_decode(data, len, TC_UDP, msg, opts, opt_cap);
  if (r < 0) {
    format_error(ep, tx, addr, addr_len, data, len);
    return 0;
  }
  type = msg->type;
  if (type == TC_ACK || type == TC_RST) {
    if (msg->token_length > TC_EP_TOKEN_MAX) {
      ep->st.format_errors++;
      return 0;
    }
    on_ack_rst(ep, now, addr, addr_len, data, msg, opts, ev);
    return 0;
  }
  if (msg->code == 0u) {
    if (type == TC_CON) { /* CoAP ping */
      (void)send_empty(ep, tx, addr, addr_len, TC_RST, msg->message_id);
    } else {
      ep->st.format_errors++; /* an Empty NON */
    }
    return 0;
  }
  cls = msg->code >> 5;
  if ((cls != 0u && cls != 2u && cls != 4u && cls != 5u) ||
      msg->token_length > TC_EP_TOKEN_MAX) {
    format_error(ep, tx, addr, addr_len, data, len);
    return 0;
  }
  h = hash_addr(ep, addr, addr_len);
  d = dedup_find(ep, now, h, addr, addr_len, msg->message_id);
  if (d != NONE) {
    on_duplicate(ep, now, tx, h, d, type, len);
    return 0;
  }
  if (cls == 0u) on_request(ep, now, tx, h, addr, addr_len, data, len, msg, opts, ev);
  else on_response(ep, now, tx, h, addr, addr_len, data, msg, opts, ev);
  return 0;
}

int tc_ep_peer(const tc_ep *ep, uint32_t id, uint8_t *out, uint32_t cap) {
  uint32_t i;
  const uint8_t *a;
  uint32_t n;
  if (!ep_ok(ep) || (out == NULL && cap != 0)) return TC_E_INVALID;
  if (id & CLIENT_ID) {
    if (cl_lookup(ep, id, &i) < 0) return TC_E_STALE;
    a = CCL(ep)[i].addr;
    n = CCL(ep)[i].alen;
  } else {
    const dedup_rec *d;
    if (ip_lookup(ep, id, &i) < 0) return TC_E_STALE;
    d = &CDD(ep)[CIP(ep)[i].dedup];
    a = d->addr;
    n = d->alen;
  }
  if (cap) memcpy(out, a, n < cap ? n : cap);
  return (int)n;
}

/* ------------------------------------------------------------------ serving */

/* Whether resp, encoded for request r, is over budget bytes.
 * A cheap upper bound first (option header <= 5 bytes), the exact size only near the limit. */
static int over_budget(const ip_rec *r, uint64_t budget, const tc_msg *resp, tc_opt *opts,
                       const uint8_t *src) {
  uint64_t bound;
  uint32_t i;
  int len;
  bound = 4u + 1u + r->tkl + (uint64_t)resp->payload_length + 1u;
  for (i = 0; i < resp->option_count; i++) bound += 5u + (uint64_t)opts[i].length;
  if (bound <= budget) return 0;
  len = enc(NULL, 0, TC_CON, resp->code, 0, r->token, r->tkl, resp, opts, src);
  return len < 0 || (uint64_t)len > budget;
}

int tc_ep_respond(tc_ep *ep, uint64_t now, uint32_t id, const tc_outmsg *out, tc_txq *tx) {
  uint32_t slot, rtype, acked;
  uint64_t budget = NO_BUDGET;
  const tc_msg *resp;
  ip_rec *r;
  int rc;
  if (!ep_ok(ep) || out == NULL || out->msg == NULL || !tx_ok(tx)) return TC_E_INVALID;
  resp = out->msg;
  if (ip_lookup(ep, id, &slot) < 0) return TC_E_STALE;
  if (!response_code_ok(resp->code)) return TC_E_INVALID;
  r = &IP(ep)[slot];
  rtype = (r->flags & IF_CON) ? TC_CON : TC_NON;
  acked = r->flags & IF_ACKED;
  if (!(r->flags & IF_VERIFIED)) budget = amp_budget(ep, r->req_len, acked ? 4u : 0u);
  if (budget != NO_BUDGET && over_budget(r, budget, resp, out->opts, out->src)) {
    /* RFC 9175 §2.4: too large for an endpoint that has not shown it receives (the empty ACK
     * already sent counts): 4.01 + Echo instead, if that fits */
    dedup_rec *dr = &DD(ep)[r->dedup];
    uint8_t esrc[ECHO_LEN];
    tc_opt eo;
    tc_msg em;
    echo_challenge_msg(ep, now, dr->addr, dr->alen, esrc, &eo, &em);
    if (over_budget(r, budget, &em, &eo, esrc)) {
      /* not even the challenge fits (a 4-byte request): RST for an unacknowledged CON, else
       * nothing */
      ep->st.echo_challenges--;
      if (rtype == TC_CON && !acked &&
          send_empty(ep, tx, dr->addr, dr->alen, TC_RST, dr->mid) < 0)
        return TC_E_FULL;
      dr->state = D_IGNORE;
      ip_release(ep, slot);
      return 0;
    }
    rc = emit_response(ep, now, tx, r->dedup, rtype, acked, r->token, r->tkl, r->nores, &em, &eo,
                       esrc, budget);
    if (rc < 0) ep->st.echo_challenges--;
  } else {
    rc = emit_response(ep, now, tx, r->dedup, rtype, acked, r->token, r->tkl, r->nores, resp,
                       out->opts, out->src, budget);
  }
  if (rc < 0) {
    if (rc == TC_E_FULL && tx->count == 0u) ep->st.responses_dropped++;
    return rc;
  }
  ip_release(ep, slot);
  return 0;
}

int tc_ep_drop(tc_ep *ep, uint32_t id) {
  uint32_t slot;
  if (!ep_ok(ep)) return TC_E_INVALID;
  if (ip_lookup(ep, id, &slot) < 0) return TC_E_STALE;
  DD(ep)[IP(ep)[slot].dedup].state = D_IGNORE;
  ip_release(ep, slot);
  return 0;
}

/* ------------------------------------------------------------------ requesting */

static int start_request(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t alen,
                         uint32_t flags, uint32_t code, const tc_msg *req, tc_opt *opts,
                         const uint8_t *src, int gen_token_length, tc_txq *tx,
                         tc_req_result *res) {
  uint8_t tok[TC_EP_TOKEN_MAX];
  uint32_t tkl, n, ci, s = NONE, pi = NONE, send_now = 1, attempt, i;
  uint64_t h = 0;
  client_rec *c;
  int len;
  if (gen_token_length >= 0) {
    if (gen_token_length > (int)TC_EP_TOKEN_MAX) return TC_E_INVALID;
    tkl = (uint32_t)gen_token_length;
  } else {
    if (req == NULL || req->token_length > TC_EP_TOKEN_MAX) return TC_E_INVALID;
    tkl = req->token_length;
    if (tkl && src == NULL) return TC_E_INVALID;
    if (tkl) memcpy(tok, src + req->token_offset, tkl);
  }
  if (ep->cl_free == NONE) return TC_E_FULL;
  if ((flags & TC_REQ_CON) && ep->con_free == NONE) return TC_E_FULL;
  len = enc(NULL, 0, TC_CON, code, 0, tok, tkl, req, opts, src);
  if (len < 0) return len;
  n = (uint32_t)len;
  if (n > ep->cfg.max_message_size) return TC_E_MESSAGE_TOO_LARGE;
  if (flags & TC_REQ_CON) {
    h = hash_addr(ep, addr, alen);
    pi = peer_find(ep, h, addr, alen);
    if (pi != NONE && PR(ep)[pi].con_out >= ep->cfg.nstart) send_now = 0;
  }
  if (send_now && !tx_room(tx, (uint64_t)alen + n)) return TC_E_FULL;
  /* token: generated ones are redrawn on a clash with an outstanding request to this peer */
  if (!(flags & CF_PING)) {
    for (attempt = 0;; attempt++) {
      if (gen_token_length > 0) {
        for (i = 0; i < tkl; i += 8) {
          uint64_t x = prf64(ep);
          uint32_t j;
          for (j = 0; j < 8 && i + j < tkl; j++) tok[i + j] = (uint8_t)(x >> (8 * j));
        }
      }
      if (token_find(ep, addr, alen, tok, tkl) == NONE) break;
      if (gen_token_length <= 0 || attempt >= 8) return TC_E_INVALID;
    }
  }
  /* commit */
  ci = ep->cl_free;
  c = &CL(ep)[ci];
  ep->cl_free = c->held_next;
  ep->cl_count++;
  memcpy(c->addr, addr, alen);
  c->alen = (uint8_t)alen;
  c->tkl = (uint8_t)tkl;
  memcpy(c->token, tok, tkl);
  c->flags = (uint8_t)(((flags & TC_REQ_CON) ? CF_CON : 0u) | ((flags & TC_REQ_KEEP) ? CF_KEEP : 0u) |
                       (flags & CF_PING));
  c->mid = (uint16_t)ep->next_mid;
  ep->next_mid = (ep->next_mid + 1u) & 0xFFFFu;
  c->con = NONE;
  c->peer = NONE;
  c->held_next = NONE;
  c->tok_next = NONE;
  c->mid_next = NONE;
  c->deadline = NEVER;
  if (!(flags & CF_PING)) {
    c->tok_bucket = token_bucket(ep, addr, alen, tok, tkl);
    c->tok_next = TB(ep)[c->tok_bucket];
    TB(ep)[c->tok_bucket] = ci;
    c->flags |= CF_INTOK;
  }
  if (flags & TC_REQ_CON) {
    con_rec *sr;
    s = con_alloc(ep);
    sr = &CS(ep)[s];
    memcpy(sr->addr, addr, alen);
    sr->alen = (uint8_t)alen;
    sr->kind = K_CLIENT;
    sr->mid = c->mid;
    sr->owner = ci;
    sr->next_tx = NEVER;
    len = enc(CDATA(ep, s), ep->cfg.max_message_size, TC_CON, code, c->mid, tok, tkl, req, opts,
              src);
    sr->len = (uint32_t)len;
    c->con = s;
    if (pi == NONE) pi = peer_get(ep, h, addr, alen); /* cannot fail: a client slot was free */
    c->peer = pi;
    if (send_now) {
      (void)send_copy(ep, tx, addr, alen, CDATA(ep, s), sr->len);
      c->state = C_SENT;
      c->flags |= CF_OUT | CF_INMID;
      PR(ep)[pi].con_out++;
      mid_link(ep, c->mid, ci);
      con_start(ep, now, s);
    } else {
      peer_rec *p = &PR(ep)[pi];
      c->state = C_HELD;
      if (p->held_tail != NONE) CL(ep)[p->held_tail].held_next = ci;
      else p->held_head = ci;
      p->held_tail = ci;
    }
  } else {
    len = enc(tx_data(tx, alen), n, TC_NON, code, c->mid, tok, tkl, req, opts, src);
    tx_commit(ep, tx, addr, alen, (uint32_t)len);
    c->state = C_WAIT;
    c->flags |= CF_INMID; /* a RST may answer it */
    mid_link(ep, c->mid, ci);
    c->deadline = add_sat(now, ep->cfg.response_timeout_ms);
    arm(ep, c->deadline);
  }
  if (res) {
    res->id = cl_id(ep, ci);
    res->token_length = tkl;
    memcpy(res->token, tok, tkl);
  }
  return 0;
}

int tc_ep_request(tc_ep *ep, uint64_t now, const tc_req_args *a, tc_txq *tx,
                  tc_req_result *res) {
  const tc_msg *req;
  if (!ep_ok(ep) || a == NULL || !addr_ok(a->addr, a->addr_len) || a->req.msg == NULL ||
      !tx_ok(tx) || (a->flags & ~(TC_REQ_CON | TC_REQ_KEEP)) != 0u)
    return TC_E_INVALID;
  req = a->req.msg;
  if ((req->code >> 5) != 0u || (req->code & 31u) == 0u) return TC_E_INVALID;
  return start_request(ep, now, a->addr, a->addr_len, a->flags, req->code, req, a->req.opts,
                       a->req.src, a->gen_token_length, tx, res);
}

int tc_ep_ping(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t addr_len, tc_txq *tx,
               uint32_t *id) {
  if (!ep_ok(ep) || !addr_ok(addr, addr_len) || !tx_ok(tx))
    return TC_E_INVALID;
  tc_req_result res;
  int rc = start_request(ep, now, addr, addr_len, TC_REQ_CON | CF_PING, 0u, NULL, NULL, NULL, 0,
                         tx, &res);
  if (rc == 0 && id) *id = res.id;
  return rc;
}

static int notify_lookup(const tc_ep *ep, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFu;
  const con_rec *s;
  if ((id & (CLIENT_ID | NOTIFY_ID)) != NOTIFY_ID || i >= ep->cfg.con_slots) return TC_E_STALE;
  s = &CCS(ep)[i];
  if (s->kind != K_NOTIFY || s->gen != ((id >> 16) & GEN_MASK)) return TC_E_STALE;
  *slot = i;
  return 0;
}

int tc_ep_notify(tc_ep *ep, uint64_t now, const tc_notify_args *a, tc_txq *tx,
                 tc_notify_result *res) {
  uint32_t n, s, addr_len, flags, token_len;
  const uint8_t *addr, *token, *src;
  const tc_msg *resp;
  tc_opt *opts;
  int len;
  if (!ep_ok(ep) || a == NULL || !addr_ok(a->addr, a->addr_len) || a->resp.msg == NULL ||
      !tx_ok(tx) || (a->flags & ~(TC_REQ_CON | TC_NOTIFY_NON_IF_BUSY)) != 0u ||
      a->token_len > TC_EP_TOKEN_MAX || (a->token == NULL && a->token_len != 0))
    return TC_E_INVALID;
  addr = a->addr;
  addr_len = a->addr_len;
  flags = a->flags;
  token = a->token;
  token_len = a->token_len;
  resp = a->resp.msg;
  opts = a->resp.opts;
  src = a->resp.src;
  if (!response_code_ok(resp->code)) return TC_E_INVALID;
  len = enc(NULL, 0, TC_CON, resp->code, 0, token, token_len, resp, opts, src);
  if (len < 0) return len;
  n = (uint32_t)len;
  if (n > ep->cfg.max_message_size) return TC_E_MESSAGE_TOO_LARGE;
  if (!tx_room(tx, (uint64_t)addr_len + n)) return TC_E_FULL;
  if ((flags & TC_REQ_CON) && ep->con_free == NONE && !(flags & TC_NOTIFY_NON_IF_BUSY))
    return TC_E_FULL;
  if ((flags & TC_REQ_CON) && ep->con_free != NONE) {
    con_rec *c;
    len = enc(CDATA(ep, ep->con_free), ep->cfg.max_message_size, TC_CON, resp->code,
              ep->next_mid, token, token_len, resp, opts, src);
    if (len < 0) return len;
    s = con_alloc(ep);
    c = &CS(ep)[s];
    memcpy(c->addr, addr, addr_len);
    c->alen = (uint8_t)addr_len;
    c->kind = K_NOTIFY;
    c->mid = (uint16_t)ep->next_mid;
    c->len = (uint32_t)len;
    ep->next_mid = (ep->next_mid + 1u) & 0xFFFFu;
    mid_link(ep, c->mid, s | CON_TAG);
    con_start(ep, now, s);
    (void)send_copy(ep, tx, addr, addr_len, CDATA(ep, s), c->len);
    if (res) {
      res->flags = TC_NOTIFY_SENT_CON;
      res->id = NOTIFY_ID | (uint32_t)c->gen << 16 | s;
      res->mid = 0;
    }
    return 0;
  }
  len = enc(tx_data(tx, addr_len), n, TC_NON, resp->code, ep->next_mid, token, token_len, resp,
            opts, src);
  if (len < 0) return len;
  {
    nn_rec *nr = &NN(ep)[ep->next_mid & (NN_SLOTS - 1u)];
    nr->expires = add_sat(now, ep->non_lifetime);
    if (nr->expires == 0u) nr->expires = 1u;
    nr->mid = (uint16_t)ep->next_mid;
    nr->alen = (uint8_t)addr_len;
    memcpy(nr->addr, addr, addr_len);
  }
  if (res) {
    res->flags = TC_NOTIFY_HAS_MID;
    res->id = 0;
    res->mid = ep->next_mid;
  }
  ep->next_mid = (ep->next_mid + 1u) & 0xFFFFu;
  tx_commit(ep, tx, addr, addr_len, (uint32_t)len);
  return 0;
}

/* ------------------------------------------------------------ the messaging seam */

static int seam_respond(const tc_messaging *m, uint64_t now, uint32_t id, const tc_outmsg *resp) {
  return tc_ep_respond((tc_ep *)m->state, now, id, resp, (tc_txq *)m->out);
}

static int seam_notify(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                       tc_notify_result *res) {
  return tc_ep_notify((tc_ep *)m->state, now, a, (tc_txq *)m->out, res);
}

static int seam_drop(const tc_messaging *m, uint32_t id) {
  return tc_ep_drop((tc_ep *)m->state, id);
}

static const tc_messaging_ops ep_seam_ops = {seam_respond, seam_notify, seam_drop};

int tc_ep_messaging(tc_ep *ep, tc_txq *tx, tc_messaging *m) {
  if (m == NULL) return TC_E_INVALID;
  memset(m, 0, sizeof *m);
  if (!ep_ok(ep) || tx == NULL) return TC_E_INVALID;
  m->ops = &ep_seam_ops;
  m->state = ep;
  m->out = tx;
  m->transport = TC_UDP;
  m->flags = 0;
  m->max_message_size = ep->cfg.max_message_size;
  m->max_exchanges = ep->cfg.max_in_progress;
  return 0;
}

tc_ep *tc_messaging_ep(const tc_messaging *m) {
  return m != NULL && m->ops == &ep_seam_ops ? (tc_ep *)m->state : NULL;
}

int tc_ep_cancel(tc_ep *ep, uint32_t id) {
  uint32_t ci;
  if (!ep_ok(ep)) return TC_E_INVALID;
  if ((id & (CLIENT_ID | NOTIFY_ID)) == NOTIFY_ID) {
    if (notify_lookup(ep, id, &ci) < 0) return TC_E_STALE;
    con_release(ep, ci);
    return 0;
  }
  if (cl_lookup(ep, id, &ci) < 0) return TC_E_STALE;
  /* `now` only matters for arming a held-request release: arm at 0 (= immediately). */
  cl_free(ep, 0, ci);
  return 0;
}

int tc_ep_unreachable(tc_ep *ep, uint64_t now, const uint8_t *addr, uint32_t addr_len,
                      tc_ep_event *events, uint32_t ev_cap) {
  uint32_t i, nev = 0;
  if (!ep_ok(ep) || !addr_ok(addr, addr_len) || (events == NULL && ev_cap != 0))
    return TC_E_INVALID;
  for (i = 0; i < ep->cfg.max_client_requests && nev < ev_cap; i++) {
    const client_rec *c = &CL(ep)[i];
    if (c->state != C_FREE && addr_eq(c->addr, c->alen, addr, addr_len))
      cl_fail(ep, now, i, TC_E_UNREACHABLE, &events[nev++]);
  }
  return (int)nev;
}

/* ------------------------------------------------------------------ time */

static void recompute_deadline(tc_ep *ep, uint64_t now) {
  uint64_t t = NEVER;
  uint32_t i;
  con_rec *cs = CS(ep);
  client_rec *cl = CL(ep);
  if (ep->ip_head != NONE) t = IP(ep)[ep->ip_head].ack_due;
  for (i = 0; i < ep->cfg.con_slots; i++)
    if (cs[i].kind != K_FREE && cs[i].next_tx < t) t = cs[i].next_tx;
  for (i = 0; i < ep->cfg.max_client_requests; i++) {
    client_rec *c = &cl[i];
    if (c->state == C_WAIT && c->deadline < t) t = c->deadline;
    else if (c->state == C_HELD && PR(ep)[c->peer].held_head == i &&
             PR(ep)[c->peer].con_out < ep->cfg.nstart && now < t)
      t = now;
  }
  {
    uint64_t s = dedup_sweep_due(ep);
    if (s < t) t = s;
  }
  ep->next_deadline = t;
}

int tc_ep_timer(tc_ep *ep, uint64_t now, tc_txq *tx, tc_ep_event *events, uint32_t ev_cap) {
  uint32_t nev = 0, i, pass;
  if (!ep_ok(ep) || !tx_ok(tx) || (events == NULL && ev_cap != 0)) return TC_E_INVALID;
  if (now < ep->next_deadline) return 0;

  /* 1. empty ACKs for CON requests not answered within separate_ack_delay_ms (FIFO) */
  while (ep->ip_head != NONE) {
    uint32_t s = ep->ip_head;
    ip_rec *r = &IP(ep)[s];
    dedup_rec *d;
    if (r->ack_due > now) break;
    d = &DD(ep)[r->dedup];
    if (send_empty(ep, tx, d->addr, d->alen, TC_ACK, d->mid) < 0) break;
    r->flags |= IF_ACKED;
    ip_list_unlink(ep, s);
  }

  /* 2. retransmissions and give-ups of CON messages */
  for (i = 0; i < ep->cfg.con_slots; i++) {
    con_rec *s = &CS(ep)[i];
    if (s->kind == K_FREE || s->next_tx > now) continue;
    if (s->retrans < ep->cfg.max_retransmit) {
      if (send_copy(ep, tx, s->addr, s->alen, CDATA(ep, i), s->len) < 0) continue;
      s->retrans++;
      s->timeout *= 2u;
      s->next_tx = now + s->timeout;
      ep->st.retransmits++;
    } else if (s->kind == K_SERVER) {
      con_release(ep, i); /* separate response never acknowledged: drop it */
    } else if (s->kind == K_NOTIFY) {
      tc_ep_event *e;
      if (nev >= ev_cap) continue;
      e = &events[nev++];
      e->kind = TC_EV_FAILED;
      e->id = NOTIFY_ID | (uint32_t)s->gen << 16 | i;
      e->status = TC_E_TIMEOUT;
      e->flags = TC_EVF_LAST;
      ep->st.timeouts++;
      con_release(ep, i);
    } else {
      if (nev >= ev_cap) continue;
      cl_fail(ep, now, s->owner, TC_E_TIMEOUT, &events[nev++]);
    }
  }

  /* 3. client response timeouts, then held (NSTART) requests; a second pass releases
   *    requests freed up by the first */
  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < ep->cfg.max_client_requests; i++) {
      client_rec *c = &CL(ep)[i];
      if (c->state == C_WAIT && c->deadline <= now) {
        if (nev >= ev_cap) continue;
        cl_fail(ep, now, i, TC_E_TIMEOUT, &events[nev++]);
      }
    }
    for (i = 0; i < ep->cfg.max_client_requests; i++) {
      client_rec *c = &CL(ep)[i];
      if (c->state == C_HELD && PR(ep)[c->peer].held_head == i)
        (void)release_held(ep, now, tx, c->peer);
    }
  }

  /* 4. forget expired exchanges */
  dedup_sweep(ep, now);

  recompute_deadline(ep, now);
  return (int)nev;
}

uint64_t tc_ep_next_deadline(const tc_ep *ep) { return ep_ok(ep) ? ep->next_deadline : NEVER; }

void tc_ep_get_stats(const tc_ep *ep, tc_ep_stats *out) {
  if (out == NULL) return;
  if (!ep_ok(ep)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = ep->st;
  out->in_progress = ep->ip_count;
  out->client_requests = ep->cl_count;
  out->con_slots_used = ep->con_count;
  out->dedup_used = ep->dlive;
  out->peers = ep->peer_count;
  out->verified = ep->vlive;
}

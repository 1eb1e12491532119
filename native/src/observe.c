/*
 * observe.c — the server side of Observe (RFC 7641): registrations and notification fan-out
 * through the messaging seam (tc_messaging), sans-IO. See turbocoap_bw.h for the contract.
 *
 * Everything lives in one caller-owned block laid out by tc_obs_init():
 *
 *   struct tc_obs       config, keys, counters, table offsets
 *   obs [M]             observers: peer, token, resource, CON bookkeeping
 *   key buckets         hash(peer, token) -> observer chain (registrations)
 *   con buckets         ep notification id -> observer (a CON notification in flight)
 *   mid buckets         hash(peer, MID of the last NON notification) -> observer (RST to NON)
 *   res [R]             resources with observers: id, sequence counter, observer list
 *   res buckets         hash(id) -> resource chain
 *   jobs [J]            fan-outs in progress: the staged notification and a cursor
 *   job opts [J * (O+1)], job data [J * S]
 *
 * Each resource keeps its observers on a doubly linked list; new registrations go to the head.
 * A fan-out job walks the list from the head it saw when it started (its cursor), so
 * registrations made while it is pending are not visited, and an observer removed while it is
 * pending moves the cursor on. An observer served by a job is marked with the job's serial
 * number, so the number still to serve is exact. Sequence numbers are 64-bit counters per
 * resource (the low 24 bits go on the wire); a new resource record starts at the largest value
 * any freed record reached, so values for one resource id never go back.
 */
#include <string.h>

#include "internal.h"

#define OBS_MAGIC 0x74634f62u /* "tcOb" */
#define NOTIFY_ID_MASK 0xC0000000u
#define NOTIFY_ID_BIT 0x40000000u

/* observer flags */
#define OF_USED 1u
#define OF_INCON 2u
#define OF_INMID 4u
#define OF_CONFIRMED 8u /* it acknowledged a CON notification: known to be there */
/* confirm_first: CON notifications an unconfirmed observer is sent at most, each newer one
 * replacing the one in flight (RFC 7641 §4.5.2); after that, nothing until it acknowledges */
#define UNCONF_MAX 8u

typedef struct obs_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t tkl;
  uint8_t flags;
  uint8_t gen;
  uint8_t token[TC_EP_TOKEN_MAX];
  uint32_t res;        /* resource record */
  uint32_t prev, next; /* resource list; free list (next) */
  uint32_t hnext, hb;  /* (peer, token) index */
  uint32_t cnext, cb;  /* con id index */
  uint32_t mnext, mb;  /* (peer, mid) index */
  uint32_t con_id;     /* CON notification in flight, or 0 */
  uint32_t non_count;  /* notifications since the last CON */
  uint32_t mark;       /* serial of the last job that served it */
  uint16_t mid;        /* MID of the last NON notification */
  uint16_t unconf;     /* CON notifications sent while unconfirmed (confirm_first) */
  uint64_t last_con;   /* when the last CON was sent (or the registration) */
  uint32_t host;       /* host record (per-host count) */
  uint32_t pad2;
} obs_rec;

/* A host (address without its port) with observers: how many. */
typedef struct host_rec {
  uint8_t addr[TC_ADDR_MAX];
  uint8_t alen;
  uint8_t pad[3];
  uint32_t count;
  uint32_t next; /* bucket chain, or free list */
  uint32_t hb;
} host_rec;

typedef struct res_rec {
  uint32_t id;
  uint32_t used;
  uint32_t head;
  uint32_t count;
  uint32_t hnext, hb;
  uint32_t job;
  uint32_t pad;
  uint64_t seq;
} res_rec;

typedef struct job {
  uint32_t used;
  uint32_t res;
  uint32_t cursor;
  uint32_t remaining;
  uint32_t serial;
  uint32_t flags;
  uint32_t code;
  uint32_t nopts;
  uint32_t payload_offset, payload_length;
  uint32_t final;    /* non-2.xx: observers are removed once notified */
  uint64_t order;
} job;

struct tc_obs {
  uint32_t magic;
  uint32_t pad;
  tc_obs_config cfg;
  uint64_t k0, k1;
  uint64_t gseq;  /* largest sequence counter of a freed resource record */
  uint64_t order; /* job FIFO counter */
  uint64_t off_obs, off_kb, off_cb, off_mb, off_res, off_rb, off_jobs, off_jopts, off_jdata, size;
  uint32_t omask, rmask;
  uint32_t o_free, o_count;
  uint64_t off_host, off_hb;
  uint32_t h_free, h_count;
  uint32_t r_free, r_count;
  uint32_t serial;
  uint32_t pad2;
  tc_obs_stats st;
};

typedef struct obs_layout {
  uint64_t off_obs, off_kb, off_cb, off_mb, off_res, off_rb, off_jobs, off_jopts, off_jdata, size;
  uint64_t off_host, off_hb;
  uint32_t obuckets, rbuckets;
} obs_layout;

static int config_ok(const tc_obs_config *c) {
  return c != NULL && c->max_observers >= 1u && c->max_observers <= (1u << 24) &&
         c->max_per_resource >= 1u && c->max_per_resource <= c->max_observers &&
         c->max_resources >= 1u && c->max_resources <= (1u << 24) && c->con_interval_ms >= 1u &&
         c->max_jobs >= 1u && c->max_jobs <= 256u && c->max_message_size >= 16u &&
         c->max_message_size <= 65535u && c->max_opts >= 1u && c->max_opts <= 64u &&
         c->max_per_host >= 1u &&
         (c->port_offset == TC_NO_PORT || c->port_offset <= TC_ADDR_MAX - 2u) &&
         c->confirm_first <= 1u;
}

static int layout_of(const tc_obs_config *c, obs_layout *l) {
  uint64_t o;
  if (!config_ok(c)) return -1;
  l->obuckets = pow2_at_least(c->max_observers);
  l->rbuckets = pow2_at_least(c->max_resources);
  o = up8(sizeof(struct tc_obs));
  l->off_obs = o;
  o = up8(o + (uint64_t)c->max_observers * sizeof(obs_rec));
  l->off_kb = o;
  o = up8(o + (uint64_t)l->obuckets * 4u);
  l->off_cb = o;
  o = up8(o + (uint64_t)l->obuckets * 4u);
  l->off_mb = o;
  o = up8(o + (uint64_t)l->obuckets * 4u);
  l->off_res = o;
  o = up8(o + (uint64_t)c->max_resources * sizeof(res_rec));
  l->off_rb = o;
  o = up8(o + (uint64_t)l->rbuckets * 4u);
  l->off_jobs = o;
  o = up8(o + (uint64_t)c->max_jobs * sizeof(job));
  l->off_jopts = o;
  o = up8(o + (uint64_t)c->max_jobs * (c->max_opts + 1u) * sizeof(tc_opt));
  l->off_jdata = o;
  o = up8(o + (uint64_t)c->max_jobs * c->max_message_size);
  l->off_host = o;
  o = up8(o + (uint64_t)c->max_observers * sizeof(host_rec));
  l->off_hb = o;
  o = up8(o + (uint64_t)l->obuckets * 4u);
  l->size = o;
  if (o > (uint64_t)SIZE_MAX) return -1;
  return 0;
}

void tc_obs_config_default(tc_obs_config *c) {
  if (c == NULL) return;
  c->max_observers = 16384;
  c->max_per_resource = 16384;
  c->max_resources = 1024;
  c->con_every = 20;
  c->con_interval_ms = 86400000u;
  c->max_jobs = 8;
  c->max_message_size = 1280;
  c->max_opts = 16;
  c->max_per_host = 64;
  c->port_offset = 1;
  c->confirm_first = 1;
}

size_t tc_obs_size(const tc_obs_config *cfg) {
  obs_layout l;
  return layout_of(cfg, &l) < 0 ? 0 : (size_t)l.size;
}

#define OB(o) ((obs_rec *)(void *)((uint8_t *)(o) + (o)->off_obs))
#define COB(o) ((const obs_rec *)(const void *)((const uint8_t *)(o) + (o)->off_obs))
#define KB(o) ((uint32_t *)(void *)((uint8_t *)(o) + (o)->off_kb))
#define CKB(o) ((const uint32_t *)(const void *)((const uint8_t *)(o) + (o)->off_kb))
#define CB(o) ((uint32_t *)(void *)((uint8_t *)(o) + (o)->off_cb))
#define MB(o) ((uint32_t *)(void *)((uint8_t *)(o) + (o)->off_mb))
#define RS(o) ((res_rec *)(void *)((uint8_t *)(o) + (o)->off_res))
#define CRS(o) ((const res_rec *)(const void *)((const uint8_t *)(o) + (o)->off_res))
#define RB(o) ((uint32_t *)(void *)((uint8_t *)(o) + (o)->off_rb))
#define CRB(o) ((const uint32_t *)(const void *)((const uint8_t *)(o) + (o)->off_rb))
#define JOBS(o) ((job *)(void *)((uint8_t *)(o) + (o)->off_jobs))
#define CJOBS(o) ((const job *)(const void *)((const uint8_t *)(o) + (o)->off_jobs))
#define JOPTS(o, j) \
  ((tc_opt *)(void *)((uint8_t *)(o) + (o)->off_jopts + \
                      (uint64_t)(j) * ((o)->cfg.max_opts + 1u) * sizeof(tc_opt)))
#define JDATA(o, j) ((uint8_t *)(o) + (o)->off_jdata + (uint64_t)(j) * (o)->cfg.max_message_size)
#define HR(o) ((host_rec *)(void *)((uint8_t *)(o) + (o)->off_host))
#define HB(o) ((uint32_t *)(void *)((uint8_t *)(o) + (o)->off_hb))

int tc_obs_init(tc_obs *o, size_t mem_len, const tc_obs_config *cfg, const uint8_t seed[16]) {
  obs_layout l;
  uint32_t i;
  if (o == NULL || seed == NULL || layout_of(cfg, &l) < 0 || mem_len < l.size ||
      ((uintptr_t)o & 7u) != 0u)
    return TC_E_INVALID;
  memset(o, 0, sizeof *o);
  o->cfg = *cfg;
  for (i = 0; i < 8u; i++) {
    o->k0 = o->k0 << 8 | seed[7u - i];
    o->k1 = o->k1 << 8 | seed[15u - i];
  }
  o->off_obs = l.off_obs;
  o->off_kb = l.off_kb;
  o->off_cb = l.off_cb;
  o->off_mb = l.off_mb;
  o->off_res = l.off_res;
  o->off_rb = l.off_rb;
  o->off_jobs = l.off_jobs;
  o->off_jopts = l.off_jopts;
  o->off_jdata = l.off_jdata;
  o->size = l.size;
  o->off_host = l.off_host;
  o->off_hb = l.off_hb;
  o->omask = l.obuckets - 1u;
  o->rmask = l.rbuckets - 1u;
  for (i = 0; i < cfg->max_observers; i++) {
    obs_rec *r = &OB(o)[i];
    memset(r, 0, sizeof *r);
    r->gen = 1;
    r->next = i + 1u < cfg->max_observers ? i + 1u : NONE;
  }
  for (i = 0; i < l.obuckets; i++) KB(o)[i] = CB(o)[i] = MB(o)[i] = HB(o)[i] = NONE;
  for (i = 0; i < cfg->max_observers; i++) {
    memset(&HR(o)[i], 0, sizeof(host_rec));
    HR(o)[i].next = i + 1u < cfg->max_observers ? i + 1u : NONE;
  }
  o->h_free = 0;
  for (i = 0; i < cfg->max_resources; i++) {
    res_rec *r = &RS(o)[i];
    memset(r, 0, sizeof *r);
    r->hnext = i + 1u < cfg->max_resources ? i + 1u : NONE; /* free list via hnext */
    r->job = NONE;
  }
  for (i = 0; i < l.rbuckets; i++) RB(o)[i] = NONE;
  for (i = 0; i < cfg->max_jobs; i++) memset(&JOBS(o)[i], 0, sizeof(job));
  o->o_free = 0;
  o->r_free = 0;
  o->magic = OBS_MAGIC;
  return 0;
}

static inline int obs_ok(const tc_obs *o) { return o != NULL && o->magic == OBS_MAGIC; }

/* A (peer, token) an observer can have. */
static inline int observer_ok(const uint8_t *peer, uint32_t peer_len, const uint8_t *token,
                              uint32_t token_len) {
  return addr_ok(peer, peer_len) && token_len <= TC_EP_TOKEN_MAX &&
         (token != NULL || token_len == 0u);
}

/* ---------------------------------------------------------- hashing (SipHash-1-3) */

/* Keyed hash of (tag, a[0..an), b[0..bn)). */
static uint64_t hash2(const tc_obs *o, uint8_t tag, const uint8_t *a, uint32_t an,
                      const uint8_t *b, uint32_t bn) {
  tc_sip h;
  uint8_t hdr[2];
  hdr[0] = tag;
  hdr[1] = (uint8_t)an;
  tc_sip_init(&h, o->k0, o->k1, 1, 3);
  tc_sip_add(&h, hdr, 2);
  tc_sip_add(&h, a, an);
  if (bn) tc_sip_add(&h, b, bn);
  return tc_sip_end(&h);
}

static uint32_t key_bucket(const tc_obs *o, const uint8_t *a, uint32_t alen, const uint8_t *t,
                           uint32_t tkl) {
  return (uint32_t)(hash2(o, 0, a, alen, t, tkl) & o->omask);
}

static uint32_t mid_bucket(const tc_obs *o, const uint8_t *a, uint32_t alen, uint32_t mid) {
  uint8_t m[2];
  m[0] = (uint8_t)(mid >> 8);
  m[1] = (uint8_t)mid;
  return (uint32_t)(hash2(o, 1, a, alen, m, 2) & o->omask);
}

/* The host of an address: the address with its port (2 bytes at port_offset) zeroed. */
static void host_of(const tc_obs *o, const uint8_t *a, uint32_t alen, uint8_t *out) {
  uint32_t p = o->cfg.port_offset;
  memcpy(out, a, alen);
  if (p != TC_NO_PORT && p + 2u <= alen) out[p] = out[p + 1u] = 0;
}

static uint32_t host_find(const tc_obs *o, const uint8_t *h, uint32_t alen, uint32_t *bucket) {
  const host_rec *hr = (const host_rec *)(const void *)((const uint8_t *)o + o->off_host);
  const uint32_t *hb = (const uint32_t *)(const void *)((const uint8_t *)o + o->off_hb);
  uint32_t i;
  *bucket = (uint32_t)(hash2(o, 2, h, alen, NULL, 0) & o->omask);
  for (i = hb[*bucket]; i != NONE; i = hr[i].next)
    if (hr[i].alen == alen && memcmp(hr[i].addr, h, alen) == 0) return i;
  return NONE;
}

/* One observer fewer on host record i (freed at 0). */
static void host_put(tc_obs *o, uint32_t i) {
  host_rec *h = &HR(o)[i];
  uint32_t *link;
  if (h->count > 1u) {
    h->count--;
    return;
  }
  link = &HB(o)[h->hb];
  while (*link != NONE && *link != i) link = &HR(o)[*link].next;
  if (*link == i) *link = h->next;
  h->count = 0;
  h->next = o->h_free;
  o->h_free = i;
  o->h_count--;
}

static uint32_t mix32(const tc_obs *o, uint32_t x) { return (uint32_t)fmix64((uint64_t)x ^ o->k0); }

/* ------------------------------------------------------------------ indexes */

static void chain_remove(uint32_t *head, obs_rec *ob, uint32_t i, int which) {
  uint32_t *p = head;
  while (*p != NONE) {
    obs_rec *r = &ob[*p];
    if (*p == i) {
      *p = which == 0 ? r->hnext : which == 1 ? r->cnext : r->mnext;
      return;
    }
    p = which == 0 ? &r->hnext : which == 1 ? &r->cnext : &r->mnext;
  }
}

static uint32_t obs_find(const tc_obs *o, const uint8_t *a, uint32_t alen, const uint8_t *t,
                         uint32_t tkl) {
  uint32_t i = CKB(o)[key_bucket(o, a, alen, t, tkl)];
  while (i != NONE) {
    const obs_rec *r = &COB(o)[i];
    if (r->alen == alen && r->tkl == tkl && memcmp(r->addr, a, alen) == 0 &&
        (tkl == 0u || memcmp(r->token, t, tkl) == 0))
      return i;
    i = r->hnext;
  }
  return NONE;
}

static void con_link(tc_obs *o, uint32_t i, uint32_t id) {
  obs_rec *r = &OB(o)[i];
  r->con_id = id;
  r->cb = mix32(o, id) & o->omask;
  r->cnext = CB(o)[r->cb];
  CB(o)[r->cb] = i;
  r->flags |= OF_INCON;
}

static void con_unlink(tc_obs *o, uint32_t i) {
  obs_rec *r = &OB(o)[i];
  if (!(r->flags & OF_INCON)) return;
  chain_remove(&CB(o)[r->cb], OB(o), i, 1);
  r->flags &= (uint8_t)~OF_INCON;
  r->con_id = 0;
}

static uint32_t con_find(tc_obs *o, uint32_t id) {
  uint32_t i = CB(o)[mix32(o, id) & o->omask];
  while (i != NONE) {
    if (OB(o)[i].con_id == id) return i;
    i = OB(o)[i].cnext;
  }
  return NONE;
}

static void mid_unlink(tc_obs *o, uint32_t i) {
  obs_rec *r = &OB(o)[i];
  if (!(r->flags & OF_INMID)) return;
  chain_remove(&MB(o)[r->mb], OB(o), i, 2);
  r->flags &= (uint8_t)~OF_INMID;
}

static void mid_link(tc_obs *o, uint32_t i, uint32_t mid) {
  obs_rec *r = &OB(o)[i];
  uint32_t b, j;
  mid_unlink(o, i);
  b = mid_bucket(o, r->addr, r->alen, mid);
  /* a stale record of the same (peer, MID) (the ep's MIDs wrapped) no longer names it */
  j = MB(o)[b];
  while (j != NONE) {
    obs_rec *q = &OB(o)[j];
    uint32_t nx = q->mnext;
    if (q->mid == mid && q->alen == r->alen && memcmp(q->addr, r->addr, r->alen) == 0)
      mid_unlink(o, j);
    j = nx;
  }
  r->mid = (uint16_t)mid;
  r->mb = b;
  r->mnext = MB(o)[r->mb];
  MB(o)[r->mb] = i;
  r->flags |= OF_INMID;
}

/* ---------------------------------------------------------------- resources */

static uint32_t res_find(const tc_obs *o, uint32_t id) {
  uint32_t i = CRB(o)[mix32(o, id ^ 0x9E3779B9u) & o->rmask];
  while (i != NONE) {
    const res_rec *r = &CRS(o)[i];
    if (r->id == id) return i;
    i = r->hnext;
  }
  return NONE;
}

static uint32_t res_new(tc_obs *o, uint32_t id) {
  uint32_t i = o->r_free;
  res_rec *r;
  if (i == NONE) return NONE;
  r = &RS(o)[i];
  o->r_free = r->hnext;
  r->id = id;
  r->used = 1;
  r->head = NONE;
  r->count = 0;
  r->job = NONE;
  r->seq = o->gseq;
  r->hb = mix32(o, id ^ 0x9E3779B9u) & o->rmask;
  r->hnext = RB(o)[r->hb];
  RB(o)[r->hb] = i;
  o->r_count++;
  return i;
}

static void res_free(tc_obs *o, uint32_t i) {
  res_rec *r = &RS(o)[i];
  uint32_t *p = &RB(o)[r->hb];
  while (*p != NONE) {
    if (*p == i) {
      *p = r->hnext;
      break;
    }
    p = &RS(o)[*p].hnext;
  }
  if (r->seq > o->gseq) o->gseq = r->seq;
  r->used = 0;
  r->hnext = o->r_free;
  o->r_free = i;
  o->r_count--;
}

/* Take observer i off its resource's list (fixing a pending job's cursor and count). */
static void res_unlink_obs(tc_obs *o, uint32_t i) {
  obs_rec *ob = &OB(o)[i];
  res_rec *r = &RS(o)[ob->res];
  if (r->job != NONE) {
    job *jb = &JOBS(o)[r->job];
    if (ob->mark != jb->serial && jb->remaining > 0u) jb->remaining--;
    if (jb->cursor == i) jb->cursor = ob->next;
  }
  if (ob->prev != NONE) OB(o)[ob->prev].next = ob->next;
  else r->head = ob->next;
  if (ob->next != NONE) OB(o)[ob->next].prev = ob->prev;
  ob->prev = ob->next = NONE;
  r->count--;
}

static void res_link_obs(tc_obs *o, uint32_t ri, uint32_t i) {
  obs_rec *ob = &OB(o)[i];
  res_rec *r = &RS(o)[ri];
  ob->res = ri;
  ob->prev = NONE;
  ob->next = r->head;
  if (r->head != NONE) OB(o)[r->head].prev = i;
  r->head = i;
  r->count++;
  /* not part of a fan-out already under way */
  ob->mark = r->job != NONE ? JOBS(o)[r->job].serial : 0u;
}

static void job_free(tc_obs *o, uint32_t j) {
  job *jb = &JOBS(o)[j];
  res_rec *r = &RS(o)[jb->res];
  r->job = NONE;
  jb->used = 0;
  if (r->count == 0u) res_free(o, jb->res);
}

/* After an observer left resource ri: a fan-out with nobody left to serve is finished, and a
 * resource with no observers and no fan-out is forgotten. */
static void res_settle(tc_obs *o, uint32_t ri) {
  res_rec *r = &RS(o)[ri];
  if (r->job != NONE && JOBS(o)[r->job].cursor == NONE) {
    JOBS(o)[r->job].used = 0;
    r->job = NONE;
  }
  if (r->count == 0u && r->job == NONE) res_free(o, ri);
}

/* ---------------------------------------------------------------- observers */

static inline uint32_t obs_id(const tc_obs *o, uint32_t i) {
  return (uint32_t)COB(o)[i].gen << 24 | i;
}

static int obs_lookup(const tc_obs *o, uint32_t id, uint32_t *slot) {
  uint32_t i = id & 0xFFFFFFu;
  const obs_rec *r;
  if (i >= o->cfg.max_observers) return TC_E_STALE;
  r = &COB(o)[i];
  if (!(r->flags & OF_USED) || r->gen != (id >> 24)) return TC_E_STALE;
  *slot = i;
  return 0;
}

static void obs_del(tc_obs *o, uint32_t i) {
  obs_rec *ob = &OB(o)[i];
  uint32_t ri = ob->res;
  res_unlink_obs(o, i);
  chain_remove(&KB(o)[ob->hb], OB(o), i, 0);
  con_unlink(o, i);
  mid_unlink(o, i);
  host_put(o, ob->host);
  ob->flags = 0;
  ob->gen = (uint8_t)(ob->gen + 1u);
  if (ob->gen > 127u) ob->gen = 1; /* ids stay below 2^31: they are returned as int */
  ob->next = o->o_free;
  o->o_free = i;
  o->o_count--;
  res_settle(o, ri);
}

int tc_obs_register(tc_obs *o, uint64_t now, const tc_observer *who, uint32_t resource,
                    uint32_t *seq) {
  const uint8_t *peer, *token;
  uint32_t i, ri, peer_len, token_len, hi = NONE, hb = 0;
  uint8_t host[TC_ADDR_MAX];
  obs_rec *ob;
  if (who == NULL) return TC_E_INVALID;
  peer = who->peer;
  peer_len = who->peer_len;
  token = who->token;
  token_len = who->token_len;
  if (!obs_ok(o) || !observer_ok(peer, peer_len, token, token_len))
    return TC_E_INVALID;
  i = obs_find(o, peer, peer_len, token, token_len);
  ri = res_find(o, resource);
  if (i == NONE) { /* a new observer: within its host's bound */
    host_of(o, peer, peer_len, host);
    hi = host_find(o, host, peer_len, &hb);
    if (hi != NONE && HR(o)[hi].count >= o->cfg.max_per_host) {
      o->st.rejected++;
      o->st.rejected_host++;
      return TC_E_FULL;
    }
  }
  if (i != NONE && OB(o)[i].res == ri) { /* the same registration again: refresh it */
    ob = &OB(o)[i];
    ob->last_con = now;
  } else {
    /* room: a slot (unless re-registering), a resource record, a place on its list */
    if ((i == NONE && o->o_free == NONE) || (ri == NONE && o->r_free == NONE) ||
        (ri != NONE && RS(o)[ri].count >= o->cfg.max_per_resource)) {
      o->st.rejected++;
      return TC_E_FULL;
    }
    if (ri == NONE) ri = res_new(o, resource);
    if (i != NONE) { /* moves to another resource */
      uint32_t old = OB(o)[i].res;
      res_unlink_obs(o, i);
      res_settle(o, old);
      ob = &OB(o)[i];
    } else {
      i = o->o_free;
      ob = &OB(o)[i];
      o->o_free = ob->next;
      o->o_count++;
      memcpy(ob->addr, peer, peer_len);
      ob->alen = (uint8_t)peer_len;
      ob->tkl = (uint8_t)token_len;
      if (token_len) memcpy(ob->token, token, token_len);
      ob->flags = OF_USED;
      ob->con_id = 0;
      ob->unconf = 0;
      if (hi == NONE) { /* a free host record exists: hosts <= observers */
        hi = o->h_free;
        o->h_free = HR(o)[hi].next;
        memcpy(HR(o)[hi].addr, host, peer_len);
        HR(o)[hi].alen = (uint8_t)peer_len;
        HR(o)[hi].count = 0;
        HR(o)[hi].hb = hb;
        HR(o)[hi].next = HB(o)[hb];
        HB(o)[hb] = hi;
        o->h_count++;
      }
      HR(o)[hi].count++;
      ob->host = hi;
      ob->hb = key_bucket(o, peer, peer_len, token, token_len);
      ob->hnext = KB(o)[ob->hb];
      KB(o)[ob->hb] = i;
    }
    ob->non_count = 0;
    ob->last_con = now;
    res_link_obs(o, ri, i);
  }
  RS(o)[ri].seq++;
  if (seq) *seq = (uint32_t)(RS(o)[ri].seq & 0xFFFFFFu);
  return (int)obs_id(o, i);
}

int tc_obs_deregister(tc_obs *o, const uint8_t *peer, uint32_t peer_len, const uint8_t *token,
                      uint32_t token_len) {
  uint32_t i;
  if (!obs_ok(o) || !observer_ok(peer, peer_len, token, token_len))
    return TC_E_INVALID;
  i = obs_find(o, peer, peer_len, token, token_len);
  if (i == NONE) return TC_E_STALE;
  obs_del(o, i);
  return 0;
}

int tc_obs_find(const tc_obs *o, const uint8_t *peer, uint32_t peer_len, const uint8_t *token,
                uint32_t token_len) {
  uint32_t i;
  if (!obs_ok(o) || !observer_ok(peer, peer_len, token, token_len))
    return TC_E_INVALID;
  i = obs_find(o, peer, peer_len, token, token_len);
  return i == NONE ? TC_E_STALE : (int)obs_id(o, i);
}

int tc_obs_remove(tc_obs *o, uint32_t id) {
  uint32_t i;
  if (!obs_ok(o)) return TC_E_INVALID;
  if (obs_lookup(o, id, &i) < 0) return TC_E_STALE;
  obs_del(o, i);
  return 0;
}

int tc_obs_forget_peer(tc_obs *o, const uint8_t *peer, uint32_t peer_len) {
  uint32_t i;
  int n = 0;
  if (!obs_ok(o) || !addr_ok(peer, peer_len)) return TC_E_INVALID;
  for (i = 0; i < o->cfg.max_observers; i++) {
    const obs_rec *r = &COB(o)[i];
    if ((r->flags & OF_USED) && r->alen == peer_len && memcmp(r->addr, peer, peer_len) == 0) {
      obs_del(o, i);
      o->st.removed_reset++;
      n++;
    }
  }
  return n;
}

uint32_t tc_obs_count(const tc_obs *o, uint32_t resource) {
  uint32_t ri;
  if (!obs_ok(o)) return 0;
  ri = res_find(o, resource);
  return ri == NONE ? 0u : CRS(o)[ri].count;
}

/* ------------------------------------------------------------------ fan-out */

/* Run pending jobs in FIFO order; returns 1 if stopped for want of room in the output. */
static int run_jobs(tc_obs *o, const tc_messaging *m, uint64_t now, uint32_t *sent) {
  int reliable = (m->flags & TC_MSGF_RELIABLE) != 0u;
  for (;;) {
    uint32_t j, best = NONE;
    job *jb;
    tc_msg msg;
    tc_notify_args na;
    for (j = 0; j < o->cfg.max_jobs; j++)
      if (JOBS(o)[j].used && (best == NONE || JOBS(o)[j].order < JOBS(o)[best].order)) best = j;
    if (best == NONE) return 0;
    jb = &JOBS(o)[best];
    memset(&msg, 0, sizeof msg);
    msg.code = jb->code;
    msg.option_count = jb->nopts;
    msg.payload_offset = jb->payload_offset;
    msg.payload_length = jb->payload_length;
    na.resp.msg = &msg;
    na.resp.opts = JOPTS(o, best);
    na.resp.src = JDATA(o, best);
    na.reserved = 0;
    while (jb->cursor != NONE) {
      uint32_t oi = jb->cursor, next;
      obs_rec *ob = &OB(o)[oi];
      tc_notify_result nr;
      int con, r;
      /* over a reliable transport no notification is confirmable (RFC 8323 §7.1) */
      con = !reliable &&
            ((jb->flags & TC_OBS_CON) != 0u ||
             (o->cfg.con_every != 0u && ob->non_count + 1u >= o->cfg.con_every) ||
             (now >= ob->last_con && now - ob->last_con >= o->cfg.con_interval_ms));
      if (!reliable && o->cfg.confirm_first && !(ob->flags & OF_CONFIRMED) && !jb->final) {
        /* not known to be there (it never acknowledged a notification): CON, each newer
         * state replacing the one in flight, at most UNCONF_MAX, so that a vanished observer
         * is removed after one CON's retransmissions */
        if (ob->unconf >= UNCONF_MAX) {
          o->st.skipped_unconfirmed++;
          goto next_observer;
        }
        if (ob->con_id != 0u) {
          tc_ep *ep = tc_messaging_ep(m);
          if (ep != NULL) (void)tc_ep_cancel(ep, ob->con_id);
          con_unlink(o, oi);
        }
        con = 1;
      }
      if (ob->con_id != 0u) con = 0; /* one CON in flight per observer */
      na.addr = ob->addr;
      na.addr_len = ob->alen;
      na.token = ob->token;
      na.token_len = ob->tkl;
      /* no CON slot: NON now, the CON stays due */
      na.flags = con ? TC_REQ_CON | TC_NOTIFY_NON_IF_BUSY : 0u;
      r = tc_messaging_notify(m, now, &na, &nr);
      if (r == TC_E_FULL) return 1;
      next = ob->next;
      if (r < 0) {
        o->st.errors++;
      } else {
        (*sent)++;
        if (nr.flags & TC_NOTIFY_SENT_CON) {
          o->st.sent_con++;
          if (!(ob->flags & OF_CONFIRMED) && ob->unconf < 0xFFFFu) ob->unconf++;
          ob->non_count = 0;
          ob->last_con = now;
          con_link(o, oi, nr.id);
        } else {
          if (con) o->st.con_deferred++;
          o->st.sent_non++;
          ob->non_count++;
          if (nr.flags & TC_NOTIFY_HAS_MID) mid_link(o, oi, nr.mid);
        }
      }
      ob->mark = jb->serial;
      if (jb->remaining > 0u) jb->remaining--;
      jb->cursor = next;
      if (r >= 0 && jb->final) {
        obs_del(o, oi);
        o->st.removed_final++;
      }
      continue;
    next_observer:
      ob->mark = jb->serial;
      if (jb->remaining > 0u) jb->remaining--;
      jb->cursor = ob->next;
    }
    if (jb->used) job_free(o, best); /* (a final notification may have ended it already) */
  }
}

int tc_obs_notify(tc_obs *o, const tc_messaging *m, uint64_t now, uint32_t resource,
                  uint32_t flags, const tc_outmsg *out) {
  const tc_msg *resp;
  const tc_opt *opts;
  const uint8_t *src;
  uint32_t ri, cls, i, nopts = 0, j, sent = 0, w;
  uint64_t bytes = 3;
  job *jb;
  tc_opt *jo;
  uint8_t *jd;
  res_rec *r;
  int final, enc;
  if (!obs_ok(o) || m == NULL || m->ops == NULL || out == NULL || out->msg == NULL ||
      (out->opts == NULL && out->msg->option_count != 0u) || (flags & ~TC_OBS_CON) != 0u)
    return TC_E_INVALID;
  resp = out->msg;
  opts = out->opts;
  src = out->src;
  cls = resp->code >> 5;
  if (!response_code_ok(resp->code)) return TC_E_INVALID;
  final = cls != 2u;
  for (i = 0; i < resp->option_count; i++) {
    if (opts[i].number == TC_OPT_OBSERVE) continue;
    if (opts[i].number > 65535u || opts[i].length > 65535u) return TC_E_INVALID;
    if (src == NULL && opts[i].length != 0u) return TC_E_INVALID;
    nopts++;
    bytes += opts[i].length;
  }
  if (resp->payload_length != 0u && src == NULL) return TC_E_INVALID;
  bytes += resp->payload_length;
  if (nopts > o->cfg.max_opts || bytes > o->cfg.max_message_size) return TC_E_MESSAGE_TOO_LARGE;
  ri = res_find(o, resource);
  if (ri == NONE || RS(o)[ri].count == 0u) return 0;
  r = &RS(o)[ri];
  if (r->job != NONE) {
    j = r->job; /* a newer state replaces the pending one */
  } else {
    for (j = 0; j < o->cfg.max_jobs; j++)
      if (!JOBS(o)[j].used) break;
    if (j == o->cfg.max_jobs) return TC_E_FULL;
    JOBS(o)[j].order = ++o->order;
  }
  jb = &JOBS(o)[j];
  jo = JOPTS(o, j);
  jd = JDATA(o, j);
  w = 0;
  nopts = 0;
  if (!final) {
    uint8_t t[4];
    int l;
    r->seq++;
    l = tc_uint_encode((uint32_t)(r->seq & 0xFFFFFFu), t);
    memcpy(jd, t, (size_t)l);
    jo[0].number = TC_OPT_OBSERVE;
    jo[0].offset = 0;
    jo[0].length = (uint32_t)l;
    w = (uint32_t)l;
    nopts = 1;
  }
  for (i = 0; i < resp->option_count; i++) {
    if (opts[i].number == TC_OPT_OBSERVE) continue;
    jo[nopts].number = opts[i].number;
    jo[nopts].offset = w;
    jo[nopts].length = opts[i].length;
    if (opts[i].length) memcpy(jd + w, src + opts[i].offset, opts[i].length);
    w += opts[i].length;
    nopts++;
  }
  if (resp->payload_length) memcpy(jd + w, src + resp->payload_offset, resp->payload_length);
  jb->used = 1;
  jb->res = ri;
  jb->code = resp->code;
  jb->nopts = nopts;
  jb->payload_offset = w;
  jb->payload_length = resp->payload_length;
  jb->flags = flags;
  jb->final = (uint32_t)final;
  jb->cursor = r->head;
  jb->remaining = r->count;
  jb->serial = ++o->serial;
  if (jb->serial == 0u) jb->serial = ++o->serial;
  r->job = j;
  {
    /* encodable with the transport's framing (else nobody could be sent it) */
    tc_msg em;
    memset(&em, 0, sizeof em);
    em.code = jb->code;
    em.option_count = nopts;
    em.payload_offset = w;
    em.payload_length = resp->payload_length;
    enc = tc_encode(NULL, 0, (int)m->transport, &em, jo, jd);
  }
  if (enc < 0) {
    job_free(o, j);
    return enc;
  }
  (void)run_jobs(o, m, now, &sent);
  return (int)sent;
}

int tc_obs_resume(tc_obs *o, const tc_messaging *m, uint64_t now) {
  uint32_t sent = 0;
  if (!obs_ok(o) || m == NULL || m->ops == NULL) return TC_E_INVALID;
  (void)run_jobs(o, m, now, &sent);
  return (int)sent;
}

uint32_t tc_obs_pending(const tc_obs *o) {
  uint32_t j, n = 0;
  if (!obs_ok(o)) return 0;
  for (j = 0; j < o->cfg.max_jobs; j++)
    if (CJOBS(o)[j].used) n += CJOBS(o)[j].remaining;
  return n;
}

/* ------------------------------------------------------------------- events */

int tc_obs_on_event(tc_obs *o, uint64_t now, const tc_ep_event *ev) {
  uint32_t i;
  (void)now;
  if (!obs_ok(o) || ev == NULL) return 0;
  if ((ev->kind != TC_EV_ACKED && ev->kind != TC_EV_FAILED) ||
      (ev->id & NOTIFY_ID_MASK) != NOTIFY_ID_BIT)
    return 0;
  i = con_find(o, ev->id);
  if (i == NONE) return 0;
  if (ev->kind == TC_EV_ACKED) {
    con_unlink(o, i);
    OB(o)[i].flags |= OF_CONFIRMED;
    return 1;
  }
  if (ev->status == TC_E_RESET) o->st.removed_reset++;
  else o->st.removed_timeout++;
  obs_del(o, i);
  return 1;
}

int tc_obs_on_reset(tc_obs *o, const uint8_t *peer, uint32_t peer_len, uint32_t mid) {
  uint32_t i;
  if (!obs_ok(o) || !addr_ok(peer, peer_len) || mid > 0xFFFFu) return 0;
  i = MB(o)[mid_bucket(o, peer, peer_len, mid)];
  while (i != NONE) {
    obs_rec *r = &OB(o)[i];
    if (r->mid == mid && r->alen == peer_len && memcmp(r->addr, peer, peer_len) == 0) {
      obs_del(o, i);
      o->st.removed_reset++;
      return 1;
    }
    i = r->mnext;
  }
  return 0;
}

int tc_obs_on_recv(tc_obs *o, uint64_t now, const uint8_t *peer, uint32_t peer_len,
                   const tc_ep_event *ev) {
  if (!obs_ok(o) || ev == NULL) return 0;
  if (ev->kind == TC_EV_NOTIFY_RESET)
    return tc_obs_on_reset(o, peer, peer_len, TC_EP_NON_NOTIFY_MID(ev->id));
  return tc_obs_on_event(o, now, ev);
}

void tc_obs_get_stats(const tc_obs *o, tc_obs_stats *out) {
  uint32_t j;
  if (out == NULL) return;
  if (!obs_ok(o)) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = o->st;
  out->observers = o->o_count;
  out->resources = o->r_count;
  out->pending = tc_obs_pending(o);
  out->hosts = o->h_count;
  out->jobs = 0;
  for (j = 0; j < o->cfg.max_jobs; j++)
    if (CJOBS(o)[j].used) out->jobs++;
}

/* fuzz_blockwise.c — libFuzzer harness for blockwise.c and observe.c.
 *
 * The input is a program: small stores (sizes chosen by the first bytes) are driven with
 * fuzzer-chosen sequences of Block1 blocks (from three peers, three request keys, any NUM/M/SZX,
 * BERT on or off, Size1, right or wrong payload lengths), reads, releases and timer steps;
 * Block2 puts (shared or peer-scoped, with options), finds, serves of any Block2 value, flags
 * and message limit, drops and expiry; Observe registrations, notifications fanned out through
 * a real tc_ep into a small tx queue, resumes, ACK/RST/timeouts fed back as ep events (through
 * tc_obs_on_recv, RSTs to NON notifications matched by the ep as TC_EV_NOTIFY_RESET); and
 * tc_bw_parse / tc_bw_key on fuzzer bytes decoded as a message.
 *
 * Block payloads are always the pattern byte of their offset, so every completed Block1 body
 * must read back as the pattern; every served block must be the pattern of the representation
 * at its offset, with a consistent Block2 option, and encode within the message limit; every
 * notification datagram must decode. Bounds are checked after every step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"
#include "../test/calls.h"

static const uint8_t PEERS[3][TC_ADDR_MAX] = {{10, 0, 0, 1},
                                              {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4},
                                              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}};
static const uint32_t PEER_LEN[3] = {4, 8, 28};
static const uint8_t KEYS[4][6] = {{2, 0, 0, 11, 0, 1}, {2, 0, 1, 36, 0, 1}, {3}, {1, 9, 9}};
static const uint32_t KEY_LEN[4] = {6, 6, 0, 3};

static uint8_t pat(uint32_t seed, uint32_t off) { return (uint8_t)((off * 7u + seed) % 251u); }

/* ------------------------------------------------------------------ state */

static tc_bw1 *B1;
static tc_bw1_config C1;
static tc_bw2 *B2;
static tc_bw2_config C2;
static tc_obs *OB;
static tc_obs_config CO;
static tc_ep *EP;
static tc_ep_config CE;
static uint8_t TXBUF[4096];
static tc_tx TXITEMS[6];
static tc_txq TX;
static uint64_t NOW;

#define MAX_IDS 8
static uint32_t b1_ids[MAX_IDS], n_b1;
typedef struct repm {
  uint32_t id, seed, len;
} repm;
static repm reps[MAX_IDS];
static uint32_t n_reps;
static uint16_t sent_mids[8];
static uint8_t sent_peer[8];
static uint32_t n_sent;
static uint32_t next_off[3][4]; /* where the last CONTINUE left each upload */

static void *grow(void *p, size_t n) {
  void *q = realloc(p, n);
  REQUIRE(q != NULL);
  return q;
}

static void setup(input *in) {
  uint32_t k1 = take(in), k2 = take(in), k3 = take(in);
  uint8_t seed[32];
  size_t sz;
  int i;
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(i * 5 + k1);

  tc_bw1_config_default(&C1);
  C1.max_transfers = 1 + (k1 & 3);
  C1.max_per_peer = 1 + ((k1 >> 2) & 1);
  if (C1.max_per_peer > C1.max_transfers) C1.max_per_peer = C1.max_transfers;
  C1.chunk_size = 16u << ((k1 >> 3) & 3);
  C1.pool_bytes = C1.chunk_size * (4 + (k2 & 31));
  C1.max_body = 200 + (k2 >> 5) * 600;
  C1.max_key = 8;
  C1.idle_timeout_ms = 3000;
  C1.preferred_szx = (k1 >> 5) % 7;
  sz = tc_bw1_size(&C1);
  REQUIRE(sz > 0);
  B1 = grow(B1, sz);
  REQUIRE(tc_bw1_init(B1, sz, &C1, seed) == 0);

  tc_bw2_config_default(&C2);
  C2.max_reps = 1 + (k3 & 3);
  C2.chunk_size = 16u << ((k3 >> 2) & 3);
  C2.pool_bytes = C2.chunk_size * (3 + (k2 & 63));
  C2.max_key = 8;
  C2.max_opt_bytes = 24;
  C2.max_opts = 3;
  C2.preferred_szx = (k3 >> 4) % 7;
  C2.default_lifetime_ms = 4000;
  sz = tc_bw2_size(&C2);
  REQUIRE(sz > 0);
  B2 = grow(B2, sz);
  REQUIRE(tc_bw2_init(B2, sz, &C2, seed + 16) == 0);

  tc_ep_config_default(&CE);
  CE.ack_timeout_ms = 1000;
  CE.max_retransmit = k3 >> 7;
  CE.dedup_entries = 6;
  CE.response_cache_bytes = 0;
  CE.max_in_progress = 4;
  CE.max_in_progress_per_peer = 2;
  CE.max_client_requests = 2;
  CE.con_slots = 2;
  CE.max_message_size = 200;
  sz = tc_ep_size(&CE);
  REQUIRE(sz > 0);
  EP = grow(EP, sz);
  REQUIRE(tc_ep_init(EP, sz, &CE, seed) == 0);

  tc_obs_config_default(&CO);
  CO.max_observers = 5;
  CO.max_per_resource = 3;
  CO.max_resources = 2;
  CO.max_jobs = 2;
  CO.max_message_size = 64;
  CO.max_opts = 3;
  CO.con_every = k2 & 3;
  CO.con_interval_ms = 2000;
  sz = tc_obs_size(&CO);
  REQUIRE(sz > 0);
  OB = grow(OB, sz);
  REQUIRE(tc_obs_init(OB, sz, &CO, seed + 8) == 0);

  TX.buf = TXBUF;
  TX.cap = sizeof TXBUF;
  TX.items = TXITEMS;
  TX.item_cap = 6;
  TX.used = TX.count = 0;
  NOW = 0;
  n_b1 = n_reps = n_sent = 0;
  memset(next_off, 0, sizeof next_off);
}

static void check_bounds(void) {
  tc_bw1_stats s1;
  tc_bw2_stats s2;
  tc_obs_stats so;
  tc_bw1_get_stats(B1, &s1);
  REQUIRE(s1.transfers <= C1.max_transfers && s1.chunks_used <= s1.chunks_total);
  REQUIRE(s1.chunks_total == C1.pool_bytes / C1.chunk_size);
  if (s1.transfers == 0) REQUIRE(s1.chunks_used == 0 && tc_bw1_next_deadline(B1) == UINT64_MAX);
  else REQUIRE(tc_bw1_next_deadline(B1) != UINT64_MAX);
  tc_bw2_get_stats(B2, &s2);
  REQUIRE(s2.reps <= C2.max_reps && s2.chunks_used <= s2.chunks_total);
  if (s2.reps == 0) REQUIRE(s2.chunks_used == 0);
  tc_obs_get_stats(OB, &so);
  REQUIRE(so.observers <= CO.max_observers && so.resources <= CO.max_resources);
  REQUIRE(so.jobs <= CO.max_jobs && so.pending <= so.observers);
  REQUIRE(so.jobs == 0 ? so.pending == 0 : so.pending > 0); /* no finished job lingers */
}

/* ------------------------------------------------------------------ Block1 */

/* follow: continue the upload of (pi, ki) at its next offset (so long uploads happen) */
static void op_feed(input *in, int follow) {
  static uint8_t payload[4096];
  uint32_t pi = take(in) % 3, ki = take(in) % 4, num = take(in), mode = take(in);
  uint32_t szx = mode & 7, more = (mode >> 3) & 1, flags = 0, size1 = 0, bsize, len, off, i;
  tc_bw1_result r;
  int rc;
  if (mode & 0x10) flags |= TC_BW_BERT;
  if (mode & 0x20) {
    flags |= TC_BW_HAS_SIZE1;
    size1 = take16(in) * 4;
  }
  if (num > 200) num = take16(in) & 0xFFFFF;
  if (follow) {
    uint32_t no = next_off[pi][ki];
    if (szx == 7 && !(flags & TC_BW_BERT)) szx = 6;
    while (szx > 0 && szx < 7 && no % tc_szx_size(szx) != 0) szx--;
    if (szx == 7 && no % 1024 != 0) szx = 6;
    while (szx > 0 && no % tc_szx_size(szx) != 0) szx--;
    num = no / tc_szx_size(szx);
    mode &= ~0x40u;
  }
  bsize = tc_szx_size(szx);
  off = num * bsize;
  if (mode & 0x40) len = take16(in) % 3000; /* any length */
  else if (szx == 7) len = more ? bsize * (1 + take(in) % 3) : take16(in) % 2500;
  else len = more ? bsize : take(in) % (bsize + 1);
  for (i = 0; i < len; i++) payload[i] = pat(0, off + i);
  rc = t_bw1_feed(B1, NOW, PEERS[pi], PEER_LEN[pi], KEYS[ki], KEY_LEN[ki],
                   tc_block_value(num, more, szx), flags, size1, payload, len, &r);
  REQUIRE(rc == (int)r.status && rc >= TC_BW1_CONTINUE && rc <= TC_BW1_REJECT);
  if (rc == TC_BW1_CONTINUE) next_off[pi][ki] = off + len;
  else if (rc != TC_BW1_REJECT || r.code != TC_CODE_UNAVAILABLE) next_off[pi][ki] = 0;
  switch (rc) {
  case TC_BW1_CONTINUE:
    REQUIRE(r.code == TC_CODE_CONTINUE && (r.flags & TC_BW1F_BLOCK1));
    REQUIRE((r.block1 >> 4) == num && ((r.block1 >> 3) & 1) == 1);
    REQUIRE((r.block1 & 7) <= szx && (szx != 7 || (flags & TC_BW_BERT)));
    break;
  case TC_BW1_COMPLETE: {
    static uint8_t body[1 << 16];
    uint32_t j;
    int n;
    REQUIRE(r.body_length <= C1.max_body && r.id != 0 && !more);
    if (take(in) & 1) {
      n = tc_bw1_read(B1, r.id, body, sizeof body);
      REQUIRE(n == (int)r.body_length);
      for (j = 0; j < (uint32_t)n; j++) REQUIRE(body[j] == pat(0, j));
      REQUIRE(tc_bw1_read(B1, r.id, body, sizeof body) == TC_E_STALE);
    } else if (n_b1 < MAX_IDS) {
      b1_ids[n_b1++] = r.id;
    }
    break;
  }
  case TC_BW1_WHOLE:
    REQUIRE(num == 0 && !more && r.body_length == len && len <= C1.max_body);
    break;
  default:
    REQUIRE(r.code == TC_CODE_BAD_REQUEST || r.code == TC_CODE_INCOMPLETE ||
            r.code == TC_CODE_TOO_LARGE || r.code == TC_CODE_UNAVAILABLE);
    if (r.flags & TC_BW1F_SIZE1) REQUIRE(r.code == TC_CODE_TOO_LARGE && r.size1 == C1.max_body);
    {
      tc_msg m;
      tc_opt o[4];
      uint8_t b[64], w[128];
      int n = tc_bw1_response(&r, &m, o, 4, b, sizeof b), e;
      REQUIRE(n >= 0);
      e = tc_encode(w, sizeof w, TC_UDP, &m, o, b);
      REQUIRE(e > 0);
    }
  }
}

static void op_b1_misc(input *in) {
  uint32_t what = take(in) % 3;
  if (what == 0) {
    NOW += take(in) * 40u;
    REQUIRE(tc_bw1_timer(B1, NOW) >= 0);
    REQUIRE(tc_bw1_next_deadline(B1) > NOW);
  } else if (n_b1 > 0) {
    uint32_t k = take(in) % n_b1, id = b1_ids[k];
    static uint8_t body[1 << 16];
    int n;
    b1_ids[k] = b1_ids[--n_b1];
    if (what == 1) {
      n = tc_bw1_read(B1, id, body, sizeof body);
      REQUIRE(n >= 0 || n == TC_E_STALE);
      if (n > 0) {
        uint32_t j;
        for (j = 0; j < (uint32_t)n; j++) REQUIRE(body[j] == pat(0, j));
      }
    } else {
      n = tc_bw1_release(B1, id);
      REQUIRE(n == 0 || n == TC_E_STALE);
    }
  }
}

/* ------------------------------------------------------------------ Block2 */

static void op_put(input *in) {
  static uint8_t src[6000];
  tc_msg m;
  tc_opt o[5];
  uint32_t pi = take(in) % 4, ki = take(in) % 4, seed = take(in), len = take16(in) % 5000;
  uint32_t nopt = take(in) % 5, i, w = 0, id = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.code = 0x45;
  for (i = 0; i < nopt; i++) {
    static const uint32_t nums[] = {4, 12, 14, 23, 28, 8, 2048};
    o[i].number = nums[take(in) % 7];
    o[i].offset = w;
    o[i].length = take(in) % 12;
    memset(src + w, (int)(i + 1), o[i].length);
    w += o[i].length;
  }
  m.option_count = nopt;
  m.payload_offset = w;
  m.payload_length = len;
  for (i = 0; i < len; i++) src[w + i] = pat(seed, i);
  rc = t_bw2_put(B2, NOW, pi < 3 ? PEERS[pi] : NULL, pi < 3 ? PEER_LEN[pi] : 0, KEYS[ki],
                  KEY_LEN[ki], &m, o, src, (take(in) & 1) ? take16(in) : 0, &id);
  REQUIRE(rc == 0 || rc == TC_E_MESSAGE_TOO_LARGE);
  if (rc == 0) {
    REQUIRE(tc_bw2_length(B2, id) == (int)len);
    for (i = 0; i < n_reps; i++)
      if (reps[i].id == id) break;
    if (i == n_reps) {
      if (n_reps == MAX_IDS) i = take(in) % MAX_IDS;
      else n_reps++;
    }
    /* a put that found an identical representation keeps its id; the body is the same, so
     * either seed describes it */
    reps[i].id = id;
    reps[i].seed = seed;
    reps[i].len = len;
  }
}

static void op_serve(input *in) {
  static uint8_t buf[8192], wire[8192];
  tc_msg m, d;
  tc_opt o[16], dopts[16];
  repm *rm;
  uint32_t mode = take(in), flags = 0, limit = 0, block2, j;
  int n, e, bi;
  if (n_reps == 0) return;
  rm = &reps[take(in) % n_reps];
  block2 = take(in) % 40 << 4 | (mode & 7);
  if (mode & 8) flags |= TC_BW_HAS_BLOCK2;
  if (mode & 16) flags |= TC_BW_BERT;
  if (mode & 32) flags |= TC_BW_SIZE2;
  if (mode & 64) flags |= TC_BW_ECHO_BLOCK1;
  if (mode & 128) limit = 30 + take16(in) % 3000;
  n = t_bw2_serve(B2, NOW, rm->id, block2, flags, 0x123, limit, &m, o, 16, buf, sizeof buf);
  REQUIRE(n >= 0 || n == TC_E_STALE || n == TC_E_MESSAGE_TOO_LARGE);
  if (n < 0) return;
  e = tc_encode(wire, sizeof wire, TC_UDP, &m, o, buf);
  REQUIRE(e > 0);
  if (limit) REQUIRE((uint32_t)e <= limit);
  REQUIRE(tc_decode(wire, (size_t)e, TC_UDP, &d, dopts, 16) >= 0);
  if (m.code != 0x45) {
    REQUIRE(m.code == TC_CODE_BAD_OPTION || m.code == TC_CODE_BAD_REQUEST);
    return;
  }
  bi = -1;
  for (j = 0; j < d.option_count; j++)
    if (dopts[j].number == TC_OPT_BLOCK2) bi = (int)j;
  REQUIRE(bi >= 0);
  {
    tc_block b;
    uint64_t off;
    uint32_t size;
    REQUIRE(tc_block_decode(wire + dopts[bi].offset, dopts[bi].length, &b) == 0);
    size = tc_szx_size(b.szx);
    off = (uint64_t)b.num * size;
    REQUIRE(b.szx != 7 || (flags & TC_BW_BERT));
    REQUIRE(off + d.payload_length <= rm->len);
    REQUIRE(b.more == (off + d.payload_length < rm->len));
    if (b.szx != 7) REQUIRE(d.payload_length <= size && (b.more ? d.payload_length == size : 1));
    else REQUIRE(!b.more || (d.payload_length % 1024 == 0 && d.payload_length > 0));
    for (j = 0; j < d.payload_length; j++)
      REQUIRE(wire[d.payload_offset + j] == pat(rm->seed, (uint32_t)off + j));
  }
}

static void op_b2_misc(input *in) {
  uint32_t what = take(in) % 3, id;
  if (what == 0) {
    uint32_t pi = take(in) % 4, ki = take(in) % 4;
    int rc = tc_bw2_find(B2, NOW, pi < 3 ? PEERS[pi] : NULL, pi < 3 ? PEER_LEN[pi] : 0, KEYS[ki],
                         KEY_LEN[ki], &id);
    REQUIRE(rc == 0 || rc == TC_E_STALE);
    if (rc == 0) REQUIRE(tc_bw2_length(B2, id) >= 0);
  } else if (what == 1) {
    NOW += take(in) * 40u;
    REQUIRE(tc_bw2_timer(B2, NOW) >= 0);
  } else if (n_reps > 0) {
    int rc = tc_bw2_drop(B2, reps[take(in) % n_reps].id);
    REQUIRE(rc == 0 || rc == TC_E_STALE);
  }
}

/* ------------------------------------------------------------------ Observe */

static void flush_tx(input *in) {
  uint32_t i, keep = take(in) & 1;
  for (i = 0; i < TX.count; i++) {
    const tc_tx *t = &TX.items[i];
    tc_msg m;
    tc_opt o[16];
    REQUIRE((uint64_t)t->offset + t->length <= TX.used);
    REQUIRE(tc_decode(TX.buf + t->offset, t->length, TC_UDP, &m, o, 16) >= 0);
    if (keep && n_sent < 8 && m.code != 0) {
      uint32_t p;
      for (p = 0; p < 3; p++)
        if (t->addr_length == PEER_LEN[p] &&
            memcmp(TX.buf + t->addr_offset, PEERS[p], PEER_LEN[p]) == 0)
          break;
      sent_mids[n_sent] = (uint16_t)m.message_id;
      sent_peer[n_sent++] = (uint8_t)p;
    }
  }
  TX.used = TX.count = 0;
}

static void feed_event(const tc_ep_event *ev) {
  int r = tc_obs_on_event(OB, NOW, ev);
  REQUIRE(r == 0 || r == 1);
}

static void op_obs(input *in) {
  uint32_t what = take(in) % 6;
  if (what == 0) { /* register / deregister */
    uint32_t pi = take(in) % 3, t = take(in), res = take(in) % 3, seq;
    uint8_t tok[2] = {(uint8_t)t, (uint8_t)(t >> 3)};
    if (t & 0x80) {
      int rc = tc_obs_deregister(OB, PEERS[pi], PEER_LEN[pi], tok, t & 1 ? 2 : 0);
      REQUIRE(rc == 0 || rc == TC_E_STALE);
    } else {
      int rc = t_obs_register(OB, NOW, PEERS[pi], PEER_LEN[pi], tok, t & 1 ? 2 : 0, res, &seq);
      REQUIRE(rc > 0 || rc == TC_E_FULL);
      if (rc > 0) REQUIRE(tc_obs_find(OB, PEERS[pi], PEER_LEN[pi], tok, t & 1 ? 2 : 0) == rc);
    }
  } else if (what == 1) { /* notify */
    static uint8_t src[100];
    tc_msg m;
    tc_opt o[4];
    uint32_t k = take(in), i;
    int rc;
    memset(&m, 0, sizeof m);
    m.code = (k & 1) ? 0x84 : 0x45;
    m.option_count = (k >> 1) % 4;
    for (i = 0; i < m.option_count; i++) {
      o[i].number = i == 0 ? 14u : i == 1 ? 6u : 12u;
      o[i].offset = i;
      o[i].length = 1;
      src[i] = (uint8_t)k;
    }
    m.payload_offset = 4;
    m.payload_length = take(in) % 80;
    rc = t_obs_notify(OB, EP, NOW, take(in) % 3, (k & 0x20) ? TC_OBS_CON : 0, &m, o, src, &TX);
    REQUIRE(rc >= 0 || rc == TC_E_FULL || rc == TC_E_MESSAGE_TOO_LARGE);
  } else if (what == 2) { /* flush and resume */
    flush_tx(in);
    REQUIRE(t_obs_resume(OB, EP, NOW, &TX) >= 0);
  } else if (what == 3 && n_sent > 0) { /* ACK or RST one sent datagram */
    uint32_t k = take(in) % n_sent, rst = take(in) & 1;
    uint8_t dg[4];
    tc_msg m;
    tc_opt o[8];
    tc_ep_event ev;
    uint32_t p = sent_peer[k] % 3;
    dg[0] = (uint8_t)(rst ? 0x70 : 0x60);
    dg[1] = 0;
    dg[2] = (uint8_t)(sent_mids[k] >> 8);
    dg[3] = (uint8_t)sent_mids[k];
    TX.used = TX.count = 0;
    REQUIRE(t_ep_recv(EP, NOW, PEERS[p], PEER_LEN[p], dg, 4, &TX, &m, o, 8, &ev) == 0);
    if (ev.kind == TC_EV_NOTIFY_RESET) { /* the ep matched a RST to a NON notification */
      int r;
      REQUIRE(rst && TC_EP_NON_NOTIFY_MID(ev.id) == sent_mids[k] && ev.status == TC_E_RESET);
      r = tc_obs_on_recv(OB, NOW, PEERS[p], PEER_LEN[p], &ev);
      REQUIRE(r == 0 || r == 1);
      REQUIRE(tc_obs_on_event(OB, NOW, &ev) == 0);
    } else {
      int r = tc_obs_on_recv(OB, NOW, PEERS[p], PEER_LEN[p], &ev);
      REQUIRE(r == 0 || r == 1);
      if (rst) (void)tc_obs_on_reset(OB, PEERS[p], PEER_LEN[p], sent_mids[k]);
    }
    sent_mids[k] = sent_mids[--n_sent];
    sent_peer[k] = sent_peer[n_sent];
  } else if (what == 4) { /* time passes: the ep retransmits and gives up */
    tc_ep_event evs[4];
    int n, i;
    NOW += take(in) * 100u;
    TX.used = TX.count = 0;
    n = tc_ep_timer(EP, NOW, &TX, evs, 4);
    REQUIRE(n >= 0);
    for (i = 0; i < n; i++) feed_event(&evs[i]);
    TX.used = TX.count = 0;
  } else { /* parse / key of fuzzer bytes */
    uint32_t len = take(in) % 64, i;
    uint8_t msgb[64], key1[512], key2[512];
    tc_msg m;
    tc_opt o[16];
    tc_bw_info info;
    for (i = 0; i < len; i++) msgb[i] = (uint8_t)take(in);
    if (tc_decode(msgb, len, TC_UDP, &m, o, 16) >= 0) {
      int a, b, c;
      (void)tc_bw_parse(&m, o, msgb, &info);
      a = tc_bw_key(&m, o, msgb, TC_BW_KEY_PAYLOAD, NULL, 0);
      b = tc_bw_key(&m, o, msgb, TC_BW_KEY_PAYLOAD, key1, sizeof key1);
      c = tc_bw_key(&m, o, msgb, TC_BW_KEY_PAYLOAD, key2, sizeof key2);
      REQUIRE(a == b && b == c && a > 0 && memcmp(key1, key2, (size_t)a) == 0);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  uint32_t steps = 0;
  setup(&in);
  while (in.n > 0 && steps++ < 2000) {
    uint32_t op = take(&in) % 8;
    switch (op) {
    case 0: op_feed(&in, 0); break;
    case 1: op_feed(&in, 1); break;
    case 2: op_b1_misc(&in); break;
    case 3: op_put(&in); break;
    case 4: op_serve(&in); break;
    case 5: op_b2_misc(&in); break;
    default: op_obs(&in); break;
    }
    check_bounds();
  }
  return 0;
}

/* fuzz_srv.c — libFuzzer harness for the server pipeline (srv.c) on a real tc_ep.
 *
 * The input is a program run against a tc_ep + tc_srv with small bounds (message size and
 * preferred block sizes chosen by the first bytes): raw fuzzer datagrams and generated requests
 * (GET/POST/PUT/FETCH, CON/NON, three peers, a few paths and tokens, any Block1 / Block2 /
 * Size1 / Size2 / Observe values, payloads of the pattern of their block offset) through
 * tc_srv_recv; ACKs and RSTs to the notifications sent; responses to open exchanges (codes,
 * payload sizes around the block sizes, resources, ETag / Content-Format), notifications,
 * resumes, drops, body reads and releases; time steps running tc_ep_timer (events through
 * tc_srv_on_timer_event) and tc_srv_timer.
 * Checked after every step: every queued datagram decodes within max_message_size; a 2.xx
 * datagram with Block2 carries at most one block (exactly one when M is set) and never NUM
 * past Size2; Observe only on 2.xx; a delivered upload body reads back as the pattern (while
 * only generated requests were fed); return codes are among the documented ones; store
 * counters stay within their bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turbocoap.h"
#include "../test/calls.h"

#define OPT_CAP 32
#define MAX_OPEN 8

static const uint8_t PEERS[3][TC_ADDR_MAX] = {{10, 0, 0, 1},
                                              {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4},
                                              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}};
static const uint32_t PEER_LEN[3] = {4, 8, 28};
static const char *const PATHS[3] = {"a", "obs", "up"};

static uint8_t pat(uint32_t off) { return (uint8_t)((off * 7u + 3u) % 251u); }

typedef struct open_ex {
  uint32_t id, flags, body_id, body_len;
} open_ex;

static tc_ep *EP;
static tc_srv *S;
static tc_srv_config SC;
static uint8_t TXBUF[16384];
static tc_tx TXITEMS[12];
static tc_txq TX;
static uint64_t NOW;
static open_ex OPEN[MAX_OPEN];
static uint32_t NOPEN;
static uint32_t RAW_FED; /* raw datagrams may have fed uploads arbitrary bytes */
static uint8_t SRC[70000];
static uint16_t NOTE_MID[8];
static uint8_t NOTE_PEER[8];
static uint32_t NNOTE;
static uint32_t GONE; /* an exchange id already answered or dropped */

static int find_opt(const tc_msg *m, const tc_opt *o, uint32_t number) {
  uint32_t i;
  for (i = 0; i < m->option_count; i++)
    if (o[i].number == number) return (int)i;
  return -1;
}

/* Every datagram queued: well formed and consistent. Remembers notification MIDs. */
static void check_tx(void) {
  uint32_t i;
  REQUIRE(TX.count <= TX.item_cap && TX.used <= TX.cap);
  for (i = 0; i < TX.count; i++) {
    const tc_tx *t = &TX.items[i];
    const uint8_t *b = TX.buf + t->offset;
    tc_msg m;
    tc_opt o[OPT_CAP];
    int k, n;
    REQUIRE(t->addr_offset + t->addr_length <= TX.used && t->offset + t->length <= TX.used);
    REQUIRE(t->length <= SC.max_message_size);
    n = tc_decode(b, t->length, TC_UDP, &m, o, OPT_CAP);
    REQUIRE(n >= 0);
    if ((m.code >> 5) != 2u) REQUIRE(find_opt(&m, o, TC_OPT_OBSERVE) < 0);
    k = find_opt(&m, o, TC_OPT_BLOCK2);
    if (k >= 0 && (m.code >> 5) == 2u) {
      tc_block blk;
      int s2 = find_opt(&m, o, TC_OPT_SIZE2);
      REQUIRE(tc_block_decode(b + o[k].offset, o[k].length, &blk) == 0);
      REQUIRE(blk.szx < 7u);
      REQUIRE(m.payload_length <= tc_szx_size(blk.szx));
      if (blk.more) REQUIRE(m.payload_length == tc_szx_size(blk.szx));
      if (s2 >= 0) {
        uint32_t total;
        REQUIRE(tc_uint_decode(b + o[s2].offset, o[s2].length, &total) == 0);
        REQUIRE((uint64_t)blk.num * tc_szx_size(blk.szx) + m.payload_length <= total);
        if (!blk.more) REQUIRE((uint64_t)blk.num * tc_szx_size(blk.szx) + m.payload_length == total);
      }
    }
    if (find_opt(&m, o, TC_OPT_OBSERVE) >= 0 && m.type != TC_ACK && t->addr_length >= 1u) {
      uint32_t p;
      for (p = 0; p < 3; p++)
        if (t->addr_length == PEER_LEN[p] && memcmp(TX.buf + t->addr_offset, PEERS[p], PEER_LEN[p]) == 0) {
          NOTE_MID[NNOTE % 8u] = (uint16_t)m.message_id;
          NOTE_PEER[NNOTE % 8u] = (uint8_t)p;
          NNOTE++;
        }
    }
  }
}

static void check_bounds(void) {
  tc_srv_stats st;
  tc_srv_get_stats(S, &st);
  REQUIRE(st.uploads <= SC.bw1.max_transfers);
  REQUIRE(st.reps <= SC.bw2.max_reps);
  REQUIRE(st.observers <= SC.obs.max_observers);
}

static void tx_drain(void) {
  check_tx();
  TX.count = TX.used = 0;
}

static int room2(void) {
  return TX.item_cap - TX.count >= 2u &&
         TX.cap - TX.used >= 2u * (TC_ADDR_MAX + SC.max_message_size);
}

static void feed(uint32_t peer, const uint8_t *d, uint32_t n) {
  tc_msg msg;
  tc_opt opts[OPT_CAP];
  tc_ep_event ev;
  tc_srv_req req;
  int rc;
  if (!room2()) tx_drain();
  rc = t_srv_recv(S, EP, NOW, PEERS[peer], PEER_LEN[peer], d, n, &TX, &msg, opts, OPT_CAP, &ev,
                   &req);
  REQUIRE(rc == 0);
  if (ev.kind != TC_EV_REQUEST) {
    REQUIRE(req.flags == 0 && req.body_id == 0 && req.body_length == 0);
    return;
  }
  REQUIRE((ev.id & 0xC0000000u) == 0u && (ev.id & 0xFFFFu) < SC.max_in_progress);
  REQUIRE((req.flags & ~7u) == 0u);
  if (req.flags & TC_SRVF_BODY) REQUIRE(req.body_length <= SC.bw1.max_body);
  if (req.flags & TC_SRVF_OBSERVE) REQUIRE(msg.code == 1u || msg.code == 5u);
  {
    uint32_t k;
    for (k = 0; k < NOPEN; k++) REQUIRE(OPEN[k].id != ev.id);
  }
  if (NOPEN == MAX_OPEN) { /* forget the oldest (the pipeline keeps its state for now) */
    memmove(OPEN, OPEN + 1, (MAX_OPEN - 1) * sizeof OPEN[0]);
    NOPEN--;
  }
  OPEN[NOPEN].id = ev.id;
  OPEN[NOPEN].flags = req.flags;
  OPEN[NOPEN].body_id = req.body_id;
  OPEN[NOPEN].body_len = req.body_length;
  NOPEN++;
}

static void put_uint(tc_msg *m, tc_opt *o, uint8_t *src, uint32_t *w, uint32_t number,
                     uint32_t v) {
  int l = tc_uint_encode(v, src + *w);
  o[m->option_count].number = number;
  o[m->option_count].offset = *w;
  o[m->option_count].length = (uint32_t)l;
  m->option_count++;
  *w += (uint32_t)l;
}

/* A request built from the input. */
static void gen_request(input *in) {
  static const uint32_t METHODS[4] = {1, 2, 3, 5};
  uint8_t src[1400], out[1500];
  tc_msg m;
  tc_opt o[12];
  uint32_t w = 0, x = take(in), peer = take(in) % 3u, path = take(in) % 3u, tkl = take(in) % 5u;
  uint32_t i, plen = 0, off = 0;
  int n;
  memset(&m, 0, sizeof m);
  m.code = METHODS[x & 3u];
  m.type = (x & 4u) ? TC_NON : TC_CON;
  m.message_id = take16(in);
  m.token_offset = 0;
  m.token_length = tkl;
  for (i = 0; i < tkl; i++) src[w++] = (uint8_t)take(in);
  o[0].number = 11;
  o[0].offset = w;
  o[0].length = (uint32_t)strlen(PATHS[path]);
  memcpy(src + w, PATHS[path], o[0].length);
  w += o[0].length;
  m.option_count = 1;
  if (x & 8u) put_uint(&m, o, src, &w, TC_OPT_OBSERVE, take(in) % 3u);
  if (x & 16u) { /* Block1: payload of the pattern at the block's offset */
    uint32_t num = take(in) % 12u, more = take(in) & 1u, szx = take(in) % 8u, bs;
    bs = tc_szx_size(szx);
    off = num * bs;
    plen = more ? bs : take(in) % (bs + 1u);
    if (take(in) == 0u) plen = take(in) % 64u; /* sometimes a wrong length */
    put_uint(&m, o, src, &w, TC_OPT_BLOCK1, tc_block_value(num, more, szx));
    if (num == 0u && (x & 32u)) put_uint(&m, o, src, &w, TC_OPT_SIZE1, take16(in));
  } else if (x & 128u) {
    plen = take(in) % 40u;
  }
  if (x & 64u) {
    uint32_t v = take(in);
    put_uint(&m, o, src, &w, TC_OPT_BLOCK2, tc_block_value(v >> 3 & 15u, 0, v & 7u));
    if (v & 0x80u) put_uint(&m, o, src, &w, TC_OPT_SIZE2, 0);
  }
  if (plen > sizeof src - w) plen = (uint32_t)(sizeof src - w);
  m.payload_offset = w;
  m.payload_length = plen;
  for (i = 0; i < plen; i++) src[w + i] = pat(off + i);
  n = tc_encode(out, sizeof out, TC_UDP, &m, o, src);
  if (n < 0) return;
  feed(peer, out, (uint32_t)n);
}

static int pick_open(input *in) {
  if (NOPEN == 0u) return -1;
  return (int)(take(in) % NOPEN);
}

static void forget(uint32_t k) {
  GONE = OPEN[k].id;
  memmove(OPEN + k, OPEN + k + 1, (NOPEN - k - 1) * sizeof OPEN[0]);
  NOPEN--;
}

/* A response or notification body from the input: code, a few options, payload size. */
static void gen_response(input *in, tc_msg *m, tc_opt *o) {
  static const uint32_t CODES[6] = {0x45, 0x44, 0x41, 0x84, 0xA0, 0x45};
  static const uint32_t SIZES[8] = {0, 5, 16, 100, 1024, 1025, 3000, 20000};
  uint32_t x = take(in), w = 0, i;
  memset(m, 0, sizeof *m);
  m->code = CODES[x % 6u];
  if (x & 8u) put_uint(m, o, SRC, &w, TC_OPT_CONTENT_FORMAT, 50);
  if (x & 16u) {
    o[m->option_count].number = TC_OPT_ETAG;
    o[m->option_count].offset = w;
    o[m->option_count].length = 1u + take(in) % 8u;
    for (i = 0; i < o[m->option_count].length; i++) SRC[w++] = (uint8_t)take(in);
    m->option_count++;
  }
  if (x & 32u) put_uint(m, o, SRC, &w, TC_OPT_MAX_AGE, take(in));
  m->payload_offset = w;
  m->payload_length = SIZES[(x >> 6) | (take(in) & 4u)] + take(in) % 3u;
  for (i = 0; i < m->payload_length; i++) SRC[w + i] = (uint8_t)(i * 13u);
}

static void time_step(input *in) {
  tc_ep_event evs[8];
  int ne, e, guard = 0;
  NOW += take16(in) * ((take(in) & 1u) ? 100u : 1u);
  do {
    if (!room2()) tx_drain();
    ne = tc_ep_timer(EP, NOW, &TX, evs, 8);
    REQUIRE(ne >= 0);
    for (e = 0; e < ne; e++) {
      int c = tc_srv_on_timer_event(S, NOW, &evs[e]);
      REQUIRE(c == 0 || c == 1);
    }
    check_tx();
  } while (ne == 8 && guard++ < 16);
  REQUIRE(tc_srv_timer(S, NOW) >= 0);
  REQUIRE(tc_srv_next_deadline(S) > NOW);
}

static void setup(input *in) {
  tc_ep_config ec;
  uint8_t seed[32];
  uint32_t x = take(in), i;
  size_t es, ss;
  static const uint32_t MMS[4] = {160, 300, 600, 1280};
  tc_ep_config_default(&ec);
  ec.max_in_progress = 6;
  ec.max_in_progress_per_peer = 4;
  ec.dedup_entries = 32;
  ec.response_cache_bytes = (x & 4u) ? 0u : 3000u;
  ec.con_slots = 4;
  ec.max_client_requests = 2;
  ec.max_message_size = MMS[x & 3u];
  ec.max_latency_ms = 5000;
  ec.max_retransmit = 2;
  tc_srv_config_default(&SC);
  SC.max_in_progress = ec.max_in_progress;
  SC.max_message_size = ec.max_message_size;
  SC.max_resource_keys = 2;
  SC.bw1.max_transfers = 3;
  SC.bw1.max_per_peer = 2;
  SC.bw1.max_body = 4096;
  SC.bw1.pool_bytes = 4096;
  SC.bw1.chunk_size = 64;
  SC.bw1.max_key = 16 + (x >> 3 & 1u) * 48u;
  SC.bw1.idle_timeout_ms = 20000;
  SC.bw1.preferred_szx = take(in) % 7u;
  SC.bw2.max_reps = 3;
  SC.bw2.pool_bytes = 8192;
  SC.bw2.chunk_size = 256;
  SC.bw2.max_key = 16 + (x >> 4 & 1u) * 48u;
  SC.bw2.max_opts = 4;
  SC.bw2.max_opt_bytes = 32;
  SC.bw2.preferred_szx = take(in) % 7u;
  SC.bw2.default_lifetime_ms = 30000;
  SC.obs.max_observers = 4;
  SC.obs.max_per_resource = 3;
  SC.obs.max_resources = 2;
  SC.obs.max_jobs = 2;
  SC.obs.con_every = (x >> 5) & 3u;
  SC.obs.max_opts = 8;
  es = tc_ep_size(&ec);
  ss = tc_srv_size(&SC);
  REQUIRE(es > 0 && ss > 0);
  EP = malloc(es);
  S = malloc(ss);
  REQUIRE(EP != NULL && S != NULL);
  for (i = 0; i < 32; i++) seed[i] = (uint8_t)(x + i * 11u);
  REQUIRE(tc_ep_init(EP, es, &ec, seed) == 0);
  REQUIRE(tc_srv_init(S, ss, &SC, seed) == 0);
  TX.buf = TXBUF;
  TX.cap = sizeof TXBUF;
  TX.items = TXITEMS;
  TX.item_cap = 12;
  TX.count = TX.used = 0;
  NOW = 1000;
  NOPEN = 0;
  RAW_FED = 0;
  NNOTE = 0;
  GONE = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  uint32_t steps = 0;
  static uint8_t body[8192];
  setup(&in);
  while (in.n > 0 && steps++ < 2000u) {
    uint32_t op = take(&in) % 11u;
    int k, rc;
    switch (op) {
    case 0: { /* raw datagram */
      uint32_t peer = take(&in) % 3u, n = take(&in) % 120u, i;
      uint8_t d[120];
      for (i = 0; i < n; i++) d[i] = (uint8_t)take(&in);
      RAW_FED = 1;
      feed(peer, d, n);
      break;
    }
    case 1:
    case 2:
      gen_request(&in);
      break;
    case 3: { /* respond */
      tc_msg m;
      tc_opt o[4];
      uint32_t resource = take(&in) % 4u;
      k = pick_open(&in);
      gen_response(&in, &m, o);
      if (!room2()) tx_drain();
      if (k < 0) { /* nothing open: an id already answered or dropped (or 0) is stale */
        rc = t_srv_respond(S, EP, NOW, GONE, &m, o, SRC, resource, &TX);
        REQUIRE(rc == TC_E_STALE);
        break;
      }
      rc = t_srv_respond(S, EP, NOW, OPEN[k].id, &m, o, SRC, resource, &TX);
      REQUIRE(rc == 0 || rc == TC_E_STALE || rc == TC_E_FULL || rc == TC_E_MESSAGE_TOO_LARGE);
      if (rc == 0 || rc == TC_E_STALE) forget((uint32_t)k);
      break;
    }
    case 4: { /* notify */
      tc_msg m;
      tc_opt o[4];
      uint32_t resource = 1u + take(&in) % 3u, flags = take(&in) & 1u;
      gen_response(&in, &m, o);
      rc = t_srv_notify(S, EP, NOW, resource, flags, &m, o, SRC, &TX);
      REQUIRE(rc >= 0 || rc == TC_E_FULL || rc == TC_E_MESSAGE_TOO_LARGE);
      break;
    }
    case 5: /* drain and resume */
      tx_drain();
      if (tc_srv_pending(S) > 0u) REQUIRE(t_srv_resume(S, EP, NOW, &TX) >= 0);
      break;
    case 6: /* drop */
      k = pick_open(&in);
      if (k < 0) break;
      rc = t_srv_drop(S, EP, OPEN[k].id);
      REQUIRE(rc == 0 || rc == TC_E_STALE);
      forget((uint32_t)k);
      break;
    case 7: { /* read or release a body */
      uint32_t cap = (take(&in) & 1u) ? (uint32_t)sizeof body : take(&in) * 16u;
      k = pick_open(&in);
      if (k < 0 || !(OPEN[k].flags & TC_SRVF_BODY)) break;
      if (take(&in) & 1u) {
        rc = tc_srv_release_body(S, OPEN[k].body_id);
        REQUIRE(rc == 0 || rc == TC_E_STALE);
        break;
      }
      rc = tc_srv_read_body(S, OPEN[k].body_id, body, cap);
      REQUIRE(rc == (int)OPEN[k].body_len || rc == TC_E_STALE || rc == TC_E_BUFFER_TOO_SMALL);
      if (rc == TC_E_BUFFER_TOO_SMALL) REQUIRE(cap < OPEN[k].body_len);
      if (rc > 0 && !RAW_FED) {
        uint32_t i;
        for (i = 0; i < (uint32_t)rc; i++) REQUIRE(body[i] == pat(i));
      }
      break;
    }
    case 8:
      time_step(&in);
      break;
    case 9: { /* the client answers a notification: ACK or RST */
      uint8_t d[4];
      uint32_t j;
      if (NNOTE == 0u) break;
      j = take(&in) % (NNOTE < 8u ? NNOTE : 8u);
      d[0] = (uint8_t)((take(&in) & 1u) ? 0x70 : 0x60);
      d[1] = 0;
      d[2] = (uint8_t)(NOTE_MID[j] >> 8);
      d[3] = (uint8_t)NOTE_MID[j];
      feed(NOTE_PEER[j], d, 4);
      break;
    }
    default:
      tx_drain();
      break;
    }
    check_tx();
    check_bounds();
  }
  tx_drain();
  free(EP);
  free(S);
  EP = NULL;
  S = NULL;
  return 0;
}

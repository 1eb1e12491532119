/* test_seam.c — the server pipeline (tc_srv) and Observe driven through the messaging seam by a
 * fake messaging layer, with no tc_ep anywhere: a reliable, RFC 8323-like transport (TC_TCP
 * framing, no CON, no message IDs, its own message size) and an unreliable one that reports
 * CON notifications. Proves that srv.c and observe.c need nothing but tc_messaging.
 * Prints "seam-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"

#define LOG_MAX 64u
#define BYTES_MAX 2048u
#define EXCH_MAX 32u

/* What the fake layer sent. */
typedef struct sent {
  uint32_t kind;  /* 1 response, 2 notification */
  uint32_t id;    /* exchange id (response) */
  uint32_t flags; /* notification: the flags asked */
  uint32_t alen;
  uint8_t addr[TC_ADDR_MAX];
  uint32_t len;
  uint8_t bytes[BYTES_MAX]; /* encoded with the seam's transport */
} sent;

/* The fake messaging layer: open exchanges (id -> token), a log of what went out. */
typedef struct fake {
  uint32_t full;     /* respond / notify: TC_E_FULL while set (the output is full) */
  uint32_t nlog;
  sent log[LOG_MAX];
  uint32_t drops, dropped;
  uint32_t notify_ids;
  uint32_t open_id[EXCH_MAX];
  uint8_t open_tok[EXCH_MAX][8];
  uint32_t open_tkl[EXCH_MAX];
} fake;

/* Encode (token + out) with the seam's framing into the next log entry. */
static int fake_emit(const tc_messaging *m, fake *f, uint32_t kind, const uint8_t *tok,
                     uint32_t tkl, const tc_outmsg *out, sent **e) {
  static uint8_t src[BYTES_MAX * 2];
  tc_opt o[64];
  tc_msg msg = *out->msg;
  uint32_t i, end = msg.payload_offset + msg.payload_length;
  int n;
  if (f->full) return TC_E_FULL;
  if (f->nlog == LOG_MAX || msg.option_count > 64u) return TC_E_INVALID;
  for (i = 0; i < msg.option_count; i++) {
    o[i] = out->opts[i];
    if (o[i].offset + o[i].length > end) end = o[i].offset + o[i].length;
  }
  if (end + tkl > sizeof src) return TC_E_INVALID;
  if (end) memcpy(src, out->src, end);
  memcpy(src + end, tok, tkl);
  msg.token_offset = end;
  msg.token_length = tkl;
  n = tc_encode(NULL, 0, (int)m->transport, &msg, o, src);
  if (n < 0) return n;
  if ((uint32_t)n > m->max_message_size) return TC_E_MESSAGE_TOO_LARGE;
  *e = &f->log[f->nlog];
  n = tc_encode((*e)->bytes, BYTES_MAX, (int)m->transport, &msg, o, src);
  if (n < 0) return n;
  f->nlog++;
  (*e)->kind = kind;
  (*e)->len = (uint32_t)n;
  return 0;
}

static int fake_respond(const tc_messaging *m, uint64_t now, uint32_t id, const tc_outmsg *out) {
  fake *f = (fake *)m->state;
  uint32_t slot = id & 0xFFFFu;
  sent *e;
  int rc;
  (void)now;
  if (slot >= EXCH_MAX || f->open_id[slot] != id) return TC_E_STALE;
  rc = fake_emit(m, f, 1, f->open_tok[slot], f->open_tkl[slot], out, &e);
  if (rc < 0) return rc;
  e->id = id;
  f->open_id[slot] = 0;
  return 0;
}

static int fake_notify(const tc_messaging *m, uint64_t now, const tc_notify_args *a,
                       tc_notify_result *res) {
  fake *f = (fake *)m->state;
  sent *e;
  int rc;
  (void)now;
  rc = fake_emit(m, f, 2, a->token, a->token_len, &a->resp, &e);
  if (rc < 0) return rc;
  e->flags = a->flags;
  e->alen = a->addr_len;
  memcpy(e->addr, a->addr, a->addr_len);
  memset(res, 0, sizeof *res);
  if ((a->flags & TC_REQ_CON) && !(m->flags & TC_MSGF_RELIABLE)) {
    res->flags = TC_NOTIFY_SENT_CON;
    res->id = 0x40000000u | ++f->notify_ids;
  }
  return 0;
}

static int fake_drop(const tc_messaging *m, uint32_t id) {
  fake *f = (fake *)m->state;
  uint32_t slot = id & 0xFFFFu;
  if (slot >= EXCH_MAX || f->open_id[slot] != id) return TC_E_STALE;
  f->open_id[slot] = 0;
  f->drops++;
  f->dropped = id;
  return 0;
}

static const tc_messaging_ops FAKE_OPS = {fake_respond, fake_notify, fake_drop};

static void seam_of(fake *f, uint32_t flags, uint32_t max_message_size, tc_messaging *m) {
  memset(m, 0, sizeof *m);
  m->ops = &FAKE_OPS;
  m->state = f;
  m->out = NULL;
  m->transport = TC_TCP;
  m->flags = flags;
  m->max_message_size = max_message_size;
  m->max_exchanges = EXCH_MAX;
}

static tc_srv *srv_new(uint32_t con_every) {
  static const uint8_t seed[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
  tc_srv_config c;
  size_t n;
  tc_srv *s;
  tc_srv_config_default(&c);
  c.max_in_progress = EXCH_MAX;
  c.max_message_size = 1280;
  c.bw1.max_transfers = 4;
  c.bw1.pool_bytes = 64u << 10;
  c.bw2.max_reps = 8;
  c.bw2.pool_bytes = 64u << 10;
  c.obs.max_observers = 16;
  c.obs.max_per_resource = 16;
  c.obs.max_resources = 4;
  c.obs.con_every = con_every;
  c.max_resource_keys = 4;
  n = tc_srv_size(&c);
  s = malloc(n);
  if (s == NULL || tc_srv_init(s, n, &c, seed) != 0) {
    free(s);
    CHECK(0, "srv");
    return NULL;
  }
  return s;
}

/* An incoming request as the connection layer would hand it up: framed with TC_TCP, decoded,
 * exchange id `id` opened in the fake layer with its token. */
typedef struct inreq {
  uint8_t data[512];
  uint32_t len;
  tc_msg msg;
  tc_opt opts[16];
  tc_rx rx;
  tc_ep_event ev;
  tc_srv_req req;
} inreq;

static const uint8_t PEER[4] = {'c', 'o', 'n', '1'};

static int deliver(tc_srv *s, const tc_messaging *m, fake *f, inreq *q, uint32_t id,
                   uint32_t token, const char *path, int block2, uint32_t block2_value,
                   int observe, uint32_t observe_value) {
  tc_tmsg t;
  uint8_t tk[4] = {(uint8_t)(token >> 24), (uint8_t)(token >> 16), (uint8_t)(token >> 8),
                   (uint8_t)token};
  int n;
  tmsg_init(&t, 1); /* GET */
  memcpy(t.src, tk, 4);
  t.w = 4;
  t.msg.token_offset = 0;
  t.msg.token_length = 4;
  if (observe) tmsg_uint(&t, TC_OPT_OBSERVE, observe_value);
  tmsg_opt(&t, 11, path, (uint32_t)strlen(path));
  if (block2) tmsg_uint(&t, TC_OPT_BLOCK2, block2_value);
  n = tc_encode(q->data, sizeof q->data, TC_TCP, &t.msg, t.opts, t.src);
  CHECK(n > 0, "encode request");
  q->len = (uint32_t)n;
  CHECK(tc_decode(q->data, q->len, TC_TCP, &q->msg, q->opts, 16) >= 0, "decode request");
  f->open_id[id & 0xFFFFu] = id;
  memcpy(f->open_tok[id & 0xFFFFu], tk, 4);
  f->open_tkl[id & 0xFFFFu] = 4;
  q->rx.addr = PEER;
  q->rx.addr_len = sizeof PEER;
  q->rx.data = q->data;
  q->rx.len = q->len;
  q->rx.msg = &q->msg;
  q->rx.opts = q->opts;
  q->rx.opt_cap = 16;
  memset(&q->ev, 0, sizeof q->ev);
  q->ev.kind = TC_EV_REQUEST;
  q->ev.id = id;
  return tc_srv_input(s, m, 1000, &q->rx, &q->ev, &q->req);
}

/* Answer id with code and a payload of len bytes (byte i = i * 7). */
static uint8_t g_body[8192];
static int answer(tc_srv *s, const tc_messaging *m, uint32_t id, uint32_t code, uint32_t len,
                  uint32_t resource) {
  tc_msg r;
  tc_outmsg out;
  uint32_t i;
  for (i = 0; i < len; i++) g_body[i] = (uint8_t)(i * 7u);
  memset(&r, 0, sizeof r);
  r.code = code;
  r.payload_length = len;
  out.msg = &r;
  out.opts = NULL;
  out.src = g_body;
  return tc_srv_respond(s, m, 1000, id, &out, resource);
}

/* Decode log entry k (TC_TCP); the first option numbered `number` as a uint into *v. */
static int sent_opt(const sent *e, uint32_t number, uint32_t *v, tc_msg *msg) {
  tc_opt o[32];
  int n = tc_decode(e->bytes, e->len, TC_TCP, msg, o, 32), i;
  CHECK(n >= 0, "decode sent (%d)", n);
  for (i = 0; i < n; i++)
    if (o[i].number == number)
      return tc_uint_decode(e->bytes + o[i].offset, o[i].length, v) == 0 ? 1 : 0;
  return 0;
}

static void t_plain_and_drop(void) {
  fake *f = calloc(1, sizeof *f);
  tc_srv *s = srv_new(0);
  tc_messaging m;
  inreq q;
  tc_msg msg;
  uint32_t v;
  if (f == NULL || s == NULL) goto out;
  seam_of(f, TC_MSGF_RELIABLE, 1152, &m);
  CHECK_EQ(deliver(s, &m, f, &q, 0x10003u, 0xA1B2C3D4u, "hello", 0, 0, 0, 0), 0, "input");
  CHECK_EQ(q.ev.kind, TC_EV_REQUEST, "delivered to the application");
  CHECK_EQ(q.req.flags, 0, "plain GET");
  CHECK_EQ(answer(s, &m, 0x10003u, 0x45, 2, 0), 0, "respond through the seam");
  CHECK_EQ(f->nlog, 1, "one response");
  CHECK_EQ(f->log[0].kind, 1, "a response");
  CHECK_EQ(f->log[0].id, 0x10003u, "for the exchange");
  CHECK(!sent_opt(&f->log[0], TC_OPT_BLOCK2, &v, &msg), "no Block2");
  CHECK_EQ(msg.code, 0x45, "2.05");
  CHECK_EQ(msg.token_length, 4, "token");
  CHECK_EQ(msg.payload_length, 2, "payload");
  /* the answer is final: the exchange is closed in the layer */
  CHECK_EQ(answer(s, &m, 0x10003u, 0x45, 2, 0), TC_E_STALE, "answered once");
  /* drop goes to the layer */
  CHECK_EQ(deliver(s, &m, f, &q, 0x20004u, 1, "x", 0, 0, 0, 0), 0, "input 2");
  CHECK_EQ(tc_srv_drop(s, &m, 0x20004u), 0, "drop");
  CHECK_EQ(f->drops, 1, "dropped in the layer");
  CHECK_EQ(f->dropped, 0x20004u, "that exchange");
  /* a layer with more exchange slots than the pipeline tracks is refused */
  m.max_exchanges = EXCH_MAX + 1u;
  CHECK_EQ(deliver(s, &m, f, &q, 0x30003u, 2, "y", 0, 0, 0, 0), TC_E_INVALID,
           "max_exchanges over max_in_progress");
  m.max_exchanges = EXCH_MAX;
  /* tc_srv_recv is the datagram path: it wants a tc_ep seam */
  CHECK_EQ(tc_srv_recv(s, &m, 1000, &q.rx, &q.ev, &q.req), TC_E_INVALID, "recv needs tc_ep");
  CHECK(tc_messaging_ep(&m) == NULL, "not a tc_ep seam");
out:
  free(f);
  free(s);
}

/* Block sizes come from the transport's max_message_size; later blocks are served by the
 * pipeline through the seam without reaching the application. */
static void blockwise_with(uint32_t mms, uint32_t want_szx) {
  fake *f = calloc(1, sizeof *f);
  tc_srv *s = srv_new(0);
  tc_messaging m;
  inreq q;
  tc_msg msg;
  tc_block b;
  uint32_t v = 0, i, size = tc_szx_size(want_szx);
  if (f == NULL || s == NULL) goto out;
  seam_of(f, TC_MSGF_RELIABLE, mms, &m);
  CHECK_EQ(deliver(s, &m, f, &q, 0x10001u, 7, "big", 0, 0, 0, 0), 0, "input");
  CHECK_EQ(answer(s, &m, 0x10001u, 0x45, 5000, 0), 0, "respond 5000 bytes");
  CHECK_EQ(f->nlog, 1, "block 0");
  CHECK(f->log[0].len <= mms, "within the transport's size (%u)", f->log[0].len);
  CHECK(sent_opt(&f->log[0], TC_OPT_BLOCK2, &v, &msg), "Block2");
  tc_block_from_value(v, &b);
  CHECK_EQ(b.szx, want_szx, "SZX from the transport's message size");
  CHECK_EQ(b.num, 0, "NUM 0");
  CHECK_EQ(b.more, 1, "more");
  CHECK_EQ(msg.payload_length, size, "one block");
  /* block 1: the pipeline answers from its cache */
  CHECK_EQ(deliver(s, &m, f, &q, 0x20002u, 8, "big", 1, tc_block_value(1, 0, want_szx), 0, 0),
           0, "input block 1");
  CHECK_EQ(q.ev.kind, TC_EV_NONE, "consumed by the pipeline");
  CHECK_EQ(f->nlog, 2, "block 1 sent");
  CHECK(sent_opt(&f->log[1], TC_OPT_BLOCK2, &v, &msg), "Block2 of block 1");
  tc_block_from_value(v, &b);
  CHECK_EQ(b.num, 1, "NUM 1");
  CHECK_EQ(msg.payload_length, size, "block 1 length");
  for (i = 0; i < size && i < msg.payload_length; i++)
    if (f->log[1].bytes[msg.payload_offset + i] != (uint8_t)((size + i) * 7u)) break;
  CHECK_EQ(i, size, "block 1 bytes");
out:
  free(f);
  free(s);
}

static void t_blockwise(void) {
  blockwise_with(1152, 6); /* RFC 8323's default Max-Message-Size: 1024-byte blocks */
  blockwise_with(600, 5);  /* a smaller transport: 512 */
  blockwise_with(200, 3);  /* 128 */
}

/* Observe over a reliable transport: no CON notifications, even when asked or due. */
static void t_observe_reliable(void) {
  fake *f = calloc(1, sizeof *f);
  tc_srv *s = srv_new(1); /* con_every 1: every notification would be CON over UDP */
  tc_messaging m;
  inreq q;
  tc_msg msg, nm;
  tc_outmsg out;
  tc_obs_stats st;
  uint32_t v0 = 0, v1 = 0;
  if (f == NULL || s == NULL) goto out;
  seam_of(f, TC_MSGF_RELIABLE, 1152, &m);
  CHECK_EQ(deliver(s, &m, f, &q, 0x10005u, 99, "temp", 0, 0, 1, 0), 0, "register");
  CHECK(q.req.flags & TC_SRVF_OBSERVE, "observe flagged");
  CHECK_EQ(answer(s, &m, 0x10005u, 0x45, 3, 7), 0, "respond with a resource");
  CHECK(sent_opt(&f->log[0], TC_OPT_OBSERVE, &v0, &msg), "response carries Observe");
  CHECK_EQ(tc_obs_count(tc_srv_obs(s), 7), 1, "registered");
  memset(&nm, 0, sizeof nm);
  nm.code = 0x45;
  nm.payload_length = 4;
  out.msg = &nm;
  out.opts = NULL;
  out.src = (const uint8_t *)"22.5";
  CHECK_EQ(tc_srv_notify(s, &m, 2000, 7, TC_OBS_CON, &out), 1, "one notification");
  CHECK_EQ(f->nlog, 2, "sent");
  CHECK_EQ(f->log[1].kind, 2, "a notification");
  CHECK_EQ(f->log[1].flags & TC_REQ_CON, 0, "not confirmable over a reliable transport");
  CHECK_EQ(f->log[1].alen, sizeof PEER, "to the peer");
  CHECK(memcmp(f->log[1].addr, PEER, sizeof PEER) == 0, "to the peer");
  CHECK(sent_opt(&f->log[1], TC_OPT_OBSERVE, &v1, &msg), "notification carries Observe");
  CHECK(v1 > v0, "newer sequence value");
  CHECK_EQ(msg.token_length, 4, "the registration's token");
  tc_obs_get_stats(tc_srv_obs(s), &st);
  CHECK_EQ(st.sent_con, 0, "no CON");
  CHECK_EQ(st.sent_non, 1, "one plain");
  CHECK_EQ(st.con_deferred, 0, "none deferred");
  /* the output is full: the fan-out waits, then resumes */
  f->full = 1;
  CHECK_EQ(tc_srv_notify(s, &m, 3000, 7, 0, &out), 0, "nothing sent yet");
  CHECK_EQ(tc_srv_pending(s), 1, "one observer pending");
  f->full = 0;
  CHECK_EQ(tc_srv_resume(s, &m, 3001), 1, "resumed");
  CHECK_EQ(tc_srv_pending(s), 0, "done");
  CHECK_EQ(f->nlog, 3, "sent after the resume");
  /* deregistration with Observe 1 */
  CHECK_EQ(deliver(s, &m, f, &q, 0x20006u, 99, "temp", 0, 0, 1, 1), 0, "deregister");
  CHECK_EQ(tc_obs_count(tc_srv_obs(s), 7), 0, "deregistered");
  /* the connection closes: its registrations end */
  CHECK_EQ(deliver(s, &m, f, &q, 0x30007u, 41, "temp", 0, 0, 1, 0), 0, "register 2");
  CHECK_EQ(answer(s, &m, 0x30007u, 0x45, 1, 7), 0, "respond 2");
  CHECK_EQ(deliver(s, &m, f, &q, 0x30008u, 42, "temp", 0, 0, 1, 0), 0, "register 3");
  CHECK_EQ(answer(s, &m, 0x30008u, 0x45, 1, 8), 0, "respond 3");
  CHECK_EQ(tc_obs_count(tc_srv_obs(s), 7) + tc_obs_count(tc_srv_obs(s), 8), 2, "two observed");
  CHECK_EQ(tc_srv_forget_peer(s, (const uint8_t *)"other", 5), 0, "another peer: none");
  CHECK_EQ(tc_srv_forget_peer(s, PEER, sizeof PEER), 2, "both of the peer's removed");
  CHECK_EQ(tc_obs_count(tc_srv_obs(s), 7) + tc_obs_count(tc_srv_obs(s), 8), 0, "none left");
  CHECK_EQ(tc_srv_notify(s, &m, 4000, 7, 0, &out), 0, "nobody to notify");
out:
  free(f);
  free(s);
}

/* The same pipeline over an unreliable fake: CON notifications are asked for, and the layer's
 * TC_EV_FAILED for one removes the observer (consumed by tc_srv_input). */
static void t_observe_con(void) {
  fake *f = calloc(1, sizeof *f);
  tc_srv *s = srv_new(0);
  tc_messaging m;
  inreq q;
  tc_msg nm;
  tc_outmsg out;
  tc_ep_event ev;
  tc_srv_req req;
  if (f == NULL || s == NULL) goto out;
  seam_of(f, 0, 1152, &m);
  CHECK_EQ(deliver(s, &m, f, &q, 0x10007u, 5, "temp", 0, 0, 1, 0), 0, "register");
  CHECK_EQ(answer(s, &m, 0x10007u, 0x45, 1, 9), 0, "respond");
  memset(&nm, 0, sizeof nm);
  nm.code = 0x45;
  out.msg = &nm;
  out.opts = NULL;
  out.src = NULL;
  CHECK_EQ(tc_srv_notify(s, &m, 2000, 9, TC_OBS_CON, &out), 1, "notify");
  CHECK_EQ(f->log[1].flags, TC_REQ_CON | TC_NOTIFY_NON_IF_BUSY, "CON asked, NON if busy");
  memset(&ev, 0, sizeof ev);
  ev.kind = TC_EV_FAILED;
  ev.id = 0x40000000u | f->notify_ids;
  ev.status = TC_E_RESET;
  ev.flags = TC_EVF_LAST;
  q.rx.addr = PEER;
  q.rx.addr_len = sizeof PEER;
  CHECK_EQ(tc_srv_input(s, &m, 2100, &q.rx, &ev, &req), 0, "input the failure");
  CHECK_EQ(ev.kind, TC_EV_NONE, "consumed");
  CHECK_EQ(tc_obs_count(tc_srv_obs(s), 9), 0, "observer removed");
out:
  free(f);
  free(s);
}

void test_seam(void);
void test_seam(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  t_plain_and_drop();
  t_blockwise();
  t_observe_reliable();
  t_observe_con();
  printf("seam-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

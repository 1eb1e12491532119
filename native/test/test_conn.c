/* test_conn.c — RFC 8323 connections (tc_conn): two instances wired back to back in memory
 * (client and server), fed byte at a time, in random chunks and whole; CSM rules, Abort,
 * Ping/Pong with Custody, Release, requests both ways, tc_srv over a connection (1 MiB Block2
 * download and Block1 upload, with and without BERT), Observe, WebSocket framing and every
 * bound. Prints "conn-tests: N passed, M failed". */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "turbocoap.h"

#define MIB (1u << 20)
#define LOG_MAX 256u

/* ------------------------------------------------------------------ one side */

typedef struct logent {
  tc_conn_event ev;
  uint32_t code;    /* decoded message code, if the event had one */
  uint32_t len;     /* message bytes kept in data (truncated to sizeof data) */
  uint8_t data[256];
} logent;

typedef struct side {
  tc_conn *c;
  tc_srv *srv;        /* optional: requests go through tc_srv_input */
  tc_messaging m;
  uint32_t nlog;
  logent log[LOG_MAX];
  /* the last response received, whole */
  uint32_t resp_len;
  uint8_t *resp;
  uint32_t resp_id;
  /* server application state */
  uint8_t *body;      /* uploads read here */
  uint32_t body_len, uploads, answered;
  uint32_t auto_answer; /* requests without srv: answer 2.05 "ok" at once */
  uint32_t ws;          /* TC_WS: whole messages per tc_conn_recv */
  char peer[16];
} side;

static uint8_t g_big[MIB];  /* the 1 MiB representation / upload body */
static uint8_t g_got[MIB];  /* what the client reassembled */

static void big_init(void) {
  uint32_t i, x = 12345;
  for (i = 0; i < MIB; i++) {
    x = x * 1103515245u + 12345u;
    g_big[i] = (uint8_t)(x >> 16);
  }
}

static tc_conn *conn_new(const tc_conn_config *cfg, const char *peer, uint64_t now) {
  static uint8_t seed[32];
  size_t n = tc_conn_size(cfg);
  tc_conn *c;
  seed[0]++;
  if (n == 0) return NULL;
  c = malloc(n);
  if (c == NULL) return NULL;
  if (tc_conn_init(c, n, cfg, seed, (const uint8_t *)peer, (uint32_t)strlen(peer), now) != 0) {
    free(c);
    return NULL;
  }
  return c;
}

static tc_srv *srv_new(uint32_t mms) {
  static const uint8_t seed[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
  tc_srv_config c;
  size_t n;
  tc_srv *s;
  tc_srv_config_default(&c);
  c.max_in_progress = 64;
  c.max_message_size = mms;
  c.bw1.max_body = MIB;
  c.bw1.pool_bytes = 2u * MIB;
  c.bw2.pool_bytes = 4u * MIB;
  n = tc_srv_size(&c);
  s = malloc(n);
  if (s == NULL || tc_srv_init(s, n, &c, seed) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static int side_init(side *s, const tc_conn_config *cfg, const char *peer, int with_srv,
                     uint32_t srv_mms) {
  memset(s, 0, sizeof *s);
  s->ws = cfg->transport == TC_WS;
  strncpy(s->peer, peer, sizeof s->peer - 1);
  s->c = conn_new(cfg, peer, 0);
  s->resp = malloc(70000);
  if (with_srv) s->srv = srv_new(srv_mms);
  if (s->c == NULL || s->resp == NULL || (with_srv && s->srv == NULL)) return -1;
  return tc_conn_messaging(s->c, &s->m);
}

static void side_free(side *s) {
  free(s->c);
  free(s->srv);
  free(s->resp);
  free(s->body);
}

/* The application above a connection. */
static void app_request(side *s, uint64_t now, const tc_rx *rx, uint32_t id,
                        const tc_srv_req *req) {
  tc_msg r;
  tc_outmsg out;
  uint32_t i, resource = 0;
  const char *path = "";
  uint32_t plen = 0;
  for (i = 0; i < rx->msg->option_count; i++)
    if (rx->opts[i].number == 11) {
      path = (const char *)rx->data + rx->opts[i].offset;
      plen = rx->opts[i].length;
      break;
    }
  memset(&r, 0, sizeof r);
  r.code = 0x45;
  out.msg = &r;
  out.opts = NULL;
  out.src = g_big;
  if (plen == 3 && memcmp(path, "big", 3) == 0) {
    r.payload_length = MIB;
  } else if (plen == 2 && memcmp(path, "up", 2) == 0) {
    r.code = 0x44;
    if (req->flags & TC_SRVF_BODY) {
      if (s->body == NULL) s->body = malloc(MIB);
      s->body_len = (uint32_t)tc_srv_read_body(s->srv, req->body_id, s->body, MIB);
      s->uploads++;
    }
  } else if (plen == 3 && memcmp(path, "obs", 3) == 0) {
    r.payload_length = 2;
    resource = 7;
  } else {
    r.payload_length = 2;
  }
  CHECK_EQ(tc_srv_respond(s->srv, &s->m, now, id, &out, resource), 0, "app respond");
  s->answered++;
}

static void handle(side *s, uint64_t now, const uint8_t *chunk, tc_conn_event *ev) {
  logent *l = s->nlog < LOG_MAX ? &s->log[s->nlog++] : NULL;
  tc_msg msg;
  tc_opt opts[64];
  tc_rx rx;
  int have = ev->length ? tc_conn_event_rx(s->c, chunk, ev, &msg, opts, 64, &rx) == 0 : 0;
  if (l != NULL) {
    l->ev = *ev;
    l->code = have ? msg.code : 0;
    l->len = have ? (uint32_t)(rx.len < sizeof l->data ? rx.len : sizeof l->data) : 0;
    if (l->len) memcpy(l->data, rx.data, l->len);
  }
  if (ev->kind == TC_CONN_EV_READY || ev->kind == TC_CONN_EV_CSM)
    CHECK_EQ(tc_conn_messaging(s->c, &s->m), 0, "refresh seam");
  if (ev->kind == TC_EV_RESPONSE && have) {
    CHECK(rx.len <= 70000, "response size");
    memcpy(s->resp, rx.data, rx.len);
    s->resp_len = (uint32_t)rx.len;
    s->resp_id = ev->id;
  }
  if (ev->kind == TC_EV_REQUEST && have) {
    if (s->srv != NULL) {
      tc_ep_event e;
      tc_srv_req req;
      e.kind = ev->kind;
      e.id = ev->id;
      e.status = 0;
      e.flags = 0;
      CHECK_EQ(tc_srv_input(s->srv, &s->m, now, &rx, &e, &req), 0, "srv input");
      if (e.kind == TC_EV_REQUEST) app_request(s, now, &rx, e.id, &req);
    } else if (s->auto_answer) {
      tc_msg r;
      tc_outmsg out;
      memset(&r, 0, sizeof r);
      r.code = 0x45;
      r.payload_length = 2;
      out.msg = &r;
      out.opts = NULL;
      out.src = (const uint8_t *)"ok";
      CHECK_EQ(tc_conn_respond(s->c, now, ev->id, &out), 0, "auto answer");
      s->answered++;
    }
  }
  if (ev->kind == TC_CONN_EV_CLOSED && s->srv != NULL)
    (void)tc_srv_forget_peer(s->srv, (const uint8_t *)s->peer, (uint32_t)strlen(s->peer));
}

/* chunking modes */
#define CH_WHOLE 0
#define CH_BYTE 1
#define CH_RANDOM 2
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

/* Move what a has to send into b, in chunks; events are handled by b. Returns bytes moved. */
static uint32_t xfer(side *a, side *b, uint64_t now, int mode) {
  uint32_t len, moved = 0;
  const uint8_t *p;
  tc_conn_event ev[8];
  while ((p = tc_conn_out(a->c, &len)) != NULL && len > 0) {
    uint32_t take = len, done = 0;
    int stalled = 0;
    if (mode == CH_BYTE) take = 1;
    else if (mode == CH_RANDOM) take = 1 + tc_rand(&g_rng) % 3000u;
    if (take > len || b->ws) take = len; /* WebSocket: one whole message per call */
    while (done < take) {
      size_t used = 0;
      int n = tc_conn_recv(b->c, now, p + done, take - done, &used, ev, 8), i;
      if (n < 0) {
        CHECK(0, "recv %d", n);
        return moved;
      }
      for (i = 0; i < n; i++) handle(b, now, p + done, &ev[i]);
      done += (uint32_t)used;
      if (used == 0 && n == 0) {
        stalled = 1;
        break;
      }
    }
    if (done) CHECK_EQ(tc_conn_out_done(a->c, done), 0, "out_done");
    moved += done;
    if (stalled) break;
  }
  return moved;
}

/* Run both directions until quiet. */
static void run(side *a, side *b, uint64_t now, int mode) {
  int k;
  for (k = 0; k < 100000; k++) {
    uint32_t m = xfer(a, b, now, mode) + xfer(b, a, now, mode);
    if (m == 0) break;
  }
}

static uint32_t count_kind(const side *s, uint32_t kind) {
  uint32_t i, n = 0;
  for (i = 0; i < s->nlog; i++)
    if (s->log[i].ev.kind == kind) n++;
  return n;
}

static const logent *last_kind(const side *s, uint32_t kind) {
  uint32_t i;
  for (i = s->nlog; i > 0; i--)
    if (s->log[i - 1].ev.kind == kind) return &s->log[i - 1];
  return NULL;
}

/* ------------------------------------------------------------------ requests */

typedef struct req {
  tc_msg msg;
  tc_opt opts[8];
  uint8_t *src; /* 70000 bytes */
  uint32_t w;
} req;

static void req_init(req *q, uint32_t code, const char *path) {
  static uint8_t srcbuf[70000];
  memset(&q->msg, 0, sizeof q->msg);
  q->msg.code = code;
  q->src = srcbuf;
  q->w = 0;
  if (path != NULL) {
    uint32_t n = (uint32_t)strlen(path);
    q->opts[q->msg.option_count].number = 11;
    q->opts[q->msg.option_count].offset = q->w;
    q->opts[q->msg.option_count].length = n;
    q->msg.option_count++;
    memcpy(q->src + q->w, path, n);
    q->w += n;
  }
}
static void req_bytes(req *q, uint32_t number, const void *v, uint32_t n) {
  q->opts[q->msg.option_count].number = number;
  q->opts[q->msg.option_count].offset = q->w;
  q->opts[q->msg.option_count].length = n;
  q->msg.option_count++;
  if (n) memcpy(q->src + q->w, v, n);
  q->w += n;
}
static void req_uint(req *q, uint32_t number, uint32_t v) {
  uint8_t t[4];
  req_bytes(q, number, t, (uint32_t)tc_uint_encode(v, t));
}
static void req_payload(req *q, const uint8_t *p, uint32_t n) {
  q->msg.payload_offset = q->w;
  q->msg.payload_length = n;
  if (n) memcpy(q->src + q->w, p, n);
  q->w += n;
}
static int req_send(side *s, uint64_t now, req *q, uint32_t flags, uint32_t *id) {
  tc_req_args a;
  tc_req_result r;
  int rc;
  memset(&a, 0, sizeof a);
  a.flags = flags;
  a.gen_token_length = 4;
  a.req.msg = &q->msg;
  a.req.opts = q->opts;
  a.req.src = q->src;
  rc = tc_conn_request(s->c, now, &a, &r);
  if (rc == 0 && id != NULL) *id = r.id;
  return rc;
}

/* decode the last response received by s */
static int resp_decode(side *s, tc_msg *msg, tc_opt *opts) {
  return tc_decode(s->resp, s->resp_len, (int)TC_TCP, msg, opts, 32);
}

static void cfg_default(tc_conn_config *c, uint32_t transport, uint32_t mms, uint32_t flags) {
  tc_conn_config_default(c);
  c->transport = transport;
  c->max_message_size = mms;
  c->flags = flags;
}

/* ------------------------------------------------------------------ tests */

static void t_config(void) {
  tc_conn_config c;
  tc_conn_config_default(&c);
  CHECK(tc_conn_size(&c) > 16384u, "default size");
  c.transport = TC_UDP;
  CHECK_EQ(tc_conn_size(&c), 0, "UDP is not a connection");
  tc_conn_config_default(&c);
  c.max_message_size = 63;
  CHECK_EQ(tc_conn_size(&c), 0, "MMS too small");
  tc_conn_config_default(&c);
  c.exchange_base = 65535;
  CHECK_EQ(tc_conn_size(&c), 0, "exchange slots past 65535");
  tc_conn_config_default(&c);
  c.out_bytes = 100;
  CHECK_EQ(tc_conn_size(&c), 0, "output too small");
  CHECK_EQ(sizeof(tc_conn_config), TC_CONN_CONFIG_WORDS * 4u, "config words");
  CHECK_EQ(sizeof(tc_conn_event), TC_CONN_EVENT_WORDS * 4u, "event words");
}

/* CSM both ways; BERT only when both offer it. */
static void handshake_with(int mode, uint32_t cflags, uint32_t sflags) {
  tc_conn_config cc, sc;
  side a, b;
  const logent *l;
  cfg_default(&cc, TC_TCP, 4000, cflags);
  cfg_default(&sc, TC_TCP, 3000, sflags);
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_WAIT_CSM, "waiting");
  CHECK(tc_conn_out_pending(a.c) > 0, "our CSM queued at init");
  CHECK_EQ(a.m.max_message_size, TC_CONN_BASE_MMS, "base MMS before the peer's CSM");
  run(&a, &b, 10, mode);
  CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_READY, "client ready");
  CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_READY, "server ready");
  l = last_kind(&a, TC_CONN_EV_READY);
  CHECK(l != NULL && l->ev.value == 3000, "client saw the server's MMS");
  l = last_kind(&b, TC_CONN_EV_READY);
  CHECK(l != NULL && l->ev.value == 4000, "server saw the client's MMS");
  CHECK_EQ(tc_conn_peer_mms(a.c), 3000, "peer MMS");
  CHECK_EQ(a.m.max_message_size, 3000, "seam size follows the peer's MMS");
  CHECK_EQ(a.m.flags & TC_MSGF_RELIABLE, TC_MSGF_RELIABLE, "reliable");
  CHECK_EQ((a.m.flags & TC_MSGF_BERT) != 0, (cflags & sflags & TC_CONNF_BERT) != 0,
           "BERT iff both offer it");
  CHECK_EQ((b.m.flags & TC_MSGF_BERT) != 0, (cflags & sflags & TC_CONNF_BERT) != 0,
           "BERT iff both offer it (server)");
  CHECK_EQ(count_kind(&a, TC_CONN_EV_CLOSED), 0, "no close");
out:
  side_free(&a);
  side_free(&b);
}

static void t_handshake(void) {
  handshake_with(CH_WHOLE, TC_CONNF_BERT, TC_CONNF_BERT);
  handshake_with(CH_BYTE, TC_CONNF_BERT, 0);
  handshake_with(CH_RANDOM, 0, TC_CONNF_BERT);
}

/* Raw bytes into a fresh server connection; returns its events in b. */
static void raw_into(side *b, const uint8_t *bytes, uint32_t len) {
  tc_conn_event ev[8];
  size_t used = 0;
  int n, i;
  n = tc_conn_recv(b->c, 5, bytes, len, &used, ev, 8);
  CHECK(n >= 0, "recv");
  for (i = 0; i < n; i++) handle(b, 5, bytes, &ev[i]);
}

/* The server's output after its CSM: the Abort it sent (decoded). */
static int abort_sent(side *b, tc_msg *m, tc_opt *o, const uint8_t **data) {
  uint32_t len;
  const uint8_t *p = tc_conn_out(b->c, &len);
  tc_frame fr;
  tc_deframer *d = malloc(tc_deframer_size(70000));
  size_t used;
  int n, found = 0;
  if (d == NULL || p == NULL) {
    free(d);
    return 0;
  }
  tc_deframer_init(d, tc_deframer_size(70000), 70000);
  while (len > 0 && (n = tc_deframer_feed(d, p, len, &used, &fr, 1)) == 1) {
    if (fr.where == TC_FRAME_CHUNK && tc_decode(p + fr.offset, fr.length, TC_TCP, m, o, 8) >= 0 &&
        m->code == 0xE5) {
      *data = p + fr.offset;
      found = 1;
    }
    p += used;
    len -= (uint32_t)used;
  }
  free(d);
  return found;
}

static uint32_t encode_raw(uint8_t *out, uint32_t cap, uint32_t code, const uint8_t *src,
                           tc_opt *o, uint32_t nopt, uint32_t plen) {
  tc_msg m;
  memset(&m, 0, sizeof m);
  m.code = code;
  m.option_count = nopt;
  m.payload_offset = 16;
  m.payload_length = plen;
  return (uint32_t)tc_encode(out, cap, TC_TCP, &m, o, src);
}

static void csm_case(const char *what, const uint8_t *bytes, uint32_t len, int32_t status,
                     uint32_t bad_csm) {
  tc_conn_config sc;
  side b;
  tc_msg m;
  tc_opt o[8];
  const uint8_t *d = NULL;
  const logent *l;
  cfg_default(&sc, TC_TCP, 1152, TC_CONNF_BERT);
  if (side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  raw_into(&b, bytes, len);
  l = last_kind(&b, TC_CONN_EV_CLOSED);
  CHECK(l != NULL, "%s: closed", what);
  if (l != NULL) CHECK_EQ(l->ev.status, status, what);
  CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_CLOSED, what);
  CHECK(abort_sent(&b, &m, o, &d), "%s: Abort sent", what);
  if (d != NULL) {
    uint32_t v = TC_CONN_NO_VALUE;
    if (m.option_count && o[0].number == 2) tc_uint_decode(d + o[0].offset, o[0].length, &v);
    CHECK_EQ(v, bad_csm, what);
    CHECK(m.payload_length > 0, "%s: diagnostic", what);
  }
  /* a closed connection ignores what follows */
  {
    tc_conn_event ev[4];
    size_t used = 0;
    CHECK_EQ(tc_conn_recv(b.c, 6, bytes, len, &used, ev, 4), 0, "closed: nothing");
    CHECK_EQ(used, len, "closed: all consumed");
  }
out:
  side_free(&b);
}

static void t_csm_rules(void) {
  uint8_t buf[64];
  uint8_t src[32] = {1, 2, 3, 4, 5};
  tc_opt o[2];
  uint32_t n;
  /* a request first */
  o[0].number = 11;
  o[0].offset = 0;
  o[0].length = 1;
  n = encode_raw(buf, sizeof buf, 1, src, o, 1, 0);
  csm_case("request before CSM", buf, n, TC_E_INVALID, TC_CONN_NO_VALUE);
  /* a Ping first */
  n = encode_raw(buf, sizeof buf, 0xE2, src, o, 0, 0);
  csm_case("Ping before CSM", buf, n, TC_E_INVALID, TC_CONN_NO_VALUE);
  /* Max-Message-Size of 5 bytes */
  o[0].number = 2;
  o[0].offset = 0;
  o[0].length = 5;
  n = encode_raw(buf, sizeof buf, 0xE1, src, o, 1, 0);
  csm_case("MMS of 5 bytes", buf, n, TC_E_INVALID, 2);
  /* an unknown critical CSM option */
  o[0].number = 9;
  o[0].length = 0;
  n = encode_raw(buf, sizeof buf, 0xE1, src, o, 1, 0);
  csm_case("unknown critical CSM option", buf, n, TC_E_INVALID, 9);
  /* an unknown elective option is ignored: the CSM is fine */
  {
    tc_conn_config sc;
    side b;
    o[0].number = 10;
    o[0].length = 1;
    n = encode_raw(buf, sizeof buf, 0xE1, src, o, 1, 0);
    cfg_default(&sc, TC_TCP, 1152, 0);
    if (side_init(&b, &sc, "server", 0, 0) == 0) {
      raw_into(&b, buf, n);
      CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_READY, "elective option ignored");
      CHECK_EQ(tc_conn_peer_mms(b.c), 1152, "base MMS kept");
      /* garbage after the CSM: a format error (TKL 15) */
      buf[0] = 0x0F;
      raw_into(&b, buf, 2);
      CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_CLOSED, "garbage: Abort");
      CHECK(last_kind(&b, TC_CONN_EV_CLOSED) != NULL &&
                last_kind(&b, TC_CONN_EV_CLOSED)->ev.status == TC_E_RESERVED_TKL,
            "garbage: format error");
    }
    side_free(&b);
  }
  /* no CSM at all: Abort at csm_timeout_ms */
  {
    tc_conn_config sc;
    side b;
    tc_conn_event ev[4];
    tc_msg m;
    tc_opt oo[8];
    const uint8_t *d;
    cfg_default(&sc, TC_TCP, 1152, 0);
    sc.csm_timeout_ms = 500;
    if (side_init(&b, &sc, "server", 0, 0) == 0) {
      CHECK_EQ(tc_conn_next_deadline(b.c), 500, "CSM deadline");
      CHECK_EQ(tc_conn_timer(b.c, 499, ev, 4), 0, "not yet");
      CHECK_EQ(tc_conn_timer(b.c, 500, ev, 4), 1, "late CSM");
      CHECK_EQ(ev[0].kind, TC_CONN_EV_CLOSED, "closed");
      CHECK_EQ(ev[0].status, TC_E_INVALID, "no CSM");
      CHECK(abort_sent(&b, &m, oo, &d), "Abort sent");
      CHECK_EQ(tc_conn_next_deadline(b.c), UINT64_MAX, "nothing due when closed");
    }
    side_free(&b);
  }
}

/* A frame over our Max-Message-Size: Abort before its body is buffered. */
static void t_oversize(void) {
  tc_conn_config cc, sc;
  side a, b;
  req q;
  static uint8_t pl[3000];
  const logent *l;
  cfg_default(&cc, TC_TCP, 8000, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  /* before the server's CSM the client assumes 1152: a larger request is refused */
  req_init(&q, 2, "x");
  req_payload(&q, pl, 2000);
  CHECK_EQ(req_send(&a, 1, &q, 0, NULL), TC_E_MESSAGE_TOO_LARGE, "over the base MMS");
  run(&a, &b, 2, CH_RANDOM);
  CHECK_EQ(req_send(&a, 3, &q, 0, NULL), TC_E_MESSAGE_TOO_LARGE, "over the peer's MMS");
  /* a misbehaving client: a raw frame of 2000 bytes */
  {
    uint8_t raw[2100];
    tc_opt o;
    uint32_t n = encode_raw(raw, sizeof raw, 2, pl, &o, 0, 2000);
    CHECK(n > 2000, "raw frame");
    raw_into(&b, raw, 20); /* the header is enough */
  }
  l = last_kind(&b, TC_CONN_EV_CLOSED);
  CHECK(l != NULL && l->ev.status == TC_E_MESSAGE_TOO_LARGE, "oversize frame: Abort");
  run(&b, &a, 4, CH_WHOLE);
  CHECK(last_kind(&a, TC_CONN_EV_ABORT) != NULL, "client got the Abort");
  CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_CLOSED, "client closed");
out:
  side_free(&a);
  side_free(&b);
}

static void t_ping(void) {
  tc_conn_config cc, sc;
  side a, b;
  uint32_t id = 0, rid;
  tc_conn_event ev[4];
  const logent *l;
  req q;
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  cc.idle_ms = 1000;
  cc.ping_timeout_ms = 300;
  sc.idle_ms = 0;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  CHECK_EQ(tc_conn_ping(a.c, 100, 0, &id), 0, "ping");
  CHECK_EQ(tc_conn_ping(a.c, 100, 0, NULL), TC_E_FULL, "one Ping at a time");
  run(&a, &b, 142, CH_BYTE);
  l = last_kind(&a, TC_CONN_EV_PONG);
  CHECK(l != NULL && l->ev.id == id && l->ev.value == 42, "Pong with the RTT");
  /* Custody: the Pong waits for the request received before the Ping */
  req_init(&q, 1, "slow");
  CHECK_EQ(req_send(&a, 200, &q, 0, &rid), 0, "request");
  CHECK_EQ(tc_conn_ping(a.c, 200, 1, &id), 0, "ping with custody");
  run(&a, &b, 210, CH_WHOLE);
  CHECK_EQ(count_kind(&a, TC_CONN_EV_PONG), 1, "no Pong yet: a request is open");
  l = last_kind(&b, TC_EV_REQUEST);
  CHECK(l != NULL, "request delivered");
  if (l != NULL) {
    tc_msg r;
    tc_outmsg out;
    memset(&r, 0, sizeof r);
    r.code = 0x45;
    out.msg = &r;
    out.opts = NULL;
    out.src = NULL;
    CHECK_EQ(tc_conn_respond(b.c, 220, l->ev.id, &out), 0, "answer");
    CHECK_EQ(tc_conn_respond(b.c, 220, l->ev.id, &out), TC_E_STALE, "answered once");
  }
  run(&b, &a, 230, CH_WHOLE);
  l = last_kind(&a, TC_CONN_EV_PONG);
  CHECK(l != NULL && (l->ev.flags & TC_CONN_EVF_CUSTODY), "Pong with Custody after the answer");
  CHECK(a.nlog >= 2 && a.log[a.nlog - 2].ev.kind == TC_EV_RESPONSE, "the response came first");
  /* idle: a Ping at idle_ms; unanswered: dead */
  CHECK_EQ(tc_conn_next_deadline(a.c), 1230, "idle deadline (last receipt 230)");
  CHECK_EQ(tc_conn_timer(a.c, 1230, ev, 4), 0, "idle Ping sent");
  CHECK(tc_conn_out_pending(a.c) > 0, "the Ping is queued");
  CHECK_EQ(tc_conn_next_deadline(a.c), 1530, "Pong deadline");
  CHECK_EQ(tc_conn_timer(a.c, 1530, ev, 4), 1, "no Pong");
  CHECK_EQ(ev[0].kind, TC_CONN_EV_CLOSED, "dead");
  CHECK_EQ(ev[0].status, TC_E_TIMEOUT, "timeout");
out:
  side_free(&a);
  side_free(&b);
}

static void t_release_abort(void) {
  tc_conn_config cc, sc;
  side a, b;
  const logent *l;
  req q;
  uint32_t rid;
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  req_init(&q, 1, "a");
  CHECK_EQ(req_send(&a, 1, &q, 0, &rid), 0, "request before Release");
  run(&a, &b, 1, CH_WHOLE);
  CHECK_EQ(tc_conn_release(b.c, 2, (const uint8_t *)"coap+tcp://other", 16, 30, "bye"), 0,
           "release");
  CHECK_EQ(tc_conn_state(b.c) & TC_CONN_S_RELEASED, TC_CONN_S_RELEASED, "released flag");
  run(&b, &a, 3, CH_RANDOM);
  l = last_kind(&a, TC_CONN_EV_RELEASE);
  CHECK(l != NULL && l->ev.value == 30, "Release with Hold-Off 30");
  if (l != NULL) {
    tc_msg m;
    tc_opt o[4];
    int n = tc_decode(l->data, l->len, TC_TCP, &m, o, 4);
    CHECK(n >= 1 && o[0].number == 2 && o[0].length == 16 &&
              memcmp(l->data + o[0].offset, "coap+tcp://other", 16) == 0,
          "Alternative-Address");
  }
  CHECK_EQ(tc_conn_state(a.c) & TC_CONN_S_PEER_RELEASED, TC_CONN_S_PEER_RELEASED, "peer released");
  CHECK_EQ(req_send(&a, 4, &q, 0, NULL), TC_E_STALE, "no new requests after Release");
  /* the open exchange is still answered */
  l = last_kind(&b, TC_EV_REQUEST);
  if (l != NULL) {
    tc_msg r;
    tc_outmsg out;
    memset(&r, 0, sizeof r);
    r.code = 0x45;
    out.msg = &r;
    out.opts = NULL;
    out.src = NULL;
    CHECK_EQ(tc_conn_respond(b.c, 5, l->ev.id, &out), 0, "answer after Release");
  }
  run(&b, &a, 6, CH_WHOLE);
  CHECK(a.resp_id == rid, "the response arrived");
  /* Abort */
  CHECK_EQ(tc_conn_abort(a.c, 7, "done"), 0, "abort");
  CHECK_EQ(tc_conn_abort(a.c, 7, "done"), TC_E_STALE, "once");
  CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_CLOSED, "closed after Abort");
  run(&a, &b, 8, CH_BYTE);
  l = last_kind(&b, TC_CONN_EV_ABORT);
  CHECK(l != NULL && l->ev.value == TC_CONN_NO_VALUE, "Abort received");
  if (l != NULL) {
    tc_msg m;
    tc_opt o[4];
    CHECK(tc_decode(l->data, l->len, TC_TCP, &m, o, 4) >= 0 && m.payload_length == 4 &&
              memcmp(l->data + m.payload_offset, "done", 4) == 0,
          "diagnostic");
  }
  l = last_kind(&b, TC_CONN_EV_CLOSED);
  CHECK(l != NULL && l->ev.status == 0, "closed by the peer");
  CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_CLOSED, "server closed");
out:
  side_free(&a);
  side_free(&b);
}

/* Pipelined requests both ways, matched by token. */
static void both_ways(int mode, uint32_t transport) {
  tc_conn_config cc, sc;
  side a, b;
  uint32_t i, ids_a[20], ids_b[20], got;
  req q;
  cfg_default(&cc, transport, 1152, 0);
  cfg_default(&sc, transport, 1152, 0);
  cc.max_requests = sc.max_requests = 32;
  cc.max_exchanges = sc.max_exchanges = 32;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  a.auto_answer = b.auto_answer = 1;
  req_init(&q, 1, "x");
  for (i = 0; i < 20; i++) {
    CHECK_EQ(req_send(&a, 1, &q, 0, &ids_a[i]), 0, "client request");
    CHECK_EQ(req_send(&b, 1, &q, 0, &ids_b[i]), 0, "server request");
  }
  run(&a, &b, 2, mode);
  CHECK_EQ(a.answered, 20, "client answered the server's requests");
  CHECK_EQ(b.answered, 20, "server answered the client's requests");
  CHECK_EQ(count_kind(&a, TC_EV_RESPONSE), 20, "client got 20 responses");
  CHECK_EQ(count_kind(&b, TC_EV_RESPONSE), 20, "server got 20 responses");
  got = 0;
  for (i = 0; i < a.nlog; i++)
    if (a.log[i].ev.kind == TC_EV_RESPONSE) {
      uint32_t k;
      for (k = 0; k < 20; k++)
        if (ids_a[k] == a.log[i].ev.id) got++;
      CHECK(a.log[i].ev.flags & TC_EVF_LAST, "last");
      CHECK_EQ(a.log[i].code, 0x45, "2.05");
    }
  CHECK_EQ(got, 20, "every response matched to its request");
  {
    tc_conn_stats st;
    tc_conn_get_stats(a.c, &st);
    CHECK_EQ(st.requests, 0, "nothing outstanding");
    CHECK_EQ(st.exchanges, 0, "no exchange open");
  }
out:
  side_free(&a);
  side_free(&b);
}

static void t_both_ways(void) {
  both_ways(CH_WHOLE, TC_TCP);
  both_ways(CH_BYTE, TC_TCP);
  both_ways(CH_RANDOM, TC_TCP);
  both_ways(CH_WHOLE, TC_WS);
}

/* WebSocket framing: Len nibble 0; anything else is a format error. */
static void t_ws(void) {
  tc_conn_config sc;
  side b;
  uint8_t raw[8];
  const logent *l;
  uint32_t len;
  const uint8_t *p;
  cfg_default(&sc, TC_WS, 1152, 0);
  if (side_init(&b, &sc, "ws", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  p = tc_conn_out(b.c, &len);
  CHECK(p != NULL && len >= 2 && (p[0] >> 4) == 0 && p[1] == 0xE1, "CSM, Len 0");
  raw[0] = 0x00;
  raw[1] = 0xE1; /* a CSM */
  raw_into(&b, raw, 2);
  CHECK_EQ(tc_conn_state(b.c) & 0xFF, TC_CONN_READY, "ws ready");
  raw[0] = 0x10;
  raw[1] = 0x01;
  raw[2] = 0xFF; /* Len 1 */
  raw_into(&b, raw, 3);
  l = last_kind(&b, TC_CONN_EV_CLOSED);
  CHECK(l != NULL && l->ev.status == TC_E_WS_LENGTH, "Len nibble in WS: Abort");
out:
  side_free(&b);
}

/* tc_srv over a connection: 1 MiB down and up, block-wise, BERT when both allow it. */
static void srv_transfer(int bert, int mode) {
  tc_conn_config cc, sc;
  side a, b;
  tc_bwc_config bc;
  tc_bwc *w = NULL;
  tc_bwc_result res;
  uint32_t mms = bert ? 20000u : 1152u, rounds = 0, id;
  int st = 0;
  req q;
  tc_msg m;
  tc_opt o[32];
  cfg_default(&cc, TC_TCP, mms, bert ? TC_CONNF_BERT : 0u);
  cfg_default(&sc, TC_TCP, mms, TC_CONNF_BERT);
  sc.out_bytes = 65536;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 1, bert ? 20000 : 1280)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, mode);
  CHECK_EQ((b.m.flags & TC_MSGF_BERT) != 0, bert, "seam BERT flag");
  tc_bwc_config_default(&bc);
  if (bert) {
    bc.flags = TC_BWC_BERT;
    bc.preferred_szx = 7;
    bc.bert_bytes = 8192;
  }
  w = malloc(tc_bwc_size(&bc));
  if (w == NULL || tc_bwc_init(w, tc_bwc_size(&bc), &bc) != 0) {
    CHECK(0, "bwc");
    goto out;
  }
  /* download */
  CHECK_EQ(tc_bwc_get_begin(w, &res), TC_BWC_NEXT, "get begin");
  for (rounds = 0; rounds < 2000; rounds++) {
    req_init(&q, 1, "big");
    req_uint(&q, TC_OPT_BLOCK2, res.block);
    CHECK_EQ(req_send(&a, 10, &q, 0, &id), 0, "block request");
    a.resp_len = 0;
    run(&a, &b, 10, mode);
    if (a.resp_id != id || resp_decode(&a, &m, o) < 0) {
      CHECK(0, "no response to block %u", rounds);
      break;
    }
    st = tc_bwc_get_response(w, &m, o, a.resp, g_got, MIB, &res);
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_DONE, "download done");
  CHECK_EQ(res.length, MIB, "1 MiB");
  CHECK(memcmp(g_got, g_big, MIB) == 0, "body intact");
  if (bert) CHECK(rounds < 80, "BERT: many KiB per response (%u rounds)", rounds);
  else CHECK_EQ(rounds + 1, 1024, "1024-byte blocks");
  /* upload */
  CHECK_EQ(tc_bwc_put_begin(w, MIB, (const uint8_t *)"tag1", 4, &res), TC_BWC_NEXT, "put begin");
  for (rounds = 0; rounds < 2000; rounds++) {
    uint8_t tag[8];
    int tl = tc_bwc_request_tag(w, tag);
    req_init(&q, 3, "up");
    req_uint(&q, TC_OPT_BLOCK1, res.block);
    req_bytes(&q, TC_OPT_REQUEST_TAG, tag, (uint32_t)tl);
    req_payload(&q, g_big + res.offset, res.length);
    CHECK_EQ(req_send(&a, 20, &q, 0, &id), 0, "upload request");
    run(&a, &b, 20, mode);
    if (a.resp_id != id || resp_decode(&a, &m, o) < 0) {
      CHECK(0, "no response to upload block %u", rounds);
      break;
    }
    st = tc_bwc_put_response(w, &m, o, a.resp, &res);
    if (st != TC_BWC_NEXT) break;
  }
  CHECK_EQ(st, TC_BWC_DONE, "upload done");
  CHECK_EQ(res.code, 0x44, "2.04");
  CHECK_EQ(b.uploads, 1, "one upload delivered");
  CHECK_EQ(b.body_len, MIB, "1 MiB stored");
  CHECK(b.body != NULL && memcmp(b.body, g_big, MIB) == 0, "upload intact");
  if (bert) CHECK_EQ(rounds + 1, MIB / 8192, "BERT: 8 KiB per request");
  else CHECK_EQ(rounds + 1, 1024, "1024-byte blocks up");
out:
  free(w);
  side_free(&a);
  side_free(&b);
}

static void t_srv_transfers(void) {
  srv_transfer(1, CH_WHOLE);
  srv_transfer(0, CH_WHOLE);
  srv_transfer(1, CH_RANDOM);
}

/* Observe over the connection: notifications are plain responses to the kept request. */
static void t_observe(void) {
  tc_conn_config cc, sc;
  side a, b;
  req q;
  uint32_t id, v1 = 0, v2 = 0, i, n = 0;
  tc_msg nm, m;
  tc_opt o[16];
  tc_outmsg out;
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  cc.idle_ms = 0;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 1, 1280)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  req_init(&q, 1, "obs");
  req_uint(&q, TC_OPT_OBSERVE, 0);
  CHECK_EQ(req_send(&a, 1, &q, TC_REQ_KEEP, &id), 0, "observe request");
  run(&a, &b, 1, CH_WHOLE);
  CHECK_EQ(tc_obs_count(tc_srv_obs(b.srv), 7), 1, "registered");
  memset(&nm, 0, sizeof nm);
  nm.code = 0x45;
  nm.payload_length = 3;
  out.msg = &nm;
  out.opts = NULL;
  out.src = (const uint8_t *)"abc";
  CHECK_EQ(tc_srv_notify(b.srv, &b.m, 2, 7, TC_OBS_CON, &out), 1, "notify");
  CHECK_EQ(tc_srv_notify(b.srv, &b.m, 3, 7, 0, &out), 1, "notify again");
  run(&b, &a, 4, CH_BYTE);
  for (i = 0; i < a.nlog; i++) {
    const logent *l = &a.log[i];
    if (l->ev.kind != TC_EV_RESPONSE) continue;
    CHECK_EQ(l->ev.id, id, "for the observe request");
    CHECK_EQ(l->ev.flags & TC_EVF_LAST, 0, "kept");
    if (tc_decode(l->data, l->len, TC_TCP, &m, o, 16) >= 0) {
      uint32_t k, v = 0;
      for (k = 0; k < m.option_count; k++)
        if (o[k].number == TC_OPT_OBSERVE) tc_uint_decode(l->data + o[k].offset, o[k].length, &v);
      if (n == 1) v1 = v;
      if (n == 2) v2 = v;
    }
    n++;
  }
  CHECK_EQ(n, 3, "response + 2 notifications");
  CHECK(v2 > v1, "sequence grows");
  CHECK_EQ(tc_conn_next_deadline(a.c), UINT64_MAX, "a kept request does not time out");
  CHECK_EQ(tc_conn_cancel(a.c, id), 0, "cancel");
  CHECK_EQ(tc_conn_cancel(a.c, id), TC_E_STALE, "cancelled");
  /* another peer's notification is not this connection's */
  {
    tc_notify_args na;
    memset(&na, 0, sizeof na);
    na.addr = (const uint8_t *)"other";
    na.addr_len = 5;
    na.resp = out;
    CHECK_EQ(tc_conn_notify(b.c, 5, &na, NULL), TC_E_STALE, "other peer");
  }
  /* the connection closes: the registration ends */
  CHECK_EQ(tc_conn_abort(a.c, 6, NULL), 0, "client aborts");
  run(&a, &b, 7, CH_WHOLE);
  CHECK_EQ(tc_srv_forget_peer(b.srv, (const uint8_t *)"server", 6), 0, "gone already");
  CHECK_EQ(tc_obs_count(tc_srv_obs(b.srv), 7), 0, "registration ended with the connection");
out:
  side_free(&a);
  side_free(&b);
}

/* Every bound. */
static void t_bounds(void) {
  tc_conn_config cc, sc;
  side a, b;
  req q;
  uint32_t i, id;
  tc_conn_event ev[8];
  tc_msg r;
  tc_outmsg out;
  const logent *l;
  tc_msg m;
  tc_opt o[8];
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  cc.max_requests = 3;
  cc.request_timeout_ms = 1000;
  cc.idle_ms = 0;
  sc.max_exchanges = 2;
  sc.out_bytes = 1024;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  CHECK_EQ(tc_conn_send_limit(b.c), 1024 - 256, "send limit within the output");
  /* max_requests */
  req_init(&q, 1, "p");
  for (i = 0; i < 3; i++) CHECK_EQ(req_send(&a, 10, &q, 0, &id), 0, "request");
  CHECK_EQ(req_send(&a, 10, &q, 0, NULL), TC_E_FULL, "max_requests");
  /* max_exchanges: the third request gets 5.03 with Max-Age */
  run(&a, &b, 11, CH_WHOLE);
  CHECK_EQ(count_kind(&b, TC_EV_REQUEST), 2, "two delivered");
  l = last_kind(&a, TC_EV_RESPONSE);
  CHECK(l != NULL && l->code == 0xA3, "5.03 for the third");
  if (l != NULL && tc_decode(l->data, l->len, TC_TCP, &m, o, 8) >= 1)
    CHECK_EQ(o[0].number, 14, "Max-Age");
  /* request timeout */
  CHECK_EQ(tc_conn_next_deadline(a.c), 1010, "request deadline");
  CHECK_EQ(tc_conn_timer(a.c, 1010, ev, 8), 2, "two requests time out");
  CHECK_EQ(ev[0].kind, TC_EV_FAILED, "failed");
  CHECK_EQ(ev[0].status, TC_E_TIMEOUT, "timeout");
  /* output full: respond refuses, the exchange stays open; recv stops (backpressure) */
  memset(&r, 0, sizeof r);
  r.code = 0x45;
  r.payload_length = 700;
  out.msg = &r;
  out.opts = NULL;
  out.src = g_big;
  l = last_kind(&b, TC_EV_REQUEST);
  if (l != NULL) {
    uint32_t x = l->ev.id;
    CHECK_EQ(tc_conn_respond(b.c, 12, x, &out), 0, "fits");
    id = b.log[0].ev.kind == TC_EV_REQUEST ? b.log[0].ev.id : 0;
    for (i = 0; i < b.nlog; i++)
      if (b.log[i].ev.kind == TC_EV_REQUEST && b.log[i].ev.id != x) id = b.log[i].ev.id;
    CHECK_EQ(tc_conn_respond(b.c, 12, id, &out), TC_E_FULL, "output full");
    r.payload_length = 900;
    CHECK_EQ(tc_conn_respond(b.c, 12, id, &out), TC_E_MESSAGE_TOO_LARGE, "over the limit");
    r.payload_length = 100;
    CHECK_EQ(tc_conn_respond(b.c, 12, id, &out), 0, "a smaller one fits");
    /* the client pings: the server cannot take it while its output is nearly full */
    {
      uint8_t ping[2] = {0x00, 0xE2};
      size_t used = 9;
      CHECK_EQ(tc_conn_recv(b.c, 13, ping, 2, &used, ev, 8), 0, "no room");
      CHECK_EQ(used, 0, "backpressure: nothing consumed");
      run(&b, &a, 14, CH_WHOLE);
      CHECK_EQ(tc_conn_out_pending(b.c), 0, "drained");
      CHECK_EQ(tc_conn_recv(b.c, 15, ping, 2, &used, ev, 8), 0, "ping taken");
      CHECK_EQ(used, 2, "consumed after the drain");
      CHECK(tc_conn_out_pending(b.c) > 0, "Pong queued");
    }
  }
  {
    tc_conn_stats st;
    tc_conn_get_stats(b.c, &st);
    CHECK(st.out_full >= 1, "counted");
    CHECK_EQ(st.exchanges, 0, "all answered");
  }
  side_free(&a);
  side_free(&b);
  /* requests the connection refuses itself */
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  {
    static const struct { uint32_t code, opt, want; } cases[] = {
      {0x09, 11, 0x85},  /* unknown method 0.09 */
      {0x01, 25, 0x82},  /* unrecognized critical option */
      {0x01, 35, 0xA5},  /* Proxy-Uri */
    };
    for (i = 0; i < 3; i++) {
      req_init(&q, cases[i].code, NULL);
      req_bytes(&q, cases[i].opt, "x", 1);
      CHECK_EQ(req_send(&a, 1, &q, 0, &id), cases[i].code <= 31 ? 0 : TC_E_INVALID, "send");
      a.resp_id = 0;
      run(&a, &b, 1, CH_WHOLE);
      CHECK_EQ(a.resp_id, id, "answered by the connection");
      CHECK(resp_decode(&a, &m, o) >= 0 && m.code == cases[i].want, "code %x", cases[i].want);
    }
    CHECK_EQ(count_kind(&b, TC_EV_REQUEST), 0, "none delivered");
  }
  /* a token longer than we keep: 4.00, the token echoed */
  {
    uint8_t raw[128], tokb[40];
    tc_msg m2;
    tc_opt o2[4];
    uint32_t len;
    const uint8_t *p;
    int n;
    for (i = 0; i < 40; i++) tokb[i] = (uint8_t)(i + 1);
    memset(&m2, 0, sizeof m2);
    m2.code = 1;
    m2.token_length = 40;
    n = tc_encode(raw, sizeof raw, TC_TCP, &m2, o2, tokb);
    CHECK(n > 40, "encode long token");
    run(&b, &a, 1, CH_WHOLE);
    raw_into(&b, raw, (uint32_t)n);
    p = tc_conn_out(b.c, &len);
    CHECK(p != NULL && tc_decode(p, len, TC_TCP, &m2, o2, 4) >= 0 && m2.code == 0x80 &&
              m2.token_length == 40 && memcmp(p + m2.token_offset, tokb, 40) == 0,
          "4.00 with the 40-byte token");
    CHECK_EQ(count_kind(&b, TC_EV_REQUEST), 0, "not delivered");
  }
  /* a response matching nothing is ignored */
  {
    uint8_t raw[8];
    tc_conn_stats st;
    raw[0] = 0x01;
    raw[1] = 0x45;
    raw[2] = 0x77;
    raw_into(&a, raw, 3);
    tc_conn_get_stats(a.c, &st);
    CHECK_EQ(st.unmatched, 1, "unmatched response counted");
    CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_READY, "still open");
    /* a 1.xx code: format error */
    raw[1] = 0x21;
    raw_into(&a, raw, 3);
    CHECK_EQ(tc_conn_state(a.c) & 0xFF, TC_CONN_CLOSED, "class 1: Abort");
  }
out:
  side_free(&a);
  side_free(&b);
}

/* Two connections under one tc_srv: disjoint exchange slots, notifications routed by peer. */
static side *g_rt[2];
static tc_conn *rt_by_peer(void *ctx, const uint8_t *peer, uint32_t len) {
  uint32_t i;
  (void)ctx;
  for (i = 0; i < 2; i++)
    if (strlen(g_rt[i]->peer) == len && memcmp(g_rt[i]->peer, peer, len) == 0) return g_rt[i]->c;
  return NULL;
}
static tc_conn *rt_by_slot(void *ctx, uint32_t slot) {
  (void)ctx;
  return slot < 8 ? g_rt[0]->c : slot < 16 ? g_rt[1]->c : NULL;
}

static void t_router(void) {
  tc_conn_config cc, sc;
  side a1, a2, b1, b2;
  tc_conn_router rt;
  tc_messaging rm;
  req q;
  uint32_t id1, id2;
  tc_msg nm;
  tc_outmsg out;
  const logent *l;
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  cc.idle_ms = 0;
  sc.max_exchanges = 8;
  if (side_init(&a1, &cc, "s", 0, 0) || side_init(&a2, &cc, "s", 0, 0) ||
      side_init(&b1, &sc, "c1", 1, 1280)) {
    CHECK(0, "setup");
    return;
  }
  sc.exchange_base = 8;
  if (side_init(&b2, &sc, "c2", 0, 0)) {
    CHECK(0, "setup");
    return;
  }
  b2.srv = b1.srv; /* shared */
  CHECK_EQ(b2.m.max_exchanges, 16, "slots up to base + max");
  g_rt[0] = &b1;
  g_rt[1] = &b2;
  memset(&rt, 0, sizeof rt);
  rt.by_peer = rt_by_peer;
  rt.by_slot = rt_by_slot;
  rt.transport = TC_TCP;
  rt.max_message_size = TC_CONN_BASE_MMS;
  rt.max_exchanges = 16;
  CHECK_EQ(tc_conn_router_messaging(&rt, &rm), 0, "router seam");
  run(&a1, &b1, 0, CH_WHOLE);
  run(&a2, &b2, 0, CH_WHOLE);
  req_init(&q, 1, "obs");
  req_uint(&q, TC_OPT_OBSERVE, 0);
  CHECK_EQ(req_send(&a1, 1, &q, TC_REQ_KEEP, &id1), 0, "observe 1");
  CHECK_EQ(req_send(&a2, 1, &q, TC_REQ_KEEP, &id2), 0, "observe 2");
  run(&a1, &b1, 1, CH_WHOLE);
  run(&a2, &b2, 1, CH_WHOLE);
  l = last_kind(&b2, TC_EV_REQUEST);
  CHECK(l != NULL && (l->ev.id & 0xFFFFu) >= 8, "second connection's slots");
  CHECK_EQ(tc_obs_count(tc_srv_obs(b1.srv), 7), 2, "two observers");
  memset(&nm, 0, sizeof nm);
  nm.code = 0x45;
  nm.payload_length = 1;
  out.msg = &nm;
  out.opts = NULL;
  out.src = (const uint8_t *)"n";
  CHECK_EQ(tc_srv_notify(b1.srv, &rm, 2, 7, 0, &out), 2, "fan-out over both connections");
  run(&b1, &a1, 3, CH_WHOLE);
  run(&b2, &a2, 3, CH_WHOLE);
  CHECK_EQ(count_kind(&a1, TC_EV_RESPONSE), 2, "client 1: response + notification");
  CHECK_EQ(count_kind(&a2, TC_EV_RESPONSE), 2, "client 2: response + notification");
  /* through the router, respond / drop find the connection by slot */
  CHECK_EQ(tc_messaging_drop(&rm, 0x10005u), TC_E_STALE, "no such exchange");
  CHECK_EQ(tc_messaging_drop(&rm, 0x10020u), TC_E_STALE, "slot of no connection");
  b2.srv = NULL;
  side_free(&a1);
  side_free(&a2);
  side_free(&b1);
  side_free(&b2);
}

/* A peer that reads nothing: the output fills, the idle Ping finds no room, and the connection
 * is declared dead ping_timeout_ms later instead of waiting for ever. */
static void t_slow_reader(void) {
  tc_conn_config cc, sc;
  side a, b;
  req q;
  uint32_t i, filled = 0;
  tc_conn_event ev[4];
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, 0);
  cc.idle_ms = 0;
  sc.out_bytes = 1024;
  sc.idle_ms = 100;
  sc.ping_timeout_ms = 50;
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    goto out;
  }
  run(&a, &b, 0, CH_WHOLE);
  req_init(&q, 1, "x");
  for (i = 0; i < 6; i++) CHECK_EQ(req_send(&a, 1, &q, 0, NULL), 0, "request");
  run(&a, &b, 1, CH_WHOLE);
  CHECK_EQ(count_kind(&b, TC_EV_REQUEST), 6, "six open");
  for (i = 0; i < b.nlog; i++) {
    tc_msg r;
    tc_outmsg out;
    int p;
    if (b.log[i].ev.kind != TC_EV_REQUEST) continue;
    memset(&r, 0, sizeof r);
    r.code = 0x45;
    out.msg = &r;
    out.opts = NULL;
    out.src = g_big;
    for (p = 760; p >= 0; p--) {
      r.payload_length = (uint32_t)p;
      if (tc_conn_respond(b.c, 2, b.log[i].ev.id, &out) == 0) break;
    }
    if (p < 0) filled = 1;
  }
  CHECK(filled, "the output is full (the client reads nothing)");
  CHECK_EQ(tc_conn_next_deadline(b.c), 101, "idle deadline");
  CHECK_EQ(tc_conn_timer(b.c, 101, ev, 4), 0, "the Ping finds no room");
  CHECK_EQ(tc_conn_next_deadline(b.c), 151, "dead in ping_timeout_ms");
  CHECK_EQ(tc_conn_timer(b.c, 151, ev, 4), 1, "dead");
  CHECK(ev[0].kind == TC_CONN_EV_CLOSED && ev[0].status == TC_E_TIMEOUT, "closed: timeout");
out:
  side_free(&a);
  side_free(&b);
}

/* a proxy (TC_CONNF_PROXY) gets Proxy-Uri / Proxy-Scheme requests delivered */
static void t_proxy_flag(void) {
  tc_conn_config cc, sc;
  side a, b;
  req q;
  uint32_t i, id;
  cfg_default(&cc, TC_TCP, 1152, 0);
  cfg_default(&sc, TC_TCP, 1152, TC_CONNF_PROXY);
  if (side_init(&a, &cc, "client", 0, 0) || side_init(&b, &sc, "server", 0, 0)) {
    CHECK(0, "setup");
    return;
  }
  run(&a, &b, 0, CH_WHOLE);
  for (i = 0; i < 2; i++) {
    req_init(&q, 0x01, NULL);
    req_bytes(&q, i == 0 ? 35 : 39, i == 0 ? "coap://x/" : "coap", i == 0 ? 9 : 4);
    CHECK_EQ(req_send(&a, 1, &q, 0, &id), 0, "send");
    a.resp_id = 0;
    run(&a, &b, 1, CH_WHOLE);
    CHECK_EQ(a.resp_id, 0, "not answered by the connection");
  }
  CHECK_EQ(count_kind(&b, TC_EV_REQUEST), 2, "delivered to the proxy");
  side_free(&a);
  side_free(&b);
  sc.flags = 4u;
  CHECK_EQ(tc_conn_size(&sc), 0, "unknown flag");
}

void test_conn(void);
void test_conn(void) {
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  big_init();
  t_config();
  t_handshake();
  t_csm_rules();
  t_oversize();
  t_ping();
  t_release_abort();
  t_both_ways();
  t_ws();
  t_srv_transfers();
  t_observe();
  t_bounds();
  t_slow_reader();
  t_router();
  t_proxy_flag();
  printf("conn-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

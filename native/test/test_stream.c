/* test_stream.c — the connection driver (native/driver/stream.c): a server object and a client
 * object wired back to back in memory over several connections, driven as a host and a
 * JavaScript application would (RX batch records in, TX records out): requests both ways, a
 * 1 MiB Block2 download with BERT, a Block1 upload, Observe over two connections, a closed
 * connection's registrations removed, every bound (connections in total and per host, output
 * buffer of a slow reader, pending requests each way), and garbage or no CSM from one peer
 * while the others keep being served. Built twice: plain, and (tls-test) with TC_WITH_TLS,
 * where STREAM_TLS_SETUP gives every connection a TLS session (see test/tls/test_stream_tls.c).
 */
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "test.h"

#ifndef STREAM_TEST_NAME
#define STREAM_TEST_NAME test_stream
#endif

#define MIB (1u << 20)
#define TXW 4096u
#define TXB (2u * MIB)
#define RESP_CAP 70000u
#define MAX_LINKS 32u

typedef struct node {
  tcs_stream *s;
  int server;
  /* JS's tx table */
  uint32_t *w;
  uint32_t nw;
  uint8_t *b;
  uint32_t nb;
  int flushing; /* a flush asked for TCS_WRITE and must be called again */
  /* what the application saw */
  uint32_t evs[32];     /* records per kind */
  int32_t last_closed_status;
  uint32_t last_closed_conn;
  uint32_t requests, uploads, body_len, held;
  uint32_t tls_up; /* TCS_OPEN answers (TLS handshakes completed) */
  uint32_t held_ids[64];
  uint8_t *body;
  /* the last response, per connection id (ids < 16) */
  uint32_t resp_len[16];
  uint32_t resp_count[16];
  uint32_t resp_code[16];
  uint8_t *resp[16];
} node;

typedef struct link {
  node *a, *b;        /* b == NULL: a raw peer (the test reads a's bytes itself) */
  uint32_t aid, bid;
  int a_reads, b_reads; /* 0: that side never reads (a slow reader) */
  int open;
} link;

static link g_links[MAX_LINKS];
static uint8_t *g_big;
static uint8_t *g_got;
static uint64_t g_now;

#ifdef TC_WITH_TLS
/* tls-test: set by the TLS test before it runs the scenarios */
tc_tls_ctx *g_stream_tls_srv, *g_stream_tls_cli;
tc_tls_ctx *g_stream_tls_bad; /* a client whose handshake must fail (wrong PSK, untrusted CA) */
#endif

/* ------------------------------------------------------------------ setup */

static void addr4(uint8_t *a, uint32_t host, uint32_t port) {
  a[0] = 4;
  a[1] = (uint8_t)(port >> 8);
  a[2] = (uint8_t)port;
  a[3] = 127;
  a[4] = 0;
  a[5] = 0;
  a[6] = (uint8_t)host;
}

static tcs_stream *stream_new(uint32_t max_conns, uint32_t per_host, uint32_t mms,
                              uint32_t max_ex, uint32_t max_req) {
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  uint8_t seed[48];
  int err = 0, i;
  tcs_stream *s;
  for (i = 0; i < 48; i++) seed[i] = (uint8_t)(i * 7 + max_conns);
  tc_conn_config_default(&cc);
  cc.max_message_size = mms;
  cc.out_bytes = 65536;
  cc.flags = TC_CONNF_BERT;
  cc.max_exchanges = max_ex;
  cc.max_requests = max_req;
  cc.idle_ms = 30000;
  cc.ping_timeout_ms = 5000;
  cc.csm_timeout_ms = 3000;
  tc_srv_config_default(&sc);
  sc.max_in_progress = max_conns * max_ex;
  sc.max_message_size = mms < 65507u ? mms : 65507u;
  sc.bw1.max_body = MIB;
  sc.bw1.pool_bytes = 2u * MIB;
  sc.bw2.pool_bytes = 4u * MIB;
  lim.max_conns = max_conns;
  lim.max_per_host = per_host;
  lim.rx_words = 8192;
  lim.rx_bytes = 256u * 1024u;
  s = tcs_create(&cc, &sc, &lim, seed, 48, &err);
  CHECK(s != NULL, "tcs_create: %d", err);
  return s;
}

static void node_init(node *n, int server, tcs_stream *s) {
  uint32_t i;
  memset(n, 0, sizeof *n);
  n->s = s;
  n->server = server;
  n->w = malloc(TXW * 4u);
  n->b = malloc(TXB);
  for (i = 0; i < 16; i++) n->resp[i] = malloc(RESP_CAP);
}

static void node_free(node *n) {
  uint32_t i;
  tcs_destroy(n->s);
  free(n->w);
  free(n->b);
  free(n->body);
  for (i = 0; i < 16; i++) free(n->resp[i]);
  memset(g_links, 0, sizeof g_links);
}

static link *find_link(const node *n, uint32_t id, int *side_b) {
  uint32_t i;
  for (i = 0; i < MAX_LINKS; i++) {
    link *l = &g_links[i];
    if (!l->open) continue;
    if (l->a == n && l->aid == id) {
      *side_b = 0;
      return l;
    }
    if (l->b == n && l->bid == id) {
      *side_b = 1;
      return l;
    }
  }
  return NULL;
}

static int open_conn(node *n, uint32_t id, const uint8_t *addr, const char *host) {
#ifdef TC_WITH_TLS
  if (g_stream_tls_srv != NULL)
    return tcs_open_tls(n->s, g_now, id, addr, 7, n->server ? g_stream_tls_srv : g_stream_tls_cli,
                        n->server ? NULL : host);
#endif
  (void)host;
  return tcs_open(n->s, g_now, id, addr, 7);
}

/* A connection between client c (id cid) and server s (id sid) from 127.0.0.host:port. */
static link *connect_pair(node *c, uint32_t cid, node *s, uint32_t sid, uint32_t host,
                          uint32_t port) {
  uint8_t ca[7], sa[7];
  uint32_t i;
  addr4(ca, host, port);
  addr4(sa, 1, 5684);
  CHECK_EQ(open_conn(s, sid, ca, NULL), TCS_WRITE, "server accepts");
  CHECK_EQ(open_conn(c, cid, sa, "localhost"), TCS_WRITE, "client connects");
  for (i = 0; i < MAX_LINKS; i++)
    if (!g_links[i].open) {
      link *l = &g_links[i];
      l->a = c;
      l->aid = cid;
      l->b = s;
      l->bid = sid;
      l->a_reads = l->b_reads = 1;
      l->open = 1;
      return l;
    }
  return NULL;
}

/* ------------------------------------------------------------------ JS's side */

static uint32_t *tx_reserve(node *n, uint32_t words) {
  uint32_t *r;
  if (n->nw + words > TXW) return NULL;
  r = n->w + n->nw;
  memset(r, 0, words * 4u);
  n->nw += words;
  return r;
}

static uint32_t tx_bytes(node *n, const void *p, uint32_t len) {
  uint32_t off = n->nb;
  if (n->nb + len > TXB) return 0;
  if (len) memcpy(n->b + n->nb, p, len);
  n->nb += len;
  return off;
}

static void tx_respond(node *n, uint32_t id, uint32_t code, const void *p, uint32_t len,
                       uint32_t resource) {
  uint32_t *r = tx_reserve(n, TCB_TX_RESPOND_WORDS);
  if (r == NULL) return;
  r[TCB_TX_RESPOND_KIND] = TCB_TX_RESPOND;
  r[TCB_TX_RESPOND_ID] = id;
  r[TCB_TX_RESPOND_CODE] = code;
  r[TCB_TX_RESPOND_PAYLOAD_OFF] = tx_bytes(n, p, len);
  r[TCB_TX_RESPOND_PAYLOAD_LEN] = len;
  r[TCB_TX_RESPOND_RESOURCE] = resource;
}

/* A request to connection conn: path, then up to 3 (number, uint value) options, payload. */
typedef struct topt {
  uint32_t number, value, is_bytes, len;
  const uint8_t *bytes;
} topt;

static uint32_t tx_request(node *n, uint32_t conn, uint32_t code, const char *path,
                           const topt *o, uint32_t no, const uint8_t *p, uint32_t plen,
                           uint32_t flags) {
  uint32_t count = 1 + no, k, pos = (uint32_t)n->nw;
  uint32_t *r = tx_reserve(n, TCB_TX_REQUEST_WORDS + 3u * count), *t;
  if (r == NULL) return 0;
  r[TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
  r[TCB_TX_REQUEST_FLAGS] = flags;
  r[TCB_TX_REQUEST_CODE] = code;
  r[TCB_TX_REQUEST_FAMILY] = TCB_FAMILY_CONN;
  r[TCB_TX_REQUEST_PORT] = conn;
  r[TCB_TX_REQUEST_TOKEN] = 4;
  r[TCB_TX_REQUEST_OPT_COUNT] = count;
  t = r + TCB_TX_REQUEST_WORDS;
  t[0] = 11u;
  t[2] = (uint32_t)strlen(path);
  t[1] = tx_bytes(n, path, t[2]);
  for (k = 0; k < no; k++) {
    uint8_t v[4];
    uint32_t *e = t + 3u * (k + 1u);
    e[0] = o[k].number;
    if (o[k].is_bytes) {
      e[2] = o[k].len;
      e[1] = tx_bytes(n, o[k].bytes, o[k].len);
    } else {
      e[2] = (uint32_t)tc_uint_encode(o[k].value, v);
      e[1] = tx_bytes(n, v, e[2]);
    }
  }
  r[TCB_TX_REQUEST_PAYLOAD_LEN] = plen;
  r[TCB_TX_REQUEST_PAYLOAD_OFF] = tx_bytes(n, p, plen);
  return pos;
}

static uint32_t tx_notify(node *n, uint32_t resource, const char *p) {
  uint32_t pos = n->nw;
  uint32_t *r = tx_reserve(n, TCB_TX_NOTIFY_WORDS);
  if (r == NULL) return 0;
  r[TCB_TX_NOTIFY_KIND] = TCB_TX_NOTIFY;
  r[TCB_TX_NOTIFY_RESOURCE] = resource;
  r[TCB_TX_NOTIFY_CODE] = 0x45;
  r[TCB_TX_NOTIFY_PAYLOAD_LEN] = (uint32_t)strlen(p);
  r[TCB_TX_NOTIFY_PAYLOAD_OFF] = tx_bytes(n, p, (uint32_t)strlen(p));
  return pos;
}

/* the value of option number in record r (uint), or def */
static uint32_t rec_opt(const tcb_rx *b, const uint32_t *r, uint32_t number, uint32_t def,
                        const uint8_t **bytes, uint32_t *blen) {
  uint32_t k;
  for (k = 0; k < r[TCB_RX_OPT_COUNT]; k++) {
    const uint32_t *o = r + TCB_RX_WORDS + 3u * k;
    if (o[0] == number) {
      uint32_t v = 0;
      if (bytes != NULL) {
        *bytes = b->data + o[1];
        *blen = o[2];
      }
      tc_uint_decode(b->data + o[1], o[2], &v);
      return v;
    }
  }
  return def;
}

/* The application: the server's resources, and the client's own (RFC 8323: both ways). */
static void on_request(node *n, const tcb_rx *b, const uint32_t *r) {
  const uint8_t *path = NULL;
  uint32_t plen = 0, id = r[TCB_RX_ID];
  n->requests++;
  (void)rec_opt(b, r, 11u, 0, &path, &plen);
  if (plen == 5 && memcmp(path, "hello", 5) == 0) {
    tx_respond(n, id, 0x45, n->server ? "world" : "client", n->server ? 5 : 6, 0);
  } else if (plen == 3 && memcmp(path, "big", 3) == 0) {
    tx_respond(n, id, 0x45, g_big, MIB, 0);
  } else if (plen == 2 && memcmp(path, "up", 2) == 0) {
    uint8_t len[4];
    uint32_t got = r[TCB_RX_PAYLOAD_LEN];
    if (r[TCB_RX_SRV_FLAGS] & TC_SRVF_BODY) {
      if (n->body == NULL) n->body = malloc(MIB);
      got = (uint32_t)tcs_read_body(n->s, r[TCB_RX_BODY_ID], n->body, MIB);
      n->body_len = got;
      n->uploads++;
    }
    len[0] = (uint8_t)(got >> 24);
    len[1] = (uint8_t)(got >> 16);
    len[2] = (uint8_t)(got >> 8);
    len[3] = (uint8_t)got;
    tx_respond(n, id, 0x44, len, 4, 0);
  } else if (plen == 3 && memcmp(path, "obs", 3) == 0) {
    tx_respond(n, id, 0x45, "o", 1, 7);
  } else if (plen == 4 && memcmp(path, "hold", 4) == 0) {
    if (n->held < 64) n->held_ids[n->held++] = id; /* answered later (pending bound) */
  } else {
    tx_respond(n, id, 0x84, NULL, 0, 0);
  }
}

static void on_batch(node *n) {
  const tcb_rx *b = tcs_batch(n->s);
  uint32_t p = 0;
  while (p < b->word_used) {
    const uint32_t *r = b->words + p;
    uint32_t kind = r[TCB_RX_KIND], conn = r[TCB_RX_PORT];
    CHECK_EQ(r[TCB_RX_FAMILY], TCB_FAMILY_CONN, "records name a connection");
    if (kind < 32) n->evs[kind]++;
    if (kind == TC_EV_REQUEST) on_request(n, b, r);
    if (kind == TC_EV_RESPONSE && conn < 16) {
      uint32_t len = r[TCB_RX_LEN] < RESP_CAP ? r[TCB_RX_LEN] : RESP_CAP;
      memcpy(n->resp[conn], b->data + r[TCB_RX_DATA], len);
      n->resp_len[conn] = len;
      n->resp_code[conn] = r[TCB_RX_CODE];
      n->resp_count[conn]++;
    }
    if (kind == TC_CONN_EV_CLOSED) {
      n->last_closed_status = (int32_t)r[TCB_RX_STATUS];
      n->last_closed_conn = conn;
    }
    p += TCB_RX_WORDS + 3u * r[TCB_RX_OPT_COUNT];
  }
  tcs_delivered(n->s);
}

/* Hand the batch to JS and run what JS wrote. Returns whether anything happened. */
static int service(node *n) {
  int did = 0, rc;
  if (tcs_batch(n->s)->count > 0) {
    on_batch(n);
    did = 1;
  }
  if (n->nw > 0 || n->flushing) {
    rc = tcs_flush(n->s, g_now, n->w, n->nw, n->b, n->nb);
    CHECK(rc >= 0, "flush %d", rc);
    n->flushing = rc == TCS_WRITE; /* a record waits for its connection's output: again */
    if (!n->flushing) n->nw = n->nb = 0;
    did = 1;
  }
  return did;
}

/* Move node n's output into the linked peers (each connection once per call). */
static int transfer(node *n) {
  uint32_t ids[64], nids = 0, k, id;
  int a, moved = 0;
  while (nids < 64 && (a = tcs_next_out(n->s, &id)) != TCS_OUT_NONE) {
    if (a == TCS_OUT_CLOSE) {
      int sb;
      link *l = find_link(n, id, &sb);
      CHECK_EQ(tcs_close(n->s, g_now, id), TCS_DONE, "close after drain");
      if (l != NULL) {
        l->open = 0;
        if (l->b != NULL) /* the peer sees EOF */
          CHECK_EQ(tcs_close(sb ? l->a->s : l->b->s, g_now, sb ? l->aid : l->bid), TCS_DONE,
                   "peer closes on EOF");
      }
      moved = 1;
      continue;
    }
    ids[nids++] = id;
  }
  for (k = 0; k < nids; k++) {
    int sb, rc;
    link *l = find_link(n, ids[k], &sb);
    node *peer;
    uint32_t pid, len, used = 0;
    const uint8_t *p;
    if (l == NULL || l->b == NULL) continue; /* raw peers are read by their test */
    peer = sb ? l->a : l->b;
    pid = sb ? l->aid : l->bid;
    if (!(sb ? l->a_reads : l->b_reads)) continue; /* a slow reader */
    for (;;) {
      p = tcs_out(n->s, ids[k], &len);
      if (p == NULL || len == 0) break;
      rc = tcs_recv(peer->s, g_now, pid, p, len, &used);
      CHECK(rc >= 0, "recv %d", rc);
      if (used) CHECK(tcs_written(n->s, ids[k], used) >= 0, "written");
      if (used) moved = 1;
      if (rc == TCS_DELIVER) {
        on_batch(peer);
        continue;
      }
      if (rc == TCS_OPEN) { /* call again with the rest, even when there is none */
        uint32_t u2;
        peer->tls_up++;
        if (used == len)
          while ((rc = tcs_recv(peer->s, g_now, pid, NULL, 0, &u2)) == TCS_DELIVER) on_batch(peer);
        continue;
      }
      if (rc == TCS_PAUSE || rc < 0 || used < len) break;
    }
  }
  return moved;
}

static void run(node *a, node *b) {
  int k;
  for (k = 0; k < 100000; k++) {
    int did = service(a) | service(b);
    did |= transfer(a);
    did |= transfer(b);
    if (!did && !tcs_pending(a->s) && !tcs_pending(b->s)) break;
    if (!did) { /* pending output no peer reads (a slow reader): stop */
      break;
    }
  }
}

static void timer(node *n) {
  int rc, k;
  for (k = 0; k < 100; k++) {
    rc = tcs_timer(n->s, g_now);
    if (rc == TCS_DELIVER) on_batch(n);
    else break;
  }
}

/* ------------------------------------------------------------------ scenarios */

static void t_basic(void) {
  node c, s;
  topt o;
  uint32_t pos;
  tc_msg m;
  tc_opt opts[16];
  node_init(&s, 1, stream_new(8, 4, 20000, 16, 16));
  node_init(&c, 0, stream_new(8, 8, 20000, 16, 16));
  if (s.s == NULL || c.s == NULL) goto out;
  connect_pair(&c, 1, &s, 101, 2, 40001);
  connect_pair(&c, 2, &s, 102, 3, 40002);
  connect_pair(&c, 3, &s, 103, 4, 40003);
  run(&c, &s);
  CHECK_EQ(s.evs[TC_CONN_EV_READY], 3, "server: three connections ready");
  CHECK_EQ(c.evs[TC_CONN_EV_READY], 3, "client: three connections ready");
  CHECK_EQ(tcs_conn_state(s.s, 101) & 0xFFu, TC_CONN_READY, "ready");
  CHECK((tcs_conn_state(s.s, 101) & TC_CONN_S_PEER_BERT) != 0, "BERT offered");
#ifdef TC_WITH_TLS
  if (g_stream_tls_srv != NULL) { /* every byte so far went through TLS */
    tc_tls_info si, ci;
    CHECK(tcs_tls(s.s, 101) != NULL && tcs_tls(c.s, 1) != NULL, "TLS sessions");
    CHECK_EQ(tc_tls_get_info(tcs_tls(s.s, 101), &si), 0, "server info");
    CHECK_EQ(tc_tls_get_info(tcs_tls(c.s, 1), &ci), 0, "client info");
    CHECK(si.version >= 0x0303 && strcmp(si.alpn, "coap") == 0, "TLS, ALPN coap (%s)", si.alpn);
    CHECK(tc_tls_get_state(tcs_tls(c.s, 1)) == TC_TLS_OPEN, "open");
    CHECK(ci.psk_identity[0] != '\0' || ci.verify_result == 0, "PSK, or a verified chain");
  }
#endif
  /* client -> server on every connection */
  tx_request(&c, 1, 1, "hello", NULL, 0, NULL, 0, 0);
  tx_request(&c, 2, 1, "hello", NULL, 0, NULL, 0, 0);
  tx_request(&c, 3, 1, "hello", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(s.requests, 3, "three requests served");
  CHECK_EQ(c.resp_count[1] + c.resp_count[2] + c.resp_count[3], 3, "three responses");
  CHECK(c.resp_len[2] >= 5 && memcmp(c.resp[2] + c.resp_len[2] - 5, "world", 5) == 0,
        "payload world");
  /* server -> client down connection 102 (RFC 8323: both ways) */
  pos = tx_request(&s, 102, 1, "hello", NULL, 0, NULL, 0, 0);
  (void)pos;
  run(&c, &s);
  CHECK_EQ(c.requests, 1, "the client served the server's request");
  CHECK_EQ(s.evs[TC_EV_RESPONSE], 1, "the server got the answer");
  /* a request to no connection */
  pos = tx_request(&s, 999, 1, "hello", NULL, 0, NULL, 0, 0);
  CHECK_EQ(tcs_flush(s.s, g_now, s.w, s.nw, s.b, s.nb), TCS_DONE, "flush");
  CHECK_EQ((int32_t)s.w[pos + TCB_TX_REQUEST_RC], TC_E_STALE, "unknown connection: stale");
  CHECK_EQ(tcs_tx_failed(s.s), 1, "one failed");
  s.nw = s.nb = 0;
  /* a 1 MiB Block2 download with BERT on connection 1 */
  {
    tc_bwc_config bc;
    tc_bwc *w;
    tc_bwc_result res;
    uint32_t rounds;
    int st = 0;
    tc_bwc_config_default(&bc);
    bc.flags = TC_BWC_BERT;
    bc.preferred_szx = 7;
    bc.bert_bytes = 8192;
    w = malloc(tc_bwc_size(&bc));
    if (w == NULL || tc_bwc_init(w, tc_bwc_size(&bc), &bc) != 0) {
      CHECK(0, "bwc");
      free(w);
      goto out;
    }
    CHECK_EQ(tc_bwc_get_begin(w, &res), TC_BWC_NEXT, "get begin");
    for (rounds = 0; rounds < 2000; rounds++) {
      uint32_t before = c.resp_count[1];
      o.number = TC_OPT_BLOCK2;
      o.value = res.block;
      o.is_bytes = 0;
      tx_request(&c, 1, 1, "big", &o, 1, NULL, 0, 0);
      run(&c, &s);
      if (c.resp_count[1] != before + 1 ||
          tc_decode(c.resp[1], c.resp_len[1], TC_TCP, &m, opts, 16) < 0) {
        CHECK(0, "no response to block %u", rounds);
        break;
      }
      st = tc_bwc_get_response(w, &m, opts, c.resp[1], g_got, MIB, &res);
      if (st != TC_BWC_NEXT) break;
    }
    CHECK_EQ(st, TC_BWC_DONE, "download done");
    CHECK_EQ(res.length, MIB, "1 MiB");
    CHECK(memcmp(g_got, g_big, MIB) == 0, "body intact");
    CHECK(rounds < 80, "BERT: many KiB per response (%u rounds)", rounds);
    /* a Block1 upload (BERT, 8 KiB per request) on connection 3 */
    CHECK_EQ(tc_bwc_put_begin(w, 300000, (const uint8_t *)"tag1", 4, &res), TC_BWC_NEXT,
             "put begin");
    for (rounds = 0; rounds < 2000; rounds++) {
      uint8_t tag[8];
      topt ob[2];
      uint32_t before = c.resp_count[3];
      int tl = tc_bwc_request_tag(w, tag);
      ob[0].number = TC_OPT_BLOCK1;
      ob[0].value = res.block;
      ob[0].is_bytes = 0;
      ob[1].number = TC_OPT_REQUEST_TAG;
      ob[1].is_bytes = 1;
      ob[1].bytes = tag;
      ob[1].len = (uint32_t)tl;
      tx_request(&c, 3, 3, "up", ob, 2, g_big + res.offset, res.length, 0);
      run(&c, &s);
      if (c.resp_count[3] != before + 1 ||
          tc_decode(c.resp[3], c.resp_len[3], TC_TCP, &m, opts, 16) < 0) {
        CHECK(0, "no response to upload block %u", rounds);
        break;
      }
      st = tc_bwc_put_response(w, &m, opts, c.resp[3], &res);
      if (st != TC_BWC_NEXT) break;
    }
    CHECK_EQ(st, TC_BWC_DONE, "upload done");
    CHECK_EQ(res.code, 0x44, "2.04");
    CHECK_EQ(s.uploads, 1, "one upload delivered");
    CHECK_EQ(s.body_len, 300000, "300 kB stored");
    CHECK(s.body != NULL && memcmp(s.body, g_big, 300000) == 0, "upload intact");
    CHECK(rounds < 40, "BERT upload: %u requests", rounds);
    free(w);
  }
  /* Observe over two connections; one closes, its registration ends */
  o.number = TC_OPT_OBSERVE;
  o.value = 0;
  o.is_bytes = 0;
  tx_request(&c, 1, 1, "obs", &o, 1, NULL, 0, TC_REQ_KEEP);
  tx_request(&c, 2, 1, "obs", &o, 1, NULL, 0, TC_REQ_KEEP);
  run(&c, &s);
  CHECK_EQ(tc_obs_count(tc_srv_obs(tcs_srv(s.s)), 7), 2, "two observers");
  {
    uint32_t r1 = c.resp_count[1], r2 = c.resp_count[2];
    tx_notify(&s, 7, "n1");
    run(&c, &s);
    CHECK_EQ(c.resp_count[1], r1 + 1, "notification on connection 1");
    CHECK_EQ(c.resp_count[2], r2 + 1, "notification on connection 2");
    CHECK(c.resp_len[2] >= 2 && memcmp(c.resp[2] + c.resp_len[2] - 2, "n1", 2) == 0, "n1");
    /* the host closes connection 2 (EOF on both sides) */
    CHECK_EQ(tcs_close(c.s, g_now, 2), TCS_DONE, "client closes 2");
    CHECK_EQ(tcs_close(s.s, g_now, 102), TCS_DONE, "server sees EOF on 102");
    g_links[1].open = 0;
    CHECK_EQ(tc_obs_count(tc_srv_obs(tcs_srv(s.s)), 7), 1, "its registration ended");
    CHECK_EQ(tcs_close(s.s, g_now, 102), TC_E_INVALID, "closed already");
    service(&s);
    CHECK_EQ(s.evs[TC_CONN_EV_CLOSED], 1, "a CLOSED record");
    tx_notify(&s, 7, "n2");
    run(&c, &s);
    CHECK_EQ(c.resp_count[1], r1 + 2, "connection 1 still notified");
    CHECK_EQ(c.resp_count[2], r2 + 1, "connection 2 gone");
  }
  CHECK_EQ(tcs_get_stats(s.s)->conns, 2, "two connections open");
  CHECK(tcs_memory(s.s) > 0, "memory");
out:
  node_free(&c);
  node_free(&s);
}

/* Every bound, and misbehaving peers while the others are served. */
static void t_bounds(void) {
  node c, s;
  uint8_t a[7];
  uint32_t i, k, len;
  const uint8_t *p;
  g_now = 1000;
  node_init(&s, 1, stream_new(4, 2, 1152, 4, 100));
  node_init(&c, 0, stream_new(8, 8, 1152, 4, 8));
  if (s.s == NULL || c.s == NULL) goto out;
  /* per host: two from 127.0.0.9, the third refused; total: four */
  connect_pair(&c, 1, &s, 101, 9, 1001);
  connect_pair(&c, 2, &s, 102, 9, 1002);
  addr4(a, 9, 1003);
  CHECK_EQ(tcs_open(s.s, g_now, 103, a, 7), TC_E_FULL, "third from one host refused");
  CHECK_EQ(tcs_get_stats(s.s)->refused_host, 1, "counted");
  connect_pair(&c, 3, &s, 103, 10, 1004);
  addr4(a, 11, 1005);
  CHECK_EQ(tcs_open(s.s, g_now, 104, a, 7), TCS_WRITE, "a raw peer");
  addr4(a, 12, 1006);
  CHECK_EQ(tcs_open(s.s, g_now, 105, a, 7), TC_E_FULL, "max_conns refused");
  CHECK_EQ(tcs_get_stats(s.s)->refused_total, 1, "counted");
  CHECK_EQ(tcs_open(s.s, g_now, 101, a, 7), TC_E_INVALID, "id in use");
  run(&c, &s);
  CHECK_EQ(c.evs[TC_CONN_EV_READY], 3, "three ready");
  /* garbage from the raw peer 104: Abort, closed; the others are served */
  {
    static const uint8_t junk[] = {0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 0x56};
    uint32_t used = 0;
    int rc = tcs_recv(s.s, g_now, 104, junk, sizeof junk, &used);
    CHECK(rc == TCS_WRITE, "garbage: the Abort to write (%d)", rc);
    CHECK_EQ(used, sizeof junk, "taken");
    CHECK_EQ(tcs_conn_state(s.s, 104) & 0xFFu, TC_CONN_CLOSED, "closed");
    service(&s);
    CHECK_EQ(s.evs[TC_CONN_EV_CLOSED], 1, "CLOSED record");
    CHECK(s.last_closed_status != 0 && s.last_closed_conn == 104, "with its error");
    /* the host writes our CSM and the Abort, then is told to close */
    for (k = 0; k < 8; k++) {
      uint32_t id;
      int act = tcs_next_out(s.s, &id);
      if (act == TCS_OUT_NONE) break;
      if (id != 104) continue;
      if (act == TCS_OUT_CLOSE) {
        CHECK_EQ(tcs_close(s.s, g_now, 104), TCS_DONE, "closed by the host");
        break;
      }
      p = tcs_out(s.s, 104, &len);
      CHECK(p != NULL && len > 0, "CSM + Abort");
      CHECK_EQ(tcs_written(s.s, 104, len), TCS_DONE, "written");
    }
    CHECK_EQ(tcs_conn_state(s.s, 104), 0, "removed");
  }
  tx_request(&c, 3, 1, "hello", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(c.resp_count[3], 1, "another connection still served");
  /* no CSM: a raw peer that sends nothing is aborted after csm_timeout_ms */
  addr4(a, 13, 1007);
  CHECK_EQ(tcs_open(s.s, g_now, 106, a, 7), TCS_WRITE, "a silent peer");
  g_now += 3001;
  timer(&s);
  timer(&c);
  service(&s);
  CHECK_EQ(s.last_closed_conn, 106, "the silent peer closed");
  CHECK_EQ(s.last_closed_status, TC_E_INVALID, "no CSM: connection error");
  for (k = 0; k < 16; k++) {
    uint32_t id;
    int act = tcs_next_out(s.s, &id);
    if (act == TCS_OUT_NONE) break;
    if (id == 106 && act == TCS_OUT_CLOSE) {
      CHECK_EQ(tcs_close(s.s, g_now, 106), TCS_DONE, "close the silent peer");
      break;
    }
    if (id == 106) {
      p = tcs_out(s.s, 106, &len);
      (void)tcs_written(s.s, 106, len);
    } else {
      int sb;
      link *l = find_link(&s, id, &sb);
      uint32_t used;
      p = tcs_out(s.s, id, &len);
      if (l != NULL && len) {
        (void)tcs_recv(c.s, g_now, l->aid, p, len, &used);
        (void)tcs_written(s.s, id, used);
      }
    }
  }
  run(&c, &s);
  /* pending requests: the server holds 4 (max_exchanges), the 5th gets 5.03 */
  for (i = 0; i < 5; i++) tx_request(&c, 1, 1, "hold", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(s.held, 4, "four held by the application");
  CHECK_EQ(c.resp_count[1], 1, "one answered at once");
  CHECK_EQ(c.resp_code[1], 0xA3, "5.03");
  /* the client's own bound: 8 outstanding, the 9th refused */
  {
    uint32_t pos = 0;
    int rc;
    for (i = 0; i < 8; i++) tx_request(&c, 2, 1, "hold", NULL, 0, NULL, 0, 0);
    pos = tx_request(&c, 2, 1, "hold", NULL, 0, NULL, 0, 0);
    rc = tcs_flush(c.s, g_now, c.w, c.nw, c.b, c.nb);
    CHECK_EQ(rc, TCS_WRITE, "the 9th waits for a write attempt");
    CHECK_EQ(tcs_flush(c.s, g_now, c.w, c.nw, c.b, c.nb), TCS_DONE, "flush");
    CHECK_EQ((int32_t)c.w[pos + TCB_TX_REQUEST_RC], TC_E_FULL, "max_requests");
    CHECK_EQ(tcs_tx_failed(c.s), 1, "one failed");
    c.nw = c.nb = 0;
    run(&c, &s);
    CHECK_EQ(s.held, 8, "four more held (the other connection's own slots)");
    CHECK_EQ(c.resp_count[2], 4, "four 5.03 on connection 2");
  }
  for (i = 0; i < s.held; i++) tx_respond(&s, s.held_ids[i], 0x45, "late", 4, 0);
  s.held = 0;
  run(&c, &s);
  CHECK_EQ(c.resp_count[1], 5, "every accepted request answered");
  /* a slow reader: the client never reads connection 1; the server's output fills, the
   * connection's input pauses, then the idle Ping finds it dead. Connection 3 is served. */
  g_links[0].a_reads = 0;
  {
    uint32_t big = 0;
    /* server -> client requests down 101 fill the output faster */
    for (k = 0; k < 80; k++) {
      static uint8_t pl[1100];
      uint32_t pos = tx_request(&s, 101, 2, "hello", NULL, 0, pl, sizeof pl, 0);
      int rc = tcs_flush(s.s, g_now, s.w, s.nw, s.b, s.nb);
      if (rc == TCS_WRITE) rc = tcs_flush(s.s, g_now, s.w, s.nw, s.b, s.nb);
      if ((int32_t)s.w[pos + TCB_TX_REQUEST_RC] == TC_E_FULL) big++;
      s.nw = s.nb = 0;
      run(&c, &s);
    }
    CHECK(big > 0, "the slow reader's output filled");
    tx_request(&c, 1, 1, "hello", NULL, 0, NULL, 0, 0);
    run(&c, &s);
    CHECK(tcs_get_stats(s.s)->paused > 0, "the slow connection's input paused");
  }
  tx_request(&c, 3, 1, "hello", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(c.resp_count[3], 2, "connection 3 still served");
  g_now += 31000; /* idle: Ping (not read) */
  timer(&s);
  timer(&c);
  run(&c, &s);
  g_now += 5001; /* no Pong: dead */
  timer(&s);
  service(&s);
  CHECK_EQ(s.last_closed_conn, 101, "the slow reader is closed");
  CHECK_EQ(s.last_closed_status, TC_E_TIMEOUT, "dead: no Pong");
out:
  node_free(&c);
  node_free(&s);
}

static void t_create(void) {
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  uint8_t seed[48] = {0};
  int err = 0;
  tc_conn_config_default(&cc);
  tc_srv_config_default(&sc);
  lim.max_conns = 100;
  lim.max_per_host = 10;
  lim.rx_words = 8192;
  lim.rx_bytes = 65536;
  sc.max_in_progress = 100;
  CHECK(tcs_create(&cc, &sc, &lim, seed, 48, &err) == NULL && err == TC_E_INVALID,
        "slots: max_in_progress < max_conns * max_exchanges");
  sc.max_in_progress = 1600;
  lim.rx_words = 10;
  CHECK(tcs_create(&cc, &sc, &lim, seed, 48, &err) == NULL && err == TC_E_INVALID, "rx_words");
  lim.rx_words = 8192;
  CHECK(tcs_create(&cc, &sc, &lim, seed, 47, &err) == NULL && err == TC_E_INVALID, "seed");
  lim.max_conns = 5000;
  sc.max_in_progress = 65535;
  CHECK(tcs_create(&cc, &sc, &lim, seed, 48, &err) == NULL && err == TC_E_INVALID,
        "max_conns * max_exchanges over 65535");
}

/* The host closes connections (graceful, Abort); a late RESPOND for a connection whose slot
 * was reused fails STALE instead of answering the new connection's request. */
static void t_host_close(void) {
  node c, s;
  uint32_t old_id, new_id, rc;
  node_init(&s, 1, stream_new(1, 1, 1152, 4, 4));
  node_init(&c, 0, stream_new(4, 4, 1152, 4, 4));
  if (s.s == NULL || c.s == NULL) goto out;
  connect_pair(&c, 1, &s, 101, 2, 40001);
  tx_request(&c, 1, 1, "hold", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(s.held, 1, "a request held");
#ifdef TC_WITH_TLS
  if (g_stream_tls_srv != NULL) {
    CHECK_EQ(c.tls_up, 1, "client: TCS_OPEN once");
    CHECK_EQ(s.tls_up, 1, "server: TCS_OPEN once");
  } else
#endif
    CHECK_EQ(c.tls_up + s.tls_up, 0, "TCS_OPEN with TLS only");
  old_id = s.held_ids[0];
  CHECK_EQ(tcs_shutdown(c.s, g_now, 1), TCS_WRITE, "graceful close");
  CHECK_EQ(tcs_batch(c.s)->count, 1, "CLOSED at once");
  tx_request(&c, 1, 1, "hello", NULL, 0, NULL, 0, 0);
  CHECK_EQ(tcs_flush(c.s, g_now, c.w, c.nw, c.b, c.nb), TCS_DONE, "flush");
  CHECK_EQ((int32_t)c.w[TCB_TX_REQUEST_RC], TC_E_STALE, "no requests on a closing connection");
  c.nw = c.nb = 0;
  run(&c, &s);
  CHECK_EQ(c.evs[TC_CONN_EV_CLOSED], 1, "client: one CLOSED");
  CHECK_EQ(s.evs[TC_CONN_EV_CLOSED], 1, "server: CLOSED on EOF");
  CHECK_EQ(tcs_conn_state(s.s, 101), 0, "gone");
  connect_pair(&c, 2, &s, 102, 2, 40002); /* the server's only slot again */
  tx_request(&c, 2, 1, "hold", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(s.held, 2, "the new connection's request held");
  new_id = s.held_ids[1];
  CHECK((new_id & 0xFFFFu) == (old_id & 0xFFFFu), "same exchange slot");
  CHECK(new_id != old_id, "a different exchange id (%08x, %08x)", new_id, old_id);
  tx_respond(&s, old_id, 0x45, "late", 4, 0);
  CHECK_EQ(tcs_flush(s.s, g_now, s.w, s.nw, s.b, s.nb), TCS_DONE, "flush");
  rc = s.w[TCB_TX_RESPOND_RC];
  CHECK_EQ((int32_t)rc, TC_E_STALE, "a late RESPOND for the old connection: STALE");
  CHECK_EQ(tcs_get_stats(s.s)->stale_ids, 1, "counted");
  s.nw = s.nb = 0;
  run(&c, &s);
  CHECK_EQ(c.resp_count[2], 0, "the new request was not answered by it");
  tx_respond(&s, new_id, 0x45, "ok", 2, 0);
  run(&c, &s);
  CHECK_EQ(c.resp_count[2], 1, "the new id answers");
  CHECK_EQ(c.resp_code[2], 0x45, "2.05");
  /* Abort from the server: the client sees ABORT, then CLOSED */
  CHECK_EQ(tcs_abort(s.s, g_now, 102, "bye"), TCS_WRITE, "abort");
  run(&c, &s);
  CHECK_EQ(c.evs[TC_CONN_EV_ABORT], 1, "client: ABORT");
  CHECK_EQ(c.evs[TC_CONN_EV_CLOSED], 2, "client: CLOSED");
  CHECK_EQ(tcs_conn_state(c.s, 2), 0, "client connection gone");
  CHECK_EQ(tcs_abort(s.s, g_now, 102, NULL), TC_E_INVALID, "gone");
out:
  node_free(&c);
  node_free(&s);
}

/* Host records: OPEN with the real address and identity, CLOSED with a status and flags. */
static void t_host_records(void) {
  tcs_stream *s = stream_new(4, 4, 1152, 4, 4);
  const tcb_rx *b;
  uint8_t a[7];
  uint32_t n = 0;
  int r;
  if (s == NULL) return;
  b = tcs_batch(s);
  addr4(a, 9, 40009);
  CHECK_EQ(tcs_host_event(s, TCB_CONN_EV_OPEN, 77, a, 7, 3, TCB_CONN_EVF_TLS,
                          (const uint8_t *)"client-1", 8), 0, "OPEN");
  CHECK_EQ(b->count, 1, "one record");
  CHECK_EQ(b->words[TCB_RX_KIND], TCB_CONN_EV_OPEN, "kind");
  CHECK_EQ(b->words[TCB_RX_ID], 77, "id");
  CHECK_EQ(b->words[TCB_RX_STATUS], 3, "listener index");
  CHECK_EQ(b->words[TCB_RX_FLAGS], TCB_CONN_EVF_TLS, "TLS flag");
  CHECK_EQ(b->words[TCB_RX_FAMILY], 4, "real address");
  CHECK_EQ(b->words[TCB_RX_PORT], 40009, "real port");
  CHECK_EQ(b->words[TCB_RX_LEN], 8, "identity length");
  CHECK(memcmp(b->data + b->words[TCB_RX_DATA], "client-1", 8) == 0, "identity bytes");
  CHECK_EQ(tcs_host_event(s, TC_CONN_EV_CLOSED, 78, NULL, 0, -111, TCB_CONN_EVF_SYSERR, NULL, 0),
           0, "CLOSED of a connect that failed");
  CHECK_EQ(b->words[TCB_RX_WORDS + TCB_RX_FAMILY], TCB_FAMILY_CONN, "FAMILY_CONN");
  CHECK_EQ(b->words[TCB_RX_WORDS + TCB_RX_PORT], 78, "PORT = id");
  CHECK_EQ((int32_t)b->words[TCB_RX_WORDS + TCB_RX_STATUS], -111, "errno");
  CHECK_EQ(tcs_host_event(s, 5, 1, a, 7, 0, 0, NULL, 0), TC_E_INVALID, "other kinds");
  while ((r = tcs_host_event(s, TC_CONN_EV_CLOSED, 1, NULL, 0, 0, 0, NULL, 0)) == 0) n++;
  CHECK_EQ(r, TC_E_FULL, "a full batch says so");
  CHECK(n > 10, "until it was full (%u)", n);
  tcs_delivered(s);
  CHECK_EQ(tcs_open(s, g_now, 5, a, 7), TCS_WRITE, "open");
  CHECK_EQ(tcs_close_status(s, g_now, 5, -104, TCB_CONN_EVF_SYSERR), TCS_DONE, "close with a status");
  CHECK_EQ(b->count, 1, "its CLOSED record");
  CHECK_EQ(b->words[TCB_RX_KIND], TC_CONN_EV_CLOSED, "CLOSED");
  CHECK_EQ((int32_t)b->words[TCB_RX_STATUS], -104, "status");
  CHECK_EQ(b->words[TCB_RX_FLAGS], TCB_CONN_EVF_SYSERR, "flags");
  CHECK_EQ(b->words[TCB_RX_PORT], 5, "its id");
  tcs_destroy(s);
}

#ifdef TC_WITH_TLS
/* A handshake that fails ends that connection only (a CLOSED record with the TLS error). */
static void t_tls_fail(void) {
  node c, s;
  uint8_t ca[7], sa[7];
  link *l;
  uint32_t k;
  if (g_stream_tls_bad == NULL) return;
  node_init(&s, 1, stream_new(8, 4, 1152, 4, 4));
  node_init(&c, 0, stream_new(8, 8, 1152, 4, 4));
  if (s.s == NULL || c.s == NULL) goto out;
  connect_pair(&c, 1, &s, 101, 2, 40001);
  addr4(ca, 3, 40002);
  addr4(sa, 1, 5684);
  CHECK_EQ(tcs_open_tls(s.s, g_now, 102, ca, 7, g_stream_tls_srv, NULL), TCS_WRITE, "accept");
  CHECK_EQ(tcs_open_tls(c.s, g_now, 2, sa, 7, g_stream_tls_bad, "localhost"), TCS_WRITE,
           "connect with bad credentials");
  for (k = 0; k < MAX_LINKS; k++)
    if (!g_links[k].open) break;
  l = &g_links[k];
  l->a = &c;
  l->aid = 2;
  l->b = &s;
  l->bid = 102;
  l->a_reads = l->b_reads = 1;
  l->open = 1;
  run(&c, &s);
  CHECK(c.evs[TC_CONN_EV_CLOSED] + s.evs[TC_CONN_EV_CLOSED] >= 1, "the bad connection closed");
  CHECK(c.last_closed_status <= TC_TLS_ERROR_FIRST || s.last_closed_status <= TC_TLS_ERROR_FIRST,
        "with a TLS error (%d, %d)", c.last_closed_status, s.last_closed_status);
  CHECK_EQ(tcs_conn_state(s.s, 102), 0, "gone from the server");
  CHECK_EQ(c.evs[TC_CONN_EV_READY], 1, "only the good connection got ready");
  tx_request(&c, 1, 1, "hello", NULL, 0, NULL, 0, 0);
  run(&c, &s);
  CHECK_EQ(c.resp_count[1], 1, "the good connection is served");
out:
  node_free(&c);
  node_free(&s);
}
#endif

void STREAM_TEST_NAME(void);
void STREAM_TEST_NAME(void) {
  uint32_t i, x = 777;
  unsigned long p0 = tc_test_passed, f0 = tc_test_failed;
  g_big = malloc(MIB);
  g_got = malloc(MIB);
  if (g_big == NULL || g_got == NULL) {
    CHECK(0, "memory");
    return;
  }
  for (i = 0; i < MIB; i++) {
    x = x * 1103515245u + 12345u;
    g_big[i] = (uint8_t)(x >> 16);
  }
  g_now = 0;
  t_create();
  t_host_records();
  t_host_close();
  t_basic();
  t_bounds();
#ifdef TC_WITH_TLS
  t_tls_fail();
#endif
  free(g_big);
  free(g_got);
  printf("stream-tests: %lu passed, %lu failed\n", tc_test_passed - p0, tc_test_failed - f0);
}

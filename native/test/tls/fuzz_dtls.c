/*
 * fuzz_dtls.c — libFuzzer on the DTLS layer's record input path (native/driver/dtls.c):
 * datagrams from the fuzzer reach a server's tcdt_recv, some from the address of an open
 * session (records through OpenSSL's record layer and replay window, then the CoAP core),
 * some from unknown addresses (the stateless cookie path). Bounds and invariants are checked
 * after every input. Build: make -C native dtls-fuzz FUZZ_SECONDS=30
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dgram.h"
#include "dtls.h"

static const uint8_t SADDR[TCB_ADDR4_LEN] = {4, 0x16, 0x34, 127, 0, 0, 1};
static const uint8_t CADDR[TCB_ADDR4_LEN] = {4, 0x9c, 0x40, 127, 0, 0, 1};
static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
#define CFG_WORDS ((sizeof(tc_ep_config) + sizeof(tc_srv_config)) / 4)

typedef struct {
  tcd_dgram *d;
  tcdt *t;
} side;
static side S, C;

static void make(side *x, int server) {
  uint32_t cfg[CFG_WORDS];
  uint8_t seed[TCA_SEED_BYTES] = {3};
  tcd_limits dl = {1u << 14, 1u << 17, 64, 1u << 17};
  tc_ep_config e;
  tc_srv_config s;
  tc_tls_config c;
  tc_tls_ctx *ctx = NULL;
  tcdt_limits lim = {64, 16, 8, 0, 0, 0, 0};
  int err;
  char msg[128];
  tc_ep_config_default(&e);
  tc_srv_config_default(&s);
  e.max_in_progress = s.max_in_progress = 16;
  memcpy(cfg, &e, sizeof e);
  memcpy(cfg + sizeof e / 4, &s, sizeof s);
  x->d = tcd_create(cfg, CFG_WORDS, seed, sizeof seed, &dl, &err);
  memset(&c, 0, sizeof c);
  c.transport = TC_TLS_DATAGRAM;
  c.role = server ? TC_TLS_SERVER : TC_TLS_CLIENT;
  if (!server) {
    c.psk_identity = "fuzz";
    c.psk_key = KEY;
    c.psk_key_len = sizeof KEY;
  }
  if (x->d == NULL || tc_tls_ctx_new(&c, &ctx, msg, sizeof msg) != 0) abort();
  if (server) tc_tls_ctx_add_psk(ctx, "fuzz", KEY, sizeof KEY);
  x->t = tcdt_create(x->d, ctx, server, NULL, &lim, &err);
  if (x->t == NULL) abort();
}

static void host(side *x, int a) {
  if (a == TCD_DELIVER) tcd_delivered(x->d);
  else if (a == TCD_SEND) {
    while (tcdt_seal(x->t, 0) == TCD_SEND) tcdt_out_sent(x->t, 0, 0);
  }
}

/* Moves what each side sent to the other until quiet. */
static void pump(void) {
  static uint8_t buf[64][1500];
  static uint32_t len[64];
  for (int round = 0; round < 50; round++) {
    int moved = 0;
    for (int dir = 0; dir < 2; dir++) {
      side *from = dir ? &S : &C, *to = dir ? &C : &S;
      const uint8_t *fa = dir ? SADDR : CADDR;
      tc_txq *q;
      uint32_t n = 0, i;
      int a;
      host(from, TCD_SEND);
      q = tcdt_out(from->t);
      for (i = 0; i < q->count && n < 64; i++)
        if (q->items[i].length <= 1500) {
          memcpy(buf[n], q->buf + q->items[i].offset, q->items[i].length);
          len[n++] = q->items[i].length;
        }
      tcdt_out_sent(from->t, 0, 0);
      for (i = 0; i < n; i++) {
        while ((a = tcdt_recv(to->t, 0, fa, TCB_ADDR4_LEN, buf[i], len[i])) > 0) host(to, a);
        moved = 1;
      }
      tcd_delivered(to->d);
    }
    if (!moved) return;
  }
}

/* A session between C and S (made again whenever the fuzzer's input killed it). */
static void open_session(void) {
  uint32_t tx[TCB_TX_REQUEST_WORDS] = {0};
  int a;
  if (S.t == NULL) make(&S, 1);
  if (C.t != NULL && tcdt_get_stats(C.t)->sessions == 1 && tcdt_get_stats(S.t)->sessions >= 1) return;
  if (C.t != NULL) {
    tcdt_destroy(C.t);
    tcd_destroy(C.d);
  }
  make(&C, 0);
  tx[TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
  tx[TCB_TX_REQUEST_CODE] = 1;
  tcb_addr_to_words(SADDR, sizeof SADDR, tx + TCB_TX_REQUEST_FAMILY);
  tx[TCB_TX_REQUEST_TOKEN] = 2;
  while ((a = tcd_flush(C.d, 0, tx, TCB_TX_REQUEST_WORDS, NULL, 0)) > 0) host(&C, a);
  pump();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  static int checked;
  open_session();
  if (!checked && tcdt_get_stats(S.t)->handshakes != 1) abort(); /* the session path is reached */
  checked = 1;
  /* [flags][len hi][len lo][bytes]...: flags bit 0 = from the session's address, bits 1..3 =
   * an unknown port */
  while (off + 3 <= size) {
    uint8_t f = data[off];
    size_t n = (size_t)data[off + 1] << 8 | data[off + 2];
    uint8_t from[TCB_ADDR4_LEN];
    int a;
    off += 3;
    if (n > size - off) n = size - off;
    memcpy(from, CADDR, sizeof from);
    if (!(f & 1)) from[2] = (uint8_t)(f >> 1);
    while ((a = tcdt_recv(S.t, 1, from, TCB_ADDR4_LEN, data + off, (uint32_t)n)) > 0) host(&S, a);
    host(&S, TCD_SEND);
    tcdt_out_sent(S.t, 0, 0);
    tcd_delivered(S.d);
    off += n;
  }
  {
    const tcdt_stats *st = tcdt_get_stats(S.t);
    if (st->sessions > 64 || st->half_open > 8 || st->half_open > st->sessions) abort();
  }
  return 0;
}

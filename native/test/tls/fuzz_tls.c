/*
 * fuzz_tls.c — libFuzzer harness for the record layer's input side: arbitrary bytes fed to a
 * TLS server session (in chunks the input chooses), a TLS client session after its
 * ClientHello, and a DTLS server's tc_dtls_listen. Nothing may crash, leak or hang; a session
 * ends HANDSHAKING or FAILED. `make -C native tls-fuzz FUZZ_SECONDS=N`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

static tc_tls_ctx *srv, *cli, *dsrv;

static tc_tls_ctx *mk(tc_tls_role role, tc_tls_transport tr) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = role;
  c.transport = tr;
  if (role == TC_TLS_CLIENT) {
    c.psk_identity = "fuzz";
    c.psk_key = (const uint8_t *)"0123456789abcdef";
    c.psk_key_len = 16;
  }
  tc_tls_ctx *x = NULL;
  if (tc_tls_ctx_new(&c, &x, NULL, 0) != 0) abort();
  if (role == TC_TLS_SERVER) tc_tls_ctx_add_psk(x, "fuzz", (const uint8_t *)"0123456789abcdef", 16);
  return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (srv == NULL) {
    srv = mk(TC_TLS_SERVER, TC_TLS_STREAM);
    cli = mk(TC_TLS_CLIENT, TC_TLS_STREAM);
    dsrv = mk(TC_TLS_SERVER, TC_TLS_DATAGRAM);
  }
  if (size < 1) return 0;
  uint8_t sel = data[0];
  data++;
  size--;
  uint8_t out[4096];
  if (sel % 3 == 2) {
    static const uint8_t peer[] = { 1, 2, 3, 4 };
    size_t ol = 0;
    tc_tls *s = NULL;
    int r = tc_dtls_listen(dsrv, data, size, peer, sizeof peer, out, sizeof out, &ol, &s);
    if (r == TC_DTLS_ACCEPT) abort(); /* a cookie cannot be guessed */
    tc_tls_free(s);
    return 0;
  }
  tc_tls *s = tc_tls_new(sel % 3 == 0 ? srv : cli, NULL, NULL, 0);
  if (s == NULL) return 0;
  while (tc_tls_take_out(s, out, sizeof out) > 0) {}
  size_t step = 1 + (sel >> 2) * 64u, off = 0;
  while (off < size) {
    size_t n = size - off < step ? size - off : step;
    long f = tc_tls_feed(s, data + off, n);
    if (f <= 0) break;
    off += (size_t)f;
    while (tc_tls_read(s, out, sizeof out) > 0) {}
    while (tc_tls_take_out(s, out, sizeof out) > 0) {}
  }
  tc_tls_state st = tc_tls_get_state(s);
  if (st != TC_TLS_HANDSHAKING && st != TC_TLS_FAILED) abort(); /* no peer can finish a handshake blind */
  tc_tls_free(s);
  return 0;
}

/* fuzz_stream.c — libFuzzer harness for the connection driver (native/driver/stream.c, without
 * TLS): one object with 4 connections at most (2 per host), driven by operations, one byte each
 * followed by their arguments:
 *   0     open connection (arg % 6) from host (arg / 6 % 3)
 *   1..4  feed the next (arg + 1) bytes to connection (op byte's next % 6) as a chunk
 *   5     write: every connection with work, (arg: bytes per write, 0 = all) or close it
 *   6     close connection (arg % 6) (the host's EOF)
 *   7     advance time by arg * 97 ms and run the timer
 *   8     hand the batch to JS: every REQUEST answered (RESPOND, payload arg * 8 bytes),
 *         Observe ones with resource 1; every tenth dropped
 *   9     TX records: NOTIFY resource 1, a REQUEST to connection (arg % 6), a PING, a CANCEL
 *   10    raw TX words from the input (a malformed table)
 * Properties: no crash or sanitizer report; every record of the batch lies inside it and names
 * a connection; tcs_out never gives more than the output buffer; actions are in range; a
 * closed connection is gone (tcs_conn_state 0). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "stream.h"

static tcs_stream *g_s;
static uint8_t g_payload[4096];

static tcs_stream *make(void) {
  tc_conn_config cc;
  tc_srv_config sc;
  tcs_limits lim;
  uint8_t seed[48] = {1, 2, 3};
  int err;
  tc_conn_config_default(&cc);
  cc.max_message_size = 1152;
  cc.out_bytes = 4096;
  cc.max_exchanges = 4;
  cc.max_requests = 4;
  tc_srv_config_default(&sc);
  sc.max_in_progress = 16;
  sc.max_message_size = 1152;
  sc.bw1.max_body = 8192;
  sc.bw1.pool_bytes = 32768;
  sc.bw1.max_transfers = 8;
  sc.bw2.max_reps = 8;
  sc.bw2.pool_bytes = 32768;
  sc.obs.max_observers = 16;
  sc.obs.max_per_resource = 16;
  sc.obs.max_resources = 8;
  sc.max_resource_keys = 8;
  lim.max_conns = 4;
  lim.max_per_host = 2;
  lim.rx_words = 2048;
  lim.rx_bytes = 8192;
  return tcs_create(&cc, &sc, &lim, seed, 48, &err);
}

static void check_batch(tcs_stream *s) {
  const tcb_rx *b = tcs_batch(s);
  uint32_t p = 0, n = 0;
  while (p < b->word_used) {
    const uint32_t *r = b->words + p;
    REQUIRE(r[TCB_RX_FAMILY] == TCB_FAMILY_CONN || r[TCB_RX_KIND] == TCB_CONN_EV_OPEN);
    REQUIRE(r[TCB_RX_DATA] + r[TCB_RX_LEN] <= b->data_used);
    p += TCB_RX_WORDS + 3u * r[TCB_RX_OPT_COUNT];
    n++;
  }
  REQUIRE(p == b->word_used && n == b->count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in = {data, size};
  uint64_t now = 0;
  static uint32_t w[512];
  static uint8_t bytes[256];
  uint32_t steps = 0;
  if (g_s == NULL) {
    int i;
    for (i = 0; i < 4096; i++) g_payload[i] = (uint8_t)(i * 31);
  }
  tcs_destroy(g_s);
  g_s = make();
  REQUIRE(g_s != NULL);
  while (in.n > 0 && steps++ < 2000) {
    uint32_t op = take(&in) % 15u, arg = take(&in), used = 0, id, len;
    int rc;
    switch (op) {
    case 0: {
      uint8_t a[7] = {4, 0, (uint8_t)arg, 10, 0, 0, (uint8_t)(arg / 6u % 3u)};
      rc = tcs_open(g_s, now, arg % 6u, a, 7);
      REQUIRE(rc == TCS_WRITE || rc == TC_E_FULL || rc == TC_E_INVALID);
      break;
    }
    case 1: case 2: case 3: case 4: {
      uint32_t n = arg + 1u, conn = take(&in) % 6u, off = 0;
      if (n > in.n) n = (uint32_t)in.n;
      while (off < n) {
        rc = tcs_recv(g_s, now, conn, in.p + off, n - off, &used);
        REQUIRE(rc >= TC_E_INVALID && rc <= TCS_PAUSE);
        REQUIRE(used <= n - off);
        off += used;
        if (rc == TCS_DELIVER) {
          check_batch(g_s);
          tcs_delivered(g_s);
          continue;
        }
        break; /* PAUSE / error: the rest is dropped */
      }
      in.p += n;
      in.n -= n;
      break;
    }
    case 5: {
      int a, k = 0;
      while (k++ < 16 && (a = tcs_next_out(g_s, &id)) != TCS_OUT_NONE) {
        REQUIRE(a == TCS_OUT_WRITE || a == TCS_OUT_CLOSE);
        if (a == TCS_OUT_CLOSE) {
          REQUIRE(tcs_close(g_s, now, id) == TCS_DONE);
          REQUIRE(tcs_conn_state(g_s, id) == 0u);
          continue;
        }
        const uint8_t *p = tcs_out(g_s, id, &len);
        REQUIRE(len <= 4096u && (len == 0u || p != NULL));
        if (len > 0u) {
          uint32_t n = arg == 0u || arg > len ? len : arg;
          REQUIRE(tcs_written(g_s, id, n) >= 0);
        }
      }
      break;
    }
    case 6:
      rc = tcs_close(g_s, now, arg % 6u);
      REQUIRE(rc == TCS_DONE || rc == TC_E_INVALID);
      REQUIRE(tcs_conn_state(g_s, arg % 6u) == 0u);
      break;
    case 7:
      now += arg * 97u;
      rc = tcs_timer(g_s, now);
      if (rc == TCS_DELIVER) {
        check_batch(g_s);
        tcs_delivered(g_s);
      }
      REQUIRE(tcs_deadline(g_s) > 0u);
      break;
    case 8: {
      const tcb_rx *b = tcs_batch(g_s);
      uint32_t p = 0, nw = 0, k = 0;
      check_batch(g_s);
      while (p < b->word_used && nw + TCB_TX_RESPOND_WORDS <= 512u) {
        const uint32_t *r = b->words + p;
        if (r[TCB_RX_KIND] == TC_EV_REQUEST) {
          uint32_t *t = w + nw;
          memset(t, 0, TCB_TX_RESPOND_WORDS * 4u);
          t[TCB_TX_RESPOND_KIND] = (k++ % 10u == 9u) ? TCB_TX_DROP : TCB_TX_RESPOND;
          t[TCB_TX_RESPOND_ID] = r[TCB_RX_ID];
          if (t[0] == TCB_TX_DROP) {
            nw += TCB_TX_SMALL_WORDS;
          } else {
            t[TCB_TX_RESPOND_CODE] = 0x45;
            t[TCB_TX_RESPOND_PAYLOAD_LEN] = arg * 8u;
            t[TCB_TX_RESPOND_RESOURCE] = (r[TCB_RX_SRV_FLAGS] & TC_SRVF_OBSERVE) ? 1u : 0u;
            nw += TCB_TX_RESPOND_WORDS;
          }
        }
        p += TCB_RX_WORDS + 3u * r[TCB_RX_OPT_COUNT];
      }
      tcs_delivered(g_s);
      for (k = 0; k < 4; k++) {
        rc = tcs_flush(g_s, now, w, nw, g_payload, sizeof g_payload);
        REQUIRE(rc == TCS_DONE || rc == TCS_WRITE);
        if (rc == TCS_DONE) break;
      }
      if (rc == TCS_WRITE) (void)tcs_flush(g_s, now, w, nw, g_payload, sizeof g_payload);
      break;
    }
    case 9: {
      uint32_t nw = 0, k;
      memset(w, 0, 64 * 4u);
      w[TCB_TX_NOTIFY_KIND] = TCB_TX_NOTIFY;
      w[TCB_TX_NOTIFY_RESOURCE] = 1;
      w[TCB_TX_NOTIFY_CODE] = 0x45;
      w[TCB_TX_NOTIFY_PAYLOAD_LEN] = arg;
      nw = TCB_TX_NOTIFY_WORDS;
      w[nw + TCB_TX_REQUEST_KIND] = TCB_TX_REQUEST;
      w[nw + TCB_TX_REQUEST_CODE] = 1;
      w[nw + TCB_TX_REQUEST_FAMILY] = TCB_FAMILY_CONN;
      w[nw + TCB_TX_REQUEST_PORT] = arg % 6u;
      w[nw + TCB_TX_REQUEST_TOKEN] = arg % 9u;
      w[nw + TCB_TX_REQUEST_PAYLOAD_LEN] = arg * 4u;
      w[nw + TCB_TX_REQUEST_FLAGS] = arg & TC_REQ_KEEP;
      nw += TCB_TX_REQUEST_WORDS;
      w[nw + TCB_TX_PING_KIND] = TCB_TX_PING;
      w[nw + TCB_TX_PING_FAMILY] = TCB_FAMILY_CONN;
      w[nw + TCB_TX_PING_PORT] = (arg + 1u) % 6u;
      nw += TCB_TX_PING_WORDS;
      w[nw + TCB_TX_SMALL_KIND] = TCB_TX_CANCEL;
      w[nw + TCB_TX_SMALL_ID] = 0x80010000u | (arg & 3u);
      w[nw + TCB_TX_SMALL_CONN] = arg % 6u;
      nw += TCB_TX_SMALL_WORDS;
      for (k = 0; k < 4; k++) {
        rc = tcs_flush(g_s, now, w, nw, g_payload, sizeof g_payload);
        REQUIRE(rc == TCS_DONE || rc == TCS_WRITE);
        if (rc == TCS_DONE) break;
      }
      break;
    }
    case 11: /* the host closes gracefully, aborts, releases; host records */
      rc = tcs_shutdown(g_s, now, arg % 6u);
      REQUIRE(rc == TCS_WRITE || rc == TCS_DELIVER || rc == TC_E_INVALID);
      break;
    case 12:
      rc = tcs_abort(g_s, now, arg % 6u, (arg & 64u) ? "fuzz" : NULL);
      REQUIRE(rc == TCS_WRITE || rc == TCS_DELIVER || rc == TC_E_INVALID);
      break;
    case 13:
      rc = tcs_release(g_s, now, arg % 6u, arg % 3u == 0u ? TC_CONN_NO_VALUE : arg % 100u, NULL);
      /* TC_E_MESSAGE_TOO_LARGE: the peer's CSM set a Max-Message-Size the Release does not fit */
      REQUIRE(rc == TCS_WRITE || rc == TC_E_FULL || rc == TC_E_STALE || rc == TC_E_INVALID ||
              rc == TC_E_MESSAGE_TOO_LARGE);
      break;
    case 14: {
      uint8_t a[7] = {4, 0, (uint8_t)arg, 10, 0, 0, 1};
      rc = tcs_host_event(g_s, (arg & 1u) ? TCB_CONN_EV_OPEN : TC_CONN_EV_CLOSED, arg % 6u, a, 7,
                          (int32_t)arg, arg >> 8, g_payload, arg % 200u);
      REQUIRE(rc == 0 || rc == TC_E_FULL);
      if (rc == TC_E_FULL) {
        check_batch(g_s);
        tcs_delivered(g_s);
      }
      break;
    }
    default: {
      uint32_t nw = arg % 32u, k;
      for (k = 0; k < nw; k++) w[k] = take(&in) % 8u | take(&in) << 8;
      for (k = 0; k < sizeof bytes; k++) bytes[k] = (uint8_t)k;
      for (k = 0; k < 4; k++) {
        rc = tcs_flush(g_s, now, w, nw, bytes, sizeof bytes);
        if (rc != TCS_WRITE) break;
      }
      if (rc == TCS_WRITE) (void)tcs_flush(g_s, now, w, 0, bytes, 0); /* reset */
      break;
    }
    }
  }
  return 0;
}

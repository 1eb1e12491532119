/* gen_seeds.c — write a libFuzzer seed corpus from the shared test vectors:
 *   <dir>/decode/vNNN    transport byte + vector bytes
 *   <dir>/deframer/sNNN  split header + a stream of TCP re-encoded vectors
 *   <dir>/conn/cNNN      config byte + operations: a peer's CSM, requests, Ping, Release */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turbocoap.h"
#include "vectors.h"

static int write_file(const char *dir, const char *sub, const char *name, const uint8_t *a,
                      size_t an, const uint8_t *b, size_t bn) {
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
  f = fopen(path, "wb");
  if (f == NULL) return -1;
  if ((an && fwrite(a, 1, an, f) != an) || (bn && fwrite(b, 1, bn, f) != bn)) {
    fclose(f);
    return -1;
  }
  return fclose(f);
}

int main(int argc, char **argv) {
  static uint8_t stream[1 << 16], tmp[1 << 16];
  size_t slen = 0;
  uint32_t i, files = 0;
  char name[32];
  if (argc != 2) {
    fprintf(stderr, "usage: gen-seeds DIR\n");
    return 2;
  }
  for (i = 0; i < TV_COUNT; i++) {
    const tv_vector *v = &tv_vectors[i];
    uint8_t sel = (uint8_t)((uint8_t)v->transport | (63u << 2)); /* full option table */
    tc_msg m;
    tc_opt o[64];
    int r;
    snprintf(name, sizeof name, "v%03u", i);
    if (write_file(argv[1], "decode", name, &sel, 1, v->bytes, v->length) != 0) return 1;
    files++;
    if (v->error) continue;
    if (tc_decode(v->bytes, v->length, v->transport, &m, o, 64) < 0) continue;
    r = tc_encode(tmp, sizeof tmp, TC_TCP, &m, o, v->bytes);
    if (r > 0 && slen + (size_t)r <= sizeof stream) {
      memcpy(stream + slen, tmp, (size_t)r);
      slen += (size_t)r;
    }
  }
  /* deframer seeds: a few split patterns and limits over the same stream */
  {
    static const uint8_t heads[][6] = {
        {0xF0, 0x00},                   /* no splits, max 200000, table 1 */
        {0xA1, 0x00, 0x05},             /* one split size 1 (byte at a time), max 4096 */
        {0xB3, 0x06, 0x1F, 0x02, 0x07}, /* sizes 7, 32, 3; max 4097; table 8 */
        {0x62, 0x40, 0xFF, 0x0F},       /* sizes 65, 256; max 64 -> MESSAGE_TOO_LARGE */
    };
    static const uint8_t lens[] = {2, 3, 5, 4};
    for (i = 0; i < sizeof lens; i++) {
      size_t n = slen < 3000 ? slen : 3000;
      snprintf(name, sizeof name, "s%03u", i);
      if (write_file(argv[1], "deframer", name, heads[i], lens[i], stream, n) != 0) return 1;
      files++;
    }
  }
  /* conn seeds (fuzz_conn.c): feed a CSM, a GET, a Ping with Custody, answer, drain, Release */
  {
    static const uint8_t csm[] = {0x00, 0xE1};                   /* CSM, no options */
    static const uint8_t csm_b[] = {0x30, 0xE1, 0x21, 0x40, 0x40};  /* MMS 64, Block-Wise */
    static const uint8_t get[] = {0x52, 0x01, 0xAB, 0xCD, 0xB3, 'o', 'b', 's', 0x60};
    static const uint8_t ping[] = {0x11, 0xE2, 0x07, 0x20};        /* Ping, Custody */
    static const uint8_t rel[] = {0x20, 0xE4, 0x41, 0x05};         /* Release, Hold-Off 5 */
    static const uint8_t sels[] = {0x00, 0x01, 0x06, 0x12};
    uint8_t buf[256];
    for (i = 0; i < sizeof sels; i++) {
      size_t w = 0;
      int ws = sels[i] & 1;
      const uint8_t *parts[4] = {i == 2 ? csm_b : csm, get, ping, rel};
      size_t lens2[4] = {i == 2 ? sizeof csm_b : sizeof csm, sizeof get, sizeof ping, sizeof rel};
      uint32_t k;
      buf[w++] = sels[i];
      for (k = 0; k < 4; k++) {
        size_t j, n = lens2[k];
        buf[w++] = 0;
        buf[w++] = (uint8_t)(n - 1);
        for (j = 0; j < n; j++) buf[w++] = parts[k][j];
        if (ws) buf[w - n] &= 0x0F; /* WebSocket: Len nibble 0 */
        if (k == 2) { /* answer the GET through tc_srv, then drain */
          buf[w++] = 6;
          buf[w++] = 3;
          buf[w++] = 4;
          buf[w++] = 0;
        }
      }
      buf[w++] = 5; /* time passes: idle Ping, then no Pong */
      buf[w++] = 200;
      buf[w++] = 5;
      buf[w++] = 200;
      snprintf(name, sizeof name, "c%03u", i);
      if (write_file(argv[1], "conn", name, buf, w, NULL, 0) != 0) return 1;
      files++;
    }
  }
  /* stream seeds (fuzz_stream.c): two connections, a CSM, GET /hello and an Observe GET each,
   * answered, written, a notification, time, a close */
  {
    static const uint8_t ops[] = {
        0, 0, 0, 7,                                   /* open 0 and 1 (hosts 0, 1) */
        1, 16, 0, 0x00, 0xE1,                         /* 17 bytes to connection 0: CSM, */
        0x60, 0x01, 0xB5, 'h', 'e', 'l', 'l', 'o',    /* GET /hello, */
        0x50, 0x01, 0x60, 0x53, 'o', 'b', 's',        /* GET /obs Observe 0 */
        1, 1, 1, 0x00, 0xE1,                          /* CSM on connection 1 */
        8, 2, 5, 0, 9, 3, 5, 0, 8, 1, 5, 0, 7, 200, 5, 0, 6, 1, 7, 255, 5, 0};
    if (write_file(argv[1], "stream", "s000", ops, (uint32_t)sizeof ops, NULL, 0) != 0) return 1;
    files++;
  }
  printf("gen-seeds: %u files\n", files);
  return 0;
}

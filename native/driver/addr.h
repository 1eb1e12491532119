/*
 * addr.h — THE address converter of the C side: canonical address bytes (what the core sees)
 * <-> record words (what JS reads and writes) <-> struct sockaddr (what a socket takes; not on
 * WebAssembly, where JS owns the socket).
 *
 * Canonical addresses are byte strings, opaque to the core:
 *   IPv4: 4, port_hi, port_lo, a, b, c, d                        (TCB_ADDR4_LEN = 7 bytes)
 *   IPv6: 6, port_hi, port_lo, 16 address bytes, scope id (LE)  (TCB_ADDR6_LEN = 23 bytes)
 * Record words (7, at e.g. TCB_RX_FAMILY): family (4, 6; 0 = none), port, 4 words of address
 * bytes in network order (IPv4 in the first word), IPv6 scope id.
 */
#ifndef TURBOCOAP_DRIVER_ADDR_H
#define TURBOCOAP_DRIVER_ADDR_H

#include <stdint.h>
#include <string.h>

#include "abi.h"

/** Words of an address in a record. */
#define TCB_ADDR_WORDS 7u

/** Canonical address -> record words (family, port, address, scope); zeroes if not one. */
static inline void tcb_addr_to_words(const uint8_t *a, uint32_t alen, uint32_t *w) {
  w[0] = w[1] = w[2] = w[3] = w[4] = w[5] = w[6] = 0;
  if (alen == TCB_ADDR4_LEN && a[0] == 4u) {
    w[0] = 4;
    w[1] = (uint32_t)a[1] << 8 | a[2];
    memcpy(&w[2], a + 3, 4);
  } else if (alen == TCB_ADDR6_LEN && a[0] == 6u) {
    w[0] = 6;
    w[1] = (uint32_t)a[1] << 8 | a[2];
    memcpy(&w[2], a + 3, 16);
    w[6] = (uint32_t)a[19] | (uint32_t)a[20] << 8 | (uint32_t)a[21] << 16 | (uint32_t)a[22] << 24;
  }
}

/** Record words (family, port, address, scope) -> canonical address; its length, or 0. */
static inline uint32_t tcb_words_to_addr(const uint32_t *w, uint8_t *a) {
  if (w[1] > 65535u) return 0;
  a[1] = (uint8_t)(w[1] >> 8);
  a[2] = (uint8_t)w[1];
  if (w[0] == 4u) {
    a[0] = 4;
    memcpy(a + 3, &w[2], 4);
    return TCB_ADDR4_LEN;
  }
  if (w[0] == 6u) {
    a[0] = 6;
    memcpy(a + 3, &w[2], 16);
    a[19] = (uint8_t)w[6];
    a[20] = (uint8_t)(w[6] >> 8);
    a[21] = (uint8_t)(w[6] >> 16);
    a[22] = (uint8_t)(w[6] >> 24);
    return TCB_ADDR6_LEN;
  }
  return 0;
}

#ifndef __wasm__
#include <netinet/in.h>
#include <sys/socket.h>

/** Canonical address of a sockaddr (AF_INET / AF_INET6); its length, or 0. */
static inline uint32_t tcb_sockaddr_to_addr(const struct sockaddr *sa, uint8_t *a) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
    a[0] = 4;
    memcpy(a + 1, &s->sin_port, 2);
    memcpy(a + 3, &s->sin_addr, 4);
    return TCB_ADDR4_LEN;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
    uint32_t sc = s->sin6_scope_id;
    a[0] = 6;
    memcpy(a + 1, &s->sin6_port, 2);
    memcpy(a + 3, &s->sin6_addr, 16);
    a[19] = (uint8_t)sc;
    a[20] = (uint8_t)(sc >> 8);
    a[21] = (uint8_t)(sc >> 16);
    a[22] = (uint8_t)(sc >> 24);
    return TCB_ADDR6_LEN;
  }
  return 0;
}

/** Canonical address -> sockaddr (out: room for a sockaddr_in6); its length, or 0. */
static inline socklen_t tcb_addr_to_sockaddr(const uint8_t *a, uint32_t alen,
                                             struct sockaddr_in6 *out) {
  memset(out, 0, sizeof *out);
  if (alen == TCB_ADDR4_LEN && a[0] == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)(void *)out;
    s->sin_family = AF_INET;
    memcpy(&s->sin_port, a + 1, 2);
    memcpy(&s->sin_addr, a + 3, 4);
    return (socklen_t)sizeof(struct sockaddr_in);
  }
  if (alen == TCB_ADDR6_LEN && a[0] == 6) {
    out->sin6_family = AF_INET6;
    memcpy(&out->sin6_port, a + 1, 2);
    memcpy(&out->sin6_addr, a + 3, 16);
    out->sin6_scope_id = (uint32_t)a[19] | (uint32_t)a[20] << 8 | (uint32_t)a[21] << 16 |
                         (uint32_t)a[22] << 24;
    return (socklen_t)sizeof(struct sockaddr_in6);
  }
  return 0;
}
#endif /* !__wasm__ */

#endif /* TURBOCOAP_DRIVER_ADDR_H */

/*
 * test_tls_libcoap.c — the record layer against libcoap's OpenSSL build over loopback, PSK:
 *   our DTLS client -> coap-server-openssl (coaps://), coap-client-openssl -> our DTLS server
 *   (through tc_dtls_listen), our TLS client -> coap-server-openssl (coaps+tcp://, with CSM),
 *   coap-client-openssl -> our TLS server (coaps+tcp://).
 * The CoAP messages are built and parsed by hand here: this tests the security layer, not the
 * core. Without libcoap the suite is skipped with a one-line reason, unless CI is set.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "tls.h"
#include "tls_test.h"

#define PSK_ID "tc-client"
#define PSK_KEY "tc-secret-key"

static int wait_exit(pid_t pid, int ms) {
  int status = 0;
  for (int i = 0; i < ms / 20; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) return 1;
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  return 0;
}

static int loopback_socket(int type, int port, struct sockaddr_in *a) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = htons((uint16_t)port);
  return socket(AF_INET, type, 0);
}

static int bound_port(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

/* A port p with p and p+1 free on UDP and TCP (libcoap's server takes both). */
static int free_port_pair(void) {
  for (int tries = 0; tries < 50; tries++) {
    struct sockaddr_in a;
    int fd = loopback_socket(SOCK_DGRAM, 0, &a);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    int p = bound_port(fd);
    close(fd);
    if (p <= 0 || p >= 65535) continue;
    int ok = 1;
    for (int k = 0; k < 2 && ok; k++)
      for (int t = 0; t < 2 && ok; t++) {
        int f = loopback_socket(t ? SOCK_STREAM : SOCK_DGRAM, p + k, &a);
        ok = bind(f, (struct sockaddr *)&a, sizeof a) == 0;
        close(f);
      }
    if (ok) return p;
  }
  return -1;
}

static tc_tls_ctx *psk_ctx(tc_tls_role role, tc_tls_transport tr) {
  tc_tls_config c;
  memset(&c, 0, sizeof c);
  c.role = role;
  c.transport = tr;
  if (role == TC_TLS_CLIENT) {
    c.psk_identity = PSK_ID;
    c.psk_key = (const uint8_t *)PSK_KEY;
    c.psk_key_len = strlen(PSK_KEY);
  } else {
    c.psk_hint = "turbocoap";
  }
  tc_tls_ctx *ctx = NULL;
  char err[256];
  CHECK_EQ(tc_tls_ctx_new(&c, &ctx, err, sizeof err), 0, err);
  if (ctx != NULL && role == TC_TLS_SERVER) tc_tls_ctx_add_psk(ctx, PSK_ID, (const uint8_t *)PSK_KEY, strlen(PSK_KEY));
  return ctx;
}

/* ------------------------------------------------------------------ DTLS (coaps://) */

static void dtls_flush(tc_tls *s, int fd, const struct sockaddr_in *to) {
  uint8_t dg[2048];
  long n;
  while ((n = tc_tls_take_out(s, dg, sizeof dg)) > 0) sendto(fd, dg, (size_t)n, 0, (const struct sockaddr *)to, sizeof *to);
}

/* Wait for a datagram (at most ms), handling retransmission timers. Returns its length or 0. */
static long dtls_recv(tc_tls *s, int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from, int ms) {
  for (int waited = 0; waited < ms;) {
    long t = s != NULL ? tc_tls_timeout_ms(s) : -1;
    int slice = t >= 0 && t < 50 ? (int)t : 50;
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, slice) == 1) {
      socklen_t len = sizeof *from;
      ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &len);
      if (n > 0) return (long)n;
    }
    waited += slice > 0 ? slice : 1;
    if (s != NULL && tc_tls_timeout_ms(s) == 0 && tc_tls_on_timeout(s) == 1) dtls_flush(s, fd, from);
  }
  return 0;
}

static void dtls_client_vs_libcoap(int port) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "exec coap-server-openssl -A 127.0.0.1 -p %d -k %s -h hint -v 0 >/dev/null 2>&1", port, PSK_KEY);
  pid_t pid = tls_test_spawn(cmd);
  struct sockaddr_in srv, from;
  int fd = loopback_socket(SOCK_DGRAM, port + 1, &srv);
  tc_tls_ctx *c = psk_ctx(TC_TLS_CLIENT, TC_TLS_DATAGRAM);
  char err[256];
  uint8_t buf[2048];
  int open = 0;
  /* the server may not be up yet: a fresh session per attempt */
  for (int attempt = 0; attempt < 20 && !open; attempt++) {
    tc_tls *s = tc_tls_new(c, NULL, err, sizeof err);
    dtls_flush(s, fd, &srv);
    for (int i = 0; i < 20 && tc_tls_get_state(s) == TC_TLS_HANDSHAKING; i++) {
      long n = dtls_recv(s, fd, buf, sizeof buf, &from, 100);
      if (n > 0) tc_tls_feed(s, buf, (size_t)n);
      dtls_flush(s, fd, &srv);
    }
    if (tc_tls_get_state(s) != TC_TLS_OPEN) { tc_tls_free(s); continue; }
    open = 1;
    tc_tls_info in;
    tc_tls_get_info(s, &in);
    CHECK(in.version == 0xFEFD && strncmp(in.cipher, "PSK-", 4) == 0, "libcoap DTLS server: %x %s", in.version, in.cipher);
    /* CON GET / with token ab cd, MID 0x1234 */
    static const uint8_t get[] = { 0x42, 0x01, 0x12, 0x34, 0xab, 0xcd };
    CHECK_EQ(tc_tls_write(s, get, sizeof get), sizeof get, "GET over DTLS");
    dtls_flush(s, fd, &srv);
    long got = 0;
    for (int i = 0; i < 30 && got <= 0; i++) {
      long n = dtls_recv(s, fd, buf, sizeof buf, &from, 100);
      if (n > 0) tc_tls_feed(s, buf, (size_t)n);
      got = tc_tls_read(s, buf, sizeof buf);
    }
    CHECK(got >= 7 && buf[0] == 0x62 && buf[1] == 0x45 && buf[2] == 0x12 && buf[3] == 0x34 && buf[4] == 0xab,
          "libcoap answered 2.05 piggybacked over DTLS (%ld bytes, %02x %02x)", got, got > 1 ? buf[0] : 0, got > 1 ? buf[1] : 0);
    tc_tls_close(s);
    dtls_flush(s, fd, &srv);
    tc_tls_free(s);
  }
  CHECK(open, "DTLS handshake with coap-server-openssl");
  tc_tls_ctx_free(c);
  close(fd);
  tls_test_stop(pid);
}

static void libcoap_client_vs_dtls_server(const char *dir) {
  struct sockaddr_in a, from;
  int fd = loopback_socket(SOCK_DGRAM, 0, &a);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  int port = bound_port(fd);
  char out[512], cmd[1024];
  snprintf(out, sizeof out, "%s/coap-client-dtls.out", dir);
  snprintf(cmd, sizeof cmd, "exec coap-client-openssl -B 5 -u %s -k %s coaps://127.0.0.1:%d/hello >%s 2>&1", PSK_ID, PSK_KEY,
           port, out);
  pid_t pid = tls_test_spawn(cmd);
  tc_tls_ctx *sc = psk_ctx(TC_TLS_SERVER, TC_TLS_DATAGRAM);
  tc_tls *s = NULL;
  uint8_t buf[2048], reply[2048];
  int hvr = 0, answered = 0;
  for (int i = 0; i < 60 && !answered; i++) {
    long n = dtls_recv(s, fd, buf, sizeof buf, &from, 100);
    if (n <= 0) continue;
    if (s == NULL) {
      size_t rl = 0;
      int r = tc_dtls_listen(sc, buf, (size_t)n, (const uint8_t *)&from, sizeof from, reply, sizeof reply, &rl, &s);
      if (r == TC_DTLS_HELLO_VERIFY) {
        hvr++;
        sendto(fd, reply, rl, 0, (struct sockaddr *)&from, sizeof from);
      }
      if (s != NULL) dtls_flush(s, fd, &from);
      continue;
    }
    tc_tls_feed(s, buf, (size_t)n);
    long m;
    while ((m = tc_tls_read(s, buf, sizeof buf)) > 0) {
      unsigned tkl = buf[0] & 15u;
      if (m < 4 + (long)tkl || (buf[0] >> 6) != 1 || buf[1] != 0x01) continue; /* a GET */
      uint8_t rsp[64];
      size_t k = 0;
      rsp[k++] = (uint8_t)(0x60 | tkl); /* ACK */
      rsp[k++] = 0x45;                   /* 2.05 */
      rsp[k++] = buf[2];
      rsp[k++] = buf[3];
      memcpy(rsp + k, buf + 4, tkl);
      k += tkl;
      rsp[k++] = 0xFF;
      memcpy(rsp + k, "turbocoap-dtls", 14);
      k += 14;
      tc_tls_write(s, rsp, k);
      answered = 1;
    }
    dtls_flush(s, fd, &from);
  }
  /* let the client print and close */
  for (int i = 0; i < 10 && !wait_exit(pid, 100); i++) {
    long n = s != NULL ? dtls_recv(s, fd, buf, sizeof buf, &from, 50) : 0;
    if (n > 0) tc_tls_feed(s, buf, (size_t)n);
  }
  CHECK(hvr >= 1, "coap-client went through the cookie exchange");
  CHECK(s != NULL && tc_tls_get_state(s) != TC_TLS_FAILED, "DTLS session with coap-client: %s", s != NULL ? tc_tls_errmsg(s) : "none");
  CHECK(answered, "coap-client's GET arrived over DTLS");
  tls_test_stop(pid);
  FILE *f = fopen(out, "rb");
  char text[2048] = { 0 };
  if (f != NULL) {
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
  }
  CHECK(strstr(text, "turbocoap-dtls") != NULL, "coap-client printed our payload: %s", text);
  tc_tls_free(s);
  tc_tls_ctx_free(sc);
  close(fd);
}

/* ------------------------------------------------------------------ TLS (coaps+tcp://) */

static const uint8_t CSM[] = { 0x00, 0xE1 }; /* RFC 8323 §5.3: an empty 7.01 */

static int tcp_flush(tc_tls *s, int fd) {
  uint8_t b[16384];
  long n;
  while ((n = tc_tls_take_out(s, b, sizeof b)) > 0)
    if (send(fd, b, (size_t)n, MSG_NOSIGNAL) != n) return -1;
  return 0;
}

/* Read ciphertext for up to ms and pass it in. */
static void tcp_pump(tc_tls *s, int fd, int ms) {
  struct pollfd p = { fd, POLLIN, 0 };
  if (poll(&p, 1, ms) != 1) return;
  uint8_t b[16384];
  ssize_t n = recv(fd, b, sizeof b, 0);
  if (n > 0) tc_tls_feed(s, b, (size_t)n);
}

/* One RFC 8323 frame from buf[0..len): returns its size (0 when incomplete); code and token. */
static size_t frame(const uint8_t *buf, size_t len, uint8_t *code, const uint8_t **token, unsigned *tkl) {
  if (len < 2) return 0;
  size_t l = buf[0] >> 4, ext = 0;
  *tkl = buf[0] & 15u;
  if (l == 13) { ext = 1; if (len < 2) return 0; l = 13 + (size_t)buf[1]; }
  else if (l == 14) { ext = 2; if (len < 3) return 0; l = 269 + ((size_t)buf[1] << 8 | buf[2]); }
  else if (l == 15) return 0; /* not in these tests */
  size_t total = 1 + ext + 1 + *tkl + l;
  if (len < total) return 0;
  *code = buf[1 + ext];
  *token = buf + 2 + ext;
  return total;
}

static void tls_client_vs_libcoap(int port) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "exec coap-server-openssl -A 127.0.0.1 -p %d -k %s -h hint -v 0 >/dev/null 2>&1", port, PSK_KEY);
  pid_t pid = tls_test_spawn(cmd);
  struct sockaddr_in srv;
  int fd = -1;
  for (int i = 0; i < 100; i++) {
    fd = loopback_socket(SOCK_STREAM, port + 1, &srv);
    if (connect(fd, (struct sockaddr *)&srv, sizeof srv) == 0) break;
    close(fd);
    fd = -1;
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  CHECK(fd >= 0, "connect to coap-server-openssl's TLS port");
  if (fd < 0) { tls_test_stop(pid); return; }
  tc_tls_ctx *c = psk_ctx(TC_TLS_CLIENT, TC_TLS_STREAM);
  char err[256];
  tc_tls *s = tc_tls_new(c, NULL, err, sizeof err);
  for (int i = 0; i < 50 && tc_tls_get_state(s) == TC_TLS_HANDSHAKING; i++) {
    tcp_flush(s, fd);
    tcp_pump(s, fd, 100);
  }
  CHECK(tc_tls_get_state(s) == TC_TLS_OPEN, "TLS PSK handshake with coap-server-openssl: %s", tc_tls_errmsg(s));
  tc_tls_info in;
  tc_tls_get_info(s, &in);
  CHECK(strncmp(in.cipher, "PSK-", 4) == 0 && in.version == 0x0303, "TLS 1.2 PSK with libcoap: %s", in.cipher);
  /* CSM, then GET / with token 0x77 */
  static const uint8_t get[] = { 0x01, 0x01, 0x77 };
  tc_tls_write(s, CSM, sizeof CSM);
  tc_tls_write(s, get, sizeof get);
  tcp_flush(s, fd);
  uint8_t acc[8192];
  size_t alen = 0;
  int saw_csm = 0, saw_205 = 0;
  for (int i = 0; i < 50 && !saw_205; i++) {
    tcp_pump(s, fd, 100);
    long n = tc_tls_read(s, acc + alen, sizeof acc - alen);
    if (n > 0) alen += (size_t)n;
    size_t fl;
    uint8_t code;
    const uint8_t *tok;
    unsigned tkl;
    while ((fl = frame(acc, alen, &code, &tok, &tkl)) > 0) {
      if (code == 0xE1) saw_csm = 1;
      if (code == 0x45 && tkl == 1 && tok[0] == 0x77) saw_205 = 1;
      memmove(acc, acc + fl, alen - fl);
      alen -= fl;
    }
  }
  CHECK(saw_csm && saw_205, "libcoap sent its CSM and answered 2.05 over TLS (%d %d)", saw_csm, saw_205);
  tc_tls_close(s);
  tcp_flush(s, fd);
  close(fd);
  tc_tls_free(s);
  tc_tls_ctx_free(c);
  tls_test_stop(pid);
}

static void libcoap_client_vs_tls_server(const char *dir) {
  struct sockaddr_in a;
  int lfd = loopback_socket(SOCK_STREAM, 0, &a);
  bind(lfd, (struct sockaddr *)&a, sizeof a);
  listen(lfd, 1);
  int port = bound_port(lfd);
  char out[512], cmd[1024];
  snprintf(out, sizeof out, "%s/coap-client-tls.out", dir);
  snprintf(cmd, sizeof cmd, "exec coap-client-openssl -B 5 -u %s -k %s coaps+tcp://127.0.0.1:%d/hello >%s 2>&1", PSK_ID,
           PSK_KEY, port, out);
  pid_t pid = tls_test_spawn(cmd);
  struct pollfd p = { lfd, POLLIN, 0 };
  int fd = poll(&p, 1, 5000) == 1 ? accept(lfd, NULL, NULL) : -1;
  CHECK(fd >= 0, "coap-client connected over TCP");
  tc_tls_ctx *sc = psk_ctx(TC_TLS_SERVER, TC_TLS_STREAM);
  char err[256];
  tc_tls *s = tc_tls_new(sc, NULL, err, sizeof err);
  int answered = 0, sent_csm = 0;
  uint8_t acc[8192];
  size_t alen = 0;
  for (int i = 0; fd >= 0 && i < 60 && !answered; i++) {
    tcp_pump(s, fd, 100);
    if (tc_tls_get_state(s) == TC_TLS_OPEN && !sent_csm) {
      tc_tls_write(s, CSM, sizeof CSM);
      sent_csm = 1;
    }
    long n = tc_tls_read(s, acc + alen, sizeof acc - alen);
    if (n > 0) alen += (size_t)n;
    size_t fl;
    uint8_t code;
    const uint8_t *tok;
    unsigned tkl;
    while ((fl = frame(acc, alen, &code, &tok, &tkl)) > 0) {
      if (code == 0x01) { /* GET: 2.05 with our payload */
        uint8_t rsp[64];
        size_t k = 0;
        rsp[k++] = (uint8_t)((1 + 11) << 4 | tkl); /* Len: 0xFF + 11 bytes of payload */
        rsp[k++] = 0x45;
        memcpy(rsp + k, tok, tkl);
        k += tkl;
        rsp[k++] = 0xFF;
        memcpy(rsp + k, "tc-tls-resp", 11);
        k += 11;
        tc_tls_write(s, rsp, k);
        answered = 1;
      }
      memmove(acc, acc + fl, alen - fl);
      alen -= fl;
    }
    tcp_flush(s, fd);
  }
  for (int i = 0; fd >= 0 && i < 20 && !wait_exit(pid, 100); i++) {
    tcp_pump(s, fd, 10);
    tc_tls_read(s, acc, sizeof acc);
    tcp_flush(s, fd);
  }
  tc_tls_info in;
  tc_tls_get_info(s, &in);
  CHECK(answered, "coap-client's GET arrived over TLS: %s", tc_tls_errmsg(s));
  printf("tls-libcoap: coap-client-openssl over TLS: %s, ALPN \"%s\"\n", in.cipher, in.alpn);
  tls_test_stop(pid);
  FILE *f = fopen(out, "rb");
  char text[2048] = { 0 };
  if (f != NULL) {
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
  }
  CHECK(strstr(text, "tc-tls-resp") != NULL, "coap-client printed our payload: %s", text);
  if (fd >= 0) close(fd);
  close(lfd);
  tc_tls_free(s);
  tc_tls_ctx_free(sc);
}

void test_tls_libcoap(const char *dir) {
  if (system("command -v coap-client-openssl >/dev/null 2>&1 && command -v coap-server-openssl >/dev/null 2>&1") != 0) {
    const char *ci = getenv("CI");
    CHECK(ci == NULL || ci[0] == '\0' || strcmp(ci, "false") == 0 || strcmp(ci, "0") == 0,
          "CI requires libcoap's OpenSSL build (libcoap3-bin) for the interop tests");
    printf("tls-libcoap: SKIPPED: coap-client-openssl / coap-server-openssl not installed (libcoap3-bin)\n");
    return;
  }
  unsigned long before = tc_test_passed;
  int port = free_port_pair();
  dtls_client_vs_libcoap(port);
  libcoap_client_vs_dtls_server(dir);
  port = free_port_pair();
  tls_client_vs_libcoap(port);
  libcoap_client_vs_tls_server(dir);
  printf("tls-libcoap: %lu checks against coap-server-openssl / coap-client-openssl\n", tc_test_passed - before);
}

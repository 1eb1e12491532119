/*
 * test_tls_interop.c — tc_tls against real peers over loopback: `openssl s_server -rev` (our
 * client, certificates and PSK) and `openssl s_client` (our server). Loopback only. Without
 * the openssl tool the suite is skipped with a one-line reason, unless CI is set.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
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

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

pid_t tls_test_spawn(const char *cmd) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

void tls_test_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(-pid, SIGTERM);
  waitpid(pid, NULL, 0);
}

static int connect_retry(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 100; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    close(fd);
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  return -1;
}

static int flush_out(tc_tls *s, int fd) {
  uint8_t buf[16384];
  long n;
  while ((n = tc_tls_take_out(s, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (w <= 0) return -1;
      off += w;
    }
  }
  return 0;
}

/* Drive s over fd until `want` plaintext bytes arrived (want 0: until the handshake is over),
 * the peer closed, the session failed, or 5 s passed idle. Returns the bytes read into out. */
static size_t run(tc_tls *s, int fd, uint8_t *out, size_t cap, size_t want) {
  size_t got = 0;
  for (int idle = 0; idle < 50;) {
    if (flush_out(s, fd) != 0) break;
    long r;
    while ((r = tc_tls_read(s, out + got, cap - got)) > 0) got += (size_t)r;
    tc_tls_state st = tc_tls_get_state(s);
    if ((want > 0 && got >= want) || st >= TC_TLS_PEER_CLOSED || (want == 0 && st != TC_TLS_HANDSHAKING)) break;
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 100) <= 0) { idle++; continue; }
    uint8_t buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      long f = tc_tls_feed(s, buf + off, (size_t)(n - off));
      if (f < 0) { flush_out(s, fd); return got; }
      if (f == 0) { /* full: read before feeding more */
        long rr = tc_tls_read(s, out + got, cap - got);
        if (rr <= 0) return got;
        got += (size_t)rr;
      }
      off += f;
    }
  }
  flush_out(s, fd);
  return got;
}

static int have_openssl(void) { return system("openssl version >/dev/null 2>&1") == 0; }

/* Our client against `openssl s_server -rev` (it answers each line reversed). */
static void client_vs_s_server(const char *dir, int psk) {
  int port = free_port();
  char cmd[1024];
  if (psk)
    snprintf(cmd, sizeof cmd,
             "exec openssl s_server -accept 127.0.0.1:%d -naccept 1 -nocert -psk 73656372657450534b -psk_hint hint "
             "-tls1_2 -cipher PSK-AES128-CCM8 -alpn coap -rev -quiet >/dev/null 2>&1",
             port);
  else
    snprintf(cmd, sizeof cmd,
             "exec openssl s_server -accept 127.0.0.1:%d -naccept 1 -cert %s/srv.pem -key %s/srv.key -alpn coap -rev -quiet "
             ">/dev/null 2>&1",
             port, dir, dir);
  pid_t pid = tls_test_spawn(cmd);
  int fd = connect_retry(port);
  CHECK(fd >= 0, "connect to s_server on %d", port);
  if (fd < 0) { tls_test_stop(pid); return; }
  tc_tls_config cc;
  memset(&cc, 0, sizeof cc);
  cc.role = TC_TLS_CLIENT;
  cc.reject_unauthorized = 1;
  char path[512], *ca = NULL;
  static const uint8_t key[] = { 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x50, 0x53, 0x4b };
  if (psk) {
    cc.psk_identity = "Client_identity";
    cc.psk_key = key;
    cc.psk_key_len = sizeof key;
  } else {
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "rb");
    ca = calloc(1, 8192);
    cc.ca_len = f != NULL ? fread(ca, 1, 8191, f) : 0;
    if (f != NULL) fclose(f);
    cc.ca_pem = ca;
  }
  tc_tls_ctx *c = NULL;
  char err[256];
  CHECK_EQ(tc_tls_ctx_new(&cc, &c, err, sizeof err), 0, err);
  tc_tls *s = tc_tls_new(c, psk ? NULL : "localhost", err, sizeof err);
  uint8_t out[256];
  run(s, fd, out, sizeof out, 0); /* until the handshake is over */
  CHECK(tc_tls_get_state(s) == TC_TLS_OPEN, "interop %s: handshake with s_server: %s", psk ? "PSK" : "certs", tc_tls_errmsg(s));
  tc_tls_info in;
  tc_tls_get_info(s, &in);
  CHECK(strcmp(in.alpn, "coap") == 0, "s_server selected coap: '%s'", in.alpn);
  if (psk) CHECK(strcmp(in.cipher, "PSK-AES128-CCM8") == 0, "cipher %s", in.cipher);
  else CHECK(in.version == 0x0304 && in.verify_result == 0, "TLS 1.3 verified: %x %ld", in.version, in.verify_result);
  static const uint8_t line[] = "hello coap\n";
  CHECK_EQ(tc_tls_write(s, line, sizeof line - 1), sizeof line - 1, "write");
  size_t got = run(s, fd, out, sizeof out, sizeof line - 1);
  CHECK(got == sizeof line - 1 && memcmp(out, "paoc olleh\n", got) == 0, "s_server echoed reversed: %.*s", (int)got, out);
  tc_tls_close(s);
  flush_out(s, fd);
  close(fd);
  tc_tls_free(s);
  tc_tls_ctx_free(c);
  free(ca);
  tls_test_stop(pid);
}

/* `openssl s_client` against our server, verifying it with the test CA. */
static void server_vs_s_client(const char *dir, const pem_t *cert, const pem_t *key) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 1) == 0 &&
            getsockname(lfd, (struct sockaddr *)&a, &alen) == 0,
        "listen");
  char cmd[1024], outpath[512];
  snprintf(outpath, sizeof outpath, "%s/s_client.out", dir);
  snprintf(cmd, sizeof cmd,
           "echo hello-from-s_client | exec openssl s_client -connect 127.0.0.1:%d -CAfile %s/ca.pem -verify_return_error "
           "-verify_hostname localhost -servername localhost -alpn coap -quiet >%s 2>&1",
           ntohs(a.sin_port), dir, outpath);
  pid_t pid = tls_test_spawn(cmd);
  struct pollfd p = { lfd, POLLIN, 0 };
  int fd = poll(&p, 1, 5000) == 1 ? accept(lfd, NULL, NULL) : -1;
  CHECK(fd >= 0, "s_client connected");
  if (fd < 0) { close(lfd); tls_test_stop(pid); return; }
  tc_tls_config sc;
  memset(&sc, 0, sizeof sc);
  sc.role = TC_TLS_SERVER;
  sc.cert_pem = cert->pem; sc.cert_len = cert->len;
  sc.key_pem = key->pem; sc.key_len = key->len;
  sc.alpn = TC_TLS_ALPN_REQUIRE;
  tc_tls_ctx *c = NULL;
  char err[256];
  CHECK_EQ(tc_tls_ctx_new(&sc, &c, err, sizeof err), 0, err);
  tc_tls *s = tc_tls_new(c, NULL, err, sizeof err);
  uint8_t out[256];
  size_t got = run(s, fd, out, sizeof out, 20);
  CHECK(got == 20 && memcmp(out, "hello-from-s_client\n", 20) == 0, "our server read s_client's line (%zu): %s", got,
        tc_tls_errmsg(s));
  tc_tls_info in;
  tc_tls_get_info(s, &in);
  CHECK(strcmp(in.alpn, "coap") == 0 && strcmp(in.servername, "localhost") == 0, "alpn %s sni %s", in.alpn, in.servername);
  static const uint8_t reply[] = "reply-from-turbocoap\n";
  tc_tls_write(s, reply, sizeof reply - 1);
  tc_tls_close(s);
  flush_out(s, fd);
  run(s, fd, out, sizeof out, 1); /* s_client's close_notify */
  shutdown(fd, SHUT_WR);
  int status = 0;
  for (int i = 0; i < 100 && waitpid(pid, &status, WNOHANG) == 0; i++) {
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  close(fd);
  close(lfd);
  tls_test_stop(pid);
  FILE *f = fopen(outpath, "rb");
  char text[4096] = { 0 };
  if (f != NULL) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
  }
  CHECK(strstr(text, "reply-from-turbocoap") != NULL, "s_client printed our reply: %s", text);
  tc_tls_free(s);
  tc_tls_ctx_free(c);
}

void test_tls_interop(const char *dir) {
  if (!have_openssl()) {
    const char *ci = getenv("CI");
    CHECK(ci == NULL || ci[0] == '\0' || strcmp(ci, "false") == 0 || strcmp(ci, "0") == 0,
          "CI requires the openssl tool for the interop tests");
    printf("tls-interop: SKIPPED: the openssl command line tool is not available\n");
    return;
  }
  unsigned long before = tc_test_passed;
  client_vs_s_server(dir, 0);
  client_vs_s_server(dir, 1);
  pem_t cert = tls_test_load("srv.pem"), key = tls_test_load("srv.key");
  server_vs_s_client(dir, &cert, &key);
  free(cert.pem);
  free(key.pem);
  printf("tls-interop: %lu checks against openssl s_server / s_client\n", tc_test_passed - before);
}

/*
 * test_stream_tls.c — the connection driver (native/driver/stream.c, built with TC_WITH_TLS)
 * over tc_tls: test_stream.c's scenarios (requests both ways, 1 MiB BERT download, upload,
 * Observe, bounds, misbehaving peers) with every client/server connection under TLS, once
 * with PSK (TLS 1.2) and once with certificates made at test time by `openssl` (the client
 * verifies the server's chain and name). `make -C native tls-test` builds and runs it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "stream.h"
#include "tls.h"

unsigned long tc_test_passed, tc_test_failed;
extern tc_tls_ctx *g_stream_tls_srv, *g_stream_tls_cli, *g_stream_tls_bad;
void test_stream_tls_scenarios(void);

static char *load(const char *dir, const char *name, size_t *len) {
  char path[512];
  FILE *f;
  long n;
  char *p;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 1);
  *len = fread(p, 1, (size_t)n, f);
  p[*len] = '\0';
  fclose(f);
  return p;
}

static tc_tls_ctx *mk(const tc_tls_config *cfg) {
  tc_tls_ctx *c = NULL;
  char err[256];
  int rc = tc_tls_ctx_new(cfg, &c, err, sizeof err);
  CHECK(rc == 0 && c != NULL, "tc_tls_ctx_new: %d %s", rc, err);
  if (c == NULL) exit(1);
  return c;
}

static unsigned long passed_before;

static void scenarios(const char *what) {
  unsigned long f0 = tc_test_failed;
  passed_before = tc_test_passed;
  test_stream_tls_scenarios();
  printf("stream-tls (%s): %lu passed, %lu failed\n", what, tc_test_passed - passed_before,
         tc_test_failed - f0);
}

int main(void) {
  static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  char dir[64], cmd[2048];
  tc_tls_config sc, cc;
  char *ca, *crt, *k;
  size_t ca_len, crt_len, k_len;
  if (system("openssl version >/dev/null 2>&1") != 0) {
    const char *ci = getenv("CI");
    if (ci == NULL || ci[0] == '\0' || strcmp(ci, "0") == 0 || strcmp(ci, "false") == 0) {
      printf("stream-tls-tests: SKIPPED (CI is not set): the openssl command line tool makes the test certificates\n");
      return 0;
    }
    fprintf(stderr, "stream-tls-tests: the openssl command line tool is required with CI set\n");
    return 1;
  }
  /* PSK (TLS 1.2) */
  memset(&sc, 0, sizeof sc);
  sc.role = TC_TLS_SERVER;
  memset(&cc, 0, sizeof cc);
  cc.role = TC_TLS_CLIENT;
  cc.psk_identity = "device-1";
  cc.psk_key = key;
  cc.psk_key_len = sizeof key;
  g_stream_tls_srv = mk(&sc);
  CHECK_EQ(tc_tls_ctx_add_psk(g_stream_tls_srv, "device-1", key, sizeof key), 0, "add_psk");
  g_stream_tls_cli = mk(&cc);
  {
    static const uint8_t wrong[16] = {9};
    cc.psk_key = wrong;
    g_stream_tls_bad = mk(&cc);
  }
  scenarios("PSK");
  tc_tls_ctx_free(g_stream_tls_srv);
  tc_tls_ctx_free(g_stream_tls_cli);
  tc_tls_ctx_free(g_stream_tls_bad);
  /* certificates: an EC P-256 CA and a server leaf for localhost */
  snprintf(dir, sizeof dir, "/tmp/tc-stream-tls-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(cmd, sizeof cmd,
           "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout ca.key -out ca.pem -days 2 -subj /CN=tc-stream-ca -addext "
           "basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
           "2>/dev/null && printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
           "> srv.ext && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout srv.key -out srv.csr -subj /CN=localhost 2>/dev/null && openssl x509 -req "
           "-in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile srv.ext -out "
           "srv.pem 2>/dev/null",
           dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "stream-tls-tests: openssl could not make the certificates\n");
    return 2;
  }
  ca = load(dir, "ca.pem", &ca_len);
  crt = load(dir, "srv.pem", &crt_len);
  k = load(dir, "srv.key", &k_len);
  memset(&sc, 0, sizeof sc);
  sc.role = TC_TLS_SERVER;
  sc.cert_pem = crt;
  sc.cert_len = crt_len;
  sc.key_pem = k;
  sc.key_len = k_len;
  memset(&cc, 0, sizeof cc);
  cc.role = TC_TLS_CLIENT;
  cc.ca_pem = ca;
  cc.ca_len = ca_len;
  cc.reject_unauthorized = 1;
  g_stream_tls_srv = mk(&sc);
  g_stream_tls_cli = mk(&cc);
  cc.ca_pem = NULL; /* the system's trust anchors: the test CA is not among them */
  cc.ca_len = 0;
  g_stream_tls_bad = mk(&cc);
  scenarios("certificates");
  tc_tls_ctx_free(g_stream_tls_srv);
  tc_tls_ctx_free(g_stream_tls_cli);
  tc_tls_ctx_free(g_stream_tls_bad);
  free(ca);
  free(crt);
  free(k);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("stream-tls-tests: %lu passed, %lu failed\n", tc_test_passed, tc_test_failed);
  return tc_test_failed == 0 ? 0 : 1;
}

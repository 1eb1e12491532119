/* tls_test.h — what the two files of the TLS tests share. */
#ifndef TC_TLS_TEST_H
#define TC_TLS_TEST_H
#include <stddef.h>

typedef struct { char *pem; size_t len; } pem_t;
/* A file of the test's certificate directory, read whole (NUL-terminated); exits on failure. */
pem_t tls_test_load(const char *name);
/* The interop suite against the openssl tool (test_tls_interop.c). */
void test_tls_interop(const char *dir);
/* TLS and DTLS against libcoap's OpenSSL build (test_tls_libcoap.c). */
void test_tls_libcoap(const char *dir);
/* DTLS 1.2 through the same layer (test_dtls.c). */
void test_dtls(void);
#endif

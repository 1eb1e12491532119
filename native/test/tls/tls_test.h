/* tls_test.h — what the two files of the TLS tests share. */
#ifndef TC_TLS_TEST_H
#define TC_TLS_TEST_H
#include <stddef.h>
#include <sys/types.h>

typedef struct { char *pem; size_t len; } pem_t;
/* A file of the test's certificate directory, read whole (NUL-terminated); exits on failure. */
pem_t tls_test_load(const char *name);
/* Runs cmd under /bin/sh in a process group of its own; returns its pid (test_tls_interop.c). */
pid_t tls_test_spawn(const char *cmd);
/* Ends the process group of tls_test_spawn's pid (SIGTERM) and reaps it; pid <= 0: nothing. */
void tls_test_stop(pid_t pid);
/* The interop suite against the openssl tool (test_tls_interop.c). */
void test_tls_interop(const char *dir);
/* TLS and DTLS against libcoap's OpenSSL build (test_tls_libcoap.c). */
void test_tls_libcoap(const char *dir);
/* DTLS 1.2 through the same layer (test_dtls.c). */
void test_dtls(void);
#endif

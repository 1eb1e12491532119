/* test_main.c — runs the turbocoap C unit tests and prints the summary line. */
#include <stdio.h>

#include "test.h"

int test_ep_run(void); /* test_ep.c: prints its own summary, non-zero on failure */
void test_blockwise(void); /* test_blockwise.c */
void test_observe(void);   /* test_observe.c */
void test_blockwise_client(void); /* test_blockwise_client.c */
void test_srv(void);       /* test_srv.c */
void test_harden(void);    /* test_harden.c */
void test_seam(void);      /* test_seam.c */
void test_dgram(void);     /* test_dgram.c: the datagram driver (native/driver) */
void test_unreachable_ep(void); /* test_unreachable.c: tc_ep_unreachable */
void test_conn(void);      /* test_conn.c */
void test_stream(void);    /* test_stream.c: the connection driver (native/driver) */

unsigned long tc_test_passed, tc_test_failed;

int main(void) {
  test_codec();
  test_deframer();
  test_options();
  test_blockwise();
  test_observe();
  test_blockwise_client();
  test_srv();
  test_harden();
  test_seam();
  test_dgram();
  test_unreachable_ep();
  test_conn();
  test_stream();
  printf("c-tests: %lu passed, %lu failed\n", tc_test_passed, tc_test_failed);
  int ep_failed = test_ep_run();
  return tc_test_failed == 0 && ep_failed == 0 ? 0 : 1;
}

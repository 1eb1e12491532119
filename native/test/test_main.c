/* test_main.c — runs the turbocoap C unit tests and prints the summary line. */
#include <stdio.h>

#include "test.h"

unsigned long tc_test_passed, tc_test_failed;

int main(void) {
  test_codec();
  test_deframer();
  test_options();
  printf("c-tests: %lu passed, %lu failed\n", tc_test_passed, tc_test_failed);
  return tc_test_failed == 0 ? 0 : 1;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minimal TAP assertions for the unit tests: each failure prints the expression and line. */
#ifndef KC_TEST_H
#define KC_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int test_n, test_failed;

#define CHECK(expr)                                                                          \
	do {                                                                                 \
		test_n++;                                                                    \
		if (expr) {                                                                  \
			printf("ok %d - %s\n", test_n, #expr);                               \
		} else {                                                                     \
			printf("not ok %d - %s (%s:%d)\n", test_n, #expr, __FILE__, __LINE__); \
			test_failed++;                                                       \
		}                                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                                       \
	do {                                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);                          \
		test_n++;                                                                    \
		if (_a == _b) {                                                              \
			printf("ok %d - %s == %s\n", test_n, #a, #b);                        \
		} else {                                                                     \
			printf("not ok %d - %s == %s: %lld != %lld (%s:%d)\n", test_n, #a,   \
			       #b, _a, _b, __FILE__, __LINE__);                              \
			test_failed++;                                                       \
		}                                                                            \
	} while (0)

static inline int test_done(void)
{
	printf("1..%d\n%d passed, %d failed\n", test_n, test_n - test_failed, test_failed);
	return test_failed ? 1 : 0;
}

#endif

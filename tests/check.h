/*
 * check.h - tiny unit-test macros: each failed check prints file:line and
 * the test keeps going; main returns the failure count as its status.
 */
#ifndef GPUPV_CHECK_H
#define GPUPV_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		check_failures++;					\
	}								\
} while (0)

#define CHECK_EQ_U(a, b) do {						\
	unsigned long long a_ = (unsigned long long)(a);		\
	unsigned long long b_ = (unsigned long long)(b);		\
	if (a_ != b_) {							\
		fprintf(stderr, "%s:%d: %s == %llu, expected %llu\n",	\
		    __FILE__, __LINE__, #a, a_, b_);			\
		check_failures++;					\
	}								\
} while (0)

#define CHECK_DONE() do {						\
	if (check_failures)						\
		fprintf(stderr, "%d check(s) failed\n", check_failures);\
	return check_failures ? 1 : 0;					\
} while (0)

#endif

/* harness.h - a plain unit test runner: TEST() registers a test, CHECK*()
 * fail it with file:line. main.c runs them and prints "N passed, N failed". */
#ifndef STOREFS_TEST_HARNESS_H
#define STOREFS_TEST_HARNESS_H

#include "common/err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file);
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                                 \
	static void name(void);                                                                    \
	__attribute__((constructor)) static void register_##name(void)                             \
	{                                                                                          \
		test_register(#name, name, __FILE__);                                              \
	}                                                                                          \
	static void name(void)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			test_fail(__FILE__, __LINE__, "check failed: %s", #cond);                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_MSG(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			test_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* expr must return 0; otherwise fails with the recorded error message. */
#define CHECK_OK(expr)                                                                             \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != 0) {                                                                    \
			test_fail(__FILE__, __LINE__, "%s returned %d (%s)", #expr, rc_,           \
				  sf_errmsg(rc_));                                                 \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* expr must return exactly `code` (a negative errno). */
#define CHECK_ERR(expr, code)                                                                      \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != (code)) {                                                               \
			test_fail(__FILE__, __LINE__, "%s returned %d, expected %d", #expr, rc_,   \
				  (code));                                                         \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long a_ = (long long)(a), b_ = (long long)(b);                                \
		if (a_ != b_) {                                                                    \
			test_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #a, a_, b_);    \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (strcmp(a_, b_) != 0) {                                                         \
			test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, a_,     \
				  b_);                                                             \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(a, b, len) CHECK_MSG(memcmp((a), (b), (len)) == 0, "%s differs from %s", #a, #b)

/* The parsed tests/data/vectors.json (the reference test vectors),
 * loaded once; NULL fails the calling test. */
const cJSON *vectors(void);
/* vectors()->path (e.g. "directories", "spec"), or NULL. */
const cJSON *vectors_get(const char *section, const char *sub);
/* The string field `key` of `o`, or "" if absent or not a string. */
const char *vstr(const cJSON *o, const char *key);
/* Decodes a hex string field into a malloc'd buffer (freed by caller). */
uint8_t *hex_alloc(const char *hex, size_t *len);

#endif

/* main.c - runs the registered unit tests; an optional argument selects the
 * tests whose name or file name contains it (none: exit 2). Ends with "N passed, N failed". */
#include "harness.h"

#include "common/encoding.h"
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct test {
	const char *name, *file;
	test_fn fn;
};

static struct test tests[1024];
static size_t n_tests;
static bool current_failed;

void test_register(const char *name, test_fn fn, const char *file)
{
	if (n_tests == sizeof(tests) / sizeof(tests[0])) {
		fprintf(stderr, "too many tests\n");
		abort();
	}
	tests[n_tests++] = (struct test){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	current_failed = true;
	fprintf(stderr, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static cJSON *vectors_root;

const cJSON *vectors(void)
{
	const char *path = getenv("STOREFS_VECTORS");
	FILE *f;
	char *buf;
	long len;

	if (vectors_root)
		return vectors_root;
	f = fopen(path ? path : VECTORS_JSON, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
		buf[len] = '\0';
		vectors_root = cJSON_Parse(buf);
	}
	free(buf);
	fclose(f);
	return vectors_root;
}

const cJSON *vectors_get(const char *section, const char *sub)
{
	const cJSON *v = vectors();

	if (!v)
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(v, section);
	if (v && sub)
		v = cJSON_GetObjectItemCaseSensitive(v, sub);
	return v;
}

const char *vstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

uint8_t *hex_alloc(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *buf = malloc(n + 1);

	if (!buf || hex_decode(hex, strlen(hex), buf, n) < 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* A test is selected by a part of its name or of its file's name
 * ("test_cli" runs tests/unit/test_cli.c). */
static bool selected(const struct test *t, const char *filter)
{
	const char *file = strrchr(t->file, '/');

	return strstr(t->name, filter) || strstr(file ? file + 1 : t->file, filter);
}

int main(int argc, char **argv)
{
	size_t passed = 0, failed = 0;

	/* Failure paths log on purpose; STOREFS_TEST_LOG=1 shows them. */
	if (!getenv("STOREFS_TEST_LOG"))
		log_set_level(LOG_SILENT);

	for (size_t i = 0; i < n_tests; i++) {
		if (argc > 1 && !selected(&tests[i], argv[1]))
			continue;
		current_failed = false;
		sf_err_clear();
		tests[i].fn();
		if (current_failed) {
			failed++;
			printf("FAIL %s (%s)\n", tests[i].name, tests[i].file);
		} else {
			passed++;
			printf("ok   %s\n", tests[i].name);
		}
		fflush(stdout);
	}
	cJSON_Delete(vectors_root);
	if (passed + failed == 0) {
		/* A typo in the name must not look like a green run. */
		printf("unit: no test name contains '%s'\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	printf("unit: %zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}

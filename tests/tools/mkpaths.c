/* mkpaths.c - registers many tiny store paths fast, for root listing tests.
 *
 *	mkpaths STORE N [PREFIX]
 *
 * Stores one small blob and registers N PathInfos "<hash>-PREFIX<i>" whose
 * root is that file (made-up NAR hashes: the filesystem does not read
 * them). Prints each basename on stdout. Exit 0, or 1 with a message. */
#include "backends/registry.h"
#include "common/err.h"
#include "store/path_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int register_one(struct store *st, const struct node *file, const char *prefix,
			unsigned long i)
{
	struct path_info *pi;
	uint8_t sha[32] = {0};
	char name[STORE_PATH_MAX_NAME + 1], base[STORE_PATH_MAX_BASENAME + 1];
	int rc;

	snprintf(name, sizeof(name), "%s%lu", prefix, i);
	memcpy(sha, &i, sizeof(i));
	memcpy(sha + 16, prefix, strlen(prefix) < 16 ? strlen(prefix) : 16);
	rc = path_info_new(&pi);
	if (rc)
		return rc;
	rc = store_path_make_source(sha, name, NULL, 0, false, &pi->path);
	if (!rc)
		rc = path_info_set_root(pi, file);
	if (!rc) {
		pi->nar_size = 128;
		memcpy(pi->nar_sha256, sha, 32);
		rc = path_info_service_put(st->paths, pi);
	}
	if (!rc) {
		store_path_basename(&pi->path, base);
		puts(base);
	}
	path_info_free(pi);
	return rc;
}

int main(int argc, char **argv)
{
	static const char content[] = "tiny\n";
	struct store *st;
	struct node file = {.kind = NODE_FILE, .size = sizeof(content) - 1};
	unsigned long n;
	int rc;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: mkpaths STORE N [PREFIX]\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 10);
	rc = store_open(argv[1], STORE_OPEN_CREATE | STORE_OPEN_IMPORT | STORE_OPEN_WAIT, &st);
	if (rc) {
		fprintf(stderr, "mkpaths: %s\n", sf_errmsg(rc));
		return 1;
	}
	rc = blob_service_put(st->blobs, content, file.size, &file.digest);
	for (unsigned long i = 0; rc == 0 && i < n; i++)
		rc = register_one(st, &file, argc > 3 ? argv[3] : "p", i);
	if (rc)
		fprintf(stderr, "mkpaths: %s\n", sf_errmsg(rc));
	store_free(st);
	return rc ? 1 : 0;
}

/* store_export.c - writes a store's objects out as plain files, for test
 * peers that serve them (the in-memory gRPC servers of t62-grpc-client).
 *
 *	store_export STORE OUTDIR
 *
 * OUTDIR/paths/<40 hex of the store path digest>	PathInfo message bytes
 * OUTDIR/dirs/<64 hex BLAKE3>			Directory message bytes
 * OUTDIR/blobs/<64 hex BLAKE3>			the blob's bytes
 * for every listed path and everything its root reaches. */
#include "backends/registry.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct exporter {
	struct store *st;
	const char *out;
};

static int write_file(const char *dir, const char *kind, const char *name, const void *buf,
		      size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, kind, name);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(buf, 1, len, f) != len) || fclose(f) != 0)
		return sf_err(-EIO, "cannot write '%s'", path);
	return 0;
}

static int export_blob(struct exporter *e, const struct b3_digest *d)
{
	char hex[B3_HEX_LEN + 1];
	struct blob_reader *r;
	uint8_t *buf;
	int rc = blob_service_open_read(e->st->blobs, d, &r);

	if (rc < 0)
		return rc;
	buf = malloc(r->size + 1);
	rc = buf ? blob_reader_pread_full(r, buf, r->size, 0) : -ENOMEM;
	b3_digest_to_hex(d, hex);
	if (rc == 0)
		rc = write_file(e->out, "blobs", hex, buf, r->size);
	free(buf);
	blob_reader_close(r);
	return rc;
}

static int export_dir(void *ctx, const struct b3_digest *digest, const struct directory *d)
{
	struct exporter *e = ctx;
	char hex[B3_HEX_LEN + 1];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = directory_encode(d, &buf, &len);

	b3_digest_to_hex(digest, hex);
	if (rc == 0)
		rc = write_file(e->out, "dirs", hex, buf, len);
	free(buf);
	for (size_t i = 0; rc == 0 && i < d->count; i++)
		if (d->nodes[i].kind == NODE_FILE)
			rc = export_blob(e, &d->nodes[i].digest);
	return rc;
}

static int export_path(void *ctx, const struct path_info *pi, uint64_t cursor)
{
	struct exporter *e = ctx;
	char hex[2 * STORE_PATH_DIGEST_LEN + 1];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = path_info_encode(pi, &buf, &len);

	for (int i = 0; i < STORE_PATH_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", pi->path.digest[i]);
	if (rc == 0)
		rc = write_file(e->out, "paths", hex, buf, len);
	free(buf);
	if (rc == 0 && pi->root.kind == NODE_DIRECTORY)
		rc = dir_service_get_recursive(e->st->dirs, &pi->root.digest, export_dir, e);
	if (rc == 0 && pi->root.kind == NODE_FILE)
		rc = export_blob(e, &pi->root.digest);
	return rc;
}

int main(int argc, char **argv)
{
	const char *kinds[] = {"", "/paths", "/dirs", "/blobs"};
	struct exporter e = {.out = argc == 3 ? argv[2] : NULL};
	char path[4096];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: store_export STORE OUTDIR\n");
		return 2;
	}
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", e.out, kinds[i]);
		mkdir(path, 0755);
	}
	rc = store_open(argv[1], STORE_OPEN_READONLY, &e.st);
	if (rc == 0)
		rc = path_info_service_list(e.st->paths, 0, export_path, &e);
	store_free(e.st);
	if (rc < 0) {
		fprintf(stderr, "store_export: %s\n", sf_errmsg(rc));
		return 1;
	}
	return 0;
}

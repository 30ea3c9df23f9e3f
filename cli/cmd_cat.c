/* cmd_cat.c - `storefs cat`: write a file of a store path to standard output. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"

#include <stdlib.h>
#include <unistd.h>

#define CAT_CHUNK (256u << 10)

/* Streams the blob to stdout, hashing it on the way. */
static int cat_copy(struct blob_reader *r, uint64_t size, uint8_t *buf, struct b3_digest *out)
{
	struct b3_hasher h;
	uint64_t off = 0;
	int rc = 0;

	b3_hasher_init(&h);
	while (off < size && rc == 0) {
		size_t len = size - off < CAT_CHUNK ? (size_t)(size - off) : CAT_CHUNK;

		rc = blob_reader_pread_full(r, buf, len, off);
		if (rc == 0) {
			b3_hasher_update(&h, buf, len);
			rc = cli_write_all(STDOUT_FILENO, buf, len);
		}
		off += len;
	}
	b3_hasher_final(&h, out);
	return rc;
}

static int cat_node(struct store *st, const struct cli_target *t, const char *arg)
{
	struct blob_reader *r;
	struct b3_digest got;
	uint8_t *buf;
	int rc;

	if (t->node.kind == NODE_DIRECTORY)
		return sf_err(-EISDIR, "'%s' is a directory", arg);
	if (t->node.kind == NODE_SYMLINK)
		return sf_err(-EINVAL, "'%s' is a symlink to '%.*s'", arg, (int)t->node.target_len,
			      t->node.target);
	rc = blob_service_open_read(st->blobs, &t->node.digest, &r);
	if (rc == -ENOENT)
		return sf_err(-EIO, "the contents of '%s' are missing from the store", arg);
	if (rc < 0)
		return rc;
	buf = malloc(CAT_CHUNK);
	if (!buf)
		rc = -ENOMEM;
	else if (r->size != t->node.size)
		rc = sf_err(-EIO, "the contents of '%s' have %llu bytes instead of %llu", arg,
			    (unsigned long long)r->size, (unsigned long long)t->node.size);
	else
		rc = cat_copy(r, r->size, buf, &got);
	if (rc == 0 && !b3_digest_eq(&got, &t->node.digest))
		rc = sf_err(-EIO, "the contents of '%s' do not match their digest", arg);
	free(buf);
	blob_reader_close(r);
	return rc;
}

static int cat_run(struct cli_ctx *c)
{
	struct cli_target t;
	int rc = cli_resolve(c->store, c->argv[0], &t);

	if (rc == 0)
		rc = cat_node(c->store, &t, c->argv[0]);
	cli_target_release(&t);
	return rc;
}

const struct cli_cmd cmd_cat = {
    .name = "cat",
    .summary = "write a file of a store path to standard output",
    .operands = "STOREPATH[/sub/path]",
    .operand = "STOREPATH/sub/path",
    .min_operands = 1,
    .max_operands = 1,
    .about = "Writes the contents of a regular file in a store path to standard output.\n"
	     "STOREPATH is /nix/store/<hash>-<name> or just <hash>-<name>; without\n"
	     "/sub/path the store path itself must be a file. The contents are checked\n"
	     "against the file's recorded size and BLAKE3 digest; a mismatch is an error\n"
	     "(after the bytes were written). Symlinks are not followed.\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .run = cat_run,
};

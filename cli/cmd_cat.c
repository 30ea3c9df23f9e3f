/* cmd_cat.c - `storefs cat`: write a file of a store path to standard output. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"

#include <stdlib.h>
#include <unistd.h>

static const struct cli_cmd cmd = {
    "cat",
    "cat [--store URL|DIR] STOREPATH[/sub/path]",
    "Writes the contents of a regular file in a store path to standard output.\n"
    "STOREPATH is /nix/store/<hash>-<name> or just <hash>-<name>; without\n"
    "/sub/path the store path itself must be a file. The contents are checked\n"
    "against the file's recorded size and BLAKE3 digest; a mismatch is an error\n"
    "(after the bytes were written). Symlinks are not followed.\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs)\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {0},
};

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

int cmd_cat(int argc, char **argv)
{
	const char *url = NULL;
	struct store *st = NULL;
	struct cli_target t;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "h", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind == argc)
		return cli_usage(&cmd, "no STOREPATH/sub/path given");
	if (argc - optind > 1)
		return cli_usage(&cmd, "only one STOREPATH/sub/path is allowed");
	rc = cli_open_store(url, STORE_OPEN_READONLY, &st);
	if (rc == 0) {
		rc = cli_resolve(st, argv[optind], &t);
		if (rc == 0)
			rc = cat_node(st, &t, argv[optind]);
		cli_target_release(&t);
	}
	store_free(st);
	return rc < 0 ? cli_fail(&cmd, rc) : CLI_OK;
}

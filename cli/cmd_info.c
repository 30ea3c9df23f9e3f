/* cmd_info.c - `storefs info`: what a store holds and what it costs. */
#include "backends/registry.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "common/err.h"
#include "store/stats.h"

#include <inttypes.h>
#include <stdio.h>

static const struct cli_cmd cmd = {
    "info",
    "info [--store URL|DIR] [--json]",
    "Shows the store's format and what it holds:\n"
    "\n"
    "  format: <the store's format>\n"
    "  paths: <count> (<bytes> of NARs)\n"
    "  directories: <count> (<bytes> encoded)\n"
    "  blobs: <count> (<bytes>)\n"
    "  file-bytes: <bytes>      the sizes of all regular files of all paths'\n"
    "                           trees, each occurrence counted\n"
    "  dedup-saved: <bytes>     file-bytes minus the bytes of the blobs paths\n"
    "                           reach: what storing each content once saves\n"
    "  db-bytes: <bytes>        the size of the metadata database (LMDB)\n"
    "  orphans: <n> directories, <n> blobs (<bytes>)   stored, reached by no\n"
    "                           path (what `storefs gc` would free with every\n"
    "                           path rooted)\n"
    "\n"
    "Options:\n"
    "  --store URL|DIR  the store (default: $STOREFS_STORE, else /var/lib/storefs\n"
    "                   as root, else $XDG_DATA_HOME/storefs)\n"
    "  --json           print one JSON object with the keys format, paths,\n"
    "                   narBytes, directories, directoryBytes, blobs, blobBytes,\n"
    "                   fileBytes, dedupSaved, dbBytes, orphanDirectories,\n"
    "                   orphanBlobs, orphanBlobBytes\n"
    "  -h, --help       show this help\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n",
};

enum { OPT_JSON = 256 };

static const struct option longopts[] = {
    {"store", required_argument, NULL, CLI_OPT_STORE},
    {"help", no_argument, NULL, CLI_OPT_HELP},
    {"json", no_argument, NULL, OPT_JSON},
    {0},
};

static uint64_t saved(const struct store_stats *s)
{
	uint64_t reached = s->blob_bytes - s->orphan_blob_bytes;

	return s->file_bytes > reached ? s->file_bytes - reached : 0;
}

static void print_text(const char *format, uint64_t db, const struct store_stats *s)
{
	printf("format: %s\n", format);
	printf("paths: %" PRIu64 " (%" PRIu64 " bytes of NARs)\n", s->paths, s->nar_bytes);
	printf("directories: %" PRIu64 " (%" PRIu64 " bytes encoded)\n", s->dirs, s->dir_bytes);
	printf("blobs: %" PRIu64 " (%" PRIu64 " bytes)\n", s->blobs, s->blob_bytes);
	printf("file-bytes: %" PRIu64 "\n", s->file_bytes);
	printf("dedup-saved: %" PRIu64 "\n", saved(s));
	printf("db-bytes: %" PRIu64 "\n", db);
	printf("orphans: %" PRIu64 " directories, %" PRIu64 " blobs (%" PRIu64 " bytes)\n",
	       s->orphan_dirs, s->orphan_blobs, s->orphan_blob_bytes);
}

static void print_json(const char *format, uint64_t db, const struct store_stats *s)
{
	fputs("{\"format\":", stdout);
	json_cstring(stdout, format);
	printf(",\"paths\":%" PRIu64 ",\"narBytes\":%" PRIu64 ",\"directories\":%" PRIu64
	       ",\"directoryBytes\":%" PRIu64 ",\"blobs\":%" PRIu64 ",\"blobBytes\":%" PRIu64
	       ",\"fileBytes\":%" PRIu64 ",\"dedupSaved\":%" PRIu64 ",\"dbBytes\":%" PRIu64
	       ",\"orphanDirectories\":%" PRIu64 ",\"orphanBlobs\":%" PRIu64
	       ",\"orphanBlobBytes\":%" PRIu64 "}\n",
	       s->paths, s->nar_bytes, s->dirs, s->dir_bytes, s->blobs, s->blob_bytes,
	       s->file_bytes, saved(s), db, s->orphan_dirs, s->orphan_blobs, s->orphan_blob_bytes);
}

static int info(struct store *st, bool json)
{
	struct store_stats s;
	char format[128];
	uint64_t db = 0;
	int rc = store_describe(st, format, sizeof(format), &db);

	if (rc == 0)
		rc = store_stats_collect(st, &s);
	if (rc == -ENOTSUP)
		return sf_err(rc, "store '%s' cannot describe its storage", st->location);
	if (rc < 0)
		return rc;
	json ? print_json(format, db, &s) : print_text(format, db, &s);
	return cli_flush_stdout();
}

int cmd_info(int argc, char **argv)
{
	const char *url = NULL;
	struct store *st = NULL;
	bool json = false;
	int ch, rc;

	while ((ch = cli_getopt(&cmd, argc, argv, "h", longopts)) != -1) {
		switch (ch) {
		case CLI_OPT_HELP:
			return cli_help(&cmd);
		case CLI_OPT_STORE:
			url = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage(&cmd, "unexpected argument '%s'", argv[optind]);
	rc = cli_open_store(url, STORE_OPEN_READONLY, &st);
	if (rc == 0) {
		rc = info(st, json);
		store_free(st);
	}
	return rc < 0 ? cli_fail(&cmd, rc) : CLI_OK;
}

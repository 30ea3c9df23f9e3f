/* cmd_info.c - `storefs info`: what a store holds and what it costs. */
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "common/err.h"
#include "store/stats.h"

#include <inttypes.h>
#include <stdio.h>

struct info_opts {
	bool json;
};

static const struct cli_opt info_options[] = {
    CLI_BOOL(0, "json", struct info_opts, json,
	     "print one JSON object with the keys format, paths, narBytes, directories, "
	     "directoryBytes, blobs, blobBytes, fileBytes, dedupSaved, dbBytes, "
	     "orphanDirectories, orphanBlobs, orphanBlobBytes"),
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

static int info_run(struct cli_ctx *c)
{
	const struct info_opts *o = c->opts;

	return info(c->store, o->json);
}

const struct cli_cmd cmd_info = {
    .name = "info",
    .summary = "show what the store holds: counts, bytes, dedup, orphans",
    .about = "Shows the store's format and what it holds:\n"
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
	     "                           path rooted)\n",
    .flags = CLI_STORE | CLI_OPENS_STORE,
    .open_flags = STORE_OPEN_READONLY,
    .options = info_options,
    .opts_size = sizeof(struct info_opts),
    .run = info_run,
};

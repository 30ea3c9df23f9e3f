/* cli_fs.c - a store served as a filesystem, for mount and virtiofs. */
#include "cli/cli_fs.h"

#include "cli/cli.h"
#include "common/log.h"
#include "store/root_nodes_path_info.h"
#include "store/store_gc.h"

static void log_table_stats(struct fs *fs)
{
	struct inode_table_stats s;

	fs_stats(fs, &s);
	log_info("inode table: %llu inodes, %llu bytes (%.1f bytes per inode), %llu directories "
		 "populated",
		 (unsigned long long)s.inodes, (unsigned long long)s.bytes,
		 s.inodes ? (double)s.bytes / (double)s.inodes : 0.0,
		 (unsigned long long)s.populated);
}

static int pin_temp_root(void *ctx, const struct store_path *p)
{
	return store_temp_root_add(ctx, p);
}

int cli_fs_serve(struct store *st, const struct fs_config *fc, cli_fs_transport_fn transport,
		 const void *cfg, unsigned flags)
{
	struct fs_config c = *fc;
	struct root_nodes *rn = NULL;
	struct fs *fs = NULL;
	int rc = root_nodes_path_info_new(st->paths, &rn);

	c.usage = cli_store_usage;
	c.usage_ctx = st;
	if (!rc && (flags & CLI_FS_PIN))
		root_nodes_path_info_set_pin(rn, pin_temp_root, st);
	if (!rc)
		rc = fs_new(st->blobs, st->dirs, rn, &c, &fs);
	if (!rc)
		rc = transport(fs, cfg);
	if (fs && (flags & CLI_FS_STATS))
		log_table_stats(fs);
	path_info_service_free(st->paths);
	st->paths = NULL;
	fs_free(fs);
	root_nodes_free(rn);
	store_free(st);
	return rc;
}

/* cli_fs.h - what `storefs mount` and `storefs virtiofs` share: a store
 * served as fs/'s filesystem through one transport (FUSE, virtio-fs). */
#ifndef STOREFS_CLI_FS_H
#define STOREFS_CLI_FS_H

#include "fs/fs.h"
#include "store/store.h"

/* A transport: serves `fs` with its configuration `cfg` until it is done
 * (unmounted, the VM gone, a signal); 0 or a negative errno with a message. */
typedef int (*cli_fs_transport_fn)(struct fs *fs, const void *cfg);

enum cli_fs_flags {
	CLI_FS_PIN = 1 << 0,   /* every path looked up is a temporary GC root (docs/gc.md) */
	CLI_FS_STATS = 1 << 1, /* log the inode table's size at the end */
};

/* Builds the root nodes and the filesystem (configured by `fc`, its usage
 * numbers from the store) over `st`, serves it with `transport(fs, cfg)`
 * and tears everything down, `st` included, in the order the watch
 * contract needs: the PathInfo service (ending its watches) first, then
 * the filesystem and the root nodes, then the rest. */
int cli_fs_serve(struct store *st, const struct fs_config *fc, cli_fs_transport_fn transport,
		 const void *cfg, unsigned flags);

#endif

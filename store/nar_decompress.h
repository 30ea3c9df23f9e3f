/* nar_decompress.h - the compressions of binary cache NAR files (nix.md
 * §3.1, the narinfo "Compression:" field) and a streaming decompressor
 * that turns such a file back into a NAR stream, with fixed-size buffers.
 * Each reader belongs to one thread at a time. */
#ifndef STOREFS_NAR_DECOMPRESS_H
#define STOREFS_NAR_DECOMPRESS_H

#include "store/nar_ingest.h"

enum nar_compression { NAR_COMP_NONE, NAR_COMP_XZ, NAR_COMP_ZSTD, NAR_COMP_BZIP2 };

/* Maps a narinfo Compression value: "none" and "" are none, "xz", "zstd",
 * "bzip2" (also what a missing value means). -EINVAL for anything else. */
int nar_compression_parse(const char *label, enum nar_compression *out);
/* "none", "xz", "zstd", "bzip2". */
const char *nar_compression_name(enum nar_compression c);

/* A reader that decompresses what `src` yields. Trailing bytes after the
 * compressed data, corrupt data and truncation are -EIO with a message;
 * `src`'s own errors are passed up unchanged. */
struct nar_decomp;

int nar_decomp_new(enum nar_compression c, nar_read_fn src, void *src_ctx, struct nar_decomp **out);
/* A nar_read_fn; ctx is the struct nar_decomp. */
int nar_decomp_read(void *decomp, void *buf, size_t len, size_t *n);
void nar_decomp_free(struct nar_decomp *d);

#endif

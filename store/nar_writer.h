/* nar_writer.h - emitting NAR tokens (docs/nar.md §1-3) into a sink that hashes
 * (SHA-256), counts and optionally forwards the bytes. Shared by the NAR
 * renderer and by the importer, which computes a tree's NAR hash while it
 * reads the files once. */
#ifndef STOREFS_NAR_WRITER_H
#define STOREFS_NAR_WRITER_H

#include "store/nar.h"

#include <openssl/evp.h>
#include <stdbool.h>

struct nar_writer {
	EVP_MD_CTX *sha;
	uint64_t size;
	nar_write_fn write; /* may be NULL: hash and count only */
	void *ctx;
};

int nar_writer_init(struct nar_writer *w, nar_write_fn write, void *ctx);
/* Frees the hash context; safe after a failed init. */
void nar_writer_release(struct nar_writer *w);

/* Raw bytes (no framing). */
int nar_writer_raw(struct nar_writer *w, const void *buf, size_t len);
/* str(s): u64 LE length, bytes, zero padding to a multiple of 8. */
int nar_writer_str(struct nar_writer *w, const void *buf, size_t len);
/* A NUL-terminated keyword as str(). */
int nar_writer_tag(struct nar_writer *w, const char *tag);
/* The framing of a regular file up to its contents: "( type regular
 * [executable ""] contents <u64 len>"; the caller then writes `len` raw bytes
 * and calls nar_writer_file_end(). */
int nar_writer_file_begin(struct nar_writer *w, bool executable, uint64_t len);
int nar_writer_file_end(struct nar_writer *w, uint64_t len);
/* "( type symlink target <t> )". */
int nar_writer_symlink(struct nar_writer *w, const void *target, size_t len);
/* "( type directory" ... entries ... ")". */
int nar_writer_dir_begin(struct nar_writer *w);
/* "entry ( name <n> node" ... node ... ")". */
int nar_writer_entry_begin(struct nar_writer *w, const void *name, size_t len);
int nar_writer_entry_end(struct nar_writer *w);
int nar_writer_dir_end(struct nar_writer *w);
/* Finishes the hash into `out`. */
int nar_writer_finish(struct nar_writer *w, struct nar_summary *out);

#endif

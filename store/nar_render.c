/* nar_render.c - the canonical NAR of a castore node, streamed from the services. */
#include "store/nar_writer.h"

#include "common/err.h"

#include <stdlib.h>

/* Blob bytes are copied through one buffer of this size per render. */
#define NAR_RENDER_CHUNK (128 * 1024)

struct renderer {
	struct blob_service *bs;
	struct dir_service *ds;
	struct nar_writer w;
	uint8_t *chunk;
};

static int render_node(struct renderer *r, const struct node *n, unsigned int depth);

/* Copies exactly `size` bytes of the blob; any other length is -EIO. */
static int render_blob_bytes(struct renderer *r, struct blob_reader *rd, const char *text,
			     uint64_t size)
{
	uint64_t off = 0;
	size_t n;
	int rc;

	while (off < size) {
		size_t want =
		    size - off < NAR_RENDER_CHUNK ? (size_t)(size - off) : NAR_RENDER_CHUNK;

		rc = blob_reader_pread(rd, r->chunk, want, off, &n);
		if (rc < 0)
			return rc;
		if (n == 0)
			return sf_err(
			    -EIO, "blob '%s' is shorter than its recorded size %llu (ends at %llu)",
			    text, (unsigned long long)size, (unsigned long long)off);
		rc = nar_writer_raw(&r->w, r->chunk, n);
		if (rc < 0)
			return rc;
		off += n;
	}
	/* The reader's size field may be stale; a probe past the end is the truth. */
	rc = blob_reader_pread(rd, r->chunk, 1, size, &n);
	if (rc < 0)
		return rc;
	if (n)
		return sf_err(-EIO, "blob '%s' is longer than its recorded size %llu", text,
			      (unsigned long long)size);
	return 0;
}

static int render_file(struct renderer *r, const struct node *n)
{
	char text[B3_TEXT_LEN + 1];
	struct blob_reader *rd;
	int rc;

	b3_digest_to_text(&n->digest, text);
	rc = blob_service_open_read(r->bs, &n->digest, &rd);
	if (rc == -ENOENT)
		return sf_err(-EIO, "blob '%s' is missing", text);
	if (rc < 0)
		return rc;
	if (rd->size < n->size)
		rc = sf_err(-EIO,
			    "blob '%s' is shorter than its recorded size %llu (has %llu bytes)",
			    text, (unsigned long long)n->size, (unsigned long long)rd->size);
	else if (rd->size > n->size)
		rc =
		    sf_err(-EIO, "blob '%s' is longer than its recorded size %llu (has %llu bytes)",
			   text, (unsigned long long)n->size, (unsigned long long)rd->size);
	if (rc == 0)
		rc = nar_writer_file_begin(&r->w, n->executable, n->size);
	if (rc == 0)
		rc = render_blob_bytes(r, rd, text, n->size);
	if (rc == 0)
		rc = nar_writer_file_end(&r->w, n->size);
	blob_reader_close(rd);
	return rc;
}

static int render_entries(struct renderer *r, const struct directory *d, unsigned int depth)
{
	int rc = 0;

	/* A struct directory is sorted bytewise by name, which is NAR order. */
	for (size_t i = 0; i < d->count && rc == 0; i++) {
		rc = nar_writer_entry_begin(&r->w, d->nodes[i].name, d->nodes[i].name_len);
		if (rc == 0)
			rc = render_node(r, &d->nodes[i], depth + 1);
		if (rc == 0)
			rc = nar_writer_entry_end(&r->w);
	}
	return rc;
}

static int render_dir(struct renderer *r, const struct node *n, unsigned int depth)
{
	char text[B3_TEXT_LEN + 1];
	struct directory *d;
	int rc;

	rc = dir_service_get(r->ds, &n->digest, &d);
	if (rc == -ENOENT) {
		b3_digest_to_text(&n->digest, text);
		return sf_err(-EIO, "directory '%s' is missing", text);
	}
	if (rc < 0)
		return rc;
	rc = nar_writer_dir_begin(&r->w);
	if (rc == 0)
		rc = render_entries(r, d, depth);
	if (rc == 0)
		rc = nar_writer_dir_end(&r->w);
	directory_free(d);
	return rc;
}

static int render_node(struct renderer *r, const struct node *n, unsigned int depth)
{
	int rc;

	if (depth >= NAR_MAX_DEPTH)
		return sf_err(-ELOOP, "tree nesting exceeds the NAR maximum depth of %d",
			      NAR_MAX_DEPTH);
	switch (n->kind) {
	case NODE_FILE:
		return render_file(r, n);
	case NODE_DIRECTORY:
		return render_dir(r, n, depth);
	case NODE_SYMLINK:
		rc = castore_target_check(n->target, n->target_len);
		return rc ? rc : nar_writer_symlink(&r->w, n->target, n->target_len);
	}
	return sf_err(-EINVAL, "node has no kind");
}

int nar_render(struct blob_service *bs, struct dir_service *ds, const struct node *root,
	       nar_write_fn write, void *ctx, struct nar_summary *out)
{
	struct renderer r = {.bs = bs, .ds = ds};
	struct nar_summary sum;
	int rc;

	r.chunk = malloc(NAR_RENDER_CHUNK);
	if (!r.chunk)
		return -ENOMEM;
	rc = nar_writer_init(&r.w, write, ctx);
	if (rc == 0)
		rc = render_node(&r, root, 0);
	if (rc == 0)
		rc = nar_writer_finish(&r.w, &sum);
	nar_writer_release(&r.w);
	free(r.chunk);
	if (rc == 0 && out)
		*out = sum;
	return rc;
}

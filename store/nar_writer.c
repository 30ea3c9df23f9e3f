/* nar_writer.c - NAR token framing with on-the-fly SHA-256 and size. */
#include "store/nar_writer.h"

#include "common/err.h"

#include <string.h>

int nar_writer_init(struct nar_writer *w, nar_write_fn write, void *ctx)
{
	int rc;

	*w = (struct nar_writer){.write = write, .ctx = ctx};
	w->sha = EVP_MD_CTX_new();
	if (!w->sha)
		return -ENOMEM;
	if (EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) {
		nar_writer_release(w);
		return sf_err(-EIO, "cannot initialise SHA-256");
	}
	rc = nar_writer_tag(w, "nix-archive-1");
	if (rc < 0)
		nar_writer_release(w);
	return rc;
}

void nar_writer_release(struct nar_writer *w)
{
	EVP_MD_CTX_free(w->sha);
	w->sha = NULL;
}

int nar_writer_raw(struct nar_writer *w, const void *buf, size_t len)
{
	int rc;

	if (!len)
		return 0;
	if (EVP_DigestUpdate(w->sha, buf, len) != 1)
		return sf_err(-EIO, "SHA-256 update failed");
	w->size += len;
	rc = w->write ? w->write(w->ctx, buf, len) : 0;
	/* Only a negative return is a failure; a sink may return a count. */
	return rc < 0 ? rc : 0;
}

static int write_u64(struct nar_writer *w, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	return nar_writer_raw(w, le, 8);
}

static int write_padding(struct nar_writer *w, uint64_t len)
{
	static const uint8_t zeros[8];

	return nar_writer_raw(w, zeros, (8 - len % 8) % 8);
}

int nar_writer_str(struct nar_writer *w, const void *buf, size_t len)
{
	int rc = write_u64(w, len);

	if (rc == 0)
		rc = nar_writer_raw(w, buf, len);
	if (rc == 0)
		rc = write_padding(w, len);
	return rc;
}

int nar_writer_tag(struct nar_writer *w, const char *tag)
{
	return nar_writer_str(w, tag, strlen(tag));
}

/* Emits a sequence of NULL-terminated tags. */
static int tags(struct nar_writer *w, const char *const *list)
{
	int rc = 0;

	for (; *list && rc == 0; list++)
		rc = nar_writer_tag(w, *list);
	return rc;
}

int nar_writer_file_begin(struct nar_writer *w, bool executable, uint64_t len)
{
	static const char *const head[] = {"(", "type", "regular", NULL};
	static const char *const exec[] = {"executable", "", NULL};
	int rc = tags(w, head);

	if (rc == 0 && executable)
		rc = tags(w, exec);
	if (rc == 0)
		rc = nar_writer_tag(w, "contents");
	return rc ? rc : write_u64(w, len);
}

int nar_writer_file_end(struct nar_writer *w, uint64_t len)
{
	int rc = write_padding(w, len);

	return rc ? rc : nar_writer_tag(w, ")");
}

int nar_writer_symlink(struct nar_writer *w, const void *target, size_t len)
{
	static const char *const head[] = {"(", "type", "symlink", "target", NULL};
	int rc = tags(w, head);

	if (rc == 0)
		rc = nar_writer_str(w, target, len);
	return rc ? rc : nar_writer_tag(w, ")");
}

int nar_writer_dir_begin(struct nar_writer *w)
{
	static const char *const head[] = {"(", "type", "directory", NULL};

	return tags(w, head);
}

int nar_writer_entry_begin(struct nar_writer *w, const void *name, size_t len)
{
	static const char *const head[] = {"entry", "(", "name", NULL};
	int rc = tags(w, head);

	if (rc == 0)
		rc = nar_writer_str(w, name, len);
	return rc ? rc : nar_writer_tag(w, "node");
}

int nar_writer_entry_end(struct nar_writer *w)
{
	return nar_writer_tag(w, ")");
}

int nar_writer_dir_end(struct nar_writer *w)
{
	return nar_writer_tag(w, ")");
}

int nar_writer_finish(struct nar_writer *w, struct nar_summary *out)
{
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(w->sha, out->sha256, &len) != 1 || len != 32)
		return sf_err(-EIO, "SHA-256 final failed");
	out->size = w->size;
	return 0;
}

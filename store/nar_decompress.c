/* nar_decompress.c - streaming decompression of binary cache NAR files
 * (xz, zstd, bzip2 or none) with fixed buffers, as a nar_read_fn. */
#include "store/nar_decompress.h"

#include "common/err.h"

#include <bzlib.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define IN_BUF_SIZE (64 * 1024)
/* Enough for any xz preset (xz -9e needs 65 MiB); refuses decoders that
 * would need absurd amounts of memory. */
#define XZ_MEMLIMIT (256ULL * 1024 * 1024)
/* Compressed input read without one byte of output before the data is
 * called corrupt: zstd skippable frames or empty bzip2 streams would
 * otherwise keep a reader busy for as long as a peer sends them. Real
 * compressed data never comes near this (docs/limits.md). */
#define NO_OUTPUT_MAX (1024 * 1024)

struct nar_decomp {
	enum nar_compression kind;
	nar_read_fn src;
	void *src_ctx;
	uint8_t *in;
	size_t in_pos, in_len;
	bool in_eof;
	bool done;	 /* the compressed data ended (and nothing followed) */
	bool stream_end; /* bzip2/zstd: the current stream or frame is complete */
	lzma_stream xz;
	ZSTD_DCtx *zstd;
	bz_stream bz;
	bool bz_live;
	uint64_t idle_in; /* input read since the last output byte */
};

int nar_compression_parse(const char *label, enum nar_compression *out)
{
	if (!label || !strcmp(label, "bzip2"))
		*out = NAR_COMP_BZIP2;
	else if (!*label || !strcmp(label, "none"))
		*out = NAR_COMP_NONE;
	else if (!strcmp(label, "xz"))
		*out = NAR_COMP_XZ;
	else if (!strcmp(label, "zstd"))
		*out = NAR_COMP_ZSTD;
	else
		return sf_err(-EINVAL,
			      "unsupported compression '%s' (storefs reads none, xz, "
			      "zstd and bzip2)",
			      label);
	return 0;
}

const char *nar_compression_name(enum nar_compression c)
{
	switch (c) {
	case NAR_COMP_XZ:
		return "xz";
	case NAR_COMP_ZSTD:
		return "zstd";
	case NAR_COMP_BZIP2:
		return "bzip2";
	default:
		return "none";
	}
}

/* Refills the input buffer once it is used up; sets in_eof at the end. */
static int fill(struct nar_decomp *d)
{
	size_t n = 0;
	int rc;

	if (d->in_pos < d->in_len || d->in_eof)
		return 0;
	rc = d->src(d->src_ctx, d->in, IN_BUF_SIZE, &n);
	if (rc < 0)
		return rc;
	d->in_pos = 0, d->in_len = n;
	d->in_eof = n == 0;
	d->idle_in += n;
	return 0;
}

static int truncated(const struct nar_decomp *d)
{
	return sf_err(-EIO, "%s data is truncated", nar_compression_name(d->kind));
}

static int corrupt(const struct nar_decomp *d, const char *why)
{
	return sf_err(-EIO, "%s data is corrupt: %s", nar_compression_name(d->kind), why);
}

/* --- xz --- */

static int xz_init(struct nar_decomp *d)
{
	lzma_stream init = LZMA_STREAM_INIT;

	d->xz = init;
	if (lzma_stream_decoder(&d->xz, XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
		return -ENOMEM;
	return 0;
}

static int xz_step(struct nar_decomp *d, uint8_t *buf, size_t len, size_t *n)
{
	lzma_ret r;

	d->xz.next_in = d->in + d->in_pos, d->xz.avail_in = d->in_len - d->in_pos;
	d->xz.next_out = buf, d->xz.avail_out = len;
	r = lzma_code(&d->xz, d->in_eof ? LZMA_FINISH : LZMA_RUN);
	d->in_pos = d->in_len - d->xz.avail_in;
	*n = len - d->xz.avail_out;
	if (r == LZMA_STREAM_END) {
		d->done = true;
		return 0;
	}
	if (r == LZMA_BUF_ERROR && d->in_eof)
		return truncated(d);
	if (r == LZMA_OK || r == LZMA_BUF_ERROR)
		return 0;
	if (r == LZMA_MEMLIMIT_ERROR)
		return corrupt(d, "it needs too much memory");
	return corrupt(d, r == LZMA_FORMAT_ERROR ? "not xz" : "bad stream");
}

/* --- zstd --- */

static int zstd_step(struct nar_decomp *d, uint8_t *buf, size_t len, size_t *n)
{
	ZSTD_inBuffer in = {d->in + d->in_pos, d->in_len - d->in_pos, 0};
	ZSTD_outBuffer out = {buf, len, 0};
	size_t r = ZSTD_decompressStream(d->zstd, &out, &in);

	if (ZSTD_isError(r))
		return corrupt(d, ZSTD_getErrorName(r));
	d->in_pos += in.pos;
	*n = out.pos;
	/* 0: a frame ended and is flushed; another may follow. */
	if (r == 0)
		d->stream_end = true;
	else if (in.pos > 0)
		d->stream_end = false;
	if (d->in_eof && out.pos == 0) {
		if (!d->stream_end)
			return truncated(d);
		d->done = true;
	}
	return 0;
}

/* --- bzip2 --- */

static int bz_init(struct nar_decomp *d)
{
	memset(&d->bz, 0, sizeof(d->bz));
	if (BZ2_bzDecompressInit(&d->bz, 0, 0) != BZ_OK)
		return -ENOMEM;
	d->bz_live = true;
	d->stream_end = false;
	return 0;
}

static int bz_step(struct nar_decomp *d, uint8_t *buf, size_t len, size_t *n)
{
	int r;

	if (d->stream_end) {
		/* Another stream follows (as pbzip2 writes them), or the end. */
		*n = 0;
		if (d->in_eof) {
			d->done = true;
			return 0;
		}
		BZ2_bzDecompressEnd(&d->bz);
		d->bz_live = false;
		return bz_init(d);
	}
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	d->bz.next_in = (char *)d->in + d->in_pos;
	d->bz.avail_in = (unsigned)(d->in_len - d->in_pos);
	d->bz.next_out = (char *)buf;
	d->bz.avail_out = (unsigned)len;
	r = BZ2_bzDecompress(&d->bz);
	d->in_pos = d->in_len - d->bz.avail_in;
	*n = len - d->bz.avail_out;
	if (r == BZ_STREAM_END)
		d->stream_end = true;
	else if (r != BZ_OK)
		return corrupt(d, r == BZ_DATA_ERROR_MAGIC ? "not bzip2" : "bad stream");
	else if (d->in_eof && *n == 0)
		return truncated(d);
	return 0;
}

/* --- the reader --- */

static int step(struct nar_decomp *d, uint8_t *buf, size_t len, size_t *n)
{
	switch (d->kind) {
	case NAR_COMP_XZ:
		return xz_step(d, buf, len, n);
	case NAR_COMP_ZSTD:
		return zstd_step(d, buf, len, n);
	case NAR_COMP_BZIP2:
		return bz_step(d, buf, len, n);
	default:
		return -EINVAL;
	}
}

int nar_decomp_read(void *decomp, void *buf, size_t len, size_t *n)
{
	struct nar_decomp *d = decomp;
	size_t got = 0;
	int rc;

	if (d->kind == NAR_COMP_NONE)
		return d->src(d->src_ctx, buf, len, n);
	while (got == 0 && !d->done && len > 0) {
		rc = fill(d);
		if (rc == 0)
			rc = step(d, buf, len, &got);
		if (rc < 0)
			return rc;
		if (got == 0 && d->idle_in > NO_OUTPUT_MAX)
			return corrupt(d, "more than 1 MiB of input yields no output");
	}
	if (got > 0)
		d->idle_in = 0;
	/* After the end, any further input byte is garbage. */
	if (d->done && got == 0) {
		rc = fill(d);
		if (rc < 0)
			return rc;
		if (d->in_pos < d->in_len)
			return corrupt(d, "data follows its end");
	}
	*n = got;
	return 0;
}

int nar_decomp_new(enum nar_compression c, nar_read_fn src, void *src_ctx, struct nar_decomp **out)
{
	struct nar_decomp *d = calloc(1, sizeof(*d));
	int rc = 0;

	if (!d)
		return -ENOMEM;
	d->kind = c, d->src = src, d->src_ctx = src_ctx;
	if (c != NAR_COMP_NONE && !(d->in = malloc(IN_BUF_SIZE)))
		rc = -ENOMEM;
	if (rc == 0 && c == NAR_COMP_XZ)
		rc = xz_init(d);
	if (rc == 0 && c == NAR_COMP_ZSTD && !(d->zstd = ZSTD_createDCtx()))
		rc = -ENOMEM;
	if (rc == 0 && c == NAR_COMP_BZIP2)
		rc = bz_init(d);
	if (rc < 0) {
		nar_decomp_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void nar_decomp_free(struct nar_decomp *d)
{
	if (!d)
		return;
	if (d->kind == NAR_COMP_XZ)
		lzma_end(&d->xz);
	ZSTD_freeDCtx(d->zstd);
	if (d->bz_live)
		BZ2_bzDecompressEnd(&d->bz);
	free(d->in);
	free(d);
}

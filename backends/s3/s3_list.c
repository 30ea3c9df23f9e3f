/* s3_list.c - the scrub's view of a bucket (storefs verify, docs/s3.md
 * "Verify"): every blob object listed with ListObjectsV2, each checked by
 * reading it whole through the blob service. */
#include "backends/s3/s3_internal.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct membuf {
	char *p;
	size_t len, cap;
};

/* A listing page is at most 1000 keys of a few hundred bytes. */
#define PAGE_MAX (4u << 20)

static int mem_write(void *ctx, const void *buf, size_t len)
{
	struct membuf *m = ctx;

	if (m->len + len + 1 > PAGE_MAX)
		return sf_err(-EIO, "an S3 listing page is larger than %u bytes", PAGE_MAX);
	if (m->len + len + 1 > m->cap) {
		size_t cap = (m->len + len + 1) * 2;
		char *p = realloc(m->p, cap);

		if (!p)
			return -ENOMEM;
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	m->p[m->len] = '\0';
	return 0;
}

static int mem_reset(void *ctx)
{
	((struct membuf *)ctx)->len = 0;
	return 0;
}

/* SigV4's URI encoding of a query value: unreserved bytes as they are. */
static void uri_encode(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || strchr("-_.~", ch))
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

/* The text of the next <tag>...</tag> from *pos on, entities &amp; &lt;
 * &gt; &quot; &apos; decoded; 0, or -ENOENT when there is none. */
static int xml_next(const char **pos, const char *tag, char *out, size_t len)
{
	char open[64], close[64];
	const char *s, *e;
	size_t o = 0;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = strstr(*pos, open);
	e = s ? strstr(s, close) : NULL;
	if (!s || !e)
		return -ENOENT;
	for (s += strlen(open); s < e && o + 1 < len; s++) {
		static const char *const ent[][2] = {{"&amp;", "&"},
						     {"&lt;", "<"},
						     {"&gt;", ">"},
						     {"&quot;", "\""},
						     {"&apos;", "'"}};
		size_t k = 0;

		while (k < 5 && strncmp(s, ent[k][0], strlen(ent[k][0])))
			k++;
		out[o++] = k < 5 ? ent[k][1][0] : *s;
		s += k < 5 ? strlen(ent[k][0]) - 1 : 0;
	}
	out[o] = '\0';
	*pos = e + strlen(close);
	return 0;
}

/* Calls `cb` for each blob key of one page; a key that is not
 * "<4 hex>/<64 hex>" under the blobs' prefix is skipped (not ours). */
static int page_keys(const char *page, const char *prefix, store_digest_fn cb, void *ctx)
{
	const char *pos = page;
	size_t plen = strlen(prefix);
	char key[1024];
	int rc = 0;

	while (rc == 0 && xml_next(&pos, "Key", key, sizeof(key)) == 0) {
		const char *rest = key + plen;
		struct b3_digest d;

		if (strncmp(key, prefix, plen) || strlen(rest) != 5 + B3_HEX_LEN ||
		    rest[4] != '/' || strncmp(rest, rest + 5, 4) ||
		    b3_digest_from_hex(rest + 5, B3_HEX_LEN, &d) < 0)
			continue;
		rc = cb(ctx, &d);
	}
	return rc;
}

/* One ListObjectsV2 page into m, after `token` ("" for the first). */
static int list_page(struct s3_client *c, const char *prefix, const char *token, struct membuf *m)
{
	struct s3_sink sink = {mem_write, mem_reset, m};
	char query[2048], ep[512], et[1024];
	struct s3_response r;
	int rc;

	uri_encode(prefix, ep, sizeof(ep));
	uri_encode(token, et, sizeof(et));
	if (*token)
		snprintf(query, sizeof(query), "continuation-token=%s&list-type=2&prefix=%s", et,
			 ep);
	else
		snprintf(query, sizeof(query), "list-type=2&prefix=%s", ep);
	rc = s3_send(c, &(struct s3_request){.method = "GET", .query = query, .sink = &sink}, &r);
	if (rc == 0 && r.status != 200)
		rc = sf_err(r.status == 403 ? -EACCES : -EIO,
			    "S3 listing of bucket '%s' at '%s': HTTP %ld%s%s", c->url.bucket,
			    c->url.endpoint, r.status, r.code[0] ? " " : "", r.code);
	return rc;
}

int s3_blobs_list(struct s3_client *c, store_digest_fn cb, void *ctx)
{
	struct membuf m = {0};
	char prefix[512], token[1024] = "", truncated[8];
	int rc;

	snprintf(prefix, sizeof(prefix), "%s%sblobs/b3/", c->url.prefix, *c->url.prefix ? "/" : "");
	do {
		const char *pos;

		rc = list_page(c, prefix, token, &m);
		if (rc < 0)
			break;
		rc = page_keys(m.p ? m.p : "", prefix, cb, ctx);
		pos = m.p ? m.p : "";
		if (rc == 0 && xml_next(&pos, "IsTruncated", truncated, sizeof(truncated)) == 0 &&
		    !strcmp(truncated, "true")) {
			pos = m.p;
			if (xml_next(&pos, "NextContinuationToken", token, sizeof(token)) < 0)
				rc = sf_err(-EIO,
					    "S3 listing of bucket '%s' is truncated without a "
					    "continuation token",
					    c->url.bucket);
		} else
			token[0] = '\0';
	} while (rc == 0 && token[0]);
	free(m.p);
	return rc;
}

/* test_s3.c - the S3 backend offline: SigV4 against AWS's published S3
 * examples (docs/s3.md), URI encoding and s3:// URL parsing. */
#include "harness.h"

#include "backends/s3/s3.h"
#include "backends/s3/s3_internal.h"
#include "common/encoding.h"

#include <openssl/evp.h>
#include <stdlib.h>

#define SECRET	 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATE	 "20130524T000000Z"
#define HOST	 "examplebucket.s3.amazonaws.com"
#define EMPTY	 S3_EMPTY_SHA256
#define PUT_HASH "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
#define PRESIGN_Q                                                                                  \
	"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-"  \
	"east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"        \
	"SignedHeaders=host"

static void canonical_hash(const struct s3_sig_request *rq, char out[65])
{
	char *c = NULL;
	uint8_t md[32];
	unsigned n = 32;

	out[0] = '\0';
	if (s3_sigv4_canonical(rq, &c) != 0)
		return;
	EVP_Digest(c, strlen(c), md, &n, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
	free(c);
}

/* Checks the canonical request's hash and the signature of `rq`. */
static bool vector_ok(const struct s3_sig_request *rq, const char *creq, const char *sig)
{
	char h[65], s[65];

	canonical_hash(rq, h);
	if (s3_sigv4_signature(SECRET, rq, s) != 0)
		return false;
	return !strcmp(h, creq) && !strcmp(s, sig);
}

TEST(s3_sigv4_signing_key)
{
	uint8_t key[32];
	char hex[65];

	s3_sigv4_key(SECRET, "20130524", "us-east-1", key);
	hex_encode(key, 32, hex);
	CHECK(!strcmp(hex, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378"));
}

TEST(s3_sigv4_get_object)
{
	/* headers in no particular order: the signer sorts them */
	struct s3_header h[] = {{"x-amz-date", DATE},
				{"range", "bytes=0-9"},
				{"host", HOST},
				{"x-amz-content-sha256", EMPTY}};
	struct s3_sig_request rq = {"GET", "/test.txt", "", h, 4, EMPTY, DATE, "us-east-1"};
	char *auth = NULL, *c = NULL;

	CHECK(vector_ok(&rq, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
			"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
	CHECK_OK(s3_sigv4_canonical(&rq, &c));
	CHECK(!strcmp(c, "GET\n/test.txt\n\nhost:" HOST
			 "\nrange:bytes=0-9\nx-amz-content-sha256:" EMPTY "\nx-amz-date:" DATE
			 "\n\nhost;range;x-amz-content-sha256;x-amz-date\n" EMPTY));
	free(c);
	CHECK_OK(s3_sigv4_authorization("AKIAIOSFODNN7EXAMPLE", SECRET, &rq, &auth));
	CHECK(!strcmp(
	    auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
		  "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		  "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
	free(auth);
}

TEST(s3_sigv4_put_object)
{
	char uri[64];
	struct s3_header h[] = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
				{"host", HOST},
				{"x-amz-content-sha256", PUT_HASH},
				{"x-amz-date", DATE},
				{"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
	struct s3_sig_request rq = {"PUT", uri, "", h, 5, PUT_HASH, DATE, "us-east-1"};

	CHECK_OK(s3_uri_encode("/test$file.text", 1, uri, sizeof(uri)));
	CHECK(!strcmp(uri, "/test%24file.text"));
	CHECK(vector_ok(&rq, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
			"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST(s3_sigv4_bucket_queries)
{
	struct s3_header h[] = {
	    {"host", HOST}, {"x-amz-content-sha256", EMPTY}, {"x-amz-date", DATE}};
	struct s3_sig_request lc = {"GET", "/", "lifecycle=", h, 3, EMPTY, DATE, "us-east-1"};
	struct s3_sig_request ls = {"GET", "/",	       "max-keys=2&prefix=J", h, 3, EMPTY,
				    DATE,  "us-east-1"};

	CHECK(vector_ok(&lc, "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
			"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
	CHECK(vector_ok(&ls, "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
			"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

TEST(s3_sigv4_presigned)
{
	struct s3_header h[] = {{"host", HOST}};
	struct s3_sig_request rq = {"GET", "/test.txt",	       PRESIGN_Q, h,
				    1,	   "UNSIGNED-PAYLOAD", DATE,	  "us-east-1"};

	CHECK(vector_ok(&rq, "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
			"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
}

TEST(s3_uri_encoding)
{
	char out[32];

	CHECK_OK(s3_uri_encode("c/d e~_.-Z9", 0, out, sizeof(out)));
	CHECK(!strcmp(out, "c%2Fd%20e~_.-Z9"));
	CHECK_OK(s3_uri_encode("/b/blobs/b3/ab", 1, out, sizeof(out)));
	CHECK(!strcmp(out, "/b/blobs/b3/ab"));
	CHECK_ERR(s3_uri_encode("%%%%%%%%%%%%%%%%%%%%", 1, out, sizeof(out)), -ENAMETOOLONG);
}

TEST(s3_url_forms)
{
	struct s3_url u;

	CHECK_OK(
	    s3_url_parse("s3://b-1.x/p/q?endpoint=http://127.0.0.1:7480&region=eu-west-1", &u));
	CHECK(!strcmp(u.bucket, "b-1.x") && !strcmp(u.prefix, "p/q"));
	CHECK(!strcmp(u.endpoint, "http://127.0.0.1:7480") && !strcmp(u.host, "127.0.0.1:7480"));
	CHECK(!strcmp(u.region, "eu-west-1") && u.timeout_s == 0);
	s3_url_release(&u);
	CHECK_OK(s3_url_parse("s3://bkt?endpoint=http://h:1&timeout=7", &u));
	CHECK(u.timeout_s == 7);
	s3_url_release(&u);
	/* encoded parameter values, a trailing '/' on the endpoint */
	CHECK_OK(s3_url_parse("s3://bkt?region=us-east-1&endpoint=http%3A%2F%2Fh%3A1%2F", &u));
	CHECK(!strcmp(u.endpoint, "http://h:1") && !strcmp(u.host, "h:1") && !*u.prefix);
	s3_url_release(&u);
	/* the one-letter bucket of issue 16's example */
	CHECK_OK(s3_url_parse("s3://b?endpoint=http://127.0.0.1:7480&region=us-east-1", &u));
	CHECK(!strcmp(u.bucket, "b"));
	s3_url_release(&u);
	setenv("AWS_ENDPOINT_URL", "https://s3.example.net", 1);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	CHECK_OK(s3_url_parse("s3://bkt", &u));
	CHECK(!strcmp(u.endpoint, "https://s3.example.net") && !strcmp(u.region, "us-east-1"));
	s3_url_release(&u);
	unsetenv("AWS_ENDPOINT_URL");
	CHECK_OK(s3_url_parse("s3://bkt?region=ap-south-1", &u));
	CHECK(!strcmp(u.endpoint, "https://s3.ap-south-1.amazonaws.com"));
	s3_url_release(&u);
}

TEST(s3_url_refused)
{
	static const char *const bad[] = {
	    "s3://",
	    "s3://..?endpoint=http://h",
	    "s3://b+c?endpoint=http://h",
	    "s3://bkt/?endpoint=http://h",
	    "s3://bkt/a//b?endpoint=http://h",
	    "s3://bkt/a/../b?endpoint=http://h",
	    "s3://bkt/a b?endpoint=http://h",
	    "s3://bkt?endpoint=ftp://h",
	    "s3://bkt?endpoint=http://h/path",
	    "s3://bkt?endpoint=http://h&endpoint=http://i",
	    "s3://bkt?endpoint=http://h&secret=x",
	    "s3://bkt?endpoint=http://h&region=a/b",
	    "s3://bkt?endpoint=http://h%zz",
	};
	struct s3_url u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_MSG(s3_url_parse(bad[i], &u) == -EINVAL, "accepted '%s'", bad[i]);
}

/* --- FastCDC --- */

static uint8_t *pseudo_random(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len);

	for (size_t i = 0; b && i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(seed >> 56);
	}
	return b;
}

/* The chunk boundaries of `buf`, as end offsets; returns how many. */
static size_t cut_all(const uint8_t *buf, size_t len, size_t *ends, size_t max)
{
	size_t n = 0;

	for (size_t off = 0; off < len && n < max;) {
		off += s3_cdc_cut(buf + off, len - off);
		ends[n++] = off;
	}
	return n;
}

TEST(s3_cdc_bounds_and_average)
{
	size_t len = 16u << 20, ends[512], n;
	uint8_t *b = pseudo_random(len, 1);

	CHECK(b);
	n = cut_all(b, len, ends, 512);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t sz = ends[i] - (i ? ends[i - 1] : 0);

		CHECK_MSG(sz >= S3_CDC_MIN && sz <= S3_CDC_MAX, "chunk %zu has %zu bytes", i, sz);
	}
	CHECK(ends[n - 1] == len);
	/* about 256 KiB on average (16 MiB: between 32 and 80 chunks) */
	CHECK_MSG(n >= 32 && n <= 80, "%zu chunks", n);
	CHECK(s3_cdc_cut(b, 1000) == 1000);
	CHECK(s3_cdc_cut(b, S3_CDC_MIN) == S3_CDC_MIN);
	free(b);
}

/* A change in the middle moves only the cut points near it. */
TEST(s3_cdc_content_defined)
{
	size_t len = 16u << 20, a[512], b[512], na, nb, same = 0;
	uint8_t *buf = pseudo_random(len, 2);

	CHECK(buf);
	na = cut_all(buf, len, a, 512);
	memset(buf + len / 2, 0x5a, 1000); /* overwrite */
	nb = cut_all(buf, len, b, 512);
	for (size_t i = 0, j = 0; i < na && j < nb;) {
		if (a[i] == b[j]) {
			same++;
			i++;
			j++;
		} else if (a[i] < b[j]) {
			i++;
		} else {
			j++;
		}
	}
	CHECK_MSG(same + 2 >= na, "%zu of %zu cut points kept", same, na);
	free(buf);
}

/* A chunk list is parsed strictly: anything but lines "<64 hex> <len>"
 * whose lengths add up to the blob's size is EIO (docs/s3.md "Reads"). */
static int parse(const char *rec, uint64_t size, size_t *n)
{
	struct s3_client c = {.url = {.bucket = "b", .endpoint = "http://e"}};
	struct s3_chunk *v = NULL;
	int rc = s3_chunk_list_parse(&c, "k", rec, strlen(rec), size, &v, n);

	if (rc == 0 && *n == 2)
		rc = v[0].off == 0 && v[0].len == 5 && v[1].off == 5 && v[1].len == 7 ? 0 : -EDOM;
	free(v);
	return rc;
}

TEST(s3_chunk_list_strict)
{
	const char *h1 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
	const char *h2 = "0000000000000000000000000000000000000000000000000000000000000000";
	char rec[512];
	size_t n = 0;

	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s 5\n%s 7\n", h1, h2);
	CHECK(parse(rec, 12, &n) == 0 && n == 2);
	CHECK(parse(rec, 13, &n) == -EIO); /* shorter than the blob */
	CHECK(parse(rec, 11, &n) == -EIO); /* longer */
	snprintf(rec, sizeof(rec), "storefs-chunks 2\n%s 5\n", h1);
	CHECK(parse(rec, 5, &n) == -EIO); /* another version */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s 5", h1);
	CHECK(parse(rec, 5, &n) == -EIO); /* no final newline */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s 0\n", h1);
	CHECK(parse(rec, 0, &n) == -EIO); /* an empty chunk */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s  5\n", h1);
	CHECK(parse(rec, 5, &n) == -EIO); /* two spaces */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s +5\n", h1);
	CHECK(parse(rec, 5, &n) == -EIO); /* a sign */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%.63s 5\n", h1);
	CHECK(parse(rec, 5, &n) == -EIO); /* a short digest */
	snprintf(rec, sizeof(rec), "storefs-chunks 1\n%s %u\n", h1, S3_CDC_MAX + 1);
	CHECK(parse(rec, S3_CDC_MAX + 1, &n) == -EIO); /* a chunk too long */
}

/* test_grpc.c - the gRPC client store's URLs, and its failures without a
 * peer (the wire itself is tested against real peers: t62-grpc-client). */
#include "backends/grpc/grpc_store.h"
#include "backends/registry.h"
#include "common/deadline.h"
#include "harness.h"

#include <stdlib.h>

TEST(grpc_url_forms)
{
	struct grpc_store_url u;

	CHECK_OK(grpc_store_url_parse("grpc+http://127.0.0.1:8000", &u));
	CHECK(!strcmp(u.target, "127.0.0.1:8000") && !u.tvix && u.rule.base_s == 0);
	grpc_store_url_release(&u);
	CHECK_OK(grpc_store_url_parse("grpc+http://[::1]:8000?timeout=5&package=tvix", &u));
	CHECK(!strcmp(u.target, "[::1]:8000") && u.tvix && u.rule.base_s == 5);
	grpc_store_url_release(&u);
	CHECK_OK(grpc_store_url_parse("grpc+unix:///run/storefs.sock?package=snix", &u));
	CHECK(!strcmp(u.target, "unix:///run/storefs.sock") && !u.tvix);
	grpc_store_url_release(&u);
	CHECK_OK(grpc_store_url_parse("grpc+http://store.example:1?", &u));
	grpc_store_url_release(&u);
}

TEST(grpc_url_refusals)
{
	static const char *const bad[] = {
	    "grpc+http://127.0.0.1",
	    "grpc+http://127.0.0.1:",
	    "grpc+http://:80",
	    "grpc+http://h:0",
	    "grpc+http://h:65536",
	    "grpc+http://h:8x",
	    "grpc+http://[::1]",
	    "grpc+unix://relative",
	    "grpc+unix://",
	    "grpc+http://h:1?timeout=0",
	    "grpc+http://h:1?timeout=-1",
	    "grpc+http://h:1?timeout=",
	    "grpc+http://h:1?package=nix",
	    "grpc+http://h:1?colour=red",
	    "grpc+https://h:1",
	    "grpc+http://h:1?timeout=86401",
	};
	struct grpc_store_url u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = grpc_store_url_parse(bad[i], &u);

		if (rc == 0)
			grpc_store_url_release(&u);
		CHECK_MSG(rc == -EINVAL, "'%s' was accepted", bad[i]);
	}
}

/* Nothing listens on port 1: every call fails at once with -EIO and a
 * message (no retry loop, no wait for the deadline), the store lives on. */
TEST(grpc_no_peer_is_eio_at_once)
{
	uint8_t digest[STORE_PATH_DIGEST_LEN] = {1};
	struct b3_digest d = {{0}};
	struct path_info *pi;
	struct directory *dir;
	struct blob_reader *r;
	struct blob_writer *w;
	struct store *st;
	uint64_t t0, size;
	int rc;

	CHECK_OK(store_open("grpc+http://127.0.0.1:1?timeout=30", 0, &st));
	t0 = deadline_now_ms();
	CHECK_ERR(path_info_service_get(st->paths, digest, &pi), -EIO);
	CHECK(strstr(sf_errmsg(-EIO), "PathInfoService/Get"));
	CHECK_ERR(dir_service_get(st->dirs, &d, &dir), -EIO);
	CHECK_ERR(blob_service_open_read(st->blobs, &d, &r), -EIO);
	CHECK_ERR(blob_service_stat(st->blobs, &d, &size), -EIO);
	CHECK(deadline_now_ms() - t0 < 10000);
	rc = blob_service_open_write(st->blobs, &w);
	if (rc == 0) {
		rc = blob_writer_write(w, "x", 1);
		if (rc == 0)
			rc = blob_writer_commit(w, NULL, &d);
		else
			blob_writer_abort(w);
	}
	CHECK_ERR(rc, -EIO);
	store_free(st);
}

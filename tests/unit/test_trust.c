/* test_trust.c - docs/trust.md: registered paths never change (memory and
 * local backends, racing writers in threads and processes), and content
 * addresses are checked against content and store path (ca_verify, with
 * the store path vectors of vectors.json). */
#include "harness.h"

#include "backends/local/local.h"
#include "backends/memory/memory.h"
#include "store/ca_verify.h"
#include "store/import.h"
#include "store/nix_hash.h"
#include "store/store_write.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct tfx {
	struct store *st;
	bool local;
	char tmp[48];
	char dir[64];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	chmod(path, 0755);
	return remove(path);
}

static int tfx_open(struct tfx *fx, bool local)
{
	*fx = (struct tfx){.local = local};
	if (!local)
		return memory_store_new(DIR_SIZE_SPEC, &fx->st);
	strcpy(fx->tmp, "/tmp/storefs-trust.XXXXXX");
	if (!mkdtemp(fx->tmp))
		return -errno;
	snprintf(fx->dir, sizeof(fx->dir), "%s/store", fx->tmp);
	return local_store_open(fx->dir, STORE_OPEN_CREATE, &fx->st);
}

static void tfx_close(struct tfx *fx)
{
	store_free(fx->st);
	fx->st = NULL;
	if (fx->local)
		nftw(fx->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A PathInfo for `full` with a file root of `data` (stored in `st` when
 * non-NULL), NAR hash bytes all `fill`. */
static int mk_file_path(struct store *st, const char *full, const char *data, int fill,
			struct path_info **out)
{
	struct node root = {.kind = NODE_FILE, .size = strlen(data)};
	struct path_info *pi;
	int rc = path_info_new(&pi);

	if (rc < 0)
		return rc;
	rc = store_path_parse(full, strlen(full), false, &pi->path);
	if (rc == 0 && st)
		rc = blob_service_put(st->blobs, data, strlen(data), &root.digest);
	else if (rc == 0)
		b3_digest_of(data, strlen(data), &root.digest);
	if (rc == 0)
		rc = path_info_set_root(pi, &root);
	pi->nar_size = 128 + strlen(data);
	memset(pi->nar_sha256, fill, 32);
	if (rc < 0) {
		path_info_free(pi);
		return rc;
	}
	*out = pi;
	return 0;
}

#define P_X "/nix/store/00000000000000000000000000000abc-x"

static uint8_t sig_a[64] = {1}, sig_b[64] = {2};

/* --- immutability --- */

static void immutable_suite(bool local)
{
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct path_info *a = NULL, *b = NULL, *got = NULL;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, local));
	CHECK_OK(mk_file_path(fx.st, P_X, "A\n", 0xaa, &a));
	CHECK_OK(mk_file_path(fx.st, P_X, "B\n", 0xbb, &b));
	CHECK_OK(path_info_service_register(fx.st->paths, a, &res));
	CHECK_EQ(res, PATH_INFO_ADDED);
	/* The same content again: a no-op that says so. */
	CHECK_OK(path_info_service_register(fx.st->paths, a, &res));
	CHECK_EQ(res, PATH_INFO_UNCHANGED);
	/* Other content: refused, naming both NAR hashes; nothing changed. */
	CHECK_ERR(path_info_service_register(fx.st->paths, b, &res), -EEXIST);
	CHECK(strstr(sf_errmsg(-EEXIST),
		     "sha256:1amamamamamamamamamamamamamamamamamamamamamamamamama"));
	CHECK(strstr(sf_errmsg(-EEXIST),
		     "sha256:1fxvpfxvpfxvpfxvpfxvpfxvpfxvpfxvpfxvpfxvpfxvpfxvpfxv"));
	/* The same NAR hash but another root is refused too. */
	memset(b->nar_sha256, 0xaa, 32);
	b->nar_size = a->nar_size;
	CHECK_ERR(path_info_service_register(fx.st->paths, b, &res), -EEXIST);
	CHECK_OK(path_info_service_get(fx.st->paths, a->path.digest, &got));
	CHECK(b3_digest_eq(&got->root.digest, &a->root.digest) && got->n_sigs == 0);
	path_info_free(got);
	got = NULL;
	/* Signatures are merged, never replaced. */
	CHECK_OK(path_info_add_sig(a, "k1", sig_a));
	CHECK_OK(path_info_service_register(fx.st->paths, a, &res));
	CHECK_EQ(res, PATH_INFO_SIGS_ADDED);
	CHECK_OK(path_info_service_register(fx.st->paths, a, &res));
	CHECK_EQ(res, PATH_INFO_UNCHANGED);
	a->n_sigs = 0; /* a registration carrying only another signature */
	free(a->sigs[0].name);
	CHECK_OK(path_info_add_sig(a, "k2", sig_b));
	CHECK_OK(path_info_service_register(fx.st->paths, a, &res));
	CHECK_EQ(res, PATH_INFO_SIGS_ADDED);
	CHECK_OK(path_info_service_get(fx.st->paths, a->path.digest, &got));
	CHECK_EQ(got->n_sigs, 2);
	CHECK(!strcmp(got->sigs[0].name, "k1") && !strcmp(got->sigs[1].name, "k2"));
	path_info_free(got);
	path_info_free(a);
	path_info_free(b);
	tfx_close(&fx);
}

TEST(trust_immutable_memory)
{
	immutable_suite(false);
}

TEST(trust_immutable_local)
{
	immutable_suite(true);
}

/* A re-import of the same tree is a no-op; the staged atomic road of the
 * local store applies the rule as well. */
TEST(trust_immutable_commit_path)
{
	enum path_info_put_result res = PATH_INFO_ADDED;
	struct path_info *a, *b;
	struct dir_service *stage;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	CHECK_OK(mk_file_path(fx.st, P_X, "A\n", 0xaa, &a));
	CHECK_OK(mk_file_path(fx.st, P_X, "B\n", 0xbb, &b));
	CHECK_OK(store_stage_dirs(fx.st, &stage));
	CHECK_OK(store_commit_path(fx.st, stage, a, &res));
	CHECK_EQ(res, PATH_INFO_ADDED);
	CHECK_ERR(store_commit_path(fx.st, stage, b, &res), -EEXIST);
	CHECK_OK(store_commit_path(fx.st, stage, a, &res));
	CHECK_EQ(res, PATH_INFO_UNCHANGED);
	dir_service_free(stage);
	path_info_free(a);
	path_info_free(b);
	tfx_close(&fx);
}

/* --- racing writers --- */

struct racer {
	struct store *st;
	const struct path_info *pi;
	pthread_barrier_t *go;
	int rc;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = path_info_service_put(r->st->paths, r->pi);
	return NULL;
}

/* Two threads register different content for one new path, 50 times:
 * exactly one wins each time and the store holds the winner's. */
static void race_threads(bool local)
{
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, local));
	for (unsigned i = 0; i < 50; i++) {
		char full[STORE_PATH_FULL_MAX];
		struct path_info *p[2], *got;
		struct racer r[2];
		pthread_barrier_t go;
		pthread_t t[2];
		int winner;

		snprintf(full, sizeof(full), "/nix/store/%032u-race", i);
		CHECK_OK(mk_file_path(fx.st, full, "first\n", 1, &p[0]));
		CHECK_OK(mk_file_path(fx.st, full, "second\n", 2, &p[1]));
		pthread_barrier_init(&go, NULL, 2);
		for (int j = 0; j < 2; j++) {
			r[j] = (struct racer){fx.st, p[j], &go, 1};
			pthread_create(&t[j], NULL, race_thread, &r[j]);
		}
		for (int j = 0; j < 2; j++)
			pthread_join(t[j], NULL);
		pthread_barrier_destroy(&go);
		CHECK_MSG((r[0].rc == 0) + (r[1].rc == 0) == 1 &&
			      (r[0].rc == -EEXIST || r[1].rc == -EEXIST),
			  "round %u: results %d and %d", i, r[0].rc, r[1].rc);
		winner = r[0].rc == 0 ? 0 : 1;
		CHECK_OK(path_info_service_get(fx.st->paths, p[0]->path.digest, &got));
		CHECK(b3_digest_eq(&got->root.digest, &p[winner]->root.digest));
		path_info_free(got);
		path_info_free(p[0]);
		path_info_free(p[1]);
	}
	tfx_close(&fx);
}

TEST(trust_race_threads_memory)
{
	race_threads(false);
}

TEST(trust_race_threads_local)
{
	race_threads(true);
}

/* A child process opens the store and, once `go` is readable, registers
 * its content; its exit status says how that went (0 won, 17 refused). */
static pid_t race_child(const char *dir, const char *full, const char *data, int fill, int go)
{
	pid_t pid = fork();
	struct path_info *pi;
	struct store *st;
	char c;
	int rc;

	if (pid != 0)
		return pid;
	rc = local_store_open(dir, 0, &st);
	if (rc == 0)
		rc = mk_file_path(st, full, data, fill, &pi);
	if (rc == 0 && read(go, &c, 1) == 1)
		rc = path_info_service_put(st->paths, pi);
	_exit(rc == 0 ? 0 : rc == -EEXIST ? 17 : 1);
}

TEST(trust_race_processes_local)
{
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	for (unsigned i = 0; i < 20; i++) {
		char full[STORE_PATH_FULL_MAX];
		int go[2], status[2];
		pid_t pid[2];

		snprintf(full, sizeof(full), "/nix/store/%032u-procrace", i);
		CHECK(pipe(go) == 0);
		pid[0] = race_child(fx.dir, full, "child one\n", 1, go[0]);
		pid[1] = race_child(fx.dir, full, "child two\n", 2, go[0]);
		CHECK(write(go[1], "gg", 2) == 2);
		close(go[0]);
		close(go[1]);
		for (int j = 0; j < 2; j++)
			CHECK(waitpid(pid[j], &status[j], 0) == pid[j] && WIFEXITED(status[j]));
		CHECK_MSG(WEXITSTATUS(status[0]) + WEXITSTATUS(status[1]) == 17,
			  "round %u: exit statuses %d and %d", i, WEXITSTATUS(status[0]),
			  WEXITSTATUS(status[1]));
	}
	tfx_close(&fx);
}

/* --- content addresses --- */

static int nar_hash_parse_nix32(const char *s, uint8_t out[32])
{
	struct nix_hash h;
	int rc = nix_hash_parse_as(s, strlen(s), NIX_HASH_SHA256, &h);

	if (rc == 0)
		memcpy(out, h.digest, 32);
	return rc;
}

/* A PathInfo for `full` whose content is the file `data` and CA is `ca`. */
static int mk_ca_path(struct store *st, const char *full, const char *data, const char *ca,
		      struct path_info **out)
{
	int rc = mk_file_path(st, full, data, 0, out);

	if (rc < 0)
		return rc;
	rc = ca_parse(ca, strlen(ca), &(*out)->ca_type, (*out)->ca_digest, &(*out)->ca_digest_len);
	(*out)->has_ca = rc == 0;
	return rc;
}

#define FLAT	    "flat file\n"
#define FLAT_PATH   "/nix/store/rbjs35s89dr6d7mr7b87a3x9b4lwm4r7-flat.txt"
#define FLAT_CA	    "fixed:sha256:02jhncwq2qh2lqzbalmm28k2h3mfbf5p3iqdg75h5dh0q9vmzcri"
#define FLAT1_PATH  "/nix/store/2xi67wiim3qmdm8ihijca90xd6l8q2rp-flat.txt"
#define FLAT1_CA    "fixed:sha1:dyx0ryw8s1srxlwfj4fkk9k5qln6swhb"
#define GREETING    "hello world\n"
#define GREETING_P  "/nix/store/v0g46sxbdkijbmx815f4mjl8871ia1mh-greeting"
#define GREETING_CA "text:sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59"
#define SRC_PATH    "/nix/store/l9rn5vshcpbv9a2p97sdbsijinb3iyax-src"
#define GREETING2   "hi " SRC_PATH "\n"
#define GREETING2_P "/nix/store/vibn90vhmiciszj8zpvpas7d3c8rmcgd-greeting2"

TEST(trust_ca_flat_and_text)
{
	struct path_info *pi;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(mk_ca_path(fx.st, FLAT_PATH, FLAT, FLAT_CA, &pi));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	CHECK_OK(mk_ca_path(fx.st, FLAT1_PATH, FLAT, FLAT1_CA, &pi));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	CHECK_OK(mk_ca_path(fx.st, GREETING_P, GREETING, GREETING_CA, &pi));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	/* A flat CA next to other bytes: Nix's message, both hashes. */
	CHECK_OK(mk_ca_path(fx.st, FLAT_PATH, "other bytes\n", FLAT_CA, &pi));
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EIO);
	CHECK_STR(sf_errmsg(-EIO),
		  "ca hash mismatch importing path '" FLAT_PATH "'; specified: "
		  "sha256:02jhncwq2qh2lqzbalmm28k2h3mfbf5p3iqdg75h5dh0q9vmzcri got: "
		  "sha256:0g4k6ar5mp4qzlxxd1gvjkl7iq7jwnzwqh4wbbvs5cy3v3pg86v7");
	path_info_free(pi);
	/* ... and an executable file cannot be flat. */
	CHECK_OK(mk_ca_path(fx.st, FLAT_PATH, FLAT, FLAT_CA, &pi));
	pi->root.executable = true;
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EIO);
	path_info_free(pi);
	tfx_close(&fx);
}

TEST(trust_ca_text_with_reference)
{
	struct store_path src;
	uint8_t h[32];
	char ca[NIX_CA_TEXT_MAX];
	struct path_info *pi;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(nix_hash_buf(NIX_HASH_SHA256, GREETING2, strlen(GREETING2), h));
	CHECK_OK(ca_print(CA_TEXT_SHA256, h, 32, ca));
	CHECK_OK(mk_ca_path(fx.st, GREETING2_P, GREETING2, ca, &pi));
	/* Without its reference the CA gives another path. */
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EINVAL);
	CHECK(strstr(sf_errmsg(-EINVAL), "claims to be content-addressed"));
	CHECK_OK(store_path_parse(SRC_PATH, strlen(SRC_PATH), false, &src));
	CHECK_OK(path_info_add_ref(pi, &src));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	tfx_close(&fx);
}

TEST(trust_ca_nar_kinds)
{
	static const char *const files[][2] = {
	    {"hello.txt", "hello\n"}, {"run.sh", "#!/bin/sh\necho hi\n"}, {"sub/a", "x"}};
	char tmp[] = "/tmp/storefs-trust-src.XXXXXX", path[128];
	struct path_info *pi;
	struct tfx fx;

	CHECK(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/src", tmp);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/src/sub", tmp);
	CHECK(mkdir(path, 0755) == 0);
	for (size_t i = 0; i < 3; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/src/%s", tmp, files[i][0]);
		f = fopen(path, "w");
		CHECK(f && fputs(files[i][1], f) >= 0 && fclose(f) == 0);
	}
	snprintf(path, sizeof(path), "%s/src/run.sh", tmp);
	CHECK(chmod(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/src/link", tmp);
	CHECK(symlink("hello.txt", path) == 0);
	snprintf(path, sizeof(path), "%s/src", tmp);
	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(store_import_path(fx.st, path, NULL, &pi));
	/* The import's own "source" CA checks out (docs/store-paths.md §4). */
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	/* fixed:r:sha1 of the same tree: the NAR is rendered and hashed. */
	CHECK_OK(ca_parse("fixed:r:sha1:4dvfv9m97piwixicqhspqryhkf08b2sd", 45, &pi->ca_type,
			  pi->ca_digest, &pi->ca_digest_len));
	CHECK_OK(store_path_parse("/nix/store/izyz5nkmlqww2nbp9lvw48x4kxf0g6bx-src", 47, false,
				  &pi->path));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	pi->ca_digest[0] ^= 1;
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EINVAL); /* path no longer fits */
	path_info_free(pi);
	/* A source CA that is not the NAR hash. */
	CHECK_OK(store_import_path(fx.st, path, NULL, &pi));
	pi->nar_sha256[3] ^= 1;
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EIO);
	CHECK(strstr(sf_errmsg(-EIO), "ca hash mismatch importing path '" SRC_PATH "'"));
	path_info_free(pi);
	tfx_close(&fx);
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A self-referencing "source" path (as `nix store make-content-addressed`
 * makes): its CA hashes the NAR modulo its own hash part, computed here
 * independently (Python, docs/store-paths.md §4) for a file naming itself twice. */
TEST(trust_ca_self_reference)
{
	static const char path[] = "/nix/store/pmffwc1vfrzbc71xxgz2chb6n9ybywlb-selfref";
	static const char data[] = "self: /nix/store/pmffwc1vfrzbc71xxgz2chb6n9ybywlb-selfref, "
				   "again: pmffwc1vfrzbc71xxgz2chb6n9ybywlb\n";
	static const char ca[] =
	    "fixed:r:sha256:08md872bjahi6crn07r3y1rm3h4659xx45brllyirazjirb1b9dm";
	struct path_info *pi;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(mk_ca_path(fx.st, path, data, ca, &pi));
	CHECK_OK(nar_hash_parse_nix32("1znfkvfwwkwz1cbjmy7mansd5r5jihj1rc1dan6hajwy6c30nvgr",
				      pi->nar_sha256));
	CHECK_OK(path_info_add_ref(pi, &pi->path));
	CHECK_OK(ca_verify_claims(pi)); /* the NAR hash is not the CA here */
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	/* The same name and CA over other bytes. */
	CHECK_OK(mk_ca_path(fx.st, path, "self: nothing\n", ca, &pi));
	CHECK_OK(path_info_add_ref(pi, &pi->path));
	CHECK_ERR(ca_verify(fx.st->blobs, fx.st->dirs, pi), -EIO);
	CHECK(strstr(sf_errmsg(-EIO), "ca hash mismatch importing path '/nix/store/pmffwc1v"));
	path_info_free(pi);
	tfx_close(&fx);
}

/* The hash part straddles two 128 KiB writes of the NAR renderer. */
TEST(trust_ca_self_reference_across_writes)
{
	static const char path[] = "/nix/store/axj7fflsfwp7ykpapnhyq4hfpb0bj8kh-bigself";
	static const char ca[] =
	    "fixed:r:sha256:1gfsqwbw5cx7z2dvzcly4albv4nv6l1xr5xd1hpzw16zfvva8i7v";
	size_t at = 131072 - 10, len = at + 32 + 100;
	char *data = malloc(len + 1);
	struct path_info *pi;
	struct tfx fx;

	CHECK(data);
	memset(data, 'a', at);
	memcpy(data + at, path + 11, 32);
	memset(data + at + 32, 'b', 100);
	data[len] = '\0';
	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(mk_ca_path(fx.st, path, data, ca, &pi));
	CHECK_OK(path_info_add_ref(pi, &pi->path));
	CHECK_OK(ca_verify(fx.st->blobs, fx.st->dirs, pi));
	path_info_free(pi);
	free(data);
	tfx_close(&fx);
}

/* --- orphans: what failed writers take back --- */

static int session_put(struct store_write *w, const char *data, struct b3_digest *d)
{
	return blob_service_put(store_write_blobs(w), data, strlen(data), d);
}

static bool blob_present(struct store *st, const struct b3_digest *d)
{
	uint64_t size;

	return blob_service_stat(st->blobs, d, &size) == 0;
}

/* A failed session removes the blobs it created and nothing else: not a
 * blob that was there before it, not one that another session (which
 * found it present) registered a path with meanwhile. */
TEST(trust_orphans_failed_session)
{
	struct b3_digest before, mine, shared, d;
	struct store_write *a, *b;
	struct path_info *pi;
	uint64_t removed = 9;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	CHECK_OK(blob_service_put(fx.st->blobs, "was here\n", 9, &before));
	CHECK_OK(store_write_begin(fx.st, &a));
	CHECK_OK(session_put(a, "was here\n", &d));
	CHECK_OK(session_put(a, "only mine\n", &mine));
	CHECK_OK(session_put(a, "shared\n", &shared));
	CHECK_OK(store_write_begin(fx.st, &b));
	CHECK_OK(session_put(b, "shared\n", &d));
	CHECK_OK(mk_file_path(NULL, P_X, "shared\n", 1, &pi));
	CHECK_OK(path_info_service_put(fx.st->paths, pi));
	store_write_end(b);
	CHECK_OK(store_write_fail(a, &removed));
	CHECK_EQ(removed, 1);
	CHECK(!blob_present(fx.st, &mine));
	CHECK(blob_present(fx.st, &before));
	CHECK(blob_present(fx.st, &shared));
	path_info_free(pi);
	tfx_close(&fx);
}

/* A Directory holding one symlink to `target` (distinct targets, distinct
 * Directories). */
static struct directory *link_dir(const char *target)
{
	struct node n = {.kind = NODE_SYMLINK, .name = (const uint8_t *)"l", .name_len = 1};
	struct directory_builder *b;
	struct directory *d = NULL;

	n.target = (const uint8_t *)target;
	n.target_len = strlen(target);
	if (directory_builder_new(&b) < 0)
		return NULL;
	if (directory_builder_add(b, &n) < 0 || directory_builder_finish(b, &d) < 0) {
		directory_builder_free(b);
		return NULL;
	}
	return d;
}

static bool dir_present(struct store *st, const struct b3_digest *digest)
{
	struct directory *d = NULL;
	int rc = dir_service_get(st->dirs, digest, &d);

	directory_free(d);
	return rc == 0;
}

/* A putter passes Directories on in batches, so a writer that fails
 * half-way has stored some: its session takes back those it created, and
 * not one that was there before nor one a path registered meanwhile
 * reaches. */
TEST(trust_orphans_failed_session_dirs)
{
	struct b3_digest before, first, shared, d;
	struct directory *old = link_dir("before");
	struct dir_putter *p;
	struct store_write *a;
	struct path_info *pi;
	char target[32];
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	CHECK(old);
	CHECK_OK(dir_service_put(fx.st->dirs, old, &before));
	directory_free(old);
	CHECK_OK(store_write_begin(fx.st, &a));
	CHECK_OK(dir_putter_new(store_write_dirs(a), fx.st->size_formula, &p));
	CHECK_OK(dir_putter_put(p, link_dir("before"), &d));
	CHECK_OK(dir_putter_put(p, link_dir("shared"), &shared));
	for (int i = 0; i < 3000; i++) {
		snprintf(target, sizeof(target), "%d", i);
		CHECK_OK(dir_putter_put(p, link_dir(target), i ? &d : &first));
	}
	/* More than a batch went to the store before any close. */
	CHECK(dir_present(fx.st, &first));
	CHECK(dir_present(fx.st, &shared));
	CHECK_OK(mk_file_path(NULL, P_X, "x", 1, &pi));
	CHECK_OK(path_info_set_root(
	    pi, &(struct node){.kind = NODE_DIRECTORY, .digest = shared, .size = 1}));
	CHECK_OK(path_info_service_put(fx.st->paths, pi));
	dir_putter_free(p);
	CHECK_OK(store_write_fail(a, NULL));
	CHECK(!dir_present(fx.st, &first));
	CHECK(dir_present(fx.st, &before));
	CHECK(dir_present(fx.st, &shared));
	path_info_free(pi);
	tfx_close(&fx);
}

/* dir_putter_new_whole stores nothing before its close, even over a store
 * that takes batches (the gRPC daemon's Put: no session while a client
 * sends). */
TEST(trust_putter_whole_stores_at_close)
{
	struct b3_digest first, d;
	struct dir_putter *p;
	char target[32];
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	CHECK_OK(dir_putter_new_whole(fx.st->dirs, fx.st->size_formula, &p));
	for (int i = 0; i < 3000; i++) {
		snprintf(target, sizeof(target), "%d", i);
		CHECK_OK(dir_putter_put(p, link_dir(target), i ? &d : &first));
	}
	CHECK(!dir_present(fx.st, &first));
	dir_putter_free(p);
	CHECK(!dir_present(fx.st, &first));
	tfx_close(&fx);
}

/* A Directory service taking whole closures only (a gRPC Put stream):
 * counts its batches and their sizes. */
struct closure_only {
	struct dir_service base;
	size_t batches, last_n;
};

static int co_get(struct dir_service *ds, const struct b3_digest *d, struct directory **out)
{
	return -ENOENT;
}

static int co_put_batch(struct dir_service *ds, struct directory *const *dirs,
			const struct b3_digest *digests, size_t n)
{
	struct closure_only *s = (struct closure_only *)ds;

	s->batches++;
	s->last_n = n;
	return 0;
}

static void co_free(struct dir_service *ds)
{
}

/* Without partial_batches the putter holds the closure until its close
 * and sends it in one batch, however large. */
TEST(trust_putter_whole_closure_service)
{
	static const struct dir_service_ops ops = {
	    .get = co_get, .put_batch = co_put_batch, .free = co_free};
	struct closure_only s = {.base.ops = &ops};
	struct directory_builder *b;
	struct directory *root;
	struct b3_digest d, top;
	struct dir_putter *p;
	char name[32];

	CHECK_OK(dir_putter_new(&s.base, DIR_SIZE_SPEC, &p));
	CHECK_OK(directory_builder_new(&b));
	for (int i = 0; i < 3000; i++) {
		struct node n = {.kind = NODE_DIRECTORY, .size = 1};

		snprintf(name, sizeof(name), "%05d", i);
		CHECK_OK(dir_putter_put(p, link_dir(name), &n.digest));
		n.name = (const uint8_t *)name, n.name_len = strlen(name);
		CHECK_OK(directory_builder_add(b, &n));
	}
	CHECK_EQ(s.batches, 0);
	CHECK_OK(directory_builder_finish(b, &root));
	CHECK_OK(dir_putter_put(p, root, &top));
	CHECK_OK(dir_putter_close(p, &d));
	CHECK(b3_digest_eq(&d, &top));
	CHECK_EQ(s.batches, 1);
	CHECK_EQ(s.last_n, 3001);
}

/* While another writer is in its session the store is not free: the reclaim
 * gives up (nothing removed) rather than remove what it may be using. */
TEST(trust_orphans_busy_store)
{
	struct store_orphans o = {0};
	struct store_write *a, *other;
	struct store *second;
	struct b3_digest mine;
	uint64_t removed = 9;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, true));
	CHECK_OK(local_store_open(fx.dir, 0, &second));
	CHECK_OK(store_write_begin(fx.st, &a));
	CHECK_OK(session_put(a, "mine\n", &mine));
	store_write_detach(a, &o);
	CHECK_EQ(o.n, 1);
	CHECK_OK(store_write_begin(second, &other));
	CHECK_ERR(store_reclaim(fx.st, &o, 50, &removed), -EBUSY);
	CHECK_EQ(removed, 0);
	CHECK(blob_present(fx.st, &mine));
	store_write_end(other);
	CHECK_OK(store_reclaim(fx.st, &o, 50, &removed));
	CHECK_EQ(removed, 1);
	CHECK(!blob_present(fx.st, &mine));
	store_orphans_release(&o);
	store_free(second);
	tfx_close(&fx);
}

/* A store without the operations (memory) writes, and takes nothing back. */
TEST(trust_orphans_memory_store)
{
	struct store_write *a;
	struct b3_digest mine;
	struct tfx fx;

	CHECK_OK(tfx_open(&fx, false));
	CHECK_OK(store_write_begin(fx.st, &a));
	CHECK_OK(session_put(a, "mine\n", &mine));
	CHECK_ERR(store_write_fail(a, NULL), -ENOTSUP);
	CHECK(blob_present(fx.st, &mine));
	tfx_close(&fx);
}

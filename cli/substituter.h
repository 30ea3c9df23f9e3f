/* substituter.h - the `--substituter` options of storefs mount: a local
 * store filled on demand from a Nix binary cache (backends/binary_cache).
 * The options, their parsing and help live here so that a command needs
 * only a few lines to offer them. Single-threaded (getopt's globals). */
#ifndef STOREFS_CLI_SUBSTITUTER_H
#define STOREFS_CLI_SUBSTITUTER_H

#include "cli/cli.h"
#include "store/store.h"

#include <stdbool.h>

/* getopt_long values (above any short option and other commands' 256+). */
enum {
	CLI_OPT_SUBSTITUTER = 0x300,
	CLI_OPT_TRUSTED_KEYS,
	CLI_OPT_NO_CHECK_SIGS,
	CLI_OPT_SUBST_TIMEOUT,
	CLI_OPT_NEGATIVE_TTL
};

/* Entries for a command's struct option array. */
// clang-format off
#define CLI_SUBSTITUTER_LONGOPTS \
	{"substituter", required_argument, NULL, CLI_OPT_SUBSTITUTER}, \
	{"trusted-public-keys", required_argument, NULL, CLI_OPT_TRUSTED_KEYS}, \
	{"no-check-sigs", no_argument, NULL, CLI_OPT_NO_CHECK_SIGS}, \
	{"substituter-timeout", required_argument, NULL, CLI_OPT_SUBST_TIMEOUT}, \
	{"negative-ttl", required_argument, NULL, CLI_OPT_NEGATIVE_TTL}
// clang-format on

/* The usage synopsis part and the --help lines of the options. */
#define CLI_SUBSTITUTER_USAGE                                                                      \
	"[--substituter URL [--trusted-public-keys KEYS] [--no-check-sigs]\n"                      \
	"              [--substituter-timeout SECONDS] [--negative-ttl SECONDS]]"
#define CLI_SUBSTITUTER_HELP                                                                       \
	"  --substituter URL  fill the store on demand from the Nix binary cache at URL\n"         \
	"                     (file:///DIR, http://HOST[:PORT][/PATH], https://...): a\n"          \
	"                     path looked up at the root that the store lacks is\n"                \
	"                     fetched (narinfo, then its NAR, decompressed), verified\n"           \
	"                     and added to the store, which is opened writable (and\n"             \
	"                     created if missing). A path that fails (missing NAR,\n"              \
	"                     bad signature, hash mismatch, truncation) is EIO and\n"              \
	"                     logged; nothing is added and a later lookup retries\n"               \
	"  --trusted-public-keys KEYS  space-separated name:base64 keys (as in Nix);\n"            \
	"                     a substituted path needs a valid signature by one of\n"              \
	"                     them unless it is content-addressed\n"                               \
	"  --no-check-sigs    accept paths without a valid trusted signature\n"                    \
	"  --substituter-timeout S  a narinfo's deadline (default 60 s); a NAR's is S\n"           \
	"                     + NarSize at 256 KiB/s; then EIO (docs/limits.md)\n"                 \
	"  --negative-ttl S   a name the cache lacks stays missing S seconds\n"                    \
	"                     (default 3600, as in Nix)\n"

struct cli_substituter {
	const char *url;  /* NULL: no substituter */
	const char *keys; /* NULL: none */
	bool no_check_sigs;
	unsigned timeout_s;    /* 0: DEADLINE_BASE_S_DEFAULT */
	unsigned negative_ttl; /* seconds */
	bool negative_ttl_set;
};

/* The default of --negative-ttl (Nix's narinfo-cache-negative-ttl). */
#define CLI_NEGATIVE_TTL_DEFAULT 3600

/* Takes option `ch` with argument `arg` if it is one of the above: 1 if it
 * was taken, 0 if it is not ours, -1 if its argument is bad (a message is
 * recorded). */
int cli_substituter_option(struct cli_substituter *o, int ch, const char *arg);

/* Opens the store for a command: with a substituter (o->url set), the
 * local store `store_url` (NULL: the default location) opened writable and
 * created if missing, behind the binary cache (cli_open_substituter());
 * without one, cli_open_store(store_url, flags). -EINVAL with a message
 * for keys or --no-check-sigs given without --substituter. */
int cli_substituter_open_store(const struct cli_substituter *o, const char *store_url,
			       unsigned flags, struct store **out);

/* Opens the local store `store_url` (NULL: the default location) writable,
 * creating it if missing, and puts the binary cache at `substituter` in
 * front of it, trusting the space-separated `trusted_keys` (may be NULL).
 * Without keys and without `no_check_sigs` only content-addressed paths
 * can pass; a warning says so. 0 or a negative errno with a message; free
 * *out with store_free(). */
int cli_open_substituter(const char *store_url, const char *substituter, const char *trusted_keys,
			 bool no_check_sigs, struct store **out);

#endif

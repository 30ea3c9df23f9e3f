/* substituter.h - the `--substituter` options of storefs mount: a local
 * store filled on demand from a Nix binary cache (backends/binary_cache).
 * The options, their parsing and help live here so that a command needs
 * only a few lines to offer them. Single-threaded (getopt's globals). */
#ifndef STOREFS_CLI_SUBSTITUTER_H
#define STOREFS_CLI_SUBSTITUTER_H

#include "cli/cli.h"
#include "common/deadline.h"
#include "store/store.h"

#include <limits.h>
#include <stdbool.h>

/* The options, as entries of a command's option table whose option struct
 * `type` has a struct cli_substituter `field`; the command's defaults must
 * set field.negative_ttl to CLI_NEGATIVE_TTL_UNSET. */
#define CLI_SUBSTITUTER_OPTIONS(type, field)                                                       \
	CLI_STRING(0, "substituter", type, field.url, "URL",                                       \
		   "fill the store on demand from the Nix binary cache at URL (file:///DIR, "      \
		   "http://HOST[:PORT][/PATH], https://...): a path looked up at the root that "   \
		   "the store lacks is fetched (narinfo, then its NAR, decompressed), verified "   \
		   "and added to the store, which is opened writable (and created if missing). "   \
		   "A path that fails (missing NAR, bad signature, hash mismatch, truncation) is " \
		   "EIO and logged; nothing is added and a later lookup retries"),                 \
	    CLI_STRING(0, "trusted-public-keys", type, field.keys, "KEYS",                         \
		       "space-separated name:base64 keys (as in Nix); a substituted path needs "   \
		       "a valid signature by one of them unless it is content-addressed"),         \
	    CLI_BOOL(0, "no-check-sigs", type, field.no_check_sigs,                                \
		     "accept paths without a valid trusted signature"),                            \
	    CLI_UINT(0, "substituter-timeout", type, field.timeout_s, "S", 1, DEADLINE_BASE_S_MAX, \
		     "a narinfo's deadline in seconds (default 60); a NAR's is S + NarSize at "    \
		     "256 KiB/s; then EIO (docs/limits.md)"),                                      \
	    CLI_UINT(0, "negative-ttl", type, field.negative_ttl, "S", 0, DEADLINE_BASE_S_MAX,     \
		     "a name the cache lacks stays missing S seconds (default 3600, as in Nix)")

struct cli_substituter {
	const char *url;  /* NULL: no substituter */
	const char *keys; /* NULL: none */
	bool no_check_sigs;
	unsigned long long timeout_s;	 /* 0: DEADLINE_BASE_S_DEFAULT */
	unsigned long long negative_ttl; /* seconds, or CLI_NEGATIVE_TTL_UNSET */
};

/* The default of --negative-ttl (Nix's narinfo-cache-negative-ttl), and
 * "not given". */
#define CLI_NEGATIVE_TTL_DEFAULT 3600
#define CLI_NEGATIVE_TTL_UNSET	 ULLONG_MAX

/* Opens the store for a command: with a substituter (o->url set), the
 * command's store (cli_ctx_open_store()) opened writable and created if
 * missing, behind the binary cache (cli_open_substituter()); without one,
 * cli_ctx_open_store(c, flags). -EINVAL with a message for the other
 * options given without --substituter. */
int cli_substituter_open_store(const struct cli_substituter *o, const struct cli_ctx *c,
			       unsigned flags, struct store **out);

/* Opens the command's store (cli_ctx_open_store()) writable,
 * creating it if missing, and puts the binary cache at `substituter` in
 * front of it, trusting the space-separated `trusted_keys` (may be NULL).
 * Without keys and without `no_check_sigs` only content-addressed paths
 * can pass; a warning says so. 0 or a negative errno with a message; free
 * *out with store_free(). */
int cli_open_substituter(const struct cli_ctx *c, const char *substituter, const char *trusted_keys,
			 bool no_check_sigs, struct store **out);

#endif

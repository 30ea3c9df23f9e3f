/* substituter.c - the --substituter options: a local store with a Nix
 * binary cache in front. */
#include "cli/substituter.h"
#include "cli/progress.h"

#include "backends/registry.h"
#include "common/err.h"
#include "common/log.h"

int cli_substituter_open_store(const struct cli_substituter *o, const struct cli_ctx *c,
			       unsigned flags, struct store **out)
{
	struct deadline_rule rule = {.base_s = (unsigned)o->timeout_s};
	int rc;

	if (!o->url && (o->keys || o->no_check_sigs || o->timeout_s ||
			o->negative_ttl != CLI_NEGATIVE_TTL_UNSET))
		return sf_err(-EINVAL,
			      "--trusted-public-keys, --no-check-sigs, "
			      "--substituter-timeout and --negative-ttl need --substituter");
	if (!o->url)
		return cli_ctx_open_store(c, flags, out);
	rc = cli_open_substituter(c, o->url, o->keys, o->no_check_sigs, out);
	if (rc == 0)
		store_substituted_set_deadline(*out, &rule);
	return rc;
}

int cli_open_substituter(const struct cli_ctx *c, const char *substituter, const char *trusted_keys,
			 bool no_check_sigs, struct store **out)
{
	struct store *local;
	int rc;

	if (no_check_sigs)
		log_warn("substituter '%s': signatures are not checked (--no-check-sigs)",
			 substituter);
	else if (!trusted_keys || !*trusted_keys)
		log_warn("substituter '%s': no --trusted-public-keys, so only content-addressed "
			 "paths will be accepted",
			 substituter);
	rc = cli_ctx_open_store(c, STORE_OPEN_CREATE, &local);
	if (rc < 0)
		return rc;
	rc = store_open_substituted(local, substituter, trusted_keys, !no_check_sigs, out);
	if (rc < 0)
		store_free(local);
	else
		cli_progress_fetches(*out);
	return rc;
}

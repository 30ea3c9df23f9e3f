/* pg_url.c - the one parameter of a postgres:// URL that is storefs's, not
 * libpq's: `timeout=SECONDS`, the base deadline of every operation
 * (docs/postgres.md "Connections, deadlines, outages"). libpq refuses a
 * parameter it does not know, so it is taken out before libpq sees the
 * URL. */
#include "backends/postgres/pg_internal.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>

/* Copies the query's parameters but `timeout=` into `o` (which has room
 * for all of it), '?' and '&' as needed. */
static int copy_params(const char *q, char *o, unsigned *timeout_s)
{
	char sep = '?';

	while (*q) {
		size_t n = strcspn(q, "&");

		if (n >= 8 && !strncmp(q, "timeout=", 8)) {
			if (*timeout_s)
				return sf_err(
				    -EINVAL, "parameter 'timeout' given twice in a PostgreSQL URL");
			if (deadline_parse_s(q + 8, n - 8, timeout_s) < 0)
				return sf_err(
				    -EINVAL,
				    "timeout in a PostgreSQL URL must be 1 to %d seconds, "
				    "not '%.*s'",
				    DEADLINE_BASE_S_MAX, (int)n - 8, q + 8);
		} else if (n) {
			*o++ = sep;
			memcpy(o, q, n);
			o += n;
			sep = '&';
		}
		q += n + (q[n] == '&');
	}
	*o = '\0';
	return 0;
}

int pg_url_take_timeout(const char *url, char **libpq_url, unsigned *timeout_s)
{
	const char *q = strchr(url, '?');
	size_t head = q ? (size_t)(q - url) : strlen(url);
	char *out = malloc(strlen(url) + 1);
	int rc;

	if (!out)
		return -ENOMEM;
	memcpy(out, url, head);
	*timeout_s = 0;
	rc = q ? copy_params(q + 1, out + head, timeout_s) : 0;
	if (!q)
		out[head] = '\0';
	if (rc < 0) {
		/* it may hold a password */
		explicit_bzero(out, strlen(url) + 1);
		free(out);
		return rc;
	}
	*libpq_url = out;
	return 0;
}
